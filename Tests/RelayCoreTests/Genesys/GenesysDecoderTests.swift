import Foundation
import RelayCore
import Testing

/// The Genesys Cloud fixtures: bare event bodies of the published models
/// (`CustomerStartDetailEventTopicCustomerStartEvent`, `CustomerEndDetailEventTopicCustomerEndEvent`,
/// `AcwDetailEventTopicAfterCallWorkEvent`), plus one literal event-bridge envelope and one literal
/// notification. The wrapped variants of every bare fixture are built here.
enum GenesysFixture {
    static func bytes(_ name: String) throws -> [UInt8] {
        let url = try #require(
            Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
            "fixture \(name)"
        )
        return Array(try Data(contentsOf: url))
    }

    static func object(_ name: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes(name))) as? [String: Any])
    }

    static func json(_ object: [String: Any]) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// `{"topicName", "version", "eventBody"}`, as the notification service sends it.
    static func notification(_ body: [String: Any], topic: GenesysTopic) throws -> [String: Any] {
        let conversationId = try #require(body["conversationId"] as? String)
        return ["topicName": topic.name(conversationId: conversationId), "version": "2", "eventBody": body]
    }

    /// The Amazon EventBridge envelope around the notification.
    static func bridge(_ body: [String: Any], topic: GenesysTopic) throws -> [String: Any] {
        [
            "version": "0", "id": UUID().uuidString.lowercased(), "detail-type": topic.template,
            "source": "aws.partner/genesys.com/cloud/5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d/identity-relay",
            "account": "123456789012", "time": "2026-11-24T10:00:00Z", "region": "us-east-1", "resources": [String](),
            "detail": try notification(body, topic: topic),
        ]
    }
}

@Suite("Genesys Cloud detail events through the input decoder")
struct GenesysDecoderTests {
    let decoder = InputDecoder()

    func failure(_ body: [UInt8]) -> MalformedEventError? {
        do {
            _ = try decoder.decode(body)
            return nil
        } catch {
            return error
        }
    }

    func failure(_ json: String) -> MalformedEventError? { failure(Array(json.utf8)) }

    struct Case: Sendable, CustomTestStringConvertible {
        var fixture: String
        var topic: GenesysTopic
        var payload: PlatformEvent.Payload
        var testDescription: String { fixture }
    }

    static let cases: [Case] = [
        Case(
            fixture: "customer-start-voice-inbound",
            topic: .customerStart,
            payload: .callStarted(
                CallStarted(
                    fromNumber: "+15550100042",
                    toNumber: "+15550190000",
                    direction: .inbound,
                    externalContactId: "3f9b2c1d-8e7a-4b6c-9d5e-1f2a3b4c5d74"
                )
            )
        ),
        Case(
            fixture: "customer-start-voice-outbound",
            topic: .customerStart,
            payload: .callStarted(
                CallStarted(fromNumber: "+15550190000", toNumber: "+15550100043", direction: .outbound)
            )
        ),
        Case(
            fixture: "customer-start-callback",
            topic: .customerStart,
            payload: .callStarted(CallStarted(fromNumber: "", toNumber: "+15550100044", direction: .outbound))
        ),
        Case(
            fixture: "customer-start-chat",
            topic: .customerStart,
            payload: .chatStarted(ChatStarted(externalContactId: "4a0c3d2e-9f8b-4c7d-8e6f-2a3b4c5d6e85"))
        ),
        Case(
            fixture: "customer-start-email",
            topic: .customerStart,
            payload: .emailReceived(
                EmailReceived(fromAddress: "ada@example.com", subject: "Order 1042 has not arrived")
            )
        ),
        Case(
            fixture: "customer-start-sms",
            topic: .customerStart,
            payload: .messageReceived(MessageReceived(platform: .sms, messagingId: "+15550100045"))
        ),
        Case(
            fixture: "customer-start-whatsapp",
            topic: .customerStart,
            payload: .messageReceived(
                MessageReceived(
                    platform: .whatsapp,
                    messagingId: "+15550100046",
                    externalContactId: "5b1d4e3f-0a9c-4d8e-9f7a-3b4c5d6e7f96"
                )
            )
        ),
        Case(
            fixture: "customer-start-webmessaging",
            topic: .customerStart,
            payload: .messageReceived(
                MessageReceived(platform: .webmessaging, messagingId: "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a41")
            )
        ),
        Case(
            fixture: "customer-start-open",
            topic: .customerStart,
            payload: .messageReceived(MessageReceived(platform: .open, messagingId: "open-user-8841"))
        ),
        Case(
            fixture: "customer-end-voice",
            topic: .customerEnd,
            payload: .callEnded(CallEnded(disconnectType: "CLIENT", interactingDurationMs: 283_000))
        ),
        Case(
            fixture: "acw-voice",
            topic: .afterCallWork,
            payload: .wrapUp(
                WrapUp(
                    wrapUpCode: "1c9d4e2b-6f7a-4b8c-9d0e-1f2a3b4c5d85",
                    agentId: "e7b2c9a1-3d4f-4a5b-8c6d-7e8f9a0b1c63",
                    notes: "Refund issued for order 1042",
                    durationMs: 45_000,
                    queueId: "f8c3d0b2-4e5a-4b6c-9d7e-8f9a0b1c2d74"
                )
            )
        ),
    ]

