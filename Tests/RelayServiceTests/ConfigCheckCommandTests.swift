import Foundation
import RelayService
import Testing

/// What a finished child process left behind.
struct ProcessResult: Sendable {
    var status: Int32
    var reason: Process.TerminationReason
    var stdout: String
    var stderr: String
}

/// Collects one pipe's bytes on a background thread, so neither pipe can fill up and block the child.
private final class PipeDrain: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            let bytes = handle.readDataToEndOfFile()
            lock.withLock { data = bytes }
            done.signal()
        }
    }

    func wait() -> String {
        done.wait()
        return lock.withLock { String(decoding: data, as: UTF8.self) }
    }
}

/// Runs the built `identity-relay` executable and what `swift build` produced for it.
enum BuiltExecutable {
    /// The candidate locations, in order: the `debug` symlink SwiftPM maintains, then the triple folder.
    static var candidates: [URL] {
        let build = repositoryRoot.appendingPathComponent(".build")
        var urls = [
            build.appendingPathComponent("debug/identity-relay"),
            build.appendingPathComponent("x86_64-unknown-linux-gnu/debug/identity-relay"),
        ]
        // Other hosts (aarch64, …) use their own triple folder.
        let triples = (try? FileManager.default.contentsOfDirectory(atPath: build.path)) ?? []
        for triple in triples.sorted() where triple.contains("-") && !triple.contains(".") {
            let url = build.appendingPathComponent(triple).appendingPathComponent("debug/identity-relay")
            if !urls.contains(url) { urls.append(url) }
        }
        return urls
    }

    static func locate() throws -> URL {
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
        return try #require(
            found,
            """
            identity-relay executable not found; looked at \(candidates.map(\.path).joined(separator: ", ")). \
            Build it first: swift build --build-tests
            """)
    }

    /// Runs `identity-relay <arguments>` in the repository root with exactly `environment` plus PATH and HOME.
    static func run(_ arguments: [String], environment: [String: String], timeout: TimeInterval = 120) throws
        -> ProcessResult
    {
        let process = Process()
        process.executableURL = try locate()
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        let inherited = ProcessInfo.processInfo.environment
        var childEnvironment = ["PATH": inherited["PATH"] ?? "/usr/bin:/bin", "HOME": inherited["HOME"] ?? "/tmp"]
        childEnvironment.merge(environment) { _, new in new }
        process.environment = childEnvironment
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice

        try process.run()
        // The write ends now belong to the child; close ours so the reads see end-of-file when it exits.
        try? stdoutPipe.fileHandleForWriting.close()
        try? stderrPipe.fileHandleForWriting.close()
        let stdoutDrain = PipeDrain(stdoutPipe.fileHandleForReading)
        let stderrDrain = PipeDrain(stderrPipe.fileHandleForReading)

        let exited = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            process.waitUntilExit()
            exited.signal()
        }
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            exited.wait()
            Issue.record("identity-relay \(arguments.joined(separator: " ")) did not exit within \(timeout) s")
        }
        return ProcessResult(
            status: process.terminationStatus, reason: process.terminationReason,
            stdout: stdoutDrain.wait(), stderr: stderrDrain.wait())
    }
}

@Suite("identity-relay config check, run as a process")
struct ConfigCheckCommandTests {
    static let hashKey = "cfgcheck-hash-key-0123456789abcdef012345"

    @Test("a valid configuration prints every key, secrets redacted, and exits 0")
    func valid() throws {
        #expect(Self.hashKey.utf8.count == 40)
        let result = try BuiltExecutable.run(
            ["config", "check"], environment: ["RELAY_IDENTITY_PHONE_HASH_KEY": Self.hashKey])
        #expect(result.reason == .exit)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("configuration OK"))
        #expect(result.stdout.contains("source: \(RelayConfiguration.defaultFilePath)"))

        let lines = result.stdout.split(separator: "\n")
        let password = lines.first { $0.hasPrefix("amqp.password ") }
        #expect(password?.contains("<redacted>") == true, "amqp.password line: \(String(describing: password))")
        #expect(password?.contains("guest") == false)
        let hashKeyLine = lines.first { $0.hasPrefix("identity.phoneHashKey ") }
        #expect(hashKeyLine?.contains("<redacted>") == true)
        #expect(hashKeyLine?.contains("env RELAY_IDENTITY_PHONE_HASH_KEY") == true)
        #expect(lines.first { $0.hasPrefix("amqp.port ") }?.contains("5672") == true)

        #expect(!result.stdout.contains(Self.hashKey))
        #expect(!result.stderr.contains(Self.hashKey))
    }

    @Test("a bad port exits 78 naming amqp.port")
    func badPort() throws {
        let result = try BuiltExecutable.run(
            ["config", "check"],
            environment: ["RELAY_IDENTITY_PHONE_HASH_KEY": Self.hashKey, "RELAY_AMQP_PORT": "notaport"])
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("amqp.port"))
        #expect(!result.stdout.contains("configuration OK"))
    }

    @Test("a missing phone hash key exits 78 naming identity.phoneHashKey")
    func missingHashKey() throws {
        let result = try BuiltExecutable.run(["config", "check"], environment: [:])
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("identity.phoneHashKey"))
        #expect(!result.stdout.contains("configuration OK"))
    }

    @Test("a secret in a --config file exits 78 naming the key, without echoing the secret")
    func secretInConfigFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("amqp:\n  password: hunter2-in-yaml\n")
        let result = try BuiltExecutable.run(
            ["config", "check", "--config", path], environment: ["RELAY_IDENTITY_PHONE_HASH_KEY": Self.hashKey])
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("amqp.password"))
        #expect(result.stderr.contains("RELAY_AMQP_PASSWORD"))
        #expect(!(result.stdout + result.stderr).contains("hunter2-in-yaml"))
    }
}
