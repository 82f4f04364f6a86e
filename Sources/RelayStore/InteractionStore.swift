public import Foundation
public import RelayCore

/// One effect waiting to be published to the broker: written in the same transaction as the state that
/// caused it (a transactional outbox), so a crash between commit and publish loses nothing.
public struct OutboxEntry: Sendable, Hashable {
    /// Assigned by the store; increasing in commit order.
    public var id: Int64
    /// The event (or timer firing) that caused it; a redelivered event finds its effects by this id.
    public var causeId: String
    public var callId: String
    /// What the effect is (`customerUpdate`, `postCallWebhook`, `deadLetter`): for routing and for logs.
    public var kind: String
    /// The effect, encoded by the caller; the store keeps the bytes as they are.
    public var payload: [UInt8]
    public var createdAt: Date
    public var publishedAt: Date?

    public init(id: Int64, causeId: String, callId: String, kind: String, payload: [UInt8], createdAt: Date, publishedAt: Date?) {
        self.id = id
        self.causeId = causeId
        self.callId = callId
        self.kind = kind
        self.payload = payload
        self.createdAt = createdAt
        self.publishedAt = publishedAt
    }
}

/// An effect to add to the outbox, before the store has given it an id.
public struct NewOutboxEntry: Sendable, Hashable {
    public var kind: String
    public var payload: [UInt8]

    public init(kind: String, payload: [UInt8]) {
        self.kind = kind
        self.payload = payload
    }
}

/// What `apply` did.
public enum ApplyResult: Sendable, Hashable {
    /// The change was committed with these outbox entries.
    case committed([OutboxEntry])
    /// The event was processed before (a redelivery or a duplicate): nothing changed; these are the
    /// outbox entries that processing left, published or not, to publish again if need be.
    case alreadyProcessed([OutboxEntry])
}

/// The relay's durable state: interactions, processed event ids, and the outbox. SQLite is the
/// embedded default; PostgreSQL can follow behind the same protocol.
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
        callId: String, eventId: String, now: Date,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult

    /// `apply`, and in the same transaction the contact link of the event (`ContactCapture`): the
    /// interaction lands on a contact exactly once, however often the event is delivered.
    func apply(
        callId: String, eventId: String, now: Date, contact: ContactCapture?,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult

    func interaction(callId: String) async throws -> Interaction?

    /// The interaction's current external id, read without decoding its state: nil for an unknown or
    /// unlinked call. What a customer update is checked against before it is sent.
    func link(callId: String) async throws -> String?

    /// Interactions with a timer due at `now` or before, soonest first.
    func interactionsWithDueTimers(now: Date, limit: Int) async throws -> [Interaction]

    /// Outbox entries not yet published, oldest first.
    func unpublishedOutbox(limit: Int) async throws -> [OutboxEntry]

    /// How many outbox entries are not yet published, and when the oldest of them was committed.
    func unpublishedOutboxSummary() async throws -> (count: Int, oldestCreatedAt: Date?)

    func markPublished(_ ids: [Int64], at: Date) async throws

    /// Forgets processed event ids recorded before `cutoff`; returns how many.
    func pruneProcessedEvents(before cutoff: Date) async throws -> Int

    /// Removes published outbox entries older than `cutoff`; returns how many.
    func prunePublishedOutbox(before cutoff: Date) async throws -> Int

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

    /// Calls linked to a CRM or ERP id whose row changed at or after `since`, most recent first, at most
    /// `limit`: what a restarted delivery worker remembers, so queued updates they supersede are not sent.
    func recentCRMOrERPLinks(since: Date, limit: Int) async throws -> [(callId: String, externalId: String)]

    /// Records that the interaction is now linked to `externalId` (phase 2, a validated switch, or
    /// reconciliation), if its current link is one `rule` replaces. Returns the call's link afterwards:
    /// `externalId` when it changed or already was, the link `rule` kept otherwise, nil for an unknown
    /// call (this never creates an interaction).
    func relink(callId: String, to externalId: String, now: Date, replacing rule: RelinkRule) async throws -> String?

    /// Throws unless the store can take a write now (for readiness checks): it takes the write lock
    /// and commits an empty transaction, which a read-only or vanished database file refuses.
    func checkWritable() async throws

    /// Removes interactions that finished (completed or orphaned) and last changed before `cutoff`, with
    /// their processed event ids and their published outbox entries, in one transaction. Unfinished
    /// interactions and unpublished entries always stay: they are work still to do.
    func purgeFinishedInteractions(before cutoff: Date) async throws -> FinishedInteractionsPurge
}

/// Which links a relink may replace.
public enum RelinkRule: Sendable, Hashable {
    /// Only the phase-1 `PHONE:` id, or no link: a CRM answer never overwrites an agent's switch.
    case phoneLinkOnly
    /// Any link: a validated switch wins over whatever was there.
    case anyLink
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

extension InteractionStore {
    /// Stores without a contact graph commit the interaction only.
    public func apply(
        callId: String, eventId: String, now: Date, contact: ContactCapture?,
        _ transition: @escaping @Sendable (Interaction?) throws -> (Interaction, [NewOutboxEntry])
    ) async throws -> ApplyResult {
        try await apply(callId: callId, eventId: eventId, now: now, transition)
    }
}
