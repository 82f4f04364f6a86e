import Foundation
import GRDB
import RelayCore

extension ContactRows {
    /// Links the interaction of a start event to a contact, in the transaction that commits the event:
    /// the per-channel rule decides (`ContactLinking`); when nothing links, a new temporary contact owns
    /// the sighting's identifiers. A second start of the same interaction changes nothing.
    ///
    /// Every statement here is cached: this runs inside the single writer for each start event, and
    /// compiling the SQL each time would double its cost.
    /// - Parameter firstStart: whether the interaction had no start before this event; when it had, the
    ///   first start linked it already.
    func capture(_ capture: ContactCapture, callId: String, now: Date, firstStart: Bool) throws {
        if let notes = capture.sealedNotes {
            try db.cachedStatement(
                sql: "INSERT INTO interaction_note (call_id, notes) VALUES (?, ?) ON CONFLICT (call_id) DO NOTHING"
            ).execute(arguments: [callId, Data(notes)])
        }
        guard let sighting = capture.sighting, firstStart else { return }
        let ownerStatement = try db.cachedStatement(sql: "SELECT contact_id FROM contact_identifier WHERE key = ?")
        let owners = try capture.keys.map { try String.fetchOne(ownerStatement, arguments: [$0]) }
        var sameName: [String] = []
        if let nameKey = capture.nameKey, !owners.contains(where: { $0 != nil }) {
            sameName = try String.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT id FROM contact WHERE name_key = ? AND merged_into IS NULL AND expired_at IS NULL
                        ORDER BY created_at, id LIMIT 5
                        """
                ),
                arguments: [nameKey]
            )
        }
        let contactId: String
        let linkedBy: String
        var suggestions: [String] = []
        switch ContactLinking.decide(sighting, owners: owners, sameName: sameName) {
        case .link(let owner, let kind):
            contactId = owner
            linkedBy = kind.name
            try renew(owner, now: now, timeToLive: capture.timeToLive)
        case .create(let type, let suggested):
            contactId = capture.newContactId
            linkedBy = "new"
            suggestions = suggested
            var contact = Contact(id: contactId, type: type, createdAt: now)
            contact.lastInteractionAt = now
            try db.cachedStatement(
                sql: """
                    INSERT INTO contact (
                        id, type, name, name_key, identifiers, identifier_keys, created_at, updated_at,
                        last_interaction_at, expires_at
                    ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [
                contactId, type.rawValue, capture.sealedName.map { Data($0) }, capture.nameKey,
                capture.sealedIdentifiers.map { Data($0) }, capture.keys.joined(separator: " "), ColumnTime.value(now),
                ColumnTime.value(now), ColumnTime.value(now),
                ColumnTime.value(contact.expiry(timeToLive: capture.timeToLive)),
            ])
            let insertIdentifier = try db.cachedStatement(
                sql: "INSERT INTO contact_identifier (key, contact_id) VALUES (?, ?)"
            )
            for key in capture.keys {
                try insertIdentifier.execute(arguments: [key, contactId])
            }
        }
        try db.cachedStatement(
            sql:
                "INSERT INTO contact_interaction (call_id, contact_id, linked_by, suggestions, linked_at) VALUES (?, ?, ?, ?, ?)"
        ).execute(arguments: [
            callId, contactId, linkedBy, suggestions.isEmpty ? nil : suggestions.joined(separator: ","),
            ColumnTime.value(now),
        ])
    }

    /// An interaction renews its contact: the expiry rule is `Contact.expiry`, fed from the row.
    private func renew(_ id: String, now: Date, timeToLive: Duration) throws {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: "SELECT type, merged_into, aliases, created_at, expired_at FROM contact WHERE id = ?"
                ),
                arguments: [id]
            )
        else { return }
        var contact = Contact(
            id: id,
            type: ContactType(rawValue: row["type"]) ?? .curated,
            createdAt: ColumnTime.date(row["created_at"])
        )
        contact.mergedInto = row["merged_into"]
        // Only whether it has aliases matters to the rule, not which.
        contact.aliases = (row["aliases"] as String) == "[]" ? [] : [""]
        contact.expiredAt = (row["expired_at"] as Double?).map(ColumnTime.date)
        contact.lastInteractionAt = now
        try db.cachedStatement(sql: "UPDATE contact SET last_interaction_at = ?, expires_at = ? WHERE id = ?").execute(
            arguments: [ColumnTime.value(now), ColumnTime.value(contact.expiry(timeToLive: timeToLive)), id])
    }
}
