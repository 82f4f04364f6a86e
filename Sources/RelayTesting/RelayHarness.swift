import Foundation
public import Logging
public import Prometheus
public import RelayAMQP
public import RelayAdmin
public import RelayCore
import RelayPostgres
public import RelayService
public import RelaySimulator
public import RelayStore
import ServiceLifecycle
import Synchronization
public import Tracing

/// A whole relay for an integration test: its own names on the shared test broker, a simulated
/// platform on loopback, and the relay itself running as a service until `stop()`.
public final class RelayHarness: Sendable {
    public let app: RelayApp
    public let platform: SimulatedPlatform
    public let publisher: AMQPClient
    public let topology: Topology
    public let hashKey: String
    /// Where the relay's metrics go; the admin API exports it.
    public let registry: PrometheusCollectorRegistry
    /// The admin API, when started with `admin: true`.
    public let admin: AdminServer?
    private let group: ServiceGroup
    private let runTask: Task<Void, any Error>
    private let state = Mutex(State())

    private struct State {
        /// The one stop, however many callers ask for it (the test's own, and `stoppingAll`'s).
        var stopping: Task<Void, Never>?
        /// Started again with `reuse:`: its queues and store belong to the successor.
        var isHandedOver = false
        /// Started with `joining:`: the queues and store are the other relay's to clean up.
        var isGuest = false
    }

    public var names: RelayNames { app.names }

