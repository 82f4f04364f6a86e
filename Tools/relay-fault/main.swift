// relay-fault: kills a relay with SIGKILL mid-stream, several times, takes the broker away once, and
// checks that nothing was lost and nothing was sent twice that its id does not absorb.
//
//   relay-fault [--calls N] [--kills K]                                   one relay, SQLite, one broker
//   relay-fault --relays 3 --store postgres --broker cluster [--calls N] [--kills K] [--lease S]
//   (either with [--upstream-delay-ms M]: how long the simulated platform takes to answer, 100 by default)
//
// The relays run as child processes (`identity-relay run`, next to this binary) against a simulated
// platform and CRM in this process, which outlive every kill. Each call is published as start, end
// and wrap-up. At the end every call must have produced exactly one post-call webhook id and every
// start its customer update; repeated deliveries are counted and must carry identical bodies.
//
// With one broker it is restarted (scripts/broker restart). With `--broker cluster` (scripts/cluster,
// 3 nodes) node 1, where the publisher and the first relay are connected, is stopped and later started
// again. With `--store postgres` (RELAY_TEST_POSTGRES_URL, as `scripts/postgres url` prints it) every
// relay shares one schema, and after each kill the entries the dead relay had claimed are noted: each
// must be delivered by another relay within the claim lease and 2 s.

import Foundation
import Logging
import PostgresNIO
import RelayAMQP
import RelayCore
import RelayPostgres
import RelaySimulator
import RelayStore
import Synchronization

enum StoreChoice: String {
    case sqlite, postgres
}

enum BrokerChoice: String {
    case single, cluster
}

struct Options {
    var calls = 300
    var kills = 3
    var relays = 1
    var store = StoreChoice.sqlite
    var broker = BrokerChoice.single
    /// Short, so a dead relay's work is taken up within seconds (the relay's default is 15 s).
    var leaseSeconds = 5
    /// How long the simulated platform and CRM take to answer: sends are in flight when a relay is
    /// killed, so it dies holding claimed work.
    var upstreamDelayMilliseconds = 100
    let environment = ProcessInfo.processInfo.environment
    var root: String { environment["RELAY_REPO_ROOT"] ?? FileManager.default.currentDirectoryPath }

    init(arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fail("\(flag) needs a value") }
            func number(atLeast minimum: Int) -> Int {
                guard let number = Int(value), number >= minimum else {
                    fail("\(flag) needs a whole number ≥ \(minimum)")
                }
                return number
            }
            switch flag {
            case "--calls": calls = number(atLeast: 1)
            case "--kills": kills = number(atLeast: 0)
            case "--relays": relays = number(atLeast: 1)
            case "--lease": leaseSeconds = number(atLeast: 3)
            case "--upstream-delay-ms": upstreamDelayMilliseconds = number(atLeast: 0)
            case "--store":
                guard let choice = StoreChoice(rawValue: value) else { fail("--store is sqlite or postgres") }
                store = choice
            case "--broker":
                guard let choice = BrokerChoice(rawValue: value) else { fail("--broker is single or cluster") }
                broker = choice
            default:
                fail(
                    "unknown option \(flag); known: --calls --kills --relays --store --broker --lease --upstream-delay-ms"
                )
            }
        }
        if relays > 1 && store == .sqlite { fail("several relays need a shared store: add --store postgres") }
    }

    /// The broker nodes' AMQP ports: one, or the cluster's three (scripts/cluster).
    var brokerPorts: [Int] {
        switch broker {
        case .single: [Int(environment["RELAY_BROKER_PORT"] ?? "") ?? 5672]
        case .cluster: (0..<3).map { (Int(environment["RELAY_CLUSTER_PORT"] ?? "") ?? 5681) + $0 }
        }
    }
}

/// The relays running now: a run that gives up kills them, rather than leaving them behind.
let runningRelays = Mutex<Set<Int32>>([])

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("relay-fault: \(message)\n".utf8))
    for pid in runningRelays.withLock({ $0 }) { kill(pid, SIGKILL) }
    exit(1)
}

