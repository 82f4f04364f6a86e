import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelaySimulator
import RelayTesting
import Synchronization
import Testing

/// `identity-relay run` as a process: SIGTERM mid-stream, restart, and nothing lost.
@Suite("Graceful shutdown of the running relay", .serialized)
struct GracefulShutdownTests {
    /// One isolated relay setup that outlives the relay processes started on it.
    struct Setup {
        let topology: Topology
        let prefix: String
        let publisher: AMQPClient
        let platform: SimulatedPlatform
        let storePath: String

        static func make(behaviour: SimulatedPlatform.Behaviour? = nil) async throws -> Setup {
            let (topology, prefix) = try TestBroker.isolatedTopology()
            let publisher = try await TestBroker.connectedClient(topology: topology)
            let platform = try await SimulatedPlatform.start(logger: Logger(label: "test.platform"), behaviour: behaviour)
            let storePath = FileManager.default.temporaryDirectory.appendingPathComponent("relay-shutdown-\(prefix)sqlite").path
            return Setup(topology: topology, prefix: prefix, publisher: publisher, platform: platform, storePath: storePath)
        }

        func startRelay(_ extra: [String: String] = [:]) async throws -> RelayProcess {
            let relay = try RelayProcess(
                environment: RelayProcess.environment(prefix: prefix, storePath: storePath, platform: platform)
                    .merging(extra) { $1 })
            try await relay.waitForOutput("relay consuming")
            return relay
        }

        func publish(calls: Range<Int>, withEnds: Bool) async throws {
            for index in calls {
                let callId = "shutdown-call-\(index)"
                var bodies = [("callStarted", callStartedBody(eventId: "\(callId)-s", callId: callId, from: String(format: "+1555%07d", index)))]
                if withEnds {
                    bodies += [
                        ("callEnded", callEndedBody(eventId: "\(callId)-e", callId: callId)),
                        ("wrapUp", wrapUpBody(eventId: "\(callId)-w", callId: callId)),
                    ]
                }
                for (type, body) in bodies {
                    try await publisher.publish(OutboundMessage(exchange: prefix + "platform.events", routingKey: type, body: body))
                }
            }
        }

        func count(_ queue: String) async throws -> Int { try await publisher.messageCount(queue: prefix + queue) }

        func tearDown() async {
            await TestBroker.tearDown(topology, using: publisher)
            await publisher.shutdown()
            await platform.stop()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
        }
    }

