import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayHTTP
import RelayService
import RelaySimulator
import RelayTesting
import Synchronization
import Testing

/// Dead letters the size of a real incident, against `identity-relay run` as a process of its own:
/// what the tools and the API answer, and what reading them costs the relay's memory. How long each
/// answer takes is the benchmark's to say (`scripts/bench --mode dead-letters`), not a test's.
@Suite("Dead letters at incident scale")
struct DeadLetterIncidentTests {
    static let count = 20_000
    static let large = 2_000

    @Test(
        "20,000 dead letters, 2,000 of them 70 KB: the relay drains them all; list, the dry runs and the API count every one; 20 API and 6 CLI readers at once agree; the relay stays under 150 MB"
    )
    func incident() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        let storePath = FileManager.default.temporaryDirectory.appendingPathComponent("incident-\(prefix)sqlite").path
        let platform = try await SimulatedPlatform.start(logger: Logger(label: "test.platform"))
        let token = "incident-test-admin-token-0123456789"
        var environment = RelayProcess.environment(prefix: prefix, storePath: storePath, platform: platform)
        environment["RELAY_ADMIN_ENABLED"] = "true"
        environment["RELAY_ADMIN_PORT"] = "0"
        environment["RELAY_ADMIN_TOKEN"] = token
        let relay = try RelayProcess(environment: environment)
        let http = CurlHTTPClient(logger: Logger(label: "test.http"))
        defer {
            relay.killIfRunning()
            http.shutdown()
            Task {
                await platform.stop()
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
            }
        }
        try await relay.waitForOutput("admin API listening")
        let port = try #require(
            relay.output.firstMatch(of: /admin\.endpoint=[0-9.]+:([0-9]+)/).map { String($0.1) },
            "\(relay.output)"
        )
        func get(_ path: String) async throws -> HTTPResponse {
            try await http.execute(
                HTTPRequest(
                    method: "GET",
                    url: "http://127.0.0.1:\(port)\(path)",
                    headers: [(name: "Authorization", value: "Bearer \(token)")],
                    timeout: .seconds(120)
                )
            )
        }

        // The incident: malformed events by the thousand, a tenth of them with 70 KB bodies.
        let names = RelayNames(prefix: prefix)
        let bulk = Array(repeating: UInt8(ascii: "x"), count: 70_000)
        let now = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<Self.count {
                if index >= 200 { try await group.next() }
                let body = index < Self.large ? bulk : Array(#"{"eventId":"e-\#(index)","type":"callStarted"}"#.utf8)
                let record = DeadLetterRecord(
                    id: "dl_incident_\(index)",
                    reason: .malformed,
                    callId: "incident-\(index)",
                    eventType: "callStarted",
                    eventId: "e-\(index)",
                    attempts: 1,
                    firstFailureAt: now,
                    lastFailureAt: now,
                    lastError: "body is not valid JSON",
                    originalPayload: body,
                    origin: .init(exchange: names.eventsExchange, routingKey: "callStarted")
                )
                group.addTask {
                    try await client.publish(
                        OutboundMessage(
                            exchange: names.deadLetterExchange,
                            routingKey: "malformed",
                            body: record.encoded(),
                            headers: [DeadLetterPublisher.reasonHeader: .string("malformed")],
                            messageId: record.id
                        )
                    )
                }
            }
            try await group.waitForAll()
        }
        // The relay drains the queue into its store as the records arrive.
        try await eventually(timeout: .seconds(300), "the relay to record all \(Self.count)") {
            Int(try await get("/api/v1/dead-letters?limit=1").header("x-relay-scanned") ?? "") == Self.count
        }
        #expect(
            try await client.messageCount(queue: names.deadLettersQueue) == 0,
            "the queue stays short: all in the store"
        )

        // Twenty readers of a page of five at once: every one answers five rows and counts all of them.
        let pages = try await withThrowingTaskGroup(of: (Int, Int, String?).self) { group in
            for _ in 0..<20 {
                group.addTask {
                    let page = try await get("/api/v1/dead-letters?limit=5")
                    let rows = try JSONSerialization.jsonObject(with: Data(page.body)) as? [[String: Any]]
                    return (page.status, rows?.count ?? -1, page.header("x-relay-scanned"))
                }
            }
            return try await group.reduce(into: [(Int, Int, String?)]()) { $0.append($1) }
        }
        #expect(pages.count == 20)
        #expect(pages.allSatisfy { $0.0 == 200 && $0.1 == 5 && $0.2 == "\(Self.count)" }, "\(pages)")
        let memory = try #require(ProcessMemory(pid: relay.process.processIdentifier))
        #expect(memory.peakResident < 150 * 1_048_576, "the relay's peak resident memory: \(memory)")
        #expect(memory.resident < 150 * 1_048_576, "\(memory)")

        // Six on-call engineers listing at once, next to the running relay: the same counts.
        let cliEnvironment = environment.merging(["RELAY_ADMIN_ENABLED": "false"]) { $1 }
        let lists = await Self.concurrently(6) { _ in
            try BuiltExecutable.run(["dead-letters", "list", "--limit", "5"], environment: cliEnvironment)
        }
        for list in lists {
            let result = try list.get()
            #expect(result.status == 0, "\(result.stderr)")
            #expect(
                result.stdout.hasPrefix("open: \(Self.count) (malformed \(Self.count))"),
                "\(result.stdout.prefix(300))"
            )
            #expect(result.stdout.hasSuffix("5 of \(Self.count) open dead letters\n"), "\(result.stdout.suffix(300))")
        }
        let purge = try BuiltExecutable.run(
            ["dead-letters", "purge", "--all", "--dry-run"],
            environment: cliEnvironment
        )
        #expect(purge.status == 0 && purge.stdout.contains("would purge \(Self.count)"), "\(purge.stdout.suffix(300))")
        let replay = try BuiltExecutable.run(
            ["dead-letters", "replay", "--all", "--dry-run"],
            environment: cliEnvironment
        )
        #expect(
            replay.status == 0 && replay.stdout.contains("would replay \(Self.count)"),
            "\(replay.stdout.suffix(300))"
        )
        // Counted, not changed.
        #expect(Int(try await get("/api/v1/dead-letters?limit=1").header("x-relay-scanned") ?? "") == Self.count)
    }

    /// Runs `body` on `count` threads of its own at once (a blocking child process each) and collects
    /// what each returned.
    static func concurrently<T: Sendable>(
        _ count: Int,
        _ body: @escaping @Sendable (Int) throws -> T
    ) async -> [Result<T, any Error>] {
        let results = Mutex<[Int: Result<T, any Error>]>([:])
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for index in 0..<count {
                group.enter()
                Thread.detachNewThread {
                    let result = Result { try body(index) }
                    results.withLock { $0[index] = result }
                    group.leave()
                }
            }
            group.notify(queue: .global()) { continuation.resume() }
        }
        return results.withLock { results in (0..<count).map { results[$0]! } }
    }
}

/// A process's resident memory now and at its peak, from /proc.
struct ProcessMemory: CustomStringConvertible {
    var resident: Int
    var peakResident: Int

    init?(pid: Int32) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func kilobytes(_ field: String) -> Int? {
            status.split(separator: "\n").first { $0.hasPrefix(field + ":") }?.split(separator: " ").dropFirst().first
                .flatMap { Int($0) }
        }
        guard let resident = kilobytes("VmRSS"), let peak = kilobytes("VmHWM") else { return nil }
        self.resident = resident * 1024
        self.peakResident = peak * 1024
    }

    var description: String { "resident \(resident / 1_048_576) MiB, peak \(peakResident / 1_048_576) MiB" }
}
