public import Foundation
import GRDB
public import RelayCore

/// The embedded default `InteractionStore`: one SQLite file, reached through GRDB.
///
/// - WAL journal: readers never block the writer, and a commit is one append to the log.
/// - `synchronous = FULL`: the log is fsynced at every commit. With `NORMAL` (GRDB's WAL default) a commit
///   survives a process crash but the last ones can vanish on power loss, after the broker was acked
///   for them: that is loss. `FULL` costs one fsync per `apply`, which is what "nothing lost" needs.
/// - A busy timeout, so another process on the same file (the CLI next to the running service) waits
///   for the lock instead of failing at once.
///
/// Writes are serialised by GRDB's single writer connection, so `apply`'s read-modify-write never
/// interleaves with another one; SQLite calls run on GRDB's dispatch queues, not the cooperative pool.
/// `apply` and `markPublished` go through a `GroupCommit`: writes that arrive while a commit is under
/// way share the next transaction, so a burst of events costs one fsync rather than one each.
public final class SQLiteInteractionStore: InteractionStore {
    /// How long a connection waits for a lock held by another connection before failing with `busy`.
    public static let busyTimeout: TimeInterval = 5

    let writer: any DatabaseWriter
    private let groupCommit: GroupCommit
    private let groupRead: GroupRead

