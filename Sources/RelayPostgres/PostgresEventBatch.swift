import Foundation
import NIOCore
import PostgresNIO
import RelayCore
import RelayStore

/// A batch of events applied in one PostgreSQL transaction with a handful of statements, whatever its size.
///
/// Sent one at a time, an event's statements cost about fourteen round trips (its processed mark, its
/// state, phase 1's two reads, the row, four for a new caller's contact, the outbox, two for its
/// savepoint), each parsed and planned by the server and waited for by a thread of the relay: the
/// PostgreSQL store ran at a seventh of SQLite's rate. Here, in the batched mode, what every event of the
/// batch will read is read ahead in one statement (`readAhead`), and what they write waits in memory
/// (`Pending`) until one multi-row statement per table writes it (`flush`). A read nobody read ahead
/// (a returning caller's contact, a name match) flushes first, so it sees every write before it, as the
/// one-at-a-time mode does.
///
/// A batched write the server refuses (a NUL in a text value, a duplicate event id another relay
/// committed under another call) cannot be pinned on one event and aborts the transaction: the store
/// then applies the batch again in the isolated mode, one savepoint per event, nothing read ahead, so
/// one bad event undoes only itself, as on SQLite.
final class PostgresEventBatch {
    enum Mode {
        /// Read ahead, write at the end: the common case.
        case batched
        /// One savepoint per event, each event's writes flushed inside it.
        case isolated
    }

    private let session: PostgresSession
    private let store: PostgresStore
    private let now: Date
    private let mode: Mode

    // What was read ahead and is kept true as the batch writes: a key present is known, absent is not.
    private var processed: Set<String> = []
    private var readAheadEvents: Set<String> = []
    private var states: [String: Interaction?] = [:]
    private var overrides: [String: String?] = [:]
    private var owners: [String: String?] = [:]

    private var pending = Pending()
    /// The outbox entries each committed event of the batch got, by its index.
    private var entriesOfItem: [Int: [OutboxEntry]] = [:]

    /// Set when a statement failed: the transaction is aborted, and nothing else may be tried in it.
    private var failedStatement: (any Error)?

    init(session: PostgresSession, store: PostgresStore, now: Date, mode: Mode) {
        self.session = session
        self.store = store
        self.now = now
        self.mode = mode
    }

    /// The writes waiting for the next flush, in the order events made them.
    private struct Pending {
        var interactions: [String: Interaction] = [:]
        var interactionOrder: [String] = []
        var processed: [(eventId: String, callId: String)] = []
        var outbox: [(item: Int, callId: String, causeId: String, entry: NewOutboxEntry)] = []
        var notes: [(callId: String, notes: [UInt8])] = []
        var contacts: [NewContact] = []
        var identifiers: [(key: String, contactId: String)] = []
        var links: [(callId: String, contactId: String, linkedBy: String, suggestions: String?)] = []

        var isEmpty: Bool {
            interactionOrder.isEmpty && processed.isEmpty && outbox.isEmpty && notes.isEmpty && contacts.isEmpty
                && identifiers.isEmpty && links.isEmpty
        }
    }

    private struct NewContact {
        var id: String
        var type: ContactType
        var capture: ContactCapture
        var expiresAt: Date?
    }

    /// Thrown out of a batched apply when the server refused a statement: the store applies the batch
    /// again, isolated.
    struct BatchedWriteRefused: Error {
        var underlying: any Error
    }

    // MARK: Applying

