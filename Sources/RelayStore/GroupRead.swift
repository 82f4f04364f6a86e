import GRDB
import Synchronization

/// Runs small reads together: reads asked for while one is under way share the next read
/// transaction, on a reader connection, and their callers are resumed from there.
///
/// The dispatcher reads a call's link before each customer update; one read transaction (and one
/// hop to a reader and back) each cost more than the read. A read still sees every commit that
/// finished before it was asked for: its transaction begins after that.
final class GroupRead: Sendable {
    /// Bounds a read transaction, so a burst is answered in slices.
    static let maximumBatch = 256

    private struct Request: Sendable {
        let run: @Sendable (Database) -> Void
        let fail: @Sendable (any Error) -> Void
    }

    private struct Queue {
        var pending: [Request] = []
        var reading = false
    }

    private let reader: any DatabaseReader
    private let queue = Mutex(Queue())

    init(reader: any DatabaseReader) {
        self.reader = reader
    }

    func read<Result: Sendable>(_ work: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            let request = Request(
                run: { db in continuation.resume(with: Swift.Result { try work(db) }) },
                fail: { error in continuation.resume(throwing: error) }
            )
            let startReading = queue.withLock { queue in
                queue.pending.append(request)
                if queue.reading { return false }
                queue.reading = true
                return true
            }
            if startReading { scheduleRead() }
        }
    }

    private func scheduleRead() {
        reader.asyncRead { access in
            let batch: [Request] = self.queue.withLock { queue in
                let batch = Array(queue.pending.prefix(Self.maximumBatch))
                queue.pending.removeFirst(batch.count)
                if batch.isEmpty { queue.reading = false }
                return batch
            }
            if batch.isEmpty { return }
            switch access {
            case .success(let db): for request in batch { request.run(db) }
            case .failure(let error): for request in batch { request.fail(error) }
            }
            self.scheduleRead()
        }
    }
}
