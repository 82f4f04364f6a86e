import GRDB

/// What the store holds beside the JSON state, read raw: for tests today, for operator tooling later.
extension SQLiteInteractionStore {
    /// The query columns of one `interaction` row, as stored (times in seconds since 1970).
    struct InteractionColumns: Sendable, Hashable {
        var status: String
        var channel: String?
        var direction: String?
        var startedAt: Double?
        var endedAt: Double?
        var wrappedUpAt: Double?
        var queueId: String?
        var agentId: String?
        var wrapUpCode: String?
        var disconnectType: String?
        var externalId: String?
        var nextDueAt: Double?
        var firstSeenAt: Double
        var updatedAt: Double
    }

    func columns(callId: String) async throws -> InteractionColumns? {
        try await writer.read { db in
            guard
                let row = try Row.fetchOne(db, sql: "SELECT * FROM interaction WHERE call_id = ?", arguments: [callId])
            else { return nil }
            return InteractionColumns(
                status: row["status"],
                channel: row["channel"],
                direction: row["direction"],
                startedAt: row["started_at"],
                endedAt: row["ended_at"],
                wrappedUpAt: row["wrapped_up_at"],
                queueId: row["queue_id"],
                agentId: row["agent_id"],
                wrapUpCode: row["wrap_up_code"],
                disconnectType: row["disconnect_type"],
                externalId: row["external_id"],
                nextDueAt: row["next_due_at"],
                firstSeenAt: row["first_seen_at"],
                updatedAt: row["updated_at"]
            )
        }
    }

    /// Row counts per table, to prove what a failed `apply` did not write.
    func rowCounts() async throws -> (interactions: Int, processedEvents: Int, outbox: Int) {
        try await writer.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM interaction") ?? 0,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM processed_event") ?? 0,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0
            )
        }
    }

    func appliedMigrations() async throws -> Set<String> {
        try await writer.read { db in try SQLiteSchema.migrator.appliedIdentifiers(db) }
    }

    /// The writer connection's settings: journal mode, `synchronous` (2 is FULL) and busy timeout in ms.
    func connectionSettings() async throws -> (journalMode: String, synchronous: Int, busyTimeoutMilliseconds: Int) {
        try await writer.writeWithoutTransaction { db in
            (
                try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "",
                try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1,
                try Int.fetchOne(db, sql: "PRAGMA busy_timeout") ?? -1
            )
        }
    }
}

extension SQLiteSchema {
    /// Migrates a new database at `path` up to `lastMigration` only, then runs `seed` on it: a database
    /// as an older version left it, for migration tests.
    static func migrateForTest(path: String, upTo lastMigration: String, seed: (Database) throws -> Void) throws {
        let queue = try DatabaseQueue(path: path)
        try migrator.migrate(queue, upTo: lastMigration)
        try queue.write { db in try seed(db) }
    }
}