    /// Opens (or creates) the database at `path`, creating missing parent directories, and runs the schema
    /// migrations. `":memory:"` opens a private in-memory database (no WAL, nothing durable: for tests).
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(Self.busyTimeout)
        configuration.label = "RelayStore"
        do {
            if path == ":memory:" {
                writer = try DatabaseQueue(configuration: configuration)
            } else {
                let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                // The pool puts the file in WAL mode and sets `synchronous = NORMAL` after any
                // `prepareDatabase` hook runs, so FULL is set afterwards, on the one writer connection
                // (`synchronous` is per connection; readers never write).
                let pool = try DatabasePool(path: path, configuration: configuration)
                // A checkpoint every 8,000 WAL pages (about 32 MB) rather than SQLite's 1,000: the hot
                // pages (the outbox's tail, new contacts) are copied to the database once per many
                // commits, not once per few. Measured: about 6% less CPU per event.
                // `temp_store = MEMORY`: a group commit runs each write in a savepoint, and the
                // savepoints' sub-journal spilled to a temporary file past 64 KiB: a file created,
                // written and deleted per transaction, six times the WAL's own writes (strace).
                try pool.writeWithoutTransaction { db in
                    try db.execute(
                        sql: "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 8000; PRAGMA temp_store = MEMORY"
                    )
                }
                writer = pool
            }
            let migrator = SQLiteSchema.migrator
            if try writer.read({ db in try migrator.hasBeenSuperseded(db) }) {
                throw StoreError(.cannotOpen, "the database at \(path) was migrated by a newer version of the relay")
            }
            try migrator.migrate(writer)
            groupCommit = GroupCommit(writer: writer)
            groupRead = GroupRead(reader: writer)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.cannotOpen, "cannot open the database at \(path): \(error)")
        }
    }

    // MARK: InteractionStore

    public func apply(
        callId: String,
        eventId: String,
        now: Date,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult {
        try await apply(callId: callId, eventId: eventId, now: now, contact: nil, transition)
    }

    public func apply(
        callId: String,
        eventId: String,
        now: Date,
        contact: ContactCapture?,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult {
        try await database {
            try await groupCommit.write { db in
                try Self.apply(callId: callId, eventId: eventId, now: now, contact: contact, transition, db)
            }
        }
    }

    public func apply(_ batch: [EventApplication], now: Date) async throws -> [Result<ApplyResult, any Error>] {
        try await database {
            try await groupCommit.writeEach { db in
                batch.map { item in
                    Result {
                        try db.inCachedSavepoint {
                            try Self.apply(
                                callId: item.callId,
                                eventId: item.eventId,
                                now: now,
                                contact: item.contact,
                                { state in try item.transition(state, ContactRows(db: db)) },
                                db
                            )
                        }
                    }.mapError(Self.storeError)
                }
            }
        }
    }

    private static func apply(
        callId: String,
        eventId: String,
        now: Date,
        contact: ContactCapture?,
        _ transition: (Interaction?) throws -> (Interaction, [NewOutboxEntry]),
        _ db: Database
    ) throws -> ApplyResult {
        if try isProcessed(eventId, db) {
            return .alreadyProcessed(try pendingOutbox(causedBy: eventId, db))
        }
        let current = try state(callId: callId, db)
        let (next, newEntries) = try transition(current)
        guard next.callId == callId else {
            throw StoreError(.callIdMismatch, "a transition applied to call \(callId) returned call \(next.callId)")
        }
        try save(next, now: now, db)
        // The contact link commits with the state, so a redelivery (caught above) never links twice; a
        // second start under another event id finds the first one's start in `current` and links nothing.
        if let contact {
            try ContactRows(db: db).capture(contact, callId: callId, now: now, firstStart: current?.startEventId == nil)
        }
        try db.cachedStatement(sql: "INSERT INTO processed_event (event_id, call_id, processed_at) VALUES (?, ?, ?)")
            .execute(arguments: [eventId, callId, ColumnTime.value(now)])
        return .committed(try insertOutbox(newEntries, callId: callId, causeId: eventId, now: now, db))
    }

    public func interaction(callId: String) async throws -> Interaction? {
        try await database {
            try await writer.read { db in try Self.state(callId: callId, db) }
        }
    }

    public func link(callId: String) async throws -> String? {
        // Read before every customer update: shared read transactions.
        try await database {
            try await groupRead.read { db in try Self.link(callId: callId, db) }
        }
    }

    static func link(callId: String, _ db: Database) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT external_id FROM interaction WHERE call_id = ?"),
            arguments: [callId]
        )
    }

    public func relink(
        callId: String,
        to externalId: String,
        now: Date,
        replacing rule: RelinkRule
    ) async throws -> String? {
        // Through the group commit: phase 2 relinks at the enrichment rate, and a transaction of its own
        // each would cost an fsync each, in the way of the pipeline's commits.
        try await database {
            try await groupCommit.write { db in
                try Self.relink(callId: callId, to: externalId, now: now, replacing: rule, db)
            }
        }
    }

    /// One UPDATE with json_set, not a decode and encode of the whole state: the writer is the
    /// pipeline's bottleneck. Returns the call's link afterwards, read in the same transaction.
    private static func relink(
        callId: String,
        to externalId: String,
        now: Date,
        replacing rule: RelinkRule,
        _ db: Database
    )
        throws -> String?
    {
        try db.cachedStatement(
            sql: """
                UPDATE interaction
                SET external_id = :externalId, updated_at = :now,
                    state = CAST(json_set(CAST(state AS TEXT), '$.externalId', :externalId) AS BLOB)
                WHERE call_id = :callId AND external_id IS NOT :externalId
                    AND (:anyLink OR external_id IS NULL OR external_id LIKE 'PHONE:%')
                """
        ).execute(
            arguments: [
                "externalId": externalId, "now": ColumnTime.value(now), "callId": callId, "anyLink": rule == .anyLink,
            ])
        return db.changesCount > 0 ? externalId : try link(callId: callId, db)
    }

    /// Only for an interaction still held: a lookup in flight while `forget` or the retention purge
    /// removed its call must not leave a row (a sealed name) that neither would ever find again.
    public func recordSuggestion(callId: String, externalId: String, sealedName: [UInt8]?, now: Date) async throws {
        try await database {
            try await groupCommit.write { db in
                try db.cachedStatement(
                    sql: """
                        INSERT INTO crm_suggestion (call_id, external_id, name, suggested_at)
                        SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM interaction WHERE call_id = ?)
                        ON CONFLICT (call_id, external_id) DO NOTHING
                        """
                ).execute(arguments: [callId, externalId, sealedName.map { Data($0) }, ColumnTime.value(now), callId])
            }
        }
    }

    public func phoneLinkedInteractions(since: Date, limit: Int) async throws -> [Interaction] {
        try await interactions(
            where: "external_id LIKE 'PHONE:%' AND first_seen_at >= ? ORDER BY first_seen_at, call_id",
            [ColumnTime.value(since) as Double],
            limit: limit
        )
    }

    public func interactionsWithDueTimers(now: Date, limit: Int) async throws -> [Interaction] {
        try await interactions(
            where: "next_due_at IS NOT NULL AND next_due_at <= ? ORDER BY next_due_at, call_id",
            [ColumnTime.value(now) as Double],
            limit: limit
        )
    }

    /// The states of the interactions a condition (and its order) selects, at most `limit`.
    private func interactions(
        where condition: String,
        _ arguments: StatementArguments,
        limit: Int
    ) async throws -> [Interaction] {
        try await database {
            try await writer.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: "SELECT call_id, state FROM interaction WHERE \(condition) LIMIT ?",
                    arguments: arguments + [max(0, limit)]
                )
                return try rows.map { row in try InteractionStateCoding.decode(row["state"], callId: row["call_id"]) }
            }
        }
    }

    public func pendingOutbox(dueBy: Date?, limit: Int) async throws -> [OutboxEntry] {
        try await database {
            try await writer.read { db in
                try Row.fetchAll(
                    db.cachedStatement(
                        sql: "SELECT * FROM outbox WHERE finished_at IS NULL AND due_at <= ? ORDER BY id LIMIT ?"
                    ),
                    arguments: [dueBy.map { ColumnTime.value($0) } ?? Double.greatestFiniteMagnitude, max(0, limit)]
                ).map(Self.outboxEntry)
            }
        }
    }

    public func pendingOutboxIds(dueBy: Date?, limit: Int) async throws -> [Int64] {
        try await database {
            try await writer.read { db in
                try Int64.fetchAll(
                    db.cachedStatement(
                        sql: "SELECT id FROM outbox WHERE finished_at IS NULL AND due_at <= ? ORDER BY id LIMIT ?"
                    ),
                    arguments: [dueBy.map { ColumnTime.value($0) } ?? Double.greatestFiniteMagnitude, max(0, limit)]
                )
            }
        }
    }

    public func pendingOutbox(ids: [Int64], dueBy: Date?) async throws -> [OutboxEntry] {
        guard !ids.isEmpty else { return [] }
        let due = dueBy.map { ColumnTime.value($0) } ?? Double.greatestFiniteMagnitude
        return try await database {
            try await writer.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM outbox WHERE finished_at IS NULL AND due_at <= ?
                            AND id IN (\(databaseQuestionMarks(count: ids.count))) ORDER BY id
                        """,
                    arguments: StatementArguments([due]) + StatementArguments(ids)
                ).map(Self.outboxEntry)
            }
        }
    }

    public func outboxSummary(now: Date) async throws -> OutboxSummary {
        try await database {
            try await writer.read { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT kind, COUNT(*) AS pending, SUM(due_at <= :now) AS due,
                            SUM(due_at > :now AND attempts > 0) AS retrying, MIN(created_at) AS oldest
                        FROM outbox WHERE finished_at IS NULL GROUP BY kind
                        """,
                    arguments: ["now": ColumnTime.value(now)]
                )
                var summary = OutboxSummary()
                for row in rows {
                    var kind = OutboxSummary.Kind()
                    kind.pending = row["pending"]
                    kind.due = row["due"] ?? 0
                    kind.retrying = row["retrying"] ?? 0
                    kind.oldestCreatedAt = (row["oldest"] as Double?).map(ColumnTime.date)
                    summary.kinds[row["kind"]] = kind
                }
                return summary
            }
        }
    }

    public func outboxEntries(_ query: OutboxQuery) async throws -> [OutboxEntry] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        switch query.state {
        case .pending: conditions.append("finished_at IS NULL")
        case .failing: conditions.append("finished_at IS NULL AND attempts > 0")
        case .finished: conditions.append("finished_at IS NOT NULL")
        }
        if let kind = query.kind {
            conditions.append("kind = ?")
            arguments += [kind]
        }
        if let callId = query.callId {
            conditions.append("call_id = ?")
            arguments += [callId]
        }
        let sql = "SELECT * FROM outbox WHERE \(conditions.joined(separator: " AND ")) ORDER BY id DESC LIMIT ?"
        arguments += [max(0, query.limit)]
        let bound = arguments
        return try await database {
            try await writer.read { db in try Row.fetchAll(db, sql: sql, arguments: bound).map(Self.outboxEntry) }
        }
    }

    public func outboxEntry(id: Int64) async throws -> OutboxEntry? {
        try await database {
            try await writer.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE id = ?", arguments: [id]).map(Self.outboxEntry)
            }
        }
    }

    public func settleOutbox(_ settlements: [OutboxSettlement], now: Date) async throws {
        guard !settlements.isEmpty else { return }
        try await database {
            try await groupCommit.write { db in try Self.settle(settlements, now: now, db) }
        }
    }

    private static func settle(_ settlements: [OutboxSettlement], now: Date, _ db: Database) throws {
        for settlement in settlements {
            switch settlement {
            case .finished(let id, let outcome):
                try db.cachedStatement(
                    sql: "UPDATE outbox SET finished_at = ?, outcome = ? WHERE id = ? AND finished_at IS NULL"
                ).execute(arguments: [ColumnTime.value(now), outcome, id])
            case .retry(let id, let dueAt, let attempts, let lastError, let payload):
                try db.cachedStatement(
                    sql: """
                        UPDATE outbox SET due_at = ?, attempts = ?, last_error = ?, payload = COALESCE(?, x'')
                        WHERE id = ? AND finished_at IS NULL
                        """
                ).execute(arguments: [ColumnTime.value(dueAt), attempts, lastError, Data(payload), id])
            case .deadLetter(let id, let dueAt, let lastError, let record):
                try db.cachedStatement(
                    sql: """
                        UPDATE outbox SET kind = 'deadLetter', due_at = ?, last_error = ?, payload = COALESCE(?, x'')
                        WHERE id = ? AND finished_at IS NULL
                        """
                ).execute(arguments: [ColumnTime.value(dueAt), lastError, Data(record), id])
            }
        }
    }

    public func completeLookup(
        _ completion: LookupCompletion,
        now: Date
    ) async throws -> (link: String?, update: OutboxEntry?) {
        try await database {
            try await groupCommit.write { db in
                let link = try Self.relink(
                    callId: completion.callId,
                    to: completion.externalId,
                    now: now,
                    replacing: completion.rule,
                    db
                )
                var update: OutboxEntry?
                if link == completion.externalId {
                    update = try Self.insertOutbox(
                        [completion.update],
                        callId: completion.callId,
                        causeId: completion.causeId,
                        now: now,
                        db
                    ).first
                    if let override = completion.override {
                        try Self.setOverride(
                            phoneKey: override.phoneKey,
                            externalId: completion.externalId,
                            callId: completion.callId,
                            now: now,
                            expiresAt: override.expiresAt,
                            db
                        )
                    }
                }
                try Self.settle(
                    [.finished(id: completion.entryId, outcome: update == nil ? "superseded" : "relinked")],
                    now: now,
                    db
                )
                return (link, update)
            }
        }
    }

    public func enqueueOutbox(
        callId: String,
        causeId: String,
        _ entries: [NewOutboxEntry],
        relink: (externalId: String, rule: RelinkRule)?,
        now: Date
    ) async throws -> [OutboxEntry] {
        try await database {
            try await groupCommit.write { db in
                if let relink {
                    let link = try Self.relink(
                        callId: callId,
                        to: relink.externalId,
                        now: now,
                        replacing: relink.rule,
                        db
                    )
                    guard link == relink.externalId else { return [] }
                }
                return try Self.insertOutbox(entries, callId: callId, causeId: causeId, now: now, db)
            }
        }
    }

    public func makeOutboxDue(ids: [Int64], now: Date) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await database {
            try await groupCommit.write { db in
                let statement = try db.cachedStatement(
                    sql: "UPDATE outbox SET due_at = ? WHERE id = ? AND finished_at IS NULL AND due_at > ?"
                )
                var changed = 0
                for id in ids {
                    try statement.execute(arguments: [ColumnTime.value(now), id, ColumnTime.value(now)])
                    changed += db.changesCount
                }
                return changed
            }
        }
    }

    public func checkWritable() async throws {
        try await database {
            try await writer.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) { .commit }
            }
        }
    }

    public func pruneProcessedEvents(before cutoff: Date) async throws -> Int {
        try await database {
            try await writer.write { db in
                try db.execute(
                    sql: "DELETE FROM processed_event WHERE processed_at < ?",
                    arguments: [ColumnTime.value(cutoff)]
                )
                return db.changesCount
            }
        }
    }

    /// Removes entries finished before `cutoff`; unfinished entries are never removed.
    public func pruneFinishedOutbox(before cutoff: Date) async throws -> Int {
        try await database {
            try await writer.write { db in
                try db.execute(
                    sql: "DELETE FROM outbox WHERE finished_at IS NOT NULL AND finished_at < ?",
                    arguments: [ColumnTime.value(cutoff)]
                )
                return db.changesCount
            }
        }
    }

    public func override(phoneKey: String, now: Date) async throws -> String? {
        try await database {
            try await writer.read { db in try Self.liveOverride(phoneKey: phoneKey, now: now, db) }
        }
    }

    static func liveOverride(phoneKey: String, now: Date, _ db: Database) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT external_id FROM identity_override WHERE phone_key = ? AND expires_at > ?"),
            arguments: [phoneKey, ColumnTime.value(now)]
        )
    }

    public func setOverride(
        phoneKey: String,
        externalId: String,
        callId: String,
        now: Date,
        expiresAt: Date
    ) async throws {
        try await database {
            try await groupCommit.write { db in
                try Self.setOverride(
                    phoneKey: phoneKey,
                    externalId: externalId,
                    callId: callId,
                    now: now,
                    expiresAt: expiresAt,
                    db
                )
            }
        }
    }

    private static func setOverride(
        phoneKey: String,
        externalId: String,
        callId: String,
        now: Date,
        expiresAt: Date,
        _ db: Database
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO identity_override (phone_key, external_id, call_id, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (phone_key) DO UPDATE SET
                    external_id = excluded.external_id, call_id = excluded.call_id,
                    created_at = excluded.created_at, expires_at = excluded.expires_at
                """,
            arguments: [phoneKey, externalId, callId, ColumnTime.value(now), ColumnTime.value(expiresAt)]
        )
    }

    public func pruneExpiredOverrides(now: Date) async throws -> Int {
        try await database {
            try await groupCommit.write { db in
                try db.execute(
                    sql: "DELETE FROM identity_override WHERE expires_at <= ?",
                    arguments: [ColumnTime.value(now)]
                )
                return db.changesCount
            }
        }
    }

    public func purgeFinishedInteractions(before cutoff: Date) async throws -> FinishedInteractionsPurge {
        try await database {
            try await writer.write { db in
                // `updated_at`, not the start: an interaction is as old as its last change, and a finished
                // one changes no more.
                try db.execute(
                    sql: """
                        CREATE TEMP TABLE IF NOT EXISTS purged_call (call_id TEXT PRIMARY KEY NOT NULL);
                        DELETE FROM purged_call;
                        INSERT INTO purged_call (call_id)
                            SELECT call_id FROM interaction
                            WHERE status IN ('completed', 'orphaned') AND updated_at < ?;
                        """,
                    arguments: [ColumnTime.value(cutoff)]
                )
                try db.execute(
                    sql: "DELETE FROM processed_event WHERE call_id IN (SELECT call_id FROM purged_call)"
                )
                let processedEvents = db.changesCount
                try db.execute(
                    sql: """
                        DELETE FROM outbox
                        WHERE finished_at IS NOT NULL AND call_id IN (SELECT call_id FROM purged_call)
                        """
                )
                let outboxEntries = db.changesCount
                // What the contacts keep of an interaction (its sealed wrap-up notes, its journey link) goes
                // with it; the link table is keyed by contact, so this one statement scans it.
                try db.execute(
                    sql: """
                        DELETE FROM interaction_note WHERE call_id IN (SELECT call_id FROM purged_call);
                        DELETE FROM crm_suggestion WHERE call_id IN (SELECT call_id FROM purged_call);
                        DELETE FROM contact_interaction WHERE call_id IN (SELECT call_id FROM purged_call);
                        """
                )
                try db.execute(sql: "DELETE FROM interaction WHERE call_id IN (SELECT call_id FROM purged_call)")
                let interactions = db.changesCount
                try db.execute(sql: "DELETE FROM purged_call")
                return FinishedInteractionsPurge(
                    interactions: interactions,
                    processedEvents: processedEvents,
                    outboxEntries: outboxEntries
                )
            }
        }
    }

    // MARK: Rows

    private static func isProcessed(_ eventId: String, _ db: Database) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM processed_event WHERE event_id = ?)"),
            arguments: [eventId]
        )
            ?? false
    }

    private static func state(callId: String, _ db: Database) throws -> Interaction? {
        guard
            let data = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT state FROM interaction WHERE call_id = ?"),
                arguments: [callId]
            )
        else { return nil }
        return try InteractionStateCoding.decode(data, callId: callId)
    }

    private static func save(_ interaction: Interaction, now: Date, _ db: Database) throws {
        // Positional arguments and a cached statement: this runs for every event, on the single writer.
        let arguments: StatementArguments = [
            interaction.callId,
            interaction.status.rawValue,
            interaction.channel?.rawValue,
            interaction.direction?.rawValue,
            ColumnTime.value(interaction.startedAt),
            ColumnTime.value(interaction.endedAt),
            ColumnTime.value(interaction.wrappedUpAt),
            interaction.queueId,
            interaction.agentId,
            interaction.wrapUpCode,
            interaction.disconnectType,
            interaction.externalId,
            ColumnTime.value(interaction.nextDueAt),
            ColumnTime.value(interaction.firstSeenAt),
            ColumnTime.value(now),
            try InteractionStateCoding.encode(interaction),
        ]
        try db.cachedStatement(
            sql: """
                INSERT INTO interaction (
                    call_id, status, channel, direction, started_at, ended_at, wrapped_up_at, queue_id, agent_id,
                    wrap_up_code, disconnect_type, external_id, next_due_at, first_seen_at, updated_at, state
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (call_id) DO UPDATE SET
                    status = excluded.status, channel = excluded.channel, direction = excluded.direction,
                    started_at = excluded.started_at, ended_at = excluded.ended_at,
                    wrapped_up_at = excluded.wrapped_up_at, queue_id = excluded.queue_id,
                    agent_id = excluded.agent_id, wrap_up_code = excluded.wrap_up_code,
                    disconnect_type = excluded.disconnect_type, external_id = excluded.external_id,
                    next_due_at = excluded.next_due_at, first_seen_at = excluded.first_seen_at,
                    updated_at = excluded.updated_at, state = excluded.state
                """
        ).execute(arguments: arguments)
    }

    private static func pendingOutbox(causedBy eventId: String, _ db: Database) throws -> [OutboxEntry] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM outbox WHERE cause_id = ? AND finished_at IS NULL ORDER BY id"),
            arguments: [eventId]
        ).map(outboxEntry)
    }

    private static func insertOutbox(
        _ newEntries: [NewOutboxEntry],
        callId: String,
        causeId: String,
        now: Date,
        _ db: Database
    ) throws -> [OutboxEntry] {
        var entries: [OutboxEntry] = []
        for entry in newEntries {
            // An empty `Data` may bind as NULL (a nil base address): store it as an empty blob.
            try db.cachedStatement(
                sql: """
                    INSERT INTO outbox (cause_id, call_id, kind, payload, created_at, due_at)
                    VALUES (?, ?, ?, COALESCE(?, x''), ?, ?)
                    """
            ).execute(arguments: [
                causeId, callId, entry.kind, Data(entry.payload), ColumnTime.value(now), ColumnTime.value(now),
            ])
            entries.append(
                OutboxEntry(
                    id: db.lastInsertedRowID,
                    causeId: causeId,
                    callId: callId,
                    kind: entry.kind,
                    payload: entry.payload,
                    createdAt: ColumnTime.stored(now),
                    inMemoryJob: entry.inMemoryJob
                )
            )
        }
        return entries
    }

    private static func outboxEntry(_ row: Row) throws -> OutboxEntry {
        let payload: Data = row["payload"]
        let finishedAt: Double? = row["finished_at"]
        return OutboxEntry(
            id: row["id"],
            causeId: row["cause_id"],
            callId: row["call_id"],
            kind: row["kind"],
            payload: [UInt8](payload),
            createdAt: ColumnTime.date(row["created_at"]),
            dueAt: ColumnTime.date(row["due_at"]),
            attempts: row["attempts"],
            lastError: row["last_error"],
            finishedAt: finishedAt.map(ColumnTime.date),
            outcome: row["outcome"]
        )
    }

    /// Runs a database access, turning GRDB's errors into `StoreError`s; any other error (a transition's,
    /// a cancellation) passes through as it is.
    /// A write in the group commit's next transaction, in a savepoint of its own (for the store's
    /// other files: the dead-letter rows).
    func writeShared<Result: Sendable>(_ work: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        try await groupCommit.write(work)
    }

    func database<T>(_ access: () async throws -> T) async throws -> T {
        do {
            return try await access()
        } catch {
            throw Self.storeError(error)
        }
    }

    /// SQLite's errors as the store's; any other error as it is.
    static func storeError(_ error: any Error) -> any Error {
        guard let error = error as? DatabaseError else { return error }
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreError(.busy, "the database stayed locked: \(error.message ?? "\(error.resultCode)")")
        default:
            return StoreError(.databaseFailed, "\(error.resultCode): \(error.message ?? "no message")")
        }
    }
}
