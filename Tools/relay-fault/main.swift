// relay-fault: kills the relay with SIGKILL mid-stream, several times, restarts the broker once, and
// checks that nothing was lost and nothing was sent twice that its id does not absorb.
//
//   relay-fault [--calls N] [--kills K]
//
// The relay runs as a child process (`identity-relay run`, next to this binary) against a simulated
// platform and CRM in this process, which outlive every kill. Each call is published as start, end
// and wrap-up. At the end every call must have produced exactly one post-call webhook id and every
// start its customer update; repeated deliveries are counted and must carry identical bodies.

import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelaySimulator
import RelayStore

struct Options {
    var calls = 300
    var kills = 3
    let port = Int(ProcessInfo.processInfo.environment["RELAY_BROKER_PORT"] ?? "") ?? 5672
    let root = ProcessInfo.processInfo.environment["RELAY_REPO_ROOT"] ?? FileManager.default.currentDirectoryPath

    init(arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next().flatMap(Int.init), value >= 0 else { fail("\(flag) needs a whole number") }
            switch flag {
            case "--calls": calls = max(1, value)
            case "--kills": kills = value
            default: fail("unknown option \(flag); known: --calls --kills")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("relay-fault: \(message)\n".utf8))
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
let prefix = "fault-\(UUID().uuidString.prefix(8).lowercased())."
let storePath = FileManager.default.temporaryDirectory.appendingPathComponent("relay-fault-\(prefix)sqlite").path
let relayBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("identity-relay").path
guard FileManager.default.isExecutableFile(atPath: relayBinary) else {
    fail("no identity-relay next to this binary (\(relayBinary)); build it first")
}

let simulator = try await SimulatedPlatform.start(logger: logger)
let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/// One relay child process; `kill()` is SIGKILL: no graceful anything.
final class RelayProcess {
    let process = Process()

    init() throws {
        process.executableURL = URL(fileURLWithPath: relayBinary)
        process.arguments = ["run"]
        var environment = ProcessInfo.processInfo.environment
        environment["RELAY_AMQP_PORT"] = String(options.port)
        environment["RELAY_AMQP_NAME_PREFIX"] = prefix
        environment["RELAY_AMQP_TOPOLOGY_FILE"] = options.root + "/topology/definitions.json"
        environment["RELAY_STORE_PATH"] = storePath
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
    }

    func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

func brokerControl(_ verb: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [options.root + "/scripts/broker", verb]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { fail("scripts/broker \(verb) failed") }
}

func body(_ json: String) -> [UInt8] { Array(json.utf8) }

func events(forCall index: Int) -> [(String, [UInt8])] {
    let callId = "fault-call-\(index)"
    let number = String(format: "+1555%07d", index)
    return [
        ("callStarted", body(#"{"eventId":"\#(callId)-s","type":"callStarted","callId":"\#(callId)","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"\#(number)","toNumber":"+15550190000","direction":"inbound"}"#)),
        ("callEnded", body(#"{"eventId":"\#(callId)-e","type":"callEnded","callId":"\#(callId)","occurredAt":"2026-11-24T10:04:00Z","disconnectType":"client"}"#)),
        ("wrapUp", body(#"{"eventId":"\#(callId)-w","type":"wrapUp","callId":"\#(callId)","occurredAt":"2026-11-24T10:05:00Z","wrapUpCode":"DONE"}"#)),
    ]
}

var relay = try RelayProcess()
let publisher = AMQPClient(
    configuration: AMQPConfiguration(port: options.port, connectionName: "relay-fault", reconnectMaxDelay: .seconds(1)),
    topology: try Topology.load(contentsOf: options.root + "/topology/definitions.json").prefixed(prefix), logger: logger)
publisher.start()
try await publisher.waitUntilConnected(timeout: .seconds(30))
say("\(options.calls) calls (\(options.calls * 3) events), \(options.kills) SIGKILLs of the relay, 1 broker restart")

// Publish in slices; between slices, kill and restart the relay, and once restart the broker.
let slices = options.kills + 2
let perSlice = (options.calls + slices - 1) / slices
let brokerRestartSlice = slices / 2
let started = ContinuousClock.now
var killsDone = 0
/// Each restart of the relay, and how many calls had been published before the kill it follows.
var restarts: [(at: ContinuousClock.Instant, callsPublished: Int)] = []
for slice in 0..<slices {
    let range = (slice * perSlice)..<min(options.calls, (slice + 1) * perSlice)
    // Many publishes in flight at once, so the relay has a backlog in hand when it is killed (one at a
    // time, it kept up and each kill found it idle). A call's events may so arrive in any order, which
    // the relay accepts.
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in range {
            group.addTask {
                for (type, payload) in events(forCall: index) {
                    try await publisher.publish(OutboundMessage(exchange: prefix + "platform.events", routingKey: type, body: payload))
                }
            }
        }
        try await group.waitForAll()
    }
    // Let the relay get some way into the slice, so the kill lands mid-work.
    try await Task.sleep(for: .milliseconds(Int.random(in: 20...120)))
    if slice == brokerRestartSlice {
        say("restarting the broker")
        try brokerControl("restart")
    }
    if killsDone < options.kills {
        relay.kill()
        killsDone += 1
        say("SIGKILL \(killsDone) after \(range.upperBound) calls published")
        try await Task.sleep(for: .milliseconds(200))
        relay = try RelayProcess()
        restarts.append((.now, range.upperBound))
    }
}

// Everything published: wait for every call's webhook and every start's update.
let expectedWebhooks = Set((0..<options.calls).map { PostCallWebhook.webhookID(callId: "fault-call-\($0)") })
let expectedUpdates = Set((0..<options.calls).map { "customer-update:fault-call-\($0)-s" })
let deadline = ContinuousClock.now + .seconds(180)
while ContinuousClock.now < deadline {
    let webhookIds = Set(simulator.webhooks.compactMap(\.id))
    let updateKeys = Set(simulator.customerUpdates.compactMap(\.idempotencyKey))
    if expectedWebhooks.isSubset(of: webhookIds) && expectedUpdates.isSubset(of: updateKeys) { break }
    try await Task.sleep(for: .milliseconds(200))
}
let elapsed = ContinuousClock.now - started
relay.stop()

let webhooks = simulator.webhooks
let updates = simulator.customerUpdates
let webhookIds = Set(webhooks.compactMap(\.id))
let updateKeys = Set(updates.compactMap(\.idempotencyKey))
let missingWebhooks = expectedWebhooks.subtracting(webhookIds).count
let missingUpdates = expectedUpdates.subtracting(updateKeys).count
let unexpected = webhookIds.subtracting(expectedWebhooks).count + updateKeys.subtracting(expectedUpdates).count
// A repeated delivery is legal (at least once) only if it is the same request under the same id.
let divergentWebhooks = Dictionary(grouping: webhooks, by: { $0.id ?? "" }).values.filter { Set($0.map(\.body)).count > 1 }.count
let divergentUpdates = Dictionary(grouping: updates, by: { $0.idempotencyKey ?? "" }).values.filter { Set($0.map(\.body)).count > 1 }.count
// Dead letters: what the relay recorded in its store, and anything still on the queue it had not drained.
let recordedDeadLetters = (try? await SQLiteInteractionStore(path: storePath).deadLetterSummary(DeadLetterQuery()).total) ?? -1
let queuedDeadLetters = (try? await publisher.messageCount(queue: prefix + "relay.dead-letters")) ?? -1
let deadLetters = recordedDeadLetters < 0 || queuedDeadLetters < 0 ? -1 : recordedDeadLetters + queuedDeadLetters

say("done in \(elapsed.formatted(.units(allowed: [.seconds], width: .abbreviated)))")
say("webhooks: \(webhookIds.count)/\(options.calls) ids, \(webhooks.count - webhookIds.count) repeated deliveries absorbed by webhook-id, \(divergentWebhooks) divergent")
say("customer updates: \(updateKeys.count)/\(options.calls) keys, \(updates.count - updateKeys.count) repeated deliveries absorbed by Idempotency-Key, \(divergentUpdates) divergent")
say("lost: \(missingWebhooks) webhooks, \(missingUpdates) customer updates; unexpected: \(unexpected); dead letters: \(deadLetters)")
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
        guard let delivered = firstDelivery["customer-update:fault-call-\(index)-s"], delivered > restart.at else { continue }
        deliveredAfterARestart += 1
        longestAfterRestart = max(longestAfterRestart, delivered - restart.at)
    }
}
say(
    "longest wait from a restart to an update published before its kill: "
        + longestAfterRestart.formatted(.units(allowed: [.seconds, .milliseconds], width: .abbreviated))
        + " (\(deliveredAfterARestart) such updates over \(restarts.count) restarts)")

// Clean up the broker and the store before judging.
for queue in (try? Topology.load(contentsOf: options.root + "/topology/definitions.json").prefixed(prefix).queues) ?? [] {
    try? await publisher.deleteQueue(queue.name)
}
await publisher.shutdown()
await simulator.stop()
try? FileManager.default.removeItem(atPath: storePath)

let passed = missingWebhooks == 0 && missingUpdates == 0 && unexpected == 0 && divergentWebhooks == 0 && divergentUpdates == 0
    && deadLetters == 0
print(passed ? "fault: 1 passed, 0 failed" : "fault: 0 passed, 1 failed")
exit(passed ? 0 : 1)
