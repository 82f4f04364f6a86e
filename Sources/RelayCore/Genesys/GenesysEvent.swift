// Genesys Cloud conversation detail events, as the platform publishes them: the bodies of three
// topics, and the two wrappers they travel in. Only the fields the relay reads are declared; every
// name and type is the published one. Unknown extra fields are ignored, as for the relay envelope.
//
// The published models (Genesys Cloud Platform API client SDKs, generated from the API's schema):
//   v2.detail.events.conversation.{id}.customer.start — CustomerStartDetailEventTopicCustomerStartEvent
//     MyPureCloud/platform-client-sdk-go        platformclientv2/customerstartdetaileventtopiccustomerstartevent.go (188.0.0)
//     MyPureCloud/platform-client-sdk-java      build/docs/CustomerStartDetailEventTopicCustomerStartEvent.md
//   v2.detail.events.conversation.{id}.customer.end — CustomerEndDetailEventTopicCustomerEndEvent
//     MyPureCloud/platform-client-sdk-go        platformclientv2/customerenddetaileventtopiccustomerendevent.go (188.0.0)
//     MyPureCloud/platform-client-sdk-java      build/docs/CustomerEndDetailEventTopicCustomerEndEvent.md
//   v2.detail.events.conversation.{id}.acw — AcwDetailEventTopicAfterCallWorkEvent
//     MyPureCloud/platform-client-sdk-go        platformclientv2/acwdetaileventtopicaftercallworkevent.go (188.0.0)
//     MyPureCloud/platform-client-sdk-java      build/docs/AcwDetailEventTopicAfterCallWorkEvent.md
//
// Every property of those models is optional in the schema; the ones the mapping cannot do without
// (conversationId, eventTime, mediaType, wrapupCode) are required here, so their absence is named.
// None of the three has an event id, and the time is `eventTime`, milliseconds since the epoch.
//
// Wrappers:
// - The notification shape `{"topicName", "version", "eventBody"}`: what the notification service
//   sends, and what the event bridge puts in `detail`.
// - The Amazon EventBridge envelope `{"version":"0", "id", "detail-type", "source":
//   "aws.partner/genesys.com/cloud/{orgId}/{suffix}", "account", "time", "region", "resources",
//   "detail": {notification}}` (AWS: "AWS service event metadata"; `detail-type` is the topic with
//   `{id}` in place of the conversation id, `detail.topicName` the topic itself).

/// The three conversation detail event topics the relay reads.
public enum GenesysTopic: String, Sendable, Hashable, CaseIterable {
    case customerStart = "customer.start"
    case customerEnd = "customer.end"
    case afterCallWork = "acw"

    static let conversationPrefix = "v2.detail.events.conversation."

    /// The topic as the platform documents it, `v2.detail.events.conversation.{id}.customer.start`.
    public var template: String { Self.conversationPrefix + "{id}." + rawValue }

    /// The topic name for one conversation.
    public func name(conversationId: String) -> String { Self.conversationPrefix + conversationId + "." + rawValue }

    /// What a topic name says: a conversation detail topic has the form
    /// `v2.detail.events.conversation.{conversationId}.{kind}`, where the id (a UUID) has no dot.
    enum Parsed: Equatable {
        case known(GenesysTopic, conversationId: Substring)
        /// A conversation detail topic of another kind (`user.start`, `acd.end`, …).
        case otherDetailKind(Substring)
        /// Not a conversation detail topic at all.
        case other
    }

    static func parse(_ topicName: String) -> Parsed {
        guard topicName.hasPrefix(conversationPrefix) else { return .other }
        let rest = topicName.dropFirst(conversationPrefix.count)
        guard let dot = rest.firstIndex(of: "."), dot != rest.startIndex else { return .other }
        let kind = rest[rest.index(after: dot)...]
        guard let topic = GenesysTopic(rawValue: String(kind)) else { return .otherDetailKind(kind) }
        return .known(topic, conversationId: rest[..<dot])
    }
}

/// `CustomerStartDetailEventTopicCustomerStartEvent`: a customer joined the conversation.
struct GenesysCustomerStartEvent: Decodable, Sendable {
    var eventTime: Int
    var conversationId: String
    var participantId: String?
    var mediaType: String
    var externalContactId: String?
    var direction: String?
    var ani: String?
    var dnis: String?
    var addressTo: String?
    var addressFrom: String?
    var callbackNumbers: [String]?
    var subject: String?
    var messageType: String?
}

/// `CustomerEndDetailEventTopicCustomerEndEvent`: the customer left the conversation.
struct GenesysCustomerEndEvent: Decodable, Sendable {
    var eventTime: Int
    var conversationId: String
    var participantId: String?
    var disconnectType: String?
    var interactingDurationMs: Int?
}

/// `AcwDetailEventTopicAfterCallWorkEvent`: an agent finished after-call work with a wrap-up code.
struct GenesysAfterCallWorkEvent: Decodable, Sendable {
    var eventTime: Int
    var conversationId: String
    var participantId: String?
    var userId: String?
    var queueId: String?
    var wrapupCode: String
    var wrapupNotes: String?
    var wrapupDurationMs: Int?
}

/// The notification shape: `{"topicName", "version", "eventBody"}` (`version` is not read).
struct GenesysNotification<Body: Decodable & Sendable>: Decodable, Sendable {
    var topicName: String
    var eventBody: Body
}

/// The Amazon EventBridge envelope around a notification; only `detail` is read.
struct GenesysEventBridgeEnvelope<Body: Decodable & Sendable>: Decodable, Sendable {
    var detail: GenesysNotification<Body>
}

/// Just the topic of a wrapped event, to choose the body's model.
struct GenesysTopicProbe: Decodable, Sendable {
    var topicName: String
}

struct GenesysEventBridgeTopicProbe: Decodable, Sendable {
    var detail: GenesysTopicProbe
}
