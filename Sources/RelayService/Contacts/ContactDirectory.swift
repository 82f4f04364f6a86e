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
    /// The `FieldCipher` context of each sealed column: a value copied to another column does not open.
    enum SealContext {
        static let name = "contact.name"
        static let attributes = "contact.attributes"
        static let notes = "contact.notes"
        static let identifiers = "contact.identifiers"
        static let mergeSnapshot = "contact_merge.snapshot"
        static let interactionNotes = "interaction_note.notes"
        static let suggestionName = "crm_suggestion.name"
    }

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

    // MARK: The event pipeline

    /// What an event brings to the identity graph, hashed and sealed, for `InteractionStore.apply`:
    /// a start event's sighting, a wrap-up's notes; nil for the rest.
    public func capture(for event: PlatformEvent) -> ContactCapture? {
        var notes: [UInt8]?
        if case .wrapUp(let wrapUp) = event.payload, let text = wrapUp.notes, !text.isEmpty {
            notes = cipher.seal(text, context: SealContext.interactionNotes)
        }
        let sighting = ContactSighting(event, defaultRegion: defaultRegion)
        guard sighting != nil || notes != nil else { return nil }
        let identifiers = sighting?.identifiers ?? []
        return ContactCapture(
            sighting: sighting,
            keys: identifiers.map { $0.key(hasher) },
            sealedIdentifiers: identifiers.isEmpty ? nil : sealIdentifiers(identifiers),
            nameKey: sighting?.name.map { ContactSighting.nameKey($0, hasher: hasher) },
            sealedName: sighting?.name.map { cipher.seal($0, context: SealContext.name) },
            newContactId: Self.newContactId(),
            timeToLive: timeToLive,
            sealedNotes: notes
        )
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

    // MARK: Sealing

    func open(_ stored: StoredSuggestion) throws -> ContactSuggestion {
        ContactSuggestion(
            externalId: stored.externalId,
            name: try stored.name.map { try cipher.openString($0, context: SealContext.suggestionName) },
            callId: stored.callId,
            suggestedAt: stored.suggestedAt
        )
    }

    func seal(_ contact: Contact) -> StoredContact {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return StoredContact(
            id: contact.id,
            type: contact.type,
            mergedInto: contact.mergedInto,
            aliases: contact.aliases,
            name: contact.name.map { cipher.seal($0, context: SealContext.name) },
            nameKey: contact.name.map { ContactSighting.nameKey($0, hasher: hasher) },
            attributes: contact.attributes.isEmpty
                ? nil : cipher.seal(try! encoder.encode(contact.attributes), context: SealContext.attributes),
            notes: contact.notes.isEmpty
                ? nil : cipher.seal(try! encoder.encode(contact.notes), context: SealContext.notes),
            identifiers: contact.identifiers.isEmpty ? nil : sealIdentifiers(contact.identifiers),
            identifierKeys: contact.identifiers.map { $0.key(hasher) },
            createdAt: contact.createdAt,
            updatedAt: contact.updatedAt,
            lastInteractionAt: contact.lastInteractionAt,
            expiresAt: contact.expiresAt,
            expiredAt: contact.expiredAt
        )
    }

    func open(_ stored: StoredContact) throws -> Contact {
        let decoder = JSONDecoder()
        var contact = Contact(
            id: stored.id,
            type: stored.type,
            name: try stored.name.map { try cipher.openString($0, context: SealContext.name) },
            attributes: try stored.attributes.map {
                try decoder.decode(
                    [String: String].self,
                    from: Data(try cipher.open($0, context: SealContext.attributes))
                )
            } ?? [:],
            notes: try stored.notes.map {
                try decoder.decode([ContactNote].self, from: Data(try cipher.open($0, context: SealContext.notes)))
            } ?? [],
            identifiers: try stored.identifiers.map {
                try decoder.decode(
                    [ContactIdentifier].self,
                    from: Data(try cipher.open($0, context: SealContext.identifiers))
                )
            } ?? [],
            createdAt: stored.createdAt
        )
        contact.mergedInto = stored.mergedInto
        contact.aliases = stored.aliases
        contact.updatedAt = stored.updatedAt
        contact.lastInteractionAt = stored.lastInteractionAt
        contact.expiresAt = stored.expiresAt
        contact.expiredAt = stored.expiredAt
        return contact
    }

    /// The JSON `[ContactIdentifier]` decodes from, written by hand: this runs for every new caller, and
    /// Foundation's encoder cost more than the hashing and the sealing together.
    func sealIdentifiers(_ identifiers: [ContactIdentifier]) -> [UInt8] {
        var json = "["
        for (index, identifier) in identifiers.enumerated() {
            if index > 0 { json += "," }
            json +=
                #"{"kind":"\#(Self.jsonEscaped(identifier.kind.name))","value":"\#(Self.jsonEscaped(identifier.value))"}"#
        }
        json += "]"
        return cipher.seal(json, context: SealContext.identifiers)
    }

    static func jsonEscaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0 == "\"" || $0 == "\\" || $0.value < 0x20 }) else { return text }
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    func seal(_ record: MergeRecord) -> StoredMerge {
        StoredMerge(
            id: record.id,
            targetId: record.targetId,
            absorbedId: record.absorbedId,
            mergedAt: record.mergedAt,
            undoneAt: record.undoneAt,
            snapshot: cipher.seal(try! JSONEncoder().encode(record), context: SealContext.mergeSnapshot)
        )
    }

    func open(_ stored: StoredMerge) throws -> MergeRecord {
        var record = try JSONDecoder().decode(
            MergeRecord.self,
            from: Data(try cipher.open(stored.snapshot, context: SealContext.mergeSnapshot))
        )
        record.undoneAt = stored.undoneAt
        return record
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

extension ContactDirectory {
    /// Erases everything held about the person with this identifier (issue 5, right to be forgotten):
    /// their contact, its aliases and the contacts merged with it, identifiers, merges, every interaction
    /// linked to them (notes, journey links, outbox entries) and the recent overrides of their numbers.
    /// For a number no contact holds any more, its interactions and overrides still go.
    public func forget(_ identifier: ContactIdentifier) async throws -> ForgetReport {
        let erasure = try await store.writeContacts { rows in
            var contactIds: [String] = []
            var phoneKeys: [String] = identifier.kind == .phone ? [identifier.key(self.hasher)] : []
            if let owner = try rows.owner(key: identifier.key(self.hasher)) {
                let book = try self.loadBook(rows, ids: [try rows.canonicalId(owner)])
                let canonical = try book.resolve(owner).id
                contactIds = book.aliasTree(canonical)
                for identifier in book.allIdentifiers(canonical) where identifier.kind == .phone {
                    let key = identifier.key(self.hasher)
                    if !phoneKeys.contains(key) { phoneKeys.append(key) }
                }
            }
            return try rows.erase(contactIds: contactIds, phoneKeys: phoneKeys)
        }
        return ForgetReport(
            contacts: erasure.contacts,
            identifiers: erasure.identifiers,
            merges: erasure.merges,
            interactions: erasure.interactions,
            interactionNotes: erasure.interactionNotes,
            outboxEntries: erasure.outboxEntries,
            overrides: erasure.overrides
        )
    }
}

/// What `forget` removed, table by table.
public struct ForgetReport: Sendable, Hashable, Codable {
    public var contacts: Int
    public var identifiers: Int
    public var merges: Int
    public var interactions: Int
    public var interactionNotes: Int
    public var outboxEntries: Int
    public var overrides: Int
}

extension ContactDirectory {
    /// The E.164 number whose keyed hash is `phoneKey`, opened from the contact that owns it; nil when no
    /// contact holds it (never seen, expired, or forgotten). Reconciliation asks the CRM by it.
    public func phoneNumber(forKey phoneKey: String) async throws -> String? {
        try await store.readContacts { rows in
            try self.identifiersOfOwner(of: phoneKey, rows)?
                .first { $0.kind == .phone && $0.key(self.hasher) == phoneKey }?.value
        }
    }

    /// What phase 1 knows locally about a customer, and from where.
    public enum LocalLink: Sendable, Hashable {
        /// A live recent override for the caller's number.
        case override(ExternalID)
        /// The CRM (else ERP) id of the contact holding the channel's identifier.
        case contact(ExternalID)

        public var externalId: ExternalID {
            switch self {
            case .override(let id), .contact(let id): id
            }
        }
    }

    /// Phase 1's local answer, in one read: the live recent override for the caller's number key, else
    /// the CRM (else ERP) id of the first contact holding one of `keys`, the keys of the channel's
    /// identifiers in its order (a capture's `keys`). A name is never a key.
    public func phaseOneLink(phoneKey: String?, keys: [String], now: Date) async throws -> LocalLink? {
        guard phoneKey != nil || !keys.isEmpty else { return nil }
        return try await store.readContacts { rows in
            try self.phaseOneLink(phoneKey: phoneKey, keys: keys, now: now, rows)
        }
    }

    /// `phaseOneLink`, read in a transaction already open (the pipeline's commit).
    public func phaseOneLink(
        phoneKey: String?,
        keys: [String],
        now: Date,
        _ rows: any ContactTables
    ) throws -> LocalLink? {
        if let phoneKey, let stored = try rows.liveOverride(phoneKey: phoneKey, now: now),
            let override = ExternalID(parsing: stored)
        {
            return .override(override)
        }
        return try knownExternalId(forKeys: keys, rows).map(LocalLink.contact)
    }

    /// What the CTI lookup can answer from the store alone.
    public struct LocalAnswer: Sendable, Hashable {
        public var link: LocalLink
        /// The contact's name and first email address, opened; only when `link` is the contact's own id
        /// (an override naming someone else says nothing about them).
        public var name: String?
        public var email: String?
    }

    /// Phase 1's local link for a number and, when it is the contact's own CRM or ERP id, the contact's
    /// name and email: the CTI lookup answers with them within its budget, without asking the CRM.
    public func localAnswer(phoneKey: String, now: Date) async throws -> LocalAnswer? {
        try await store.readContacts { rows in
            var link: LocalLink?
            if let stored = try rows.liveOverride(phoneKey: phoneKey, now: now),
                let override = ExternalID(parsing: stored)
            {
                link = .override(override)
            }
            guard let owner = try rows.owner(key: phoneKey) else { return link.map { LocalAnswer(link: $0) } }
            let book = try self.loadBook(rows, ids: [owner])
            let contact = try book.resolve(owner)
            let identifiers = book.allIdentifiers(contact.id)
            if link == nil, let known = Self.linkedId(in: identifiers) { link = .contact(known) }
            guard let link else { return nil }
            let own = identifiers.contains { $0.kind == .external && ExternalID(parsing: $0.value) == link.externalId }
            guard own else { return LocalAnswer(link: link) }
            return LocalAnswer(
                link: link,
                name: contact.name,
                email: identifiers.first { $0.kind == .email }?.value
            )
        }
    }

    private func knownExternalId(forKeys keys: [String], _ rows: any ContactTables) throws -> ExternalID? {
        // The channel's order (a web chat: address, then number): a contact that holds the address but
        // no CRM or ERP id is no answer, so the number is asked next.
        for key in keys {
            guard let identifiers = try identifiersOfOwner(of: key, rows) else { continue }
            if let known = Self.linkedId(in: identifiers) { return known }
        }
        return nil
    }

    /// The id a contact's identifiers link it by: its CRM id, else its ERP id.
    private static func linkedId(in identifiers: [ContactIdentifier]) -> ExternalID? {
        let external = identifiers.filter { $0.kind == .external }.compactMap { ExternalID(parsing: $0.value) }
        return external.first { $0.source == .crm } ?? external.first { $0.source == .erp }
    }

    /// The identifiers of the contact that owns `key`, with its aliases', opened; nil when nobody owns it.
    private func identifiersOfOwner(of key: String, _ rows: any ContactTables) throws -> [ContactIdentifier]? {
        guard let owner = try rows.owner(key: key) else { return nil }
        let book = try loadBook(rows, ids: [owner])
        return book.allIdentifiers(try book.resolve(owner).id)
    }
}
