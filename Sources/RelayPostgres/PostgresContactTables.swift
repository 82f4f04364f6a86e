import Foundation
import NIOCore
import PostgresNIO
import RelayCore
public import RelayStore

/// The contact tables on PostgreSQL (`ContactTables`), inside one `PostgresSession`: the statements of
/// the SQLite store's `ContactRows`, in PostgreSQL's dialect.
struct PostgresContactTables: ContactTables {
    let session: PostgresSession

    static let contactColumns = """
        id, type, merged_into, aliases, name, name_key, attributes, notes, identifiers, identifier_keys, created_at,
        updated_at, last_interaction_at, expires_at, expired_at
        """

    func liveOverride(phoneKey: String, now: Date) throws -> String? {
        try PostgresStore.liveOverride(phoneKey: phoneKey, now: now, session)
    }

    func contact(_ id: String) throws -> StoredContact? {
        try session.run("SELECT \(unescaped: Self.contactColumns) FROM contact WHERE id = \(id)").rows.first.map(
            Self.contact
        )
    }

    func owner(key: String) throws -> String? {
        try session.run("SELECT contact_id FROM contact_identifier WHERE key = \(key)").rows.first.map {
            try $0.decode(String.self)
        }
    }

    func canonicalId(_ id: String) throws -> String {
        var current = id
        var seen: Set<String> = [id]
        while let next = try session.run("SELECT merged_into FROM contact WHERE id = \(current)").rows.first?
            .decode(String?.self),
            seen.insert(next).inserted
        {
            current = next
        }
        return current
    }

    func contactIds(nameKey: String, limit: Int) throws -> [String] {
        try session.run(
            """
            SELECT id FROM contact WHERE name_key = \(nameKey) AND merged_into IS NULL AND expired_at IS NULL
            ORDER BY created_at, id LIMIT \(max(0, limit))
            """
        ).rows.map { try $0.decode(String.self) }
    }

    func merge(_ id: String) throws -> StoredMerge? {
        try session.run(
            "SELECT id, target_id, absorbed_id, merged_at, undone_at, snapshot FROM contact_merge WHERE id = \(id)"
        ).rows.first.map(Self.merge)
    }

    func liveMerges(involving contactId: String) throws -> [StoredMerge] {
        try session.run(
            """
            SELECT id, target_id, absorbed_id, merged_at, undone_at, snapshot FROM contact_merge
            WHERE undone_at IS NULL AND (target_id = \(contactId) OR absorbed_id = \(contactId))
            ORDER BY merged_at, id
            """
        ).rows.map(Self.merge)
    }

    func save(_ contact: StoredContact) throws {
        let previousKeys =
            try session.run("SELECT identifier_keys FROM contact WHERE id = \(contact.id)").rows.first
            .map { Self.keys(try $0.decode(String.self)) } ?? []
        let aliases =
            contact.aliases.isEmpty ? "[]" : String(decoding: try JSONEncoder().encode(contact.aliases), as: UTF8.self)
        try session.run(
            """
            INSERT INTO contact (\(unescaped: Self.contactColumns)) VALUES (
                \(contact.id), \(contact.type.rawValue), \(contact.mergedInto), \(aliases), \(contact.name.map(Self.bytes)),
                \(contact.nameKey), \(contact.attributes.map(Self.bytes)), \(contact.notes.map(Self.bytes)),
                \(contact.identifiers.map(Self.bytes)), \(contact.identifierKeys.joined(separator: " ")),
                \(ColumnTime.value(contact.createdAt)), \(ColumnTime.value(contact.updatedAt)),
                \(ColumnTime.value(contact.lastInteractionAt)), \(ColumnTime.value(contact.expiresAt)),
                \(ColumnTime.value(contact.expiredAt))
            )
            ON CONFLICT (id) DO UPDATE SET
                type = excluded.type, merged_into = excluded.merged_into, aliases = excluded.aliases,
                name = excluded.name, name_key = excluded.name_key, attributes = excluded.attributes,
                notes = excluded.notes, identifiers = excluded.identifiers,
                identifier_keys = excluded.identifier_keys, created_at = excluded.created_at,
                updated_at = excluded.updated_at, last_interaction_at = excluded.last_interaction_at,
                expires_at = excluded.expires_at, expired_at = excluded.expired_at
            """
        )
        let released = previousKeys.filter { !contact.identifierKeys.contains($0) }
        if !released.isEmpty {
            try session.run(
                "DELETE FROM contact_identifier WHERE key = ANY(\(released)) AND contact_id = \(contact.id)"
            )
        }
        for key in contact.identifierKeys where !previousKeys.contains(key) {
            try session.run(
                """
                INSERT INTO contact_identifier (key, contact_id) VALUES (\(key), \(contact.id))
                ON CONFLICT (key) DO UPDATE SET contact_id = excluded.contact_id
                """
            )
        }
    }

