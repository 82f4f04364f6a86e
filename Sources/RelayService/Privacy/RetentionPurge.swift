public import Foundation
public import Logging
import RelayCore
public import RelayStore
public import ServiceLifecycle

/// Forgets what the relay holds past its retention (DESIGN.md, "Privacy"), every `interval`: finished
/// interactions with their processed event ids and published outbox entries, published outbox entries
/// of any call, expired recent overrides, and dead-letter records whose last failure is older than the
/// retention. What is still work to do (an unfinished interaction, an unpublished entry) stays whatever
/// its age.
public final class RetentionPurge: Service {
    /// What one purge removed.
    public struct Report: Sendable, Hashable {
        public var interactions = 0
        public var processedEvents = 0
        public var outboxEntries = 0
        public var expiredOverrides = 0
        public var deadLetters = 0
        /// Why the dead letters were not purged this time (the broker unreachable), if they were not.
        public var deadLetterError: String?

        public var total: Int { interactions + processedEvents + outboxEntries + expiredOverrides + deadLetters }
    }

    let store: any InteractionStore
    let deadLetters: DeadLetterQueue?
    let retention: Duration
    let interval: Duration
    let now: @Sendable () -> Date
    let lease: ChoreLease?
    let logger: Logger

    /// - Parameters:
    ///   - deadLetters: the dead-letter queue to purge; nil leaves it alone.
    ///   - now: the clock the cutoff is computed from; tests move it forward instead of waiting a month.
    public init(
        store: any InteractionStore,
        deadLetters: DeadLetterQueue?,
        retention: Duration,
        interval: Duration,
        now: @escaping @Sendable () -> Date = { Date() },
        lease: ChoreLease? = nil,
        logger: Logger
    ) {
        self.lease = lease
        self.store = store
        self.deadLetters = deadLetters
        self.retention = retention
        self.interval = interval
        self.now = now
        self.logger = logger
    }

    public func run() async throws {
        // The first purge waits one interval too: a relay restarted often then does not scan the
        // dead-letter queue at every start.
        await repeatUntilShutdown(
            every: interval,
            startNow: false,
            lease: lease,
            logger: logger,
            failure: "retention purge failed; retrying at the next interval"
        ) {
            try await purge(now: now())
        }
    }

    /// Purges everything older than the retention at `now`; logs and returns what it removed.
    @discardableResult
    public func purge(now: Date) async throws -> Report {
        let cutoff = now.addingTimeInterval(-retention.totalSeconds)
        var report = Report()
        let finished = try await store.purgeFinishedInteractions(before: cutoff)
        report.interactions = finished.interactions
        report.processedEvents = finished.processedEvents
        report.outboxEntries = finished.outboxEntries + (try await store.pruneFinishedOutbox(before: cutoff))
        report.expiredOverrides = try await store.pruneExpiredOverrides(now: now)
        if let deadLetters {
            do {
                report.deadLetters = try await deadLetters.deleteOlder(than: cutoff)
            } catch {
                // The store's part is done; the dead letters wait for the next round.
                report.deadLetterError = error.description
            }
        }
        var metadata: Logger.Metadata = [
            LogKeys.retentionCutoff: "\(RFC3339.format(cutoff))", LogKeys.purgedInteractions: "\(report.interactions)",
            LogKeys.purgedProcessedEvents: "\(report.processedEvents)",
            LogKeys.purgedOutboxEntries: "\(report.outboxEntries)",
            LogKeys.purgedOverrides: "\(report.expiredOverrides)", LogKeys.purgedDeadLetters: "\(report.deadLetters)",
        ]
        if let error = report.deadLetterError {
            metadata[LogKeys.error] = "\(error)"
            logger.warning("retention purge left the dead letters for the next round", metadata: metadata)
        } else {
            logger.info("retention purge", metadata: metadata)
        }
        return report
    }
}
