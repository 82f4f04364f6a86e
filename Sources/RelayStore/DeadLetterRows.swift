public import Foundation
import GRDB
public import RelayCore

/// One dead letter as the store keeps it: the record operators query, replay, purge and resolve.
///
/// The broker's `relay.dead-letters` queue is how dead letters travel; this row is what stays. It
/// holds the record's fields, the payload as the record carried it (a sealed payload stays sealed),
/// the message as it arrived (so an export is byte for byte what was published) and its state.
public struct StoredDeadLetter: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable, Codable {
        /// Waiting for an operator.
        case open
        /// Claimed by one replay, which marks it `replayed` once the replay is confirmed (or `open`
        /// again if it failed): two operators replaying the same record replay it once.
        case replaying
        case replayed
        case purged
        /// Closed with a note: nothing to replay (an orphan, something handled elsewhere).
        case resolved
    }

    /// The record's id (`dl_…`), stable however often the same failure is published.
    public var id: String
    /// `record`, `brokerDeadLettered` or `unreadable`.
    public var kind: String
    public var reason: String
    public var callId: String?
    public var eventType: String?
    public var eventId: String?
    public var attempts: Int?
    public var firstFailureAt: Date?
    public var lastFailureAt: Date?
    public var lastError: String
    public var target: DeadLetterRecord.Target?
    public var origin: DeadLetterRecord.Origin?
    public var replayCount: Int
    /// `utf8`, `base64` or `sealed`.
    public var payloadEncoding: String
    /// The payload's bytes as the record carries them. Empty in a listing: lists read rows, never payloads.
    public var payload: [UInt8]
    /// The message as it arrived. Empty in a listing.
    public var message: [UInt8]
    /// The message's headers, typed, so a replay sends a message's own headers on as they were (and the
    /// broker's `x-death` history, by description, stays for the record).
    public var headers: [String: StoredHeaderValue]
    public var routingKey: String
    public var state: State
    public var stateChangedAt: Date?
    public var note: String?
    public var recordedAt: Date
    /// Messages that carried this id.
    public var copies: Int
    /// The store's order of arrival, which pages follow. Assigned by the store.
    public var sequence: Int64

    public init(
        id: String,
        kind: String,
        reason: String,
        callId: String?,
        eventType: String?,
        eventId: String?,
        attempts: Int?,
        firstFailureAt: Date?,
        lastFailureAt: Date?,
        lastError: String,
        target: DeadLetterRecord.Target?,
        origin: DeadLetterRecord.Origin?,
        replayCount: Int,
        payloadEncoding: String,
        payload: [UInt8],
        message: [UInt8],
        headers: [String: StoredHeaderValue],
        routingKey: String,
        state: State = .open,
        stateChangedAt: Date? = nil,
        note: String? = nil,
        recordedAt: Date,
        copies: Int = 1,
        sequence: Int64 = 0
    ) {
        self.id = id
        self.kind = kind
        self.reason = reason
        self.callId = callId
        self.eventType = eventType
        self.eventId = eventId
        self.attempts = attempts
        self.firstFailureAt = firstFailureAt
        self.lastFailureAt = lastFailureAt
        self.lastError = lastError
        self.target = target
        self.origin = origin
        self.replayCount = replayCount
        self.payloadEncoding = payloadEncoding
        self.payload = payload
        self.message = message
        self.headers = headers
        self.routingKey = routingKey
        self.state = state
        self.stateChangedAt = stateChangedAt
        self.note = note
        self.recordedAt = recordedAt
        self.copies = copies
        self.sequence = sequence
    }
}

/// A message header's value as stored (the AMQP client's `AMQPHeaderValue`, without the dependency).
public enum StoredHeaderValue: Sendable, Hashable, Codable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    /// A value kept only as its description (a nested table, say).
    case other(String)
}

