import Foundation
public import Logging
public import ServiceLifecycle

/// Expires temporary contacts on a schedule (every `privacy.purgeInterval`): their personal data goes
/// 60 days (`contacts.temporaryTtlDays`) after their last interaction. Self-contained, so the retention
/// purge of interactions can run beside it.
public final class ContactExpiryService: Service {
    let directory: ContactDirectory
    let interval: Duration
    let lease: ChoreLease?
    let logger: Logger

    public init(directory: ContactDirectory, interval: Duration, lease: ChoreLease? = nil, logger: Logger) {
        self.lease = lease
        self.directory = directory
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await repeatUntilShutdown(
            every: interval,
            startNow: true,
            lease: lease,
            logger: logger,
            failure: "contact expiry failed; retrying at the next run"
        ) {
            let expired = try await directory.expireDue()
            if expired > 0 {
                logger.info("temporary contacts expired", metadata: [LogKeys.contactsExpired: "\(expired)"])
            }
        }
    }
}
