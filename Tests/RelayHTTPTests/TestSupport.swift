import Logging
import RelayHTTP
import RelaySimulator
import Synchronization

/// Loggers that discard everything: the tests assert on behaviour, and the server's info logs
/// would only bury the failures.
let quietLogger = Logger(label: "relay-http-tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// Starts a server and a client, runs `body`, and tears both down even when `body` throws.
func withServerAndClient<T>(
    configuration: CurlHTTPClient.Configuration = .init(),
    clientLogger: Logger = quietLogger,
    respond: @escaping @Sendable (RecordedRequest) async -> ScriptedResponse,
    _ body: (LocalHTTPServer, CurlHTTPClient) async throws -> T
) async throws -> T {
    let server = try await LocalHTTPServer.start(logger: quietLogger, respond: respond)
    let client = CurlHTTPClient(configuration: configuration, logger: clientLogger)
    do {
        let result = try await body(server, client)
        client.shutdown()
        await server.stop()
        return result
    } catch {
        client.shutdown()
        await server.stop()
        throw error
    }
}

/// Runs `body` and returns what it threw, so a test can assert on the error and on timing.
func caughtError<T>(_ body: () async throws -> T) async -> (any Error)? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}

func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}

/// Keeps every log record in memory so tests can check what the client logs, and what it must not.
final class CapturingLogHandler: LogHandler, Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    var captured: [Record] {
        self.records.withLock { $0 }
    }

    func log(event: LogEvent) {
        var flat: [String: String] = [:]
        for (key, value) in event.metadata ?? [:] {
            flat[key] = "\(value)"
        }
        let record = Record(level: event.level, message: "\(event.message)", metadata: flat)
        self.records.withLock { $0.append(record) }
    }
}
