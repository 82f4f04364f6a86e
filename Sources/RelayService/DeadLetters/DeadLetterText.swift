public import Foundation
import RelayAMQP
import RelayCore
public import RelayStore

/// The `dead-letters` tool's text output: the `list` table, the `show` page, ages.
public enum DeadLetterText {
    /// `list`'s table, at most `width` columns wide: the last error is cut to fit (with `…`).
    /// Call ids are masked (the table is for screens and tickets) unless `revealCallIds`; a STATE
    /// column appears when any listed dead letter is not open.
    public static func table(
        _ letters: [DeadLetter],
        now: Date,
        width: Int = 120,
        revealCallIds: Bool = false
    ) -> [String] {
        let showsState = letters.contains { $0.state != .open }
        let headers =
            ["ID", "REASON"] + (showsState ? ["STATE"] : []) + [
                "TARGET", "CALL ID", "TRIES", "REPLAYS", "AGE", "LAST ERROR",
            ]
        // Every cell is what a publisher or an upstream sent: escaped before the widths are taken.
        let rows = letters.map { letter -> [String] in
            let callId: String = letter.callId.map { revealCallIds ? $0 : Masking.mask($0) } ?? "-"
            var cells: [String] = [letter.id, letter.reason]
            if showsState { cells.append(letter.state.rawValue) }
            cells += [
                keepEnd(targetCell(letter), width: 26), callId, letter.attempts.map(String.init) ?? "-",
                String(letter.replayCount),
            ]
            cells += [letter.age(now: now).map(age) ?? "?", letter.lastError]
            return cells.map(PrintSafe.escape)
        }
        let rightAlignedColumns: Set<Int> = showsState ? [5, 6, 7] : [4, 5, 6]
        var widths = headers.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated().dropLast() { widths[column] = max(widths[column], cell.count) }
        }
        let fixed = widths.dropLast().reduce(0, +) + 2 * (headers.count - 1)
        let errorWidth = max(12, width - fixed)
        func line(_ cells: [String]) -> String {
            var text = ""
            for (column, cell) in cells.enumerated().dropLast() {
                let rightAligned = rightAlignedColumns.contains(column)
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                text += (rightAligned ? padding + cell : cell + padding) + "  "
            }
            return text + truncate(cells.last!, to: errorWidth)
        }
        return [line(headers)] + rows.map(line)
    }

    /// Where a dead letter was going: a delivery's method and the end of its path (external id masked),
    /// or where a replay would put the event (`platform.events/callStarted`, `outbox`); `-` for none.
    static func targetCell(_ letter: DeadLetter) -> String {
        if let target = letter.target {
            let path = URLComponents(string: target.url)?.percentEncodedPath ?? ""
            let components = path.split(separator: "/")
            guard let last = components.last else { return target.method }
            let tail = (components.count > 1 ? components[components.count - 2] + "/" : "") + Masking.mask(String(last))
            return "\(target.method) \(tail)"
        }
        guard let origin = letter.origin else { return "-" }
        if origin.isOutbox { return "outbox" }
        return origin.exchange + (origin.routingKey.isEmpty ? "" : "/" + origin.routingKey)
    }

    /// The counts `list` prints before its table: how many are open, by reason, the most frequent last
    /// errors, and how old the oldest and newest failures are.
    ///
    /// - Parameter label: what is counted: `open`, or the states asked for (`replayed`, `any state`).
    public static func summary(
        _ summary: DeadLetterSummary,
        now: Date,
        errors: Int = 3,
        label: String = "open"
    ) -> [String] {
        guard summary.total > 0 else { return ["\(label): 0"] }
        let reasons = summary.byReason.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map {
            "\($0.key) \($0.value)"
        }
        var lines = ["\(label): \(summary.total) (" + reasons.joined(separator: ", ") + ")"]
        if let oldest = summary.oldestFailure, let newest = summary.newestFailure {
            lines.append(
                "failed: oldest \(age(max(0, now.timeIntervalSince(oldest)))) ago, newest \(age(max(0, now.timeIntervalSince(newest)))) ago"
            )
        }
        for group in summary.byLastError.prefix(errors) {
            lines.append("error: \(group.count) × " + PrintSafe.escape(truncate(group.lastError, to: 100)))
        }
        return lines
    }

    /// `show`'s page: every field, then the payload (indented JSON when it is JSON).
    public static func detail(_ letter: DeadLetter, copies: Int, now: Date) -> [String] {
        func time(_ date: Date?) -> String {
            guard let date else { return "unknown" }
            return "\(RFC3339.format(date)) (\(age(max(0, now.timeIntervalSince(date)))) ago)"
        }
        var fields: [(String, String)] = [
            ("id", letter.id), ("reason", letter.reason), ("kind", letter.kind.rawValue),
            ("call id", letter.callId ?? "-"), ("event type", letter.eventType ?? "-"),
            ("event id", letter.eventId ?? "-"),
            ("attempts", letter.attempts.map(String.init) ?? "unknown"), ("replays", String(letter.replayCount)),
            ("first failure", time(letter.firstFailureAt)), ("last failure", time(letter.lastFailureAt)),
            ("last error", letter.lastError),
            ("origin", letter.origin.map(DeadLetterOutcome.describe) ?? "none (\(letter.notReplayableReason ?? ""))"),
        ]
        if let target = letter.target {
            fields.append(
                ("target", "\(target.method) \(target.url)" + (target.lastStatus.map { " (last status \($0))" } ?? ""))
            )
        }
        if copies > 1 { fields.append(("copies", "\(copies) messages carried this id")) }
        // What the broker wrote when it dead-lettered the message itself: its death history.
        for (name, value) in letter.headers.sorted(by: { $0.key < $1.key })
        where DeadLetter.brokerHeaderPrefixes.contains(where: { name.hasPrefix($0) }) {
            fields.append((name, value.description))
        }
        if letter.state != .open {
            let since = letter.stateChangedAt.map { " since \(time($0))" } ?? ""
            fields.append(("state", letter.state.rawValue + since + (letter.note.map { ": \($0)" } ?? "")))
        }
        let (text, encoding) = letter.payloadForJSON
        var lines = fields.map { name, value in
            let label = name + ":"
            return (label.count < 15 ? label.padding(toLength: 15, withPad: " ", startingAt: 0) : label + " ")
                + PrintSafe.escape(value)
        }
        if letter.payloadIsSealed { lines.append("payload:       not opened: " + letter.sealedPayloadReason) }
        lines.append("payload (\(encoding.rawValue), \(letter.payload.count) bytes):")
        if encoding == .utf8,
            let object = try? JSONSerialization.jsonObject(with: Data(letter.payload), options: [.fragmentsAllowed]),
            object is [String: Any] || object is [Any],
            let pretty = try? JSONSerialization.data(
                withJSONObject: object,
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            )
        {
            // JSON escapes C0 controls inside strings, not the line separators and bidi controls.
            lines += String(decoding: pretty, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                .map { "  " + PrintSafe.escape(String($0)) }
        } else {
            // A body's own line breaks (LF, CRLF, a lone CR) still break the page, indented under it;
            // anything else that acts on a terminal is shown.
            lines += text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
                .map { "  " + PrintSafe.escape(String($0)) }
        }
        return lines
    }

    /// `45s`, `12m`, `3h`, `5d`: the largest unit that fits.
    public static func age(_ seconds: TimeInterval) -> String {
        let whole = Int(seconds)
        switch whole {
        case ..<60: return "\(whole)s"
        case ..<3600: return "\(whole / 60)m"
        case ..<86_400: return "\(whole / 3600)h"
        default: return "\(whole / 86_400)d"
        }
    }

    /// `url` with its last path component (a customer's external id, on a platform PUT) masked.
    public static func maskingLastPathComponent(_ url: String) -> String {
        guard var components = URLComponents(string: url), !components.percentEncodedPath.hasSuffix("/"),
            components.percentEncodedPath.contains("/")
        else { return url }
        // The deliveries tool's masking of a job's path, applied to the URL's.
        components.percentEncodedPath = OutboxEntryView.maskedPath(components.percentEncodedPath)
        return components.string ?? url
    }

    /// The end of `text` when it is wider than `width`: where a target ends says the most.
    static func keepEnd(_ text: String, width: Int) -> String {
        text.count <= width ? text : "…" + String(text.suffix(width - 1))
    }

    static func truncate(_ text: String, to width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }
}

