import Foundation
import Logging
import RelayAMQP
import RelayHTTP
import RelayService
import RelaySimulator
import RelayTesting
import Testing

/// Restarts the shared test broker, so `scripts/test` runs this suite on its own, after the others.
@Suite("Broker faults", .serialized, .stopsRelays)
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
            return (1...10).allSatisfy {
                keys.contains("customer-update:inflight-\($0)") && keys.contains("customer-update:after-\($0)")
            }
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
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test("readiness goes false while the broker is down and true again once the relay has reconnected")
    func readinessFollowsTheBroker() async throws {
        let relay = try await RelayHarness.start(admin: true)
        defer { Task { await relay.stop() } }
        let http = CurlHTTPClient(logger: Logger(label: "test.admin-client"))
        defer { http.shutdown() }
        let readyz = HTTPRequest(method: "GET", url: try await relay.adminBaseURL() + "/readyz", timeout: .seconds(5))
        func ready() async throws -> (status: Int, brokerConnected: Bool?, consuming: Bool?) {
            let response = try await http.execute(readyz)
            let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
            return (response.status, object?["brokerConnected"] as? Bool, object?["consuming"] as? Bool)
        }
        try await eventually { try await ready() == (200, true, true) }

        try TestBroker.control("stop")
        do {
            // Nothing is consumed while the broker is away: the answer must not say otherwise.
            try await eventually(timeout: .seconds(10)) { try await ready() == (503, false, false) }
            // Health is the process, not its dependencies: still up.
            #expect(
                try await http.execute(HTTPRequest(method: "GET", url: try await relay.adminBaseURL() + "/healthz"))
                    .status == 200
            )
        } catch {
            try? TestBroker.control("start")
            throw error
        }
        try TestBroker.control("start")
        try await eventually(timeout: .seconds(60)) { try await ready() == (200, true, true) }
    }
}