    @Test(
        "each fixture decodes to its event, bare, as a notification and in the event-bridge envelope",
        arguments: cases
    )
    func fixture(_ testCase: Case) throws {
        let body = try GenesysFixture.object(testCase.fixture)
        let conversationId = try #require(body["conversationId"] as? String)
        let eventTime = try #require(body["eventTime"] as? Int)
        let expected = PlatformEvent(
            eventId: GenesysEventMapping.eventId(
                topic: testCase.topic,
                conversationId: conversationId,
                participantId: body["participantId"] as? String,
                eventTime: eventTime
            ),
            callId: conversationId,
            occurredAt: Date(timeIntervalSince1970: Double(eventTime) / 1000),
            payload: testCase.payload
        )
        let bare = try decoder.decode(GenesysFixture.bytes(testCase.fixture))
        #expect(bare == expected)
        let notification = try decoder.decode(
            GenesysFixture.json(GenesysFixture.notification(body, topic: testCase.topic))
        )
        #expect(notification == expected)
        let bridged = try decoder.decode(GenesysFixture.json(GenesysFixture.bridge(body, topic: testCase.topic)))
        #expect(bridged == expected)
    }

    @Test("the literal event-bridge and notification fixtures decode like their bare bodies")
    func literalWrappedFixtures() throws {
        let bridged = try decoder.decode(GenesysFixture.bytes("bridge-customer-start-voice-inbound"))
        #expect(bridged == (try decoder.decode(GenesysFixture.bytes("customer-start-voice-inbound"))))
        #expect(bridged.type == .callStarted)
        #expect(bridged.callId == "0f3c6f1e-6a8b-4d7e-9c1a-2b5e8d4f7a10")
        #expect(bridged.occurredAt == RFC3339.parse("2026-11-24T10:00:00Z"))
        let notified = try decoder.decode(GenesysFixture.bytes("notification-acw-voice"))
        #expect(notified == (try decoder.decode(GenesysFixture.bytes("acw-voice"))))
        #expect(notified.type == .wrapUp)
    }

    @Test(
        "the customer's number: the caller inbound, the dialled party (dnis) outbound, the callback number on a callback"
    )
    func customerNumber() throws {
        func start(_ fixture: String) throws -> CallStarted {
            guard case .callStarted(let start) = try decoder.decode(GenesysFixture.bytes(fixture)).payload else {
                throw MalformedEventError(.unknownType, "not a call start")
            }
            return start
        }
        #expect(try start("customer-start-voice-inbound").customerNumber == "+15550100042")
        let outbound = try start("customer-start-voice-outbound")
        #expect(outbound.direction == .outbound)
        #expect(outbound.customerNumber == "+15550100043")
        #expect(outbound.fromNumber == "+15550190000", "the contact center's own line")
        #expect(try start("customer-start-callback").customerNumber == "+15550100044")
        // An inbound callback puts the callback number on the caller's side.
        var body = try GenesysFixture.object("customer-start-callback")
        body["direction"] = "INBOUND"
        body["dnis"] = "tel:+15550190000"
        guard case .callStarted(let inbound) = try decoder.decode(GenesysFixture.json(body)).payload else {
            Issue.record("expected a call start")
            return
        }
        #expect(inbound.fromNumber == "+15550100044")
        #expect(inbound.toNumber == "+15550190000")
    }