extension StoredHeaderValue {
    /// A message's headers as the stores keep them: JSON text, keys sorted.
    public static func json(_ headers: [String: StoredHeaderValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Strings, integers and booleans only: encoding cannot fail.
        return String(decoding: try! encoder.encode(headers), as: UTF8.self)
    }

    public static func headers(json: String) -> [String: StoredHeaderValue] {
        (try? JSONDecoder().decode([String: StoredHeaderValue].self, from: Data(json.utf8))) ?? [:]
    }
}

/// What recording one dead letter did.
public enum DeadLetterRecording: Sendable, Hashable {
    /// A dead letter the store did not know.
    case new
    /// The same failure again (a record published twice, a message drained twice): counted, nothing else.
    case copy
    /// A replay of it failed again (a higher replay count): its failure is brought up to date and it
    /// is open again; its first failure stays the first.
    case failedAgain
}

/// Which dead letters a question is about. Every condition set must hold.
public struct DeadLetterQuery: Sendable, Hashable {
    public var reasons: Set<String>
    /// Last failure at or after this time; a dead letter with no known time never matches a time condition.
    public var since: Date?
    public var until: Date?
    public var callId: String?
    public var ids: Set<String>
    /// States to select; `open` unless asked otherwise.
    public var states: Set<StoredDeadLetter.State>
    /// Only rows after this sequence number: the last of the previous page.
    public var after: Int64?
    public var limit: Int?

    public init(
        reasons: Set<String> = [],
        since: Date? = nil,
        until: Date? = nil,
        callId: String? = nil,
        ids: Set<String> = [],
        states: Set<StoredDeadLetter.State> = [.open],
        after: Int64? = nil,
        limit: Int? = nil
    ) {
        self.reasons = reasons
        self.since = since
        self.until = until
        self.callId = callId
        self.ids = ids
        self.states = states
        self.after = after
        self.limit = limit
    }
}

/// Counts first: what an operator reads before any table.
public struct DeadLetterSummary: Sendable, Hashable {
    public struct ErrorGroup: Sendable, Hashable {
        public var lastError: String
        public var count: Int

        public init(lastError: String, count: Int) {
            self.lastError = lastError
            self.count = count
        }
    }

    public var total: Int
    public var byReason: [String: Int]
    /// The most frequent last errors, most frequent first.
    public var byLastError: [ErrorGroup]
    public var oldestFailure: Date?
    public var newestFailure: Date?

    public init(
        total: Int,
        byReason: [String: Int],
        byLastError: [ErrorGroup],
        oldestFailure: Date?,
        newestFailure: Date?
    ) {
        self.total = total
        self.byReason = byReason
        self.byLastError = byLastError
        self.oldestFailure = oldestFailure
        self.newestFailure = newestFailure
    }
}

extension SQLiteInteractionStore: DeadLetterStore {
    public func recordDeadLetters(_ letters: [StoredDeadLetter], now: Date) async throws -> [DeadLetterRecording] {
        try await database {
            try await writeShared { db in try letters.map { try DeadLetterRows(db).record($0, now: now) } }
        }
    }

    public func deadLetterSummary(_ query: DeadLetterQuery, groups: Int) async throws -> DeadLetterSummary {
        try await database { try await writer.read { db in try DeadLetterRows(db).summary(query, groups: groups) } }
    }

    public func deadLetterCount(_ query: DeadLetterQuery) async throws -> Int {
        try await database { try await writer.read { db in try DeadLetterRows(db).count(query) } }
    }

    public func deadLetters(_ query: DeadLetterQuery) async throws -> [StoredDeadLetter] {
        try await database { try await writer.read { db in try DeadLetterRows(db).rows(query) } }
    }

    /// One read for a page of them (a caller keeps the page small: a record can carry 64 KB twice).
    public func deadLetters(ids: [String]) async throws -> [StoredDeadLetter] {
        guard !ids.isEmpty else { return [] }
        return try await database { try await writer.read { db in try DeadLetterRows(db).whole(ids: ids) } }
    }

