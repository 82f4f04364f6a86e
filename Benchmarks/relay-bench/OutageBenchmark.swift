import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import ServiceLifecycle
import Synchronization

/// A CRM outage under steady traffic: whole calls at `callsPerSecond`, a CRM answering in
/// `crmLatency` that is fully down (503 at once) from `outageStart` for `outageLength`. Reports phase-1
/// latency over the whole stream and during the outage, the CRM's request rate during the outage and
/// at its busiest second in the minute after (against its steady rate before), and how many calls
/// were enriched and how many ended as `enrichmentFailed`.
struct OutageBenchmark {
    var callsPerSecond: Int
    var outageStart: Duration
    var outageLength: Duration
    var after: Duration
    var crmLatency: Duration
    var port: Int
    var repositoryRoot: String
    var logger: Logger

    struct Figures {
        var phaseOneP50: Duration
        var phaseOneP99: Duration
        var phaseOneP99DuringOutage: Duration
        var steadyCRMRate: Double
        var crmRateDuringOutage: Double
        var busiestCRMSecondAfter: Int
        var calls: Int
        var enriched: Int
        var enrichmentFailed: Int
    }

    func run() async throws -> Figures {
        let prefix = "bench-\(UUID().uuidString.prefix(8))."
        let latency = crmLatency
        let down = Mutex(false)
        let crm = try await SimulatedPlatform.start(logger: logger) { _, request in
            guard request.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") else { return nil }
            if down.withLock({ $0 }) { return ScriptedResponse(status: 503, body: []) }
            return knownCallerSearchAnswer(request, latency: latency)
        }
        let configuration = benchmarkConfiguration(prefix: prefix, port: port, repositoryRoot: repositoryRoot)
        defer { removeBenchmarkStore(configuration.store.path) }
        let app = try RelayApp(
            configuration: configuration,
            endpoints: .init(
                platformBaseURL: crm.baseURL,
                postCallWebhookURL: crm.postCallWebhookURL,
                crmLookupURLTemplate: crm.crmLookupURLTemplate
            ),
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let running = Task { try await group.run() }
        try await app.amqp.waitUntilConnected(timeout: .seconds(15))
        let publisher = AMQPClient(
            configuration: AMQPConfiguration(port: port, connectionName: "bench"),
            topology: nil,
            logger: logger
        )
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(15))
        /// Dead letters: recorded in the relay's store, or still on the queue it drains.
        func deadLetterCount() async throws -> Int {
            let recorded =
                try await (app.store as? SQLiteInteractionStore)?.deadLetterSummary(DeadLetterQuery()).total ?? 0
            return recorded + (try await publisher.messageCount(queue: app.names.deadLettersQueue))
        }

        let total = outageStart + outageLength + after
        let calls = Int(total.totalSeconds * Double(callsPerSecond))
        let schedule = EnrichmentBenchmark.schedule(calls: calls, mix: .calls, callsPerSecond: callsPerSecond)
        let exchange = app.names.eventsExchange
        let started = ContinuousClock.now
        let outageBegins = started + outageStart
        let outageEnds = outageBegins + outageLength
        let switching = Task {
            try await Task.sleep(until: outageBegins, clock: .continuous)
            down.withLock { $0 = true }
            try await Task.sleep(until: outageEnds, clock: .continuous)
            down.withLock { $0 = false }
        }
        let steady = try await EnrichmentBenchmark.publishSteadily(schedule, rate: callsPerSecond * 3, using: publisher)
        { event in
            OutboundMessage(exchange: exchange, routingKey: event.type, body: Array(event.body.utf8))
        }
        _ = try? await switching.value
        // Every call's phase-1 update, and its enrichment or its dead letter, or two quiet minutes.
        var lastCount = -1
        var quietSince = ContinuousClock.now
        while ContinuousClock.now - quietSince < .seconds(120) {
            let keys = Set(crm.customerUpdates.compactMap(\.idempotencyKey))
            let failed = try await deadLetterCount()
            if keys.count(where: { $0.hasPrefix("enrichment:") }) + failed >= calls, keys.count >= calls { break }
            if keys.count != lastCount {
                lastCount = keys.count
                quietSince = .now
            }
            try await Task.sleep(for: .milliseconds(200))
        }

        let requests = crm.server.requests
        let sentAt = steady.startsPublishedAt
        var firstLinked: [String: ContinuousClock.Instant] = [:]
        var enriched: Set<String> = []
        for request in requests where request.method == "PUT" {
            guard let key = request.header("idempotency-key"), let colon = key.firstIndex(of: ":") else { continue }
            let eventId = String(key[key.index(after: colon)...])
            if key.hasPrefix("enrichment:") { enriched.insert(eventId) }
            firstLinked[eventId] = min(firstLinked[eventId] ?? request.receivedAt, request.receivedAt)
        }
        let phaseOne = firstLinked.compactMap { eventId, at in sentAt[eventId].map { (sent: $0, latency: at - $0) } }
        let all = phaseOne.map(\.latency).sorted()
        let duringOutage = phaseOne.filter { $0.sent >= outageBegins && $0.sent < outageEnds }.map(\.latency).sorted()
        let searches = requests.filter { $0.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") }.map(\.receivedAt)
        let before = searches.filter { $0 < outageBegins && $0 >= started + .seconds(2) }.count
        let during = searches.filter { $0 >= outageBegins && $0 < outageEnds }.count
        var perSecondAfter: [Int: Int] = [:]
        for at in searches where at >= outageEnds && at < outageEnds + .seconds(60) {
            perSecondAfter[Int((at - outageEnds).totalSeconds), default: 0] += 1
        }
        let failed = try await deadLetterCount()

        await group.triggerGracefulShutdown()
        _ = try? await running.value
        let topology = try Topology.load(contentsOf: configuration.amqp.topologyFile).prefixed(prefix)
        for queue in topology.queues { try? await publisher.deleteQueue(queue.name) }
        for exchange in topology.exchanges { try? await publisher.deleteExchange(exchange.name) }
        await publisher.shutdown()
        await crm.stop()
        func percentile(_ sorted: [Duration], _ p: Int) -> Duration {
            sorted.isEmpty ? .zero : sorted[min(sorted.count - 1, sorted.count * p / 100)]
        }
        return Figures(
            phaseOneP50: percentile(all, 50),
            phaseOneP99: percentile(all, 99),
            phaseOneP99DuringOutage: percentile(duringOutage, 99),
            steadyCRMRate: Double(before) / max(0.001, (outageStart - .seconds(2)).totalSeconds),
            crmRateDuringOutage: Double(during) / outageLength.totalSeconds,
            busiestCRMSecondAfter: perSecondAfter.values.max() ?? 0,
            calls: calls,
            enriched: enriched.count,
            enrichmentFailed: failed
        )
    }
}