    @Test(
        "ani and dnis lose their URI scheme before normalisation",
        arguments: [
            ("tel:+15550100042", "+15550100042"),
            ("TEL:+15550100042", "+15550100042"),
            ("tel:+15550100042;ext=12", "+15550100042"),
            ("sip:+15550100042@10.20.30.40;user=phone", "+15550100042"),
            ("sips:+15550100042@edge.example.com", "+15550100042"),
            ("  tel:+15550100042 ", "+15550100042"),
            ("+15550100042", "+15550100042"),
        ]
    )
    func schemes(raw: String, expected: String) throws {
        #expect(GenesysEventMapping.phoneAddress(raw) == expected)
        var body = try GenesysFixture.object("customer-start-voice-inbound")
        body["ani"] = raw
        guard case .callStarted(let start) = try decoder.decode(GenesysFixture.json(body)).payload else {
            Issue.record("expected a call start")
            return
        }
        #expect(start.fromNumber == expected)
        #expect(PhoneNumber(normalizing: start.customerNumber)?.e164 == "+15550100042")
    }

    @Test("a withheld or absent caller still starts the call; linking sees no possible number")
    func withheldCaller() throws {
        var body = try GenesysFixture.object("customer-start-voice-inbound")
        body["ani"] = "sip:anonymous@anonymous.invalid"
        guard case .callStarted(let withheld) = try decoder.decode(GenesysFixture.json(body)).payload else {
            Issue.record("expected a call start")
            return
        }
        #expect(PhoneNumber(normalizing: withheld.customerNumber) == nil)
        body["ani"] = nil
        guard case .callStarted(let absent) = try decoder.decode(GenesysFixture.json(body)).payload else {
            Issue.record("expected a call start")
            return
        }
        #expect(absent.fromNumber == "")
    }

