import Foundation
import Logging
import Prometheus
import RelayAMQP
import RelayAdmin
import RelayCore
import RelayHTTP
import RelayService
import RelaySimulator
import ServiceLifecycle

/// The CTI lookup under concurrent load, for callers whose answer is known locally (the CRM answered
/// them once before the measurement). The baseline is `GET /healthz` on the same server, driven the
/// same way in the same run: the HTTP stack and the load generator with no lookup behind them.
struct LookupBenchmark {
    var requests: Int
    var concurrency: Int
    var callers: Int
    var port: Int
    var repositoryRoot: String
    var logger: Logger

    struct Figures {
        var p50: Duration
        var p99: Duration
        var perSecond: Double
    }

    func run() async throws -> (lookup: Figures, health: Figures) {
        let prefix = "bench-\(UUID().uuidString.prefix(8))."
        let crm = try await SimulatedPlatform.start(logger: logger)
        for index in 0..<callers {
            crm.addCRMContact(
                phone: Self.number(index),
                .init(contactId: "500\(100_000 + index)", name: "Caller \(index)", loyaltyTier: "Gold")
            )
        }
        var configuration = benchmarkConfiguration(prefix: prefix, port: port, repositoryRoot: repositoryRoot)
        configuration.admin.port = 0
        configuration.admin.token = "benchmark-admin-token-0123456789"
        defer { removeBenchmarkStore(configuration.store.path) }
        let registry = PrometheusCollectorRegistry()
        let app = try RelayApp(
            configuration: configuration,
            endpoints: .init(
                platformBaseURL: crm.baseURL,
                postCallWebhookURL: crm.postCallWebhookURL,
                crmLookupURLTemplate: crm.crmLookupURLTemplate
            ),
            metrics: RelayMetrics(factory: AdminServer.metricsFactory(registry)),
            logger: logger
        )
        let admin = AdminServer(app: app, settings: .init(configuration.admin), registry: registry, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app, admin], logger: logger))
        let running = Task { try await group.run() }
        defer {
            Task {
                await group.triggerGracefulShutdown()
                _ = try? await running.value
                await crm.stop()
            }
        }
        try await app.amqp.waitUntilConnected(timeout: .seconds(15))
        let base = "http://127.0.0.1:\(try await admin.boundPort())"
        let client = CurlHTTPClient(logger: logger)
        defer { client.shutdown() }
        let headers = [
            (name: "Authorization", value: "Bearer \(configuration.admin.token!)"),
            (name: "Content-Type", value: "application/json"),
        ]
        @Sendable func lookup(_ index: Int) -> HTTPRequest {
            HTTPRequest(
                method: "POST",
                url: base + "/api/v1/genesys/lookup",
                headers: headers,
                body: Array(
                    #"{"fromNumber":"\#(Self.number(index))","toNumber":"+15550190000","callId":"bench-\#(index)","type":"inbound"}"#
                        .utf8
                ),
                timeout: .seconds(5)
            )
        }
        // Every caller once, so the measured lookups are answered from what the relay already knows.
        for index in 0..<callers {
            let response = try await client.execute(lookup(index))
            guard response.status == 200, response.header("x-relay-answer-source") == "crm" else {
                throw BenchmarkFailure(
                    "priming lookup \(index) answered \(response.status) from \(response.header("x-relay-answer-source") ?? "?")"
                )
            }
        }
        let health = HTTPRequest(method: "GET", url: base + "/healthz", timeout: .seconds(5))
        // The baseline first warms the connections the lookups then reuse.
        let healthFigures = try await drive(client: client) { _ in health }
        let callers = self.callers
        let lookupFigures = try await drive(client: client) { lookup($0 % callers) }
        return (lookupFigures, healthFigures)
    }

    /// `requests` requests from `concurrency` workers, each waiting for its answer before the next.
    private func drive(
        client: CurlHTTPClient,
        request: @escaping @Sendable (Int) -> HTTPRequest
    ) async throws -> Figures {
        let started = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var mine: [Duration] = []
                    var index = worker
                    while index < requests {
                        let sent = ContinuousClock.now
                        let response = try await client.execute(request(index))
                        guard response.status == 200 else {
                            throw BenchmarkFailure("request \(index) answered \(response.status)")
                        }
                        mine.append(ContinuousClock.now - sent)
                        index += concurrency
                    }
                    return mine
                }
            }
            var all: [Duration] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        let elapsed = ContinuousClock.now - started
        return Figures(
            p50: latencies[latencies.count / 2],
            p99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
            perSecond: Double(latencies.count) / elapsed.totalSeconds
        )
    }

    static func number(_ index: Int) -> String { String(format: "+1555%07d", 2_000_000 + index) }
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