    /// A replay claimed and never settled: the replaying process died between its claim and the
    /// broker's answer. One that did go out is then replayed again: its message carries the same record
    /// id, and what it causes is deduplicated downstream, as every redelivery is.
    public func reopenStaleReplays(claimedBefore cutoff: Date, now: Date) async throws -> [String] {
        try await database {
            try await writeShared { db in
                try String.fetchAll(
                    db,
                    sql: """
                        UPDATE dead_letter SET state = 'open', state_changed_at = ?
                        WHERE state = 'replaying' AND state_changed_at < ? RETURNING id
                        """,
                    arguments: [ColumnTime.value(now), ColumnTime.value(cutoff)]
                )
            }
        }
    }

    public func deleteDeadLetters(olderThan cutoff: Date) async throws -> Int {
        try await database {
            try await writeShared { db in
                try db.cachedStatement(sql: "DELETE FROM dead_letter WHERE COALESCE(last_failure_at, recorded_at) < ?")
                    .execute(arguments: [ColumnTime.value(cutoff)])
                return db.changesCount
            }
        }
    }

    /// Two operators claiming the same record: one gets it, the other an empty answer.
    public func transitionDeadLetters(
        ids: [String],
        from: Set<StoredDeadLetter.State>,
        to: StoredDeadLetter.State,
        note: String?,
        now: Date
    ) async throws -> [String] {
        guard !ids.isEmpty, !from.isEmpty else { return [] }
        return try await database {
            try await writeShared { db in
                try DeadLetterRows(db).transition(ids: ids, from: from, to: to, note: note, now: now)
            }
        }
    }
}

/// The dead-letter table's statements, inside a transaction a caller opened.
struct DeadLetterRows {
    let db: Database

    init(_ db: Database) {
        self.db = db
    }

    func record(_ letter: StoredDeadLetter, now: Date) throws -> DeadLetterRecording {
        let existing = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT replay_count, state, state_changed_at FROM dead_letter WHERE id = ?"),
            arguments: [letter.id]
        )
        guard let existing else {
            try db.cachedStatement(
                sql: """
                    INSERT INTO dead_letter (
                        id, kind, reason, call_id, event_type, event_id, attempts, first_failure_at, last_failure_at,
                        last_error, target_method, target_url, target_status, origin_exchange, origin_routing_key,
                        replay_count, payload_encoding, payload, message, headers, routing_key, state, recorded_at, copies
                    ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, 1)
                    """
            ).execute(arguments: [
                letter.id, letter.kind, letter.reason, letter.callId, letter.eventType, letter.eventId, letter.attempts,
                ColumnTime.value(letter.firstFailureAt), ColumnTime.value(letter.lastFailureAt), letter.lastError,
                letter.target?.method, letter.target?.url, letter.target?.lastStatus, letter.origin?.exchange,
                letter.origin?.routingKey, letter.replayCount, letter.payloadEncoding, Data(letter.payload),
                Data(letter.message), Self.headersJSON(letter.headers), letter.routingKey, ColumnTime.value(now),
            ])
            return .new
        }
        let stateText: String = existing["state"]
        let changed: Double? = existing["state_changed_at"]
        let (recording, replays) = DeadLetterRecording.decide(
            letter,
            stored: (
                existing["replay_count"], StoredDeadLetter.State(rawValue: stateText) ?? .open,
                changed.map(ColumnTime.date)
            )
        )
        guard recording == .failedAgain else {
            try db.cachedStatement(sql: "UPDATE dead_letter SET copies = copies + 1 WHERE id = ?").execute(arguments: [
                letter.id
            ])
            return .copy
        }
        try db.cachedStatement(
            sql: """
                UPDATE dead_letter SET
                    attempts = ?, first_failure_at = MIN(COALESCE(first_failure_at, ?), COALESCE(?, first_failure_at)),
                    last_failure_at = ?, last_error = ?, target_method = ?, target_url = ?, target_status = ?,
                    replay_count = ?, payload_encoding = ?, payload = ?, message = ?, headers = ?, routing_key = ?,
                    state = 'open', state_changed_at = ?, note = NULL, copies = copies + 1
                WHERE id = ?
                """
        ).execute(arguments: [
            letter.attempts, ColumnTime.value(letter.firstFailureAt), ColumnTime.value(letter.firstFailureAt),
            ColumnTime.value(letter.lastFailureAt), letter.lastError, letter.target?.method, letter.target?.url,
            letter.target?.lastStatus, replays, letter.payloadEncoding, Data(letter.payload),
            Data(letter.message), Self.headersJSON(letter.headers), letter.routingKey, ColumnTime.value(now), letter.id,
        ])
        return .failedAgain
    }

