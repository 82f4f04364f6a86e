public import Foundation
public import RelayStore

/// An operator's push on waiting work (`deliveries retry`, `POST /api/v1/deliveries/retry`): pending
/// outbox entries made due now, so the relay's dispatcher takes them at its next poll. The attempts
/// are not reset: an entry on its last attempt is dead-lettered if it fails again.
public struct OutboxRetry: Sendable {
    public enum Selection: Sendable, Hashable {
        case ids([Int64])
        /// Pending entries the query selects (its state is ignored: always pending).
        case query(OutboxQuery)
    }

    public struct Report: Sendable, Hashable, Codable {
        /// Made due now (or, in a dry run, would be).
        public var madeDue = 0
        /// Selected and due already: waiting for a slot, or in flight.
        public var alreadyDue = 0
        /// Named but not found, or finished.
        public var notPending: [Int64] = []
        public var dryRun = false

        public var summary: String {
            "\(dryRun ? "would make" : "made") \(madeDue) due now (\(alreadyDue) already due)"
        }
    }

    let store: any InteractionStore

    public init(store: any InteractionStore) {
        self.store = store
    }

    /// - Parameter progress: told after each batch of 100: done, of how many.
    public func run(
        _ selection: Selection,
        dryRun: Bool,
        now: Date = Date(),
        progress: @Sendable (Int, Int) -> Void = { _, _ in }
    ) async throws -> Report {
        var report = Report()
        report.dryRun = dryRun
        var selected: [OutboxEntry] = []
        switch selection {
        case .ids(let ids):
            for id in ids {
                if let entry = try await store.outboxEntry(id: id), entry.finishedAt == nil {
                    selected.append(entry)
                } else {
                    report.notPending.append(id)
                }
            }
        case .query(var query):
            query.state = .pending
            selected = try await store.outboxEntries(query).reversed()
        }
        let waiting = selected.filter { $0.dueAt > now }
        report.alreadyDue = selected.count - waiting.count
        guard !dryRun else {
            report.madeDue = waiting.count
            return report
        }
        var done = 0
        for start in stride(from: 0, to: waiting.count, by: 100) {
            let batch = waiting[start..<min(start + 100, waiting.count)]
            report.madeDue += try await store.makeOutboxDue(ids: batch.map(\.id), now: now)
            done += batch.count
            progress(done, waiting.count)
        }
        return report
    }
}
