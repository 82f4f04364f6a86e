import Foundation
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Synchronization
import Testing

@Suite("Context updates and recent overrides end to end", .stopsRelays)
struct ContextUpdateEndToEndTests {
    func contextUpdate(eventId: String, callId: String, to newId: String) -> [UInt8] {
        Array(
            #"{"eventId":"\#(eventId)","type":"contextUpdate","callId":"\#(callId)","occurredAt":"2026-11-24T10:01:00Z","newExternalId":"\#(newId)","reason":"Agent Verified Account Switch","agentId":"agent-7"}"#
                .utf8
        )
    }

    @Test(
        "a valid switch updates the customer and is reused for the same caller until its TTL; an invalid one changes nothing"
    )
    func overrideLifecycle() async throws {
        // Long enough for the next call to be linked within it on a loaded machine (PostgreSQL in CI took
        // longer than 3 s), short enough to wait out below.
        let timeToLive = Duration.seconds(10)
        let relay = try await RelayHarness.start(
            enrichment: true,
            adjust: { $0.identity.overrideTimeToLive = timeToLive }
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100900", .init(contactId: "500999999", name: "Acme Corp"))
        let caller = "+15550100091"  // the CRM knows nobody by this number: phase 2 finds no match

        try await relay.publish([callStartedBody(eventId: "s1", callId: "call-1", from: caller)])
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        // A switch to an id the CRM does not know: nothing changes.
        try await relay.publish(
            [contextUpdate(eventId: "bad", callId: "call-1", to: "CRM:404404404")],
            routingKey: "contextUpdate"
        )
        // A switch the CRM confirms: the call's customer is updated with the company's profile.
        try await relay.publish(
            [contextUpdate(eventId: "good", callId: "call-1", to: "CRM:500999999")],
            routingKey: "contextUpdate"
        )
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
        try await Task.sleep(for: timeToLive)
        try await relay.publish([callStartedBody(eventId: "s3", callId: "call-3", from: caller)])
        try await eventually { relay.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:s3" } }
        #expect(
            relay.platform.customerUpdates.first { $0.idempotencyKey == "customer-update:s3" }?.externalId
                == relay.expectedPhoneID(caller)
        )
    }

    @Test("a context update that arrives before its call's start is applied once the start is in")
    func contextUpdateBeforeStart() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100901", .init(contactId: "500999998", name: "Early Corp"))
        let caller = "+15550100097"  // the CRM knows nobody by this number: phase 2 finds no match

        try await relay.publish(
            [contextUpdate(eventId: "early", callId: "call-early", to: "CRM:500999998")],
            routingKey: "contextUpdate"
        )
        try await eventually {
            try await relay.app.store.interaction(callId: "call-early")?.pendingContextUpdates?.count == 1
        }
        #expect(relay.platform.customerUpdates.isEmpty)

        try await relay.publish([callStartedBody(eventId: "late-start", callId: "call-early", from: caller)])
        // Generous: in the PostgreSQL pass this runs beside a hundred relays and a headless browser.
        let updates = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(45))
        let switched = try #require(updates.first { $0.idempotencyKey == "context-update:early" })
        #expect(switched.externalId == "CRM:500999998")
        #expect(switched.customerId == relay.expectedPhoneID(caller))
        #expect(switched.body.contains("Early Corp"))
        try await eventually {
            try await relay.app.store.interaction(callId: "call-early")?.externalId == "CRM:500999998"
        }
    }

    @Test("a CRM answer that comes after a validated switch never puts the platform back on the CRM's match")
    func lateEnrichmentDoesNotUndoASwitch() async throws {
        let logs = RecordingLogHandler.Store()
        let caller = "+15550100096"
        // The search by number fails until the agent's switch has reached the platform, then finds a
        // contact: the CRM's answer comes after the switch however slow the machine is.
        let switched = Mutex(false)
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                guard request.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") else { return nil }
                guard switched.withLock({ $0 }) else { return .status(503) }
                let body = #"{"totalSize":1,"records":[{"Id":"003A000001","Name":"Jane Roe"}]}"#
                return .ok(body, headers: [(name: "Content-Type", value: "application/json")])
            },
            enrichment: true,
            adjust: {
                $0.delivery.maxAttempts = 1000
                $0.delivery.maxDelay = .milliseconds(50)
                $0.crm.lookup.breakerThreshold = 1_000_000
            },
            logger: RecordingLogHandler.logger(label: "test.relay", store: logs)
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100900", .init(contactId: "500999999", name: "Acme Corp"))

        try await relay.publish([callStartedBody(eventId: "late1", callId: "call-late", from: caller)])
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        try await relay.publish(
            [contextUpdate(eventId: "late-switch", callId: "call-late", to: "CRM:500999999")],
            routingKey: "contextUpdate"
        )
        try await eventually {
            relay.platform.customerUpdates.contains { $0.idempotencyKey == "context-update:late-switch" }
        }
        switched.withLock { $0 = true }

        // The late answer finds the call switched: its update is neither queued nor sent.
        try await eventually { logs.all.contains { $0.contains("customer update superseded") } }
        #expect(relay.platform.server.requests.contains { $0.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") })
        #expect(
            relay.platform.customerUpdates.map(\.idempotencyKey) == [
                "customer-update:late1", "context-update:late-switch",
            ]
        )
        #expect(relay.platform.customerUpdates.last?.externalId == "CRM:500999999")
        #expect(try await relay.app.store.link(callId: "call-late") == "CRM:500999999")
        #expect(try await relay.deadLetterCount() == 0)
    }
}
