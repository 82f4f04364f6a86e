import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import ServiceLifecycle

/// Phase 1 and phase 2 under load: events published at a steady `rate` for callers the CRM knows,
/// against a CRM answering in `crmLatency`. Reports phase-1 latency (start published → phase-1 PUT
/// received; for a call whose phase-1 update phase 2 overtook, and which is then never sent, start
/// published → phase-2 PUT received) p50/p99, enrichments per second, and the most CRM requests in
/// flight at once.
struct EnrichmentBenchmark {
    /// What the stream holds.
    enum Mix: String, CaseIterable {
        /// Only `callStarted` events: every event is a phase-1 update and an enrichment.
        case starts
        /// Whole calls: each call's `callStarted`, then about a second later its `callEnded` and
        /// `wrapUp` (which completes it: a signed post-call webhook). A third of the events are starts.
        case calls
    }

    /// Calls; with `Mix.calls` the stream holds three times as many events.
    var calls: Int
    /// Events per second, whatever their type.
    var rate: Int
    var mix: Mix = .starts
    var crmLatency: Duration
    var concurrency: Int
    /// Lookups in flight at most; nil: `concurrency`. Few slots hold phase 2 back, which shows what
    /// phase 1 costs on its own.
    var lookupSlots: Int? = nil
    /// The events consumer's prefetch; nil: the relay's default.
    var prefetch: Int? = nil
    var port: Int
    var repositoryRoot: String
    var logger: Logger

    struct Figures {
        var phaseOneP50: Duration
        var phaseOneP99: Duration
        var enrichmentsPerSecond: Double
        var maxCRMInFlight: Int
        var achievedRate: Double
        /// Phase-1 updates not sent because phase 2 had linked the call first.
        var phaseOneSuperseded: Int
        /// Customer updates the platform received more than once under one key (allowed, absorbed by
        /// the key; without a fault there should be none).
        var repeatedUpdates: Int
        /// Post-call webhooks received per second (`Mix.calls` only).
        var webhooksPerSecond: Double
        /// While the stream was published.
        var cpu: CPUShares?
    }