    func apply(_ batch: [EventApplication]) throws -> [Result<ApplyResult, any Error>] {
        if mode == .batched {
            do {
                try readAhead(batch)
            } catch {
                throw BatchedWriteRefused(underlying: error)
            }
        }
        var outcomes: [Result<Outcome, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        for (index, item) in batch.enumerated() {
            switch mode {
            case .batched:
                do {
                    outcomes.append(try apply(item, index: index))
                } catch {
                    // A statement failed (the transaction is aborted), or something after this event's
                    // first pending write: either way the batch is applied again, isolated.
                    throw BatchedWriteRefused(underlying: failedStatement ?? error)
                }
            case .isolated:
                outcomes.append(
                    Result {
                        try session.inSavepoint {
                            let outcome = try apply(item, index: index).get()
                            try flush()
                            return outcome
                        }
                    }.mapError(PostgresStore.storeError)
                )
                // An event undone by its savepoint leaves nothing behind for the next one: neither its
                // writes nor its failed statement (the savepoint's rollback made the transaction usable).
                pending = Pending()
                failedStatement = nil
            }
        }
        if mode == .batched {
            do {
                try flush()
            } catch {
                throw BatchedWriteRefused(underlying: error)
            }
        }
        return outcomes.map { outcome in
            outcome.map { outcome in
                switch outcome {
                case .committed(let index): .committed(entriesOfItem[index] ?? [])
                case .alreadyProcessed(let entries): .alreadyProcessed(entries)
                }
            }
        }
    }

    private enum Outcome {
        case committed(item: Int)
        case alreadyProcessed([OutboxEntry])
    }

    /// One event. A thrown error is a statement's (the batch cannot go on); a returned failure is the
    /// transition's, which wrote nothing.
    private func apply(_ item: EventApplication, index: Int) throws -> Result<Outcome, any Error> {
        if try isProcessed(item.eventId) {
            // What another relay holds stays its own: this one takes only what is free. The claim reads
            // the outbox, so what this batch added to it is written first.
            try flush()
            return .success(
                .alreadyProcessed(try statement { try store.claim(session, causeId: item.eventId, now: Date()) })
            )
        }
        let current = try state(callId: item.callId)
        let next: Interaction
        let newEntries: [NewOutboxEntry]
        do {
            (next, newEntries) = try item.transition(current, BatchContactTables(batch: self))
        } catch {
            if let failedStatement { throw failedStatement }
            return .failure(error)
        }
        guard next.callId == item.callId else {
            return .failure(
                StoreError(.callIdMismatch, "a transition applied to call \(item.callId) returned call \(next.callId)")
            )
        }
        remember(state: next)
        if let contact = item.contact {
            try capture(contact, callId: item.callId, firstStart: current?.startEventId == nil)
        }
        if mode == .batched { processed.insert(item.eventId) }
        pending.processed.append((item.eventId, item.callId))
        pending.outbox.append(
            contentsOf: newEntries.map { (item: index, callId: item.callId, causeId: item.eventId, entry: $0) }
        )
        return .success(.committed(item: index))
    }

    // MARK: Reading

    /// Every event's processed mark, every call's state, every caller's override and every
    /// identifier's owner, in one statement.
    private func readAhead(_ batch: [EventApplication]) throws {
        let eventIds = Array(Set(batch.map(\.eventId)))
        let callIds = Array(Set(batch.map(\.callId)))
        let phoneKeys = Array(Set(batch.compactMap(\.phoneKey)))
        let keys = Array(Set(batch.flatMap { $0.contact?.keys ?? [] }))
        let rows = try statement {
            try session.run(
                """
                SELECT 0, event_id, NULL::text, NULL::bytea FROM processed_event WHERE event_id = ANY(\(eventIds))
                UNION ALL SELECT 1, call_id, NULL, state FROM interaction WHERE call_id = ANY(\(callIds))
                UNION ALL SELECT 2, phone_key, external_id, NULL FROM identity_override
                    WHERE phone_key = ANY(\(phoneKeys)) AND expires_at > \(ColumnTime.value(now))
                UNION ALL SELECT 3, key, contact_id, NULL FROM contact_identifier WHERE key = ANY(\(keys))
                """
            ).rows
        }
        readAheadEvents = Set(eventIds)
        for callId in callIds { states[callId] = .some(nil) }
        for phoneKey in phoneKeys { overrides[phoneKey] = .some(nil) }
        for key in keys { owners[key] = .some(nil) }
        for row in rows {
            let (table, key, value, state) = try row.decode((Int, String, String?, ByteBuffer?).self)
            switch table {
            case 0: processed.insert(key)
            case 1:
                if let state {
                    states[key] = try InteractionStateCoding.decode(Data(state.readableBytesView), callId: key)
                }
            case 2: overrides[key] = value
            default: owners[key] = value
            }
        }
    }

    private func isProcessed(_ eventId: String) throws -> Bool {
        if readAheadEvents.contains(eventId) || processed.contains(eventId) { return processed.contains(eventId) }
        return try statement {
            try session.run("SELECT 1 FROM processed_event WHERE event_id = \(eventId)").rows.count > 0
        }
    }

    private func state(callId: String) throws -> Interaction? {
        if let known = states[callId] { return known }
        return try statement { try PostgresStore.state(callId: callId, session) }
    }

    private func remember(state: Interaction) {
        if mode == .batched { states[state.callId] = state }
        if pending.interactions.updateValue(state, forKey: state.callId) == nil {
            pending.interactionOrder.append(state.callId)
        }
    }

    fileprivate func liveOverride(phoneKey: String) throws -> String? {
        if let known = overrides[phoneKey] { return known }
        return try statement { try PostgresStore.liveOverride(phoneKey: phoneKey, now: now, session) }
    }

    fileprivate func owner(key: String) throws -> String? {
        if let known = owners[key] { return known }
        try flush()
        return try statement { try tables.owner(key: key) }
    }

    /// The contact tables as they stand, every write of the batch so far in them.
    fileprivate var flushedTables: PostgresContactTables {
        get throws {
            try flush()
            return tables
        }
    }

    /// A write through the contact tables (no event's transition makes one today) may change what was
    /// read ahead: the rest of the batch reads the tables again.
    fileprivate func forgetReadAhead() {
        overrides = [:]
        owners = [:]
    }

    private var tables: PostgresContactTables { PostgresContactTables(session: session) }

    /// Runs a statement, remembering that it failed: the transaction is then aborted.
    fileprivate func statement<T>(_ body: () throws -> T) throws -> T {
        if let failedStatement { throw failedStatement }
        do {
            return try body()
        } catch {
            failedStatement = error
            throw error
        }
    }

    // MARK: The contact link

    /// `ContactRows.capture` on PostgreSQL. The caller holds the locks of the call and of the sighting's
    /// identifier keys, so two relays never create two contacts for one new caller.
    private func capture(_ capture: ContactCapture, callId: String, firstStart: Bool) throws {
        if let notes = capture.sealedNotes {
            pending.notes.append((callId, notes))
        }
        guard let sighting = capture.sighting, firstStart else { return }
        let owners = try capture.keys.map { try owner(key: $0) }
        var sameName: [String] = []
        if let nameKey = capture.nameKey, !owners.contains(where: { $0 != nil }) {
            let tables = try flushedTables
            sameName = try statement { try tables.contactIds(nameKey: nameKey, limit: 5) }
        }
        let contactId: String
        let linkedBy: String
        var suggestions: [String] = []
        switch ContactLinking.decide(sighting, owners: owners, sameName: sameName) {
        case .link(let owner, let kind):
            contactId = owner
            linkedBy = kind.name
            let tables = try flushedTables
            try statement { try tables.renew(owner, now: now, timeToLive: capture.timeToLive) }
        case .create(let type, let suggested):
            contactId = capture.newContactId
            linkedBy = "new"
            suggestions = suggested
            var contact = Contact(id: contactId, type: type, createdAt: now)
            contact.lastInteractionAt = now
            pending.contacts.append(
                NewContact(
                    id: contactId,
                    type: type,
                    capture: capture,
                    expiresAt: contact.expiry(timeToLive: capture.timeToLive)
                )
            )
            for key in capture.keys {
                pending.identifiers.append((key, contactId))
                if mode == .batched { self.owners[key] = contactId }
            }
        }
        pending.links.append(
            (callId, contactId, linkedBy, suggestions.isEmpty ? nil : suggestions.joined(separator: ","))
        )
    }

    // MARK: Writing

    /// Writes what waits, one statement per table (per 500 rows).
    private func flush() throws {
        guard !pending.isEmpty else { return }
        let writes = pending
        pending = Pending()
        try statement { try write(writes) }
    }

    private func write(_ writes: Pending) throws {
        let now = ColumnTime.value(self.now)
        for chunk in writes.interactionOrder.chunks(of: Self.rowsPerStatement) {
            var rows = MultiRowValues(columns: 16)
            for callId in chunk {
                let interaction = writes.interactions[callId]!
                rows.append(interaction.callId)
                rows.append(interaction.status.rawValue)
                rows.append(interaction.channel?.rawValue)
                rows.append(interaction.direction?.rawValue)
                rows.append(ColumnTime.value(interaction.startedAt))
                rows.append(ColumnTime.value(interaction.endedAt))
                rows.append(ColumnTime.value(interaction.wrappedUpAt))
                rows.append(interaction.queueId)
                rows.append(interaction.agentId)
                rows.append(interaction.wrapUpCode)
                rows.append(interaction.disconnectType)
                rows.append(interaction.externalId)
                rows.append(ColumnTime.value(interaction.nextDueAt))
                rows.append(ColumnTime.value(interaction.firstSeenAt))
                rows.append(now)
                rows.append(ByteBuffer(bytes: try InteractionStateCoding.encode(interaction)))
            }
            try session.run(
                rows.statement(
                    """
                    INSERT INTO interaction (
                        call_id, status, channel, direction, started_at, ended_at, wrapped_up_at, queue_id, agent_id,
                        wrap_up_code, disconnect_type, external_id, next_due_at, first_seen_at, updated_at, state
                    ) VALUES
                    """,
                    """
                    ON CONFLICT (call_id) DO UPDATE SET
                        status = excluded.status, channel = excluded.channel, direction = excluded.direction,
                        started_at = excluded.started_at, ended_at = excluded.ended_at,
                        wrapped_up_at = excluded.wrapped_up_at, queue_id = excluded.queue_id,
                        agent_id = excluded.agent_id, wrap_up_code = excluded.wrap_up_code,
                        disconnect_type = excluded.disconnect_type, external_id = excluded.external_id,
                        next_due_at = excluded.next_due_at, first_seen_at = excluded.first_seen_at,
                        updated_at = excluded.updated_at, state = excluded.state
                    """
                )
            )
        }
        if !writes.processed.isEmpty {
            try session.run(
                """
                INSERT INTO processed_event (event_id, call_id, processed_at)
                SELECT e, c, \(now) FROM unnest(\(writes.processed.map(\.eventId))::text[], \(writes.processed.map(\.callId))::text[]) AS u(e, c)
                """
            )
        }
        try writeOutbox(writes.outbox)
        for chunk in writes.notes.chunks(of: Self.rowsPerStatement) {
            var rows = MultiRowValues(columns: 2)
            for note in chunk {
                rows.append(note.callId)
                rows.append(ByteBuffer(bytes: note.notes))
            }
            try session.run(
                rows.statement(
                    "INSERT INTO interaction_note (call_id, notes) VALUES",
                    "ON CONFLICT (call_id) DO NOTHING"
                )
            )
        }
        for chunk in writes.contacts.chunks(of: Self.rowsPerStatement) {
            var rows = MultiRowValues(columns: 10)
            for contact in chunk {
                rows.append(contact.id)
                rows.append(contact.type.rawValue)
                rows.append(contact.capture.sealedName.map(PostgresContactTables.bytes))
                rows.append(contact.capture.nameKey)
                rows.append(contact.capture.sealedIdentifiers.map(PostgresContactTables.bytes))
                rows.append(contact.capture.keys.joined(separator: " "))
                rows.append(now)
                rows.append(now)
                rows.append(now)
                rows.append(ColumnTime.value(contact.expiresAt))
            }
            try session.run(
                rows.statement(
                    """
                    INSERT INTO contact (
                        id, type, name, name_key, identifiers, identifier_keys, created_at, updated_at,
                        last_interaction_at, expires_at
                    ) VALUES
                    """,
                    ""
                )
            )
        }
        if !writes.identifiers.isEmpty {
            try session.run(
                """
                INSERT INTO contact_identifier (key, contact_id)
                SELECT k, c FROM unnest(\(writes.identifiers.map(\.key))::text[], \(writes.identifiers.map(\.contactId))::text[]) AS u(k, c)
                """
            )
        }
        for chunk in writes.links.chunks(of: Self.rowsPerStatement) {
            var rows = MultiRowValues(columns: 5)
            for link in chunk {
                rows.append(link.callId)
                rows.append(link.contactId)
                rows.append(link.linkedBy)
                rows.append(link.suggestions)
                rows.append(now)
            }
            try session.run(
                rows.statement(
                    "INSERT INTO contact_interaction (call_id, contact_id, linked_by, suggestions, linked_at) VALUES",
                    ""
                )
            )
        }
    }

    /// The new entries, claimed by this relay as they are written (its dispatcher has them in hand).
    private func writeOutbox(_ entries: [(item: Int, callId: String, causeId: String, entry: NewOutboxEntry)]) throws {
        let now = ColumnTime.value(self.now)
        let claimedUntil = store.instance == nil ? nil : store.claimedUntil(Date())
        for chunk in entries.chunks(of: Self.rowsPerStatement) {
            var rows = MultiRowValues(columns: 8)
            for new in chunk {
                rows.append(new.causeId)
                rows.append(new.callId)
                rows.append(new.entry.kind)
                rows.append(ByteBuffer(bytes: new.entry.payload))
                rows.append(now)
                rows.append(now)
                rows.append(store.instance)
                rows.append(claimedUntil)
            }
            let inserted = try session.run(
                rows.statement(
                    "INSERT INTO outbox (cause_id, call_id, kind, payload, created_at, due_at, claimed_by, claimed_until) VALUES",
                    "RETURNING id"
                )
            )
            // The identity column gives one statement's rows increasing ids in the order of its VALUES.
            let ids = try inserted.rows.map { try $0.decode(Int64.self) }.sorted()
            guard ids.count == chunk.count else {
                throw StoreError(
                    .databaseFailed,
                    "an outbox insert of \(chunk.count) entries returned \(ids.count) ids"
                )
            }
            for (id, new) in zip(ids, chunk) {
                entriesOfItem[new.item, default: []].append(
                    OutboxEntry(
                        id: id,
                        causeId: new.causeId,
                        callId: new.callId,
                        kind: new.entry.kind,
                        payload: new.entry.payload,
                        createdAt: ColumnTime.stored(self.now),
                        inMemoryJob: new.entry.inMemoryJob
                    )
                )
            }
        }
    }

    /// Under PostgreSQL's 65,535 parameters a statement with room to spare, and small enough that one
    /// statement's plan stays cheap.
    static let rowsPerStatement = 500
}

/// `VALUES ($1, $2), ($3, $4)…` with its bindings, a row at a time.
struct MultiRowValues {
    let columns: Int
    private var sql = ""
    private var bindings = PostgresBindings()
    private var count = 0

