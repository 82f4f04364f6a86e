public import RelayCore
import RelayStore

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
