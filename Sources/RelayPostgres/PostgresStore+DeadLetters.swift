public import Foundation
import NIOCore
import PostgresNIO
import RelayCore
public import RelayStore

/// The record of dead letters on PostgreSQL: the SQLite store's answers (the conformance suite holds
/// both to them), with row locks where several relays may record the same dead letter at once.
///
/// A purge blanks the payload, the message and the last error; PostgreSQL keeps the old row version
/// until VACUUM reclaims it (autovacuum does, in time), as SQLite's WAL keeps old pages until a checkpoint.
extension PostgresStore: DeadLetterStore {
    public func recordDeadLetters(_ letters: [StoredDeadLetter], now: Date) async throws -> [DeadLetterRecording] {
        try await Self.storeErrors {
            try await transaction { connection in
                // Recordings take turns: `seq` then follows commit order. Pages are read by `seq`, and
                // two relays recording at once could otherwise commit a lower `seq` after a reader had
                // paged past it, which that reader would never see. Dead letters are few; the wait is short.
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(AdvisoryLockKey.deadLetterRecording(in: self.schema ?? "public")))",
                    logger: logger
                )
                // The rows already there are locked in id order; new ones are inserted in arrival order,
                // which pages follow.
                try await connection.query(
                    "SELECT id FROM dead_letter WHERE id = ANY(\(letters.map(\.id))) ORDER BY id FOR UPDATE",
                    logger: logger
                )
                var recordings: [DeadLetterRecording] = []
                for letter in letters {
                    recordings.append(try await Self.record(letter, now: now, on: connection, logger: logger))
                }
                return recordings
            }
        }
    }

    private static func record(
        _ letter: StoredDeadLetter,
        now: Date,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> DeadLetterRecording {
        // Deleted by retention between the insert's conflict and the lock: insert again.
        while true {
            if let recording = try await recordOnce(letter, now: now, on: connection, logger: logger) {
                return recording
            }
        }
    }

    private static func recordOnce(
        _ letter: StoredDeadLetter,
        now: Date,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> DeadLetterRecording? {
        // New, unless another relay (or an earlier copy) recorded it first: then the row is locked and
        // the same decision as SQLite's is made on it.
        let inserted = try await connection.query(
            """
            INSERT INTO dead_letter (
                id, kind, reason, call_id, event_type, event_id, attempts, first_failure_at, last_failure_at,
                last_error, target_method, target_url, target_status, origin_exchange, origin_routing_key,
                replay_count, payload_encoding, payload, message, headers, routing_key, state, recorded_at, copies
            ) VALUES (
                \(letter.id), \(letter.kind), \(letter.reason), \(letter.callId), \(letter.eventType), \(letter.eventId),
                \(letter.attempts), \(letter.firstFailureAt), \(letter.lastFailureAt), \(letter.lastError),
                \(letter.target?.method), \(letter.target?.url), \(letter.target?.lastStatus), \(letter.origin?.exchange),
                \(letter.origin?.routingKey), \(letter.replayCount), \(letter.payloadEncoding), \(ByteBuffer(bytes: letter.payload)),
                \(ByteBuffer(bytes: letter.message)), \(StoredHeaderValue.json(letter.headers)), \(letter.routingKey), 'open',
                \(now), 1
            ) ON CONFLICT (id) DO NOTHING RETURNING seq
            """,
            logger: logger
        )
        for try await _ in inserted { return .new }

        var stored: (replayCount: Int, state: StoredDeadLetter.State, stateChangedAt: Date?)?
        for try await (replays, state, changed) in try await connection.query(
            "SELECT replay_count, state, state_changed_at FROM dead_letter WHERE id = \(letter.id) FOR UPDATE",
            logger: logger
        ).decode((Int, String, Date?).self) {
            stored = (replays, StoredDeadLetter.State(rawValue: state) ?? .open, changed)
        }
        guard let stored else { return nil }
        let (recording, replays) = DeadLetterRecording.decide(letter, stored: stored)
        switch recording {
        case .new, .copy:
            try await connection.query(
                "UPDATE dead_letter SET copies = copies + 1 WHERE id = \(letter.id)",
                logger: logger
            )
            return .copy
        case .failedAgain:
            try await connection.query(
                """
                UPDATE dead_letter SET
                    attempts = \(letter.attempts),
                    first_failure_at = LEAST(COALESCE(first_failure_at, \(letter.firstFailureAt)),
                                             COALESCE(\(letter.firstFailureAt), first_failure_at)),
                    last_failure_at = \(letter.lastFailureAt), last_error = \(letter.lastError),
                    target_method = \(letter.target?.method), target_url = \(letter.target?.url),
                    target_status = \(letter.target?.lastStatus), replay_count = \(replays),
                    payload_encoding = \(letter.payloadEncoding), payload = \(ByteBuffer(bytes: letter.payload)),
                    message = \(ByteBuffer(bytes: letter.message)), headers = \(StoredHeaderValue.json(letter.headers)),
                    routing_key = \(letter.routingKey), state = 'open', state_changed_at = \(now), note = NULL,
                    copies = copies + 1
                WHERE id = \(letter.id)
                """,
                logger: logger
            )
            return .failedAgain
        }
    }

    public func deadLetterSummary(_ query: DeadLetterQuery, groups: Int) async throws -> DeadLetterSummary {
        try await Self.storeErrors {
            var byReason: [String: Int] = [:]
            var total = 0
            for try await (reason, count) in try await client.query(
                Self.selecting("SELECT reason, COUNT(*) FROM dead_letter", query, suffix: "GROUP BY reason"),
                logger: logger
            ).decode((String, Int).self) {
                byReason[reason] = count
                total += count
            }
            var errorGroups: [DeadLetterSummary.ErrorGroup] = []
            for try await (lastError, count) in try await client.query(
                Self.selecting(
                    "SELECT last_error, COUNT(*) AS count FROM dead_letter",
                    query,
                    suffix: "GROUP BY last_error ORDER BY count DESC, last_error LIMIT \(max(0, groups))"
                ),
                logger: logger
            ).decode((String, Int).self) {
                errorGroups.append(.init(lastError: lastError, count: count))
            }
            var oldest: Date?
            var newest: Date?
            for try await (first, last) in try await client.query(
                Self.selecting("SELECT MIN(last_failure_at), MAX(last_failure_at) FROM dead_letter", query),
                logger: logger
            ).decode((Date?, Date?).self) {
                (oldest, newest) = (first, last)
            }
            return DeadLetterSummary(
                total: total,
                byReason: byReason,
                byLastError: errorGroups,
                oldestFailure: oldest,
                newestFailure: newest
            )
        }
    }

    public func deadLetterCount(_ query: DeadLetterQuery) async throws -> Int {
        try await Self.storeErrors {
            var count = 0
            for try await value in try await client.query(
                Self.selecting("SELECT COUNT(*) FROM dead_letter", query),
                logger: logger
            )
            .decode(Int.self) {
                count = value
            }
            return count
        }
    }

    public func deadLetters(_ query: DeadLetterQuery) async throws -> [StoredDeadLetter] {
        try await Self.storeErrors {
            var suffix = "ORDER BY seq"
            if let limit = query.limit { suffix += " LIMIT \(max(0, limit))" }
            let rows = try await client.query(
                Self.selecting("SELECT \(Self.listedColumns) FROM dead_letter", query, paged: true, suffix: suffix),
                logger: logger
            )
            var letters: [StoredDeadLetter] = []
            for try await row in rows { letters.append(try Self.letter(row.makeRandomAccess(), whole: false)) }
            return letters
        }
    }

    public func deadLetters(ids: [String]) async throws -> [StoredDeadLetter] {
        try await Self.storeErrors {
            guard !ids.isEmpty else { return [] }
            let rows = try await client.query(
                "SELECT * FROM dead_letter WHERE id = ANY(\(ids)) ORDER BY seq",
                logger: logger
            )
            var letters: [StoredDeadLetter] = []
            for try await row in rows { letters.append(try Self.letter(row.makeRandomAccess(), whole: true)) }
            return letters
        }
    }

    public func transitionDeadLetters(
        ids: [String],
        from: Set<StoredDeadLetter.State>,
        to: StoredDeadLetter.State,
        note: String?,
        now: Date
    ) async throws -> [String] {
        try await Self.storeErrors {
            guard !ids.isEmpty, !from.isEmpty else { return [] }
            let purging = to == .purged
            let states = from.map(\.rawValue).sorted()
            var moved: [String] = []
            for try await id in try await client.query(
                """
                UPDATE dead_letter SET state = \(to.rawValue), note = COALESCE(\(note), note),
                    state_changed_at = CASE WHEN state = 'replaying' AND \(to.rawValue) = 'replayed' THEN state_changed_at
                        ELSE \(now) END,
                    payload = CASE WHEN \(purging) THEN ''::bytea ELSE payload END,
                    message = CASE WHEN \(purging) THEN ''::bytea ELSE message END,
                    last_error = CASE WHEN \(purging) THEN '(purged)' ELSE last_error END
                WHERE id = ANY(\(ids)) AND state = ANY(\(states))
                RETURNING id
                """,
                logger: logger
            ).decode(String.self) {
                moved.append(id)
            }
            return moved
        }
    }

    public func reopenStaleReplays(claimedBefore cutoff: Date, now: Date) async throws -> [String] {
        try await Self.storeErrors {
            var reopened: [String] = []
            for try await id in try await client.query(
                """
                UPDATE dead_letter SET state = 'open', state_changed_at = \(now)
                WHERE state = 'replaying' AND state_changed_at < \(cutoff) RETURNING id
                """,
                logger: logger
            ).decode(String.self) {
                reopened.append(id)
            }
            return reopened
        }
    }

    public func deleteDeadLetters(olderThan cutoff: Date) async throws -> Int {
        try await Self.storeErrors {
            var deleted = 0
            for try await _ in try await client.query(
                "DELETE FROM dead_letter WHERE COALESCE(last_failure_at, recorded_at) < \(cutoff) RETURNING seq",
                logger: logger
            ) {
                deleted += 1
            }
            return deleted
        }
    }

    // MARK: Rows

    /// Every column but the payload and the message.
    static let listedColumns = """
        seq, id, kind, reason, call_id, event_type, event_id, attempts, first_failure_at, last_failure_at, last_error,
        target_method, target_url, target_status, origin_exchange, origin_routing_key, replay_count, payload_encoding,
        headers, routing_key, state, state_changed_at, note, recorded_at, copies
        """

    /// `select` with the query's conditions (and its page's `after` when `paged`), then `suffix`.
    static func selecting(
        _ select: String,
        _ query: DeadLetterQuery,
        paged: Bool = false,
        suffix: String = ""
    ) -> PostgresQuery {
        var bindings = PostgresBindings()
        var clauses: [String] = []
        func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        if !query.states.isEmpty { clauses.append("state = ANY(\(bind(query.states.map(\.rawValue).sorted())))") }
        if !query.reasons.isEmpty { clauses.append("reason = ANY(\(bind(query.reasons.sorted())))") }
        if !query.ids.isEmpty { clauses.append("id = ANY(\(bind(query.ids.sorted())))") }
        if let callId = query.callId { clauses.append("call_id = \(bind(callId))") }
        if let since = query.since { clauses.append("last_failure_at >= \(bind(since))") }
        if let until = query.until { clauses.append("last_failure_at <= \(bind(until))") }
        if paged, let after = query.after { clauses.append("seq > \(bind(after))") }
        let condition = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        return PostgresQuery(unsafeSQL: select + condition + (suffix.isEmpty ? "" : " " + suffix), binds: bindings)
    }

    static func letter(_ row: PostgresRandomAccessRow, whole: Bool) throws -> StoredDeadLetter {
        let stateText = try row["state"].decode(String.self)
        guard let state = StoredDeadLetter.State(rawValue: stateText) else {
            throw PostgresStoreError(
                "dead letter \((try? row["id"].decode(String.self)) ?? "?") has the unknown state '\(stateText)'"
            )
        }
        let targetURL = try row["target_url"].decode(String?.self)
        let originExchange = try row["origin_exchange"].decode(String?.self)
        func bytes(_ column: String) throws -> [UInt8] {
            guard whole, let buffer = try row[column].decode(ByteBuffer?.self) else { return [] }
            return Array(buffer.readableBytesView)
        }
        return StoredDeadLetter(
            id: try row["id"].decode(String.self),
            kind: try row["kind"].decode(String.self),
            reason: try row["reason"].decode(String.self),
            callId: try row["call_id"].decode(String?.self),
            eventType: try row["event_type"].decode(String?.self),
            eventId: try row["event_id"].decode(String?.self),
            attempts: try row["attempts"].decode(Int?.self),
            firstFailureAt: try row["first_failure_at"].decode(Date?.self),
            lastFailureAt: try row["last_failure_at"].decode(Date?.self),
            lastError: try row["last_error"].decode(String.self),
            target: try targetURL.map {
                .init(
                    method: try row["target_method"].decode(String?.self) ?? "",
                    url: $0,
                    lastStatus: try row["target_status"].decode(Int?.self)
                )
            },
            origin: try originExchange.map {
                .init(exchange: $0, routingKey: try row["origin_routing_key"].decode(String?.self) ?? "")
            },
            replayCount: try row["replay_count"].decode(Int.self),
            payloadEncoding: try row["payload_encoding"].decode(String.self),
            payload: try bytes("payload"),
            message: try bytes("message"),
            headers: StoredHeaderValue.headers(json: try row["headers"].decode(String.self)),
            routingKey: try row["routing_key"].decode(String.self),
            state: state,
            stateChangedAt: try row["state_changed_at"].decode(Date?.self),
            note: try row["note"].decode(String?.self),
            recordedAt: try row["recorded_at"].decode(Date.self),
            copies: try row["copies"].decode(Int.self),
            sequence: try row["seq"].decode(Int64.self)
        )
    }
}