    @Test("SIGTERM mid-stream exits 0; after a restart every update and webhook arrived, none lost, repeats identical")
    func sigtermMidStream() async throws {
        let calls = 300
        // A platform that takes a little time per request, so the stream is still flowing at the signal.
        let setup = try await Setup.make(behaviour: { _, request in
            request.method == "PUT" ? ScriptedResponse(status: 200, body: Array(#"{"version":1}"#.utf8), delay: .milliseconds(15)) : nil
        })
        defer { Task { await setup.tearDown() } }
        var relay = try await setup.startRelay()
        defer { relay.killIfRunning() }
        // The signal lands while the platform is still publishing the stream.
        let publishing = Task { try await setup.publish(calls: 0..<calls, withEnds: true) }
        try await eventually(timeout: .seconds(60), "some webhooks before the signal") { setup.platform.webhooks.count >= 10 }

        relay.signal(SIGTERM)
        let status = try await relay.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(relay.output)")
        #expect(relay.output.contains("shutting down gracefully"))
        #expect(relay.output.contains("stopped"))
        try await publishing.value
        // Mid-stream: work was left for the next relay.
        #expect(Set(setup.platform.webhooks.compactMap(\.id)).count < calls)
        #expect(try await setup.count("relay.events") > 0)

        relay = try await setup.startRelay()
        let expectedWebhooks = Set((0..<calls).map { PostCallWebhook.webhookID(callId: "shutdown-call-\($0)") })
        let expectedUpdates = Set((0..<calls).map { "customer-update:shutdown-call-\($0)-s" })
        try await eventually(timeout: .seconds(120), "every webhook and update after the restart") {
            expectedWebhooks.isSubset(of: Set(setup.platform.webhooks.compactMap(\.id)))
                && expectedUpdates.isSubset(of: Set(setup.platform.customerUpdates.compactMap(\.idempotencyKey)))
        }
        relay.signal(SIGTERM)
        #expect(try await relay.waitForExit(timeout: .seconds(60)) == 0)

        let webhooks = setup.platform.webhooks
        let updates = setup.platform.customerUpdates
        #expect(Set(webhooks.compactMap(\.id)) == expectedWebhooks)
        #expect(Set(updates.compactMap(\.idempotencyKey)) == expectedUpdates)
        // At least once: a repeat is allowed only as the same request under the same id.
        #expect(Dictionary(grouping: webhooks) { $0.id ?? "" }.values.allSatisfy { Set($0.map(\.body)).count == 1 })
        #expect(Dictionary(grouping: updates) { $0.idempotencyKey ?? "" }.values.allSatisfy { Set($0.map(\.body)).count == 1 })
        #expect(try await setup.count("relay.dead-letters") == 0)
        #expect(try await setup.count("relay.events") == 0)
        #expect(try await setup.count("relay.deliveries") == 0)
    }

    final class Hang: Sendable {
        let on = Atomic<Bool>(true)
    }

    @Test("a second SIGTERM while the platform hangs exits at once with 143; after a restart nothing is lost")
    func secondSignalForcesExit() async throws {
        let hang = Hang()
        let setup = try await Setup.make(behaviour: { _, request in
            request.method == "PUT" && hang.on.load(ordering: .relaxed) ? ScriptedResponse(status: 503, delay: .seconds(120)) : nil
        })
        defer { Task { await setup.tearDown() } }
        // The hung request holds the graceful shutdown for as long as the request timeout.
        var relay = try await setup.startRelay(["RELAY_PLATFORM_REQUEST_TIMEOUT_MS": "60000"])
        defer { relay.killIfRunning() }
        let calls = 5
        try await setup.publish(calls: 0..<calls, withEnds: false)
        try await eventually(timeout: .seconds(30), "the platform to hold the updates") {
            setup.platform.server.requests.count { $0.method == "PUT" } >= 1
        }

        relay.signal(SIGTERM)
        #expect(try await relay.waitForExit(timeout: .seconds(2)) == nil, "the graceful shutdown did not wait for the hung request")
        let forcedAt = ContinuousClock.now
        relay.signal(SIGTERM)
        let status = try await relay.waitForExit(timeout: .seconds(30))
        #expect(status == 143, "\(relay.output)")
        // Well before the hung request's 60 s timeout: the second signal ended it, not the request.
        #expect(ContinuousClock.now - forcedAt < .seconds(30))
        #expect(relay.output.contains("second signal"))

        hang.on.store(false, ordering: .relaxed)
        relay = try await setup.startRelay()
        let expectedUpdates = Set((0..<calls).map { "customer-update:shutdown-call-\($0)-s" })
        try await eventually(timeout: .seconds(60), "every update after the restart") {
            expectedUpdates.isSubset(of: Set(setup.platform.customerUpdates.compactMap(\.idempotencyKey)))
        }
        relay.signal(SIGINT)
        #expect(try await relay.waitForExit(timeout: .seconds(60)) == 0)
        #expect(try await setup.count("relay.dead-letters") == 0)
        #expect(try await setup.count("relay.deliveries") == 0)
    }
    @Test("a graceful shutdown parks a delivery stuck on a slow platform instead of retrying it; the next run delivers it")
    func stuckDeliveryReturnedOnShutdown() async throws {
        let hang = Hang()
        let setup = try await Setup.make(behaviour: { _, request in
            request.method == "PUT" && hang.on.load(ordering: .relaxed) ? ScriptedResponse(status: 503, delay: .seconds(10)) : nil
        })
        defer { Task { await setup.tearDown() } }
        var relay = try await setup.startRelay(["RELAY_PLATFORM_REQUEST_TIMEOUT_MS": "1500"])
        defer { relay.killIfRunning() }
        let calls = 3
        try await setup.publish(calls: 0..<calls, withEnds: false)
        try await eventually(timeout: .seconds(30), "the platform to hold the updates") {
            setup.platform.server.requests.count { $0.method == "PUT" } >= calls
        }

        relay.signal(SIGTERM)
        // Ten attempts of 1.5 s each would keep it up for 15 s and end in dead letters.
        #expect(try await relay.waitForExit(timeout: .seconds(8)) == 0, "\(relay.output)")
        #expect(relay.output.contains("delivery parked for a retry"))

        hang.on.store(false, ordering: .relaxed)
        relay = try await setup.startRelay()
        let expectedUpdates = Set((0..<calls).map { "customer-update:shutdown-call-\($0)-s" })
        try await eventually(timeout: .seconds(60), "every update after the restart") {
            expectedUpdates.isSubset(of: Set(setup.platform.customerUpdates.compactMap(\.idempotencyKey)))
        }
        relay.signal(SIGTERM)
        #expect(try await relay.waitForExit(timeout: .seconds(60)) == 0)
        #expect(try await setup.count("relay.dead-letters") == 0)
    }
}
