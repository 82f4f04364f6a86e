import Crypto
public import Foundation

/// Why an interaction could not be finished. The raw values are the record's wire form.
public enum DeadLetterReason: String, Sendable, Hashable, Codable, CaseIterable {
    case malformed
    case orphanedInteraction
    case enrichmentFailed
    case deliveryFailed
}

/// Everything an on-call engineer needs to understand, replay or purge one unfinished piece of work.
/// Published as JSON on `relay.dead-letters` (DESIGN.md, "Outputs").
public struct DeadLetterRecord: Sendable, Hashable, Codable {
    /// Where the original message came from, so replay can put it back there.
    public struct Origin: Sendable, Hashable, Codable {
        public var exchange: String
        public var routingKey: String
        public init(exchange: String, routingKey: String) {
            self.exchange = exchange
            self.routingKey = routingKey
        }

        /// A failed delivery or lookup: it came from the relay's outbox, and replay puts its job back
        /// there (in the store), not on the broker. The name is no queue: a tool that published it to
        /// the default exchange would be told it is unroutable.
        public static let outbox = Origin(exchange: "", routingKey: "identity-relay.outbox")

        /// Whether replay puts the payload back in the store's outbox: a record of this version, or a
        /// delivery job from a version whose jobs travelled on the broker's `relay.work` exchange.
        public var isOutbox: Bool {
            self == .outbox
                || (exchange.hasSuffix("relay.work") && (routingKey == "delivery" || routingKey == "enrichment"))
        }
    }

    /// The outbound request that failed, for `deliveryFailed`.
    public struct Target: Sendable, Hashable, Codable {
        public var method: String
        public var url: String
        public var lastStatus: Int?
        public init(method: String, url: String, lastStatus: Int?) {
            self.method = method
            self.url = url
            self.lastStatus = lastStatus
        }
    }

    public enum PayloadEncoding: String, Sendable, Hashable, Codable {
        case utf8, base64
        /// Base64 of the payload sealed with the relay's key (`sealingPayload(with:)`): a raw event
        /// may hold personal data.
        case sealed
    }

    public var id: String
    public var reason: DeadLetterReason
    public var callId: String?
    public var eventType: String?
    public var eventId: String?
    public var attempts: Int
    public var firstFailureAt: Date
    public var lastFailureAt: Date
    public var lastError: String
    public var payload: String
    public var payloadEncoding: PayloadEncoding
    public var origin: Origin?
    public var target: Target?

    public init(
        id: String,
        reason: DeadLetterReason,
        callId: String?,
        eventType: String?,
        eventId: String?,
        attempts: Int,
        firstFailureAt: Date,
        lastFailureAt: Date,
        lastError: String,
        originalPayload: [UInt8],
        origin: Origin?,
        target: Target? = nil
    ) {
        self.id = id
        self.reason = reason
        self.callId = callId
        self.eventType = eventType
        self.eventId = eventId
        self.attempts = attempts
        self.firstFailureAt = firstFailureAt
        self.lastFailureAt = lastFailureAt
        self.lastError = lastError
        if let text = String(validating: originalPayload, as: UTF8.self) {
            self.payload = text
            self.payloadEncoding = .utf8
        } else {
            self.payload = Data(originalPayload).base64EncodedString()
            self.payloadEncoding = .base64
        }
        self.origin = origin
        self.target = target
    }

    /// The original bytes, whatever encoding the record carries them in; still sealed for `.sealed`
    /// (`openedPayload(with:)` opens them).
    public var originalPayload: [UInt8] {
        switch payloadEncoding {
        case .utf8: Array(payload.utf8)
        case .base64, .sealed: Data(base64Encoded: payload).map(Array.init) ?? []
        }
    }

    /// A record id that is the same however often the same failure is recorded, so a record published
    /// twice (a crash between publish and ack) is recognisable as one.
    public static func stableID(reason: DeadLetterReason, source: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(reason.rawValue.utf8))
        hasher.update(data: [0])
        hasher.update(data: source)
        return "dl_" + hasher.finalize().prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        // Encoding plain strings, ints and dates cannot fail.
        return Array(try! encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> DeadLetterRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "not RFC 3339")
                )
            }
            return date
        }
        return try decoder.decode(DeadLetterRecord.self, from: Data(bytes))
    }
}