func say(_ message: String) {
    print("relay-fault: \(message)")
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .error
    return handler
}
let logger = Logger(label: "relay-fault")
let options = Options(arguments: CommandLine.arguments)
let runID = UUID().uuidString.prefix(8).lowercased()
let prefix = "fault-\(runID)."
let storePath = FileManager.default.temporaryDirectory.appendingPathComponent("relay-fault-\(prefix)sqlite").path
/// The PostgreSQL schema every relay of this run shares.
let schema = "fault_\(runID)"
let postgresURL: PostgresURL? = try {
    guard options.store == .postgres else { return nil }
    guard let text = options.environment["RELAY_TEST_POSTGRES_URL"], !text.isEmpty else {
        fail("--store postgres needs RELAY_TEST_POSTGRES_URL (export RELAY_TEST_POSTGRES_URL=$(scripts/postgres url))")
    }
    return try PostgresURL(parsing: text)
}()
let relayBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("identity-relay").path
guard FileManager.default.isExecutableFile(atPath: relayBinary) else {
    fail("no identity-relay next to this binary (\(relayBinary)); build it first")
}

let simulator = try await SimulatedPlatform.start(logger: logger) { _, request in
    guard options.upstreamDelayMilliseconds > 0, request.method != "GET" else { return nil }
    return ScriptedResponse(
        status: request.method == "PUT" ? 200 : 204,
        delay: .milliseconds(options.upstreamDelayMilliseconds)
    )
}
let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/// One relay child process; `kill()` is SIGKILL: no graceful anything.
final class RelayProcess {
    let process = Process()
    /// The relay's name in its outbox claims: a new one for each start, as a restarted process has.
    let instanceName: String

    init(slot: Int, generation: Int) throws {
        instanceName = "fault-relay\(slot + 1)-start\(generation + 1)"
        process.executableURL = URL(fileURLWithPath: relayBinary)
        process.arguments = ["run"]
        var environment = ProcessInfo.processInfo.environment
        // Each relay starts on its own node of a cluster, and knows the others.
        let ports = options.brokerPorts
        let home = ports[slot % ports.count]
        environment["RELAY_AMQP_PORT"] = String(home)
        environment["RELAY_AMQP_FAILOVER_NODES"] = ports.filter { $0 != home }.map { "127.0.0.1:\($0)" }.joined(
            separator: ","
        )
        environment["RELAY_AMQP_NAME_PREFIX"] = prefix
        environment["RELAY_AMQP_TOPOLOGY_FILE"] = options.root + "/topology/definitions.json"
        if let postgresURL {
            environment["RELAY_STORE_URL"] = postgresURL.withoutPassword
            environment["RELAY_STORE_PASSWORD"] = postgresURL.password ?? ""
            environment["RELAY_STORE_SCHEMA"] = schema
            environment["RELAY_STORE_INSTANCE_NAME"] = instanceName
            environment["RELAY_STORE_CLAIM_LEASE_SECONDS"] = String(options.leaseSeconds)
        } else {
            environment["RELAY_STORE_PATH"] = storePath
        }
        environment["RELAY_PLATFORM_BASE_URL"] = simulator.baseURL
        environment["RELAY_CRM_POST_CALL_WEBHOOK_URL"] = simulator.postCallWebhookURL
        environment["RELAY_WEBHOOK_SIGNING_SECRET"] = secret
        environment["RELAY_IDENTITY_PHONE_HASH_KEY"] = "fault-test-key-0123456789abcdef0123456789"
        environment["RELAY_PRIVACY_ENCRYPTION_KEY"] = "ZmF1bHQtdGVzdC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU="
        // Several relays may run on this machine; the admin API takes any free port.
        environment["RELAY_ADMIN_PORT"] = "0"
        environment["RELAY_DELIVERY_BASE_DELAY_MS"] = "50"
        environment["RELAY_DELIVERY_MAX_DELAY_MS"] = "1000"
        environment["RELAY_LOG_LEVEL"] = "error"
        environment["RELAY_CONFIG"] = options.root + "/Config/relay.yaml"
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: options.root)
        try process.run()
        runningRelays.withLock { _ = $0.insert(process.processIdentifier) }
    }

    func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        runningRelays.withLock { _ = $0.remove(process.processIdentifier) }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        runningRelays.withLock { _ = $0.remove(process.processIdentifier) }
    }
}

func script(_ name: String, _ arguments: String...) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [options.root + "/scripts/" + name] + arguments
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { fail("scripts/\(name) \(arguments.joined(separator: " ")) failed") }
}

/// A client of the shared PostgreSQL server, for reading what the relays claimed (each query names
/// the run's schema); its pool runs until the end of the run.
let postgresClient: PostgresClient? = postgresURL.map { url in
    PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
}
let postgresPool = Task { await postgresClient?.run() }

func withPostgres<T>(_ body: (PostgresClient) async throws -> T) async throws -> T {
    guard let postgresClient else { fail("no PostgreSQL in this run") }
    return try await body(postgresClient)
}

