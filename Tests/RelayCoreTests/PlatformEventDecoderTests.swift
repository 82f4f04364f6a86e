import Foundation
import RelayCore
import Testing

@Suite("Strict decoding of platform events")
struct PlatformEventDecoderTests {
    let decoder = PlatformEventDecoder()

    func decode(_ json: String) throws(MalformedEventError) -> PlatformEvent {
        try decoder.decode(Array(json.utf8))
    }

    func failure(_ json: String) -> MalformedEventError? {
        do {
            _ = try decode(json)
            return nil
        } catch {
            return error
        }
    }

    @Test("decodes every event type of the contract")
    func everyType() throws {
        let envelope = #""eventId":"e1","callId":"c1","occurredAt":"2026-11-24T10:00:00Z""#
        let bodies: [EventType: String] = [
            .callStarted:
                #"{"type":"callStarted",\#(envelope),"fromNumber":"+15550199999","toNumber":"+15550190000","direction":"inbound","queueId":"q1"}"#,
            .callEnded: #"{"type":"callEnded",\#(envelope),"disconnectType":"client"}"#,
            .wrapUp: #"{"type":"wrapUp",\#(envelope),"wrapUpCode":"RESOLVED","agentId":"a1"}"#,
            .contextUpdate: #"{"type":"contextUpdate",\#(envelope),"newExternalId":"CRM:500999999","reason":"switch"}"#,
            .chatStarted: #"{"type":"chatStarted",\#(envelope),"email":"a@example.com"}"#,
            .emailReceived: #"{"type":"emailReceived",\#(envelope),"fromAddress":"a@example.com","subject":"Hi"}"#,
            .messageReceived: #"{"type":"messageReceived",\#(envelope),"platform":"whatsapp","messagingId":"wa-1"}"#,
        ]
        for type in EventType.allCases {
            let event = try decode(try #require(bodies[type]))
            #expect(event.type == type)
            #expect(event.eventId == "e1")
            #expect(event.callId == "c1")
            #expect(event.occurredAt == Date(timeIntervalSince1970: 1_795_514_400))
        }
    }

    @Test("keeps the fields of a call start and ignores unknown extras")
    func callStartedFields() throws {
        let event = try decode(
            #"{"eventId":"e","type":"callStarted","callId":"abc-123","occurredAt":"2026-11-24T10:00:00.250+01:00","fromNumber":"+15550190000","toNumber":"+15550199999","direction":"outbound","userId":"user-1","customerId":"cust-9","futureField":{"x":1}}"#
        )
        guard case .callStarted(let start) = event.payload else {
            Issue.record("expected callStarted")
            return
        }
        #expect(start.direction == .outbound)
        #expect(start.customerNumber == "+15550199999")
        #expect(start.userId == "user-1")
        #expect(start.customerId == "cust-9")
        #expect(start.queueId == nil)
    }

    @Test(
        "rejects malformed bodies with an error naming what is wrong",
        arguments: [
            ("not json at all", MalformedEventError.Code.notJSON, nil as String?),
            ("[1,2]", .wrongType, nil),
            (#"{"type":"callStarted","callId":"c","occurredAt":"2026-11-24T10:00:00Z"}"#, .missingField, "eventId"),
            (
                #"{"eventId":"e","type":"callStarted","callId":"c","occurredAt":"2026-11-24T10:00:00Z","toNumber":"+1555","direction":"inbound"}"#,
                .missingField, "fromNumber"
            ),
            (
                #"{"eventId":"e","type":"callStarted","callId":"c","occurredAt":"2026-11-24T10:00:00Z","fromNumber":15550199999,"toNumber":"+1555","direction":"inbound"}"#,
                .wrongType, "fromNumber"
            ),
            (
                #"{"eventId":"e","type":"callStarted","callId":"c","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"+1","toNumber":"+1555","direction":"sideways"}"#,
                .invalidValue, "direction"
            ),
            (
                #"{"eventId":"e","type":"callTeleported","callId":"c","occurredAt":"2026-11-24T10:00:00Z"}"#,
                .unknownType, "type"
            ),
            (
                #"{"eventId":"e","type":"callEnded","callId":"","occurredAt":"2026-11-24T10:00:00Z"}"#, .invalidValue,
                "callId"
            ),
            (#"{"eventId":"e","type":"callEnded","callId":"c","occurredAt":"yesterday"}"#, .invalidValue, "occurredAt"),
            (
                #"{"eventId":"e","type":"wrapUp","callId":"c","occurredAt":"2026-11-24T10:00:00Z","wrapUpCode":null}"#,
                .missingField, "wrapUpCode"
            ),
            (
                #"{"eventId":"e","type":"messageReceived","callId":"c","occurredAt":"2026-11-24T10:00:00Z","platform":"myspace","messagingId":"m"}"#,
                .invalidValue, "platform"
            ),
        ]
    )
    func malformed(body: String, code: MalformedEventError.Code, field: String?) throws {
        let error = try #require(failure(body))
        #expect(error.code == code)
        #expect(error.field == field)
        if let field { #expect(error.message.contains(field)) }
    }

    @Test("refuses an oversized body and an overlong callId")
    func limits() throws {
        let strict = PlatformEventDecoder(limits: .init(maxBodyBytes: 200, maxIdLength: 16))
        let big =
            #"{"eventId":"e","type":"callEnded","callId":"c","occurredAt":"2026-11-24T10:00:00Z","pad":""#
            + String(repeating: "x", count: 300) + #""}"#
        #expect(throws: MalformedEventError(.bodyTooLarge, "body is \(big.utf8.count) bytes, over the limit of 200")) {
            try strict.decode(Array(big.utf8))
        }
        let longCall =
            #"{"eventId":"e","type":"callEnded","callId":"\#(String(repeating: "c", count: 17))","occurredAt":"2026-11-24T10:00:00Z"}"#
        do {
            _ = try strict.decode(Array(longCall.utf8))
            Issue.record("an overlong callId was accepted")
        } catch {
            #expect(error.field == "callId")
        }
    }

    @Test("reads what it can of a broken envelope, for the dead-letter record")
    func bestEffort() {
        let known = decoder.bestEffortEnvelope(Array(#"{"callId":"c-7","type":"callStarted"}"#.utf8))
        #expect(known.callId == "c-7")
        #expect(known.type == "callStarted")
        let nothing = decoder.bestEffortEnvelope(Array("garbage".utf8))
        #expect(nothing.callId == nil && nothing.type == nil)
    }
}
