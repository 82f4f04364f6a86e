import Logging
import RelayHTTP
import RelaySimulator
import Testing

/// Transport failures, shutdown and cancellation: the paths that decide retries and dead letters.
@Suite("CurlHTTPClient failures", .serialized)
struct CurlHTTPClientFailureTests {
    @Test("a server slower than the request timeout gives a retriable .timeout, while it still holds its answer")
    func timeout() async throws {
        // The server would answer after 60 s: an error before that is the client's own timeout, and the
        // test asserts that cause rather than a wall-clock bound a busy machine could break.
        try await withServerAndClient(respond: { _ in .ok("late", delay: .seconds(60)) }) { server, client in
            let started = ContinuousClock.now
            let error = await caughtError {
                try await client.execute(
                    HTTPRequest(method: "GET", url: "\(server.baseURL)/slow", timeout: .milliseconds(200))
                )
            }
            let elapsed = ContinuousClock.now - started
            let clientError = try #require(error as? HTTPClientError, "the request must fail, not wait for the answer")
            #expect(clientError.code == .timeout)
            #expect(clientError.isRetriable)
            #expect(clientError.code.description == "timeout")
            #expect(elapsed >= .milliseconds(190), "not before the timeout")
            #expect(elapsed < .seconds(60), "failed by the timeout, before the server answered")
        }
    }

    @Test("a port nobody listens on gives a retriable .connectionRefused")
    func connectionRefused() async throws {
        // A port that was just free: bind it through a server, then stop the server.
        let server = try await LocalHTTPServer.start(logger: quietLogger, respond: { _ in .ok() })
        let deadURL = "\(server.baseURL)/nobody-home"
        await server.stop()

        let client = CurlHTTPClient(logger: quietLogger)
        defer { client.shutdown() }
        let error = await caughtError { try await client.execute(HTTPRequest(method: "GET", url: deadURL)) }
        let clientError = try #require(error as? HTTPClientError)
        #expect(clientError.code == .connectionRefused)
        #expect(clientError.isRetriable)
        #expect(clientError.message.contains("curl error 7"))
    }

    @Test("an unresolvable host gives .couldNotResolveHost")
    func unresolvableHost() async throws {
        let client = CurlHTTPClient(logger: quietLogger)
        defer { client.shutdown() }
        // .invalid is reserved (RFC 6761): no resolver may answer it.
        let error = await caughtError {
            try await client.execute(
                HTTPRequest(method: "GET", url: "http://relay-test.invalid/", timeout: .seconds(5))
            )
        }
        let clientError = try #require(error as? HTTPClientError)
        #expect(clientError.code == .couldNotResolveHost)
    }

    @Test(
        "a request curl cannot send is .invalidRequest before any I/O",
        arguments: [
            HTTPRequest(method: "FETCH", url: "http://127.0.0.1:9/"),
            HTTPRequest(method: "get", url: "http://127.0.0.1:9/"),
            HTTPRequest(method: "GET", url: "not a url"),
            HTTPRequest(method: "GET", url: "ftp://127.0.0.1:9/file"),
            HTTPRequest(method: "GET", url: "http://127.0.0.1:9/", body: [1]),
            HTTPRequest(
                method: "GET",
                url: "http://127.0.0.1:9/",
                headers: [(name: "X-Bad", value: "a\r\nInjected: yes")]
            ),
            HTTPRequest(method: "GET", url: "http://127.0.0.1:9/", headers: [(name: "Bad Name", value: "x")]),
            HTTPRequest(method: "GET", url: "http://127.0.0.1:9/", timeout: .zero),
        ]
    )
    func invalidRequests(request: HTTPRequest) async throws {
        let client = CurlHTTPClient(logger: quietLogger)
        defer { client.shutdown() }
        let error = await caughtError { try await client.execute(request) }
        let clientError = try #require(error as? HTTPClientError)
        #expect(clientError.code == .invalidRequest)
        #expect(!clientError.isRetriable)
    }

    @Test("shutdown fails the in-flight request and every later one with .shutdown")
    func shutdown() async throws {
        try await withServerAndClient(respond: { _ in .ok("late", delay: .seconds(5)) }) { server, client in
            let inFlight = Task {
                try await client.execute(HTTPRequest(method: "GET", url: "\(server.baseURL)/hang"))
            }
            _ = try await server.waitForRequests(count: 1, timeout: .seconds(5))

            let started = ContinuousClock.now
            client.shutdown()
            let inFlightError = try #require(await caughtError { try await inFlight.value } as? HTTPClientError)
            #expect(inFlightError.code == .shutdown)
            #expect(!inFlightError.isRetriable)
            #expect(ContinuousClock.now - started < .seconds(5), "failed by the shutdown, before the server answered")

            client.shutdown()  // idempotent
            let laterError = await caughtError {
                try await client.execute(HTTPRequest(method: "GET", url: "\(server.baseURL)/after"))
            }
            #expect((laterError as? HTTPClientError)?.code == .shutdown)
            #expect(server.requests.count == 1)
        }
    }

    @Test("cancelling the waiting task aborts the transfer promptly with CancellationError")
    func cancellation() async throws {
        try await withServerAndClient(respond: { request in
            .ok("late", delay: request.path == "/hang" ? .seconds(5) : .zero)
        }) { server, client in
            let waiting = Task {
                try await client.execute(HTTPRequest(method: "GET", url: "\(server.baseURL)/hang"))
            }
            _ = try await server.waitForRequests(count: 1, timeout: .seconds(5))

            let started = ContinuousClock.now
            waiting.cancel()
            let error = await caughtError { try await waiting.value }
            #expect(error is CancellationError)
            #expect(ContinuousClock.now - started < .seconds(5), "aborted, not waited for the server's answer")

            // The client is still usable, on a new connection (the aborted one is closed).
            let again = try await client.execute(
                HTTPRequest(method: "GET", url: "\(server.baseURL)/again", timeout: .seconds(8))
            )
            #expect(again.status == 200)
            #expect(server.distinctClientConnections == 2)
        }
    }

    @Test("a task cancelled before it asks never reaches the server")
    func cancelledBeforeStart() async throws {
        try await withServerAndClient(respond: { _ in .ok() }) { server, client in
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await client.execute(HTTPRequest(method: "GET", url: "\(server.baseURL)/never"))
            }
            let error = await caughtError { try await task.value }
            #expect(error is CancellationError)
            try await Task.sleep(for: .milliseconds(100))
            #expect(server.requests.isEmpty)
        }
    }

    @Test("HTTPClientError: codes are bounded labels, retriability follows the code")
    func errorShape() {
        let codes: [HTTPClientError.Code] = [
            .timeout, .connectionRefused, .couldNotResolveHost, .transport, .responseTooLarge, .shutdown,
            .invalidRequest,
        ]
        #expect(
            codes.map(\.description) == [
                "timeout", "connectionRefused", "couldNotResolveHost", "transport", "responseTooLarge", "shutdown",
                "invalidRequest",
            ]
        )
        #expect(
            codes.map { HTTPClientError(code: $0, message: "m").isRetriable } == [
                true, true, true, true, false, false, false,
            ]
        )
        let error = HTTPClientError(code: .transport, message: "Recv failure: Connection reset by peer")
        #expect(error.description == "HTTPClientError.transport: Recv failure: Connection reset by peer")
        #expect(error == HTTPClientError(code: .transport, message: "Recv failure: Connection reset by peer"))
    }
}
