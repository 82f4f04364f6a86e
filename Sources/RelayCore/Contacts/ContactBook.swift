public import Foundation

/// The contact rules over a set of contacts: create, add identifiers, edit, promote, merge, unmerge,
/// record interactions and expire. Pure: the clock is a parameter, ids come from the caller.
///
/// A store loads the contacts an operation touches (and the owners of the identifiers it adds), runs
/// the operation here, then writes back `changed`. Every operation checks everything first and changes
/// nothing when it throws.
public struct ContactBook: Sendable {
    public private(set) var contacts: [String: Contact]
    /// Identifier key → the contact that owns it (not resolved through merges).
    public private(set) var owners: [String: String]
    public private(set) var merges: [String: MergeRecord]
    /// Contacts created or modified since the book was loaded.
    public private(set) var changed: Set<String> = []
    /// Merge records created or modified since the book was loaded.
    public private(set) var changedMerges: Set<String> = []
    public let hasher: IdentifierHasher
    public let temporaryTimeToLive: Duration

    public init(
        contacts: [Contact] = [],
        owners: [String: String] = [:],
        merges: [MergeRecord] = [],
        hasher: IdentifierHasher,
        temporaryTimeToLive: Duration = .seconds(60 * 24 * 3600)
    ) {
        self.contacts = Dictionary(contacts.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        var owners = owners
        for contact in contacts {
            for identifier in contact.identifiers { owners[identifier.key(hasher)] = contact.id }
        }
        self.owners = owners
        self.merges = Dictionary(merges.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.hasher = hasher
        self.temporaryTimeToLive = temporaryTimeToLive
    }

    // MARK: Reading

    public func contact(_ id: String) throws(ContactError) -> Contact {
        guard let contact = contacts[id] else { throw ContactError(.notFound, "no contact \(id)") }
        return contact
    }

    /// The canonical contact an id stands for: itself, or the end of its chain of merges.
    public func resolve(_ id: String) throws(ContactError) -> Contact {
        var current = try contact(id)
        var seen: Set<String> = [id]
        while let next = current.mergedInto, seen.insert(next).inserted {
            current = try contact(next)
        }
        return current
    }

    /// The canonical contact that owns this identifier, directly or through an alias.
    public func owner(of identifier: ContactIdentifier) -> Contact? {
        guard let ownerId = owners[identifier.key(hasher)] else { return nil }
        return try? resolve(ownerId)
    }

    /// The contact and every alias beneath it, the contact first.
    public func aliasTree(_ id: String) -> [String] {
        var result: [String] = []
        var pending = [id]
        while let next = pending.popLast() {
            guard !result.contains(next) else { continue }
            result.append(next)
            pending += (contacts[next]?.aliases ?? []).reversed()
        }
        return result
    }

    /// What the canonical contact stands for: its identifiers and every alias's, joined.
    public func allIdentifiers(_ id: String) -> [ContactIdentifier] {
        aliasTree(id).flatMap { contacts[$0]?.identifiers ?? [] }
    }

    // MARK: Creating and editing

    /// Creates a contact owning `identifiers`. Refused when one of them is owned already (naming the
    /// owner) or when two are the same.
    @discardableResult
    public mutating func create(
        id: String,
        type: ContactType,
        name: String? = nil,
        identifiers: [ContactIdentifier] = [],
        attributes: [String: String] = [:],
        notes: [ContactNote] = [],
        now: Date
    ) throws(ContactError) -> Contact {
        guard contacts[id] == nil else { throw ContactError(.sameContact, "contact \(id) exists already") }
        try checkFree(identifiers, for: id)
        var contact = Contact(
            id: id,
            type: type,
            name: name,
            attributes: attributes,
            notes: notes,
            identifiers: identifiers,
            createdAt: now
        )
        contact.expiresAt = contact.expiry(timeToLive: temporaryTimeToLive)
        put(contact)
        return contact
    }

    /// Adds identifiers to a contact (an agent's or the API's edit: the contact becomes curated).
    public mutating func addIdentifiers(
        _ identifiers: [ContactIdentifier],
        to id: String,
        now: Date
    ) throws(ContactError) {
        var contact = try editable(id)
        // Identifiers this contact or one of its aliases owns already are there: nothing to add.
        let new = identifiers.filter { owner(of: $0)?.id != contact.id }
        try checkFree(new, for: contact.id)
        contact.identifiers += new
        promote(&contact, now: now)
        put(contact)
    }

    /// An edit by a person: sets the name and attributes, appends a note; implicitly promotes.
    public mutating func edit(
        _ id: String,
        name: String? = nil,
        attributes: [String: String] = [:],
        note: ContactNote? = nil,
        now: Date
    ) throws(ContactError) {
        var contact = try editable(id)
        if let name { contact.name = name }
        contact.attributes.merge(attributes) { _, new in new }
        if let note { contact.notes.append(note) }
        promote(&contact, now: now)
        put(contact)
    }

    /// Makes a temporary contact curated: it no longer expires. Promoting a curated contact does nothing.
    public mutating func promote(_ id: String, now: Date) throws(ContactError) {
        var contact = try editable(id)
        guard contact.type != .curated else { return }
        promote(&contact, now: now)
        put(contact)
    }

    // MARK: Merging

    /// Folds `absorbedId` into `targetId` (each resolved to its canonical contact first): the target
    /// becomes canonical and joins the other's attributes (its own win), notes and journey; the other
    /// becomes an alias that still resolves, keeping its identifiers. Two curated contacts are never
    /// merged, nor a contact with itself.
    @discardableResult
    public mutating func merge(
        _ absorbedId: String,
        into targetId: String,
        mergeId: String,
        now: Date
    ) throws(ContactError)
        -> MergeRecord
    {
        let target = try resolve(targetId)
        let absorbed = try resolve(absorbedId)
        guard target.id != absorbed.id else {
            throw ContactError(
                .sameContact,
                absorbedId == targetId
                    ? "cannot merge contact \(targetId) with itself"
                    : "\(absorbedId) and \(targetId) are already the same contact (\(target.id))"
            )
        }
        guard !(target.type == .curated && absorbed.type == .curated) else {
            throw ContactError(
                .bothCurated,
                "contacts \(absorbed.id) and \(target.id) are both curated; two curated contacts are never merged"
            )
        }
        for contact in [target, absorbed] where contact.isExpired {
            throw ContactError(.expired, "contact \(contact.id) has expired; its data is gone")
        }
        let record = MergeRecord(id: mergeId, targetBefore: target, absorbedBefore: absorbed, mergedAt: now)
        var newTarget = target
        var newAbsorbed = absorbed
        newTarget.type =
            target.type == .curated || absorbed.type == .curated ? .curated : max(target.type, absorbed.type)
        if newTarget.name == nil { newTarget.name = absorbed.name }
        newTarget.attributes.merge(absorbed.attributes) { own, _ in own }
        newTarget.notes = (target.notes + absorbed.notes).sorted { $0.at < $1.at }
        newTarget.aliases.append(absorbed.id)
        newTarget.expiresAt = nil
        newTarget.updatedAt = now
        newAbsorbed.mergedInto = target.id
        newAbsorbed.expiresAt = nil
        newAbsorbed.updatedAt = now
        put(newTarget)
        put(newAbsorbed)
        merges[mergeId] = record
        changedMerges.insert(mergeId)
        return record
    }

    /// Puts back both contacts exactly as they were before `mergeId`, each with the interactions it
    /// had. Refused when the merge never happened or was undone, or when a later merge built on it (undo
    /// that one first).
    public mutating func unmerge(_ mergeId: String, now: Date) throws(ContactError) {
        guard var record = merges[mergeId], record.undoneAt == nil else {
            throw ContactError(.notMerged, "no merge \(mergeId) to undo (never merged, or undone already)")
        }
        let target = try contact(record.targetId)
        let absorbed = try contact(record.absorbedId)
        guard absorbed.mergedInto == target.id, target.aliases.last == absorbed.id else {
            let later = target.aliases.last.flatMap { alias in
                merges.values.first { $0.targetId == target.id && $0.absorbedId == alias && $0.undoneAt == nil }?.id
            }
            throw ContactError(
                .laterMergeFirst,
                "contact \(target.id) was merged again after \(mergeId); undo \(later ?? "that merge") first"
            )
        }
        if let outer = target.mergedInto {
            let later = merges.values.first {
                $0.targetId == outer && $0.absorbedId == target.id && $0.undoneAt == nil
            }?.id
            throw ContactError(
                .laterMergeFirst,
                "contact \(target.id) was merged into \(outer) after \(mergeId); undo \(later ?? "that merge") first"
            )
        }
        // The snapshots are put back as they were (even `updatedAt`): identifiers the target gained
        // since are released by `put`, and the snapshot's own are still owned by these two.
        var restoredTarget = record.targetBefore
        var restoredAbsorbed = record.absorbedBefore
        // Interactions since the merge still renew whoever they were linked to.
        restoredTarget.lastInteractionAt = Self.later(restoredTarget.lastInteractionAt, target.lastInteractionAt)
        restoredAbsorbed.lastInteractionAt = Self.later(restoredAbsorbed.lastInteractionAt, absorbed.lastInteractionAt)
        restoredTarget.expiresAt = restoredTarget.expiry(timeToLive: temporaryTimeToLive)
        restoredAbsorbed.expiresAt = restoredAbsorbed.expiry(timeToLive: temporaryTimeToLive)
        put(restoredTarget)
        put(restoredAbsorbed)
        record.undoneAt = now
        merges[mergeId] = record
        changedMerges.insert(mergeId)
    }

    // MARK: Interactions and expiry

    /// An interaction landed on this contact: it renews the contact's expiry.
    public mutating func recordInteraction(on id: String, at now: Date) throws(ContactError) {
        var contact = try contact(id)
        contact.lastInteractionAt = Self.later(contact.lastInteractionAt, now)
        contact.expiresAt = contact.expiry(timeToLive: temporaryTimeToLive)
        // Only the contact itself: a canonical contact never expires, and unmerge relies on each
        // contact's own time being its own interactions'.
        put(contact)
    }

    /// Contacts whose expiry is due at `now`.
    public func dueForExpiry(now: Date) -> [String] {
        contacts.values.filter { $0.canExpire && ($0.expiresAt.map { $0 <= now } ?? false) }.map(\.id).sorted()
    }

    /// Removes the contact's personal data (name, attributes, notes, identifiers), keeping the id so
    /// the interactions it had still point somewhere. Contacts that may not expire are refused.
    public mutating func expire(_ id: String, now: Date) throws(ContactError) {
        var contact = try contact(id)
        guard contact.canExpire else {
            throw ContactError(.expired, "contact \(id) does not expire (curated, merged, or expired already)")
        }
        for identifier in contact.identifiers { owners[identifier.key(hasher)] = nil }
        contact.identifiers = []
        contact.name = nil
        contact.attributes = [:]
        contact.notes = []
        contact.expiresAt = nil
        contact.expiredAt = now
        contact.updatedAt = now
        put(contact)
    }

    // MARK: Steps

    private func editable(_ id: String) throws(ContactError) -> Contact {
        let contact = try resolve(id)
        guard !contact.isExpired else {
            throw ContactError(.expired, "contact \(contact.id) has expired; its data is gone")
        }
        return contact
    }

    private func promote(_ contact: inout Contact, now: Date) {
        contact.type = .curated
        contact.expiresAt = nil
        contact.updatedAt = now
    }

    private func checkFree(_ identifiers: [ContactIdentifier], for id: String) throws(ContactError) {
        var keys: Set<String> = []
        for identifier in identifiers {
            let key = identifier.key(hasher)
            guard keys.insert(key).inserted else {
                throw ContactError(.invalidIdentifier, "\(identifier) is given twice")
            }
            if let ownerId = owners[key], ownerId != id {
                let canonical = (try? resolve(ownerId).id) ?? ownerId
                if contacts[id] != nil, canonical == (try? resolve(id).id) { continue }
                throw ContactError(
                    .identifierOwned,
                    "\(identifier) already belongs to contact \(canonical)",
                    ownerId: canonical
                )
            }
        }
    }

    private mutating func put(_ contact: Contact) {
        if let previous = contacts[contact.id] {
            for identifier in previous.identifiers where owners[identifier.key(hasher)] == contact.id {
                owners[identifier.key(hasher)] = nil
            }
        }
        for identifier in contact.identifiers { owners[identifier.key(hasher)] = contact.id }
        contacts[contact.id] = contact
        changed.insert(contact.id)
    }

    private static func later(_ a: Date?, _ b: Date?) -> Date? {
        [a, b].compactMap { $0 }.max()
    }
}

extension ContactType: Comparable {
    public static func < (lhs: ContactType, rhs: ContactType) -> Bool {
        let order: [ContactType] = [.ephemeral, .identified, .curated]
        return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }
}
