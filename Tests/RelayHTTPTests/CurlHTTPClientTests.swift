import Foundation
import Logging
import RelaySimulator
import RelayTesting
import ServiceLifecycle
import Synchronization
import Testing

@testable import RelayHTTP

/// The client against a real local server: what arrives, what comes back, how connections are used.
@Suite("CurlHTTPClient exchanges", .serialized)
struct CurlHTTPClientTests {
    /// Answers with what it received, so each response proves which request it belongs to.
    static let echo: @Sendable (RecordedRequest) async -> ScriptedResponse = { request in
        .ok("\(request.method) \(request.path) \(request.bodyText)", delay: .milliseconds(50))
    }

    @Test("making a client starts no thread; its first request does, and the thread is named curl-multi")
    func threadStartsAtFirstUse() async throws {
        try await withServerAndClient(respond: Self.echo) { server, client in
            #expect(!client.loop.hasStarted)
            let response = try await client.execute(HTTPRequest(method: "GET", url: "\(server.baseURL)/first"))
            #expect(response.status == 200)
            #expect(client.loop.hasStarted)
            // Linux shows the name in this client's own thread's comm (top -H, perf).
            let thread = client.loop.kernelThreadID.load(ordering: .acquiring)
            #expect(thread > 0)
            #expect(try String(contentsOfFile: "/proc/self/task/\(thread)/comm", encoding: .utf8) == "curl-multi\n")
        }
    }

