import Foundation
import RelayStore

extension DeadLetterQueue {
    /// Marks the selected dead letters purged once `confirm` (shown all of them) agrees. Their rows stay
    /// (state `purged`) until the retention purge removes them.
    public func purge(
        _ filter: DeadLetterFilter,
        dryRun: Bool = false,
        confirm: @escaping @Sendable ([DeadLetter]) async -> Bool = { _ in true },
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        try await close(
            filter,
            to: .purged,
            operation: .purge,
            note: nil,
            dryRun: dryRun,
            confirm: confirm,
            progress: progress
        )
    }

    /// Closes the selected dead letters with a note: an orphan, or anything handled elsewhere, that
    /// needs no replay.
    public func resolve(
        _ filter: DeadLetterFilter,
        note: String,
        dryRun: Bool = false,
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        try await close(
            filter,
            to: .resolved,
            operation: .resolve,
            note: note,
            dryRun: dryRun,
            confirm: { _ in true },
            progress: progress
        )
    }

    private func close(
        _ filter: DeadLetterFilter,
        to state: StoredDeadLetter.State,
        operation: DeadLetterOperation,
        note: String?,
        dryRun: Bool,
        confirm: @escaping @Sendable ([DeadLetter]) async -> Bool,
        progress: @escaping @Sendable (DeadLetterProgress) -> Void
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        let drained = try await drain()
        let store = try requireStore()
        if !drainsFirst { await reopenStaleClaims(store) }
        let (rows, total) = try await stored { () async throws -> ([StoredDeadLetter], Int) in
            (
                try await store.deadLetters(Self.query(filter, states: [.open])),
                try await store.deadLetterCount(DeadLetterQuery())
            )
        }
        let letters = rows.map { DeadLetter(stored: $0, names: names, cipher: cipher) }
        let notFound = Self.notFound(filter, in: rows)
        if !dryRun, !rows.isEmpty, !(await confirm(letters)) {
            return DeadLetterReport(
                operation: operation,
                dryRun: false,
                scanned: total,
                truncated: drained.remaining > 0,
                outcomes: [],
                notFound: notFound,
                cancelled: true
            )
        }
        var outcomes: [DeadLetterOutcome] = []
        var tally = OutcomeTally()
        var start = 0
        while start < letters.count {
            let chunk = Array(letters[start..<min(start + Self.transitionBatch, letters.count)])
            var moved: Set<String> = []
            if !dryRun {
                moved = Set(
                    try await stored { () async throws -> [String] in
                        try await store.transitionDeadLetters(
                            ids: chunk.map(\.id),
                            from: [.open],
                            to: state,
                            note: note,
                            now: Date()
                        )
                    }
                )
            }
            for letter in chunk {
                let result: DeadLetterOutcome.Result
                if dryRun {
                    result = operation == .purge ? .wouldPurge : .wouldResolve
                } else if moved.contains(letter.id) {
                    result = operation == .purge ? .purged : .resolved
                } else {
                    result = .failed("replayed, purged or resolved by someone else meanwhile")
                }
                let done = DeadLetterOutcome(letter: letter, result: result, copies: letter.copies)
                outcomes.append(done)
                tally.add(done)
                progress(
                    DeadLetterProgress(
                        operation: operation,
                        done: outcomes.count,
                        total: letters.count,
                        succeeded: tally.succeeded,
                        failed: tally.failed,
                        dryRun: dryRun
                    )
                )
            }
            start += chunk.count
        }
        return DeadLetterReport(
            operation: operation,
            dryRun: dryRun,
            scanned: total,
            truncated: drained.remaining > 0,
            outcomes: outcomes,
            notFound: notFound,
            cancelled: false
        )
    }
}
