import Foundation
public import Logging
import RelayAMQP
import RelayCore
import RelayHTTP
import RelayPostgres
public import ServiceLifecycle

extension RelayApp {
    /// Every long-running part of the relay, for one `ServiceGroup` (`run` puts the admin server after
    /// them). The group starts them together and shuts them down one at a time, from the last to the
    /// first, each after the one before it has stopped:
    ///
    /// 1. the event pipeline stops consuming and finishes its batch (committed, then acked);
    /// 2. the reconciliation, expiry, retention and timer chores stop between rounds;
    /// 3. the dead-letter drain records what it took and acks it;
    /// 4. the dispatcher lets what runs finish and record its outcome (what is queued stays in the store);
    /// 5. the broker connection closes, the curl loop stops;
    /// 6. the store lets go of this relay's claims and closes its connections.
    ///
    /// Nothing that uses the store or the broker starts before the store is ready (PostgreSQL's schema
    /// migrated): not even the broker connection, so nothing is consumed that could not be committed.
    /// (The admin API, which `run` adds, starts at once: its readiness says "not ready" until the
    /// pipeline consumes.)
    public var services: [ServiceGroupConfiguration.ServiceConfiguration] {
        let storeReady = OneShot<Void>()
        func afterStore(_ name: String, _ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
            part(name, StartsWhenReady(signal: storeReady, service: service))
        }
        var parts: [ServiceGroupConfiguration.ServiceConfiguration] = [
            part("store", StoreService(postgres: postgres, ready: storeReady, logger: logger)),
            part("http client", http),
            afterStore("broker connection", BrokerService(app: self)),
            afterStore("outbox dispatcher", dispatcher),
            afterStore("dead-letter drain", deadLetterDrain),
            afterStore("interaction chores", timers),
            afterStore("retention purge", retentionPurge),
            afterStore("contact expiry", contactExpiry),
        ]
        if let reconciler {
            parts.append(
                afterStore(
                    "reconciliation",
                    ReconciliationSchedule(
                        reconciler: reconciler,
                        interval: configuration.reconciliation.interval,
                        window: configuration.reconciliation.window,
                        lease: ChoreLease(store: store, name: "reconciliation"),
                        logger: logger
                    )
                )
            )
        }
        parts.append(afterStore("event pipeline", pipeline))
        return parts
    }

    /// A part ends only when shut down; one that ends by itself or fails takes the relay down with it
    /// (gracefully, or at once), rather than leaving it running without it. Each says when it has
    /// stopped, so a shutdown's order can be read in the log.
    private func part(_ name: String, _ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(
            service: NamedPart(name: name, service: service, logger: logger),
            successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .cancelGroup
        )
    }
}

/// A part of the relay that logs its end: "<name> stopped", or why it failed.
public struct NamedPart: Service, CustomStringConvertible {
    public let name: String
    let service: any Service
    let logger: Logger

    public init(name: String, service: any Service, logger: Logger) {
        self.name = name
        self.service = service
        self.logger = logger
    }

    public var description: String { name }

    public func run() async throws {
        do {
            try await service.run()
            logger.info("\(name) stopped", metadata: [LogKeys.service: "\(name)"])
        } catch {
            logger.error("\(name) failed", metadata: [LogKeys.service: "\(name)", LogKeys.error: "\(error)"])
            throw error
        }
    }
}

/// The store as a service: PostgreSQL's connection pool runs and its schema is migrated before the
/// others start (`ready`); at shutdown, the last of the relay's parts, it lets go of this relay's
/// claims on outbox entries, so another relay takes them at once, then closes the pool. SQLite is
/// ready when opened.
private final class StoreService: Service {
    let postgres: PostgresStore?
    let ready: OneShot<Void>
    let logger: Logger

    init(postgres: PostgresStore?, ready: OneShot<Void>, logger: Logger) {
        self.postgres = postgres
        self.ready = ready
        self.logger = logger
    }

    func run() async throws {
        guard let postgres else {
            ready.set(())
            try? await gracefulShutdown()
            return
        }
        try await withThrowingTaskGroup { group in
            group.addTask { try await postgres.run() }
            try await postgres.migrate()
            ready.set(())
            try? await gracefulShutdown()
            // Everything that used the pool has stopped: what this relay still held is any relay's now.
            do {
                try await postgres.releaseClaims()
            } catch {
                logger.warning(
                    "could not release this relay's outbox claims; other relays take them when the lease runs out",
                    metadata: [LogKeys.error: "\(error)"]
                )
            }
            group.cancelAll()
        }
    }
}

/// The broker connection as a part of the relay: `AMQPClient`'s own service, and a look for queues an
/// earlier version left holding messages once it is up.
private struct BrokerService: Service {
    let app: RelayApp

    func run() async throws {
        // Best effort, beside the connection: a passive declare of a missing queue closes the admin
        // channel, and nothing about it may hold the relay's shutdown.
        let app = self.app
        let warning = Task { await app.warnAboutLegacyWorkQueues() }
        defer { warning.cancel() }
        try await app.amqp.run()
    }
}

/// Runs `service` once `signal` is set; shut down or cancelled before that, it never starts.
private struct StartsWhenReady: Service {
    let signal: OneShot<Void>
    let service: any Service

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await signal.value() }
        } catch is CancellationError {
            return
        }
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        try await service.run()
    }
}
