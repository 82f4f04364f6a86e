public import Foundation

/// One outbound request, as it waits in the store's outbox: everything the dispatcher needs to send
/// it, retry it, or dead-letter it, and nothing it could get wrong
/// on a retry (the idempotency key and the webhook id are fixed when the job is made; the webhook's
/// timestamp is the attempt's own, as Standard Webhooks receivers check it against their clock).
public struct DeliveryJob: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// `PUT {platform.baseUrl}{path}`
        case customerUpdate
        /// `POST {crm.postCallWebhookUrl}`, signed.
        case postCallWebhook
        /// Phase 2: CRM lookup, then ERP lookup, then a customer update with the profile.
        case enrich
        /// An agent's identity switch: validate, then update the customer and remember the override.
        case contextChange
    }

    public var kind: Kind
    public var callId: String
    /// The event (or timer firing) that caused the request.
    public var causeId: String
    public var idempotencyKey: String
    /// For customer updates: the path under the platform's base URL.
    public var path: String?
    /// The request body, JSON.
    public var body: String
    /// For webhooks: the Standard Webhooks id, the same on every attempt.
    public var webhookId: String?
    /// For enrichment: what to look up, and for whom.
    public var enrichment: EnrichmentRequest?
    public var contextChange: ContextChange?
    /// Attempts made so far.
    public var attempts: Int
    public var firstFailureAt: Date?
    public var lastError: String?
    /// The personal data of the job (`body`, `enrichment.phone`), sealed for the outbox and the broker;
    /// nil in a job that is open in memory, or one written before sealing existed (see `sealed(with:)`).
    public var sealedPersonalData: String?
    /// The trace the job belongs to, as the tracer wrote it for the span that made the job (W3C:
    /// `traceparent`, `tracestate`): each attempt's span continues it, even in another process or
    /// after a restart. Nil when tracing is off.
    public var traceContext: [String: String]?

    public init(customerUpdate update: CustomerUpdate, causeId: String) {
        kind = .customerUpdate
        callId = update.callId
        self.causeId = causeId
        idempotencyKey = update.idempotencyKey
        path = update.path()
        body = String(decoding: update.body(), as: UTF8.self)
        attempts = 0
    }

    public init(webhook: PostCallWebhook, causeId: String) {
        kind = .postCallWebhook
        callId = webhook.payload.callId
        self.causeId = causeId
        idempotencyKey = webhook.id
        body = String(decoding: webhook.body(), as: UTF8.self)
        webhookId = webhook.id
        attempts = 0
    }

    public init(enrichment request: EnrichmentRequest, causeId: String) {
        kind = .enrich
        callId = request.callId
        self.causeId = causeId
        idempotencyKey = "enrichment:\(request.eventId)"
        body = ""
        enrichment = request
        attempts = 0
    }

    public init(contextChange change: ContextChange, causeId: String) {
        kind = .contextChange
        callId = change.callId
        self.causeId = causeId
        idempotencyKey = "context-update:\(change.eventId)"
        body = ""
        contextChange = change
        attempts = 0
    }

    public var method: String {
        switch kind {
        case .customerUpdate: "PUT"
        case .postCallWebhook: "POST"
        case .enrich, .contextChange: "GET"
        }
    }

    // Shared, configured once: jobs are encoded and decoded several times per event.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()

    /// What `JSONEncoder` (sorted keys, unescaped slashes, dates in milliseconds) writes for the job,
    /// written field by field: every effect of every event is encoded at its commit.
    /// `DeliveryJobCodingTests` holds the two to the same bytes.
    public func encoded() -> [UInt8] {
        var json = JSONWriter(escapesSlashes: false, capacity: 384)
        func string(_ key: StaticString, _ value: String?) {
            guard let value else { return }
            json.key(key)
            json.string(value)
        }
        json.beginObject()
        json.key("attempts")
        json.int(attempts)
        string("body", body)
        string("callId", callId)
        string("causeId", causeId)
        if let contextChange {
            json.key("contextChange")
            json.beginObject()
            string("callId", contextChange.callId)
            string("customerId", contextChange.customerId)
            string("eventId", contextChange.eventId)
            string("newExternalId", contextChange.newExternalId)
            string("phoneKey", contextChange.phoneKey)
            string("reason", contextChange.reason)
            json.endObject()
        }
        if let enrichment {
            json.key("enrichment")
            json.beginObject()
            string("callId", enrichment.callId)
            string("contactId", enrichment.contactId)
            string("customerId", enrichment.customerId)
            string("email", enrichment.email)
            string("eventId", enrichment.eventId)
            string("messagingId", enrichment.messagingId)
            string("messagingPlatform", enrichment.messagingPlatform)
            string("name", enrichment.name)
            string("phone", enrichment.phone)
            json.endObject()
        }
        if let firstFailureAt {
            json.key("firstFailureAt")
            json.double(1000 * firstFailureAt.timeIntervalSince1970)
        }
        string("idempotencyKey", idempotencyKey)
        string("kind", kind.rawValue)
        string("lastError", lastError)
        string("path", path)
        string("sealedPersonalData", sealedPersonalData)
        if let traceContext {
            json.key("traceContext")
            json.beginObject()
            // Sorted as JSONEncoder sorts a dictionary's keys.
            for (key, value) in traceContext.sorted(by: { $0.key < $1.key }) {
                json.key(key)
                json.string(value)
            }
            json.endObject()
        }
        string("webhookId", webhookId)
        json.endObject()
        return json.bytes
    }

    /// The `Codable` path `encoded()` stands in for, for the tests that hold them to one JSON.
    func encodedByFoundation() -> [UInt8] {
        Array(try! Self.encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> DeliveryJob {
        try decoder.decode(DeliveryJob.self, from: Data(bytes))
    }
}
