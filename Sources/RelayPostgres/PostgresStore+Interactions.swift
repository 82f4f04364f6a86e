public import Foundation
import NIOCore
import PostgresNIO
public import RelayCore
public import RelayStore

/// The interactions, processed events, outbox and overrides on PostgreSQL: the SQLite store's answers
/// (the conformance suite holds both to them), for several relays on one database.
///
/// SQLite's single writer serialises every write; here a write that touches a call takes the call's
/// advisory lock first (`PostgresSession.lock`), at READ COMMITTED, so each statement after it sees
/// what the previous holder committed. Events of one call therefore never interleave their
/// read-modify-write, whichever relay consumes them; duplicates stop at the processed event's key.
extension PostgresStore: InteractionStore, ChoreLeases {
    static let outboxColumns =
        "id, cause_id, call_id, kind, payload, created_at, due_at, attempts, last_error, finished_at, outcome"

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
        let application = EventApplication(callId: callId, eventId: eventId, contact: contact) { state, _ in
            try transition(state)
        }
        return try await apply([application], now: now)[0].get()
    }

    public func apply(_ batch: [EventApplication], now: Date) async throws -> [Result<ApplyResult, any Error>] {
        guard !batch.isEmpty else { return [] }
        do {
            return try await apply(batch, now: now, mode: .batched)
        } catch let refused as PostgresEventBatch.BatchedWriteRefused {
            logger.debug(
                "PostgreSQL refused a batched write; applying the batch again one event at a time",
                metadata: [LogKey.error: "\(Self.storeError(refused.underlying))", LogKey.batch: "\(batch.count)"]
            )
            return try await apply(batch, now: now, mode: .isolated)
        }
    }

    private func apply(
        _ batch: [EventApplication],
        now: Date,
        mode: PostgresEventBatch.Mode
    ) async throws -> [Result<ApplyResult, any Error>] {
        try await session { session in
            // The contact graph's shared lock, the calls' locks, and a new caller's identifier keys too
            // (two relays never both create a contact for one caller), in one statement.
            try session.lock(
                calls: batch.map(\.callId),
                identifiers: batch.flatMap { item in item.contact?.sighting == nil ? [] : item.contact?.keys ?? [] },
                sharingContactGraph: true
            )
            return try PostgresEventBatch(session: session, store: self, now: now, mode: mode).apply(batch)
        }
    }

    public func interaction(callId: String) async throws -> Interaction? {
        try await session { session in try Self.state(callId: callId, session) }
    }

    public func link(callId: String) async throws -> String? {
        try await session { session in try Self.link(callId: callId, session) }
    }

    static func link(callId: String, _ session: PostgresSession) throws -> String? {
        for row in try session.run("SELECT external_id FROM interaction WHERE call_id = \(callId)").rows {
            return try row.decode(String?.self)
        }
        return nil
    }

    public func relink(
        callId: String,
        to externalId: String,
        now: Date,
        replacing rule: RelinkRule
    ) async throws -> String? {
        try await session { session in
            try session.lockContactGraph(exclusive: false)
            try session.lock(calls: [callId])
            return try Self.relink(callId: callId, to: externalId, now: now, replacing: rule, session)
        }
    }

    /// The state is decoded, changed and written again (SQLite edits its JSON in place with json_set):
    /// PostgreSQL's JSON functions would rewrite the whole text in their own form, and the state's bytes
    /// are the same on both stores. The caller holds the call's lock.
    private static func relink(
        callId: String,
        to externalId: String,
        now: Date,
        replacing rule: RelinkRule,
        _ session: PostgresSession
    ) throws -> String? {
        guard var interaction = try state(callId: callId, session) else { return nil }
        let current = interaction.externalId
        if current == externalId { return externalId }
        guard rule == .anyLink || current == nil || current!.hasPrefix("PHONE:") else { return current }
        interaction.externalId = externalId
        let state = ByteBuffer(bytes: try InteractionStateCoding.encode(interaction))
        try session.run(
            """
            UPDATE interaction SET external_id = \(externalId), updated_at = \(ColumnTime.value(now)), state = \(state)
            WHERE call_id = \(callId)
            """
        )
        return externalId
    }

    public func recordSuggestion(callId: String, externalId: String, sealedName: [UInt8]?, now: Date) async throws {
        try await session { session in
            try session.lockContactGraph(exclusive: false)
            try session.lock(calls: [callId])
            try session.run(
                """
                INSERT INTO crm_suggestion (call_id, external_id, name, suggested_at)
                SELECT \(callId), \(externalId), \(sealedName.map { ByteBuffer(bytes: $0) }), \(ColumnTime.value(now))
                WHERE EXISTS (SELECT 1 FROM interaction WHERE call_id = \(callId))
                ON CONFLICT (call_id, external_id) DO NOTHING
                """
            )
        }
    }

    public func phoneLinkedInteractions(since: Date, limit: Int) async throws -> [Interaction] {
        try await session { session in
            try Self.interactions(
                session,
                """
                SELECT call_id, state FROM interaction WHERE external_id LIKE 'PHONE:%' AND first_seen_at >= \(ColumnTime.value(since))
                ORDER BY first_seen_at, call_id LIMIT \(max(0, limit))
                """
            )
        }
    }

    public func interactionsWithDueTimers(now: Date, limit: Int) async throws -> [Interaction] {
        try await session { session in
            try Self.interactions(
                session,
                """
                SELECT call_id, state FROM interaction WHERE next_due_at IS NOT NULL AND next_due_at <= \(ColumnTime.value(now))
                ORDER BY next_due_at, call_id LIMIT \(max(0, limit))
                """
            )
        }
    }

    private static func interactions(_ session: PostgresSession, _ query: PostgresQuery) throws -> [Interaction] {
        try session.run(query).rows.map { row in
            let (callId, state) = try row.decode((String, ByteBuffer).self)
            return try InteractionStateCoding.decode(Data(state.readableBytesView), callId: callId)
        }
    }

    public func pendingOutbox(dueBy: Date?, limit: Int) async throws -> [OutboxEntry] {
        let due = dueBy.map { ColumnTime.value($0) } ?? Double.greatestFiniteMagnitude
        return try await session { session in
            try Self.outbox(
                session,
                "WHERE finished_at IS NULL AND due_at <= \(due) ORDER BY id LIMIT \(max(0, limit))"
            )
        }
    }

    public func pendingOutboxIds(dueBy: Date?, limit: Int) async throws -> [Int64] {
        let due = dueBy.map { ColumnTime.value($0) } ?? Double.greatestFiniteMagnitude
        return try await session { session in
            try session.run(
                """
                SELECT id FROM outbox
                WHERE finished_at IS NULL AND due_at <= \(due)
                    AND (\(self.instance)::text IS NULL OR claimed_by IS NULL OR claimed_by = \(self.instance)
                        OR claimed_until < \(ColumnTime.value(Date())))
                ORDER BY id LIMIT \(max(0, limit))
                """
            ).rows.map { try $0.decode(Int64.self) }
        }
    }

    public func pendingOutbox(ids: [Int64], dueBy: Date?) async throws -> [OutboxEntry] {
        guard !ids.isEmpty else { return [] }
        let due = dueBy.map { ColumnTime.value($0) } ?? Double.greatestFiniteMagnitude
        return try await session { session in
            try Self.outbox(session, "WHERE finished_at IS NULL AND due_at <= \(due) AND id = ANY(\(ids)) ORDER BY id")
        }
    }

    public func claimOutbox(ids: [Int64], dueBy: Date?) async throws -> [OutboxEntry] {
        guard instance != nil else { return try await pendingOutbox(ids: ids, dueBy: dueBy) }
        guard !ids.isEmpty else { return [] }
        let due = dueBy.map { ColumnTime.value($0) } ?? Double.greatestFiniteMagnitude
        return try await session { session in try self.claim(session, ids: ids, dueBy: due, now: Date()) }
    }

    /// Claims live on the wall clock, whatever time an operation is given (a test's fixed one, an
    /// event's): a lease says how long ago its holder was last seen alive.
    func claimedUntil(_ now: Date) -> Double {
        ColumnTime.value(now) + Double(claimLease.components.seconds) + Double(claimLease.components.attoseconds) / 1e18
    }

    /// Claims the unfinished entries among `ids` (or caused by `causeId`) due by `dueBy` that this relay
    /// may take: nobody's, its own, or one whose lease ran out. Rows another transaction has locked (a
    /// relay claiming the same entries this instant) are skipped: theirs, not to wait for.
    func claim(
        _ session: PostgresSession,
        ids: [Int64]? = nil,
        causeId: String? = nil,
        dueBy: Double = .greatestFiniteMagnitude,
        now: Date
    ) throws -> [OutboxEntry] {
        guard let instance else {
            return try Self.outbox(
                session,
                """
                WHERE finished_at IS NULL AND due_at <= \(dueBy) AND (\(ids)::int8[] IS NULL OR id = ANY(\(ids)))
                    AND (\(causeId)::text IS NULL OR cause_id = \(causeId))
                ORDER BY id
                """
            )
        }
        let result = try session.run(
            """
            UPDATE outbox SET claimed_by = \(instance), claimed_until = \(claimedUntil(now))
            WHERE id IN (
                SELECT id FROM outbox
                WHERE finished_at IS NULL AND due_at <= \(dueBy) AND (\(ids)::int8[] IS NULL OR id = ANY(\(ids)))
                    AND (\(causeId)::text IS NULL OR cause_id = \(causeId))
                    AND (claimed_by IS NULL OR claimed_by = \(instance) OR claimed_until < \(ColumnTime.value(now)))
                FOR UPDATE SKIP LOCKED)
            RETURNING \(unescaped: Self.outboxColumns)
            """
        )
        return try Self.outboxRows(result).sorted { $0.id < $1.id }
    }

    /// Keeps this relay's claims alive, every third of the lease, until the task is cancelled. Rows
    /// another transaction holds are skipped, not waited for: they are this relay's outcomes being
    /// recorded (finished, or due later), and a renewal that waited for a grouped outcome write, which
    /// locks its rows in another order, could deadlock with it.
    func renewClaimsUntilCancelled() async {
        guard let instance else { return }
        // A lease is renewed a third of it after it was given (and the schema is migrated by then).
        try? await Task.sleep(for: claimLease / 3)
        while !Task.isCancelled {
            do {
                let until = claimedUntil(Date())
                try await session { session in
                    try session.run(
                        """
                        UPDATE outbox SET claimed_until = \(until)
                        WHERE id IN (
                            SELECT id FROM outbox WHERE claimed_by = \(instance) AND finished_at IS NULL
                            FOR UPDATE SKIP LOCKED)
                        """
                    )
                }
            } catch {
                if Task.isCancelled { return }
                logger.error(
                    "could not renew this relay's claims on outbox entries; another relay may take them once they lapse",
                    metadata: [LogKey.error: "\(error)"]
                )
            }
            try? await Task.sleep(for: claimLease / 3)
        }
    }

    /// A tool (no instance name) runs what it is asked to run.
    public func takeChoreLease(_ name: String, for duration: Duration, now: Date) async throws -> Bool {
        guard let instance else { return true }
        let until = ColumnTime.value(now) + Double(duration.components.seconds)
        return try await session { session in
            try session.run(
                """
                INSERT INTO chore_lease (name, holder, held_until) VALUES (\(name), \(instance), \(until))
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until
                WHERE chore_lease.holder = excluded.holder OR chore_lease.held_until < \(ColumnTime.value(now))
                RETURNING holder
                """
            ).rows.count > 0
        }
    }

    /// Lets go of every unfinished entry this relay claimed, at a graceful stop: another relay takes them
    /// at its next poll rather than when the lease runs out.
    public func releaseClaims() async throws {
        guard let instance else { return }
        try await session { session in
            try session.run(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = \(instance) AND finished_at IS NULL"
            )
        }
    }

    public func outboxSummary(now: Date) async throws -> OutboxSummary {
        let now = ColumnTime.value(now)
        return try await session { session in
            var summary = OutboxSummary()
            for row in try session.run(
                """
                SELECT kind, COUNT(*), COUNT(*) FILTER (WHERE due_at <= \(now)),
                    COUNT(*) FILTER (WHERE due_at > \(now) AND attempts > 0), MIN(created_at)
                FROM outbox WHERE finished_at IS NULL GROUP BY kind
                """
            ).rows {
                let (name, pending, due, retrying, oldest) = try row.decode((String, Int, Int, Int, Double?).self)
                var kind = OutboxSummary.Kind()
                kind.pending = pending
                kind.due = due
                kind.retrying = retrying
                kind.oldestCreatedAt = oldest.map(ColumnTime.date)
                summary.kinds[name] = kind
            }
            return summary
        }
    }

    public func outboxEntries(_ query: OutboxQuery) async throws -> [OutboxEntry] {
        var condition: PostgresQuery
        switch query.state {
        case .pending: condition = "WHERE finished_at IS NULL"
        case .failing: condition = "WHERE finished_at IS NULL AND attempts > 0"
        case .finished: condition = "WHERE finished_at IS NOT NULL"
        }
        // Always bound, so the statement's text does not depend on which filters are set.
        let filtered: PostgresQuery = """
            \(unescaped: condition.sql) AND (\(query.kind)::text IS NULL OR kind = \(query.kind))
                AND (\(query.callId)::text IS NULL OR call_id = \(query.callId))
            ORDER BY id DESC LIMIT \(max(0, query.limit))
            """
        return try await session { session in try Self.outbox(session, filtered) }
    }

    public func outboxEntry(id: Int64) async throws -> OutboxEntry? {
        try await session { session in try Self.outbox(session, "WHERE id = \(id)").first }
    }

    /// Outcomes recorded at once are written together (`PostgresSettlementGroup`): a busy dispatcher
    /// finishes hundreds of entries a second, one statement each would be a round trip each.
    public func settleOutbox(_ settlements: [OutboxSettlement], now: Date) async throws {
        guard !settlements.isEmpty else { return }
        try await settlementGroup.settle(settlements, now: now, in: self)
    }

    /// Writes settlements, each with its own time, in one statement per kind. Each statement stands
    /// alone: a settlement needs no other to be atomic with it.
    static func settle(_ settlements: [(settlement: OutboxSettlement, now: Date)], _ session: PostgresSession) throws {
        var finished: (ids: [Int64], outcomes: [String], times: [Double]) = ([], [], [])
        var retries: (ids: [Int64], dueAt: [Double], attempts: [Int64], errors: [String], payloads: [ByteBuffer]) =
            ([], [], [], [], [])
        var deadLetters: (ids: [Int64], dueAt: [Double], errors: [String], records: [ByteBuffer]) = ([], [], [], [])
        for (settlement, now) in settlements {
            switch settlement {
            case .finished(let id, let outcome):
                finished.ids.append(id)
                finished.outcomes.append(outcome)
                finished.times.append(ColumnTime.value(now))
            case .retry(let id, let dueAt, let attempts, let lastError, let payload):
                retries.ids.append(id)
                retries.dueAt.append(ColumnTime.value(dueAt))
                retries.attempts.append(Int64(attempts))
                retries.errors.append(lastError)
                retries.payloads.append(ByteBuffer(bytes: payload))
            case .deadLetter(let id, let dueAt, let lastError, let record):
                deadLetters.ids.append(id)
                deadLetters.dueAt.append(ColumnTime.value(dueAt))
                deadLetters.errors.append(lastError)
                deadLetters.records.append(ByteBuffer(bytes: record))
            }
        }
        if !finished.ids.isEmpty {
            try session.run(
                """
                UPDATE outbox SET finished_at = u.finished_at, outcome = u.outcome
                FROM unnest(\(finished.ids)::int8[], \(finished.outcomes)::text[], \(finished.times)::float8[])
                    AS u(id, outcome, finished_at)
                WHERE outbox.id = u.id AND outbox.finished_at IS NULL
                """
            )
        }
        if !retries.ids.isEmpty {
            try session.run(
                """
                UPDATE outbox SET due_at = u.due_at, attempts = u.attempts, last_error = u.last_error, payload = u.payload
                FROM unnest(
                    \(retries.ids)::int8[], \(retries.dueAt)::float8[], \(retries.attempts)::int8[],
                    \(retries.errors)::text[], \(retries.payloads)::bytea[]
                ) AS u(id, due_at, attempts, last_error, payload)
                WHERE outbox.id = u.id AND outbox.finished_at IS NULL
                """
            )
        }
        if !deadLetters.ids.isEmpty {
            try session.run(
                """
                UPDATE outbox SET kind = 'deadLetter', due_at = u.due_at, last_error = u.last_error, payload = u.payload
                FROM unnest(
                    \(deadLetters.ids)::int8[], \(deadLetters.dueAt)::float8[], \(deadLetters.errors)::text[],
                    \(deadLetters.records)::bytea[]
                ) AS u(id, due_at, last_error, payload)
                WHERE outbox.id = u.id AND outbox.finished_at IS NULL
                """
            )
        }
    }

    public func completeLookup(
        _ completion: LookupCompletion,
        now: Date
    ) async throws -> (link: String?, update: OutboxEntry?) {
        try await session { session in
            try session.lockContactGraph(exclusive: false)
            try session.lock(calls: [completion.callId])
            let link = try Self.relink(
                callId: completion.callId,
                to: completion.externalId,
                now: now,
                replacing: completion.rule,
                session
            )
            var update: OutboxEntry?
            if link == completion.externalId {
                update = try self.insertOutbox(
                    [completion.update],
                    callId: completion.callId,
                    causeId: completion.causeId,
                    now: now,
                    session
                ).first
                if let override = completion.override {
                    try Self.setOverride(
                        phoneKey: override.phoneKey,
                        externalId: completion.externalId,
                        callId: completion.callId,
                        now: now,
                        expiresAt: override.expiresAt,
                        session
                    )
                }
            }
            try Self.settle(
                [(.finished(id: completion.entryId, outcome: update == nil ? "superseded" : "relinked"), now)],
                session
            )
            return (link, update)
        }
    }

    public func enqueueOutbox(
        callId: String,
        causeId: String,
        _ entries: [NewOutboxEntry],
        relink: (externalId: String, rule: RelinkRule)?,
        now: Date
    ) async throws -> [OutboxEntry] {
        let relinkTo = relink.map { ($0.externalId, $0.rule) }
        return try await session { session in
            try session.lockContactGraph(exclusive: false)
            try session.lock(calls: [callId])
            if let (externalId, rule) = relinkTo {
                let link = try Self.relink(callId: callId, to: externalId, now: now, replacing: rule, session)
                guard link == externalId else { return [] }
            }
            return try self.insertOutbox(entries, callId: callId, causeId: causeId, now: now, session)
        }
    }

    public func makeOutboxDue(ids: [Int64], now: Date) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let now = ColumnTime.value(now)
        return try await session { session in
            try session.changes(
                "UPDATE outbox SET due_at = \(now) WHERE id = ANY(\(ids)) AND finished_at IS NULL AND due_at > \(now)"
            )
        }
    }

    /// A standby (read-only) server, or a session PostgreSQL holds read-only, refuses.
    public func checkWritable() async throws {
        try await session { session in
            for row in try session.run("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").rows {
                let (recovering, readOnly) = try row.decode((Bool, String).self)
                if recovering || readOnly == "on" {
                    throw StoreError(.databaseFailed, "the PostgreSQL server takes no writes (a standby, or read-only)")
                }
            }
        }
    }

    public func pruneProcessedEvents(before cutoff: Date) async throws -> Int {
        try await session { session in
            try session.changes("DELETE FROM processed_event WHERE processed_at < \(ColumnTime.value(cutoff))")
        }
    }

    public func pruneFinishedOutbox(before cutoff: Date) async throws -> Int {
        try await session { session in
            try session.changes(
                "DELETE FROM outbox WHERE finished_at IS NOT NULL AND finished_at < \(ColumnTime.value(cutoff))"
            )
        }
    }

    public func override(phoneKey: String, now: Date) async throws -> String? {
        try await session { session in try Self.liveOverride(phoneKey: phoneKey, now: now, session) }
    }

    static func liveOverride(phoneKey: String, now: Date, _ session: PostgresSession) throws -> String? {
        try session.run(
            "SELECT external_id FROM identity_override WHERE phone_key = \(phoneKey) AND expires_at > \(ColumnTime.value(now))"
        ).rows.first.map { try $0.decode(String.self) }
    }

    public func setOverride(
        phoneKey: String,
        externalId: String,
        callId: String,
        now: Date,
        expiresAt: Date
    ) async throws {
        try await session { session in
            try Self.setOverride(
                phoneKey: phoneKey,
                externalId: externalId,
                callId: callId,
                now: now,
                expiresAt: expiresAt,
                session
            )
        }
    }

    private static func setOverride(
        phoneKey: String,
        externalId: String,
        callId: String,
        now: Date,
        expiresAt: Date,
        _ session: PostgresSession
    ) throws {
        try session.run(
            """
            INSERT INTO identity_override (phone_key, external_id, call_id, created_at, expires_at)
            VALUES (\(phoneKey), \(externalId), \(callId), \(ColumnTime.value(now)), \(ColumnTime.value(expiresAt)))
            ON CONFLICT (phone_key) DO UPDATE SET
                external_id = excluded.external_id, call_id = excluded.call_id,
                created_at = excluded.created_at, expires_at = excluded.expires_at
            """
        )
    }

    public func pruneExpiredOverrides(now: Date) async throws -> Int {
        try await session { session in
            try session.changes("DELETE FROM identity_override WHERE expires_at <= \(ColumnTime.value(now))")
        }
    }

    /// Under the contact graph's exclusive lock, as SQLite runs it on its single writer: no event
    /// commits on a call while its rows go.
    public func purgeFinishedInteractions(before cutoff: Date) async throws -> FinishedInteractionsPurge {
        try await session { session in
            try session.lockContactGraph(exclusive: true)
            try session.run(
                """
                CREATE TEMP TABLE purged_call ON COMMIT DROP AS
                    SELECT call_id FROM interaction
                    WHERE status IN ('completed', 'orphaned') AND updated_at < \(ColumnTime.value(cutoff))
                """
            )
            let processedEvents = try session.changes(
                "DELETE FROM processed_event WHERE call_id IN (SELECT call_id FROM purged_call)"
            )
            let outboxEntries = try session.changes(
                "DELETE FROM outbox WHERE finished_at IS NOT NULL AND call_id IN (SELECT call_id FROM purged_call)"
            )
            try session.run("DELETE FROM interaction_note WHERE call_id IN (SELECT call_id FROM purged_call)")
            try session.run("DELETE FROM crm_suggestion WHERE call_id IN (SELECT call_id FROM purged_call)")
            try session.run("DELETE FROM contact_interaction WHERE call_id IN (SELECT call_id FROM purged_call)")
            let interactions = try session.changes(
                "DELETE FROM interaction WHERE call_id IN (SELECT call_id FROM purged_call)"
            )
            return FinishedInteractionsPurge(
                interactions: interactions,
                processedEvents: processedEvents,
                outboxEntries: outboxEntries
            )
        }
    }

    // MARK: Rows

    static func state(callId: String, _ session: PostgresSession) throws -> Interaction? {
        guard let row = try session.run("SELECT state FROM interaction WHERE call_id = \(callId)").rows.first else {
            return nil
        }
        return try InteractionStateCoding.decode(
            Data(try row.decode(ByteBuffer.self).readableBytesView),
            callId: callId
        )
    }

    private func insertOutbox(
        _ newEntries: [NewOutboxEntry],
        callId: String,
        causeId: String,
        now: Date,
        _ session: PostgresSession
    ) throws -> [OutboxEntry] {
        try newEntries.map { entry in
            let inserted = try session.run(
                """
                INSERT INTO outbox (cause_id, call_id, kind, payload, created_at, due_at, claimed_by, claimed_until)
                VALUES (\(causeId), \(callId), \(entry.kind), \(ByteBuffer(bytes: entry.payload)), \(ColumnTime.value(now)),
                    \(ColumnTime.value(now)), \(instance), \(instance == nil ? nil : claimedUntil(Date())))
                RETURNING id
                """
            )
            guard let id = try inserted.rows.first?.decode(Int64.self) else {
                throw StoreError(.databaseFailed, "an outbox insert returned no id")
            }
            return OutboxEntry(
                id: id,
                causeId: causeId,
                callId: callId,
                kind: entry.kind,
                payload: entry.payload,
                createdAt: ColumnTime.stored(now),
                inMemoryJob: entry.inMemoryJob
            )
        }
    }

    private static func outbox(_ session: PostgresSession, _ condition: PostgresQuery) throws -> [OutboxEntry] {
        var query: PostgresQuery = "SELECT \(unescaped: outboxColumns) FROM outbox "
        query.sql += condition.sql
        query.binds = condition.binds
        return try outboxRows(session.run(query))
    }

    private static func outboxRows(_ result: PostgresQueryResult) throws -> [OutboxEntry] {
        try result.rows.map { row in
            let (id, causeId, callId, kind, payload, createdAt, dueAt, attempts, lastError, finishedAt, outcome) =
                try row.decode(
                    (Int64, String, String, String, ByteBuffer, Double, Double, Int, String?, Double?, String?).self
                )
            return OutboxEntry(
                id: id,
                causeId: causeId,
                callId: callId,
                kind: kind,
                payload: Array(buffer: payload),
                createdAt: ColumnTime.date(createdAt),
                dueAt: ColumnTime.date(dueAt),
                attempts: attempts,
                lastError: lastError,
                finishedAt: finishedAt.map(ColumnTime.date),
                outcome: outcome
            )
        }
    }
}