    @Test("the derived event id is stable, and differs with the topic, participant or time")
    func derivedEventId() throws {
        let bytes = try GenesysFixture.bytes("customer-start-voice-inbound")
        let first = try decoder.decode(bytes)
        #expect(first.eventId == (try InputDecoder().decode(bytes)).eventId)
        // Pinned: a change here changes every Genesys event's id, and redeliveries across the change
        // would no longer be recognised as duplicates.
        #expect(first.eventId == "gen-\(Self.pinnedInboundStartDigest)")
        #expect(first.eventId.count == 36)

        var body = try GenesysFixture.object("customer-start-voice-inbound")
        body["participantId"] = "00000000-0000-4000-8000-000000000000"
        let otherParticipant = try decoder.decode(GenesysFixture.json(body))
        body = try GenesysFixture.object("customer-start-voice-inbound")
        body["eventTime"] = 1_795_514_400_001
        let otherTime = try decoder.decode(GenesysFixture.json(body))
        body = try GenesysFixture.object("customer-start-voice-inbound")
        body["sessionId"] = "ffffffff-ffff-4fff-bfff-ffffffffffff"
        body["provider"] = "Other"
        let otherUnhashedFields = try decoder.decode(GenesysFixture.json(body))
        #expect(Set([first.eventId, otherParticipant.eventId, otherTime.eventId]).count == 3)
        #expect(otherUnhashedFields.eventId == first.eventId)
        #expect(
            GenesysEventMapping.eventId(topic: .customerEnd, conversationId: "c", participantId: "p", eventTime: 1)
                != GenesysEventMapping.eventId(
                    topic: .customerStart,
                    conversationId: "c",
                    participantId: "p",
                    eventTime: 1
                )
        )
        // Length-prefixed parts: moving text between conversation and participant changes the id.
        #expect(
            GenesysEventMapping.eventId(topic: .customerStart, conversationId: "ab", participantId: "c", eventTime: 1)
                != GenesysEventMapping.eventId(
                    topic: .customerStart,
                    conversationId: "a",
                    participantId: "bc",
                    eventTime: 1
                )
        )
    }

    static let pinnedInboundStartDigest = "c8920183955ab66073da26b9449055e0"

    @Test("the relay's own envelope still decodes, each type to its event, and a broken one names what is wrong")
    func relayEnvelope() throws {
        let envelope = #""eventId":"e1","callId":"c1","occurredAt":"2026-11-24T10:00:00Z""#
        let occurredAt = Date(timeIntervalSince1970: 1_795_514_400)  // 2026-11-24T10:00:00Z
        let expected: [(body: String, payload: PlatformEvent.Payload)] = [
            (
                #"{"type":"callStarted",\#(envelope),"fromNumber":"+15550199999","toNumber":"+15550190000","direction":"inbound","queueId":"q1"}"#,
                .callStarted(
                    CallStarted(
                        fromNumber: "+15550199999",
                        toNumber: "+15550190000",
                        direction: .inbound,
                        queueId: "q1"
                    )
                )
            ),
            (
                #"{"type":"callEnded",\#(envelope),"disconnectType":"client"}"#,
                .callEnded(CallEnded(disconnectType: "client"))
            ),
            (
                #"{"type":"wrapUp",\#(envelope),"wrapUpCode":"RESOLVED","agentId":"a1"}"#,
                .wrapUp(WrapUp(wrapUpCode: "RESOLVED", agentId: "a1"))
            ),
            (
                #"{"type":"contextUpdate",\#(envelope),"newExternalId":"CRM:500999999","reason":"switch"}"#,
                .contextUpdate(ContextUpdate(newExternalId: "CRM:500999999", reason: "switch"))
            ),
            (
                #"{"type":"chatStarted",\#(envelope),"email":"a@example.com"}"#,
                .chatStarted(ChatStarted(email: "a@example.com"))
            ),
            (
                #"{"type":"emailReceived",\#(envelope),"fromAddress":"a@example.com","subject":"Hi"}"#,
                .emailReceived(EmailReceived(fromAddress: "a@example.com", subject: "Hi"))
            ),
            (
                #"{"type":"messageReceived",\#(envelope),"platform":"whatsapp","messagingId":"wa-1"}"#,
                .messageReceived(MessageReceived(platform: .whatsapp, messagingId: "wa-1"))
            ),
        ]
        for (body, payload) in expected {
            #expect(
                try decoder.decode(Array(body.utf8))
                    == PlatformEvent(eventId: "e1", callId: "c1", occurredAt: occurredAt, payload: payload)
            )
        }
        let broken: [(body: String, message: String)] = [
            (
                #"{"eventId":"e","type":"callStarted","callId":"c","occurredAt":"2026-11-24T10:00:00Z","toNumber":"+1555","direction":"inbound"}"#,
                "missing required field 'fromNumber'"
            ),
            (
                #"{"type":"callStarted","callId":"c","occurredAt":"2026-11-24T10:00:00Z"}"#,
                "missing required field 'eventId'"
            ),
            (
                #"{"eventId":"e","type":"callTeleported","callId":"c","occurredAt":"2026-11-24T10:00:00Z"}"#,
                "unknown event type 'callTeleported' (known: callStarted, callEnded, wrapUp, contextUpdate, chatStarted, emailReceived, messageReceived)"
            ),
            ("\u{FF}\u{FE}garbage", "body is not valid JSON"),
            ("[1,2]", "body is not a JSON object"),
        ]
        for (body, message) in broken {
            #expect(failure(body)?.message == message, "\(body)")
        }
    }

    @Test(
        "a body of no known shape is malformed, naming every shape tried",
        arguments: [#"{"hello":"world"}"#, "{}", #"{"id":"x","detail-type":"y"}"#]
    )
    func junk(_ body: String) throws {
        let error = try #require(failure(body))
        #expect(error.code == .unknownType)
        #expect(error.field == nil)
        #expect(error.message.hasPrefix("not a recognised event: tried "))
        for shape in [
            "the relay envelope", "a Genesys Cloud detail event", "its notification shape", "its event-bridge envelope",
        ] {
            #expect(error.message.contains(shape))
        }
    }

    @Test("an enveloped event of an unknown topic is malformed and names the topic, without the conversation id")
    func unknownTopic() throws {
        var envelope = try GenesysFixture.object("bridge-customer-start-voice-inbound")
        var detail = try #require(envelope["detail"] as? [String: Any])
        detail["topicName"] = "v2.detail.events.conversation.0f3c6f1e-6a8b-4d7e-9c1a-2b5e8d4f7a10.user.start"
        envelope["detail"] = detail
        let error = try #require(failure(GenesysFixture.json(envelope)))
        #expect(error.code == .unknownType)
        #expect(error.field == "detail.topicName")
        #expect(error.message.contains("'v2.detail.events.conversation.{id}.user.start'"))
        #expect(error.message.contains("v2.detail.events.conversation.{id}.customer.start"))
        #expect(!error.message.contains("0f3c6f1e"))
        #expect(
            decoder.bestEffortEnvelope(try GenesysFixture.json(envelope)).type
                == "v2.detail.events.conversation.{id}.user.start"
        )

        detail["topicName"] = "v2.users.e7b2c9a1-3d4f-4a5b-8c6d-7e8f9a0b1c63.presence"
        envelope["detail"] = detail
        let other = try #require(failure(GenesysFixture.json(envelope)))
        #expect(other.code == .unknownType)
        #expect(other.field == "detail.topicName")
        #expect(other.message.contains("not a conversation detail event topic"))
        #expect(!other.message.contains("e7b2c9a1"))

        let notification =
            #"{"topicName":"v2.detail.events.conversation.c-1.flow.start","eventBody":{"conversationId":"c-1"}}"#
        let flow = try #require(failure(notification))
        #expect(flow.field == "topicName")
        #expect(flow.message.contains("'v2.detail.events.conversation.{id}.flow.start'"))
    }

    static let voiceStart =
        #""eventTime":1795514400000,"conversationId":"c-1","participantId":"p-1","mediaType":"VOICE","direction":"INBOUND","ani":"tel:+15550100042","dnis":"tel:+15550190000""#
    static let acwTopic = "v2.detail.events.conversation.c-1.acw"
    static let startTopic = "v2.detail.events.conversation.c-1.customer.start"

    @Test(
        "a recognised shape with a missing or invalid field names the field where it is in the message",
        arguments: [
            (
                #"{"eventTime":1795514400000,"mediaType":"VOICE","direction":"INBOUND","ani":"tel:+1555"}"#,
                MalformedEventError.Code.missingField, "conversationId"
            ),
            (
                #"{"detail":{"topicName":"\#(acwTopic)","eventBody":{"eventTime":1795514745000,"conversationId":"c-1","userId":"u"}}}"#,
                .missingField, "detail.eventBody.wrapupCode"
            ),
            (
                #"{"topicName":"\#(startTopic)","eventBody":{\#(voiceStart.replacingOccurrences(of: "1795514400000", with: "\"yesterday\""))}}"#,
                .wrongType, "eventBody.eventTime"
            ),
            (
                #"{\#(voiceStart.replacingOccurrences(of: #","direction":"INBOUND""#, with: ""))}"#, .missingField,
                "direction"
            ),
            (#"{\#(voiceStart.replacingOccurrences(of: "INBOUND", with: "SIDEWAYS"))}"#, .invalidValue, "direction"),
            (#"{\#(voiceStart.replacingOccurrences(of: "VOICE", with: "VIDEO"))}"#, .invalidValue, "mediaType"),
            (
                #"{\#(voiceStart.replacingOccurrences(of: "\"mediaType\":\"VOICE\",", with: ""))}"#, .missingField,
                "mediaType"
            ),
            (
                #"{\#(voiceStart.replacingOccurrences(of: "VOICE", with: "MESSAGE")),"addressFrom":"+1555","messageType":"UNKNOWN"}"#,
                .invalidValue, "messageType"
            ),
            (
                #"{\#(voiceStart.replacingOccurrences(of: "VOICE", with: "MESSAGE")),"addressFrom":"+1555"}"#,
                .missingField, "messageType"
            ),
            (#"{\#(voiceStart.replacingOccurrences(of: "VOICE", with: "EMAIL"))}"#, .missingField, "addressFrom"),
            (
                #"{\#(voiceStart.replacingOccurrences(of: "VOICE", with: "EMAIL")),"addressFrom":"  "}"#, .invalidValue,
                "addressFrom"
            ),
            (
                #"{\#(voiceStart.replacingOccurrences(of: "VOICE", with: "EMAIL").replacingOccurrences(of: "INBOUND", with: "OUTBOUND")),"addressFrom":"a@example.com"}"#,
                .missingField, "addressTo"
            ),
            (#"{\#(voiceStart.replacingOccurrences(of: "\"c-1\"", with: "\"\""))}"#, .invalidValue, "conversationId"),
            (#"{\#(voiceStart.replacingOccurrences(of: "1795514400000", with: "0"))}"#, .invalidValue, "eventTime"),
            (#"{"detail":"v2.detail.events.conversation.c-1.acw"}"#, .wrongType, "detail"),
            (#"{"detail":{"eventBody":{}}}"#, .missingField, "detail.topicName"),
            (#"{"detail":{"topicName":"\#(startTopic)","eventBody":null}}"#, .missingField, "detail.eventBody"),
            (#"{"detail":{"topicName":"\#(startTopic)","eventBody":[1]}}"#, .wrongType, "detail.eventBody"),
            (#"{"topicName":"\#(startTopic)"}"#, .missingField, "eventBody"),
            (
                #"{"topicName":"\#(startTopic)","eventBody":{\#(voiceStart),"callbackNumbers":"+1555"}}"#, .wrongType,
                "eventBody.callbackNumbers"
            ),
            (
                #"{"detail":{"topicName":"\#(acwTopic)","eventBody":{"eventTime":1795514745000,"conversationId":"c-1","wrapupCode":""}}}"#,
                .invalidValue, "detail.eventBody.wrapupCode"
            ),
            (
                #"{"detail":{"topicName":"v2.detail.events.conversation.c-2.customer.start","eventBody":{\#(voiceStart)}}}"#,
                .invalidValue, "detail.topicName"
            ),
        ]
    )
    func fieldErrors(body: String, code: MalformedEventError.Code, field: String) throws {
        let error = try #require(failure(body))
        #expect(error.code == code, "\(error.message)")
        #expect(error.field == field, "\(error.message)")
        #expect(error.message.contains("'\(field)'"), "\(error.message)")
    }

    @Test("a bare body's fields decide its topic; bare bodies of other topics are not taken for customer events")
    func bareTopics() throws {
        // user.start: the customer fields plus userId and queueId.
        let userStart = #"{\#(Self.voiceStart),"userId":"u-1","queueId":"q-1"}"#
        let error = try #require(failure(userStart))
        #expect(error.code == .unknownType)
        #expect(error.message.contains("'queueId'"))
        // user.end and flow.end have disconnectType, as customer.end does.
        #expect(failure(#"{\#(Self.voiceStart),"disconnectType":"PEER","userId":"u-1"}"#)?.code == .unknownType)
        #expect(
            failure(#"{\#(Self.voiceStart),"disconnectType":"PEER","flowId":"f-1","flowType":"INBOUNDCALL"}"#)?.code
                == .unknownType
        )
        // The wrapup topic's body (acw without userId) is the same wrap-up.
        let wrapup = try decoder.decode(
            Array(#"{"eventTime":1795514745000,"conversationId":"c-1","queueId":"q-1","wrapupCode":"w-1"}"#.utf8)
        )
        #expect(wrapup.payload == .wrapUp(WrapUp(wrapUpCode: "w-1", queueId: "q-1")))
        #expect(
            try decoder.decode(Array(#"{\#(Self.voiceStart),"interactingDurationMs":1000}"#.utf8)).type == .callEnded
        )
        #expect(try decoder.decode(Array(#"{\#(Self.voiceStart)}"#.utf8)).type == .callStarted)
    }

    @Test(
        "messageType maps onto the messaging platform",
        arguments: GenesysEventMapping.messagingPlatforms.sorted { $0.key < $1.key }
    )
    func messageTypes(_ entry: (key: String, value: MessagingPlatform)) throws {
        var body = try GenesysFixture.object("customer-start-whatsapp")
        body["messageType"] = entry.key
        guard case .messageReceived(let message) = try decoder.decode(GenesysFixture.json(body)).payload else {
            Issue.record("expected a message")
            return
        }
        #expect(message.platform == entry.value)
        #expect(MessagingPlatform(rawValue: entry.key.lowercased()) == entry.value)
    }

    @Test("an outbound email or message is the customer's address the agent wrote to")
    func outboundAddress() throws {
        var body = try GenesysFixture.object("customer-start-email")
        body["direction"] = "OUTBOUND"
        body["addressFrom"] = "support@example.com"
        body["addressTo"] = "ada@example.com"
        guard case .emailReceived(let email) = try decoder.decode(GenesysFixture.json(body)).payload else {
            Issue.record("expected an email")
            return
        }
        #expect(email.fromAddress == "ada@example.com")
        var sms = try GenesysFixture.object("customer-start-sms")
        sms["direction"] = "OUTBOUND"
        sms["addressTo"] = "tel:+15550100047"
        guard case .messageReceived(let message) = try decoder.decode(GenesysFixture.json(sms)).payload else {
            Issue.record("expected a message")
            return
        }
        #expect(message.messagingId == "+15550100047")
    }

    @Test("the size limit comes before any parsing, and ids keep their limit")
    func limits() throws {
        let strict = InputDecoder(limits: .init(maxBodyBytes: 200, maxIdLength: 16))
        let big = Array(repeating: UInt8(ascii: "x"), count: 201)
        #expect(throws: MalformedEventError(.bodyTooLarge, "body is 201 bytes, over the limit of 200")) {
            try strict.decode(big)
        }
        let longId =
            #"{"eventTime":1795514400000,"conversationId":"\#(String(repeating: "c", count: 17))","mediaType":"CHAT"}"#
        do {
            _ = try strict.decode(Array(longId.utf8))
            Issue.record("an overlong conversationId was accepted")
        } catch {
            #expect(error.field == "conversationId")
        }
    }

    @Test("reads what it can of a broken body of any shape, for the dead-letter record")
    func bestEffort() throws {
        let bridged = decoder.bestEffortEnvelope(try GenesysFixture.bytes("bridge-customer-start-voice-inbound"))
        #expect(bridged.callId == "0f3c6f1e-6a8b-4d7e-9c1a-2b5e8d4f7a10")
        #expect(bridged.type == "v2.detail.events.conversation.{id}.customer.start")
        let bare = decoder.bestEffortEnvelope(Array(#"{"conversationId":"c-9","wrapupCode":null}"#.utf8))
        #expect(bare.callId == "c-9")
        #expect(bare.type == "v2.detail.events.conversation.{id}.acw")
        let topicOnly = decoder.bestEffortEnvelope(
            Array(#"{"topicName":"v2.detail.events.conversation.c-8.customer.end"}"#.utf8)
        )
        #expect(topicOnly.callId == "c-8")
        #expect(topicOnly.type == "v2.detail.events.conversation.{id}.customer.end")
        let relay = decoder.bestEffortEnvelope(Array(#"{"callId":"c-7","type":"callStarted"}"#.utf8))
        #expect(relay.callId == "c-7" && relay.type == "callStarted")
        let nothing = decoder.bestEffortEnvelope(Array("garbage".utf8))
        #expect(nothing.callId == nil && nothing.type == nil)
    }
}
