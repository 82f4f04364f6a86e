import Foundation
import RelayCore
import RelayStore

extension ContactDirectory {
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
}
