import Foundation
import RelayCore
import RelayService

/// The terminal forms of contacts and journeys: for an operator reading, not for scripts (`--json`).
enum ContactText {
    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return RFC3339.format(date)
    }

    static func detail(_ view: ContactView) -> [String] {
        var lines = [
            "contact     \(view.id)", "type        \(view.type.rawValue)", "name        \(view.name ?? "-")",
        ]
        for identifier in view.identifiers { lines.append("identifier  \(identifier.kind.name) \(identifier.value)") }
        for (key, value) in view.attributes.sorted(by: { $0.key < $1.key }) {
            lines.append("attribute   \(key)=\(value)")
        }
        for note in view.notes { lines.append("note        \(time(note.at)) \(note.author ?? "-"): \(note.text)") }
        if !view.aliases.isEmpty { lines.append("aliases     \(view.aliases.joined(separator: ", "))") }
        if !view.merges.isEmpty { lines.append("merges      \(view.merges.joined(separator: ", "))") }
        for suggestion in view.suggestions {
            lines.append(
                "suggested   \(suggestion.externalId) \(suggestion.name ?? "-") (by name, call \(suggestion.callId); not linked)"
            )
        }
        lines += [
            "created     \(time(view.createdAt))", "updated     \(time(view.updatedAt))",
            "last seen   \(time(view.lastInteractionAt))",
            "expires     \(view.expiredAt != nil ? "expired \(time(view.expiredAt))" : view.expiresAt.map(time) ?? "never")",
        ]
        return lines.map(PrintSafe.escape)
    }

    static func table(_ views: [ContactView]) -> [String] {
        guard !views.isEmpty else { return [] }
        let rows = views.map { view in
            [view.id, view.type.rawValue, view.name ?? "-", "\(view.identifiers.count)", time(view.lastInteractionAt)]
        }
        return columns([["ID", "TYPE", "NAME", "IDENTIFIERS", "LAST SEEN"]] + rows.map { $0.map(PrintSafe.escape) })
    }

    static func timeline(_ journey: Journey) -> [String] {
        let contact = journey.contact
        var lines = [
            "\(contact.id) (\(contact.type.rawValue)) \(contact.name ?? "")".trimmingCharacters(in: .whitespaces)
                + ": \(journey.interactions.count) interaction\(journey.interactions.count == 1 ? "" : "s")"
        ]
        guard !journey.interactions.isEmpty else { return lines.map(PrintSafe.escape) }
        let rows = journey.interactions.map { entry in
            [
                time(entry.at), entry.channel?.rawValue ?? "-", entry.direction?.rawValue ?? "-", entry.status.rawValue,
                entry.durationSeconds.map { "\($0 / 60)m\(String(format: "%02d", $0 % 60))s" } ?? "-",
                entry.queueId ?? "-", entry.agentId ?? "-", entry.wrapUpCode ?? "-", entry.callId,
            ].map(PrintSafe.escape)
        }
        // Cells escaped before the widths are taken; the lines escaped again below change nothing in them.
        lines += columns(
            [["TIME", "CHANNEL", "DIRECTION", "STATUS", "DURATION", "QUEUE", "AGENT", "WRAP-UP", "INTERACTION"]] + rows
        )
        for entry in journey.interactions {
            if let notes = entry.notes { lines.append("  \(entry.callId) notes: \(notes)") }
            for suggestion in entry.suggestions {
                lines.append(
                    "  \(entry.callId) suggested by name: \(suggestion.externalId) \(suggestion.name ?? "-") (not linked)"
                )
            }
        }
        return lines.map(PrintSafe.escape)
    }

    private static func columns(_ rows: [[String]]) -> [String] {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }
}
