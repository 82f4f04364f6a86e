import Foundation
import RelayStore
import Synchronization

/// Outcomes of outbox entries recorded together: settlements that arrive while a write is under way
/// wait for it, then all go in the next (`PostgresStore.settle`, one statement per kind), as the SQLite
/// store's group commit records them. A dispatcher finishing hundreds of entries a second would
/// otherwise open a transaction per entry.
///
/// A caller's settlements are not atomic with each other, and they are applied by kind, not in their
/// order: the dispatcher sends one settlement per entry and waits for it before it lets the entry go,
/// so no two settlements of one entry ever meet here.
///
/// A caller resumes once its settlements are written. When a shared write fails, each caller's
/// settlements are written again on their own, so one bad settlement fails only its own caller.
final class PostgresSettlementGroup: Sendable {
    /// Callers in one write at most.
    static let maximumBatch = 512

    private struct Waiter: Sendable {
        let settlements: [(settlement: OutboxSettlement, now: Date)]
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct Queue: Sendable {
        var waiting: [Waiter] = []
        var writing = false
    }

    private let queue = Mutex(Queue())

    func settle(_ settlements: [OutboxSettlement], now: Date, in store: PostgresStore) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startWriting = queue.withLock { queue in
                queue.waiting.append(Waiter(settlements: settlements.map { ($0, now) }, continuation: continuation))
                if queue.writing { return false }
                queue.writing = true
                return true
            }
            if startWriting {
                Task { await self.writeWhileWaiting(in: store) }
            }
        }
    }

    private func writeWhileWaiting(in store: PostgresStore) async {
        while true {
            let batch: [Waiter] = queue.withLock { queue in
                let batch = Array(queue.waiting.prefix(Self.maximumBatch))
                queue.waiting.removeFirst(batch.count)
                if batch.isEmpty { queue.writing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let settlements = batch.flatMap(\.settlements)
                try await store.session(transaction: false) { session in try PostgresStore.settle(settlements, session)
                }
                for waiter in batch { waiter.continuation.resume() }
            } catch  where batch.count > 1 {
                for waiter in batch {
                    do {
                        let settlements = waiter.settlements
                        try await store.session(transaction: false) { session in
                            try PostgresStore.settle(settlements, session)
                        }
                        waiter.continuation.resume()
                    } catch {
                        waiter.continuation.resume(throwing: error)
                    }
                }
            } catch {
                batch[0].continuation.resume(throwing: error)
            }
        }
    }
}
