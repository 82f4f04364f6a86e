import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayHTTP
import RelayService

/// An incident's worth of dead letters: `count` records (`large` of them carrying 70 KB payloads) put
/// on `relay.dead` while `identity-relay run` (a process of its own, admin API on) drains them into
/// its store. Measures how long the drain took, what reading them costs the relay (20 API pages of 5
/// against `GET /healthz`, its resident memory after) and the CLI (`dead-letters list` and the dry
/// runs against `deliveries list`, each a process of its own), and checks every answer counts them all.
struct DeadLetterBenchmark {
    var count: Int
    var large: Int
    var port: Int
    var repositoryRoot: String
    var logger: Logger

    struct Figures {
        var drainSeconds: Double
        var pageP50: Duration
        var pageP99: Duration
        var healthP50: Duration
        var residentAfterReads: Int?
        var peakResident: Int?
        var listSeconds: Double
        var dryRunSeconds: Double
        var baselineCLISeconds: Double
    }

    func run() async throws -> Figures {
        let prefix = "bench-\(UUID().uuidString.prefix(8))."
        let storePath = FileManager.default.temporaryDirectory.appendingPathComponent("relay-bench-\(prefix)sqlite")
            .path
        defer { removeBenchmarkStore(storePath) }
        let adminPort = 39_000 + Int.random(in: 0..<900)
        let token = "benchmark-admin-token-0123456789"
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent()
            .appendingPathComponent("identity-relay")
        var environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("RELAY_") || $0.key.hasPrefix("RELAY_BROKER_")
        }
        environment["RELAY_CONFIG"] = repositoryRoot + "/Config/relay.yaml"
        environment["RELAY_AMQP_PORT"] = String(port)
        environment["RELAY_AMQP_NAME_PREFIX"] = prefix
        environment["RELAY_AMQP_TOPOLOGY_FILE"] = repositoryRoot + "/topology/definitions.json"
        environment["RELAY_STORE_PATH"] = storePath
        environment["RELAY_IDENTITY_PHONE_HASH_KEY"] = "benchmark-key-0123456789abcdef0123456789"
        environment["RELAY_PRIVACY_ENCRYPTION_KEY"] = "YmVuY2htYXJrLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM="
        environment["RELAY_WEBHOOK_SIGNING_SECRET"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        environment["RELAY_ADMIN_ENABLED"] = "true"
        environment["RELAY_ADMIN_PORT"] = String(adminPort)
        environment["RELAY_ADMIN_TOKEN"] = token
        environment["RELAY_LOG_LEVEL"] = "error"
        let relay = Process()
        relay.executableURL = binary
        relay.arguments = ["run"]
        relay.environment = environment
        relay.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        try relay.run()
        defer {
            relay.terminate()
            relay.waitUntilExit()
        }
        let http = CurlHTTPClient(logger: logger)
        defer { http.shutdown() }
        let base = "http://127.0.0.1:\(adminPort)"
        let auth = [(name: "Authorization", value: "Bearer \(token)")]
        func get(_ path: String) async throws -> HTTPResponse {
            try await http.execute(HTTPRequest(method: "GET", url: base + path, headers: auth, timeout: .seconds(60)))
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? await get("/readyz"))?.status != 200 {
            guard relay.isRunning, ContinuousClock.now < deadline else {
                throw BenchmarkFailure("the relay did not get ready")
            }
            try await Task.sleep(for: .milliseconds(100))
        }

        // The incident: malformed events by the thousand, a share of them with 70 KB bodies.
        let publisher = try await connectedClient(topology: nil)
        let exchange = prefix + "relay.dead"
        let bulk = Array(repeating: UInt8(ascii: "x"), count: 70_000)
        let now = Date()
        let started = ContinuousClock.now
        try await publishAll(count, using: publisher) { index in
            let body = index < large ? bulk : Array(#"{"eventId":"e-\#(index)","type":"callStarted"}"#.utf8)
            let record = DeadLetterRecord(
                id: "dl_bench_\(index)",
                reason: .malformed,
                callId: "incident-\(index)",
                eventType: "callStarted",
                eventId: "e-\(index)",
                attempts: 1,
                firstFailureAt: now,
                lastFailureAt: now,
                lastError: index % 3 == 0 ? "missing required field 'toNumber'" : "body is not valid JSON",
                originalPayload: body,
                origin: .init(exchange: prefix + "platform.events", routingKey: "callStarted")
            )
            return OutboundMessage(
                exchange: exchange,
                routingKey: "malformed",
                body: record.encoded(),
                headers: [DeadLetterPublisher.reasonHeader: .string("malformed")],
                messageId: record.id
            )
        }
        while true {
            let page = try await get("/api/v1/dead-letters?limit=1")
            if Int(page.header("x-relay-scanned") ?? "") == count { break }
            guard relay.isRunning else { throw BenchmarkFailure("the relay stopped while draining") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let drainSeconds = (ContinuousClock.now - started).totalSeconds
        await publisher.shutdown()

        var pages: [Duration] = []
        var health: [Duration] = []
        for _ in 0..<20 {
            let sent = ContinuousClock.now
            let page = try await get("/api/v1/dead-letters?limit=5")
            pages.append(ContinuousClock.now - sent)
            guard page.status == 200, Int(page.header("x-relay-scanned") ?? "") == count else {
                throw BenchmarkFailure(
                    "a page answered \(page.status), counting \(page.header("x-relay-scanned") ?? "?")"
                )
            }
            let healthSent = ContinuousClock.now
            _ = try await get("/healthz")
            health.append(ContinuousClock.now - healthSent)
        }
        let resident = Self.residentBytes(pid: relay.processIdentifier)
        let peak = ProcessUse.peakResidentBytes(pid: relay.processIdentifier)

        // The CLI, next to the relay, as on-call runs it.
        var cliEnvironment = environment
        cliEnvironment["RELAY_ADMIN_ENABLED"] = nil
        func cli(_ arguments: [String]) throws -> (seconds: Double, output: String) {
            let process = Process()
            process.executableURL = binary
            process.arguments = arguments
            process.environment = cliEnvironment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            let began = ContinuousClock.now
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return ((ContinuousClock.now - began).totalSeconds, String(decoding: data, as: UTF8.self))
        }
        let baseline = try cli(["deliveries", "list"])
        let list = try cli(["dead-letters", "list", "--limit", "20"])
        guard list.output.hasPrefix("open: \(count) ") else {
            throw BenchmarkFailure("list said: \(list.output.prefix(200))")
        }
        let purge = try cli(["dead-letters", "purge", "--all", "--dry-run"])
        let replay = try cli(["dead-letters", "replay", "--all", "--dry-run"])
        for (name, run) in [("purge", purge), ("replay", replay)] where !run.output.contains("would \(name) \(count)") {
            throw BenchmarkFailure("\(name) --dry-run said: \(run.output.suffix(200))")
        }
        let sortedPages = pages.sorted()
        return Figures(
            drainSeconds: drainSeconds,
            pageP50: sortedPages[sortedPages.count / 2],
            pageP99: sortedPages[sortedPages.count - 1],
            healthP50: health.sorted()[health.count / 2],
            residentAfterReads: resident,
            peakResident: peak,
            listSeconds: list.seconds,
            dryRunSeconds: max(purge.seconds, replay.seconds),
            baselineCLISeconds: baseline.seconds
        )
    }

    /// The resident set now (VmRSS) in bytes.
    static func residentBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }
}
