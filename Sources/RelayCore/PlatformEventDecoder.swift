import Foundation

/// Turns a message body into a `PlatformEvent`, or into an error that says exactly what is wrong.
///
/// Strict on what the contract requires, lenient on what it does not mention: unknown extra fields
/// are ignored, while a missing required field, a wrong type, an empty id, an unknown `type` or an
/// unparseable body is malformed.
public struct PlatformEventDecoder: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Bodies larger than this are refused before parsing: nothing legitimate is this big.
        public var maxBodyBytes: Int
        /// `callId` and `eventId` are opaque ids; anything longer is junk or an attack.
        public var maxIdLength: Int

        public init(maxBodyBytes: Int = 64 * 1024, maxIdLength: Int = 128) {
            self.maxBodyBytes = maxBodyBytes
            self.maxIdLength = maxIdLength
        }
    }

    public var limits: Limits

    public init(limits: Limits = .init()) {
        self.limits = limits
    }

    // Shared: the decoder is configured once and safe to use from many threads; one per event showed
    // in the profile.
    private static let jsonDecoder = JSONDecoder()

    public func decode(_ body: [UInt8]) throws(MalformedEventError) -> PlatformEvent {
        guard body.count <= limits.maxBodyBytes else {
            throw MalformedEventError(
                .bodyTooLarge,
                "body is \(body.count) bytes, over the limit of \(limits.maxBodyBytes)"
            )
        }
        // One pass over the body: the envelope, then the payload its type names, from the same parse.
        let decoded: EnvelopeAndPayload
        do {
            decoded = try Self.jsonDecoder.decode(EnvelopeAndPayload.self, from: Data(body))
        } catch {
            throw MalformedEventError(decodingError: error)
        }
        let envelope = decoded.envelope
        guard let type = EventType(rawValue: envelope.type) else {
            let known = EventType.allCases.map(\.rawValue).joined(separator: ", ")
            throw MalformedEventError(
                .unknownType,
                "unknown event type '\(envelope.type.prefix(40))' (known: \(known))",
                field: "type"
            )
        }
        try checkId(envelope.eventId, field: "eventId")
        try checkId(envelope.callId, field: "callId")
        guard let occurredAt = RFC3339.parse(envelope.occurredAt) else {
            throw MalformedEventError(
                .invalidValue,
                "field 'occurredAt' is not an RFC 3339 timestamp",
                field: "occurredAt"
            )
        }

        // The payload's own error comes after the envelope's checks, as the contract orders them.
        let payload: PlatformEvent.Payload
        do {
            payload = try decoded.payload!.get()
        } catch {
            throw MalformedEventError(decodingError: error)
        }
        return PlatformEvent(
            eventId: envelope.eventId,
            callId: envelope.callId,
            occurredAt: occurredAt,
            payload: payload
        )
    }

    /// Reads only the envelope fields it can, for a dead-letter record of a body that failed to decode.
    public func bestEffortEnvelope(_ body: [UInt8]) -> (callId: String?, type: String?) {
        guard body.count <= limits.maxBodyBytes,
            let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        else { return (nil, nil) }
        func bounded(_ value: Any?) -> String? {
            guard let string = value as? String, !string.isEmpty, string.count <= limits.maxIdLength else {
                return nil
            }
            return string
        }
        return (bounded(object["callId"]), bounded(object["type"]))
    }

    private func checkId(_ value: String, field: String) throws(MalformedEventError) {
        if value.isEmpty {
            throw MalformedEventError(.invalidValue, "field '\(field)' is empty", field: field)
        }
        if value.count > limits.maxIdLength {
            throw MalformedEventError(
                .invalidValue,
                "field '\(field)' is \(value.count) characters, over the limit of \(limits.maxIdLength)",
                field: field
            )
        }
    }

    private struct Envelope: Decodable {
        var eventId: String
        var type: String
        var callId: String
        var occurredAt: String
    }

    /// The envelope and, for a known type, its payload (or the payload's decoding error, kept for
    /// after the envelope is checked). Decoded from one parse of the body, not one per part.
    private struct EnvelopeAndPayload: Decodable {
        var envelope: Envelope
        /// Nil for an unknown type.
        var payload: Result<PlatformEvent.Payload, any Error>?

        init(from decoder: any Decoder) throws {
            envelope = try Envelope(from: decoder)
            guard let type = EventType(rawValue: envelope.type) else { return }
            payload = Result {
                switch type {
                case .callStarted: .callStarted(try CallStarted(from: decoder))
                case .callEnded: .callEnded(try CallEnded(from: decoder))
                case .wrapUp: .wrapUp(try WrapUp(from: decoder))
                case .contextUpdate: .contextUpdate(try ContextUpdate(from: decoder))
                case .chatStarted: .chatStarted(try ChatStarted(from: decoder))
                case .emailReceived: .emailReceived(try EmailReceived(from: decoder))
                case .messageReceived: .messageReceived(try MessageReceived(from: decoder))
                }
            }
        }
    }
}

/// Why a message body is not a valid event. The message names the field where there is one.
public struct MalformedEventError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case notJSON, bodyTooLarge, missingField, wrongType, invalidValue, unknownType
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        public static let notJSON = Code(.notJSON)
        public static let bodyTooLarge = Code(.bodyTooLarge)
        public static let missingField = Code(.missingField)
        public static let wrongType = Code(.wrongType)
        public static let invalidValue = Code(.invalidValue)
        public static let unknownType = Code(.unknownType)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    /// The dotted path of the offending field, when the problem is one field.
    public var field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    init(decodingError error: any Error) {
        guard let error = error as? DecodingError else {
            self.init(.notJSON, "body is not valid JSON")
            return
        }
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            (codingPath + (last.map { [$0] } ?? [])).map { $0.intValue.map(String.init) ?? $0.stringValue }
                .joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath, key)
            self.init(.missingField, "missing required field '\(field)'", field: field)
        case .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            self.init(.missingField, "field '\(field)' is null, expected \(Self.jsonTypeName(type))", field: field)
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            if field.isEmpty {
                self.init(.wrongType, "body is not a JSON object")
            } else {
                self.init(
                    .wrongType,
                    "field '\(field)' has the wrong type, expected \(Self.jsonTypeName(type))",
                    field: field
                )
            }
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                self.init(.notJSON, "body is not valid JSON")
            } else {
                // Raw-value enums (direction, platform) land here with the offending value.
                let field = path(context.codingPath)
                self.init(.invalidValue, "field '\(field)' has a value outside the contract", field: field)
            }
        @unknown default:
            self.init(.notJSON, "body could not be decoded")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type: "a number"
        case is Bool.Type: "a boolean"
        default: "\(type)"
        }
    }

    public var description: String { message }
}
