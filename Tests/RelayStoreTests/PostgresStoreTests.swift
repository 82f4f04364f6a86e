import Foundation
import PostgresNIO
import RelayCore
import RelayStore
import RelayTesting
import Testing

@testable import RelayPostgres

/// What only the PostgreSQL store has: versioned migrations that several relays starting at once
/// apply once, and its URL.
@Suite("PostgreSQL store")
struct PostgresStoreTests {
    @Test("migrations apply once, in order, however many relays start together; a newer schema is refused")
    func migrations() async throws {
        try await TestPostgres.withSchema { (migrated: PostgresStore) async throws -> Void in
            #expect(try await migrated.schemaVersions() == PostgresStore.migrations.map(\.version))
            #expect(try await migrated.migrate() == [], "a second start applies nothing")
        }
        // Three relays starting at once on an empty schema: the advisory lock lets one migrate.
        try await TestPostgres.withEmptySchema { url, schema in
            let relays = (0..<3).map { _ in
                PostgresStore(configuration: url, searchPath: schema, logger: TestPostgres.logger)
            }
            let runs = relays.map { relay in Task { try await relay.run() } }
            defer { for run in runs { run.cancel() } }
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for relay in relays { group.addTask { try await relay.migrate() } }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
            #expect(applied.flatMap { $0 }.sorted() == PostgresStore.migrations.map(\.version), "\(applied)")
            #expect(try await relays[0].schemaVersions() == PostgresStore.migrations.map(\.version))

            // A database a newer relay migrated: this one refuses to work on it.
            try await relays[0].client.query(
                "INSERT INTO relay_schema_migration (version, name) VALUES (999, 'future')",
                logger: TestPostgres.logger
            )
            let refusal = await #expect(throws: PostgresStoreError.self) { try await relays[1].migrate() }
            #expect(refusal?.description.contains("version 999, newer than this relay knows") == true)
        }
    }

    /// A batch is read ahead and written at its end in a few statements; a value the server refuses there
    /// aborts the whole transaction. The batch is then applied again, one savepoint per event: only the
    /// event with the refused value fails, as on SQLite.
    @Test("a value PostgreSQL refuses in a batch fails only its own event; the rest commit")
    func refusedValueInABatch() async throws {
        try await TestPostgres.withSchema { (store: PostgresStore) async throws -> Void in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            // PostgreSQL's text holds no NUL: refused when read ahead (a call id) or when written (an outbox kind).
            func application(_ callId: String, kind: String = "k") -> EventApplication {
                EventApplication(callId: callId, eventId: "event-\(callId)", contact: nil) { current, _ in
                    (
                        current ?? Interaction(callId: callId, firstSeenAt: now),
                        [NewOutboxEntry(kind: kind, payload: [1])]
                    )
                }
            }
            let batch = [
                application("call-0"), application("call-1", kind: "k\u{0}"), application("call-2"),
                application("call-\u{0}3"),
                application("call-4"),
            ]
            let results = try await store.apply(batch, now: now)
            #expect(results.map { (try? $0.get()) != nil } == [true, false, true, false, true], "\(results)")
            let counts = try await store.rowCounts()
            #expect(counts.interactions == 3 && counts.processedEvents == 3 && counts.outbox == 3)
            #expect(try await store.interaction(callId: "call-1") == nil)
            // And a batch the server takes whole still commits in one go.
            let next = try await store.apply([application("call-5"), application("call-6")], now: now)
            #expect(next.allSatisfy { (try? $0.get()) != nil })
        }
    }

    /// Pages of dead letters are read by `seq`. Two relays recording at once could commit a lower `seq`
    /// after a reader paged past it; recordings therefore take turns, so `seq` follows commit order.
    @Test("a dead letter's recording waits for one in flight, so no page passes a row committed later with a lower seq")
    func deadLetterRecordingsTakeTurns() async throws {
        try await TestPostgres.withSchema { (store: PostgresStore) async throws -> Void in
            let letter = DeadLetterStoreTests().letter("dl_late")
            let now = Date(timeIntervalSince1970: 1_765_000_000)
            let lock = AdvisoryLockKey.deadLetterRecording(in: store.schema ?? "public")
            let recording = try await store.transaction { connection in
                // Another relay, mid-recording: its transaction holds the turn.
                try await connection.query("SELECT pg_advisory_xact_lock(\(lock))", logger: TestPostgres.logger)
                let recording = Task { try await store.recordDeadLetters([letter], now: now) }
                try await eventually(timeout: .seconds(30), "the recording waits for its turn") {
                    let rows = try await store.client.query(
                        """
                        SELECT count(*) FROM pg_locks
                        WHERE locktype = 'advisory' AND NOT granted AND ((classid::int8 << 32) | objid::int8) = \(lock)
                        """,
                        logger: TestPostgres.logger
                    )
                    for try await waiting in rows.decode(Int.self) { return waiting > 0 }
                    return false
                }
                #expect(try await store.deadLetters(DeadLetterQuery()).isEmpty)
                return recording
            }
            #expect(try await recording.value == [.new])
            #expect(try await store.deadLetters(DeadLetterQuery()).map(\.id) == ["dl_late"])
        }
    }

    @Test("a wrong password is an error naming the server and the settings to check, not a hang")
    func wrongPasswordFailsInTime() async throws {
        var url = try TestPostgres.url()
        url.password = "not-the-password"
        let store = PostgresStore(configuration: url, maximumConnections: 1, logger: TestPostgres.logger)
        let run = Task { try await store.run() }
        defer { run.cancel() }
        let error = await #expect(throws: PostgresStoreError.self) { try await store.migrate(timeout: .seconds(2)) }
        #expect(
            error?.description.contains("\(url.host):\(url.port)/\(url.database) did not answer") == true,
            "\(String(describing: error))"
        )
        #expect(error?.description.contains("not-the-password") == false)
    }

    @Test("store.url: postgres://user:password@host:port/database, the password never shown")
    func url() throws {
        let url = try PostgresURL(parsing: "postgres://relay:s%40cret@db.internal:6432/relay")
        #expect(
            url
                == PostgresURL(
                    host: "db.internal",
                    port: 6432,
                    username: "relay",
                    password: "s@cret",
                    database: "relay"
                )
        )
        #expect(url.description == "postgres://relay:***@db.internal:6432/relay")
        #expect(try PostgresURL(parsing: "postgresql://relay@localhost/relay").port == 5432)
        #expect(
            try PostgresURL(parsing: "postgres://relay:50%2541@localhost/relay").password == "50%41",
            "decoded once"
        )
        for (text, reason) in [
            ("mysql://relay@localhost/relay", "not a postgres:// URL"), ("postgres://localhost/relay", "names no user"),
            ("postgres://relay@localhost", "names no database"),
        ] {
            #expect(throws: PostgresStoreError.self, "\(text)") { try PostgresURL(parsing: text) }
            #expect((try? PostgresURL(parsing: text)) == nil)
            do { _ = try PostgresURL(parsing: text) } catch {
                #expect(error.description.contains(reason), "\(text): \(error)")
            }
        }
    }
}