    func save(_ merge: StoredMerge) throws {
        try session.run(
            """
            INSERT INTO contact_merge (id, target_id, absorbed_id, merged_at, undone_at, snapshot)
            VALUES (\(merge.id), \(merge.targetId), \(merge.absorbedId), \(ColumnTime.value(merge.mergedAt)),
                \(ColumnTime.value(merge.undoneAt)), \(Self.bytes(merge.snapshot)))
            ON CONFLICT (id) DO UPDATE SET undone_at = excluded.undone_at
            """
        )
    }

    func journey(contactIds: [String], limit: Int) throws -> [StoredJourneyEntry] {
        guard !contactIds.isEmpty else { return [] }
        let rows = try session.run(
            """
            SELECT ci.call_id, ci.contact_id, ci.linked_by, i.status, i.channel, i.direction, i.started_at,
                i.ended_at, i.first_seen_at, i.queue_id, i.agent_id, i.wrap_up_code, n.notes
            FROM contact_interaction ci
            JOIN interaction i ON i.call_id = ci.call_id
            LEFT JOIN interaction_note n ON n.call_id = ci.call_id
            WHERE ci.contact_id = ANY(\(contactIds))
            ORDER BY COALESCE(i.started_at, i.first_seen_at) DESC, ci.call_id DESC
            LIMIT \(max(0, limit))
            """
        ).rows
        typealias Columns = (
            String, String, String, String, String?, String?, Double?, Double?, Double, String?, String?, String?,
            ByteBuffer?
        )
        let decoded = try rows.map { try $0.decode(Columns.self) }
        let suggestions = Dictionary(grouping: try self.suggestions(callIds: decoded.map(\.0)), by: \.callId)
        return decoded.map { row in
            StoredJourneyEntry(
                callId: row.0,
                contactId: row.1,
                linkedBy: row.2,
                status: Interaction.Status(rawValue: row.3) ?? .active,
                channel: row.4.flatMap(Channel.init(rawValue:)),
                direction: row.5.flatMap(CallDirection.init(rawValue:)),
                startedAt: row.6.map(ColumnTime.date),
                endedAt: row.7.map(ColumnTime.date),
                firstSeenAt: ColumnTime.date(row.8),
                queueId: row.9,
                agentId: row.10,
                wrapUpCode: row.11,
                notes: row.12.map { Array(buffer: $0) },
                suggestions: suggestions[row.0] ?? []
            )
        }
    }

    func suggestions(callIds: [String]) throws -> [StoredSuggestion] {
        guard !callIds.isEmpty else { return [] }
        return try session.run(
            """
            SELECT call_id, external_id, name, suggested_at FROM crm_suggestion
            WHERE call_id = ANY(\(callIds)) ORDER BY suggested_at, external_id
            """
        ).rows.map(Self.suggestion)
    }

