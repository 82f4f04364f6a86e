// relay-bench: the relay's end-to-end rate against the broker's own round-trip rate, measured in
// the same run on the same broker, so the ratio means something on a shared, noisy machine.
//
//   relay-bench [--messages N] [--runs R] [--prefetch P] [--window W] [--store sqlite|postgres|both]
//
// baseline: N persistent ~300-byte messages published with confirms (W unconfirmed at most) to a
//           quorum queue and consumed with manual acks (prefetch P), through rabbitmq-c.
// relay:    N callStarted events of the same size published the same way to platform.events; the
//           relay (prefetch P) correlates each, commits it with its customer update to its SQLite
//           store's outbox, acks it, and its dispatcher PUTs the update to a local HTTP server.
// Both times run from the first publish to the last message acked / the last PUT received.
// --store postgres runs the relay on PostgreSQL (RELAY_TEST_POSTGRES_URL, a schema of its own per run);
// --store both runs it on each store in every run, beside the same baseline, and adds the PostgreSQL
// server's own CPU per event to the relay's.

import ArgumentParser
import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayPostgres
import RelayService
import RelaySimulator
import ServiceLifecycle

struct Options: ParsableCommand {
    // A command for its name in the help; only its options are parsed (`parseOrExit`), nothing is run.
    static let configuration = CommandConfiguration(
        commandName: "relay-bench",
        abstract: "The relay's rates, each against a baseline measured in the same run on the same broker."
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case throughput, enrichment, lookup, contacts, outage
        case deadLetters = "dead-letters"
    }

    enum StoreChoice: String, ExpressibleByArgument, CaseIterable {
        case sqlite, postgres, both
    }

    @Option(help: "What to measure.") var mode: Mode = .throughput
    @Option(help: "The relay's store, or both one after the other in every run (throughput).")
    var store: StoreChoice = .sqlite
    @Option(help: "Enrichment: every event a call start (starts), or start, end and wrap-up per call (calls).")
    var mix: EnrichmentBenchmark.Mix = .starts
    @Option(help: "Messages (events, calls, records) per run.") var messages = 20_000
    @Option(help: "Runs; medians are taken over them.") var runs = 3
    /// The events consumer's prefetch: 64 for `throughput` (the baseline's too), else the relay's default.
    @Option(name: .customLong("prefetch"), help: "The consumer's prefetch (throughput: 64; else the relay's default).")
    var prefetchGiven: Int?
    @Option(help: "Unconfirmed publishes at most.") var window = 1_000
    @Option(help: "Distinct callers (lookup, contacts).") var callers = 1_000
    @Option(help: "Events published per second (enrichment, outage).") var rate = 2_000
    @Option(name: .customLong("crm-latency-ms"), help: "The simulated CRM's answer time.") var crmLatencyMs = 100
    @Option(help: "Requests in flight at most.") var concurrency = 64
    @Option(
        name: .customLong("lookup-slots"),
        help: "Enrichment: CRM lookups in flight at most (default: --concurrency)."
    )
    var lookupSlots: Int?
    @Option(name: .customLong("outage-seconds"), help: "Outage: the CRM is down this long (seconds).")
    var outageSeconds = 60
    @Option(name: .customLong("outage-start"), help: "Outage: seconds after the first call the CRM goes down.")
    var outageStartSeconds = 10
    @Option(name: .customLong("after"), help: "Outage: seconds watched after the CRM is back.") var afterSeconds = 60
    @Option(help: "Dead letters: how many of the records carry a 70 KB payload.") var large = 5_000

    var prefetch: Int { prefetchGiven ?? 64 }
    var port: Int { Int(ProcessInfo.processInfo.environment["RELAY_BROKER_PORT"] ?? "") ?? 5672 }
    var repositoryRoot: String {
        ProcessInfo.processInfo.environment["RELAY_REPO_ROOT"] ?? FileManager.default.currentDirectoryPath
    }
    var stores: [BenchmarkStore] {
        switch store {
        case .sqlite: [.sqlite]
        case .postgres: [.postgres]
        case .both: [.sqlite, .postgres]
        }
    }