    /// - Parameters:
    ///   - reuse: another harness whose broker names and store this one takes over, as a restarted
    ///     relay would (stop that one first).
    ///   - enrichment: whether the relay enriches through the simulator's CRM and ERP lookups.
    ///   - joining: a running relay whose broker names and PostgreSQL store this one shares, as a second
    ///     relay of one deployment would (both consume `relay.events`); the first one cleans up.
    ///   - store: the store it runs on; the one RELAY_TEST_STORE names when nil (SQLite by default). A test
    ///     that reaches into the SQLite file itself names `.sqlite`.
    public static func start(
        platformBehaviour: SimulatedPlatform.Behaviour? = nil,
        enrichment: Bool = false,
        store: StoreKind? = nil,
        admin: Bool = false,
        adjust: (inout RelayConfiguration) -> Void = { _ in },
        reuse previous: RelayHarness? = nil,
        joining host: RelayHarness? = nil,
        logger: Logger = Logger(label: "test.relay"),
        tracer: any Tracer = InstrumentationSystem.tracer
    ) async throws -> RelayHarness {
        let shared = previous ?? host
        let (topology, prefix) =
            try shared.map { ($0.topology, $0.app.configuration.amqp.namePrefix) }
            ?? TestBroker.isolatedTopology()
        var configuration = RelayConfiguration()
        configuration.amqp.port = TestBroker.port
        configuration.amqp.heartbeatSeconds = 10
        configuration.amqp.namePrefix = prefix
        configuration.amqp.topologyFile = TestBroker.repositoryRoot + "/topology/definitions.json"
        configuration.identity.phoneHashKey = "integration-test-key-0123456789abcdef"
        configuration.privacy.encryptionKey = RelayHarness.testEncryptionKey
        configuration.webhook.signingSecret = testWebhookSecret
        configuration.store.path =
            shared?.app.configuration.store.path
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("relay-test-\(prefix)sqlite").path
        if shared.map({ $0.app.configuration.store.url != nil }) ?? ((store ?? .forIntegrationTests) == .postgres) {
            try TestPostgres.configure(
                &configuration.store,
                schema: shared?.app.configuration.store.schema ?? "relay_\(prefix)"
            )
            // Dozens of test relays share one server: a few connections each are plenty.
            configuration.store.maxConnections = 4
        }
        configuration.correlation.timerScanInterval = .milliseconds(50)
        configuration.delivery.baseDelay = .milliseconds(20)
        configuration.delivery.maxDelay = .milliseconds(200)
        configuration.delivery.maxAttempts = 4
        // Generous: on a loaded machine a 2 s timeout fired on answers that were on their way, and the
        // retries showed up as extra requests. Tests about timeouts set their own.
        configuration.platform.requestTimeout = .seconds(15)
        configuration.crm.lookup.timeout = .seconds(15)
        configuration.erp.lookup.timeout = .seconds(15)
        configuration.admin.port = 0
        configuration.admin.token = RelayHarness.testAdminToken
        adjust(&configuration)
        var amqpConfiguration = configuration.amqp.connection
        amqpConfiguration.reconnectBaseDelay = .milliseconds(50)
        amqpConfiguration.reconnectMaxDelay = .milliseconds(500)

        let platform = try await SimulatedPlatform.start(logger: logger, behaviour: platformBehaviour)
        let registry = PrometheusCollectorRegistry()
        let app = try RelayApp(
            configuration: configuration,
            amqpConfiguration: amqpConfiguration,
            endpoints: .init(
                platformBaseURL: platform.baseURL,
                postCallWebhookURL: platform.postCallWebhookURL,
                crmLookupURLTemplate: enrichment ? platform.crmLookupURLTemplate : "",
                crmContactURLTemplate: enrichment ? platform.crmContactURLTemplate : "",
                erpLookupURLTemplate: enrichment ? platform.erpLookupURLTemplate : "",
                crmEmailLookupURLTemplate: enrichment ? platform.crmEmailLookupURLTemplate : "",
                crmMessagingLookupURLTemplate: enrichment ? platform.crmMessagingLookupURLTemplate : "",
                crmNameLookupURLTemplate: enrichment ? platform.crmNameLookupURLTemplate : ""
            ),
            metrics: RelayMetrics(factory: AdminServer.metricsFactory(registry)),
            logger: logger,
            tracer: tracer
        )
        let adminServer =
            admin
            ? AdminServer(app: app, settings: .init(configuration.admin), registry: registry, logger: logger) : nil
        let group = ServiceGroup(
            configuration: .init(services: [app] + (adminServer.map { [$0] } ?? []), logger: logger)
        )
        let runTask = Task { try await group.run() }
        do {
            try await app.amqp.waitUntilConnected(timeout: .seconds(15))
        } catch {
            await group.triggerGracefulShutdown()
            await platform.stop()
            throw TestBrokerUnavailable(port: TestBroker.port, underlying: error)
        }
        let publisher = try await TestBroker.connectedClient(topology: nil, virtualHost: configuration.amqp.virtualHost)
        let harness = RelayHarness(
            app: app,
            platform: platform,
            publisher: publisher,
            topology: topology,
            hashKey: configuration.identity.phoneHashKey!,
            registry: registry,
            admin: adminServer,
            group: group,
            runTask: runTask
        )
        // The successor owns the queues and the store now; the test still shuts the old publisher down.
        previous?.state.withLock { $0.isHandedOver = true }
        if host != nil { harness.state.withLock { $0.isGuest = true } }
        startedInScope?.append(harness)
        return harness
    }

    private init(
        app: RelayApp,
        platform: SimulatedPlatform,
        publisher: AMQPClient,
        topology: Topology,
        hashKey: String,
        registry: PrometheusCollectorRegistry,
        admin: AdminServer?,
        group: ServiceGroup,
        runTask: Task<Void, any Error>
    ) {
        self.registry = registry
        self.admin = admin
        self.app = app
        self.platform = platform
        self.publisher = publisher
        self.topology = topology
        self.hashKey = hashKey
        self.group = group
        self.runTask = runTask
    }

    /// Publishes raw bodies to the platform exchange, as the platform would, with confirms.
    public func publish(_ bodies: [[UInt8]], routingKey: String = "callStarted") async throws {
        for body in bodies {
            try await publisher.publish(
                OutboundMessage(exchange: names.eventsExchange, routingKey: routingKey, body: body)
            )
        }
    }

    /// The PHONE: id the relay must derive for a number, computed here from the same key.
    public func expectedPhoneID(_ number: String) -> String {
        PhoneHasher(key: Array(hashKey.utf8))!.externalID(for: PhoneNumber(normalizing: number)!).description
    }