    func suggestions(contactIds: [String]) throws -> [StoredSuggestion] {
        guard !contactIds.isEmpty else { return [] }
        return try session.run(
            """
            SELECT s.call_id, s.external_id, s.name, s.suggested_at
            FROM contact_interaction ci JOIN crm_suggestion s ON s.call_id = ci.call_id
            WHERE ci.contact_id = ANY(\(contactIds)) ORDER BY s.suggested_at, s.external_id
            """
        ).rows.map(Self.suggestion)
    }

    func link(callId: String) throws -> (contactId: String, linkedBy: String, suggestions: [String])? {
        guard
            let row = try session.run(
                "SELECT contact_id, linked_by, suggestions FROM contact_interaction WHERE call_id = \(callId)"
            ).rows.first
        else { return nil }
        let (contactId, linkedBy, suggestions) = try row.decode((String, String, String?).self)
        return (contactId, linkedBy, suggestions.map { $0.split(separator: ",").map(String.init) } ?? [])
    }

    func dueForExpiry(now: Date, limit: Int) throws -> [String] {
        try session.run(
            """
            SELECT id FROM contact WHERE expires_at IS NOT NULL AND expires_at <= \(ColumnTime.value(now))
                AND expired_at IS NULL
            ORDER BY expires_at, id LIMIT \(max(0, limit))
            """
        ).rows.map { try $0.decode(String.self) }
    }

    func erase(contactIds: [String], phoneKeys: [String]) throws -> ContactErasure {
        var erasure = ContactErasure()
        var callIds: Set<String> = []
        if !contactIds.isEmpty {
            callIds.formUnion(
                try session.run("SELECT call_id FROM contact_interaction WHERE contact_id = ANY(\(contactIds))").rows
                    .map { try $0.decode(String.self) }
            )
        }
        let phoneIds = phoneKeys.map { "PHONE:\($0)" }
        if !phoneIds.isEmpty {
            callIds.formUnion(
                try session.run("SELECT call_id FROM interaction WHERE external_id = ANY(\(phoneIds))").rows
                    .map { try $0.decode(String.self) }
            )
        }
        let calls = callIds.sorted()
        if !calls.isEmpty {
            erasure.interactions = try session.changes("DELETE FROM interaction WHERE call_id = ANY(\(calls))")
            erasure.interactionNotes = try session.changes("DELETE FROM interaction_note WHERE call_id = ANY(\(calls))")
            try session.run("DELETE FROM crm_suggestion WHERE call_id = ANY(\(calls))")
            erasure.outboxEntries = try session.changes("DELETE FROM outbox WHERE call_id = ANY(\(calls))")
        }
        if !contactIds.isEmpty {
            try session.run("DELETE FROM contact_interaction WHERE contact_id = ANY(\(contactIds))")
            erasure.identifiers = try session.changes(
                """
                DELETE FROM contact_identifier ci USING contact c
                WHERE c.id = ANY(\(contactIds)) AND ci.contact_id = c.id
                    AND ci.key = ANY(string_to_array(c.identifier_keys, ' '))
                """
            )
            erasure.merges = try session.changes(
                "DELETE FROM contact_merge WHERE target_id = ANY(\(contactIds)) OR absorbed_id = ANY(\(contactIds))"
            )
            erasure.contacts = try session.changes("DELETE FROM contact WHERE id = ANY(\(contactIds))")
        }
        if !phoneKeys.isEmpty {
            erasure.overrides = try session.changes("DELETE FROM identity_override WHERE phone_key = ANY(\(phoneKeys))")
        }
        return erasure
    }

    // MARK: The hot path (`PostgresEventBatch`)

