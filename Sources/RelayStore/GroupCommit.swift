import GRDB
import Synchronization

/// Runs writes in shared transactions. Writes submitted while a commit is under way wait for it and
/// then all go into the next transaction, each in a savepoint of its own: with `synchronous = FULL` a
/// burst of N concurrent writes costs one fsync instead of N, and one write's error undoes only itself.
///
/// A write's caller resumes only after the transaction holding it committed; if the commit itself
/// fails, every write in it fails with that error.
final class GroupCommit: Sendable {
    /// Bounds a transaction, so one commit never holds the writer for long.
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
                        var result: Result?
                        try db.inSavepoint {
                            result = try work(db)
                            return .commit
                        }
                        let value = result!
                        return { continuation.resume(returning: value) }
                    } catch {
                        // The savepoint is rolled back; the others in the transaction are untouched.
                        return { continuation.resume(throwing: error) }
                    }
                },
                fail: { error in continuation.resume(throwing: error) })
            let startFlushing = queue.withLock { queue in
                queue.pending.append(request)
                if queue.flushing { return false }
                queue.flushing = true
                return true
            }
            if startFlushing {
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while true {
            let batch: [Request] = queue.withLock { queue in
                let batch = Array(queue.pending.prefix(Self.maximumBatch))
                queue.pending.removeFirst(batch.count)
                if batch.isEmpty { queue.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let resumptions = try await writer.write { db in batch.map { $0.run(db) } }
                for resume in resumptions { resume() }
            } catch {
                for request in batch { request.fail(error) }
            }
        }
    }
}
