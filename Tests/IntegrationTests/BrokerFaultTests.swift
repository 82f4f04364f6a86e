import Foundation
import RelayAMQP
import RelayService
import RelaySimulator
import RelayTesting
import Testing

/// Restarts the shared test broker, so `scripts/test` runs this suite on its own, after the others.
@Suite("Broker faults", .serialized)
struct BrokerFaultTests {
    @Test("the relay survives a broker restart, loses nothing and redoes no acked work")
    func brokerRestart() async throws {
        // Slow answers keep deliveries in flight while the broker goes away.
        let relay = try await RelayHarness.start(platformBehaviour: { _, _ in .ok("{}", delay: .milliseconds(300)) })
        defer { Task { await relay.stop() } }

        try await relay.publish((1...5).map { callStartedBody(eventId: "before-\($0)", callId: "c-before-\($0)") })
        // Acked, not merely received by the platform: the platform records a PUT before it answers.
        try await eventually { relay.app.pipeline.acknowledgedCount == 5 }
        // Some of these are mid-request when the broker stops: their acks are lost with the connection.
        try await relay.publish((1...10).map { callStartedBody(eventId: "inflight-\($0)", callId: "c-inflight-\($0)") })

        try TestBroker.control("stop")
        try await eventually(timeout: .seconds(10)) { !relay.app.amqp.isConnected }
        try TestBroker.control("start")
        // Published while the relay is still reconnecting: it must pick these up when it is back.
        try await relay.publisher.waitUntilConnected(timeout: .seconds(30))
        try await relay.publish((1...10).map { callStartedBody(eventId: "after-\($0)", callId: "c-after-\($0)") })

        try await eventually(timeout: .seconds(60)) {
            let keys = Set(relay.platform.customerUpdates.compactMap(\.idempotencyKey))
            return (1...10).allSatisfy { keys.contains("customer-update:inflight-\($0)") && keys.contains("customer-update:after-\($0)") }
        }
        // Every event acked: 25, plus the in-flight ones the broker delivered twice.
        try await eventually(timeout: .seconds(30)) { relay.app.pipeline.acknowledgedCount >= 25 }
        #expect(try await relay.publisher.messageCount(queue: relay.names.eventsQueue) == 0)
        #expect(relay.app.amqp.isConnected)
        let updates = relay.platform.customerUpdates
        // Acked before the restart: never sent again.
        for index in 1...5 {
            #expect(updates.filter { $0.idempotencyKey == "customer-update:before-\(index)" }.count == 1)
        }
        // In flight at the restart: redelivered, so possibly sent twice, always under the same key.
        for index in 1...10 {
            #expect(updates.contains { $0.idempotencyKey == "customer-update:inflight-\(index)" })
        }
        #expect(try await relay.publisher.messageCount(queue: relay.names.deadLettersQueue) == 0)
    }
}