/// What a killed relay held: its unfinished outbox entries, each with the id its delivery carries (the
/// Idempotency-Key or webhook id; nil for a lookup, which is judged by when its entry was finished).
struct ClaimsLeftBehind {
    var killedAt: ContinuousClock.Instant
    var killedAtDate: Date
    var entries: [(id: Int64, deliveryKey: String?)]
}

/// Whether every one of these outbox entries is finished (true for none).
func allFinished(_ ids: [Int64]) async throws -> Bool {
    ids.isEmpty ? true : try await finishTimes(of: ids).count == Set(ids).count
}

/// When each of these outbox entries was finished, for those that are.
func finishTimes(of ids: [Int64]) async throws -> [Int64: Date] {
    try await withPostgres { client in
        var finished: [Int64: Date] = [:]
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL:
                    "SELECT id, finished_at FROM \(schema).outbox WHERE id = ANY($1) AND finished_at IS NOT NULL",
                binds: {
                    var binds = PostgresBindings()
                    binds.append(ids)
                    return binds
                }()
            ),
            logger: logger
        )
        for try await (id, seconds) in rows.decode((Int64, Double).self) {
            finished[id] = Date(timeIntervalSince1970: seconds)
        }
        return finished
    }
}

func unfinishedClaimCount(of instance: String) async throws -> Int {
    try await withPostgres { client in
        var count = 0
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL: "SELECT COUNT(*) FROM \(schema).outbox WHERE claimed_by = $1 AND finished_at IS NULL",
                binds: {
                    var binds = PostgresBindings()
                    binds.append(instance)
                    return binds
                }()
            ),
            logger: logger
        )
        for try await total in rows.decode(Int.self) { count = total }
        return count
    }
}

func claims(of instance: String, killedAt: ContinuousClock.Instant, killedAtDate: Date) async throws -> ClaimsLeftBehind
{
    try await withPostgres { client in
        var entries: [(id: Int64, deliveryKey: String?)] = []
        let rows = try await client.query(
            PostgresQuery(
                unsafeSQL:
                    "SELECT id, kind, payload FROM \(schema).outbox WHERE claimed_by = $1 AND finished_at IS NULL",
                binds: {
                    var binds = PostgresBindings()
                    binds.append(instance)
                    return binds
                }()
            ),
            logger: logger
        )
        for try await (id, kind, payload) in rows.decode((Int64, String, ByteBuffer).self) {
            let job = kind == "delivery" ? try? DeliveryJob.decode(Array(buffer: payload)) : nil
            entries.append((id, job.map { $0.webhookId ?? $0.idempotencyKey }))
        }
        return ClaimsLeftBehind(killedAt: killedAt, killedAtDate: killedAtDate, entries: entries)
    }
}

func body(_ json: String) -> [UInt8] { Array(json.utf8) }

func events(forCall index: Int) -> [(String, [UInt8])] {
    let callId = "fault-call-\(index)"
    let number = String(format: "+1555%07d", index)
    return [
        (
            "callStarted",
            body(
                #"{"eventId":"\#(callId)-s","type":"callStarted","callId":"\#(callId)","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"\#(number)","toNumber":"+15550190000","direction":"inbound"}"#
            )
        ),
        (
            "callEnded",
            body(
                #"{"eventId":"\#(callId)-e","type":"callEnded","callId":"\#(callId)","occurredAt":"2026-11-24T10:04:00Z","disconnectType":"client"}"#
            )
        ),
        (
            "wrapUp",
            body(
                #"{"eventId":"\#(callId)-w","type":"wrapUp","callId":"\#(callId)","occurredAt":"2026-11-24T10:05:00Z","wrapUpCode":"DONE"}"#
            )
        ),
    ]
}

