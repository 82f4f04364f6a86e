public import Foundation
public import RelayCore
public import RelayStore

/// One outbox entry as an operator sees it (`deliveries list|show`, the admin API): what it is, for
/// which call, how often it was tried and when it is due. The job's personal data stays sealed and
/// out of the view; its target is the method and the path with the external id masked.
public struct OutboxEntryView: Sendable, Hashable, Codable {
    public var id: Int64
    /// The outbox kind: `delivery`, `lookup`, `deadLetter`, or one this version does not know.
    public var kind: String
    /// What the job does: `customerUpdate`, `postCallWebhook`, `enrich`, `contextChange`, or a
    /// dead-letter reason for a record waiting to be published.
    public var job: String
    public var callId: String
    public var causeId: String
    public var idempotencyKey: String?
    /// `PUT /api/v2/customers/CRM%3A50…` for an update (masked), `POST webhook`, `GET CRM lookup`.
    public var target: String
    /// `due` (waiting for a slot or in flight), `scheduled` (a retry due later), or `finished`.
    public var state: String
    public var attempts: Int
    public var createdAt: Date
    public var dueAt: Date
    public var lastError: String?
    public var finishedAt: Date?
    public var outcome: String?

    public init(_ entry: OutboxEntry, now: Date) {
        id = entry.id
        kind = entry.kind
        callId = entry.callId
        causeId = entry.causeId
        attempts = entry.attempts
        createdAt = entry.createdAt
        dueAt = entry.dueAt
        lastError = entry.lastError
        finishedAt = entry.finishedAt
        outcome = entry.outcome
        state = entry.finishedAt != nil ? "finished" : entry.dueAt <= now ? "due" : "scheduled"
        if entry.kind == OutboxKind.deadLetter, let record = try? DeadLetterRecord.decode(entry.payload) {
            job = record.reason.rawValue
            idempotencyKey = nil
            target = "dead-letter record \(record.id)"
        } else if let decoded = try? DeliveryJob.decode(entry.payload) {
            job = decoded.kind.rawValue
            idempotencyKey = Self.maskedExternalIds(in: decoded.idempotencyKey)
            switch decoded.kind {
            case .customerUpdate: target = "PUT " + Self.maskedPath(decoded.path ?? "")
            case .postCallWebhook: target = "POST webhook"
            case .enrich: target = "GET CRM lookup"
            case .contextChange: target = "GET CRM/ERP validation"
            }
        } else {
            job = "unreadable"
            idempotencyKey = nil
            target = "(unknown)"
        }
    }

    /// A key with any external id in it masked: reconciliation's keys end in the CRM id they link.
    static func maskedExternalIds(in key: String) -> String {
        var parts = key.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        for index in parts.indices.dropLast() where ["CRM", "ERP", "PHONE"].contains(parts[index]) {
            parts[index + 1] = Masking.mask(parts[index + 1])
        }
        return parts.joined(separator: ":")
    }

    /// The path with its last segment (the customer's external id) masked.
    static func maskedPath(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return Masking.mask(path) }
        return String(path[...slash]) + Masking.mask(String(path[path.index(after: slash)...]))
    }
}
