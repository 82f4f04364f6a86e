public import Foundation
public import RelayCore

/// One effect of a committed event, waiting to be carried out: written in the same transaction as the
/// state that caused it (a transactional outbox), so a crash between commit and effect loses nothing.
/// The outbox is the relay's work queue: the dispatcher takes what is due, and an attempt's outcome
/// either finishes the entry or writes its next due time.
public struct OutboxEntry: Sendable, Hashable {
    public static func == (lhs: OutboxEntry, rhs: OutboxEntry) -> Bool {
        lhs.id == rhs.id && lhs.causeId == rhs.causeId && lhs.callId == rhs.callId && lhs.kind == rhs.kind
            && lhs.payload == rhs.payload && lhs.createdAt == rhs.createdAt && lhs.dueAt == rhs.dueAt
            && lhs.attempts == rhs.attempts && lhs.lastError == rhs.lastError && lhs.finishedAt == rhs.finishedAt
            && lhs.outcome == rhs.outcome
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(payload)
    }

    /// Assigned by the store; increasing in commit order.
    public var id: Int64
    /// The event (or timer firing) that caused it; a redelivered event finds its effects by this id.
    public var causeId: String
    public var callId: String
    /// What the effect is (`delivery`, `lookup`, `deadLetter`): which lane runs it, and for logs.
    public var kind: String
    /// The effect, encoded by the caller; the store keeps the bytes as they are.
    public var payload: [UInt8]
    public var createdAt: Date
    /// When the next attempt may start; `createdAt` for a new entry.
    public var dueAt: Date
    /// Real attempts made so far.
    public var attempts: Int
    /// The last attempt's failure, log-safe (an HTTP status, a transport error); nil before any failure.
    public var lastError: String?
    /// When it was finished (delivered, dead-lettered, superseded, …); nil while it is work to do.
    public var finishedAt: Date?
    /// How it finished (`delivered`, `deadLettered`, `superseded`, `noUpdate`, …).
    public var outcome: String?
    /// The job `payload` encodes, open, when this process made the entry a moment ago (a commit's
    /// hand-over): its dispatcher runs it without decoding and opening the payload again. Never
    /// stored, nil in every entry read from the store, and no part of the entry's equality.
    public var inMemoryJob: DeliveryJob?

    public init(
        id: Int64,
        causeId: String,
        callId: String,
        kind: String,
        payload: [UInt8],
        createdAt: Date,
        dueAt: Date? = nil,
        attempts: Int = 0,
        lastError: String? = nil,
        finishedAt: Date? = nil,
        outcome: String? = nil,
        inMemoryJob: DeliveryJob? = nil
    ) {
        self.inMemoryJob = inMemoryJob
        self.id = id
        self.causeId = causeId
        self.callId = callId
        self.kind = kind
        self.payload = payload
        self.createdAt = createdAt
        self.dueAt = dueAt ?? createdAt
        self.attempts = attempts
        self.lastError = lastError
        self.finishedAt = finishedAt
        self.outcome = outcome
    }
}

/// What became of an outbox entry's attempt, to record in the store.
public enum OutboxSettlement: Sendable, Hashable {
    /// Done for good: `outcome` says how (`delivered`, `deadLettered`, `superseded`, …).
    case finished(id: Int64, outcome: String)
    /// Not done: the next attempt is due at `dueAt`; `payload` (the job with its attempt count and
    /// first failure) replaces the entry's.
    case retry(id: Int64, dueAt: Date, attempts: Int, lastError: String, payload: [UInt8])
    /// Becomes a dead-letter record still to publish (due at `dueAt`): the job gave up, and the broker
    /// did not take its record.
    case deadLetter(id: Int64, dueAt: Date, lastError: String, record: [UInt8])
}

/// A lookup that found its customer: the call's relink and the enriched update, in one transaction.
public struct LookupCompletion: Sendable, Hashable {
    public var entryId: Int64
    public var callId: String
    public var causeId: String
    public var externalId: String
    public var rule: RelinkRule
    /// The customer update to send once relinked.
    public var update: NewOutboxEntry
    /// A validated context update also remembers the caller (a recent override) until `expiresAt`.
    public var override: (phoneKey: String, expiresAt: Date)?

