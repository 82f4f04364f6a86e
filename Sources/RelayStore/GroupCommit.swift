import GRDB
import Synchronization

/// Runs writes in shared transactions. Writes submitted while a commit is under way wait for it and
/// then all go into the next transaction, each in a savepoint of its own (`writeEach` gives one to each
/// item it carries): with `synchronous = FULL` a burst of N concurrent writes costs one fsync instead
/// of N, and one write's error undoes only itself.
///
/// A write's caller resumes only after the transaction holding it committed; if the commit itself
/// fails, every write in it fails with that error.
final class GroupCommit: Sendable {
    /// Requests in one transaction at most, so one commit never holds the writer for long (a
    /// `writeEach` request is one of them, however many events its batch carries: at most a prefetch).
    static let maximumBatch = 256

    private struct Request: Sendable {
        /// Runs the write inside its savepoint and returns how to resume its caller once committed.
        let run: @Sendable (Database) -> @Sendable () -> Void
        let fail: @Sendable (any Error) -> Void
    }

    private struct Queue {
        var pending: [Request] = []
        var flushing = false
    }

    private let writer: any DatabaseWriter
    private let queue = Mutex(Queue())

    init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    func write<Result: Sendable>(_ work: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            let request = Request(
                run: { db in
                    do {
                        let value = try db.inCachedSavepoint { try work(db) }
                        return { continuation.resume(returning: value) }
                    } catch {
                        // The savepoint is rolled back; the others in the transaction are untouched.
                        return { continuation.resume(throwing: error) }
                    }
                },
                fail: { error in continuation.resume(throwing: error) }
            )
            enqueue(request)
        }
    }

    /// `write` for work that never throws, and so needs no savepoint of its own: a batch that gives
    /// each of its items a savepoint and returns their errors in their place.
    func writeEach<Result: Sendable>(_ work: @escaping @Sendable (Database) -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            enqueue(
                Request(
                    run: { db in
                        let value = work(db)
                        return { continuation.resume(returning: value) }
                    },
                    fail: { error in continuation.resume(throwing: error) }
                )
            )
        }
    }

    private func enqueue(_ request: Request) {
        let startFlushing = queue.withLock { queue in
            queue.pending.append(request)
            if queue.flushing { return false }
            queue.flushing = true
            return true
        }
        if startFlushing { scheduleFlush() }
    }

    /// One transaction on the writer's own queue, then the callers resumed from there: no task hops
    /// between the commits of a busy stream. While writes keep arriving, each next transaction is
    /// queued behind whatever else waits for the writer (a prune, a contact merge), never ahead of it.
    private func scheduleFlush() {
        writer.asyncWriteWithoutTransaction { db in
            let batch: [Request] = self.queue.withLock { queue in
                let batch = Array(queue.pending.prefix(Self.maximumBatch))
                queue.pending.removeFirst(batch.count)
                if batch.isEmpty { queue.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                var resumptions: [@Sendable () -> Void] = []
                try db.inTransaction {
                    resumptions = batch.map { $0.run(db) }
                    return .commit
                }
                for resume in resumptions { resume() }
            } catch {
                for request in batch { request.fail(error) }
            }
            self.scheduleFlush()
        }
    }
}

extension Database {
    /// GRDB's `inSavepoint` inside a transaction, with its four statements compiled once per
    /// connection rather than once per call: a group commit opens one savepoint per write, and
    /// compiling them was a tenth of the writer's time. Rolls the savepoint back when `body` throws.
    func inCachedSavepoint<T>(_ body: () throws -> T) throws -> T {
        // Outside a transaction a SAVEPOINT would open a deferred one of its own, which GRDB avoids.
        precondition(isInsideTransaction, "inCachedSavepoint runs inside a transaction")
        try cachedStatement(sql: "SAVEPOINT relay_write").execute()
        do {
            let value = try body()
            // Inside the do: a release that fails must undo the write too, or it would commit with
            // the transaction while its caller is told it failed.
            try cachedStatement(sql: "RELEASE SAVEPOINT relay_write").execute()
            return value
        } catch {
            // Rollback alone leaves the savepoint on SQLite's stack: release it too.
            try? cachedStatement(sql: "ROLLBACK TRANSACTION TO SAVEPOINT relay_write").execute()
            try? cachedStatement(sql: "RELEASE SAVEPOINT relay_write").execute()
            throw error
        }
    }
}