    /// The relay's store opened a second time, beside the relay or after it stopped (a stopped relay's
    /// PostgreSQL pool is closed): what a tool, or a crash's leftovers, would find.
    public func detachedStore() async throws -> any RelayDatabase {
        try await app.configuration.openStore(logger: Logger(label: "test.store")).readyForCommand()
    }

    /// The environment that points a CLI tool run as a process at this relay's store.
    public var storeEnvironment: [String: String] {
        let store = app.configuration.store
        var environment = ["RELAY_STORE_PATH": store.path]
        if let url = store.url {
            environment["RELAY_STORE_URL"] = url
            environment["RELAY_STORE_PASSWORD"] = store.password
            environment["RELAY_STORE_SCHEMA"] = store.schema
        }
        return environment
    }

    /// Everything the store holds, as bytes an operator could read off the disk or a backup: the SQLite
    /// file with its WAL, or a `pg_dump` of the relay's schema. Personal data must not be in it in clear.
    public func storeSnapshot() async throws -> [(place: String, bytes: [UInt8])] {
        let store = app.configuration.store
        guard store.url != nil else {
            return [store.path, store.path + "-wal", store.path + "-shm"].compactMap { file in
                FileManager.default.contents(atPath: file).map { (file, Array($0)) }
            }
        }
        let url = try TestPostgres.url()
        let dump = ChildProcess()
        dump.executableURL = URL(fileURLWithPath: "/usr/bin/pg_dump")
        dump.arguments = [
            "--host", url.host, "--port", String(url.port), "--username", url.username, "--schema", store.schema,
            "--no-owner", url.database,
        ]
        dump.environment = ["PGPASSWORD": url.password ?? "", "PATH": "/usr/bin:/bin"]
        let output = Pipe()
        dump.standardOutput = output
        try dump.run()
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        dump.waitUntilExit()
        guard dump.terminationStatus == 0 else {
            throw TestPostgresError("pg_dump of schema \(store.schema) exited \(dump.terminationStatus)")
        }
        return [("pg_dump of schema \(store.schema)", Array(bytes))]
    }

    /// Whether `bytes` (a part of `storeSnapshot()`) hold `text` in clear: as it is, or as pg_dump writes
    /// a BYTEA column holding it (hex digits).
    public static func holdsInClear(_ bytes: [UInt8], _ text: String) -> Bool {
        let haystack = Data(bytes)
        let hex = text.utf8.map {
            String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
        }
        .joined()
        return haystack.range(of: Data(text.utf8)) != nil || haystack.range(of: Data(hex.utf8)) != nil
    }

    /// The dead-letter tools' view of this relay: its queue, drained into its store.
    public var deadLetterQueue: DeadLetterQueue {
        var queue = DeadLetterQueue(
            configuration: app.configuration.amqp.connection,
            names: names,
            logger: Logger(label: "test.dead-letters")
        )
        queue.store = app.store
        queue.cipher = app.cipher
        return queue
    }