/// Shows a bulk operation's progress: on a terminal one line redrawn in place with a bar, otherwise
/// a plain line every `every` items and at the end (logs and pipes get no control characters).
public final class DeadLetterProgressReporter: Sendable {
    private let write: @Sendable (String) -> Void
    private let isTerminal: Bool
    private let every: Int
    private let barWidth = 30

    public init(isTerminal: Bool, every: Int = 100, write: @escaping @Sendable (String) -> Void) {
        self.isTerminal = isTerminal
        self.every = max(1, every)
        self.write = write
    }

    public func report(_ progress: DeadLetterProgress) {
        let verb = progress.dryRun ? "would \(progress.operation.rawValue)" : progress.operation.pastTense
        let counts =
            "\(progress.done)/\(progress.total) \(verb) \(progress.succeeded)"
            + (progress.failed > 0 ? " failed \(progress.failed)" : "")
        if isTerminal {
            let filled = progress.total == 0 ? barWidth : barWidth * progress.done / progress.total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled)
            write("\r\u{1B}[2K\(progress.operation.rawValue) [\(bar)] \(counts)")
            if progress.done == progress.total { write("\n") }
        } else if progress.done % every == 0 || progress.done == progress.total {
            write("\(progress.operation.rawValue): \(counts)\n")
        }
    }
}
