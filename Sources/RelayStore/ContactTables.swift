public import Foundation

/// The contact tables inside one transaction of a store: read what an operation touches, write back
/// what it changed. `ContactDirectory`'s use cases and phase 1's local link are written against this,
/// so they run unchanged on SQLite (`ContactRows`) and PostgreSQL.
///
/// Synchronous on purpose: an operation loads a graph of contacts one step at a time and runs the pure
/// rules between steps, all inside one transaction, and GRDB's transactions are synchronous closures.
/// Both stores run these on threads of their own, never on the cooperative pool or an event loop.
public protocol ContactTables {
    /// The live recent override for a caller's number key: read with the contacts, so phase 1 gets
    /// both of its local answers in one transaction.
    func liveOverride(phoneKey: String, now: Date) throws -> String?

    func contact(_ id: String) throws -> StoredContact?

    /// The contact that owns the identifier with this key, not resolved through merges.
    func owner(key: String) throws -> String?

    /// Follows `merged_into` to the canonical contact.
    func canonicalId(_ id: String) throws -> String

    /// The canonical contacts with this name key, oldest first.
    func contactIds(nameKey: String, limit: Int) throws -> [String]

    func merge(_ id: String) throws -> StoredMerge?

    /// Merges still in effect where `contactId` is the target or the absorbed one.
    func liveMerges(involving contactId: String) throws -> [StoredMerge]

    /// Writes the contact and makes the lookup table match its identifiers: keys it no longer has are
    /// released, new ones taken (from whoever held them: the rules checked that before).
    func save(_ contact: StoredContact) throws

    func save(_ merge: StoredMerge) throws

    /// Every interaction linked to any of these contacts, newest first.
    func journey(contactIds: [String], limit: Int) throws -> [StoredJourneyEntry]

    /// The CRM suggestions of these calls, oldest first.
    func suggestions(callIds: [String]) throws -> [StoredSuggestion]

    /// The CRM suggestions of every interaction linked to these contacts, oldest first.
    func suggestions(contactIds: [String]) throws -> [StoredSuggestion]

    /// Which contact an interaction landed on, and the contacts of the same name it only suggested.
    func link(callId: String) throws -> (contactId: String, linkedBy: String, suggestions: [String])?

    /// Contacts whose expiry is due at `now`, soonest first.
    func dueForExpiry(now: Date, limit: Int) throws -> [String]

    /// Erases everything held about these contacts and phone keys: the contacts, their identifiers and
    /// merges, every interaction linked to them or to the `PHONE:` id of a key (with its notes, CRM
    /// suggestions, journey link and outbox entries), and the recent overrides of the keys.
    func erase(contactIds: [String], phoneKeys: [String]) throws -> ContactErasure
}

/// A store that keeps the contact graph: it runs a body against its contact tables in one transaction.
public protocol ContactStore: Sendable {
    /// Reads the contact tables in one consistent snapshot.
    func readContacts<T: Sendable>(_ body: @escaping @Sendable (any ContactTables) throws -> T) async throws -> T

    /// Reads and writes the contact tables in one transaction: an operation that throws changes nothing.
    /// Operations on the graph never interleave with each other or with an event's contact link.
    func writeContacts<T: Sendable>(_ body: @escaping @Sendable (any ContactTables) throws -> T) async throws -> T
}

/// What `ContactTables.erase` removed, table by table.
public struct ContactErasure: Sendable, Hashable, Codable {
    public var contacts = 0
    public var identifiers = 0
    public var merges = 0
    public var interactions = 0
    public var interactionNotes = 0
    public var outboxEntries = 0
    public var overrides = 0

    public init() {}
}

/// The relay's whole store, whichever engine holds it: SQLite (`SQLiteInteractionStore`, the embedded
/// default) or PostgreSQL (`PostgresStore`, for several relays).
public typealias RelayDatabase = InteractionStore & ContactStore & DeadLetterStore & ChoreLeases
