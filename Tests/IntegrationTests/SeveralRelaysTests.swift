import Foundation
import RelayCore
import RelayService
import RelaySimulator
import RelayTesting
import Testing

/// Two relays of one deployment on one PostgreSQL store, consuming one `relay.events` queue: the
/// events of a call may reach either, in any order, and each effect still goes out once.
@Suite("Several relays on one PostgreSQL store")
struct SeveralRelaysTests {
    @Test("200 calls across two relays: every call's update and webhook exactly once, and both relays did work")
    func twoRelaysShareTheWork() async throws {
        let first = try await RelayHarness.start(store: .postgres, adjust: { $0.amqp.prefetch = 20 })
        defer { Task { await first.stop() } }
        let second = try await RelayHarness.start(adjust: { $0.amqp.prefetch = 20 }, joining: first)
        defer { Task { await second.stop() } }
        #expect(first.app.instanceName != second.app.instanceName)
        #expect(second.app.configuration.store.schema == first.app.configuration.store.schema)

        let calls = 200
        for n in 0..<calls {
            let callId = "several-\(n)"
            try await first.publish([
                callStartedBody(eventId: "s\(n)", callId: callId, from: "+1555010\(String(format: "%04d", n))")
            ])
            try await first.publish([callEndedBody(eventId: "e\(n)", callId: callId)], routingKey: "callEnded")
            try await first.publish([wrapUpBody(eventId: "w\(n)", callId: callId)], routingKey: "wrapUp")
        }
        let platforms = [first.platform, second.platform]
        try await eventually(timeout: .seconds(60)) {
            platforms.map { $0.webhooks.count }.reduce(0, +) >= calls
                && platforms.map { $0.customerUpdates.count }.reduce(0, +) >= calls
        }
        // A moment for any duplicate to arrive before counting.
        try await Task.sleep(for: .milliseconds(500))
        let updateKeys = platforms.flatMap { $0.customerUpdates.compactMap(\.idempotencyKey) }
        #expect(updateKeys.count == calls, "each call's phase-1 update once")
        #expect(Set(updateKeys) == Set((0..<calls).map { "customer-update:s\($0)" }))
        let webhookIds = platforms.flatMap { $0.webhooks.compactMap(\.id) }
        #expect(webhookIds.count == calls && Set(webhookIds).count == calls, "each call's webhook once")
        #expect(
            first.platform.customerUpdates.count > 0 && second.platform.customerUpdates.count > 0,
            "both relays worked"
        )
        #expect(try await first.deadLetterCount() == 0)
    }
}
