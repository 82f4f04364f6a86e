import Foundation
import RelayCore
import RelayService
import RelaySimulator
import RelayTesting
import Testing

@Suite("Context updates and recent overrides end to end")
struct ContextUpdateEndToEndTests {
    func contextUpdate(eventId: String, callId: String, to newId: String) -> [UInt8] {
        Array(#"{"eventId":"\#(eventId)","type":"contextUpdate","callId":"\#(callId)","occurredAt":"2026-11-24T10:01:00Z","newExternalId":"\#(newId)","reason":"Agent Verified Account Switch","agentId":"agent-7"}"#.utf8)
    }

    @Test("a valid switch updates the customer and is reused for the same caller until its TTL; an invalid one changes nothing")
    func overrideLifecycle() async throws {
        let relay = try await RelayHarness.start(enrichment: true, adjust: { $0.identity.overrideTimeToLive = .seconds(3) })
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100900", .init(contactId: "500999999", name: "Acme Corp"))
        let caller = "+15550100091"  // the CRM knows nobody by this number: phase 2 finds no match

        try await relay.publish([callStartedBody(eventId: "s1", callId: "call-1", from: caller)])
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        // A switch to an id the CRM does not know: nothing changes.
        try await relay.publish([contextUpdate(eventId: "bad", callId: "call-1", to: "CRM:404404404")], routingKey: "contextUpdate")
        // A switch the CRM confirms: the call's customer is updated with the company's profile.
        try await relay.publish([contextUpdate(eventId: "good", callId: "call-1", to: "CRM:500999999")], routingKey: "contextUpdate")
        let updates = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(15))
        let switched = try #require(updates.first { $0.idempotencyKey == "context-update:good" })
        #expect(switched.externalId == "CRM:500999999")
        #expect(switched.customerId == relay.expectedPhoneID(caller))
        #expect(switched.body.contains("Acme Corp"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(!relay.platform.customerUpdates.contains { $0.idempotencyKey == "context-update:bad" })

        // The next call from the same number is linked to the override at once, and enriched by contact id.
        try await relay.publish([callStartedBody(eventId: "s2", callId: "call-2", from: caller)])
        let next = try await relay.platform.waitForCustomerUpdates(count: 4, timeout: .seconds(15))
        #expect(next.first { $0.idempotencyKey == "customer-update:s2" }?.externalId == "CRM:500999999")
        #expect(next.first { $0.idempotencyKey == "enrichment:s2" }?.externalId == "CRM:500999999")

        // After the TTL, the caller is a phone number again.
        try await Task.sleep(for: .seconds(3))
        try await relay.publish([callStartedBody(eventId: "s3", callId: "call-3", from: caller)])
        try await eventually { relay.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:s3" } }
        #expect(relay.platform.customerUpdates.first { $0.idempotencyKey == "customer-update:s3" }?.externalId == relay.expectedPhoneID(caller))
    }
}