    func validate() throws {
        guard messages > 0, runs > 0, prefetch > 0, window > 0 else {
            throw ValidationError("--messages, --runs, --prefetch and --window must be positive")
        }
    }
}

extension EnrichmentBenchmark.Mix: ExpressibleByArgument {}

enum BenchmarkStore: String {
    case sqlite = "SQLite"
    case postgres = "PostgreSQL"
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("relay-bench: \(message)\n".utf8))
    exit(2)
}

let options = Options.parseOrExit()
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .error
    return handler
}
let logger = Logger(label: "relay-bench")

func amqpConfiguration() -> AMQPConfiguration {
    AMQPConfiguration(port: options.port, connectionName: "relay-bench")
}

func connectedClient(topology: Topology?) async throws -> AMQPClient {
    let client = AMQPClient(configuration: amqpConfiguration(), topology: topology, logger: logger)
    client.start()
    try await client.waitUntilConnected(timeout: .seconds(15))
    return client
}

/// Publishes with at most `window` publishes awaiting their confirm at once.
func publishAll(
    _ count: Int,
    using client: AMQPClient,
    message: @escaping @Sendable (Int) -> OutboundMessage
)
    async throws
{
    try await withThrowingTaskGroup(of: Void.self) { group in
        var inFlight = 0
        for index in 0..<count {
            if inFlight >= options.window {
                try await group.next()
                inFlight -= 1
            }
            group.addTask { try await client.publish(message(index)) }
            inFlight += 1
        }
        try await group.waitForAll()
    }
}

func padded(_ prefix: String, to size: Int) -> [UInt8] {
    Array((prefix + String(repeating: "x", count: max(0, size - prefix.utf8.count))).utf8)
}

/// Messages per second through the broker alone: publish with confirms, consume with acks.
func brokerRoundTrip() async throws -> Double {
    let queue = "bench-\(UUID().uuidString.prefix(8)).raw"
    let topology = Topology(
        exchanges: [],
        queues: [.init(name: queue, durable: true, autoDelete: false, arguments: ["x-queue-type": .string("quorum")])],
        bindings: []
    )
    let consumer = try await connectedClient(topology: topology)
    let publisher = try await connectedClient(topology: nil)
    let deliveries = consumer.consume(queue: queue, prefetch: UInt16(clamping: options.prefetch))
    let started = ContinuousClock.now
    async let consumed: Void = {
        var received = 0
        for await delivery in deliveries {
            consumer.ack(delivery)
            received += 1
            if received == options.messages { break }
        }
    }()
    try await publishAll(options.messages, using: publisher) { index in
        OutboundMessage(exchange: "", routingKey: queue, body: padded("{\"index\":\(index),\"pad\":\"", to: 300))
    }
    await consumed
    let elapsed = ContinuousClock.now - started
    try? await consumer.deleteQueue(queue)
    await consumer.shutdown()
    await publisher.shutdown()
    return Double(options.messages) / elapsed.totalSeconds
}

/// What one run of the relay end to end measured.
struct RelayRun {
    var eventsPerSecond: Double
    /// The relay process's own CPU time per event, user and system, from /proc.
    var cpuPerEvent: Duration?
    var peakResidentBytes: Int?
    /// The PostgreSQL server's processes, over the same events (nil on SQLite).
    var databaseCPUPerEvent: Duration?
}

/// The server the relay's PostgreSQL runs use: what `scripts/postgres url` prints.
let postgresURL: PostgresURL? = {
    guard options.stores.contains(.postgres) else { return nil }
    guard let text = ProcessInfo.processInfo.environment["RELAY_TEST_POSTGRES_URL"],
        let url = try? PostgresURL(parsing: text)
    else {
        fail("--store postgres needs RELAY_TEST_POSTGRES_URL (scripts/bench sets it from scripts/postgres url)")
    }
    return url
}()