    func renew(_ id: String, now: Date, timeToLive: Duration) throws {
        guard
            let row = try session.run(
                "SELECT type, merged_into, aliases, created_at, expired_at FROM contact WHERE id = \(id)"
            ).rows.first
        else { return }
        let (type, mergedInto, aliases, createdAt, expiredAt) = try row.decode(
            (String, String?, String, Double, Double?).self
        )
        var contact = Contact(
            id: id,
            type: ContactType(rawValue: type) ?? .curated,
            createdAt: ColumnTime.date(createdAt)
        )
        contact.mergedInto = mergedInto
        // Only whether it has aliases matters to the rule, not which.
        contact.aliases = aliases == "[]" ? [] : [""]
        contact.expiredAt = expiredAt.map(ColumnTime.date)
        contact.lastInteractionAt = now
        try session.run(
            """
            UPDATE contact SET last_interaction_at = \(ColumnTime.value(now)),
                expires_at = \(ColumnTime.value(contact.expiry(timeToLive: timeToLive))) WHERE id = \(id)
            """
        )
    }

    // MARK: Rows

    static func bytes(_ value: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: value) }

    static func keys(_ text: String) -> [String] {
        text.split(separator: " ").map(String.init)
    }

    private static func contact(_ row: PostgresRow) throws -> StoredContact {
        let (
            id, type, mergedInto, aliases, name, nameKey, attributes, notes, identifiers, identifierKeys, createdAt,
            updatedAt, lastInteractionAt, expiresAt, expiredAt
        ) = try row.decode(
            (
                String, String, String?, String, ByteBuffer?, String?, ByteBuffer?, ByteBuffer?, ByteBuffer?, String,
                Double, Double, Double?, Double?, Double?
            ).self
        )
        return StoredContact(
            id: id,
            type: ContactType(rawValue: type) ?? .curated,
            mergedInto: mergedInto,
            aliases: try JSONDecoder().decode([String].self, from: Data(aliases.utf8)),
            name: name.map { Array(buffer: $0) },
            nameKey: nameKey,
            attributes: attributes.map { Array(buffer: $0) },
            notes: notes.map { Array(buffer: $0) },
            identifiers: identifiers.map { Array(buffer: $0) },
            identifierKeys: keys(identifierKeys),
            createdAt: ColumnTime.date(createdAt),
            updatedAt: ColumnTime.date(updatedAt),
            lastInteractionAt: lastInteractionAt.map(ColumnTime.date),
            expiresAt: expiresAt.map(ColumnTime.date),
            expiredAt: expiredAt.map(ColumnTime.date)
        )
    }

    private static func merge(_ row: PostgresRow) throws -> StoredMerge {
        let (id, targetId, absorbedId, mergedAt, undoneAt, snapshot) = try row.decode(
            (String, String, String, Double, Double?, ByteBuffer).self
        )
        return StoredMerge(
            id: id,
            targetId: targetId,
            absorbedId: absorbedId,
            mergedAt: ColumnTime.date(mergedAt),
            undoneAt: undoneAt.map(ColumnTime.date),
            snapshot: Array(buffer: snapshot)
        )
    }

    private static func suggestion(_ row: PostgresRow) throws -> StoredSuggestion {
        let (callId, externalId, name, suggestedAt) = try row.decode((String, String, ByteBuffer?, Double).self)
        return StoredSuggestion(
            callId: callId,
            externalId: externalId,
            name: name.map { Array(buffer: $0) },
            suggestedAt: ColumnTime.date(suggestedAt)
        )
    }
}

extension PostgresStore: ContactStore {
    /// A snapshot: REPEATABLE READ makes every statement of the body see the same commits.
    public func readContacts<T: Sendable>(_ body: @escaping @Sendable (any ContactTables) throws -> T) async throws -> T
    {
        try await session { session in
            try session.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return try body(PostgresContactTables(session: session))
        }
    }

    /// Alone on the contact graph (its exclusive lock), as SQLite's single writer runs it: merges, edits,
    /// expiry and forget never interleave with each other or with an event's contact link.
    public func writeContacts<T: Sendable>(
        _ body: @escaping @Sendable (any ContactTables) throws -> T
    ) async throws -> T {
        try await session { session in
            try session.lockContactGraph(exclusive: true)
            return try body(PostgresContactTables(session: session))
        }
    }
}
