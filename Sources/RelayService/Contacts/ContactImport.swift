import Foundation
import RelayCore
import RelayStore

/// Curated contacts from a file: CSV with a header row, or JSON lines. Parsing never stops at a bad
/// row: each becomes a rejection with its line number and reason, and the rest import.
public enum ContactImportFormat: String, Sendable, CaseIterable {
    case csv, jsonl
}

/// One row of an import file, parsed: a draft, or why it cannot be one.
public struct ContactImportRow: Sendable {
    public var line: Int
    public var draft: Result<ContactDraft, ContactImportRejection>
}

public struct ContactImportRejection: Error, Sendable, Hashable, Codable {
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
}

public struct ContactImportReport: Sendable, Hashable, Codable {
    public var rows = 0
    public var created = 0
    public var updated = 0
    public var rejected: [ContactImportRejection] = []

    public init() {}
}

public enum ContactImportParser {
    /// CSV columns: `name`, `phone`, `email`, `external_id` (or `externalId`), `note`; several values in
    /// one cell are separated by `;`. Any other column becomes an attribute of that name.
    /// JSON lines: `{"name", "phone", "email", "externalId"` (each a string or an array), `"attributes"`,
    /// `"note"}`.
    public static func parse(_ text: String, format: ContactImportFormat) -> [ContactImportRow] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
        }
        switch format {
        case .jsonl:
            return lines.enumerated().compactMap { index, line in
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
                return ContactImportRow(line: index + 1, draft: jsonDraft(line, line: index + 1))
            }
        case .csv:
            guard let header = lines.first.map(csvFields) else { return [] }
            let columns = header.map { $0.trimmingCharacters(in: .whitespaces) }
            return lines.enumerated().dropFirst().compactMap { index, line in
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
                return ContactImportRow(
                    line: index + 1,
                    draft: csvDraft(csvFields(line), columns: columns, line: index + 1)
                )
            }
        }
    }

    static func csvDraft(
        _ fields: [String],
        columns: [String],
        line: Int
    ) -> Result<ContactDraft, ContactImportRejection> {
        guard fields.count == columns.count else {
            return .failure(.init(line: line, reason: "\(fields.count) fields where the header has \(columns.count)"))
        }
        var draft = ContactDraft()
        for (column, field) in zip(columns, fields) {
            let value = field.trimmingCharacters(in: .whitespaces)
            guard !value.isEmpty else { continue }
            let values = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            switch column.lowercased() {
            case "name": draft.name = value
            case "phone", "phones": draft.phones += values
            case "email", "emails": draft.emails += values
            case "external_id", "externalid", "external_ids": draft.externalIds += values
            case "note", "notes": draft.note = value
            default: draft.attributes[column] = value
            }
        }
        return validated(draft, line: line)
    }

    static func jsonDraft(_ text: String, line: Int) -> Result<ContactDraft, ContactImportRejection> {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            return .failure(.init(line: line, reason: "not a JSON object"))
        }
        func strings(_ key: String) -> [String]? {
            switch object[key] {
            case nil, is NSNull: return []
            case let value as String: return [value]
            case let values as [Any]:
                return values.allSatisfy { $0 is String } ? values.compactMap { $0 as? String } : nil
            default: return nil
            }
        }
        var draft = ContactDraft()
        for key in ["phone", "email", "externalId", "name", "note"] {
            guard let values = strings(key) else {
                return .failure(.init(line: line, reason: "field '\(key)' must be a string or an array of strings"))
            }
            switch key {
            case "phone": draft.phones = values
            case "email": draft.emails = values
            case "externalId": draft.externalIds = values
            case "name": draft.name = values.first
            default: draft.note = values.first
            }
        }
        if let attributes = object["attributes"] {
            guard let map = attributes as? [String: Any], map.values.allSatisfy({ $0 is String }) else {
                return .failure(.init(line: line, reason: "field 'attributes' must be an object of strings"))
            }
            draft.attributes = map.compactMapValues { $0 as? String }
        }
        return validated(draft, line: line)
    }

    static func validated(_ draft: ContactDraft, line: Int) -> Result<ContactDraft, ContactImportRejection> {
        guard draft.name != nil || !draft.phones.isEmpty || !draft.emails.isEmpty || !draft.externalIds.isEmpty else {
            return .failure(.init(line: line, reason: "no name, phone, email or external id"))
        }
        return .success(draft)
    }

    /// One CSV line's fields (RFC 4180 quoting: `"a, b"`, `""` for a quote inside one).
    static func csvFields(_ line: String) -> [String] {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var iterator = Array(line).makeIterator()
        var pending: Character? = iterator.next()
        while let character = pending {
            pending = iterator.next()
            if quoted {
                if character == "\"" {
                    if pending == "\"" {
                        field.append("\"")
                        pending = iterator.next()
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(field)
                field = ""
            } else {
                field.append(character)
            }
        }
        fields.append(field)
        return fields
    }
}

extension ContactDirectory {
    /// Imports curated contacts. A row whose identifiers are nobody's creates a contact; a row whose
    /// identifiers all lead to one contact updates it (curating it); anything else is rejected with its
    /// line and reason, and changes nothing. Rows commit in batches, so a large file is not one long
    /// transaction.
    public func importContacts(
        _ rows: [ContactImportRow],
        batch: Int = 500,
        progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) async throws -> ContactImportReport {
        var report = ContactImportReport()
        report.rows = rows.count
        var start = 0
        while start < rows.count {
            let slice = Array(rows[start..<min(start + batch, rows.count)])
            let now = clock()
            let outcome = try await store.writeContacts { storeRows in
                var outcome = ContactImportReport()
                for row in slice {
                    do {
                        let draft = try row.draft.get()
                        if try self.importRow(draft, storeRows, now: now) {
                            outcome.created += 1
                        } else {
                            outcome.updated += 1
                        }
                    } catch let rejection as ContactImportRejection {
                        outcome.rejected.append(rejection)
                    } catch let error as ContactError {
                        outcome.rejected.append(.init(line: row.line, reason: error.message))
                    }
                }
                return outcome
            }
            report.created += outcome.created
            report.updated += outcome.updated
            report.rejected += outcome.rejected
            start += slice.count
            progress(start, rows.count)
        }
        return report
    }

    /// - Returns: true when the row created a contact, false when it updated one.
    private func importRow(_ draft: ContactDraft, _ rows: any ContactTables, now: Date) throws -> Bool {
        let identifiers = try identifiers(of: draft)
        let keys = identifiers.map { $0.key(hasher) }
        var book = try loadBook(rows, ids: [], keys: keys)
        var owners: [String] = []
        for identifier in identifiers {
            if let owner = book.owner(of: identifier), !owners.contains(owner.id) { owners.append(owner.id) }
        }
        guard owners.count <= 1 else {
            throw ContactError(
                .identifierOwned,
                "its identifiers belong to different contacts (\(owners.joined(separator: ", "))); merge them first"
            )
        }
        let note = draft.note.map { ContactNote(text: $0, at: now, author: "import") }
        if let existing = owners.first {
            try book.edit(existing, name: draft.name, attributes: draft.attributes, note: note, now: now)
            try book.addIdentifiers(identifiers, to: existing, now: now)
            try save(book, rows)
            return false
        }
        try book.create(
            id: Self.newContactId(),
            type: .curated,
            name: draft.name,
            identifiers: identifiers,
            attributes: draft.attributes,
            notes: note.map { [$0] } ?? [],
            now: now
        )
        try save(book, rows)
        return true
    }
}
