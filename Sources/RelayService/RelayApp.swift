public import Logging
import Foundation
public import RelayAMQP
import RelayCore
public import RelayHTTP
public import ServiceLifecycle

/// The relay wired together from its configuration: broker client, HTTP client, pipeline.
/// `run()` consumes until graceful shutdown, then closes both clients.
public final class RelayApp: Service {
    public let configuration: RelayConfiguration
    public let names: RelayNames
    public let amqp: AMQPClient
    public let http: CurlHTTPClient
    public let pipeline: EventPipeline

    /// - Parameter platformBaseURL: where customer updates go; the configured one, or the simulator's.
    public convenience init(configuration: RelayConfiguration, platformBaseURL: String, logger: Logger)
        throws(ConfigurationError)
    {
        try self.init(
            configuration: configuration, amqpConfiguration: configuration.amqp.connection,
            platformBaseURL: platformBaseURL, logger: logger)
    }

    /// - Parameter amqpConfiguration: the connection settings, when they need more than the configuration
    ///   file offers (tests shorten the reconnection backoff).
    public init(
        configuration: RelayConfiguration, amqpConfiguration: AMQPConfiguration, platformBaseURL: String, logger: Logger
    ) throws(ConfigurationError) {
        guard let key = configuration.identity.phoneHashKey else {
            throw ConfigurationError(
                key: "identity.phoneHashKey",
                "is not set: set RELAY_IDENTITY_PHONE_HASH_KEY or RELAY_IDENTITY_PHONE_HASH_KEY_FILE")
        }
        guard let hasher = PhoneHasher(key: Array(key.utf8)) else {
            throw ConfigurationError(key: "identity.phoneHashKey", "is too short")
        }
        let topology: Topology
        do {
            topology = try Topology.load(contentsOf: configuration.amqp.topologyFile, virtualHost: configuration.amqp.virtualHost)
                .prefixed(configuration.amqp.namePrefix)
        } catch {
            throw ConfigurationError(key: "amqp.topologyFile", error.message)
        }
        self.configuration = configuration
        self.names = RelayNames(prefix: configuration.amqp.namePrefix)
        self.amqp = AMQPClient(configuration: amqpConfiguration, topology: topology, logger: logger)
        self.http = CurlHTTPClient(logger: logger)
        let sender = CustomerUpdateSender(
            http: http, baseURL: platformBaseURL, requestTimeout: configuration.platform.requestTimeout,
            policy: configuration.delivery.retryPolicy, logger: logger)
        self.pipeline = EventPipeline(
            amqp: amqp, names: names, decoder: PlatformEventDecoder(limits: configuration.input.limits),
            linking: PhaseOneLinking(hasher: hasher), sender: sender, prefetch: configuration.amqp.prefetch,
            logger: logger)
    }

    public func run() async throws {
        amqp.start()
        do {
            try await pipeline.run()
        } catch {
            await amqp.shutdown()
            http.shutdown()
            throw error
        }
        await amqp.shutdown()
        http.shutdown()
    }
}
