import Crypto
import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
public import Prometheus
import RelayCore
public import RelayService
import RelayStore
public import ServiceLifecycle
import Synchronization

/// The operators' HTTP API, a service beside the relay: health and readiness, Prometheus metrics,
/// the dead letters, and the platform's synchronous CTI lookup and context update.
///
/// Everything but `/healthz` and `/readyz` wants `Authorization: Bearer <admin.token>`; without a
/// configured token those endpoints answer 401, so an API that was never given a token is closed.
public final class AdminServer: Service {
    public struct Settings: Sendable {
        public var host: String
        /// 0: any free port; read it back from `boundPort()`.
        public var port: Int
        public var token: String?
        public var maxBodyBytes: Int

        public init(host: String, port: Int, token: String?, maxBodyBytes: Int) {
            self.host = host
            self.port = port
            self.token = token
            self.maxBodyBytes = maxBodyBytes
        }

        public init(_ configuration: RelayConfiguration.Admin) {
            self.init(
                host: configuration.host,
                port: configuration.port,
                token: configuration.token,
                maxBodyBytes: configuration.maxBodyBytes
            )
        }
    }

    let app: RelayApp
    let settings: Settings
    let registry: PrometheusCollectorRegistry
    let deadLetters: DeadLetterQueue
    let logger: Logger
    let rates = RateHistory()
    /// The bound port (or why there is none), from the server's start-up callback to whoever waits for it.
    private let bound = OneShot<Result<Int, any Error>>()

    public init(app: RelayApp, settings: Settings, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.app = app
        self.settings = settings
        self.registry = registry
        var deadLetters = DeadLetterQueue(
            configuration: app.configuration.amqp.connection,
            names: app.names,
            logger: logger
        )
        // Sealed payloads open for the operator, and replay republishes the original event.
        deadLetters.cipher = app.cipher
        // The record of dead letters, and the outbox failed deliveries and lookups are replayed into.
        deadLetters.store = app.store
        // The relay's own drain moves the queue into the store; a request reads the store only.
        deadLetters.drainsFirst = false
        self.deadLetters = deadLetters
        self.logger = logger
    }

    /// The factory the relay's metrics go through, into `registry`: the lookup's histogram gets buckets
    /// fine enough for its 300 ms budget and its local answers under a millisecond.
    public static func metricsFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[RelayMetrics.Name.lookupDuration] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(200),
            .milliseconds(300), .milliseconds(500), .seconds(1),
        ]
        return factory
    }

    /// The port the server listens on, once it does (waits for it).
    public func boundPort() async throws -> Int { try await bound.value().get() }

    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        AdminRoutes(
            app: app,
            settings: settings,
            registry: registry,
            deadLetters: deadLetters,
            sessions: ConsoleSessions(),
            rates: rates,
            jobs: ConsoleJobs(),
            logger: logger
        ).register(on: router)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { [bound, logger, settings] channel in
                let port = channel.localAddress?.port ?? settings.port
                bound.set(.success(port))
                logger.info("admin API listening", metadata: [LogKeys.adminEndpoint: "\(settings.host):\(port)"])
            },
            logger: logger
        )
        do {
            // The console's chart samples the relay's totals while the server runs.
            try await withThrowingTaskGroup { group in
                group.addTask { [app, rates] in
                    await rates.sampleUntilCancelled {
                        (app.pipeline.acknowledgedCount, app.dispatcher.finishedSendCount)
                    }
                }
                try await application.runService()
                group.cancelAll()
            }
        } catch {
            bound.set(.failure(error))
            // Most often the port is taken: say which setting to change.
            throw AdminServerError(
                description:
                    "the admin API cannot listen on \(settings.host):\(settings.port) (admin.host, admin.port): "
                    + "\(error); choose a free port, 0 for any, or set admin.enabled to false"
            )
        }
    }
}

public struct AdminServerError: Error, CustomStringConvertible {
    public var description: String
}

/// `Authorization: Bearer <token>`, compared in constant time. A 401 says nothing more: no hint of
/// whether the header was missing, malformed or wrong.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: AdminToken

    init(token: String?) {
        self.token = AdminToken(token)
    }

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws
        -> Response
    {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            token.matches(header.dropFirst("Bearer ".count))
        else {
            return Self.unauthorized
        }
        return try await next(request, context)
    }

    static var unauthorized: Response {
        Response(
            status: .unauthorized,
            headers: [.wwwAuthenticate: "Bearer", .contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"error":"unauthorized"}"#))
        )
    }
}

/// The admin token, compared in constant time: by the API's bearer header and the console's login.
/// Without a configured token nothing matches, so an API never given one is closed.
struct AdminToken: Sendable {
    private let expected: [UInt8]?

    init(_ token: String?) {
        expected = token.map { Array(SHA256.hash(data: Array($0.utf8))) }
    }

    func matches(_ presented: some StringProtocol) -> Bool {
        guard let expected else { return false }
        return Self.sameDigest(Array(SHA256.hash(data: Array(presented.utf8))), expected)
    }

    /// Whether two secrets are equal, in time that says nothing about where they differ.
    static func same(_ presented: some StringProtocol, _ expected: some StringProtocol) -> Bool {
        sameDigest(Array(SHA256.hash(data: Array(presented.utf8))), Array(SHA256.hash(data: Array(expected.utf8))))
    }

    /// Hashing both sides makes the comparison length-independent; the loop never exits early.
    private static func sameDigest(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        var difference: UInt8 = 0
        for (a, b) in zip(left, right) { difference |= a ^ b }
        return difference == 0
    }
}
