import Foundation

/// Turns a message body in any input shape the relay accepts into a `PlatformEvent`, or into an
/// error that says what is wrong. A drop-in for `PlatformEventDecoder` (same limits, same methods).
///
/// The shape is decided per message from the body's top-level fields, in this order:
/// 1. The relay's envelope (DESIGN.md, "Input"): has `type`, `eventId`, `callId` or `occurredAt`.
///    Decoded by `PlatformEventDecoder`, with exactly its errors.
/// 2. The Amazon EventBridge envelope of a Genesys Cloud detail event: has `detail`, whose
///    `topicName` decides the body's model.
/// 3. The Genesys Cloud notification shape: has `topicName` or `eventBody`.
/// 4. A bare Genesys Cloud detail event body: has `conversationId` or `eventTime`. A bare body does
///    not say its topic; its fields do (`bareTopic`).
/// Anything else is malformed, with a message naming every shape tried and why it did not fit.
/// Mapping onto the relay's events is `GenesysEventMapping`'s, and only its.
public struct InputDecoder: Sendable {
    public var limits: PlatformEventDecoder.Limits

    public init(limits: PlatformEventDecoder.Limits = .init()) {
        self.limits = limits
    }

    /// The input shapes, in the order they are tried.
    enum Shape: String, Sendable, Hashable, CaseIterable {
        case relayEnvelope, genesysEventBridge, genesysNotification, genesysDetailEvent
    }

    public func decode(_ body: [UInt8]) throws(MalformedEventError) -> PlatformEvent {
        guard body.count <= limits.maxBodyBytes else {
            throw MalformedEventError(
                .bodyTooLarge,
                "body is \(body.count) bytes, over the limit of \(limits.maxBodyBytes)"
            )
        }
        let data = Data(body)
        let keys: Set<String>
        if let scanned = TopLevelKeyScanner.keys(of: body) {
            keys = scanned
        } else {
            keys = try Self.decode(TopLevelKeys.self, from: data).keys
        }
        switch Self.shape(of: keys) {
        case .relayEnvelope:
            return try PlatformEventDecoder(limits: limits).decode(body)
        case .genesysEventBridge:
            let topicName = try Self.decode(GenesysEventBridgeTopicProbe.self, from: data).detail.topicName
            return try wrapped(data, topicName: topicName, inBridge: true)
        case .genesysNotification:
            let topicName = try Self.decode(GenesysTopicProbe.self, from: data).topicName
            return try wrapped(data, topicName: topicName, inBridge: false)
        case .genesysDetailEvent:
            switch try Self.bareTopic(keys) {
            case .customerStart:
                return try GenesysEventMapping.event(
                    from: Self.decode(GenesysCustomerStartEvent.self, from: data),
                    at: "",
                    limits: limits
                )
            case .customerEnd:
                return try GenesysEventMapping.event(
                    from: Self.decode(GenesysCustomerEndEvent.self, from: data),
                    at: "",
                    limits: limits
                )
            case .afterCallWork:
                return try GenesysEventMapping.event(
                    from: Self.decode(GenesysAfterCallWorkEvent.self, from: data),
                    at: "",
                    limits: limits
                )
            }
        case nil:
            throw MalformedEventError(
                .unknownType,
                "not a recognised event: tried the relay envelope (no 'type', 'eventId' or 'callId'), "
                    + "a Genesys Cloud detail event (no 'conversationId' or 'eventTime'), "
                    + "its notification shape (no 'topicName' or 'eventBody') "
                    + "and its event-bridge envelope (no 'detail')"
            )
        }
    }