    /// The WHERE clause and its arguments for `query` (the page's `after` and `limit` excluded).
    private func conditions(_ query: DeadLetterQuery) -> (sql: String, arguments: StatementArguments) {
        var clauses: [String] = []
        var arguments = StatementArguments()
        func values(_ column: String, _ set: some Collection<String>) {
            clauses.append("\(column) IN (\(databaseQuestionMarks(count: set.count)))")
            arguments += StatementArguments(Array(set).sorted())
        }
        if !query.states.isEmpty { values("state", query.states.map(\.rawValue)) }
        if !query.reasons.isEmpty { values("reason", query.reasons) }
        if !query.ids.isEmpty { values("id", query.ids) }
        if let callId = query.callId {
            clauses.append("call_id = ?")
            arguments += [callId]
        }
        if let since = query.since {
            clauses.append("last_failure_at >= ?")
            arguments += [ColumnTime.value(since)]
        }
        if let until = query.until {
            clauses.append("last_failure_at <= ?")
            arguments += [ColumnTime.value(until)]
        }
        return (clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), arguments)
    }

    func count(_ query: DeadLetterQuery) throws -> Int {
        let (whereSQL, arguments) = conditions(query)
        return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dead_letter WHERE \(whereSQL)", arguments: arguments)
            ?? 0
    }

    func summary(_ query: DeadLetterQuery, groups: Int) throws -> DeadLetterSummary {
        let (whereSQL, arguments) = conditions(query)
        var byReason: [String: Int] = [:]
        var total = 0
        for row in try Row.fetchAll(
            db,
            sql: "SELECT reason, COUNT(*) AS count FROM dead_letter WHERE \(whereSQL) GROUP BY reason",
            arguments: arguments
        ) {
            let count: Int = row["count"]
            byReason[row["reason"]] = count
            total += count
        }
        let errorGroups = try Row.fetchAll(
            db,
            sql: """
                SELECT last_error, COUNT(*) AS count FROM dead_letter WHERE \(whereSQL)
                GROUP BY last_error ORDER BY count DESC, last_error LIMIT ?
                """,
            arguments: arguments + [groups]
        ).map { DeadLetterSummary.ErrorGroup(lastError: $0["last_error"], count: $0["count"]) }
        let span = try Row.fetchOne(
            db,
            sql:
                "SELECT MIN(last_failure_at) AS oldest, MAX(last_failure_at) AS newest FROM dead_letter WHERE \(whereSQL)",
            arguments: arguments
        )
        let oldest: Double? = span?["oldest"]
        let newest: Double? = span?["newest"]
        return DeadLetterSummary(
            total: total,
            byReason: byReason,
            byLastError: errorGroups,
            oldestFailure: oldest.map(ColumnTime.date),
            newestFailure: newest.map(ColumnTime.date)
        )
    }

    /// Every column but the payload and the message.
    private static let listedColumns = """
        seq, id, kind, reason, call_id, event_type, event_id, attempts, first_failure_at, last_failure_at, last_error,
        target_method, target_url, target_status, origin_exchange, origin_routing_key, replay_count, payload_encoding,
        headers, routing_key, state, state_changed_at, note, recorded_at, copies
        """

    func rows(_ query: DeadLetterQuery) throws -> [StoredDeadLetter] {
        var (whereSQL, arguments) = conditions(query)
        if let after = query.after {
            whereSQL += " AND seq > ?"
            arguments += [after]
        }
        var sql = "SELECT \(Self.listedColumns) FROM dead_letter WHERE \(whereSQL) ORDER BY seq"
        if let limit = query.limit {
            sql += " LIMIT ?"
            arguments += [max(0, limit)]
        }
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { try Self.letter($0, whole: false) }
    }

    func whole(ids: [String]) throws -> [StoredDeadLetter] {
        try Row.fetchAll(
            db,
            sql: "SELECT * FROM dead_letter WHERE id IN (\(databaseQuestionMarks(count: ids.count))) ORDER BY seq",
            arguments: StatementArguments(ids)
        ).map { try Self.letter($0, whole: true) }
    }

    func transition(
        ids: [String],
        from: Set<StoredDeadLetter.State>,
        to: StoredDeadLetter.State,
        note: String?,
        now: Date
    ) throws -> [String] {
        let states = from.map(\.rawValue).sorted()
        let purging = to == .purged
        // A purged dead letter keeps its record, not the personal data its payload, message or last
        // error (an upstream's answer) may hold; and the freed pages are zeroed, not left on the freelist.
        // Restored afterwards, not switched off: Debian's SQLite has it on by default.
        let secureDelete = purging ? try Int.fetchOne(db, sql: "PRAGMA secure_delete") : nil
        if purging { try db.execute(sql: "PRAGMA secure_delete = ON") }
        defer { if let secureDelete { try? db.execute(sql: "PRAGMA secure_delete = \(secureDelete)") } }
        return try String.fetchAll(
            db,
            sql: """
                UPDATE dead_letter SET state = ?, note = COALESCE(?, note),
                    -- a settled replay keeps its claim's time: a failure after the claim is a failure
                    -- after the replay, however late the drain records it
                    state_changed_at = CASE WHEN state = 'replaying' AND ? = 'replayed' THEN state_changed_at ELSE ? END,
                    payload = CASE WHEN ? THEN x'' ELSE payload END,
                    message = CASE WHEN ? THEN x'' ELSE message END,
                    last_error = CASE WHEN ? THEN '(purged)' ELSE last_error END
                WHERE id IN (\(databaseQuestionMarks(count: ids.count))) AND state IN (\(databaseQuestionMarks(count: states.count)))
                RETURNING id
                """,
            arguments: [to.rawValue, note, to.rawValue, ColumnTime.value(now), purging, purging, purging]
                + StatementArguments(ids)
                + StatementArguments(states)
        )
    }

    static func headersJSON(_ headers: [String: StoredHeaderValue]) -> String { StoredHeaderValue.json(headers) }

    private static func letter(_ row: Row, whole: Bool) throws -> StoredDeadLetter {
        let headersText: String = row["headers"]
        let headers = StoredHeaderValue.headers(json: headersText)
        let targetURL: String? = row["target_url"]
        let originExchange: String? = row["origin_exchange"]
        let first: Double? = row["first_failure_at"]
        let last: Double? = row["last_failure_at"]
        let changed: Double? = row["state_changed_at"]
        let stateText: String = row["state"]
        guard let state = StoredDeadLetter.State(rawValue: stateText) else {
            throw StoreError(
                .corruptState,
                "dead letter \(row["id"] as String? ?? "?") has the unknown state '\(stateText)'"
            )
        }
        let payload: Data? = whole ? row["payload"] : nil
        let message: Data? = whole ? row["message"] : nil
        return StoredDeadLetter(
            id: row["id"],
            kind: row["kind"],
            reason: row["reason"],
            callId: row["call_id"],
            eventType: row["event_type"],
            eventId: row["event_id"],
            attempts: row["attempts"],
            firstFailureAt: first.map(ColumnTime.date),
            lastFailureAt: last.map(ColumnTime.date),
            lastError: row["last_error"],
            target: targetURL.map {
                .init(method: row["target_method"] ?? "", url: $0, lastStatus: row["target_status"])
            },
            origin: originExchange.map { .init(exchange: $0, routingKey: row["origin_routing_key"] ?? "") },
            replayCount: row["replay_count"],
            payloadEncoding: row["payload_encoding"],
            payload: payload.map(Array.init) ?? [],
            message: message.map(Array.init) ?? [],
            headers: headers,
            routingKey: row["routing_key"],
            state: state,
            stateChangedAt: changed.map(ColumnTime.date),
            note: row["note"],
            recordedAt: ColumnTime.date(row["recorded_at"]),
            copies: row["copies"],
            sequence: row["seq"]
        )
    }
}