    @Test("as a service, the client starts its thread in run() and stops it at graceful shutdown")
    func threadStartsWithTheService() async throws {
        let client = CurlHTTPClient(logger: quietLogger)
        #expect(!client.loop.hasStarted)
        let group = ServiceGroup(services: [client], logger: quietLogger)
        let running = Task { try await group.run() }
        try await eventually { client.loop.hasStarted }
        await group.triggerGracefulShutdown()
        try await running.value
        await #expect(throws: HTTPClientError.self) {
            try await client.execute(HTTPRequest(method: "GET", url: "http://127.0.0.1:9/after-shutdown"))
        }
    }

    @Test("150 concurrent requests share one loop thread, each gets its own answer")
    func concurrentRequests() async throws {
        let count = 150
        let delay = Duration.milliseconds(50)
        try await withServerAndClient(respond: Self.echo) { server, client in
            let started = ContinuousClock.now
            let bodies = try await withThrowingTaskGroup(of: (Int, Int, String).self) { group in
                for index in 0..<count {
                    group.addTask {
                        let response = try await client.execute(
                            HTTPRequest(
                                method: "POST",
                                url: "\(server.baseURL)/echo/\(index)?n=\(index)",
                                body: Array("payload-\(index)".utf8)
                            )
                        )
                        return (index, response.status, text(response.body))
                    }
                }
                var collected: [Int: (status: Int, body: String)] = [:]
                for try await (index, status, body) in group {
                    collected[index] = (status, body)
                }
                return collected
            }
            let elapsed = ContinuousClock.now - started

            #expect(bodies.count == count)
            for index in 0..<count {
                #expect(bodies[index]?.status == 200)
                #expect(bodies[index]?.body == "POST /echo/\(index)?n=\(index) payload-\(index)")
            }
            #expect(server.requests.count == count)
            // Keep-alive plus the per-host cap: never more sockets than requests, nor than the cap.
            #expect(server.distinctClientConnections <= count)
            #expect(server.distinctClientConnections <= CurlHTTPClient.Configuration().maxConnectionsPerHost)
            // Concurrency shown by overlap, not by a time limit a loaded machine can miss (3.8 s once,
            // against 7.5 s serially and 0.1 s ideally): every answer waits `delay`, so a request that
            // arrived less than `delay` after another arrived while that one was still in flight.
            let arrivals = server.requests.map(\.receivedAt).sorted()
            var mostInFlight = 0
            var oldest = 0
            for (index, arrival) in arrivals.enumerated() {
                while arrival - arrivals[oldest] >= delay { oldest += 1 }
                mostInFlight = max(mostInFlight, index - oldest + 1)
            }
            #expect(mostInFlight >= 10, "at most \(mostInFlight) of 150 requests in flight at once (in \(elapsed))")
        }
    }

    @Test("a second burst reuses the first burst's connections")
    func burstsReuseConnections() async throws {
        let count = 40
        try await withServerAndClient(respond: Self.echo) { server, client in
            for _ in 0..<2 {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            try await client.execute(
                                HTTPRequest(method: "GET", url: "\(server.baseURL)/burst/\(index)")
                            ).status
                        }
                    }
                    for try await status in group {
                        #expect(status == 200)
                    }
                }
            }
            #expect(server.requests.count == 2 * count)
            #expect(server.distinctClientConnections <= count)
        }
    }

    @Test("maxConnectionsPerHost caps the sockets opened to one host")
    func perHostConnectionCap() async throws {
        let configuration = CurlHTTPClient.Configuration(maxConnectionsPerHost: 4)
        try await withServerAndClient(configuration: configuration, respond: Self.echo) { server, client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        _ = try await client.execute(
                            HTTPRequest(method: "GET", url: "\(server.baseURL)/capped/\(index)")
                        )
                    }
                }
                try await group.waitForAll()
            }
            #expect(server.requests.count == 20)
            #expect(server.distinctClientConnections <= 4)
        }
    }

    @Test("sequential requests reuse one connection")
    func sequentialRequestsReuseConnection() async throws {
        try await withServerAndClient(respond: { _ in .ok("fine") }) { server, client in
            for index in 0..<5 {
                let response = try await client.execute(
                    HTTPRequest(method: "GET", url: "\(server.baseURL)/seq/\(index)")
                )
                #expect(response.status == 200)
                #expect(text(response.body) == "fine")
            }
            #expect(server.distinctClientConnections == 1)
            #expect(Set(server.requests.map(\.remotePort)).count == 1)
        }
    }

    @Test("a 503 with Retry-After and then a 200 both come back as responses")
    func errorStatusesAreResponses() async throws {
        let calls = Counter()
        try await withServerAndClient(respond: { _ in
            calls.next() == 0
                ? .status(503, headers: [(name: "Retry-After", value: "7")])
                : .ok("{\"ok\":true}", headers: [(name: "Content-Type", value: "application/json")])
        }) { server, client in
            let request = HTTPRequest(method: "GET", url: "\(server.baseURL)/flaky")
            let first = try await client.execute(request)
            #expect(first.status == 503)
            #expect(first.header("retry-after") == "7")
            #expect(first.header("RETRY-AFTER") == "7")
            #expect(first.body.isEmpty)

            let second = try await client.execute(request)
            #expect(second.status == 200)
            #expect(second.header("retry-after") == nil)
            #expect(second.header("content-type") == "application/json")
            #expect(text(second.body) == "{\"ok\":true}")
        }
    }

    @Test("method, path, headers and body arrive intact")
    func requestArrivesIntact() async throws {
        let json = #"{"externalId":"CRM:0042","name":"Zoë Ångström","data":{"loyaltyTier":"gold"}}"#
        try await withServerAndClient(respond: { _ in .status(204) }) { server, client in
            let response = try await client.execute(
                HTTPRequest(
                    method: "PUT",
                    url: "\(server.baseURL)/api/v2/customers/CRM%3A0042?source=relay",
                    headers: [
                        (name: "Content-Type", value: "application/json"),
                        (name: "Idempotency-Key", value: "evt-123:customer.update"),
                        (name: "X-Empty", value: ""),
                    ],
                    body: Array(json.utf8)
                )
            )
            #expect(response.status == 204)

            let received = try #require(server.requests.first)
            #expect(received.method == "PUT")
            #expect(received.path == "/api/v2/customers/CRM%3A0042?source=relay")
            #expect(received.header("content-type") == "application/json")
            #expect(received.header("idempotency-key") == "evt-123:customer.update")
            #expect(received.header("x-empty") == "")
            #expect(received.header("content-length") == "\(json.utf8.count)")
            #expect(received.bodyText == json)
            // curl's own additions that would mislead or stall an upstream.
            #expect(received.header("expect") == nil)
        }
    }

    @Test("a large body without Content-Type is neither labelled as a form nor held back for 100-continue")
    func noImplicitHeaders() async throws {
        try await withServerAndClient(respond: { _ in .ok() }) { server, client in
            // curl 7.88 adds "Expect: 100-continue" above 1 MiB, and a form type to any body.
            let body = [UInt8](repeating: UInt8(ascii: "x"), count: 1_500_000)
            _ = try await client.execute(HTTPRequest(method: "POST", url: "\(server.baseURL)/raw", body: body))
            let received = try #require(server.requests.first)
            #expect(received.header("content-type") == nil)
            #expect(received.header("expect") == nil)
            #expect(received.body == body)
        }
    }

    @Test(
        "every supported method arrives as itself",
        arguments: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    func methods(method: String) async throws {
        try await withServerAndClient(respond: { request in .ok("m=\(request.method)") }) { server, client in
            // Twice over one connection: a mishandled HEAD body would corrupt the second exchange.
            for _ in 0..<2 {
                let response = try await client.execute(HTTPRequest(method: method, url: "\(server.baseURL)/m"))
                #expect(response.status == 200)
                #expect(text(response.body) == (method == "HEAD" ? "" : "m=\(method)"))
            }
            #expect(server.requests.map(\.method) == [method, method])
            #expect(server.distinctClientConnections == 1)
        }
    }

    @Test("a response body over the limit fails as responseTooLarge; one at the limit passes")
    func responseBodyLimit() async throws {
        let configuration = CurlHTTPClient.Configuration(maxResponseBodyBytes: 1024)
        try await withServerAndClient(
            configuration: configuration,
            respond: { request in
                .ok(String(repeating: "a", count: request.path == "/big" ? 64 * 1024 : 1024))
            }
        ) { server, client in
            let fits = try await client.execute(HTTPRequest(method: "GET", url: "\(server.baseURL)/fits"))
            #expect(fits.body.count == 1024)

            let error = await caughtError {
                try await client.execute(HTTPRequest(method: "GET", url: "\(server.baseURL)/big"))
            }
            let clientError = try #require(error as? HTTPClientError)
            #expect(clientError.code == .responseTooLarge)
            #expect(!clientError.isRetriable)
        }
    }

    @Test("logs name method, host and status, never the path or the body")
    func loggingKeepsIdentifiersOut() async throws {
        let handler = CapturingLogHandler()
        let logger = Logger(label: "capture", factory: { _ in handler })
        try await withServerAndClient(clientLogger: logger, respond: { _ in .status(404) }) { server, client in
            let response = try await client.execute(
                HTTPRequest(
                    method: "PUT",
                    url: "\(server.baseURL)/api/v2/customers/CRM:secret-contact-77?phone=%2B4420794600",
                    body: Array("{\"email\":\"zoe@example.com\"}".utf8)
                )
            )
            #expect(response.status == 404)
        }
        let records = handler.captured
        let finished = try #require(records.first { $0.message == "HTTP request finished" })
        #expect(finished.level == .debug)
        #expect(finished.metadata["http.method"] == "PUT")
        #expect(finished.metadata["http.host"] == "127.0.0.1")
        #expect(finished.metadata["http.status"] == "404")
        #expect(finished.metadata["http.duration_ms"] != nil)
        #expect(records.allSatisfy { $0.level <= .debug })
        for record in records {
            let everything = ([record.message] + record.metadata.keys + record.metadata.values).joined(separator: " ")
            #expect(!everything.contains("secret-contact"))
            #expect(!everything.contains("4420794600"))
            #expect(!everything.contains("zoe@example.com"))
            #expect(!everything.contains("/api/v2"))
        }
    }
}

/// Hands out 0, 1, 2… across concurrent callers.
final class Counter: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        self.value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
