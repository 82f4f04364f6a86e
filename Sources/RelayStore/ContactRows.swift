public import Foundation
import GRDB
import RelayCore

/// The contact tables of the SQLite store (`ContactTables`). Only valid inside
/// `SQLiteInteractionStore.readContacts` / `writeContacts` and the transaction of an event's commit.
public struct ContactRows: ContactTables {
    let db: Database

    /// The live recent override for a caller's number key: read with the contacts, so phase 1 gets
    /// both of its local answers in one read.
    public func liveOverride(phoneKey: String, now: Date) throws -> String? {
        try SQLiteInteractionStore.liveOverride(phoneKey: phoneKey, now: now, db)
    }

    public func contact(_ id: String) throws -> StoredContact? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM contact WHERE id = ?"), arguments: [id])
        else { return nil }
        return try Self.contact(row)
    }

    /// The contact that owns the identifier with this key, not resolved through merges.
    public func owner(key: String) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT contact_id FROM contact_identifier WHERE key = ?"),
            arguments: [key]
        )
    }

    /// Follows `merged_into` to the canonical contact.
    public func canonicalId(_ id: String) throws -> String {
        var current = id
        var seen: Set<String> = [id]
        while let next = try String.fetchOne(
            db.cachedStatement(sql: "SELECT merged_into FROM contact WHERE id = ?"),
            arguments: [current]
        ),
            seen.insert(next).inserted
        {
            current = next
        }
        return current
    }

    /// The canonical contacts with this name key, oldest first.
    public func contactIds(nameKey: String, limit: Int) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT id FROM contact WHERE name_key = ? AND merged_into IS NULL AND expired_at IS NULL
                ORDER BY created_at, id LIMIT ?
                """,
            arguments: [nameKey, limit]
        )
    }

    public func merge(_ id: String) throws -> StoredMerge? {
        try Row.fetchOne(db, sql: "SELECT * FROM contact_merge WHERE id = ?", arguments: [id]).map(Self.merge)
    }

    /// Merges still in effect where `contactId` is the target or the absorbed one.
    public func liveMerges(involving contactId: String) throws -> [StoredMerge] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT * FROM contact_merge WHERE undone_at IS NULL AND (target_id = ? OR absorbed_id = ?)
                    ORDER BY merged_at, id
                    """
            ),
            arguments: [contactId, contactId]
        ).map(Self.merge)
    }

    /// Writes the contact and makes the lookup table match its identifiers: keys it no longer has are
    /// released, new ones taken (from whoever held them: the rules checked that before).
    public func save(_ contact: StoredContact) throws {
        let previousKeys =
            try String.fetchOne(
                db.cachedStatement(sql: "SELECT identifier_keys FROM contact WHERE id = ?"),
                arguments: [contact.id]
            ).map(Self.keys) ?? []
        let aliases =
            contact.aliases.isEmpty ? "[]" : String(decoding: try JSONEncoder().encode(contact.aliases), as: UTF8.self)
        try db.cachedStatement(
            sql: """
                INSERT INTO contact (
                    id, type, merged_into, aliases, name, name_key, attributes, notes, identifiers, identifier_keys,
                    created_at, updated_at, last_interaction_at, expires_at, expired_at
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    type = excluded.type, merged_into = excluded.merged_into, aliases = excluded.aliases,
                    name = excluded.name, name_key = excluded.name_key, attributes = excluded.attributes,
                    notes = excluded.notes, identifiers = excluded.identifiers,
                    identifier_keys = excluded.identifier_keys, created_at = excluded.created_at,
                    updated_at = excluded.updated_at, last_interaction_at = excluded.last_interaction_at,
                    expires_at = excluded.expires_at, expired_at = excluded.expired_at
                """
        ).execute(
            arguments: [
                contact.id, contact.type.rawValue, contact.mergedInto, aliases, contact.name.map { Data($0) },
                contact.nameKey, contact.attributes.map { Data($0) }, contact.notes.map { Data($0) },
                contact.identifiers.map { Data($0) }, contact.identifierKeys.joined(separator: " "),
                ColumnTime.value(contact.createdAt), ColumnTime.value(contact.updatedAt),
                ColumnTime.value(contact.lastInteractionAt), ColumnTime.value(contact.expiresAt),
                ColumnTime.value(contact.expiredAt),
            ])
        let release = try db.cachedStatement(sql: "DELETE FROM contact_identifier WHERE key = ? AND contact_id = ?")
        for key in previousKeys where !contact.identifierKeys.contains(key) {
            try release.execute(arguments: [key, contact.id])
        }
        let take = try db.cachedStatement(
            sql: """
                INSERT INTO contact_identifier (key, contact_id) VALUES (?, ?)
                ON CONFLICT (key) DO UPDATE SET contact_id = excluded.contact_id
                """
        )
        for key in contact.identifierKeys where !previousKeys.contains(key) {
            try take.execute(arguments: [key, contact.id])
        }
    }

    public func save(_ merge: StoredMerge) throws {
        try db.execute(
            sql: """
                INSERT INTO contact_merge (id, target_id, absorbed_id, merged_at, undone_at, snapshot)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET undone_at = excluded.undone_at
                """,
            arguments: [
                merge.id, merge.targetId, merge.absorbedId, ColumnTime.value(merge.mergedAt),
                ColumnTime.value(merge.undoneAt), Data(merge.snapshot),
            ]
        )
    }

    /// Every interaction linked to any of these contacts, newest first.
    public func journey(contactIds: [String], limit: Int) throws -> [StoredJourneyEntry] {
        guard !contactIds.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: contactIds.count).joined(separator: ", ")
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT ci.call_id, ci.contact_id, ci.linked_by, i.status, i.channel, i.direction, i.started_at,
                    i.ended_at, i.first_seen_at, i.queue_id, i.agent_id, i.wrap_up_code, n.notes
                FROM contact_interaction ci
                JOIN interaction i ON i.call_id = ci.call_id
                LEFT JOIN interaction_note n ON n.call_id = ci.call_id
                WHERE ci.contact_id IN (\(placeholders))
                ORDER BY COALESCE(i.started_at, i.first_seen_at) DESC, ci.call_id DESC
                LIMIT ?
                """,
            arguments: StatementArguments(contactIds) + [limit]
        )
        let suggestions = Dictionary(
            grouping: try self.suggestions(callIds: rows.map { $0[0] as String }),
            by: \.callId
        )
        // By position, not name: a journey is a thousand rows, and a name lookup per column per row
        // was most of the query's time.
        return rows.map { row in
            let notes: Data? = row[12]
            let started: Double? = row[6]
            let ended: Double? = row[7]
            return StoredJourneyEntry(
                callId: row[0],
                contactId: row[1],
                linkedBy: row[2],
                status: Interaction.Status(rawValue: row[3]) ?? .active,
                channel: (row[4] as String?).flatMap(Channel.init(rawValue:)),
                direction: (row[5] as String?).flatMap(CallDirection.init(rawValue:)),
                startedAt: started.map(ColumnTime.date),
                endedAt: ended.map(ColumnTime.date),
                firstSeenAt: ColumnTime.date(row[8]),
                queueId: row[9],
                agentId: row[10],
                wrapUpCode: row[11],
                notes: notes.map { [UInt8]($0) },
                suggestions: suggestions[row[0] as String] ?? []
            )
        }
    }

    /// The CRM suggestions of these calls, oldest first.
    public func suggestions(callIds: [String]) throws -> [StoredSuggestion] {
        var found: [StoredSuggestion] = []
        // In slices: SQLite caps a statement's parameters.
        var rest = callIds[...]
        while !rest.isEmpty {
            let slice = rest.prefix(500)
            rest = rest.dropFirst(slice.count)
            let placeholders = Array(repeating: "?", count: slice.count).joined(separator: ", ")
            found += try Row.fetchAll(
                db,
                sql: """
                    SELECT call_id, external_id, name, suggested_at FROM crm_suggestion
                    WHERE call_id IN (\(placeholders)) ORDER BY suggested_at, external_id
                    """,
                arguments: StatementArguments(Array(slice))
            ).map { row in
                StoredSuggestion(
                    callId: row[0],
                    externalId: row[1],
                    name: (row[2] as Data?).map { [UInt8]($0) },
                    suggestedAt: ColumnTime.date(row[3])
                )
            }
        }
        return found
    }

    /// The CRM suggestions of every interaction linked to these contacts, oldest first.
    public func suggestions(contactIds: [String]) throws -> [StoredSuggestion] {
        guard !contactIds.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: contactIds.count).joined(separator: ", ")
        return try Row.fetchAll(
            db,
            sql: """
                SELECT s.call_id, s.external_id, s.name, s.suggested_at
                FROM contact_interaction ci JOIN crm_suggestion s ON s.call_id = ci.call_id
                WHERE ci.contact_id IN (\(placeholders)) ORDER BY s.suggested_at, s.external_id
                """,
            arguments: StatementArguments(contactIds)
        ).map { row in
            StoredSuggestion(
                callId: row[0],
                externalId: row[1],
                name: (row[2] as Data?).map { [UInt8]($0) },
                suggestedAt: ColumnTime.date(row[3])
            )
        }
    }

    /// Which contact an interaction landed on, and the contacts of the same name it only suggested.
    /// For diagnostics and tests: it scans the links (they are keyed by contact, for journeys).
    public func link(callId: String) throws -> (contactId: String, linkedBy: String, suggestions: [String])? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: "SELECT contact_id, linked_by, suggestions FROM contact_interaction WHERE call_id = ?",
                arguments: [callId]
            )
        else { return nil }
        let suggestions: String? = row["suggestions"]
        return (
            row["contact_id"], row["linked_by"], suggestions.map { $0.split(separator: ",").map(String.init) } ?? []
        )
    }

    /// Contacts whose expiry is due at `now`, soonest first.
    public func dueForExpiry(now: Date, limit: Int) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT id FROM contact WHERE expires_at IS NOT NULL AND expires_at <= ? AND expired_at IS NULL
                ORDER BY expires_at, id LIMIT ?
                """,
            arguments: [ColumnTime.value(now), limit]
        )
    }

    public func erase(contactIds: [String], phoneKeys: [String]) throws -> ContactErasure {
        var erasure = ContactErasure()
        func list(_ values: [String]) -> String { Array(repeating: "?", count: values.count).joined(separator: ", ") }
        var callIds: Set<String> = []
        if !contactIds.isEmpty {
            callIds.formUnion(
                try String.fetchAll(
                    db,
                    sql: "SELECT call_id FROM contact_interaction WHERE contact_id IN (\(list(contactIds)))",
                    arguments: StatementArguments(contactIds)
                )
            )
        }
        let phoneIds = phoneKeys.map { "PHONE:\($0)" }
        if !phoneIds.isEmpty {
            callIds.formUnion(
                try String.fetchAll(
                    db,
                    sql: "SELECT call_id FROM interaction WHERE external_id IN (\(list(phoneIds)))",
                    arguments: StatementArguments(phoneIds)
                )
            )
        }
        for callId in callIds {
            try db.execute(sql: "DELETE FROM interaction WHERE call_id = ?", arguments: [callId])
            erasure.interactions += db.changesCount
            try db.execute(sql: "DELETE FROM interaction_note WHERE call_id = ?", arguments: [callId])
            erasure.interactionNotes += db.changesCount
            try db.execute(sql: "DELETE FROM crm_suggestion WHERE call_id = ?", arguments: [callId])
            try db.execute(sql: "DELETE FROM outbox WHERE call_id = ?", arguments: [callId])
            erasure.outboxEntries += db.changesCount
        }
        if !contactIds.isEmpty {
            let ids = StatementArguments(contactIds)
            try db.execute(
                sql: "DELETE FROM contact_interaction WHERE contact_id IN (\(list(contactIds)))",
                arguments: ids
            )
            for id in contactIds {
                let keys =
                    try String.fetchOne(db, sql: "SELECT identifier_keys FROM contact WHERE id = ?", arguments: [id])
                    .map(Self.keys) ?? []
                for key in keys {
                    try db.execute(
                        sql: "DELETE FROM contact_identifier WHERE key = ? AND contact_id = ?",
                        arguments: [key, id]
                    )
                    erasure.identifiers += db.changesCount
                }
            }
            try db.execute(
                sql:
                    "DELETE FROM contact_merge WHERE target_id IN (\(list(contactIds))) OR absorbed_id IN (\(list(contactIds)))",
                arguments: ids + ids
            )
            erasure.merges = db.changesCount
            try db.execute(sql: "DELETE FROM contact WHERE id IN (\(list(contactIds)))", arguments: ids)
            erasure.contacts = db.changesCount
        }
        if !phoneKeys.isEmpty {
            try db.execute(
                sql: "DELETE FROM identity_override WHERE phone_key IN (\(list(phoneKeys)))",
                arguments: StatementArguments(phoneKeys)
            )
            erasure.overrides = db.changesCount
        }
        return erasure
    }

    // MARK: Rows

    static func keys(_ text: String) -> [String] {
        text.split(separator: " ").map(String.init)
    }

    private static func contact(_ row: Row) throws -> StoredContact {
        let aliases: String = row["aliases"]
        func blob(_ column: String) -> [UInt8]? { (row[column] as Data?).map { [UInt8]($0) } }
        func time(_ column: String) -> Date? { (row[column] as Double?).map(ColumnTime.date) }
        return StoredContact(
            id: row["id"],
            type: ContactType(rawValue: row["type"]) ?? .curated,
            mergedInto: row["merged_into"],
            aliases: try JSONDecoder().decode([String].self, from: Data(aliases.utf8)),
            name: blob("name"),
            nameKey: row["name_key"],
            attributes: blob("attributes"),
            notes: blob("notes"),
            identifiers: blob("identifiers"),
            identifierKeys: keys(row["identifier_keys"]),
            createdAt: ColumnTime.date(row["created_at"]),
            updatedAt: ColumnTime.date(row["updated_at"]),
            lastInteractionAt: time("last_interaction_at"),
            expiresAt: time("expires_at"),
            expiredAt: time("expired_at")
        )
    }

    private static func merge(_ row: Row) -> StoredMerge {
        let snapshot: Data = row["snapshot"]
        return StoredMerge(
            id: row["id"],
            targetId: row["target_id"],
            absorbedId: row["absorbed_id"],
            mergedAt: ColumnTime.date(row["merged_at"]),
            undoneAt: (row["undone_at"] as Double?).map(ColumnTime.date),
            snapshot: [UInt8](snapshot)
        )
    }
}
