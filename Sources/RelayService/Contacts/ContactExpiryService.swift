public import Logging
import Foundation
public import ServiceLifecycle

/// Expires temporary contacts on a schedule (every `privacy.purgeInterval`): their personal data goes
/// 60 days (`contacts.temporaryTtlDays`) after their last interaction. Self-contained, so the retention
/// purge of interactions can run beside it.
public final class ContactExpiryService: Service {
    let directory: ContactDirectory
    let interval: Duration
    let logger: Logger

    public init(directory: ContactDirectory, interval: Duration, logger: Logger) {
        self.directory = directory
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let expired = try await directory.expireDue()
                if expired > 0 { logger.info("temporary contacts expired", metadata: ["contacts.expired": "\(expired)"]) }
            } catch {
                logger.error("contact expiry failed; retrying at the next run", metadata: [LogKeys.error: "\(error)"])
            }
            // The interval is long (an hour by default): shutdown must not wait for it.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }
}
