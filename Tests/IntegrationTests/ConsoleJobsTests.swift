import Foundation
import RelayService
import RelayTesting
import Testing

@testable import RelayAdmin

/// Bulk actions the console runs in the background: their progress while they run, then how they ended.
@Suite("Console jobs")
struct ConsoleJobsTests {
    @Test("a running job shows its progress, then what stopped it; unknown ids are not found")
    func progressThenEnd() async throws {
        let jobs = ConsoleJobs()
        let release = AsyncStream<Void>.makeStream()
        let id = jobs.start(.replay) { progress in
            progress(DeadLetterProgress(operation: .replay, done: 3, total: 10, succeeded: 3, failed: 0))
            for await _ in release.stream { break }
            throw DeadLetterQueueError(.storeFailed, "the store went away")
        }
        try await eventually { jobs.job(id)?.progress?.done == 3 }
        #expect(jobs.job(id)?.isFinished == false)
        release.continuation.yield()
        try await eventually { jobs.job(id)?.isFinished == true }
        #expect(jobs.job(id)?.failure == "the store went away")
        #expect(jobs.job("no-such-job") == nil)
    }

    @Test("only the last jobs are kept")
    func bounded() async throws {
        let jobs = ConsoleJobs()
        let ids = (0..<(ConsoleJobs.kept + 5)).map { _ in
            jobs.start(.purge) { _ in throw DeadLetterQueueError(.storeFailed, "no store") }
        }
        #expect(jobs.job(ids[0]) == nil)
        #expect(jobs.job(ids[ids.count - 1]) != nil)
    }
}
