public import Foundation
import RelayAMQP
public import RelaySimulator

/// `identity-relay run` as a child process against the test broker and a simulated platform in the test
/// process, which outlives it: how tests see signals, exits and restarts as an operator does.
public final class RelayProcess: @unchecked Sendable {
    // `process` is only touched by the test that owns this object; `log` is written by the draining
    // thread under the lock.
    public let process = ChildProcess()
    private let lock = NSLock()
    private var log = Data()
    private let drained = DispatchSemaphore(value: 0)

    /// The environment a relay needs for the names under `prefix`, the store at `storePath` and the
    /// simulated `platform`; the admin API is off (its default port could clash).
    public static func environment(prefix: String, storePath: String, platform: SimulatedPlatform) -> [String: String] {
        [
            "RELAY_CONFIG": TestBroker.repositoryRoot + "/Config/relay.yaml",
            "RELAY_AMQP_PORT": String(TestBroker.port),
            "RELAY_AMQP_NAME_PREFIX": prefix,
            "RELAY_AMQP_TOPOLOGY_FILE": TestBroker.repositoryRoot + "/topology/definitions.json",
            "RELAY_STORE_PATH": storePath,
            "RELAY_PLATFORM_BASE_URL": platform.baseURL,
            "RELAY_CRM_POST_CALL_WEBHOOK_URL": platform.postCallWebhookURL,
            "RELAY_WEBHOOK_SIGNING_SECRET": testWebhookSecret,
            "RELAY_IDENTITY_PHONE_HASH_KEY": "process-test-key-0123456789abcdef0123456789",
            "RELAY_PRIVACY_ENCRYPTION_KEY": RelayHarness.testEncryptionKey,
            "RELAY_DELIVERY_BASE_DELAY_MS": "50",
            "RELAY_DELIVERY_MAX_DELAY_MS": "1000",
            "RELAY_ADMIN_ENABLED": "false",
            "RELAY_LOG_LEVEL": "info",
        ]
    }

    public init(environment: [String: String]) throws {
        process.executableURL = try BuiltExecutable.locate()
        process.arguments = ["run"]
        let inherited = ProcessInfo.processInfo.environment
        process.environment = ["PATH": inherited["PATH"] ?? "/usr/bin:/bin", "HOME": inherited["HOME"] ?? "/tmp"]
            .merging(environment) { $1 }
        process.currentDirectoryURL = URL(fileURLWithPath: TestBroker.repositoryRoot)
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let reading = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let chunk = reading.availableData
                if chunk.isEmpty { break }
                lock.withLock { log.append(chunk) }
            }
            drained.signal()
        }
    }

    /// What the relay wrote to standard error and output so far.
    public var output: String { lock.withLock { String(decoding: log, as: UTF8.self) } }

    public var isRunning: Bool { process.isRunning }

    public func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Waits for the process to exit; its exit status, or nil if it is still running after `timeout`.
    public func waitForExit(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
        drained.wait()
        return process.terminationStatus
    }

    /// Waits until the relay has logged `text` (it logs "relay consuming" once it is up).
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(30)) async throws {
        try await eventually(timeout: timeout, "the relay to log \(text)") { output.contains(text) || !isRunning }
        guard output.contains(text) else {
            throw BuiltExecutableError(message: "the relay exited before logging \(text):\n\(output)")
        }
    }

    /// SIGKILL, for cleanup after a failed test.
    public func killIfRunning() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
