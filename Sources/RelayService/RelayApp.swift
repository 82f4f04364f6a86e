public import Logging
import Foundation
public import RelayAMQP
import RelayCore
public import RelayHTTP
public import RelayStore
public import ServiceLifecycle

/// The relay wired together from its configuration: broker client, store, HTTP client, and the three
/// services around the core (event pipeline, delivery worker, timers). `run()` runs them until
/// graceful shutdown, then closes the clients.
public final class RelayApp: Service {
    public let configuration: RelayConfiguration
    public let names: RelayNames
    public let amqp: AMQPClient
    public let http: CurlHTTPClient
    public let store: any InteractionStore
    public let pipeline: EventPipeline
    public let deliveries: DeliveryWorker
    public let timers: TimerService

    /// Where outbound requests go when the configuration names no real platform or CRM.
    public struct Endpoints: Sendable {
        public var platformBaseURL: String
        public var postCallWebhookURL: String

        public init(platformBaseURL: String, postCallWebhookURL: String) {
            self.platformBaseURL = platformBaseURL
            self.postCallWebhookURL = postCallWebhookURL
        }
    }

    public convenience init(configuration: RelayConfiguration, endpoints: Endpoints, logger: Logger) throws(ConfigurationError) {
        try self.init(
            configuration: configuration, amqpConfiguration: configuration.amqp.connection, endpoints: endpoints,
            logger: logger)
    }

    /// - Parameter amqpConfiguration: the connection settings, when they need more than the configuration
    ///   file offers (tests shorten the reconnection backoff).
    public init(
        configuration: RelayConfiguration, amqpConfiguration: AMQPConfiguration, endpoints: Endpoints, logger: Logger
    ) throws(ConfigurationError) {
        guard let key = configuration.identity.phoneHashKey else {
            throw ConfigurationError(
                key: "identity.phoneHashKey",
                "is not set: set RELAY_IDENTITY_PHONE_HASH_KEY or RELAY_IDENTITY_PHONE_HASH_KEY_FILE")
        }
        guard let hasher = PhoneHasher(key: Array(key.utf8)) else {
            throw ConfigurationError(key: "identity.phoneHashKey", "is too short")
        }
        var signer: WebhookSigner?
        if let secret = configuration.webhook.signingSecret {
            guard let parsed = WebhookSigner(secret: secret) else {
                throw ConfigurationError(key: "webhook.signingSecret", "is not whsec_ followed by base64 of at least 24 bytes")
            }
            signer = parsed
        } else if !configuration.crm.postCallWebhookURL.isEmpty {
            throw ConfigurationError(
                key: "webhook.signingSecret",
                "is required with crm.postCallWebhookUrl: set RELAY_WEBHOOK_SIGNING_SECRET or RELAY_WEBHOOK_SIGNING_SECRET_FILE")
        }
        let topology: Topology
        do {
            topology = try Topology.load(contentsOf: configuration.amqp.topologyFile, virtualHost: configuration.amqp.virtualHost)
                .prefixed(configuration.amqp.namePrefix)
        } catch {
            throw ConfigurationError(key: "amqp.topologyFile", error.message)
        }
        let store: SQLiteInteractionStore
        do {
            store = try SQLiteInteractionStore(path: configuration.store.path)
        } catch {
            throw ConfigurationError(key: "store.path", "cannot open the store: \(error)")
        }
        let names = RelayNames(prefix: configuration.amqp.namePrefix)
        let amqp = AMQPClient(configuration: amqpConfiguration, topology: topology, logger: logger)
        let http = CurlHTTPClient(logger: logger)
        let correlator = CallCorrelator(settings: configuration.correlation.settings, linking: PhaseOneLinking(hasher: hasher, defaultRegion: configuration.identity.defaultRegion))
        self.configuration = configuration
        self.names = names
        self.amqp = amqp
        self.http = http
        self.store = store
        self.pipeline = EventPipeline(
            amqp: amqp, store: store, names: names, decoder: PlatformEventDecoder(limits: configuration.input.limits),
            correlator: correlator, prefetch: configuration.amqp.prefetch, logger: logger)
        self.deliveries = DeliveryWorker(
            amqp: amqp, http: http, names: names,
            delayQueues: DelayQueues(topology: topology, deliveryRoutingKey: names.deliveryRoutingKey),
            targets: .init(
                platformBaseURL: endpoints.platformBaseURL, postCallWebhookURL: endpoints.postCallWebhookURL,
                webhookSigner: signer),
            policy: configuration.delivery.retryPolicy, requestTimeout: configuration.platform.requestTimeout,
            inProcessRetryLimit: configuration.delivery.inProcessRetryLimit,
            concurrency: configuration.delivery.concurrency, logger: logger)
        self.timers = TimerService(
            store: store, correlator: correlator,
            outbox: OutboxPublisher(amqp: amqp, store: store, names: names, logger: logger),
            scanInterval: configuration.correlation.timerScanInterval,
            processedEventRetention: configuration.correlation.processedEventRetention, logger: logger)
    }

    public func run() async throws {
        amqp.start()
        defer { http.shutdown() }
        do {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await self.pipeline.run() }
                group.addTask { try await self.deliveries.run() }
                group.addTask { try await self.timers.run() }
            }
        } catch {
            await amqp.shutdown()
            throw error
        }
        await amqp.shutdown()
    }
}
