import Foundation
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Testing

/// Genesys Cloud conversation detail events, as its event bridge forwards them, through the whole
/// relay: the same conversation gives the same outputs as in the relay's own envelope.
@Suite("Genesys Cloud events end to end", .stopsRelays)
struct GenesysEndToEndTests {
    static let org = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
    static let agent = "e7b2c9a1-3d4f-4a5b-8c6d-7e8f9a0b1c63"
    static let queue = "f8c3d0b2-4e5a-4b6c-9d7e-8f9a0b1c2d74"
    static let wrapupCode = "1c9d4e2b-6f7a-4b8c-9d0e-1f2a3b4c5d85"

    /// A detail event in its Amazon EventBridge envelope.
    static func bridged(_ kind: String, conversationId: String, eventBody: String) -> [UInt8] {
        Array(
            #"{"version":"0","id":"\#(UUID().uuidString.lowercased())","detail-type":"v2.detail.events.conversation.{id}.\#(kind)","source":"aws.partner/genesys.com/cloud/\#(org)/identity-relay","account":"123456789012","time":"2026-11-24T10:00:00Z","region":"us-east-1","resources":[],"detail":{"topicName":"v2.detail.events.conversation.\#(conversationId).\#(kind)","version":"2","eventBody":\#(eventBody)}}"#
                .utf8
        )
    }

    /// `CustomerStartDetailEventTopicCustomerStartEvent`, an inbound call at 2026-11-24T10:00:00Z.
    static func customerStart(_ conversationId: String, customer: String = "+15550100042") -> String {
        #"{"eventTime":1795514400000,"conversationId":"\#(conversationId)","participantId":"7d2a9e44-1b3c-4f5d-8e6a-9c0b1d2e3f41","sessionId":"a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c52","mediaType":"VOICE","provider":"Edge","direction":"INBOUND","ani":"tel:\#(customer)","dnis":"tel:+15550190000","divisionId":"9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c85"}"#
    }

    /// `CustomerEndDetailEventTopicCustomerEndEvent`, at 10:05:00Z.
    static func customerEnd(_ conversationId: String) -> String {
        #"{"eventTime":1795514700000,"conversationId":"\#(conversationId)","participantId":"7d2a9e44-1b3c-4f5d-8e6a-9c0b1d2e3f41","sessionId":"a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c52","disconnectType":"CLIENT","mediaType":"VOICE","provider":"Edge","direction":"INBOUND","ani":"tel:+15550100042","dnis":"tel:+15550190000","interactingDurationMs":283000}"#
    }

    /// `AcwDetailEventTopicAfterCallWorkEvent`, at 10:05:45Z.
    static func afterCallWork(_ conversationId: String) -> String {
        #"{"eventTime":1795514745000,"conversationId":"\#(conversationId)","participantId":"6a1f8bdd-0e2f-4c4a-9b5d-8f9e0a1b2c41","sessionId":"d0e1f2a3-4b5c-4d6e-9f7a-9b0c1d2e3f52","mediaType":"VOICE","provider":"Edge","direction":"INBOUND","userId":"\#(agent)","queueId":"\#(queue)","wrapupCode":"\#(wrapupCode)","wrapupNotes":"Refund issued","wrapupDurationMs":45000}"#
    }

    /// A detail event in the notification shape (`topicName`, `version`, `eventBody`).
    static func notification(_ kind: String, conversationId: String, eventBody: String) -> [UInt8] {
        Array(
            #"{"topicName":"v2.detail.events.conversation.\#(conversationId).\#(kind)","version":"2","eventBody":\#(eventBody)}"#
                .utf8
        )
    }

    @Test(
        "a whole conversation in each Genesys shape gives the same customer update and webhook as in the relay envelope"
    )
    func sameOutputs() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        let bridgedCall = UUID().uuidString.lowercased()
        let notifiedCall = UUID().uuidString.lowercased()
        let bareCall = UUID().uuidString.lowercased()
        let relayCall = UUID().uuidString.lowercased()