/// Events per second through the whole relay: event in, customer-update PUT out. The relay is
/// `identity-relay run` (the release build beside this one) in a process of its own, so its CPU time
/// and memory are its own, apart from the load generator and the simulated platform here.
func relayEndToEnd(on store: BenchmarkStore) async throws -> RelayRun {
    let runID = UUID().uuidString.prefix(8).lowercased()
    let prefix = "bench-\(runID)."
    let storePath = FileManager.default.temporaryDirectory.appendingPathComponent("relay-bench-\(prefix)sqlite").path
    let schema = "bench_\(runID)"
    defer {
        switch store {
        case .sqlite: removeBenchmarkStore(storePath)
        case .postgres: dropBenchmarkSchema(schema)
        }
    }
    let platform = try await SimulatedPlatform.start(logger: logger)
    let relayBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent()
        .appendingPathComponent("identity-relay")
    let relay = Process()
    relay.executableURL = relayBinary
    relay.arguments = ["run"]
    var environment = ProcessInfo.processInfo.environment.filter {
        !$0.key.hasPrefix("RELAY_") || $0.key.hasPrefix("RELAY_BROKER_")
    }
    environment["RELAY_CONFIG"] = options.repositoryRoot + "/Config/relay.yaml"
    environment["RELAY_AMQP_PORT"] = String(options.port)
    environment["RELAY_AMQP_PREFETCH"] = String(options.prefetch)
    environment["RELAY_AMQP_NAME_PREFIX"] = prefix
    environment["RELAY_AMQP_TOPOLOGY_FILE"] = options.repositoryRoot + "/topology/definitions.json"
    switch store {
    case .sqlite:
        environment["RELAY_STORE_PATH"] = storePath
    case .postgres:
        guard let postgresURL else { fail("no PostgreSQL URL") }
        environment["RELAY_STORE_URL"] = postgresURL.withoutPassword
        environment["RELAY_STORE_PASSWORD"] = postgresURL.password ?? ""
        environment["RELAY_STORE_SCHEMA"] = schema
    }
    environment["RELAY_PLATFORM_BASE_URL"] = platform.baseURL
    environment["RELAY_CRM_POST_CALL_WEBHOOK_URL"] = platform.postCallWebhookURL
    environment["RELAY_WEBHOOK_SIGNING_SECRET"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    environment["RELAY_IDENTITY_PHONE_HASH_KEY"] = "benchmark-key-0123456789abcdef0123456789"
    environment["RELAY_PRIVACY_ENCRYPTION_KEY"] = "YmVuY2htYXJrLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM="
    environment["RELAY_ADMIN_ENABLED"] = "false"
    environment["RELAY_LOG_LEVEL"] = "error"
    relay.environment = environment
    relay.currentDirectoryURL = URL(fileURLWithPath: options.repositoryRoot)
    try relay.run()
    let publisher = try await connectedClient(topology: nil)
    // Consuming once its input queue exists and the relay had a moment to subscribe.
    let eventsQueue = prefix + "relay.events"
    let deadline = ContinuousClock.now + .seconds(30)
    while (try? await publisher.messageCount(queue: eventsQueue)) == nil {
        guard relay.isRunning, ContinuousClock.now < deadline else {
            fail("the relay did not start (\(relayBinary.path))")
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    try await Task.sleep(for: .seconds(1))

    let pid = relay.processIdentifier
    let cpuBefore = ProcessUse.cpuSeconds(pid: pid)
    let databaseCPUBefore = store == .postgres ? ProcessUse.postgresServerCPUSeconds() : nil
    let exchange = prefix + "platform.events"
    let started = ContinuousClock.now
    try await publishAll(options.messages, using: publisher) { index in
        let number = String(format: "+1555%07d", index % 10_000_000)
        let body =
            #"{"eventId":"bench-\#(index)","type":"callStarted","callId":"bench-call-\#(index)","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"\#(number)","toNumber":"+15550190000","direction":"inbound","queueId":"queue-benchmark","userId":"user-benchmark","pad":""#
        return OutboundMessage(
            exchange: exchange,
            routingKey: "callStarted",
            body: padded(body, to: 299) + Array("\"}".utf8)
        )
    }
    _ = try await platform.waitForCustomerUpdates(count: options.messages, timeout: .seconds(600))
    let elapsed = ContinuousClock.now - started
    let cpuAfter = ProcessUse.cpuSeconds(pid: pid)
    let databaseCPUAfter = store == .postgres ? ProcessUse.postgresServerCPUSeconds() : nil
    let peak = ProcessUse.peakResidentBytes(pid: pid)

    relay.terminate()
    relay.waitUntilExit()
    let topology = try Topology.load(contentsOf: options.repositoryRoot + "/topology/definitions.json").prefixed(prefix)
    for queue in topology.queues { try? await publisher.deleteQueue(queue.name) }
    for exchange in topology.exchanges { try? await publisher.deleteExchange(exchange.name) }
    await publisher.shutdown()
    await platform.stop()
    var cpuPerEvent: Duration?
    if let cpuBefore, let cpuAfter { cpuPerEvent = .seconds((cpuAfter - cpuBefore) / Double(options.messages)) }
    var databaseCPUPerEvent: Duration?
    if let databaseCPUBefore, let databaseCPUAfter {
        databaseCPUPerEvent = .seconds((databaseCPUAfter - databaseCPUBefore) / Double(options.messages))
    }
    return RelayRun(
        eventsPerSecond: Double(options.messages) / elapsed.totalSeconds,
        cpuPerEvent: cpuPerEvent,
        peakResidentBytes: peak,
        databaseCPUPerEvent: databaseCPUPerEvent
    )
}

/// Drops a PostgreSQL run's schema, through scripts/postgres (best effort: a leftover schema is only space).
func dropBenchmarkSchema(_ schema: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [
        options.repositoryRoot + "/scripts/postgres", "psql", "-q", "-c", "DROP SCHEMA IF EXISTS \(schema) CASCADE",
    ]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try? process.run()
    process.waitUntilExit()
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// "; CPU: …" with the median of each share, or nothing when /proc could not be read.
func medianCPU(_ samples: [CPUShares?]) -> String {
    let shares = samples.compactMap { $0 }
    guard !shares.isEmpty else { return "" }
    let typical = CPUShares(
        broker: median(shares.map(\.broker)),
        benchProcess: median(shares.map(\.benchProcess)),
        idle: median(shares.map(\.idle))
    )
    return "; \(typical.description)"
}

func format(_ rate: Double) -> String { String(format: "%8.0f/s", rate) }

if options.mode == .deadLetters {
    let count = options.messages
    let large = min(options.large, count)
    print(
        "relay-bench dead-letters: \(count) records (\(large) with 70 KB payloads) drained by the relay, then read; \(options.runs) runs"
    )
    var figures: [DeadLetterBenchmark.Figures] = []
    do {
        for run in 1...options.runs {
            let result = try await DeadLetterBenchmark(
                count: count,
                large: large,
                port: options.port,
                repositoryRoot: options.repositoryRoot,
                logger: logger
            ).run()
            figures.append(result)
            func mib(_ bytes: Int?) -> String { bytes.map { "\($0 / 1_048_576) MiB" } ?? "?" }
            print(
                "run \(run): drained in \(String(format: "%.1f", result.drainSeconds)) s; API page of 5 p50 \(milliseconds(result.pageP50)) "
                    + "p99 \(milliseconds(result.pageP99)) (healthz p50 \(milliseconds(result.healthP50))); relay RSS after 20 reads "
                    + "\(mib(result.residentAfterReads)), peak \(mib(result.peakResident)); CLI list \(String(format: "%.2f", result.listSeconds)) s, "
                    + "dry runs \(String(format: "%.2f", result.dryRunSeconds)) s (deliveries list \(String(format: "%.2f", result.baselineCLISeconds)) s)"
            )
        }
    } catch {
        fail("\(error)")
    }
    print(
        "median: drained in \(String(format: "%.1f", median(figures.map(\.drainSeconds)))) s; API page p50 "
            + "\(String(format: "%.1f", median(figures.map { $0.pageP50.totalSeconds * 1000 }))) ms; CLI list "
            + "\(String(format: "%.2f", median(figures.map(\.listSeconds)))) s against \(String(format: "%.2f", median(figures.map(\.baselineCLISeconds)))) s"
    )
    exit(0)
}

if options.mode == .outage {
    let callsPerSecond = options.rate == 2_000 ? 50 : options.rate
    print(
        "relay-bench outage: whole calls at \(callsPerSecond)/s, the CRM (answering in \(options.crmLatencyMs) ms) down for "
            + "\(options.outageSeconds) s from \(options.outageStartSeconds) s, watched \(options.afterSeconds) s after; \(options.runs) runs"
    )
    var figures: [OutageBenchmark.Figures] = []
    do {
        for run in 1...options.runs {
            let result = try await OutageBenchmark(
                callsPerSecond: callsPerSecond,
                outageStart: .seconds(options.outageStartSeconds),
                outageLength: .seconds(options.outageSeconds),
                after: .seconds(options.afterSeconds),
                crmLatency: .milliseconds(options.crmLatencyMs),
                port: options.port,
                repositoryRoot: options.repositoryRoot,
                logger: logger
            ).run()
            figures.append(result)
            print(
                "run \(run): phase-1 p50 \(milliseconds(result.phaseOneP50)) p99 \(milliseconds(result.phaseOneP99)), during the outage p99 "
                    + "\(milliseconds(result.phaseOneP99DuringOutage)); CRM requests/s steady \(String(format: "%.1f", result.steadyCRMRate)), "
                    + "during the outage \(String(format: "%.2f", result.crmRateDuringOutage)), busiest second in the minute after "
                    + "\(result.busiestCRMSecondAfter); enriched \(result.enriched) of \(result.calls) calls, dead letters \(result.enrichmentFailed)"
            )
        }
    } catch {
        fail("\(error)")
    }
    func ms(_ values: [Duration]) -> String { String(format: "%.1f ms", median(values.map { $0.totalSeconds * 1000 })) }
    print(
        "median: phase-1 p99 \(ms(figures.map(\.phaseOneP99))), during the outage \(ms(figures.map(\.phaseOneP99DuringOutage))); "
            + "CRM requests/s steady \(String(format: "%.1f", median(figures.map(\.steadyCRMRate)))), during the outage "
            + "\(String(format: "%.2f", median(figures.map(\.crmRateDuringOutage)))), busiest second after "
            + "\(median(figures.map { Double($0.busiestCRMSecondAfter) })); dead letters \(median(figures.map { Double($0.enrichmentFailed) }))"
    )
    exit(0)
}

if options.mode == .enrichment {
    print(
        "relay-bench enrichment: \(options.messages) calls "
            + (options.mix == .calls ? "(\(options.messages * 3) events: start, end, wrap-up)" : "(starts only)")
            + " at \(options.rate) events/s per run, \(options.runs) runs, CRM latency \(options.crmLatencyMs) ms, "
            + "delivery concurrency \(options.concurrency), lookup slots \(options.lookupSlots ?? options.concurrency)"
    )
    var figures: [EnrichmentBenchmark.Figures] = []
    var floors: [BrokerPathBenchmark.Figures] = []
    do {
        for run in 1...options.runs {
            let floor = try await BrokerPathBenchmark(
                schedule: EnrichmentBenchmark.schedule(
                    calls: options.messages,
                    mix: options.mix,
                    callsPerSecond: max(1, options.rate / (options.mix == .calls ? 3 : 1))
                ),
                rate: options.rate,
                prefetch: UInt16(clamping: options.prefetchGiven ?? RelayConfiguration().amqp.prefetch),
                port: options.port,
                logger: logger
            ).run()
            floors.append(floor)
            print(
                "run \(run): broker path alone: start published → received by the consumer p50 \(milliseconds(floor.p50)) p99 "
                    + "\(milliseconds(floor.p99))" + (floor.cpu.map { "; \($0.description)" } ?? "")
            )
            let result = try await EnrichmentBenchmark(
                calls: options.messages,
                rate: options.rate,
                mix: options.mix,
                crmLatency: .milliseconds(options.crmLatencyMs),
                concurrency: options.concurrency,
                lookupSlots: options.lookupSlots,
                prefetch: options.prefetchGiven,
                port: options.port,
                repositoryRoot: options.repositoryRoot,
                logger: logger
            ).run()
            figures.append(result)
            print(
                "run \(run): published at \(String(format: "%.0f", result.achievedRate))/s; phase-1 latency p50 "
                    + "\(milliseconds(result.phaseOneP50)) p99 \(milliseconds(result.phaseOneP99)); "
                    + "enrichments \(format(result.enrichmentsPerSecond)); CRM requests in flight at most \(result.maxCRMInFlight); "
                    + "phase-1 updates overtaken by phase 2 \(result.phaseOneSuperseded), sent twice \(result.repeatedUpdates)"
                    + (options.mix == .calls ? "; post-call webhooks \(format(result.webhooksPerSecond))" : "")
                    + (result.cpu.map { "; \($0.description)" } ?? "")
            )
        }
    } catch {
        fail("\(error)")
    }
    let p50 = median(figures.map { $0.phaseOneP50.totalSeconds * 1000 })
    let p99 = median(figures.map { $0.phaseOneP99.totalSeconds * 1000 })
    let floorP50 = median(floors.map { $0.p50.totalSeconds * 1000 })
    let floorP99 = median(floors.map { $0.p99.totalSeconds * 1000 })
    print(
        "median: broker path alone p50 \(String(format: "%.1f", floorP50)) ms, p99 \(String(format: "%.1f", floorP99)) ms"
            + medianCPU(floors.map(\.cpu))
    )
    print(
        "median: phase-1 p50 \(String(format: "%.1f", p50)) ms, p99 \(String(format: "%.1f", p99)) ms; enrichments "
            + "\(format(median(figures.map(\.enrichmentsPerSecond)))); CRM in flight at most "
            + "\(figures.map(\.maxCRMInFlight).max() ?? 0)" + medianCPU(figures.map(\.cpu))
    )
    exit(0)
}

if options.mode == .lookup {
    print(
        "relay-bench lookup: \(options.messages) requests per run from \(options.concurrency) concurrent clients, "
            + "\(options.callers) callers known locally, \(options.runs) runs; baseline GET /healthz on the same server"
    )
    var lookups: [LookupBenchmark.Figures] = []
    var healths: [LookupBenchmark.Figures] = []
    do {
        for run in 1...options.runs {
            let (lookup, health) = try await LookupBenchmark(
                requests: options.messages,
                concurrency: options.concurrency,
                callers: options.callers,
                port: options.port,
                repositoryRoot: options.repositoryRoot,
                logger: logger
            ).run()
            lookups.append(lookup)
            healths.append(health)
            print(
                "run \(run): lookup p50 \(milliseconds(lookup.p50)) p99 \(milliseconds(lookup.p99)) \(format(lookup.perSecond))   "
                    + "healthz p50 \(milliseconds(health.p50)) p99 \(milliseconds(health.p99)) \(format(health.perSecond))   "
                    + "rate ratio \(String(format: "%.3f", lookup.perSecond / health.perSecond))"
            )
        }
    } catch {
        fail("\(error)")
    }
    func ms(_ figures: [LookupBenchmark.Figures], _ value: (LookupBenchmark.Figures) -> Duration) -> String {
        String(format: "%.2f ms", median(figures.map { value($0).totalSeconds * 1000 }))
    }
    print(
        "median: lookup p50 \(ms(lookups, \.p50)) p99 \(ms(lookups, \.p99)) \(format(median(lookups.map(\.perSecond))))   "
            + "healthz p50 \(ms(healths, \.p50)) p99 \(ms(healths, \.p99)) \(format(median(healths.map(\.perSecond))))   "
            + "rate ratio \(String(format: "%.3f", median(zip(lookups, healths).map { $0.perSecond / $1.perSecond })))"
    )
    exit(0)
}

func milliseconds(_ duration: Duration) -> String { String(format: "%.1f ms", duration.totalSeconds * 1000) }

if options.mode == .contacts {
    // --messages is the number of imported rows here (default 20,000 is more than the 10,000 of the issue).
    print(
        "relay-bench contacts: \(options.messages) imported rows per run, \(options.runs) runs; journey of 1,000 interactions"
    )
    do {
        for run in 1...options.runs {
            let figures = try await ContactsBenchmark(rows: options.messages).run()
            func ms(_ duration: Duration) -> String { String(format: "%.2f ms", duration.totalSeconds * 1000) }
            print(
                "run \(run): import \(format(figures.importRowsPerSecond)) rows (raw sealed-row insert baseline "
                    + "\(format(figures.rawInsertsPerSecond)), ratio \(String(format: "%.2f", figures.importRowsPerSecond / figures.rawInsertsPerSecond)))"
            )
            print(
                "       journey (1,000 interactions) p50 \(ms(figures.journeyP50)) p99 \(ms(figures.journeyP99)) "
                    + "(baseline: one interaction by id p50 \(ms(figures.pointReadP50)) p99 \(ms(figures.pointReadP99)))"
            )
            print(
                "       start events committed: with contact link \(format(figures.appliesPerSecondWith)), without "
                    + "\(format(figures.appliesPerSecondWithout)), ratio \(String(format: "%.2f", figures.appliesPerSecondWith / figures.appliesPerSecondWithout)); "
                    + "capture (parse, hash, seal) \(String(format: "%.1f", figures.capturePerEvent.totalSeconds * 1e6)) µs per event"
            )
        }
    } catch {
        fail("\(error)")
    }
    exit(0)
}

print(
    "relay-bench: \(options.messages) messages per run, \(options.runs) runs, prefetch \(options.prefetch), publish window \(options.window), broker 127.0.0.1:\(options.port)"
)
var baselines: [Double] = []
var relays: [BenchmarkStore: [RelayRun]] = [:]
func microseconds(_ duration: Duration?) -> String {
    duration.map { String(format: "%.0f µs", $0.totalSeconds * 1e6) } ?? "n/a"
}
func mebibytes(_ bytes: Int?) -> String { bytes.map { String(format: "%.0f MiB", Double($0) / 1_048_576) } ?? "n/a" }
func describe(_ relay: RelayRun, against baseline: Double) -> String {
    "\(format(relay.eventsPerSecond)) ratio \(String(format: "%.3f", relay.eventsPerSecond / baseline)); relay CPU per event "
        + microseconds(relay.cpuPerEvent)
        + (relay.databaseCPUPerEvent.map { ", PostgreSQL server CPU per event \(microseconds($0))" } ?? "")
        + ", peak RSS \(mebibytes(relay.peakResidentBytes))"
}
do {
    for run in 1...options.runs {
        // Alternating them within each run exposes each to the same moment of machine noise.
        let baseline = try await brokerRoundTrip()
        baselines.append(baseline)
        var line = "run \(run): broker round trip \(format(baseline))"
        for store in options.stores {
            let relay = try await relayEndToEnd(on: store)
            relays[store, default: []].append(relay)
            line += "\n       relay on \(store.rawValue) end to end " + describe(relay, against: baseline)
        }
        print(line)
    }
} catch {
    fail("\(error)")
}
for store in options.stores {
    let runs = relays[store] ?? []
    let ratios = zip(runs, baselines).map { $0.eventsPerSecond / $1 }
    let cpuPerEvent = runs.compactMap(\.cpuPerEvent).map(\.totalSeconds)
    let databaseCPU = runs.compactMap(\.databaseCPUPerEvent).map(\.totalSeconds)
    print(
        "median, relay on \(store.rawValue): broker round trip \(format(median(baselines)))   relay end to end "
            + "\(format(median(runs.map(\.eventsPerSecond))))   ratio \(String(format: "%.3f", median(ratios))) (median of per-run "
            + "ratios); relay CPU per event \(cpuPerEvent.isEmpty ? "n/a" : microseconds(.seconds(median(cpuPerEvent))))"
            + (databaseCPU.isEmpty
                ? "" : ", PostgreSQL server CPU per event \(microseconds(.seconds(median(databaseCPU))))")
            + ", peak RSS at most \(mebibytes(runs.compactMap(\.peakResidentBytes).max()))"
    )
}
