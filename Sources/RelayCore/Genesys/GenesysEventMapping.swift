import Crypto
import Foundation

/// The one place where Genesys Cloud conversation detail events become the relay's own events
/// (DESIGN.md, "Input"). README.md, "Genesys Cloud event shapes", shows the same rules as a table.
///
/// Models (field names and types as published; see GenesysEvent.swift for every source):
/// - `CustomerStartDetailEventTopicCustomerStartEvent`
///   MyPureCloud/platform-client-sdk-go platformclientv2/customerstartdetaileventtopiccustomerstartevent.go
/// - `CustomerEndDetailEventTopicCustomerEndEvent`
///   MyPureCloud/platform-client-sdk-go platformclientv2/customerenddetaileventtopiccustomerendevent.go
/// - `AcwDetailEventTopicAfterCallWorkEvent`
///   MyPureCloud/platform-client-sdk-go platformclientv2/acwdetaileventtopicaftercallworkevent.go
///
/// Every event:
/// - `callId` ← `conversationId` (the interaction id on every channel).
/// - `occurredAt` ← `eventTime` (milliseconds since the epoch).
/// - `eventId` ← none of the three models has an event id, so it is derived: `gen-` and the first
///   128 bits (hex) of SHA-256 over the topic (as its `{id}` template), `conversationId`,
///   `participantId` and `eventTime`. The same event gives the same id whichever shape it came in
///   (bare, notification or event bridge) and however often it is delivered. The event bridge's own
///   `id` is not used: EventBridge makes a new one for every event it is given, so a resent event
///   would look new.
///
/// `customer.start`, by `mediaType`:
/// - `VOICE` → `callStarted`. `direction` is required (`INBOUND`/`OUTBOUND`). `fromNumber` ← `ani`,
///   `toNumber` ← `dnis`, both without their URI scheme (`tel:`, `sip:`; see `phoneAddress`).
///   Inbound, the caller (`ani`) is the customer; outbound, the dialled party (`dnis`) is, which is
///   what `CallStarted.customerNumber` picks. An absent `ani`/`dnis` becomes an empty number, which
///   linking treats as withheld: the call is still correlated.
/// - `CALLBACK` → `callStarted` as for voice, except that the first of `callbackNumbers` (the number
///   the customer asked to be called on) is the customer's side: `fromNumber` inbound, `toNumber`
///   outbound.
/// - `CHAT` → `chatStarted`. The model has no email, phone or name of the customer, so all three
///   stay nil; only the hint is kept.
/// - `EMAIL` → `emailReceived`. `fromAddress` ← the customer's address: `addressFrom`, or
///   `addressTo` when `direction` is `OUTBOUND` (an email the agent started). `subject` ← `subject`.
/// - `MESSAGE` → `messageReceived`. `platform` ← `messageType` (`messagingPlatforms`); `messagingId`
///   ← the customer's address as for email; an SMS address loses a `tel:` scheme.
/// - Any other `mediaType` (COBROWSE, VIDEO, SCREENSHARE, INTERNALMESSAGE, UNKNOWN) is not an
///   interaction the relay links: malformed, naming `mediaType`.
/// - Every start: `externalContactId` → `externalContactId`, a hint only (never `customerId`, which
///   decides where the customer update goes). `userId` and `queueId` are not in the model (the
///   customer starts before routing), so they stay nil.
///
/// `customer.end` → `callEnded` for every media type: `disconnectType` as published (`CLIENT`,
/// `ENDPOINT`, `TRANSFER`, …, upper case), `interactingDurationMs` as published.
///
/// `acw` → `wrapUp`: `wrapUpCode` ← `wrapupCode` (required; the platform sends the wrap-up code's
/// id), `agentId` ← `userId`, `notes` ← `wrapupNotes`, `durationMs` ← `wrapupDurationMs`, `queueId`
/// ← `queueId`.
public enum GenesysEventMapping {
    /// `messageType` → `MessagingPlatform`. Every value of the published enum but `UNKNOWN` has a
    /// platform; `WEBMESSAGING` (Genesys Cloud's own web messenger) is `webmessaging`, not `open`,
    /// which is the Open Messaging channel for third-party platforms.
    public static let messagingPlatforms: [String: MessagingPlatform] = [
        "SMS": .sms, "WHATSAPP": .whatsapp, "FACEBOOK": .facebook, "TWITTER": .twitter, "LINE": .line,
        "OPEN": .open, "WEBMESSAGING": .webmessaging, "INSTAGRAM": .instagram, "APPLE": .apple,
    ]

