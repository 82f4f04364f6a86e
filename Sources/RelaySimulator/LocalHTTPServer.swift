import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
import RelayCore
import ServiceLifecycle
import Synchronization

/// One request as the ``LocalHTTPServer`` received it.
public struct RecordedRequest: Sendable {
    public var method: String
    /// Path and query, exactly as sent on the request line.
    public var path: String
    /// In arrival order, names as sent. `Host` is not among them: HTTP/1 parsing turns it into
    /// the request's authority.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Client port of the TCP connection: equal ports mean a reused connection.
    public var remotePort: Int?
    public var receivedAt: ContinuousClock.Instant

    public init(
        method: String,
        path: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        remotePort: Int? = nil,
        receivedAt: ContinuousClock.Instant = .now
    ) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.remotePort = remotePort
        self.receivedAt = receivedAt
    }

    /// The first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The body decoded as UTF-8, for assertions.
    public var bodyText: String {
        String(decoding: self.body, as: UTF8.self)
    }
}

/// What the ``LocalHTTPServer`` answers to one request.
public struct ScriptedResponse: Sendable {
    /// 100...599.
    public var status: Int
    /// `Content-Length` is added by the server.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Waited before answering, to simulate a slow upstream (or, when long, a hung one).
    public var delay: Duration
    /// Held until the test opens it (after `delay`): a test can then assert what happened while the
    /// upstream was still holding its answer, instead of timing it.
    public var gate: ResponseGate?

    public init(
        status: Int,
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        delay: Duration = .zero,
        gate: ResponseGate? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
        self.gate = gate
    }

    /// 200 with a UTF-8 body.
    public static func ok(
        _ body: String = "",
        headers: [(name: String, value: String)] = [],
        delay: Duration = .zero,
        heldBy gate: ResponseGate? = nil
    ) -> ScriptedResponse {
        ScriptedResponse(status: 200, headers: headers, body: Array(body.utf8), delay: delay, gate: gate)
    }

    /// Any status with an empty body.
    public static func status(
        _ status: Int,
        headers: [(name: String, value: String)] = [],
        delay: Duration = .zero
    ) -> ScriptedResponse {
        ScriptedResponse(status: status, headers: headers, delay: delay)
    }
}

/// Holds scripted answers until `open()`: "the CRM is still holding its answer" as a fact a test can
/// rely on, on a machine of any speed.
public final class ResponseGate: Sendable {
    private let opened = OneShot<Void>()
    private let waiting = Mutex(0)

    public init() {}

    public var isOpen: Bool { opened.current != nil }
    /// Answers held at the gate right now.
    public var heldCount: Int { waiting.withLock { $0 } }

    public func open() { opened.set(()) }

    /// Returns once the gate is open; throws if the task is cancelled (the server stopping).
    func pass() async throws {
        waiting.withLock { $0 += 1 }
        defer { waiting.withLock { $0 -= 1 } }
        try await opened.value()
    }
}

public struct LocalHTTPServerError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public var description: String { "LocalHTTPServerError: \(self.message)" }
}

/// A real HTTP/1.1 server on loopback that records every request and answers from a script:
/// the stand-in for the CRM, the ERP and the platform in tests and in the simulator.
///
/// ```swift
/// let server = try await LocalHTTPServer.start(logger: logger) { request in
///     .ok("echo \(request.path)", delay: .milliseconds(50))
/// }
/// defer { Task { await server.stop() } }
/// ```
public final class LocalHTTPServer: Sendable {
    public let port: Int
    public let host: String
    private let recorder: Recorder
    private let runTask: Task<Void, Never>
    private let group: ServiceGroup

    /// "http://127.0.0.1:PORT", no trailing slash.
    public var baseURL: String { "http://\(self.host):\(self.port)" }

    /// Every request received so far, in arrival order. A request is recorded when its body has
    /// arrived, before `respond` is called and before any scripted delay.
    public var requests: [RecordedRequest] {
        self.recorder.state.withLock { $0.requests }
    }

    /// Distinct client (address, port) pairs seen so far: how many TCP connections clients used.
    public var distinctClientConnections: Int {
        self.recorder.state.withLock { $0.connections.count }
    }

    private init(host: String, port: Int, recorder: Recorder, runTask: Task<Void, Never>, group: ServiceGroup) {
        self.group = group
        self.host = host
        self.port = port
        self.recorder = recorder
        self.runTask = runTask
    }

