public import Foundation
public import RelayAMQP
public import RelayCore
public import RelayStore

/// One dead letter as the tools present it: a message of `relay.dead-letters`, read as the drain
/// reads it, or its row in the store (`init(stored:names:cipher:)`).
///
/// Most are `DeadLetterRecord`s the relay published. The broker also dead-letters raw messages there
/// (a message past `relay.events`' delivery limit): those carry no record, only
/// the broker's `x-first-death-*` headers, and are shown with the reason `brokerDeadLettered`, their
/// body as the payload and the exchange they were first published to as the origin, so they can be
/// replayed like any record. Anything else is `unreadable`: it can be shown and purged, not replayed.
public struct DeadLetter: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// A `DeadLetterRecord` published by the relay.
        case record
        /// A raw message the broker dead-lettered (delivery limit exceeded, expired, rejected).
        case brokerDeadLettered
        /// Neither: a message on the queue that is not a record and carries no broker death headers.
        case unreadable
    }

    /// Header carried by a replayed message: how often it has been replayed, this time included.
    /// A message that fails again comes back with it, so `list` shows it as one that keeps failing.
    public static let replayCountHeader = "x-relay-replay-count"
    /// Header carried by a replayed message: the id of the dead letter it was replayed from.
    public static let replayOfHeader = "x-relay-replay-of"
    /// The reason shown for raw messages the broker dead-lettered.
    public static let brokerDeadLetteredReason = "brokerDeadLettered"
    /// The reason shown for messages that are neither records nor broker dead letters.
    public static let unreadableReason = "unreadable"
    /// Every reason `--reason` accepts.
    public static let knownReasons: [String] =
        DeadLetterReason.allCases.map(\.rawValue) + [brokerDeadLetteredReason, unreadableReason]

    /// Headers the broker sets when it dead-letters; a replayed message must not carry them (RabbitMQ
    /// would read a stale death history, and our copies of its nested tables are only descriptions).
    public static let brokerHeaderPrefixes = ["x-death", "x-first-death-", "x-last-death-", "x-delivery-count"]

    /// The record's id; for raw messages an id derived from the message, stable across scans.
    public var id: String
    public var kind: Kind
    /// A `DeadLetterReason` raw value, `brokerDeadLettered` or `unreadable`.
    public var reason: String
    public var callId: String?
    public var eventType: String?
    public var eventId: String?
    /// Nil when unknown (a raw message the broker never counted).
    public var attempts: Int?
    /// Nil for raw messages: the broker's death time sits in its nested `x-death` table.
    public var firstFailureAt: Date?
    public var lastFailureAt: Date?
    public var lastError: String
    /// The original message's bytes: what replay publishes. Still sealed when `payloadIsSealed`.
    public var payload: [UInt8]
    /// The record's payload is sealed and was not opened (no key, or not this relay's key).
    public var payloadIsSealed = false
    /// A key was given and the sealed payload did not open with it: another relay's key, or altered bytes.
    public var payloadKeyDoesNotFit = false
    /// Where replay puts the payload; nil when there is nowhere (orphans, unreadable messages).
    public var origin: DeadLetterRecord.Origin?
    public var target: DeadLetterRecord.Target?
    /// How often the payload has been replayed already (the `x-relay-replay-count` header).
    public var replayCount: Int
    /// The record as published, for `kind == .record`.
    public var record: DeadLetterRecord?
    /// Messages that carried this id (a record published twice is one dead letter).
    public var copies = 1
    /// Where it stands in the store: open until replayed, purged or resolved.
    public var state: StoredDeadLetter.State = .open
    /// When it last changed state (replayed, purged, resolved, reopened); nil while it never has.
    public var stateChangedAt: Date?
    /// The operator's note when it was resolved.
    public var note: String?
    /// The store's order of arrival (what pages follow); 0 for a message read off the queue.
    public var sequence: Int64 = 0
    /// The dead-letter message's own headers and routing key.
    public var headers: [String: AMQPHeaderValue]
    public var routingKey: String
    /// The record's JSON as published, for `export`: re-encoding a decoded record could move its times
    /// by a millisecond (RFC 3339 text → Date → text is not exact), the published text cannot.
    var recordJSON: [UInt8]?

    /// Reads one message of the dead-letter queue. Never fails: what is not a record is still shown.
    ///
    /// - Parameter cipher: opens sealed payloads; without it (or with another key) they stay sealed.
    public init(message delivery: Delivery, names: RelayNames, cipher: FieldCipher? = nil) {
        let headers = delivery.headers
        self.headers = headers
        self.routingKey = delivery.routingKey
        // Anyone can set the header: a count past any real one (Int64.max) must not overflow at replay.
        self.replayCount = Int(min(max(headers[Self.replayCountHeader]?.intValue ?? 0, 0), Int64(Int32.max)))
        let isRecord = headers[DeadLetterPublisher.reasonHeader] != nil
        let brokerReason = headers["x-first-death-reason"]?.description
        if let record = try? DeadLetterRecord.decode(delivery.body) {
            id = record.id
            kind = .record
            reason = record.reason.rawValue
            callId = record.callId
            eventType = record.eventType
            eventId = record.eventId
            attempts = record.attempts
            firstFailureAt = record.firstFailureAt
            lastFailureAt = record.lastFailureAt
            lastError = record.lastError
            if record.payloadEncoding == .sealed {
                let opened = cipher.flatMap { try? record.openedPayload(with: $0) }
                payload = opened ?? record.originalPayload
                payloadIsSealed = opened == nil
                payloadKeyDoesNotFit = cipher != nil && opened == nil
            } else {
                payload = record.originalPayload
            }
            origin = record.origin
            target = record.target
            self.record = record
            recordJSON = delivery.body
            return
        }
        let envelope = Self.envelope(of: delivery.body)
        callId = envelope.callId
        eventType = envelope.type
        eventId = envelope.eventId
        firstFailureAt = nil
        lastFailureAt = nil
        target = nil
        record = nil
        recordJSON = nil
        payload = delivery.body
        if let brokerReason, !isRecord {
            let queue = headers["x-first-death-queue"]?.description ?? ""
            let exchange = headers["x-first-death-exchange"]?.description ?? ""
            kind = .brokerDeadLettered
            reason = Self.brokerDeadLetteredReason
            id = Self.derivedID(prefix: "dlb_", body: delivery.body, context: "\(queue)|\(delivery.routingKey)")
            attempts = headers["x-delivery-count"]?.intValue.map { Int($0) }
            lastError = "dead-lettered by the broker (\(brokerReason)) from queue \(queue.isEmpty ? "?" : queue)"
            origin = Self.brokerOrigin(queue: queue, exchange: exchange, routingKey: delivery.routingKey, names: names)
        } else {
            kind = .unreadable
            reason = Self.unreadableReason
            id =
                delivery.messageId.flatMap { $0.isEmpty ? nil : $0 }
                ?? Self.derivedID(prefix: "dlu_", body: delivery.body, context: delivery.routingKey)
            attempts = nil
            lastError =
                isRecord
                ? "carries a dead-letter reason header, but its body is not a valid dead-letter record"
                : "neither a dead-letter record nor a message the broker dead-lettered"
            origin = nil
        }
    }

    /// Why a sealed payload stayed sealed: no key to open it, or a key that does not fit.
    public var sealedPayloadReason: String {
        payloadKeyDoesNotFit
            ? "its payload is sealed and does not open with the configured privacy.encryptionKey: "
                + "not the key it was sealed with (another relay's, a rotated one), or its bytes were altered"
            : "its payload is sealed and no privacy.encryptionKey is configured: set it to the relay's key"
    }

    /// Whether replay has somewhere to put the payload.
    public var isReplayable: Bool { origin != nil && !payloadIsSealed }

    /// Why replay cannot put this one back, or nil when it can.
    public var notReplayableReason: String? {
        if payloadIsSealed { return sealedPayloadReason }
        guard origin == nil else { return nil }
        switch kind {
        case .record: return "the \(reason) record has no origin: there is no original message to put back"
        case .brokerDeadLettered: return "the broker recorded no exchange it came from"
        case .unreadable: return "not a dead-letter record: nothing known about where it came from"
        }
    }

    /// The message replay publishes: the original payload, to where it came from, carrying the
    /// incremented replay count. Nil when there is no origin.
    public func replayMessage() -> OutboundMessage? {
        guard let origin else { return nil }
        var replayHeaders: [String: AMQPHeaderValue] = [:]
        if kind == .brokerDeadLettered {
            // The original message's own headers travel on, without the broker's death history.
            for (name, value) in headers {
                if case .other = value { continue }
                if Self.brokerHeaderPrefixes.contains(where: { name.hasPrefix($0) }) { continue }
                replayHeaders[name] = value
            }
        }
        replayHeaders[Self.replayCountHeader] = .int(Int64(replayCount + 1))
        replayHeaders[Self.replayOfHeader] = .string(id)
        return OutboundMessage(
            exchange: origin.exchange,
            routingKey: origin.routingKey,
            body: payload,
            headers: replayHeaders
        )
    }

    /// Time since the last failure, nil when unknown.
    public func age(now: Date) -> TimeInterval? {
        lastFailureAt.map { max(0, now.timeIntervalSince($0)) }
    }

    // MARK: Reading raw messages

    /// The platform event envelope (or delivery job) fields of a raw body, best effort.
    private static func envelope(of body: [UInt8]) -> (callId: String?, type: String?, eventId: String?) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return (nil, nil, nil)
        }
        return (object["callId"] as? String, object["type"] as? String, object["eventId"] as? String)
    }

    /// Where a message the broker dead-lettered was first published. A delivery job of an earlier
    /// version (its work queues, its delay queues) goes back to the store's outbox.
    static func brokerOrigin(
        queue: String,
        exchange: String,
        routingKey: String,
        names: RelayNames
    )
        -> DeadLetterRecord.Origin?
    {
        if names.legacyWorkQueues.contains(queue) { return .outbox }
        if exchange.isEmpty {
            // Published straight to a queue through the default exchange: back to that queue.
            return queue.isEmpty ? nil : .init(exchange: "", routingKey: queue)
        }
        return .init(exchange: exchange, routingKey: routingKey)
    }

    /// `prefix` + 24 hex digits of a SHA-256 over the message: the same message gets the same id.
    static func derivedID(prefix: String, body: [UInt8], context: String) -> String {
        // DeadLetterRecord.stableID is the project's one hash of this kind; its "dl_" is swapped.
        let hashed = DeadLetterRecord.stableID(reason: .malformed, source: Array("raw|\(context)|".utf8) + body)
        return prefix + hashed.dropFirst("dl_".count)
    }
}