    func run() async throws -> Figures {
        let prefix = "bench-\(UUID().uuidString.prefix(8))."
        let latency = crmLatency
        // Every caller is known to the CRM, which answers each search after `latency`.
        let slow = try await SimulatedPlatform.start(logger: logger) { _, request in
            knownCallerSearchAnswer(request, latency: latency)
        }
        var configuration = benchmarkConfiguration(prefix: prefix, port: port, repositoryRoot: repositoryRoot)
        configuration.delivery.concurrency = concurrency
        if let prefetch { configuration.amqp.prefetch = prefetch }
        configuration.delivery.enrichmentConcurrency = lookupSlots ?? concurrency
        defer { removeBenchmarkStore(configuration.store.path) }
        let app = try RelayApp(
            configuration: configuration,
            endpoints: .init(
                platformBaseURL: slow.baseURL,
                postCallWebhookURL: slow.postCallWebhookURL,
                crmLookupURLTemplate: slow.crmLookupURLTemplate
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

        let schedule = Self.schedule(calls: calls, mix: mix, callsPerSecond: max(1, rate / (mix == .calls ? 3 : 1)))
        let steady = try await Self.publishSteadily(schedule, rate: rate, using: publisher) { event in
            OutboundMessage(exchange: prefix + "platform.events", routingKey: event.type, body: Array(event.body.utf8))
        }
        let started = steady.started
        let publishedIn = steady.duration
        let cpu = steady.cpu
        // Every call gets its phase-2 update; its phase-1 update is dropped when phase 2 overtook it.
        try await waitForUpdates(on: slow, events: calls)
        if mix == .calls { _ = try await slow.waitForWebhooks(count: calls, timeout: .seconds(600)) }
        let finished = ContinuousClock.now

        let sentAt = steady.startsPublishedAt
        let requests = slow.server.requests
        // Per call, when the platform first heard of it: its phase-1 update, or its phase-2 update when
        // that overtook phase 1 (which is then not sent).
        var firstLinked: [String: ContinuousClock.Instant] = [:]
        var phaseOneKeys: [String] = []
        var allKeys: [String] = []
        var phaseTwoTimes: [ContinuousClock.Instant] = []
        for request in requests where request.method == "PUT" {
            guard let key = request.header("idempotency-key"), let colon = key.firstIndex(of: ":") else { continue }
            let eventId = String(key[key.index(after: colon)...])
            allKeys.append(key)
            if key.hasPrefix("customer-update:") { phaseOneKeys.append(key) }
            if key.hasPrefix("enrichment:") { phaseTwoTimes.append(request.receivedAt) }
            firstLinked[eventId] = min(firstLinked[eventId] ?? request.receivedAt, request.receivedAt)
        }
        let phaseOne = firstLinked.compactMap { eventId, at in sentAt[eventId].map { at - $0 } }.sorted()
        let searches = requests.filter { $0.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") }.map(\.receivedAt)
            .sorted()
        // In flight at a search's arrival: the searches that arrived within the latency before it.
        var maxInFlight = 0
        var windowStart = 0
        for (index, arrival) in searches.enumerated() {
            while arrival - searches[windowStart] >= latency { windowStart += 1 }
            maxInFlight = max(maxInFlight, index - windowStart + 1)
        }
        let firstEnrichment = phaseTwoTimes.min() ?? started
        let enrichmentSpan = (phaseTwoTimes.max() ?? finished) - firstEnrichment
        let webhookTimes = requests.filter { $0.method == "POST" && $0.path == SimulatedPlatform.postCallWebhookPath }
            .map(\.receivedAt)
        let webhookSpan = (webhookTimes.max() ?? finished) - (webhookTimes.min() ?? started)

        await group.triggerGracefulShutdown()
        _ = try? await running.value
        let topology = try Topology.load(contentsOf: configuration.amqp.topologyFile).prefixed(prefix)
        for queue in topology.queues { try? await publisher.deleteQueue(queue.name) }
        for exchange in topology.exchanges { try? await publisher.deleteExchange(exchange.name) }
        await publisher.shutdown()
        await slow.stop()
        return Figures(
            phaseOneP50: phaseOne[phaseOne.count / 2],
            phaseOneP99: phaseOne[min(phaseOne.count - 1, phaseOne.count * 99 / 100)],
            enrichmentsPerSecond: Double(phaseTwoTimes.count) / max(enrichmentSpan.totalSeconds, 0.001),
            maxCRMInFlight: maxInFlight,
            achievedRate: Double(schedule.count) / publishedIn.totalSeconds,
            phaseOneSuperseded: calls - Set(phaseOneKeys).count,
            repeatedUpdates: allKeys.count - Set(allKeys).count,
            webhooksPerSecond: webhookTimes.isEmpty
                ? 0 : Double(webhookTimes.count) / max(webhookSpan.totalSeconds, 0.001),
            cpu: cpu
        )
    }

    /// What `publishSteadily` measured.
    struct SteadyPublishing {
        var started: ContinuousClock.Instant
        var duration: Duration
        /// When each start's publish began, by event id.
        var startsPublishedAt: [String: ContinuousClock.Instant]
        var cpu: CPUShares?
    }

    /// Publishes `schedule` at `rate` events per second, each when due rather than when the last one
    /// was confirmed, so a slow broker or relay does not slow the stream down.
    static func publishSteadily(
        _ schedule: [ScheduledEvent],
        rate: Int,
        using publisher: AMQPClient,
        message: @escaping @Sendable (ScheduledEvent) -> OutboundMessage
    ) async throws -> SteadyPublishing {
        let published = Locked<[String: ContinuousClock.Instant]>([:])
        let cpuMark = CPUShares.mark()
        let started = ContinuousClock.now
        let interval = Duration.seconds(1.0 / Double(rate))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for (index, event) in schedule.enumerated() {
                let due = started + interval * index
                if due > .now { try await Task.sleep(until: due, clock: .continuous) }
                tasks.addTask {
                    if event.type == "callStarted" { published.withLock { $0[event.eventId] = .now } }
                    try await publisher.publish(message(event))
                }
            }
            try await tasks.waitForAll()
        }
        let duration = ContinuousClock.now - started
        return SteadyPublishing(
            started: started,
            duration: duration,
            startsPublishedAt: published.withLock { $0 },
            cpu: CPUShares.since(cpuMark)
        )
    }

    struct ScheduledEvent: Sendable {
        var type: String
        var eventId: String
        var body: String
    }

    /// The stream, in publishing order. With `Mix.calls`, a call's end and wrap-up follow its start by
    /// about a second (`callsPerSecond` calls later), interleaved with later calls' starts.
    static func schedule(calls: Int, mix: Mix, callsPerSecond: Int) -> [ScheduledEvent] {
        func start(_ call: Int) -> ScheduledEvent {
            let eventId = "enrich-\(call)"
            let body =
                #"{"eventId":"\#(eventId)","type":"callStarted","callId":"enrich-call-\#(call)","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"\#(String(format: "+1555%07d", call))","toNumber":"+15550190000","direction":"inbound"}"#
            return ScheduledEvent(type: "callStarted", eventId: eventId, body: body)
        }
        guard mix == .calls else { return (0..<calls).map(start) }
        func end(_ call: Int) -> ScheduledEvent {
            let body =
                #"{"eventId":"enrich-end-\#(call)","type":"callEnded","callId":"enrich-call-\#(call)","occurredAt":"2026-11-24T10:04:00Z","disconnectType":"client"}"#
            return ScheduledEvent(type: "callEnded", eventId: "enrich-end-\(call)", body: body)
        }
        func wrapUp(_ call: Int) -> ScheduledEvent {
            let body =
                #"{"eventId":"enrich-wrap-\#(call)","type":"wrapUp","callId":"enrich-call-\#(call)","occurredAt":"2026-11-24T10:05:00Z","wrapUpCode":"RESOLVED","agentId":"agent-7"}"#
            return ScheduledEvent(type: "wrapUp", eventId: "enrich-wrap-\(call)", body: body)
        }
        var events: [ScheduledEvent] = []
        events.reserveCapacity(calls * 3)
        for slot in 0..<(calls + callsPerSecond) {
            if slot < calls { events.append(start(slot)) }
            let ending = slot - callsPerSecond
            if ending >= 0 { events += [end(ending), wrapUp(ending)] }
        }
        return events
    }

    /// Until every call's phase-2 update arrived, and then every phase-1 update still to come.
    private func waitForUpdates(on platform: SimulatedPlatform, events: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(600)
        var lastCount = -1
        var unchangedSince = ContinuousClock.now
        while ContinuousClock.now < deadline {
            // By key: a repeat (the same update sent twice) must not count as another call's.
            let keys = Set(platform.customerUpdates.compactMap(\.idempotencyKey))
            let enriched = keys.count { $0.hasPrefix("enrichment:") }
            if keys.count == events * 2 { return }
            if keys.count != lastCount {
                lastCount = keys.count
                unchangedSince = .now
            } else if enriched == events && ContinuousClock.now - unchangedSince > .seconds(2) {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkFailure("expected \(events) enrichments within 600 s, the platform has \(lastCount) updates")
    }
}

/// A mutex-guarded value the benchmark's tasks share.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