/// The relays, by slot; the first is the one killed.
var relays = try (0..<options.relays).map { try RelayProcess(slot: $0, generation: 0) }
let ports = options.brokerPorts
var publisherConfiguration = AMQPConfiguration(
    port: ports[0],
    connectionName: "relay-fault",
    reconnectMaxDelay: .seconds(1)
)
publisherConfiguration.failoverEndpoints = ports.dropFirst().map { .init(host: "127.0.0.1", port: $0) }
let publisher = AMQPClient(
    configuration: publisherConfiguration,
    topology: try Topology.load(contentsOf: options.root + "/topology/definitions.json").prefixed(prefix),
    logger: logger
)
publisher.start()
try await publisher.waitUntilConnected(timeout: .seconds(30))
// Every relay consuming (and so its store migrated) before the first event, or the first kill could
// find a relay still starting.
let consumersDeadline = ContinuousClock.now + .seconds(120)
while (try? await publisher.consumerCount(queue: prefix + "relay.events")) ?? 0 < options.relays {
    guard ContinuousClock.now < consumersDeadline else { fail("the relays were not all consuming after 120 s") }
    try await Task.sleep(for: .milliseconds(200))
}
let brokerFault = options.broker == .single ? "1 broker restart" : "node 1 of 3 stopped and started again"
say(
    "\(options.calls) calls (\(options.calls * 3) events), \(options.relays) relay(s) on \(options.store), "
        + "\(options.kills) SIGKILLs of relay 1, \(brokerFault)"
)

