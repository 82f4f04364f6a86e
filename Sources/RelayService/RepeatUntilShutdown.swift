import Logging
import ServiceLifecycle

/// Runs `work` every `interval` until graceful shutdown or cancellation: the background chores
/// (the timer scan, contact expiry, retention purge, scheduled reconciliation). Some intervals are
/// long (an hour, a day), so the wait ends at once on graceful shutdown. A failed round is logged with `failure` and
/// the next interval tries again.
///
/// - Parameter startNow: run once before the first wait (otherwise the first round waits one
///   interval, so a relay restarted often does not do the chore at every start).
func repeatUntilShutdown(
    every interval: Duration, startNow: Bool, logger: Logger, failure: Logger.Message, _ work: () async throws -> Void
) async {
    var waitFirst = !startNow
    while !Task.isShuttingDownGracefully && !Task.isCancelled {
        if waitFirst {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
        }
        waitFirst = true
        do {
            try await work()
        } catch {
            logger.error(failure, metadata: [LogKeys.error: "\(error)"])
        }
    }
}