    /// Starts listening and returns once the socket is bound.
    ///
    /// - Parameters:
    ///   - port: 0 (the default) binds an ephemeral port; read it back from ``port``.
    ///   - respond: called for every request, concurrently for concurrent requests.
    public static func start(
        host: String = "127.0.0.1",
        port: Int = 0,
        logger: Logger,
        respond: @escaping @Sendable (RecordedRequest) async -> ScriptedResponse
    ) async throws -> LocalHTTPServer {
        let recorder = Recorder()
        let (started, startedContinuation) = AsyncStream.makeStream(of: Result<Int, any Error>.self)
        let app = Application(
            responder: ScriptedResponder(recorder: recorder, respond: respond),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                if let boundPort = channel.localAddress?.port {
                    startedContinuation.yield(.success(boundPort))
                } else {
                    startedContinuation.yield(.failure(LocalHTTPServerError(message: "listening socket has no port")))
                }
            },
            logger: logger
        )
        // A task, not `init`: starting is this explicit async call, and `stop()` ends the task.
        // Run as a service so `stop()` can shut down gracefully: cancelling Hummingbird outright
        // makes it log an error for every open connection.
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let runTask = Task {
            do {
                try await group.run()
            } catch {
                startedContinuation.yield(.failure(error))
            }
            startedContinuation.finish()
        }
        var iterator = started.makeAsyncIterator()
        switch await iterator.next() {
        case .success(let boundPort):
            return LocalHTTPServer(host: host, port: boundPort, recorder: recorder, runTask: runTask, group: group)
        case .failure(let error):
            runTask.cancel()
            throw error
        case nil:
            runTask.cancel()
            await runTask.value
            try Task.checkCancellation()
            throw LocalHTTPServerError(message: "server on \(host):\(port) stopped before it started listening")
        }
    }

    /// Waits until at least `count` requests have arrived and returns all of them.
    ///
    /// - Throws: ``LocalHTTPServerError`` naming expected and received counts after `timeout`.
    public func waitForRequests(count: Int, timeout: Duration) async throws -> [RecordedRequest] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let received = self.requests
            if received.count >= count {
                return received
            }
            guard ContinuousClock.now < deadline else {
                throw LocalHTTPServerError(
                    message: "expected \(count) requests within \(timeout), received \(received.count)"
                )
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Closes the listening socket and every connection; requests still waiting on a scripted
    /// delay are dropped without an answer.
    public func stop() async {
        await self.group.triggerGracefulShutdown()
        // Handlers sleeping on a long scripted delay would hold graceful shutdown up: cut them short.
        let runTask = self.runTask
        let watchdog = Task {
            try? await Task.sleep(for: .milliseconds(500))
            runTask.cancel()
        }
        await runTask.value
        watchdog.cancel()
    }
}

/// What the server saw, shared between its connections and the test reading it.
private final class Recorder: Sendable {
    struct State {
        var requests: [RecordedRequest] = []
        var connections: Set<String> = []
    }

    let state = Mutex(State())

    func record(_ request: RecordedRequest, connection: String?) {
        self.state.withLock { state in
            state.requests.append(request)
            if let connection {
                state.connections.insert(connection)
            }
        }
    }
}

/// Hummingbird's basic context does not keep the connection; this one keeps its remote address.
private struct RecordingRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}

/// Answers every method and path: routing, if any, is the script's business.
private struct ScriptedResponder: HTTPResponder {
    typealias Context = RecordingRequestContext

    let recorder: Recorder
    let respond: @Sendable (RecordedRequest) async -> ScriptedResponse

    func respond(to request: Request, context: Context) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 16 << 20)
        let remote = context.remoteAddress
        let recorded = RecordedRequest(
            method: request.method.rawValue,
            path: request.head.path ?? "",
            headers: request.headers.map { (name: $0.name.rawName, value: $0.value) },
            body: Array(body.readableBytesView),
            remotePort: remote?.port
        )
        self.recorder.record(recorded, connection: remote.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" })

        let scripted = await self.respond(recorded)
        if scripted.delay > .zero {
            try await Task.sleep(for: scripted.delay)
        }
        try await scripted.gate?.pass()
        var headers = HTTPFields()
        for (name, value) in scripted.headers {
            guard let fieldName = HTTPField.Name(name) else {
                throw LocalHTTPServerError(message: "scripted header name \"\(name)\" is not a valid token")
            }
            headers.append(HTTPField(name: fieldName, value: value))
        }
        return Response(
            status: HTTPResponse.Status(code: scripted.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: scripted.body))
        )
    }
}