    /// Every open dead letter's record as published, once at least `count` are recorded (or the timeout
    /// passed): the queue is drained into the store first, as the tools do. The timeout only bounds a
    /// failing test: on a loaded CI machine with PostgreSQL, a record once took longer than 15 s from
    /// the last attempt to the store.
    public func deadLetters(atLeast count: Int, timeout: Duration = .seconds(40)) async throws -> [DeadLetterRecord] {
        let deadline = ContinuousClock.now + timeout
        var letters: [DeadLetter] = []
        while true {
            letters = try await deadLetterQueue.list(DeadLetterFilter(), whole: true).letters
            if letters.count >= count || ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return letters.compactMap(\.record)
    }

    /// Open dead letters of this relay, after draining its queue into its store: 0 means nothing was
    /// dead-lettered, whether the record is still on the queue or already recorded.
    public func deadLetterCount() async throws -> Int {
        try await deadLetterQueue.summary(DeadLetterFilter()).total
    }

    /// Stops the relay and cleans up its queues and store; a second call waits for the first.
    public func stop() async {
        let stopping = state.withLock { state in
            if let stopping = state.stopping { return stopping }
            let isGuest = state.isGuest
            let stopping = Task {
                await self.stopRelayOnly()
                if isGuest {
                    await self.publisher.shutdown()
                    return
                }
                await TestBroker.tearDown(self.topology, using: self.publisher)
                await self.publisher.shutdown()
                try? FileManager.default.removeItem(atPath: self.app.configuration.store.path)
                if self.app.configuration.store.url != nil {
                    await TestPostgres.dropSchema(self.app.configuration.store.schema)
                }
            }
            state.stopping = stopping
            return stopping
        }
        await stopping.value
    }

    /// Runs `body` (a test), then stops every harness it started and waits for them. A test's
    /// `defer { Task { await relay.stop() } }` may not have finished when the test process exits, which
    /// left its queues on the broker.
    public static func stoppingAll(_ body: @Sendable () async throws -> Void) async throws {
        let started = StartedHarnesses()
        do {
            try await $startedInScope.withValue(started) { try await body() }
        } catch {
            await started.stopAll()
            throw error
        }
        await started.stopAll()
    }

    @TaskLocal static var startedInScope: StartedHarnesses?

    final class StartedHarnesses: Sendable {
        private let harnesses = Mutex<[RelayHarness]>([])

        func append(_ harness: RelayHarness) { harnesses.withLock { $0.append(harness) } }

        /// Newest first: a successor before the harness it took over.
        func stopAll() async {
            for harness in harnesses.withLock({ $0 }).reversed() where !harness.state.withLock({ $0.isHandedOver }) {
                await harness.stop()
            }
        }
    }

    /// Stops the relay (as a shutdown or crash would) but keeps its queues and store for a successor.
    public func stopRelayOnly() async {
        await group.triggerGracefulShutdown()
        _ = try? await runTask.value
        await platform.stop()
    }
}

/// The signing secret of the harness's relay, for tests that verify webhooks.
public let testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

extension RelayHarness {
    /// The bearer token of the harness's admin API.
    public static let testAdminToken = "admin-test-token-0123456789"

    /// "http://127.0.0.1:PORT" of the admin API (started with `admin: true`).
    public func adminBaseURL() async throws -> String {
        guard let admin else { fatalError("the harness was started without admin: true") }
        return "http://127.0.0.1:\(try await admin.boundPort())"
    }

    /// The tests' AES key of personal data at rest (base64 of 32 bytes).
    public static let testEncryptionKey = "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy0hIT0="
}

/// A `callEnded` body per the contract.
public func callEndedBody(eventId: String, callId: String, at time: String = "2026-11-24T10:05:00Z") -> [UInt8] {
    Array(
        #"{"eventId":"\#(eventId)","type":"callEnded","callId":"\#(callId)","occurredAt":"\#(time)","disconnectType":"client"}"#
            .utf8
    )
}

/// A `wrapUp` body per the contract.
public func wrapUpBody(eventId: String, callId: String, at time: String = "2026-11-24T10:05:45Z") -> [UInt8] {
    Array(
        #"{"eventId":"\#(eventId)","type":"wrapUp","callId":"\#(callId)","occurredAt":"\#(time)","wrapUpCode":"RESOLVED","agentId":"agent-7"}"#
            .utf8
    )
}

/// A `callStarted` body per the contract.
public func callStartedBody(
    eventId: String,
    callId: String,
    from: String = "+15550100001",
    to: String = "+15550190000",
    direction: String = "inbound",
    customerId: String? = nil
) -> [UInt8] {
    let customer = customerId.map { #","customerId":"\#($0)""# } ?? ""
    return Array(
        #"{"eventId":"\#(eventId)","type":"callStarted","callId":"\#(callId)","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"\#(from)","toNumber":"\#(to)","direction":"\#(direction)"\#(customer)}"#
            .utf8
    )
}
