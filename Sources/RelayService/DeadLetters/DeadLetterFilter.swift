public import Foundation
import RelayCore
public import RelayStore

/// Which dead letters an operation applies to (the store's `DeadLetterQuery`). Every condition set
/// must hold; an empty filter selects every open dead letter.
///
/// Times compare with the last failure. A dead letter whose time is unknown (a raw message the broker
/// dead-lettered) matches no `since`/`until` condition: a time filter never selects what it cannot date.
public struct DeadLetterFilter: Sendable, Hashable {
    /// Reasons to select (`DeadLetter.knownReasons`); empty selects any.
    public var reasons: Set<String>
    /// Last failure at or after this time.
    public var since: Date?
    /// Last failure at or before this time.
    public var until: Date?
    /// Exact interaction id.
    public var callId: String?
    /// Dead-letter ids to select; empty selects any.
    public var ids: Set<String>
    /// At most this many dead letters, the oldest first.
    public var limit: Int?
    /// Only dead letters recorded after this one (its `sequence`): the next page.
    public var after: Int64?
    /// The states to read (`list`, `export`): open unless asked otherwise. Replay, purge and resolve act
    /// on open dead letters only, whatever this says.
    public var states: Set<StoredDeadLetter.State> = [.open]

    public init(
        reasons: Set<String> = [],
        since: Date? = nil,
        until: Date? = nil,
        callId: String? = nil,
        ids: Set<String> = [],
        limit: Int? = nil
    ) {
        self.reasons = reasons
        self.since = since
        self.until = until
        self.callId = callId
        self.ids = ids
        self.limit = limit
    }

    /// Whether the filter selects everything (no condition and no limit).
    public var selectsEverything: Bool {
        reasons.isEmpty && since == nil && until == nil && callId == nil && ids.isEmpty && limit == nil && after == nil
            && states == [.open]
    }

    /// Reads a point in time as given on the command line: RFC 3339 (`2026-05-01T08:00:00Z`), a day
    /// (`2026-05-01`, midnight UTC), or an age before `now` (`90s`, `30m`, `2h`, `7d`, `1w`).
    public static func parseTime(_ text: String, now: Date) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let date = RFC3339.parse(trimmed) { return date }
        if trimmed.count == 10, let date = RFC3339.parse(trimmed + "T00:00:00Z") { return date }
        guard let unit = trimmed.last, let amount = Double(trimmed.dropLast()), amount >= 0, amount.isFinite else {
            return nil
        }
        let seconds: Double
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86_400
        case "w": seconds = 604_800
        default: return nil
        }
        return now.addingTimeInterval(-amount * seconds)
    }
}

/// What is wrong with a filter an operator gave: one check for the command line and the admin API,
/// each naming the field its own way (`--since`, `since`).
public struct DeadLetterFilterError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Field: String, Sendable, Hashable {
        case reason, since, until, limit
    }

    public var field: Field
    public var problem: String
    public var description: String { "\(field.rawValue): \(problem)" }
}

extension DeadLetterFilter {
    /// The filter an operator's words describe, checked: known reasons, times that read as times, a
    /// positive limit.
    public init(
        checkingReasons reasons: [String],
        since: String?,
        until: String?,
        callId: String?,
        ids: [String] = [],
        limit: Int?,
        now: Date
    ) throws(DeadLetterFilterError) {
        for reason in reasons where !DeadLetter.knownReasons.contains(reason) {
            throw DeadLetterFilterError(
                field: .reason,
                problem:
                    "unknown reason '\(reason)'; expected one of \(DeadLetter.knownReasons.joined(separator: ", "))"
            )
        }
        func time(_ text: String?, _ field: DeadLetterFilterError.Field) throws(DeadLetterFilterError) -> Date? {
            guard let text else { return nil }
            guard let date = Self.parseTime(text, now: now) else {
                throw DeadLetterFilterError(
                    field: field,
                    problem: "'\(text)' is not a time: give RFC 3339, a day (2026-05-01) or an age (30m, 2h, 7d)"
                )
            }
            return date
        }
        if let limit, limit < 1 { throw DeadLetterFilterError(field: .limit, problem: "must be at least 1") }
        self.init(
            reasons: Set(reasons),
            since: try time(since, .since),
            until: try time(until, .until),
            callId: callId,
            ids: Set(ids),
            limit: limit
        )
    }
}