    init(columns: Int) {
        self.columns = columns
    }

    mutating func append<Value: PostgresDynamicTypeEncodable>(_ value: Value?) {
        if count % columns == 0 {
            sql += count == 0 ? "(" : "), ("
        } else {
            sql += ", "
        }
        count += 1
        bindings.append(value)
        sql += "$\(count)"
    }

    func statement(_ head: String, _ tail: String) -> PostgresQuery {
        precondition(count > 0 && count % columns == 0, "a row of \(columns) values left unfinished")
        return PostgresQuery(unsafeSQL: "\(head) \(sql)) \(tail)", binds: bindings)
    }
}

/// The contact tables as an event's transition sees them in a batch: phase 1's reads (a caller's
/// override, an identifier's owner) from what was read ahead, anything else from the server once the
/// batch's writes so far are in.
private struct BatchContactTables: ContactTables {
    let batch: PostgresEventBatch

    func liveOverride(phoneKey: String, now: Date) throws -> String? { try batch.liveOverride(phoneKey: phoneKey) }
    func owner(key: String) throws -> String? { try batch.owner(key: key) }

    func contact(_ id: String) throws -> StoredContact? { try read { try $0.contact(id) } }
    func canonicalId(_ id: String) throws -> String { try read { try $0.canonicalId(id) } }
    func contactIds(nameKey: String, limit: Int) throws -> [String] {
        try read { try $0.contactIds(nameKey: nameKey, limit: limit) }
    }
    func merge(_ id: String) throws -> StoredMerge? { try read { try $0.merge(id) } }
    func liveMerges(involving contactId: String) throws -> [StoredMerge] {
        try read { try $0.liveMerges(involving: contactId) }
    }
    func journey(contactIds: [String], limit: Int) throws -> [StoredJourneyEntry] {
        try read { try $0.journey(contactIds: contactIds, limit: limit) }
    }
    func suggestions(callIds: [String]) throws -> [StoredSuggestion] {
        try read { try $0.suggestions(callIds: callIds) }
    }
    func suggestions(contactIds: [String]) throws -> [StoredSuggestion] {
        try read { try $0.suggestions(contactIds: contactIds) }
    }
    func link(callId: String) throws -> (contactId: String, linkedBy: String, suggestions: [String])? {
        try read { try $0.link(callId: callId) }
    }
    func dueForExpiry(now: Date, limit: Int) throws -> [String] {
        try read { try $0.dueForExpiry(now: now, limit: limit) }
    }

    func save(_ contact: StoredContact) throws { try write { try $0.save(contact) } }
    func save(_ merge: StoredMerge) throws { try write { try $0.save(merge) } }
    func erase(contactIds: [String], phoneKeys: [String]) throws -> ContactErasure {
        try write { try $0.erase(contactIds: contactIds, phoneKeys: phoneKeys) }
    }

    private func read<T>(_ body: (PostgresContactTables) throws -> T) throws -> T {
        let tables = try batch.flushedTables
        return try batch.statement { try body(tables) }
    }

    private func write<T>(_ body: (PostgresContactTables) throws -> T) throws -> T {
        let tables = try batch.flushedTables
        batch.forgetReadAhead()
        return try batch.statement { try body(tables) }
    }
}

extension Array {
    fileprivate func chunks(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