    /// The `mediaType` values a `customer.start` maps from.
    public static let startMediaTypes = ["VOICE", "CALLBACK", "CHAT", "EMAIL", "MESSAGE"]

    /// The id of an event the platform gave none: stable for the same event, different when the
    /// topic, conversation, participant or time differs.
    public static func eventId(
        topic: GenesysTopic,
        conversationId: String,
        participantId: String?,
        eventTime: Int
    ) -> String {
        // Length-prefixed parts, so no two different tuples hash the same input.
        let input = [topic.template, conversationId, participantId ?? "", String(eventTime)]
            .map { "\($0.utf8.count):\($0)" }.joined()
        let digest = SHA256.hash(data: Array(input.utf8))
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = Array("gen-".utf8)
        for byte in digest.prefix(16) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A phone address as the platform writes it, without its URI: `tel:+15550100` → `+15550100`,
    /// `sip:+15550100@edge;user=phone` → `+15550100` (the user part), parameters (`;ext=…`) dropped.
    /// Anything else is returned trimmed; `PhoneNumber` decides whether it is a possible number.
    public static func phoneAddress(_ raw: String) -> String {
        var text = raw.trimmingWhitespace()
        let lowered = text.prefix(5).lowercased()
        if lowered.hasPrefix("tel:") {
            text = text.dropFirst(4)
        } else if lowered.hasPrefix("sip:") || lowered.hasPrefix("sips:") {
            text = text.dropFirst(lowered.hasPrefix("sips:") ? 5 : 4)
            if let at = text.firstIndex(of: "@") { text = text[..<at] }
        }
        if let semicolon = text.firstIndex(of: ";") { text = text[..<semicolon] }
        return String(text)
    }

    // MARK: The three topics

    /// - Parameter path: where the body sits in the message (`""`, `"eventBody."`,
    ///   `"detail.eventBody."`), so an error names the field as it is in the message.
    static func event(
        from start: GenesysCustomerStartEvent,
        at path: String,
        limits: PlatformEventDecoder.Limits
    ) throws(MalformedEventError) -> PlatformEvent {
        let header = try Header(
            .customerStart,
            conversationId: start.conversationId,
            participantId: start.participantId,
            eventTime: start.eventTime,
            at: path,
            limits: limits
        )
        let hint = nonEmpty(start.externalContactId)
        let payload: PlatformEvent.Payload
        switch start.mediaType {
        case "VOICE", "CALLBACK":
            let direction = try callDirection(start.direction, at: path)
            var from = phoneAddress(start.ani ?? "")
            var to = phoneAddress(start.dnis ?? "")
            if start.mediaType == "CALLBACK", let number = start.callbackNumbers?.first(where: { !$0.isEmpty }) {
                if direction == .inbound { from = phoneAddress(number) } else { to = phoneAddress(number) }
            }
            payload = .callStarted(
                CallStarted(fromNumber: from, toNumber: to, direction: direction, externalContactId: hint)
            )
        case "CHAT":
            payload = .chatStarted(ChatStarted(externalContactId: hint))
        case "EMAIL":
            let address = try customerAddress(start, at: path)
            payload = .emailReceived(
                EmailReceived(fromAddress: address, subject: start.subject, externalContactId: hint)
            )
        case "MESSAGE":
            guard let messageType = start.messageType else { throw missing(path + "messageType") }
            guard let platform = messagingPlatforms[messageType] else {
                let known = messagingPlatforms.keys.sorted().joined(separator: ", ")
                throw MalformedEventError(
                    .invalidValue,
                    "field '\(path)messageType' is '\(messageType.prefix(40))', not a messaging platform the relay knows (known: \(known))",
                    field: path + "messageType"
                )
            }
            var address = try customerAddress(start, at: path)
            if platform == .sms { address = phoneAddress(address) }
            payload = .messageReceived(
                MessageReceived(platform: platform, messagingId: address, externalContactId: hint)
            )
        default:
            throw MalformedEventError(
                .invalidValue,
                "field '\(path)mediaType' is '\(start.mediaType.prefix(40))', not an interaction the relay links (it takes \(startMediaTypes.joined(separator: ", ")))",
                field: path + "mediaType"
            )
        }
        return header.event(payload)
    }

    static func event(
        from end: GenesysCustomerEndEvent,
        at path: String,
        limits: PlatformEventDecoder.Limits
    ) throws(MalformedEventError) -> PlatformEvent {
        let header = try Header(
            .customerEnd,
            conversationId: end.conversationId,
            participantId: end.participantId,
            eventTime: end.eventTime,
            at: path,
            limits: limits
        )
        return header.event(
            .callEnded(
                CallEnded(
                    disconnectType: nonEmpty(end.disconnectType),
                    interactingDurationMs: end.interactingDurationMs
                )
            )
        )
    }

    static func event(
        from acw: GenesysAfterCallWorkEvent,
        at path: String,
        limits: PlatformEventDecoder.Limits
    ) throws(MalformedEventError) -> PlatformEvent {
        let header = try Header(
            .afterCallWork,
            conversationId: acw.conversationId,
            participantId: acw.participantId,
            eventTime: acw.eventTime,
            at: path,
            limits: limits
        )
        guard !acw.wrapupCode.isEmpty else {
            throw MalformedEventError(.invalidValue, "field '\(path)wrapupCode' is empty", field: path + "wrapupCode")
        }
        return header.event(
            .wrapUp(
                WrapUp(
                    wrapUpCode: acw.wrapupCode,
                    agentId: nonEmpty(acw.userId),
                    notes: acw.wrapupNotes,
                    durationMs: acw.wrapupDurationMs,
                    queueId: nonEmpty(acw.queueId)
                )
            )
        )
    }

    // MARK: Parts

    /// What every event has: id, interaction, time.
    private struct Header {
        var eventId: String
        var callId: String
        var occurredAt: Date

        init(
            _ topic: GenesysTopic,
            conversationId: String,
            participantId: String?,
            eventTime: Int,
            at path: String,
            limits: PlatformEventDecoder.Limits
        ) throws(MalformedEventError) {
            let field = path + "conversationId"
            if conversationId.isEmpty {
                throw MalformedEventError(.invalidValue, "field '\(field)' is empty", field: field)
            }
            if conversationId.count > limits.maxIdLength {
                throw MalformedEventError(
                    .invalidValue,
                    "field '\(field)' is \(conversationId.count) characters, over the limit of \(limits.maxIdLength)",
                    field: field
                )
            }
            guard eventTime > 0 else {
                throw MalformedEventError(
                    .invalidValue,
                    "field '\(path)eventTime' is not a time in milliseconds since the epoch",
                    field: path + "eventTime"
                )
            }
            eventId = GenesysEventMapping.eventId(
                topic: topic,
                conversationId: conversationId,
                participantId: participantId,
                eventTime: eventTime
            )
            callId = conversationId
            occurredAt = Date(timeIntervalSince1970: Double(eventTime) / 1000)
        }

        func event(_ payload: PlatformEvent.Payload) -> PlatformEvent {
            PlatformEvent(eventId: eventId, callId: callId, occurredAt: occurredAt, payload: payload)
        }
    }

    /// Required for calls: which side the customer is on depends on it.
    private static func callDirection(_ value: String?, at path: String) throws(MalformedEventError) -> CallDirection {
        switch value {
        case "INBOUND": return .inbound
        case "OUTBOUND": return .outbound
        case nil: throw missing(path + "direction")
        default:
            throw MalformedEventError(
                .invalidValue,
                "field '\(path)direction' is neither INBOUND nor OUTBOUND",
                field: path + "direction"
            )
        }
    }

    /// Email and messaging: the customer wrote (`addressFrom`) unless the agent started it (`OUTBOUND`:
    /// `addressTo`). An absent or `UNKNOWN` direction counts as inbound.
    private static func customerAddress(
        _ start: GenesysCustomerStartEvent,
        at path: String
    ) throws(MalformedEventError) -> String {
        let outbound: Bool
        switch start.direction {
        case "OUTBOUND": outbound = true
        case "INBOUND", "UNKNOWN", nil: outbound = false
        default:
            throw MalformedEventError(
                .invalidValue,
                "field '\(path)direction' is neither INBOUND nor OUTBOUND",
                field: path + "direction"
            )
        }
        let field = path + (outbound ? "addressTo" : "addressFrom")
        guard let address = outbound ? start.addressTo : start.addressFrom else { throw missing(field) }
        let trimmed = String(address.trimmingWhitespace())
        guard !trimmed.isEmpty else {
            throw MalformedEventError(.invalidValue, "field '\(field)' is empty", field: field)
        }
        return trimmed
    }

    private static func missing(_ field: String) -> MalformedEventError {
        MalformedEventError(.missingField, "missing required field '\(field)'", field: field)
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }
}
