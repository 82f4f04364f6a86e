import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelaySimulator
import RelayStore
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
            let platform = try await SimulatedPlatform.start(
                logger: Logger(label: "test.platform"),
                behaviour: behaviour
            )
            let storePath = FileManager.default.temporaryDirectory.appendingPathComponent(
                "relay-shutdown-\(prefix)sqlite"
            ).path
            return Setup(
                topology: topology,
                prefix: prefix,
                publisher: publisher,
                platform: platform,
                storePath: storePath
            )
        }

        func startRelay(_ extra: [String: String] = [:]) async throws -> RelayProcess {
            let relay = try RelayProcess(
                environment: RelayProcess.environment(prefix: prefix, storePath: storePath, platform: platform)
                    .merging(extra) { $1 }
            )
            try await relay.waitForOutput("relay consuming")
            return relay
        }

        func publish(calls: Range<Int>, withEnds: Bool) async throws {
            for index in calls {
                let callId = "shutdown-call-\(index)"
                var bodies = [
                    (
                        "callStarted",
                        callStartedBody(
                            eventId: "\(callId)-s",
                            callId: callId,
                            from: String(format: "+1555%07d", index)
                        )
                    )
                ]
                if withEnds {
                    bodies += [
                        ("callEnded", callEndedBody(eventId: "\(callId)-e", callId: callId)),
                        ("wrapUp", wrapUpBody(eventId: "\(callId)-w", callId: callId)),
                    ]
                }
                for (type, body) in bodies {
                    try await publisher.publish(
                        OutboundMessage(exchange: prefix + "platform.events", routingKey: type, body: body)
                    )
                }
            }
        }

        func count(_ queue: String) async throws -> Int { try await publisher.messageCount(queue: prefix + queue) }
        /// Outbox entries not finished, read from the store the stopped relay left.
        func pendingEffects() async throws -> Int {
            try await SQLiteInteractionStore(path: storePath).pendingOutbox(dueBy: nil, limit: 1000).count
        }

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
            request.method == "PUT"
                ? ScriptedResponse(status: 200, body: Array(#"{"version":1}"#.utf8), delay: .milliseconds(15)) : nil
        })
        defer { Task { await setup.tearDown() } }
        var relay = try await setup.startRelay()
        defer { relay.killIfRunning() }
        // The signal lands while the platform is still publishing the stream.
        let publishing = Task { try await setup.publish(calls: 0..<calls, withEnds: true) }
        try await eventually(timeout: .seconds(60), "some webhooks before the signal") {
            setup.platform.webhooks.count >= 10
        }

        relay.signal(SIGTERM)
        let status = try await relay.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(relay.output)")
        #expect(relay.output.contains("shutting down gracefully"))
        // Each part stopped after the one that depends on it: consuming first, the store last.
        let stops = [
            "event pipeline", "contact expiry", "retention purge", "interaction chores", "dead-letter drain",
            "outbox dispatcher", "broker connection", "http client", "store",
        ].map { relay.output.range(of: "\($0) stopped")?.lowerBound }
        #expect(stops.allSatisfy { $0 != nil }, "\(relay.output)")
        #expect(stops.compactMap { $0 } == stops.compactMap { $0 }.sorted(), "\(relay.output)")
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
        #expect(
            Dictionary(grouping: updates) { $0.idempotencyKey ?? "" }.values.allSatisfy {
                Set($0.map(\.body)).count == 1
            }
        )
        #expect(try await setup.count("relay.dead-letters") == 0)
        #expect(try await setup.count("relay.events") == 0)
        #expect(try await setup.pendingEffects() == 0)
    }

    final class Hang: Sendable {
        let on = Atomic<Bool>(true)
    }

    @Test("a second SIGTERM while the platform hangs exits at once with 143; after a restart nothing is lost")
    func secondSignalForcesExit() async throws {
        let hang = Hang()
        let setup = try await Setup.make(behaviour: { _, request in
            request.method == "PUT" && hang.on.load(ordering: .relaxed)
                ? ScriptedResponse(status: 503, delay: .seconds(120)) : nil
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
        #expect(
            try await relay.waitForExit(timeout: .seconds(2)) == nil,
            "the graceful shutdown did not wait for the hung request"
        )
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
        #expect(try await setup.pendingEffects() == 0)
    }
    @Test("a graceful shutdown writes a delivery stuck on a slow platform back as a retry; the next run delivers it")
    func stuckDeliveryReturnedOnShutdown() async throws {
        let hang = Hang()
        let setup = try await Setup.make(behaviour: { _, request in
            request.method == "PUT" && hang.on.load(ordering: .relaxed)
                ? ScriptedResponse(status: 503, delay: .seconds(10)) : nil
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
        #expect(relay.output.contains("retry scheduled"))
        // The failed attempts are in the store, each waiting for its retry: nothing was kept in memory.
        let waiting = try await SQLiteInteractionStore(path: setup.storePath).pendingOutbox(dueBy: nil, limit: 10)
        #expect(waiting.count == calls && waiting.allSatisfy { $0.attempts == 1 })

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

    @Test("a delivery in flight when the relay is SIGKILLed goes out at the restart, from the store, before any poll")
    func sigkillMidAttempt() async throws {
        let held = ResponseGate()
        let attempts = Atomic<Int>(0)
        let setup = try await Setup.make(behaviour: { _, request in
            guard request.method == "PUT" else { return nil }
            // The first attempt hangs until the test lets go (after the kill); later ones succeed.
            return attempts.add(1, ordering: .relaxed).newValue == 1 ? .ok("{}", heldBy: held) : nil
        })
        defer { Task { await setup.tearDown() } }
        var relay = try await setup.startRelay()
        defer { relay.killIfRunning() }
        try await setup.publish(calls: 0..<1, withEnds: false)
        try await eventually(timeout: .seconds(30), "the platform to hold the update") { held.heldCount == 1 }
        relay.signal(SIGKILL)
        _ = try await relay.waitForExit(timeout: .seconds(30))
        held.open()
        #expect(try await setup.pendingEffects() == 1, "the attempt in flight left its entry due")

        // A poll a minute away: only the start's own take of what is due can send it.
        relay = try await setup.startRelay(["RELAY_DELIVERY_POLL_INTERVAL_MS": "60000"])
        try await eventually(timeout: .seconds(30), "the update after the restart") {
            setup.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:shutdown-call-0-s" }
        }
        try await eventually { try await setup.pendingEffects() == 0 }
        relay.signal(SIGTERM)
        #expect(try await relay.waitForExit(timeout: .seconds(60)) == 0)
        #expect(attempts.load(ordering: .relaxed) == 2)
    }

    @Test("a retry scheduled before a restart waits out its time after it, then goes")
    func retryAcrossRestart() async throws {
        let secondAttemptAt = Mutex<Date?>(nil)
        let attempts = Atomic<Int>(0)
        let setup = try await Setup.make(behaviour: { _, request in
            guard request.method == "PUT" else { return nil }
            if attempts.add(1, ordering: .relaxed).newValue == 1 {
                return .status(503, headers: [(name: "Retry-After", value: "4")])
            }
            secondAttemptAt.withLock { $0 = $0 ?? Date() }
            return nil
        })
        defer { Task { await setup.tearDown() } }
        var relay = try await setup.startRelay()
        defer { relay.killIfRunning() }
        try await setup.publish(calls: 0..<1, withEnds: false)
        var scheduled: OutboxEntry?
        try await eventually(timeout: .seconds(30), "the retry to be scheduled") {
            scheduled = try await SQLiteInteractionStore(path: setup.storePath).outboxEntries(.init(state: .failing))
                .first
            return scheduled != nil
        }
        relay.signal(SIGKILL)
        _ = try await relay.waitForExit(timeout: .seconds(30))
        let dueAt = try #require(scheduled?.dueAt)

        relay = try await setup.startRelay()
        try await eventually(timeout: .seconds(30), "the retry after the restart") {
            setup.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:shutdown-call-0-s" }
        }
        // Not taken at the start as if it were due: it waited for the time its Retry-After set.
        #expect(try #require(secondAttemptAt.withLock { $0 }) >= dueAt)
        #expect(attempts.load(ordering: .relaxed) == 2)
        relay.signal(SIGTERM)
        #expect(try await relay.waitForExit(timeout: .seconds(60)) == 0)
    }
}
