public import Foundation
public import RelayCore
public import RelayStore

/// The single customer view's operations in one place, for the CLI today and the admin API later:
/// show, search, create, edit, promote, merge, unmerge, journeys, import, expiry, and the capture of
/// each interaction's contact on the event pipeline's hot path.
///
/// Every operation loads the contacts it touches inside one store transaction, runs the pure rules
/// (`ContactBook`) and writes back what changed: a refused operation (a `ContactError`) changes nothing.
/// Personal data is sealed (`FieldCipher`) before it reaches the store and found by keyed hash only.
public final class ContactDirectory: Sendable {
    public let store: any ContactStore
    public let timeToLive: Duration
    let cipher: FieldCipher
    let hasher: IdentifierHasher
    let defaultRegion: String
    let clock: @Sendable () -> Date

    public init(
        store: any ContactStore,
        cipher: FieldCipher,
        hasher: IdentifierHasher,
        timeToLive: Duration,
        defaultRegion: String = PhoneNumber.unknownRegion,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.cipher = cipher
        self.hasher = hasher
        self.timeToLive = timeToLive
        self.defaultRegion = defaultRegion
        self.clock = clock
    }

    // MARK: Reading

    public func show(_ reference: ContactReference) async throws -> ContactView {
        try await store.readContacts { rows in
            let id = try self.id(of: reference, rows)
            let book = try self.loadBook(rows, ids: [id])
            return try self.view(of: id, book, rows)
        }
    }

    /// Contacts with this identifier (at most one) or, by name, every canonical contact of that name.
    public func search(
        identifier: ContactIdentifier? = nil,
        name: String? = nil,
        limit: Int = 50
    ) async throws -> [ContactView] {
        try await store.readContacts { rows in
            var ids: [String] = []
            if let identifier, let owner = try rows.owner(key: identifier.key(self.hasher)) { ids.append(owner) }
            if let name {
                ids += try rows.contactIds(nameKey: ContactSighting.nameKey(name, hasher: self.hasher), limit: limit)
            }
            let book = try self.loadBook(rows, ids: ids)
            var seen: Set<String> = []
            return try ids.compactMap { id in
                let view = try self.view(of: id, book, rows)
                return seen.insert(view.id).inserted ? view : nil
            }
        }
    }

    /// Every interaction of the contact and its aliases, newest first.
    public func journey(_ reference: ContactReference, limit: Int = 1_000) async throws -> Journey {
        try await store.readContacts { rows in
            let id = try self.id(of: reference, rows)
            let book = try self.loadBook(rows, ids: [id])
            let view = try self.view(of: id, book, rows)
            let entries = try rows.journey(contactIds: book.aliasTree(view.id), limit: limit).map { stored in
                JourneyEntry(
                    callId: stored.callId,
                    contactId: stored.contactId,
                    linkedBy: stored.linkedBy,
                    channel: stored.channel,
                    direction: stored.direction,
                    at: stored.startedAt ?? stored.firstSeenAt,
                    queueId: stored.queueId,
                    agentId: stored.agentId,
                    wrapUpCode: stored.wrapUpCode,
                    status: stored.status,
                    durationSeconds: stored.startedAt.flatMap { start in
                        stored.endedAt.map { max(0, Int($0.timeIntervalSince(start).rounded())) }
                    },
                    notes: try stored.notes.map {
                        try self.cipher.openString($0, context: SealContext.interactionNotes)
                    },
                    suggestions: try stored.suggestions.map(self.open)
                )
            }
            return Journey(contact: view, interactions: entries)
        }
    }

    /// Which contact an interaction landed on (the contact itself, not resolved) and what only suggested.
    public func link(callId: String) async throws -> (contactId: String, linkedBy: String, suggestions: [String])? {
        try await store.readContacts { rows in try rows.link(callId: callId) }
    }

    // MARK: Changing

    /// A curated contact, created by a person. Refused (naming the owner) when an identifier is taken.
    public func create(_ draft: ContactDraft) async throws -> ContactView {
        let identifiers = try identifiers(of: draft)
        let now = clock()
        return try await change(keys: identifiers.map { $0.key(hasher) }) { book in
            let contact = try book.create(
                id: Self.newContactId(),
                type: .curated,
                name: draft.name,
                identifiers: identifiers,
                attributes: draft.attributes,
                notes: draft.note.map { [ContactNote(text: $0, at: now, author: "api")] } ?? [],
                now: now
            )
            return contact.id
        }
    }

