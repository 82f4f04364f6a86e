import Foundation
import GRDB
import RelayAMQP
import RelayCore
import RelayService
import RelayStore
import RelayTesting
import Testing

/// The running relay's drain of `relay.dead-letters` into its store.
@Suite("Dead-letter drain of the running relay")
struct DeadLetterDrainTests {
    @Test(
        "a dead letter the store refuses is held and recorded once the store takes it, never requeued (no delivery counted)"
    )
    func storeRefusalHoldsTheBatch() async throws {
        // SQLite, whatever RELAY_TEST_STORE says: the refusal is a trigger in the relay's own file.
        let relay = try await RelayHarness.start(store: .sqlite)
        defer { Task { await relay.stop() } }
        // The store refuses every dead letter, as a full or broken disk would, through a second
        // connection to the relay's own file.
        let database = try DatabaseQueue(path: relay.app.configuration.store.path)
        try await database.write { db in
            try db.execute(
                sql:
                    "CREATE TRIGGER refuse_dead_letters BEFORE INSERT ON dead_letter BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
        }
        let record = DeadLetterRecord(
            id: "dl_refused_once",
            reason: .orphanedInteraction,
            callId: "call-refused",
            eventType: nil,
            eventId: nil,
            attempts: 1,
            firstFailureAt: Date(),
            lastFailureAt: Date(),
            lastError: "no end came",
            originalPayload: Array("{}".utf8),
            origin: nil
        )
        try await DeadLetterPublisher(amqp: relay.publisher, exchange: relay.names.deadLetterExchange).publish(record)
        // Taken by the relay (nothing ready on the queue) but not recorded: held while the store refuses.
        try await eventually("the relay to take the dead letter") {
            try await relay.publisher.messageCount(queue: relay.names.deadLettersQueue) == 0
        }
        let store = try #require(relay.app.store as? SQLiteInteractionStore)
        // Long enough for several refusals (the first retry comes after half a second, then 1 s, 2 s).
        try await Task.sleep(for: .seconds(2))
        #expect(try await store.deadLetter(id: record.id) == nil)
        // (Nothing ready on the queue either way: a requeued message goes straight back to the relay.
        // What tells holding from requeueing is the delivery count below.)

        try await database.write { db in try db.execute(sql: "DROP TRIGGER refuse_dead_letters") }
        var stored: StoredDeadLetter?
        try await eventually(timeout: .seconds(20), "the dead letter recorded once the store takes it") {
            stored = try await store.deadLetter(id: record.id)
            return stored != nil
        }
        let recorded = try #require(stored)
        #expect(recorded.copies == 1)
        // A quorum queue marks a redelivered message with x-delivery-count: this one was delivered once.
        #expect(recorded.headers["x-delivery-count"] == nil, "\(recorded.headers)")
    }
}