    public init(
        entryId: Int64,
        callId: String,
        causeId: String,
        externalId: String,
        rule: RelinkRule,
        update: NewOutboxEntry,
        override: (phoneKey: String, expiresAt: Date)? = nil
    ) {
        self.entryId = entryId
        self.callId = callId
        self.causeId = causeId
        self.externalId = externalId
        self.rule = rule
        self.update = update
        self.override = override
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entryId == rhs.entryId && lhs.externalId == rhs.externalId && lhs.update == rhs.update
            && lhs.override?.phoneKey == rhs.override?.phoneKey && lhs.override?.expiresAt == rhs.override?.expiresAt
            && lhs.rule == rhs.rule && lhs.callId == rhs.callId && lhs.causeId == rhs.causeId
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entryId)
        hasher.combine(externalId)
    }
}

/// What waits in the outbox, by kind.
public struct OutboxSummary: Sendable, Hashable {
    public struct Kind: Sendable, Hashable {
        /// Not finished.
        public var pending = 0
        /// Not finished and due now.
        public var due = 0
        /// Not finished, tried and failed before, due later: retries scheduled.
        public var retrying = 0
        public var oldestCreatedAt: Date?

        public init() {}
    }

    public var kinds: [String: Kind]

    public init(kinds: [String: Kind] = [:]) {
        self.kinds = kinds
    }

    public var pending: Int { kinds.values.reduce(0) { $0 + $1.pending } }
    public var oldestCreatedAt: Date? { kinds.values.compactMap(\.oldestCreatedAt).min() }
}

/// Which outbox entries an operator asks for.
public struct OutboxQuery: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        /// Not finished.
        case pending
        /// Not finished and failed at least once.
        case failing
        /// Finished.
        case finished
    }

    public var state: State
    public var kind: String?
    public var callId: String?
    public var limit: Int

    public init(state: State = .pending, kind: String? = nil, callId: String? = nil, limit: Int = 100) {
        self.state = state
        self.kind = kind
        self.callId = callId
        self.limit = limit
    }
}

/// An effect to add to the outbox, before the store has given it an id.
public struct NewOutboxEntry: Sendable, Hashable {
    public static func == (lhs: NewOutboxEntry, rhs: NewOutboxEntry) -> Bool {
        lhs.kind == rhs.kind && lhs.payload == rhs.payload
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        hasher.combine(payload)
    }

    public var kind: String
    public var payload: [UInt8]
    /// The job `payload` encodes, open, handed to the committed entry (`OutboxEntry.inMemoryJob`).
    public var inMemoryJob: DeliveryJob?

    public init(kind: String, payload: [UInt8], inMemoryJob: DeliveryJob? = nil) {
        self.kind = kind
        self.payload = payload
        self.inMemoryJob = inMemoryJob
    }
}

/// What `apply` did.
public enum ApplyResult: Sendable, Hashable {
    /// The change was committed with these outbox entries.
    case committed([OutboxEntry])
    /// The event was processed before (a redelivery or a duplicate): nothing changed; these are the
    /// outbox entries that processing left unfinished, for the dispatcher to take if it has not.
    case alreadyProcessed([OutboxEntry])
}