        try await relay.publish(
            [
                Self.bridged("customer.start", conversationId: bridgedCall, eventBody: Self.customerStart(bridgedCall)),
                Self.bridged("customer.end", conversationId: bridgedCall, eventBody: Self.customerEnd(bridgedCall)),
                Self.bridged("acw", conversationId: bridgedCall, eventBody: Self.afterCallWork(bridgedCall)),
                // The same start again, bare this time: the same derived event id, so a duplicate.
                Array(Self.customerStart(bridgedCall).utf8),
                Self.notification(
                    "customer.start",
                    conversationId: notifiedCall,
                    eventBody: Self.customerStart(notifiedCall)
                ),
                Self.notification(
                    "customer.end",
                    conversationId: notifiedCall,
                    eventBody: Self.customerEnd(notifiedCall)
                ),
                Self.notification("acw", conversationId: notifiedCall, eventBody: Self.afterCallWork(notifiedCall)),
                Array(Self.customerStart(bareCall).utf8),
                Array(Self.customerEnd(bareCall).utf8),
                Array(Self.afterCallWork(bareCall).utf8),
            ],
            routingKey: "genesys"
        )
        try await relay.publish([
            callStartedBody(eventId: "r-start", callId: relayCall, from: "+15550100042", to: "+15550190000"),
            Array(
                #"{"eventId":"r-end","type":"callEnded","callId":"\#(relayCall)","occurredAt":"2026-11-24T10:05:00Z","disconnectType":"CLIENT"}"#
                    .utf8
            ),
            Array(
                #"{"eventId":"r-wrap","type":"wrapUp","callId":"\#(relayCall)","occurredAt":"2026-11-24T10:05:45Z","wrapUpCode":"\#(Self.wrapupCode)","agentId":"\#(Self.agent)","queueId":"\#(Self.queue)"}"#
                    .utf8
            ),
        ])

        _ = try await relay.platform.waitForCustomerUpdates(count: 4, timeout: .seconds(15))
        _ = try await relay.platform.waitForWebhooks(count: 4, timeout: .seconds(15))
        try await eventually { relay.app.pipeline.acknowledgedCount == 13 }
        try await Task.sleep(for: .milliseconds(300))  // time for another output, were there one
        // A duplicate may send its effects again (at least once), always under the same keys: count
        // what is distinct.
        let updates = relay.platform.customerUpdates
        let webhooks = relay.platform.webhooks
        let calls = [bridgedCall, notifiedCall, bareCall, relayCall]
        #expect(Set(updates.compactMap(\.idempotencyKey)).count == 4)
        #expect(Set(webhooks.compactMap(\.id)) == Set(calls.map { PostCallWebhook.webhookID(callId: $0) }))
        #expect(try await relay.deadLetterCount() == 0)

        // Customer update: the same external id (and so the same customer) from every shape.
        let expected = relay.expectedPhoneID("+15550100042")
        #expect(updates.allSatisfy { $0.externalId == expected })
        #expect(Set(updates.map(\.customerId)).count == 1)
        #expect(!updates.contains { $0.body.contains("+1555") })

        // Post-call webhook: equal payloads but for the call id.
        func payload(_ callId: String) throws -> [String: Any] {
            let webhook = try #require(webhooks.first { $0.id == PostCallWebhook.webhookID(callId: callId) })
            var object = try #require(try JSONSerialization.jsonObject(with: Data(webhook.body)) as? [String: Any])
            #expect(object.removeValue(forKey: "callId") as? String == callId)
            return object
        }
        let fromRelay = try payload(relayCall)
        for call in [bridgedCall, notifiedCall, bareCall] {
            let fromGenesys = try payload(call)
            #expect(NSDictionary(dictionary: fromGenesys).isEqual(to: fromRelay), "\(fromGenesys) vs \(fromRelay)")
            #expect(fromGenesys["externalId"] as? String == expected)
            #expect(fromGenesys["handleTimeSeconds"] as? Int == 300)
            #expect(fromGenesys["afterCallWorkSeconds"] as? Int == 45)
            #expect(fromGenesys["wrapUpCode"] as? String == Self.wrapupCode)
            #expect(fromGenesys["disconnectType"] as? String == "CLIENT")
            // Only the after-call work event names the queue and the agent.
            #expect(fromGenesys["agentId"] as? String == Self.agent)
            #expect(fromGenesys["queueId"] as? String == Self.queue)
            #expect(fromGenesys["direction"] as? String == "inbound")
        }

        // Three events: the bare start was recognised as the bridged start's duplicate.
        let stored = try #require(try await relay.app.store.interaction(callId: bridgedCall))
        #expect(stored.status == .completed)
        #expect(stored.seenEventIds.count == 3)
        #expect(stored.seenEventIds.allSatisfy { $0.hasPrefix("gen-") })
    }

    @Test("a Genesys event of a topic the relay does not read is a malformed dead letter naming the topic")
    func unknownTopic() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        let conversation = UUID().uuidString.lowercased()
        let body = Self.bridged(
            "user.start",
            conversationId: conversation,
            eventBody:
                #"{"eventTime":1795514410000,"conversationId":"\#(conversation)","userId":"\#(Self.agent)","mediaType":"VOICE"}"#
        )
        try await relay.publish([body], routingKey: "genesys")
        let records = try await relay.deadLetters(atLeast: 1)
        let record = try #require(records.first)
        #expect(record.reason == .malformed)
        #expect(record.callId == conversation)
        #expect(record.eventType == "v2.detail.events.conversation.{id}.user.start")
        #expect(record.lastError.contains("'v2.detail.events.conversation.{id}.user.start'"))
        #expect(try record.openedPayload(with: relay.app.cipher) == body)
    }
}
