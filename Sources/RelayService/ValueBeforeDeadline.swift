import Synchronization

/// The value of `work` if it comes before `deadline`, else `late`. The work is not cancelled and runs
/// on after the deadline: a CRM answer that comes too late for a CTI lookup still fills the cache, and
/// a broker confirm that comes too late for a replay still lands (a task group would wait for both).
func value<T: Sendable>(
    before deadline: ContinuousClock.Instant,
    orElse late: T,
    of work: @escaping @Sendable () async -> T
) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        let resumed = Mutex(false)
        let resumeOnce: @Sendable (T) -> Bool = { value in
            let first = resumed.withLock { resumed in
                defer { resumed = true }
                return !resumed
            }
            if first { continuation.resume(returning: value) }
            return first
        }
        let timer = Task {
            do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return }
            _ = resumeOnce(late)
        }
        Task {
            if resumeOnce(await work()) { timer.cancel() }
        }
    }
}