/// Publishes until a node confirms it: while a cluster node goes away, a publish in flight fails and
/// is sent again (a repeated event is absorbed by its event id).
func publishConfirmed(_ message: OutboundMessage) async throws {
    var failures = 0
    while true {
        do {
            try await publisher.publish(message)
            return
        } catch {
            failures += 1
            if failures > 120 { throw error }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

// Publish in slices; between slices, kill and restart the first relay, and once take the broker away.
let slices = options.kills + 2
let perSlice = (options.calls + slices - 1) / slices
let brokerFaultSlice = slices / 2
let started = ContinuousClock.now
var killsDone = 0
var nodeStopped = false
/// Each restart of the relay, and how many calls had been published before the kill it follows.
var restarts: [(at: ContinuousClock.Instant, callsPublished: Int)] = []
/// What each killed relay had claimed and not finished (PostgreSQL only).
var claimsLeftBehind: [ClaimsLeftBehind] = []
for slice in 0..<slices {
    let range = (slice * perSlice)..<min(options.calls, (slice + 1) * perSlice)
    // Many publishes in flight at once, so the relay has a backlog in hand when it is killed (one at a
    // time, it kept up and each kill found it idle). A call's events may so arrive in any order, which
    // the relay accepts.
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in range {
            group.addTask {
                for (type, payload) in events(forCall: index) {
                    try await publishConfirmed(
                        OutboundMessage(exchange: prefix + "platform.events", routingKey: type, body: payload)
                    )
                }
            }
        }
        try await group.waitForAll()
    }
    // Let the relay get some way into the slice, so the kill lands mid-work. With claims, until the
    // relay to be killed holds claimed work it has not finished (a freshly restarted relay may still be
    // starting), and then the kill comes at once, before the broker's fault: a kill that finds it idle
    // proves nothing about taking over its work.
    if options.store == .postgres && killsDone < options.kills {
        let holdingDeadline = ContinuousClock.now + .seconds(60)
        while (try? await unfinishedClaimCount(of: relays[0].instanceName)) ?? 0 < 1 {
            guard ContinuousClock.now < holdingDeadline else {
                fail("relay 1 held no claimed work for 60 s before kill \(killsDone + 1)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        // A moment more, varied: some kills find entries committed and not yet sent, others sends on
        // the wire whose outcome is not yet recorded (the repeats the ids must absorb).
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...150)))
    } else {
        try await Task.sleep(for: .milliseconds(Int.random(in: 20...120)))
    }
    if killsDone < options.kills {
        let killed = relays[0]
        killed.kill()
        let killedAt = ContinuousClock.now
        let killedAtDate = Date()
        killsDone += 1
        if options.store == .postgres {
            let left: ClaimsLeftBehind
            do {
                left = try await claims(of: killed.instanceName, killedAt: killedAt, killedAtDate: killedAtDate)
            } catch {
                fail("could not read the killed relay's claims: \(String(reflecting: error))")
            }
            claimsLeftBehind.append(left)
            say(
                "SIGKILL \(killsDone) of relay 1 after \(range.upperBound) calls published; it left \(left.entries.count) claimed entries unfinished"
            )
        } else {
            say("SIGKILL \(killsDone) after \(range.upperBound) calls published")
        }
        try await Task.sleep(for: .milliseconds(200))
        relays[0] = try RelayProcess(slot: 0, generation: killsDone)
        restarts.append((.now, range.upperBound))
        if options.relays > 1 {
            // The restarted relay consuming before the next slice: the others drain a slice in moments,
            // and a relay still starting would get none of it, so the next kill would find it idle.
            // First the dead relay's consumer gone (the broker drops it when it sees the socket closed),
            // then all of them consuming again.
            let queue = prefix + "relay.events"
            let goneDeadline = ContinuousClock.now + .seconds(10)
            while (try? await publisher.consumerCount(queue: queue)) ?? 0 >= options.relays,
                ContinuousClock.now < goneDeadline
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            let backDeadline = ContinuousClock.now + .seconds(120)
            while (try? await publisher.consumerCount(queue: queue)) ?? 0 < options.relays {
                guard ContinuousClock.now < backDeadline else {
                    fail("relay 1 was not consuming 120 s after restart \(killsDone)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
    if nodeStopped {
        say("starting node 1 again")
        try script("cluster", "start-node", "1")
        nodeStopped = false
    }
    if slice == brokerFaultSlice {
        switch options.broker {
        case .single:
            say("restarting the broker")
            try script("broker", "restart")
        case .cluster:
            say("stopping node 1 of the cluster")
            try script("cluster", "stop-node", "1")
            nodeStopped = true
        }
    }
}
if nodeStopped {
    say("starting node 1 again")
    try script("cluster", "start-node", "1")
}

// Everything published: wait for every call's webhook and every start's update.
let expectedWebhooks = Set((0..<options.calls).map { PostCallWebhook.webhookID(callId: "fault-call-\($0)") })
let expectedUpdates = Set((0..<options.calls).map { "customer-update:fault-call-\($0)-s" })
let deadline = ContinuousClock.now + .seconds(180)
while ContinuousClock.now < deadline {
    let webhookIds = Set(simulator.webhooks.compactMap(\.id))
    let updateKeys = Set(simulator.customerUpdates.compactMap(\.idempotencyKey))
    // With claims, also until another relay has finished every entry a killed relay left: one it had
    // sent just before its kill is already counted above, and its repeat is what is timed below.
    if expectedWebhooks.isSubset(of: webhookIds) && expectedUpdates.isSubset(of: updateKeys),
        (try? await allFinished(claimsLeftBehind.flatMap { $0.entries.map(\.id) })) ?? false
    {
        break
    }
    try await Task.sleep(for: .milliseconds(200))
}
let elapsed = ContinuousClock.now - started
for relay in relays { relay.stop() }

let webhooks = simulator.webhooks
let updates = simulator.customerUpdates
let webhookIds = Set(webhooks.compactMap(\.id))
let updateKeys = Set(updates.compactMap(\.idempotencyKey))
let missingWebhooks = expectedWebhooks.subtracting(webhookIds).count
let missingUpdates = expectedUpdates.subtracting(updateKeys).count
let unexpected = webhookIds.subtracting(expectedWebhooks).count + updateKeys.subtracting(expectedUpdates).count
// A repeated delivery is legal (at least once) only if it is the same request under the same id.
let divergentWebhooks = Dictionary(grouping: webhooks, by: { $0.id ?? "" }).values.filter {
    Set($0.map(\.body)).count > 1
}.count
let divergentUpdates = Dictionary(grouping: updates, by: { $0.idempotencyKey ?? "" }).values.filter {
    Set($0.map(\.body)).count > 1
}.count
// Dead letters: what the relays recorded in their store, and anything still on the queue not drained.
let recordedDeadLetters: Int
switch options.store {
case .sqlite:
    recordedDeadLetters =
        (try? await SQLiteInteractionStore(path: storePath).deadLetterSummary(DeadLetterQuery()).total) ?? -1
case .postgres:
    recordedDeadLetters =
        (try? await withPostgres { client in
            var count = -1
            for try await total in try await client.query(
                PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM \(schema).dead_letter"),
                logger: logger
            )
            .decode(Int.self) {
                count = total
            }
            return count
        }) ?? -1
}
let queuedDeadLetters = (try? await publisher.messageCount(queue: prefix + "relay.dead-letters")) ?? -1
let deadLetters = recordedDeadLetters < 0 || queuedDeadLetters < 0 ? -1 : recordedDeadLetters + queuedDeadLetters

say("done in \(elapsed.formatted(.units(allowed: [.seconds], width: .abbreviated)))")
say(
    "webhooks: \(webhookIds.count)/\(options.calls) ids, \(webhooks.count - webhookIds.count) repeated deliveries absorbed by webhook-id, \(divergentWebhooks) divergent"
)
say(
    "customer updates: \(updateKeys.count)/\(options.calls) keys, \(updates.count - updateKeys.count) repeated deliveries absorbed by Idempotency-Key, \(divergentUpdates) divergent"
)
say(
    "lost: \(missingWebhooks) webhooks, \(missingUpdates) customer updates; unexpected: \(unexpected); dead letters: \(deadLetters)"
)
// How late a restart leaves what the killed relay had in hand: for each restart, the longest wait from
// it to the first delivery of a phase-1 update whose start was published before the kill and had not
// been delivered by the restart. An upper bound on "committed before the kill" (some starts were still
// queued on the broker, and wait behind the restart's backlog too).
var firstDelivery: [String: ContinuousClock.Instant] = [:]
for update in updates {
    guard let key = update.idempotencyKey else { continue }
    firstDelivery[key] = min(firstDelivery[key] ?? update.receivedAt, update.receivedAt)
}
var longestAfterRestart: Duration = .zero
var deliveredAfterARestart = 0
for restart in restarts {
    for index in 0..<restart.callsPublished {
        guard let delivered = firstDelivery["customer-update:fault-call-\(index)-s"], delivered > restart.at else {
            continue
        }
        deliveredAfterARestart += 1
        longestAfterRestart = max(longestAfterRestart, delivered - restart.at)
    }
}
say(
    "longest wait from a restart to an update published before its kill: "
        + longestAfterRestart.formatted(.units(allowed: [.seconds, .milliseconds], width: .abbreviated))
        + " (\(deliveredAfterARestart) such updates over \(restarts.count) restarts)"
)

// With claims (PostgreSQL): for each kill, the longest wait from it to the first delivery, by another
// relay, of an entry the dead relay had claimed and not finished. An entry it had sent just before the
// kill but not yet marked done counts by its next delivery: that repeat is what the ids absorb.
var claimedEntries = 0
var claimedNeverTakenUp = 0
var longestAfterKill: Duration = .zero
if !claimsLeftBehind.isEmpty {
    let finishedAt = try await finishTimes(of: claimsLeftBehind.flatMap { $0.entries.map(\.id) })
    let deliveryTimes: [String: [ContinuousClock.Instant]] = Dictionary(
        grouping: webhooks.compactMap { webhook in webhook.id.map { ($0, webhook.receivedAt) } }
            + updates.compactMap { update in update.idempotencyKey.map { ($0, update.receivedAt) } },
        by: \.0
    ).mapValues { $0.map(\.1) }
    for left in claimsLeftBehind {
        // An entry the dead relay finished itself, its last commit landing as it was killed, was not left.
        for entry in left.entries where finishedAt[entry.id].map({ $0 >= left.killedAtDate }) ?? true {
            claimedEntries += 1
            let wait: Duration?
            if let key = entry.deliveryKey {
                wait = deliveryTimes[key, default: []].filter { $0 > left.killedAt }.min().map { $0 - left.killedAt }
            } else {
                wait = finishedAt[entry.id].map { .seconds($0.timeIntervalSince(left.killedAtDate)) }
            }
            guard let wait else {
                claimedNeverTakenUp += 1
                continue
            }
            longestAfterKill = max(longestAfterKill, wait)
        }
    }
    say(
        "longest wait from a kill to the first delivery of the dead relay's claimed work: "
            + longestAfterKill.formatted(.units(allowed: [.seconds, .milliseconds], width: .abbreviated))
            + " (lease \(options.leaseSeconds) s; \(claimedEntries) claimed entries over \(claimsLeftBehind.count) kills, "
            + "\(claimedNeverTakenUp) never taken up)"
    )
}
// With claims and kills, the run must have killed a relay holding work: else it proved nothing.
let claimsTakenUpInTime =
    claimedNeverTakenUp == 0 && longestAfterKill <= .seconds(options.leaseSeconds + 2)
    && (options.store == .sqlite || options.kills == 0 || claimedEntries > 0)

// Clean up the broker and the store before judging.
for queue in (try? Topology.load(contentsOf: options.root + "/topology/definitions.json").prefixed(prefix).queues) ?? []
{
    try? await publisher.deleteQueue(queue.name)
}
await publisher.shutdown()
await simulator.stop()
try? FileManager.default.removeItem(atPath: storePath)
if options.store == .postgres {
    _ = try? await withPostgres { client in
        try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"), logger: logger)
    }
}
postgresPool.cancel()

let passed =
    missingWebhooks == 0 && missingUpdates == 0 && unexpected == 0 && divergentWebhooks == 0 && divergentUpdates == 0
    && deadLetters == 0 && claimsTakenUpInTime
print(passed ? "fault: 1 passed, 0 failed" : "fault: 0 passed, 1 failed")
exit(passed ? 0 : 1)