    /// An edit by a person (name, attributes, a note, more identifiers): the contact becomes curated.
    public func edit(
        _ reference: ContactReference,
        _ draft: ContactDraft,
        author: String? = nil
    ) async throws -> ContactView {
        let identifiers = try identifiers(of: draft)
        let now = clock()
        return try await change(reference: reference, keys: identifiers.map { $0.key(hasher) }) { book, id in
            try book.edit(
                id,
                name: draft.name,
                attributes: draft.attributes,
                note: draft.note.map { ContactNote(text: $0, at: now, author: author) },
                now: now
            )
            if !identifiers.isEmpty { try book.addIdentifiers(identifiers, to: id, now: now) }
            return try book.resolve(id).id
        }
    }

    public func promote(_ reference: ContactReference) async throws -> ContactView {
        let now = clock()
        return try await change(reference: reference) { book, id in
            try book.promote(id, now: now)
            return try book.resolve(id).id
        }
    }

    /// Folds `absorbed` into `target`; returns the merge's id (for `unmerge`) and the canonical contact.
    public func merge(
        _ absorbed: ContactReference,
        into target: ContactReference
    ) async throws -> (mergeId: String, contact: ContactView) {
        let now = clock()
        let mergeId = "mg-" + Self.randomHex(12)
        let view = try await store.writeContacts { rows in
            let absorbedId = try self.id(of: absorbed, rows)
            let targetId = try self.id(of: target, rows)
            var book = try self.loadBook(rows, ids: [absorbedId, targetId])
            let record = try book.merge(absorbedId, into: targetId, mergeId: mergeId, now: now)
            try self.save(book, rows)
            return try self.view(of: record.targetId, book, rows)
        }
        return (mergeId, view)
    }

    /// Undoes a merge: both contacts as they were before it, each with its interactions.
    public func unmerge(_ mergeId: String) async throws -> [ContactView] {
        let now = clock()
        return try await store.writeContacts { rows in
            guard let stored = try rows.merge(mergeId), stored.undoneAt == nil else {
                throw ContactError(.notMerged, "no merge \(mergeId) to undo (never merged, or undone already)")
            }
            var book = try self.loadBook(rows, ids: [stored.targetId, stored.absorbedId])
            try book.unmerge(mergeId, now: now)
            try self.save(book, rows)
            return try [stored.targetId, stored.absorbedId].map { try self.view(of: $0, book, rows) }
        }
    }

    // MARK: Expiry

    /// Removes the personal data of every temporary contact past its expiry; returns how many.
    @discardableResult
    public func expireDue(batch: Int = 500) async throws -> Int {
        let now = clock()
        var total = 0
        while true {
            let expired = try await store.writeContacts { rows in
                let due = try rows.dueForExpiry(now: now, limit: batch)
                var book = try self.loadBook(rows, ids: due)
                for id in due { try book.expire(id, now: now) }
                try self.save(book, rows)
                return due.count
            }
            total += expired
            if expired < batch { return total }
        }
    }

    // MARK: Steps

    /// Runs a change on the book loaded with the contacts a reference names and the owners of `keys`,
    /// then saves it; returns the view of the contact the change returns.
    func change(
        reference: ContactReference? = nil,
        keys: [String] = [],
        _ body: @escaping @Sendable (inout ContactBook, String) throws -> String
    ) async throws -> ContactView {
        try await store.writeContacts { rows in
            let id = try reference.map { try self.id(of: $0, rows) } ?? ""
            var book = try self.loadBook(rows, ids: id.isEmpty ? [] : [id], keys: keys)
            let result = try body(&book, id)
            try self.save(book, rows)
            return try self.view(of: result, book, rows)
        }
    }

    func change(
        keys: [String],
        _ body: @escaping @Sendable (inout ContactBook) throws -> String
    ) async throws -> ContactView {
        try await change(reference: nil, keys: keys) { book, _ in try body(&book) }
    }

    func id(of reference: ContactReference, _ rows: any ContactTables) throws -> String {
        switch reference {
        case .id(let id):
            guard try rows.contact(id) != nil else { throw ContactError(.notFound, "no contact \(id)") }
            return id
        case .identifier(let identifier):
            guard let owner = try rows.owner(key: identifier.key(hasher)) else {
                throw ContactError(.notFound, "no contact has \(identifier)")
            }
            return try rows.canonicalId(owner)
        }
    }

