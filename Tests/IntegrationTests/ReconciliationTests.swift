import Foundation
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Testing

/// Post-call reconciliation: calls the CRM did not know when they happened, upgraded once it does.
@Suite("Reconciliation", .stopsRelays)
struct ReconciliationTests {
    static let contact = SimulatedPlatform.CRMRecord(contactId: "500245678", name: "John Doe", loyaltyTier: "Gold")

    /// A call whose caller the CRM does not know yet: it stays on its PHONE: link.
    func unmatchedCall(_ relay: RelayHarness, eventId: String, callId: String, from number: String) async throws {
        try await relay.publish([callStartedBody(eventId: eventId, callId: callId, from: number)])
        try await eventually {
            relay.platform.server.requests.contains {
                $0.path == "/crm/contacts?phone=\(number.replacingOccurrences(of: "+", with: "%2B"))"
            }
        }
        try await eventually {
            try await relay.app.store.interaction(callId: callId)?.externalId?.hasPrefix("PHONE:") == true
        }
    }

    @Test("a PHONE: link the CRM matches now is upgraded with a PUT; unmatched ones stay; a second run finds nothing")
    func upgrade() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        try await unmatchedCall(relay, eventId: "r1", callId: "rec-1", from: "+15550100801")
        try await unmatchedCall(relay, eventId: "r2", callId: "rec-2", from: "+15550100802")
        _ = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(30))
        relay.platform.addCRMContact(phone: "+15550100801", Self.contact)

        let reconciler = try #require(relay.app.reconciler)
        let report = try await reconciler.run(since: Date().addingTimeInterval(-3600))
        #expect(report.examined == 2)
        #expect(report.upgraded == 1)
        #expect(report.stillUnmatched == 1)
        #expect(report.failed == 0 && report.noNumber == 0)

        let updates = try await relay.platform.waitForCustomerUpdates(count: 3, timeout: .seconds(30))
        let upgrade = try #require(updates.first { $0.idempotencyKey?.hasPrefix("reconcile:rec-1") == true })
        #expect(upgrade.externalId == "CRM:500245678")
        #expect(upgrade.customerId == relay.expectedPhoneID("+15550100801"))
        #expect(upgrade.body.contains("John Doe"))
        #expect(try await relay.app.store.interaction(callId: "rec-1")?.externalId == "CRM:500245678")
        #expect(try await relay.app.store.interaction(callId: "rec-2")?.externalId?.hasPrefix("PHONE:") == true)

        let again = try await reconciler.run(since: Date().addingTimeInterval(-3600))
        #expect(again.examined == 1)
        #expect(again.upgraded == 0)
        // Outside the window: nothing is examined.
        #expect(try await reconciler.run(since: Date().addingTimeInterval(60)).examined == 0)
    }

    @Test("a caller an agent has named since (a live recent override) is left as is, whatever the CRM matches now")
    func overrideWins() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        try await unmatchedCall(relay, eventId: "o1", callId: "rec-override", from: "+15550100821")
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(30))
        relay.platform.addCRMContact(phone: "+15550100821", Self.contact)
        let phoneKey = try #require(try await relay.app.store.interaction(callId: "rec-override")?.phoneKey)
        try await relay.app.store.setOverride(
            phoneKey: phoneKey,
            externalId: "CRM:003AGENTCHOICE",
            callId: "a-later-call",
            now: Date(),
            expiresAt: Date().addingTimeInterval(86_400)
        )

        let reconciler = try #require(relay.app.reconciler)
        let report = try await reconciler.run(since: Date().addingTimeInterval(-3600))
        #expect(report.examined == 1)
        #expect(report.upgraded == 0)
        #expect(report.leftAsIs == 1)
        #expect(try await relay.app.store.interaction(callId: "rec-override")?.externalId?.hasPrefix("PHONE:") == true)
        try await Task.sleep(for: .milliseconds(500))
        #expect(!relay.platform.customerUpdates.contains { $0.idempotencyKey?.hasPrefix("reconcile:") == true })
    }

    @Test("identity-relay reconcile, run as a process: progress, summary, dry run changes nothing")
    func command() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        try await unmatchedCall(relay, eventId: "c1", callId: "rec-cli-1", from: "+15550100811")
        relay.platform.addCRMContact(phone: "+15550100811", Self.contact)
        let configuration = relay.app.configuration
        let environment = relay.storeEnvironment.merging([
            "RELAY_AMQP_PORT": String(configuration.amqp.port), "RELAY_AMQP_NAME_PREFIX": configuration.amqp.namePrefix,
            "RELAY_AMQP_TOPOLOGY_FILE": configuration.amqp.topologyFile,
            "RELAY_CRM_LOOKUP_URL_TEMPLATE": relay.platform.crmLookupURLTemplate,
            // The committed default (2 s) timed out on a loaded machine: this test is not about timeouts.
            "RELAY_CRM_LOOKUP_TIMEOUT_MS": "15000", "RELAY_PLATFORM_REQUEST_TIMEOUT_MS": "15000",
            "RELAY_PLATFORM_BASE_URL": relay.platform.baseURL,
            "RELAY_CRM_POST_CALL_WEBHOOK_URL": relay.platform.postCallWebhookURL,
            "RELAY_WEBHOOK_SIGNING_SECRET": testWebhookSecret,
            "RELAY_IDENTITY_PHONE_HASH_KEY": relay.hashKey,
            "RELAY_PRIVACY_ENCRYPTION_KEY": RelayHarness.testEncryptionKey,
        ]) { $1 }
        let dryRun = try BuiltExecutable.run(["reconcile", "--since", "1h", "--dry-run"], environment: environment)
        #expect(dryRun.status == 0, "\(dryRun)")
        #expect(dryRun.stdout.contains("dry run: examined 1, upgraded 1, still unmatched 0"), "\(dryRun)")
        #expect(try await relay.app.store.interaction(callId: "rec-cli-1")?.externalId?.hasPrefix("PHONE:") == true)

        let result = try BuiltExecutable.run(["reconcile", "--since", "1h"], environment: environment)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("examined 1, upgraded 1, still unmatched 0, no number 0, failed 0"), "\(result)")
        #expect(result.stderr.contains("reconcile: 1/1"))
        let updates = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(30))
        #expect(
            updates.contains { $0.externalId == "CRM:500245678" && $0.idempotencyKey?.hasPrefix("reconcile:") == true }
        )
        #expect(try await relay.app.store.interaction(callId: "rec-cli-1")?.externalId == "CRM:500245678")

        let bad = try BuiltExecutable.run(["reconcile", "--since", "whenever"], environment: environment)
        #expect(bad.status == 64)
    }

    @Test("on its schedule inside the relay, reconciliation upgrades without anyone asking")
    func schedule() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        try await unmatchedCall(relay, eventId: "s1", callId: "rec-sched-1", from: "+15550100821")
        relay.platform.addCRMContact(phone: "+15550100821", Self.contact)
        let schedule = ReconciliationSchedule(
            reconciler: try #require(relay.app.reconciler),
            interval: .milliseconds(200),
            window: .seconds(3600),
            logger: relay.app.logger
        )
        let running = Task { await schedule.run() }
        defer { running.cancel() }
        try await eventually {
            try await relay.app.store.interaction(callId: "rec-sched-1")?.externalId == "CRM:500245678"
        }
        // The PUT is queued before the relink and delivered by the worker: it may land a moment later.
        try await eventually {
            relay.platform.customerUpdates.contains { $0.idempotencyKey == "reconcile:rec-sched-1:CRM:500245678" }
        }
    }
}