    /// Reads only what it can of a body that failed to decode, for its dead-letter record: the
    /// interaction id (`callId`, or a Genesys event's `conversationId`) and the event type (the
    /// relay's `type`, or a Genesys topic as its `{id}` template).
    public func bestEffortEnvelope(_ body: [UInt8]) -> (callId: String?, type: String?) {
        guard body.count <= limits.maxBodyBytes,
            let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        else { return (nil, nil) }
        func bounded(_ value: Any?) -> String? {
            guard let string = value as? String, !string.isEmpty, string.count <= limits.maxIdLength else { return nil }
            return string
        }
        let keys = Set(object.keys)
        switch Self.shape(of: keys) {
        case .relayEnvelope:
            return PlatformEventDecoder(limits: limits).bestEffortEnvelope(body)
        case .genesysEventBridge, .genesysNotification:
            let notification = (keys.contains("detail") ? object["detail"] : object) as? [String: Any]
            let eventBody = notification?["eventBody"] as? [String: Any]
            var callId = bounded(eventBody?["conversationId"])
            var type: String?
            switch (notification?["topicName"] as? String).map(GenesysTopic.parse) {
            case .known(let topic, let conversationId)?:
                type = topic.template
                if callId == nil { callId = bounded(String(conversationId)) }
            case .otherDetailKind(let kind)?:
                type = bounded(GenesysTopic.conversationPrefix + "{id}." + kind)
            case .other?, nil:
                break
            }
            return (callId, type)
        case .genesysDetailEvent:
            return (bounded(object["conversationId"]), (try? Self.bareTopic(keys))?.template)
        case nil:
            return (nil, nil)
        }
    }

    // MARK: Shapes

    static func shape(of keys: Set<String>) -> Shape? {
        if !keys.isDisjoint(with: ["type", "eventId", "callId", "occurredAt"]) { return .relayEnvelope }
        if keys.contains("detail") { return .genesysEventBridge }
        if !keys.isDisjoint(with: ["topicName", "eventBody"]) { return .genesysNotification }
        if !keys.isDisjoint(with: ["conversationId", "eventTime"]) { return .genesysDetailEvent }
        return nil
    }

    /// Fields only the after-call work (and wrap-up) events have.
    static let wrapUpFields: Set<String> = ["wrapupCode", "wrapupNotes", "wrapupDurationMs"]
    /// Fields only the end events have.
    static let endFields: Set<String> = ["disconnectType", "interactingDurationMs"]
    /// Fields of the other conversation detail topics (user.*, acd.*, flow.*, voicemail.*, outbound,
    /// attributes) that neither customer event has.
    static let otherTopicFields: Set<String> = [
        "userId", "queueId", "flowId", "flowType", "acdOutcome", "outboundCampaignId", "attributes",
        "voicemailDurationMs",
    ]

    /// The topic of a bare detail event body, from its fields:
    /// - a wrap-up field (`wrapupCode`, `wrapupNotes`, `wrapupDurationMs`) → `acw`;
    /// - else a field of another topic (`userId`, `queueId`, `flowId`, …) → not a customer event:
    ///   malformed, naming the field;
    /// - else an end field (`disconnectType`, `interactingDurationMs`) → `customer.end`;
    /// - else → `customer.start`.
    /// Bodies the platform publishes identically under two topics cannot be told apart: a bare
    /// `wrapup` event reads as `acw` (the same wrap-up), a bare `contact` update as a
    /// `customer.start`. Forward bare bodies of these three topics only, or use a wrapped shape.
    static func bareTopic(_ keys: Set<String>) throws(MalformedEventError) -> GenesysTopic {
        if !keys.isDisjoint(with: wrapUpFields) { return .afterCallWork }
        if let marker = keys.intersection(otherTopicFields).sorted().first {
            throw MalformedEventError(
                .unknownType,
                "not a recognised event: a bare Genesys Cloud detail event with field '\(marker)' belongs to "
                    + "another topic than \(Self.knownTopics)"
            )
        }
        if !keys.isDisjoint(with: endFields) { return .customerEnd }
        return .customerStart
    }

    private static var knownTopics: String { GenesysTopic.allCases.map(\.template).joined(separator: ", ") }

