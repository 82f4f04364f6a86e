public import Foundation
public import RelayCore
public import RelayStore

extension ContactDirectory {
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
