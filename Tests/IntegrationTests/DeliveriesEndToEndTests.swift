import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Synchronization
import Testing

/// The outbox from an operator's side: `deliveries list|show|retry`, and a failed delivery's dead
/// letter replayed back into the outbox.
@Suite("Deliveries in the outbox, for on-call")
struct DeliveriesEndToEndTests {
    func environment(_ relay: RelayHarness) -> [String: String] {
        relay.storeEnvironment.merging([
            "RELAY_PRIVACY_ENCRYPTION_KEY": RelayHarness.testEncryptionKey,
            "RELAY_IDENTITY_PHONE_HASH_KEY": relay.hashKey,
        ]) { $1 }
    }

    @Test("deliveries list and show a retry waiting in the store; retry makes it due and the running relay sends it")
    func listShowRetry() async throws {
        let refusals = Atomic<Int>(0)
        let relay = try await RelayHarness.start(platformBehaviour: { _, request in
            guard request.method == "PUT" else { return nil }
            // Refused once with a wait far beyond the test: only an operator's retry sends it sooner.
            return refusals.add(1, ordering: .relaxed).newValue == 1
                ? .status(503, headers: [(name: "Retry-After", value: "3000")]) : nil
        })
        defer { Task { await relay.stop() } }
        try await relay.publish([callStartedBody(eventId: "d1", callId: "call-waiting", from: "+15550100771")])
        var waiting: OutboxEntry?
        try await eventually {
            waiting = try await relay.app.store.outboxEntries(.init(state: .failing)).first
            return waiting != nil
        }
        let entry = try #require(waiting)

        let list = try BuiltExecutable.run(["deliveries", "list", "--json"], environment: environment(relay))
        #expect(list.status == 0, "\(list)")
        let views = try JSONDecoder.iso8601.decode([OutboxEntryView].self, from: Data(list.stdout.utf8))
        let view = try #require(views.first { $0.id == entry.id })
        #expect(view.state == "scheduled" && view.attempts == 1 && view.lastError == "HTTP 503")
        #expect(view.job == "customerUpdate" && view.idempotencyKey == "customer-update:d1")
        // The path's external id is masked; nothing of the job's sealed body shows.
        #expect(view.target.hasPrefix("PUT /api/v2/customers/") && view.target.contains("*"))
        #expect(!list.stdout.contains("PHONE%3A"))

        let table = try BuiltExecutable.run(["deliveries", "list"], environment: environment(relay))
        #expect(table.stdout.contains("1 pending (0 due, 1 retries scheduled)"), "\(table)")
        let show = try BuiltExecutable.run(["deliveries", "show", "\(entry.id)"], environment: environment(relay))
        #expect(show.status == 0 && show.stdout.contains("idempotency key: customer-update:d1"), "\(show)")
        let missing = try BuiltExecutable.run(["deliveries", "show", "999999"], environment: environment(relay))
        #expect(missing.status == 1 && missing.stderr.contains("no outbox entry 999999"))

        let dryRun = try BuiltExecutable.run(
            ["deliveries", "retry", "--all", "--dry-run"],
            environment: environment(relay)
        )
        #expect(dryRun.status == 0 && dryRun.stdout.contains("would make 1 due now"), "\(dryRun)")
        #expect(try await relay.app.store.outboxEntry(id: entry.id)?.dueAt == entry.dueAt, "a dry run changes nothing")
        #expect(relay.platform.customerUpdates.isEmpty)

        let retry = try BuiltExecutable.run(["deliveries", "retry", "\(entry.id)"], environment: environment(relay))
        #expect(retry.status == 0 && retry.stdout.contains("made 1 due now"), "\(retry)")
        // The relay's poll finds it due and sends it: a second PUT, accepted.
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(20))
        try await eventually { try await relay.app.store.outboxEntry(id: entry.id)?.outcome == "delivered" }
        let again = try BuiltExecutable.run(["deliveries", "retry", "\(entry.id)"], environment: environment(relay))
        #expect(again.status == 1 && again.stderr.contains("no pending outbox entry \(entry.id)"))
    }

    @Test("a deliveryFailed dead letter replays into the outbox, and is sent")
    func replayIntoTheOutbox() async throws {
        let refusals = Atomic<Int>(0)
        let relay = try await RelayHarness.start(platformBehaviour: { _, request in
            guard request.method == "PUT" else { return nil }
            return refusals.add(1, ordering: .relaxed).newValue == 1 ? .status(400) : nil
        })
        defer { Task { await relay.stop() } }
        try await relay.publish([callStartedBody(eventId: "r1", callId: "call-replayed", from: "+15550100772")])
        let record = try #require(try await relay.deadLetters(atLeast: 1).first)
        #expect(record.reason == .deliveryFailed && record.origin == .outbox)

        var queue = DeadLetterQueue(
            configuration: relay.app.configuration.amqp.connection,
            names: relay.names,
            logger: Logger(label: "test")
        )
        queue.cipher = relay.app.cipher
        // Without the store there is no record to replay from: the operation cannot run at all.
        let withoutStore = await #expect(throws: DeadLetterQueueError.self) {
            try await queue.replay(DeadLetterFilter(ids: [record.id]))
        }
        #expect(withoutStore?.code == .storeFailed && withoutStore?.message.contains("store.path") == true)

        queue.store = relay.app.store
        let report = try await queue.replay(DeadLetterFilter(ids: [record.id]))
        #expect(report.outcomes.map(\.result) == [.replayed(to: .outbox)])
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(20))
        #expect(relay.platform.customerUpdates.map(\.idempotencyKey) == ["customer-update:r1"])
        var replayed: [OutboxEntry] = []
        try await eventually {
            replayed = try await relay.app.store.outboxEntries(.init(state: .finished, callId: "call-replayed"))
            return replayed.count == 2
        }
        #expect(replayed.map(\.outcome) == ["delivered", "deadLettered"])
        #expect(replayed.first?.attempts == 0, "delivered at its first try after the replay: no retry written")
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test(
        "a replayed delivery goes on counting (one more attempt once exhausted); --reset-attempts gives it a new budget; its first failure stays"
    )
    func replayAttemptBudget() async throws {
        let failing = Atomic<Bool>(true)
        let puts = Atomic<Int>(0)
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                guard request.method == "PUT" else { return nil }
                puts.add(1, ordering: .relaxed)
                return failing.load(ordering: .relaxed) ? .status(503) : nil
            },
            adjust: {
                // Every attempt is counted here: the platform's breaker must not open and hold one back.
                $0.platform.breakerThreshold = 1000
            }
        )
        defer { Task { await relay.stop() } }
        let store = relay.app.store
        try await relay.publish([callStartedBody(eventId: "b1", callId: "call-budget", from: "+15550100773")])
        let record = try #require(try await relay.deadLetters(atLeast: 1).first)
        #expect(record.reason == .deliveryFailed && record.attempts == 4, "the harness allows 4 attempts")
        #expect(puts.load(ordering: .relaxed) == 4)

        /// Waits for the relay to record the replayed job's next dead letter (the record open again).
        func failedAgain(replays: Int) async throws -> StoredDeadLetter {
            var stored: StoredDeadLetter?
            try await eventually("the record reopened after replay \(replays)") {
                stored = try await store.deadLetter(id: record.id)
                return stored?.state == .open && stored?.replayCount == replays
            }
            return try #require(stored)
        }
        let queue = relay.deadLetterQueue
        #expect(
            try await queue.replay(DeadLetterFilter(ids: [record.id])).outcomes.map(\.result) == [
                .replayed(to: .outbox)
            ]
        )
        let once = try await failedAgain(replays: 1)
        #expect(puts.load(ordering: .relaxed) == 5, "an exhausted job replayed as it was gets exactly one more attempt")
        #expect(once.attempts == 5)
        #expect(
            abs(try #require(once.firstFailureAt).timeIntervalSince(record.firstFailureAt)) < 0.002,
            "its first failure stays"
        )

        #expect(
            try await queue.replay(DeadLetterFilter(ids: [record.id]), resetAttempts: true).outcomes.map(\.result)
                == [.replayed(to: .outbox)]
        )
        let reset = try await failedAgain(replays: 2)
        #expect(puts.load(ordering: .relaxed) == 9, "a new budget: four more attempts")
        #expect(reset.attempts == 4)
        #expect(abs(try #require(reset.firstFailureAt).timeIntervalSince(record.firstFailureAt)) < 0.002)

        failing.store(false, ordering: .relaxed)
        _ = try await queue.replay(DeadLetterFilter(ids: [record.id]))
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(20))
        try await eventually { try await store.deadLetter(id: record.id)?.state == .replayed }
        #expect(puts.load(ordering: .relaxed) == 10)
        #expect(try await relay.deadLetterCount() == 0)
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
