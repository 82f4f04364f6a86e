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
        [
            "RELAY_STORE_PATH": relay.app.configuration.store.path,
            "RELAY_PRIVACY_ENCRYPTION_KEY": RelayHarness.testEncryptionKey,
            "RELAY_IDENTITY_PHONE_HASH_KEY": relay.hashKey,
        ]
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

        let dryRun = try BuiltExecutable.run(["deliveries", "retry", "--all", "--dry-run"], environment: environment(relay))
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

    @Test("a deliveryFailed dead letter replays into the outbox with its attempts afresh, and is sent")
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
        // deadLetters(atLeast:) took the record off the queue to read it: put it back as the relay left it.
        try await relay.publisher.publish(
            OutboundMessage(
                exchange: relay.names.deadLetterExchange, routingKey: record.reason.rawValue, body: record.encoded(),
                headers: [DeadLetterPublisher.reasonHeader: .string(record.reason.rawValue)], messageId: record.id))

        var queue = DeadLetterQueue(
            configuration: relay.app.configuration.amqp.connection, names: relay.names, logger: Logger(label: "test"))
        queue.cipher = relay.app.cipher
        // Without the store there is no record to replay from: the operation cannot run at all.
        let withoutStore = await #expect(throws: DeadLetterQueueError.self) { try await queue.replay(DeadLetterFilter(ids: [record.id])) }
        #expect(withoutStore?.code == .storeFailed && withoutStore?.message.contains("store.path") == true)

        queue.store = relay.app.store as? SQLiteInteractionStore
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
        #expect(replayed.first?.attempts == 0, "delivered at its first attempt after the replay")
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