/// The relay's durable state: interactions, processed event ids, and the outbox. SQLite is the
/// embedded default (`SQLiteInteractionStore`); PostgreSQL (`PostgresStore`) is for several relays.
///
/// Every method is safe to call concurrently; `apply` is atomic per call: two events of one call never
/// interleave their read-modify-write.
public protocol InteractionStore: Sendable {
    /// Reads the interaction, runs `transition` on it and, in one transaction, saves the new state,
    /// records `eventId` as processed and appends the outbox entries. When `eventId` was already
    /// processed, `transition` is not called. Concurrent calls may share one transaction (group commit),
    /// each in a savepoint of its own: one call's failure never undoes another's change.
    ///
    /// - Parameter eventId: the causing event's id, or a unique id for a timer firing.
    func apply(
        callId: String,
        eventId: String,
        now: Date,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult

    /// `apply`, and in the same transaction the contact link of the event (`ContactCapture`): the
    /// interaction lands on a contact exactly once, however often the event is delivered.
    func apply(
        callId: String,
        eventId: String,
        now: Date,
        contact: ContactCapture?,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult

    /// Applies a batch of events in one transaction, each in a savepoint of its own: one event's
    /// failure (returned in its place) undoes only itself. Throws only when the transaction itself
    /// did not commit, and then nothing in it did.
    func apply(_ batch: [EventApplication], now: Date) async throws -> [Result<ApplyResult, any Error>]

    func interaction(callId: String) async throws -> Interaction?

    /// The interaction's current external id, read without decoding its state: nil for an unknown or
    /// unlinked call. What a customer update is checked against before it is sent.
    func link(callId: String) async throws -> String?

    /// Interactions with a timer due at `now` or before, soonest first.
    func interactionsWithDueTimers(now: Date, limit: Int) async throws -> [Interaction]

    /// Outbox entries not finished and due at `dueBy` or before (any due time when nil), in commit
    /// order, at most `limit`.
    func pendingOutbox(dueBy: Date?, limit: Int) async throws -> [OutboxEntry]

    /// The ids of `pendingOutbox(dueBy:limit:)`, read from its index alone: a poll learns what it
    /// does not hold yet without reading (and then dropping) every entry it does hold. On a store several
    /// relays share, only those this relay may claim (`claimOutbox`).
    func pendingOutboxIds(dueBy: Date?, limit: Int) async throws -> [Int64]

    /// The entries among `ids` that are still pending and due at `dueBy` or before (any due time when
    /// nil), in commit order: another process may have finished or rescheduled one since its id was read.
    func pendingOutbox(ids: [Int64], dueBy: Date?) async throws -> [OutboxEntry]

    /// `pendingOutbox(ids:dueBy:)`, taken for this process to carry out. On a store several relays
    /// share, only the entries no other live relay holds come back, and this relay holds them (a lease
    /// it renews while it lives) until they are settled; an entry a dead relay held is free once its
    /// lease ran out. A store one process owns takes everything (the default).
    func claimOutbox(ids: [Int64], dueBy: Date?) async throws -> [OutboxEntry]

    /// What waits in the outbox at `now`, by kind.
    func outboxSummary(now: Date) async throws -> OutboxSummary

    /// Outbox entries as an operator asks for them, newest first.
    func outboxEntries(_ query: OutboxQuery) async throws -> [OutboxEntry]

    func outboxEntry(id: Int64) async throws -> OutboxEntry?

    /// Records attempts' outcomes; an entry already finished stays as it was.
    func settleOutbox(_ settlements: [OutboxSettlement], now: Date) async throws

    /// Relinks the call (if its current link is one `rule` replaces) and, when the call is then on the
    /// completion's id, adds the enriched update to the outbox; finishes the lookup either way. Returns
    /// the call's link afterwards and the update's entry (nil when the link stayed another).
    func completeLookup(_ completion: LookupCompletion, now: Date) async throws -> (link: String?, update: OutboxEntry?)

    /// Adds entries for a call outside an event (reconciliation, a replayed dead letter). With a
    /// relink, the entries are added only if the call then has that link; returns the entries added.
    func enqueueOutbox(
        callId: String,
        causeId: String,
        _ entries: [NewOutboxEntry],
        relink: (externalId: String, rule: RelinkRule)?,
        now: Date
    ) async throws -> [OutboxEntry]

    /// Makes the selected unfinished entries due at `now`; returns how many.
    func makeOutboxDue(ids: [Int64], now: Date) async throws -> Int

    /// Forgets processed event ids recorded before `cutoff`; returns how many.
    func pruneProcessedEvents(before cutoff: Date) async throws -> Int

    /// Removes outbox entries finished before `cutoff`; returns how many.
    func pruneFinishedOutbox(before cutoff: Date) async throws -> Int

    /// The live recent override for a caller (by the keyed hash of the number), if any.
    func override(phoneKey: String, now: Date) async throws -> String?

    /// Remembers that this caller is `externalId` until `expiresAt`; replaces any earlier override.
    func setOverride(phoneKey: String, externalId: String, callId: String, now: Date, expiresAt: Date) async throws

    /// Forgets overrides that expired before `now`; returns how many.
    func pruneExpiredOverrides(now: Date) async throws -> Int

    /// Interactions first seen at or after `since` whose link is still a `PHONE:` id, oldest first:
    /// what reconciliation asks the CRM about again.
    func phoneLinkedInteractions(since: Date, limit: Int) async throws -> [Interaction]

    /// Records a CRM contact that only the customer's name found, for the agent (and the contact and journey
    /// views); `sealedName` is the contact's name, sealed. Recording it again changes nothing.
    func recordSuggestion(callId: String, externalId: String, sealedName: [UInt8]?, now: Date) async throws

    /// Records that the interaction is now linked to `externalId` (phase 2, a validated switch, or
    /// reconciliation), if its current link is one `rule` replaces. Returns the call's link afterwards:
    /// `externalId` when it changed or already was, the link `rule` kept otherwise, nil for an unknown
    /// call (this never creates an interaction).
    func relink(callId: String, to externalId: String, now: Date, replacing rule: RelinkRule) async throws -> String?

    /// Throws unless the store can take a write now (for readiness checks): it takes the write lock
    /// and commits an empty transaction, which a read-only or vanished database file refuses.
    func checkWritable() async throws

    /// Removes interactions that finished (completed or orphaned) and last changed before `cutoff`, with
    /// their processed event ids and their finished outbox entries, in one transaction. Unfinished
    /// interactions and unfinished entries always stay: they are work still to do.
    func purgeFinishedInteractions(before cutoff: Date) async throws -> FinishedInteractionsPurge
}

/// What `purgeFinishedInteractions` removed.
public struct FinishedInteractionsPurge: Sendable, Hashable {
    public var interactions: Int
    public var processedEvents: Int
    public var outboxEntries: Int

    public init(interactions: Int, processedEvents: Int, outboxEntries: Int) {
        self.interactions = interactions
        self.processedEvents = processedEvents
        self.outboxEntries = outboxEntries
    }
}

/// One event's commit in a batch (`InteractionStore.apply(_:now:)`).
public struct EventApplication: Sendable {
    public var callId: String
    public var eventId: String
    /// The contact link the event lands on, committed with it (see `apply(callId:eventId:now:contact:_:)`).
    public var contact: ContactCapture?
    /// Given the call's state and the contact tables as this transaction sees them (phase 1's local link
    /// is read there, so it is the one the commit saw), the call's next state and its new effects.
    public var transition: @Sendable (Interaction?, any ContactTables) throws -> (Interaction, [NewOutboxEntry])
    /// The caller's phone key, whose live override the transition reads (phase 1): a store may read the
    /// overrides of a whole batch ahead, with the owners of the capture's keys.
    public var phoneKey: String?

    public init(
        callId: String,
        eventId: String,
        contact: ContactCapture?,
        phoneKey: String? = nil,
        transition: @escaping @Sendable (Interaction?, any ContactTables) throws -> (Interaction, [NewOutboxEntry])
    ) {
        self.callId = callId
        self.eventId = eventId
        self.contact = contact
        self.phoneKey = phoneKey
        self.transition = transition
    }
}

extension InteractionStore {
    public func claimOutbox(ids: [Int64], dueBy: Date?) async throws -> [OutboxEntry] {
        try await pendingOutbox(ids: ids, dueBy: dueBy)
    }

    /// Stores without a contact graph commit the interaction only.
    public func apply(
        callId: String,
        eventId: String,
        now: Date,
        contact: ContactCapture?,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult {
        try await apply(callId: callId, eventId: eventId, now: now, transition)
    }
}