    /// A notification, bare or in the event bridge's `detail`: the topic decides the body's model.
    private func wrapped(_ data: Data, topicName: String, inBridge: Bool) throws(MalformedEventError) -> PlatformEvent {
        let topicField = inBridge ? "detail.topicName" : "topicName"
        let bodyPath = inBridge ? "detail.eventBody." : "eventBody."
        let topic: GenesysTopic
        let topicConversationId: Substring
        switch GenesysTopic.parse(topicName) {
        case .known(let known, let conversationId):
            topic = known
            topicConversationId = conversationId
        case .otherDetailKind(let kind):
            throw MalformedEventError(
                .unknownType,
                "unknown topic '\(GenesysTopic.conversationPrefix){id}.\(kind.prefix(40))' in field '\(topicField)' "
                    + "(known: \(Self.knownTopics))",
                field: topicField
            )
        case .other:
            throw MalformedEventError(
                .unknownType,
                "field '\(topicField)' is not a conversation detail event topic (known: \(Self.knownTopics))",
                field: topicField
            )
        }
        let event: PlatformEvent
        switch topic {
        case .customerStart:
            event = try GenesysEventMapping.event(
                from: Self.eventBody(GenesysCustomerStartEvent.self, from: data, inBridge: inBridge),
                at: bodyPath,
                limits: limits
            )
        case .customerEnd:
            event = try GenesysEventMapping.event(
                from: Self.eventBody(GenesysCustomerEndEvent.self, from: data, inBridge: inBridge),
                at: bodyPath,
                limits: limits
            )
        case .afterCallWork:
            event = try GenesysEventMapping.event(
                from: Self.eventBody(GenesysAfterCallWorkEvent.self, from: data, inBridge: inBridge),
                at: bodyPath,
                limits: limits
            )
        }
        guard event.callId == topicConversationId else {
            throw MalformedEventError(
                .invalidValue,
                "field '\(topicField)' names another conversation than '\(bodyPath)conversationId'",
                field: topicField
            )
        }
        return event
    }

    private static func eventBody<Body: Decodable & Sendable>(
        _ type: Body.Type,
        from data: Data,
        inBridge: Bool
    ) throws(MalformedEventError) -> Body {
        if inBridge { return try decode(GenesysEventBridgeEnvelope<Body>.self, from: data).detail.eventBody }
        return try decode(GenesysNotification<Body>.self, from: data).eventBody
    }

    // MARK: Decoding

    private static let jsonDecoder = JSONDecoder()

    private static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(MalformedEventError) -> T {
        do {
            return try jsonDecoder.decode(type, from: data)
        } catch {
            throw malformed(error)
        }
    }

    /// `MalformedEventError(decodingError:)`, with wrong or null objects and arrays named as such
    /// rather than by their Swift type.
    private static func malformed(_ error: any Error) -> MalformedEventError {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        func container(_ type: Any.Type) -> String? {
            switch type {
            case is String.Type, is Int.Type, is Double.Type, is Bool.Type: nil
            case is [Any].Type, is [String].Type: "an array"
            default: "an object"
            }
        }
        switch error as? DecodingError {
        case .typeMismatch(let type, let context)? where !context.codingPath.isEmpty:
            guard let expected = container(type) else { break }
            let field = path(context.codingPath)
            return MalformedEventError(
                .wrongType,
                "field '\(field)' has the wrong type, expected \(expected)",
                field: field
            )
        case .valueNotFound(let type, let context)? where !context.codingPath.isEmpty:
            guard let expected = container(type) else { break }
            let field = path(context.codingPath)
            return MalformedEventError(.missingField, "field '\(field)' is null, expected \(expected)", field: field)
        default:
            break
        }
        return MalformedEventError(decodingError: error)
    }

    /// The names of a JSON object's fields, whatever their values.
    private struct TopLevelKeys: Decodable {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        var keys: Set<String>

        init(from decoder: any Decoder) throws {
            keys = Set(try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue))
        }
    }
}
