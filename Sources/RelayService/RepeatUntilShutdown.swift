import Foundation
import Logging
public import RelayStore
import ServiceLifecycle

/// Runs `work` every `interval` until graceful shutdown or cancellation: the background chores
/// (the timer scan, contact expiry, retention purge, scheduled reconciliation). Some intervals are
/// long (an hour, a day), so the wait ends at once on graceful shutdown. A failed round is logged with `failure` and
/// the next interval tries again.
///
/// - Parameter startNow: run once before the first wait (otherwise the first round waits one
///   interval, so a relay restarted often does not do the chore at every start).
/// - Parameter lease: when several relays share the store, the chore's lease: a round runs only on
///   the relay that takes it, so the chore runs about once per interval across all of them.
func repeatUntilShutdown(
    every interval: Duration,
    startNow: Bool,
    lease: ChoreLease? = nil,
    logger: Logger,
    failure: Logger.Message,
    _ work: () async throws -> Void
) async {
    var waitFirst = !startNow
    while !Task.isShuttingDownGracefully && !Task.isCancelled {
        if waitFirst {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
        }
        waitFirst = true
        do {
            if let lease, try await !lease.store.takeChoreLease(lease.name, for: interval, now: Date()) { continue }
            try await work()
        } catch {
            logger.error(failure, metadata: [LogKeys.error: "\(error)"])
        }
    }
}

/// A chore's lease in the store (`ChoreLeases`), by the chore's name.
public struct ChoreLease: Sendable {
    public let store: any ChoreLeases
    public let name: String

    public init(store: any ChoreLeases, name: String) {
        self.store = store
        self.name = name
    }
}