    /// The contacts `ids` name with their merge chains and alias trees, the owners of `keys`, and the
    /// live merges among them: everything the rules look at for one operation.
    func loadBook(_ rows: any ContactTables, ids: [String], keys: [String] = []) throws -> ContactBook {
        var contacts: [String: Contact] = [:]
        var owners: [String: String] = [:]
        var pending = ids
        for key in keys {
            if let owner = try rows.owner(key: key) {
                owners[key] = owner
                pending.append(owner)
            }
        }
        while let id = pending.popLast() {
            guard contacts[id] == nil, let stored = try rows.contact(id) else { continue }
            let contact = try open(stored)
            contacts[id] = contact
            if let next = contact.mergedInto { pending.append(next) }
            pending += contact.aliases
        }
        var merges: [String: MergeRecord] = [:]
        for id in contacts.keys {
            for stored in try rows.liveMerges(involving: id) where merges[stored.id] == nil {
                merges[stored.id] = try open(stored)
            }
        }
        return ContactBook(
            contacts: Array(contacts.values),
            owners: owners,
            merges: Array(merges.values),
            hasher: hasher,
            temporaryTimeToLive: timeToLive
        )
    }

    func save(_ book: ContactBook, _ rows: any ContactTables) throws {
        for id in book.changed.sorted() {
            guard let contact = book.contacts[id] else { continue }
            try rows.save(seal(contact))
        }
        for id in book.changedMerges.sorted() {
            guard let record = book.merges[id] else { continue }
            try rows.save(seal(record))
        }
    }

    func view(of id: String, _ book: ContactBook, _ rows: any ContactTables) throws -> ContactView {
        let canonical = try book.resolve(id)
        var seen: Set<String> = []
        let suggestions = try rows.suggestions(contactIds: book.aliasTree(canonical.id)).map(open)
            .filter { seen.insert($0.externalId).inserted }
        return ContactView(
            id: canonical.id,
            type: canonical.type,
            name: canonical.name,
            attributes: canonical.attributes,
            notes: canonical.notes,
            identifiers: book.allIdentifiers(canonical.id),
            aliases: Array(book.aliasTree(canonical.id).dropFirst()),
            merges: book.merges.values.filter { $0.targetId == canonical.id && $0.undoneAt == nil }
                .sorted { ($0.mergedAt, $0.id) < ($1.mergedAt, $1.id) }.map(\.id),
            createdAt: canonical.createdAt,
            updatedAt: canonical.updatedAt,
            lastInteractionAt: canonical.lastInteractionAt,
            expiresAt: canonical.expiresAt,
            expiredAt: canonical.expiredAt,
            suggestions: suggestions
        )
    }

    /// The draft's identifiers, parsed; an unparseable one refuses the whole draft, saying which.
    func identifiers(of draft: ContactDraft) throws(ContactError) -> [ContactIdentifier] {
        var result: [ContactIdentifier] = []
        for (kind, values, what) in [
            (ContactIdentifier.Kind.phone, draft.phones, "phone number"), (.email, draft.emails, "email address"),
            (.external, draft.externalIds, "external id (CRM:… or ERP:…)"),
        ] {
            for raw in values where !raw.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let identifier = ContactIdentifier(kind: kind, raw: raw, defaultRegion: defaultRegion) else {
                    throw ContactError(.invalidIdentifier, "\(kind.name) \(Masking.mask(raw)) is not a valid \(what)")
                }
                result.append(identifier)
            }
        }
        return result
    }

    /// Time-ordered (milliseconds, then random), so new contacts append to the table's B-tree rather than
    /// landing on a random page each: the store writes one per new caller.
    static func newContactId() -> String {
        let milliseconds = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 16)
        return "ct-" + String(repeating: "0", count: max(0, 11 - milliseconds.count)) + milliseconds + randomHex(7)
    }

    static func randomHex(_ count: Int) -> String {
        var text = ""
        while text.count < count {
            let hex = String(UInt64.random(in: .min ... .max), radix: 16)
            text += String(repeating: "0", count: 16 - hex.count) + hex
        }
        return String(text.prefix(count))
    }
}
