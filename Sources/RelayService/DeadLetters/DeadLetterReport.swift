public import RelayCore

/// What `list`, `show` and `export` read: the selected open dead letters, oldest first.
public struct DeadLetterListing: Sendable {
    /// The dead letters the filter selected, in the order they were recorded.
    public var letters: [DeadLetter]
    /// Open dead letters in the store, selected or not.
    public var scanned: Int
    /// True when messages were still on the queue after the drain (arriving meanwhile, or the broker
    /// went quiet): run again to see them.
    public var truncated: Bool

    public init(letters: [DeadLetter], scanned: Int, truncated: Bool) {
        self.letters = letters
        self.scanned = scanned
        self.truncated = truncated
    }
}

/// Progress of a bulk operation, reported after each dead letter.
public struct DeadLetterProgress: Sendable, Hashable {
    public var operation: DeadLetterOperation
    public var done: Int
    public var total: Int
    /// Replayed or purged so far (in a dry run: found replayable or purgeable).
    public var succeeded: Int
    public var failed: Int
    public var dryRun: Bool

    public init(
        operation: DeadLetterOperation,
        done: Int,
        total: Int,
        succeeded: Int,
        failed: Int,
        dryRun: Bool = false
    ) {
        self.operation = operation
        self.done = done
        self.total = total
        self.succeeded = succeeded
        self.failed = failed
        self.dryRun = dryRun
    }
}

public enum DeadLetterOperation: String, Sendable, Hashable {
    case replay, purge, resolve

    var pastTense: String {
        switch self {
        case .replay: "replayed"
        case .purge: "purged"
        case .resolve: "resolved"
        }
    }
}

/// What happened to one dead letter (all copies of its id) in a bulk operation.
public struct DeadLetterOutcome: Sendable, Hashable {
    public enum Result: Sendable, Hashable {
        /// Republished and confirmed by the broker; the dead letter was removed.
        case replayed(to: DeadLetterRecord.Origin)
        case purged
        /// Closed with the operator's note.
        case resolved
        /// Nothing changed for it; the message says why. The dead letter stays open.
        case failed(String)
        case wouldReplay(to: DeadLetterRecord.Origin)
        case wouldPurge
        case wouldResolve
    }

    public var letter: DeadLetter
    public var result: Result
    /// Messages that carried this id (a record published twice arrived twice).
    public var copies: Int

    public init(letter: DeadLetter, result: Result, copies: Int) {
        self.letter = letter
        self.result = result
        self.copies = copies
    }

    public var isFailure: Bool {
        if case .failed = result { return true }
        return false
    }

    public var isSuccess: Bool {
        switch result {
        case .replayed, .purged, .resolved: true
        default: false
        }
    }

    /// What a dry run found it could do.
    public var isWouldBe: Bool {
        switch result {
        case .wouldReplay, .wouldPurge, .wouldResolve: true
        default: false
        }
    }

    /// One line for the operator: `replayed dl_… (malformed) → platform.events/callStarted`.
    public var line: String {
        let subject = "\(letter.id) (\(letter.reason))"
        let copiesNote = copies > 1 ? " [\(copies) copies]" : ""
        switch result {
        case .replayed(let origin): return "replayed \(subject) → \(Self.describe(origin))\(copiesNote)"
        case .purged: return "purged \(subject)\(copiesNote)"
        case .resolved: return "resolved \(subject)\(copiesNote)"
        case .failed(let message): return "failed \(subject): \(message); kept"
        case .wouldReplay(let origin): return "would replay \(subject) → \(Self.describe(origin))\(copiesNote)"
        case .wouldPurge: return "would purge \(subject)\(copiesNote)"
        case .wouldResolve: return "would resolve \(subject)\(copiesNote)"
        }
    }

    static func describe(_ origin: DeadLetterRecord.Origin) -> String {
        if origin.isOutbox { return "the relay's outbox" }
        return "\(origin.exchange.isEmpty ? "(default exchange)" : origin.exchange)/\(origin.routingKey)"
    }
}

/// The result of a bulk operation, with the summary line it ends on.
public struct DeadLetterReport: Sendable {
    public var operation: DeadLetterOperation
    public var dryRun: Bool
    /// Open dead letters in the store before the operation.
    public var scanned: Int
    public var truncated: Bool
    /// One per selected dead letter, in the order they were recorded.
    public var outcomes: [DeadLetterOutcome]
    /// Ids asked for by name that are not open dead letters.
    public var notFound: [String]
    /// A purge the operator did not confirm: nothing changed.
    public var cancelled: Bool

    public init(
        operation: DeadLetterOperation,
        dryRun: Bool,
        scanned: Int,
        truncated: Bool,
        outcomes: [DeadLetterOutcome],
        notFound: [String],
        cancelled: Bool
    ) {
        self.operation = operation
        self.dryRun = dryRun
        self.scanned = scanned
        self.truncated = truncated
        self.outcomes = outcomes
        self.notFound = notFound
        self.cancelled = cancelled
    }

    public var succeeded: Int { outcomes.count(where: \.isSuccess) }
    /// Dead letters that could not be handled, ids not found included.
    public var failed: Int { outcomes.count(where: \.isFailure) + notFound.count }
    /// Dead letters closed (replayed, purged or resolved).
    public var removedMessages: Int { outcomes.count(where: \.isSuccess) }
    /// Dead letters still open after the operation: the ones not selected and the failed ones.
    public var kept: Int { scanned - removedMessages }
    public var hasFailures: Bool { failed > 0 }

    /// The tool's exit status: 1 when a dead letter could not be handled, 2 when the operator declined
    /// at the confirmation (nothing changed, and a script must not read that as done), else 0.
    public var exitStatus: Int32 {
        if hasFailures { return 1 }
        return cancelled ? 2 : 0
    }

    /// `replayed 3, failed 1, kept 5`; dry runs and cancelled purges say that nothing changed.
    public var summary: String {
        if cancelled { return "\(operation.rawValue) cancelled: nothing changed (\(scanned) open)" }
        var parts: [String]
        if dryRun {
            parts = ["dry run: would \(operation.rawValue) \(outcomes.count(where: \.isWouldBe))"]
            if failed > 0 { parts.append("failed \(failed)") }
            parts.append("nothing changed (\(scanned) open)")
        } else {
            parts = ["\(operation.pastTense) \(succeeded)", "failed \(failed)", "kept \(kept)"]
        }
        if !notFound.isEmpty { parts.append("not found: \(notFound.joined(separator: " "))") }
        if truncated { parts.append("more were still arriving on the queue; run again for the rest") }
        return parts.joined(separator: ", ")
    }
}
