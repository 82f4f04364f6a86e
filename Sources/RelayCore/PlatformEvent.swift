public import Foundation

/// One interaction event as the platform publishes it on `platform.events` (DESIGN.md, "Input").
///
/// The envelope fields are on every event; `payload` holds the fields of its type. Decoding is strict
/// (see `PlatformEventDecoder`): what is here has passed every check of the contract.
public struct PlatformEvent: Sendable, Hashable {
    public var eventId: String
    public var callId: String
    public var occurredAt: Date
    public var payload: Payload

    public var type: EventType { payload.type }

    public init(eventId: String, callId: String, occurredAt: Date, payload: Payload) {
        self.eventId = eventId
        self.callId = callId
        self.occurredAt = occurredAt
        self.payload = payload
    }

    public enum Payload: Sendable, Hashable {
        case callStarted(CallStarted)
        case callEnded(CallEnded)
        case wrapUp(WrapUp)
        case contextUpdate(ContextUpdate)
        case chatStarted(ChatStarted)
        case emailReceived(EmailReceived)
        case messageReceived(MessageReceived)

        public var type: EventType {
            switch self {
            case .callStarted: .callStarted
            case .callEnded: .callEnded
            case .wrapUp: .wrapUp
            case .contextUpdate: .contextUpdate
            case .chatStarted: .chatStarted
            case .emailReceived: .emailReceived
            case .messageReceived: .messageReceived
            }
        }
    }
}

public enum EventType: String, Sendable, Hashable, CaseIterable, Codable {
    case callStarted, callEnded, wrapUp, contextUpdate, chatStarted, emailReceived, messageReceived
}

public enum CallDirection: String, Sendable, Hashable, Codable, CaseIterable {
    case inbound, outbound
}

public struct CallStarted: Sendable, Hashable, Decodable {
    public var fromNumber: String
    public var toNumber: String
    public var direction: CallDirection
    public var userId: String?
    public var queueId: String?
    public var customerId: String?
    /// The platform's external contact already linked to this participant, when its event names one:
    /// a hint, not a link (Genesys Cloud detail events carry it as `externalContactId`).
    public var externalContactId: String?

    public init(
        fromNumber: String,
        toNumber: String,
        direction: CallDirection,
        userId: String? = nil,
        queueId: String? = nil,
        customerId: String? = nil,
        externalContactId: String? = nil
    ) {
        self.fromNumber = fromNumber
        self.toNumber = toNumber
        self.direction = direction
        self.userId = userId
        self.queueId = queueId
        self.customerId = customerId
        self.externalContactId = externalContactId
    }

    /// The customer's side of the call: the caller on inbound calls, the dialled party on
    /// click-to-dial (outbound), where `fromNumber` is the contact center's own line.
    public var customerNumber: String {
        direction == .inbound ? fromNumber : toNumber
    }
}

public struct CallEnded: Sendable, Hashable, Decodable {
    public var disconnectType: String?
    /// How long the customer interacted, in milliseconds, when the platform says.
    public var interactingDurationMs: Int?

    public init(disconnectType: String? = nil, interactingDurationMs: Int? = nil) {
        self.disconnectType = disconnectType
        self.interactingDurationMs = interactingDurationMs
    }
}

public struct WrapUp: Sendable, Hashable, Decodable {
    public var wrapUpCode: String
    public var agentId: String?
    public var notes: String?
    /// How long the after-call work took, in milliseconds, when the platform says.
    public var durationMs: Int?
    /// The queue the wrapped-up interaction came through, when the platform says.
    public var queueId: String?

    public init(
        wrapUpCode: String,
        agentId: String? = nil,
        notes: String? = nil,
        durationMs: Int? = nil,
        queueId: String? = nil
    ) {
        self.wrapUpCode = wrapUpCode
        self.agentId = agentId
        self.notes = notes
        self.durationMs = durationMs
        self.queueId = queueId
    }
}

public struct ContextUpdate: Sendable, Hashable, Decodable {
    public var newExternalId: String
    public var reason: String
    public var agentId: String?

    public init(newExternalId: String, reason: String, agentId: String? = nil) {
        self.newExternalId = newExternalId
        self.reason = reason
        self.agentId = agentId
    }
}

public struct ChatStarted: Sendable, Hashable, Decodable {
    public var email: String?
    public var phone: String?
    public var name: String?
    public var queueId: String?
    public var customerId: String?
    /// A hint, as on `CallStarted`.
    public var externalContactId: String?

    public init(
        email: String? = nil,
        phone: String? = nil,
        name: String? = nil,
        queueId: String? = nil,
        customerId: String? = nil,
        externalContactId: String? = nil
    ) {
        self.email = email
        self.phone = phone
        self.name = name
        self.queueId = queueId
        self.customerId = customerId
        self.externalContactId = externalContactId
    }
}

public struct EmailReceived: Sendable, Hashable, Decodable {
    public var fromAddress: String
    public var name: String?
    public var subject: String?
    public var queueId: String?
    public var customerId: String?
    /// A hint, as on `CallStarted`.
    public var externalContactId: String?

    public init(
        fromAddress: String,
        name: String? = nil,
        subject: String? = nil,
        queueId: String? = nil,
        customerId: String? = nil,
        externalContactId: String? = nil
    ) {
        self.fromAddress = fromAddress
        self.name = name
        self.subject = subject
        self.queueId = queueId
        self.customerId = customerId
        self.externalContactId = externalContactId
    }
}

public enum MessagingPlatform: String, Sendable, Hashable, Codable, CaseIterable {
    case whatsapp, facebook, twitter, line, sms, open
    /// Genesys Cloud's own web messaging (Messenger), and two more of its messaging channels.
    case webmessaging, instagram, apple
}

public struct MessageReceived: Sendable, Hashable, Decodable {
    public var platform: MessagingPlatform
    public var messagingId: String
    public var name: String?
    public var queueId: String?
    public var customerId: String?
    /// A hint, as on `CallStarted`.
    public var externalContactId: String?

    public init(
        platform: MessagingPlatform,
        messagingId: String,
        name: String? = nil,
        queueId: String? = nil,
        customerId: String? = nil,
        externalContactId: String? = nil
    ) {
        self.platform = platform
        self.messagingId = messagingId
        self.name = name
        self.queueId = queueId
        self.customerId = customerId
        self.externalContactId = externalContactId
    }
}
