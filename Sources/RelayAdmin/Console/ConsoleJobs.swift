import Foundation
import RelayService
import Synchronization

/// Bulk actions the console started and runs in the background, so the browser can follow their
/// progress on a page of their own instead of holding one request open for minutes. In memory: the
/// last 50 are kept for their summaries; one interrupted by a restart has done what its progress
/// said (each dead letter is replayed or purged on its own).
final class ConsoleJobs: Sendable {
    struct Job: Sendable {
        var operation: DeadLetterOperation
        var startedAt: Date
        var progress: DeadLetterProgress?
        var report: DeadLetterReport?
        var failure: String?

        var isFinished: Bool { report != nil || failure != nil }
    }

    static let kept = 50
    private let jobs = Mutex<[(id: String, job: Job)]>([])

    /// Starts `work`, handing it a progress callback; returns the job's id at once.
    func start(
        _ operation: DeadLetterOperation,
        _ work: @escaping @Sendable (@escaping @Sendable (DeadLetterProgress) -> Void) async throws -> DeadLetterReport
    ) -> String {
        let id = ConsoleSessions.randomToken()
        jobs.withLock { jobs in
            jobs.append((id, Job(operation: operation, startedAt: Date())))
            if jobs.count > Self.kept { jobs.removeFirst(jobs.count - Self.kept) }
        }
        Task {
            do {
                let report = try await work { progress in self.update(id) { $0.progress = progress } }
                update(id) { $0.report = report }
            } catch let error as DeadLetterQueueError {
                update(id) { $0.failure = error.message }
            } catch {
                update(id) { $0.failure = "\(error)" }
            }
        }
        return id
    }

    func job(_ id: String) -> Job? {
        jobs.withLock { jobs in jobs.first { $0.id == id }?.job }
    }

    private func update(_ id: String, _ change: (inout Job) -> Void) {
        jobs.withLock { jobs in
            if let index = jobs.firstIndex(where: { $0.id == id }) { change(&jobs[index].job) }
        }
    }
}
