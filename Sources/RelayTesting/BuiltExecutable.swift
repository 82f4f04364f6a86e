public import Foundation

/// What a finished child process left behind.
public struct ProcessResult: Sendable, CustomStringConvertible {
    public var status: Int32
    public var reason: Process.TerminationReason
    public var stdout: String
    public var stderr: String
    public var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// The `identity-relay` executable that `swift build` produced, run as a real process: how tests see
/// the CLI as an operator does.
public enum BuiltExecutable {
    /// The candidate locations, in order: `RELAY_CLI_BINARY`, the `debug` symlink SwiftPM maintains, then
    /// the triple folders.
    public static var candidates: [URL] {
        let build = URL(fileURLWithPath: TestBroker.repositoryRoot).appendingPathComponent(".build")
        var urls: [URL] = []
        if let explicit = ProcessInfo.processInfo.environment["RELAY_CLI_BINARY"], !explicit.isEmpty {
            urls.append(URL(fileURLWithPath: explicit))
        }
        urls.append(build.appendingPathComponent("debug/identity-relay"))
        let triples = (try? FileManager.default.contentsOfDirectory(atPath: build.path)) ?? []
        for triple in triples.sorted() where triple.contains("-") && !triple.contains(".") {
            let url = build.appendingPathComponent(triple).appendingPathComponent("debug/identity-relay")
            if !urls.contains(url) { urls.append(url) }
        }
        return urls
    }

    public static func locate() throws -> URL {
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw BuiltExecutableError(
                message:
                    "identity-relay executable not found; looked at \(candidates.map(\.path).joined(separator: ", ")). "
                    + "Build it first: swift build --build-tests (or point RELAY_CLI_BINARY at it)"
            )
        }
        return found
    }

    /// Runs `identity-relay <arguments>` in the repository root, standard input not a terminal.
    ///
    /// - Parameters:
    ///   - environment: set in the child; with `inherit` false the child gets only these plus PATH and HOME.
    ///   - timeout: the child is terminated and this throws if it has not exited by then.
    public static func run(
        _ arguments: [String],
        environment: [String: String],
        inherit: Bool = false,
        timeout: TimeInterval = 120
    ) throws -> ProcessResult {
        let process = ChildProcess()
        process.executableURL = try locate()
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: TestBroker.repositoryRoot)
        let inherited = ProcessInfo.processInfo.environment
        var childEnvironment =
            inherit ? inherited : ["PATH": inherited["PATH"] ?? "/usr/bin:/bin", "HOME": inherited["HOME"] ?? "/tmp"]
        childEnvironment.merge(environment) { _, new in new }
        process.environment = childEnvironment
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice

        try process.run()
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
            throw BuiltExecutableError(
                message: "identity-relay \(arguments.joined(separator: " ")) did not exit within \(timeout) s"
            )
        }
        return ProcessResult(
            status: process.terminationStatus,
            reason: process.terminationReason,
            stdout: stdoutDrain.wait(),
            stderr: stderrDrain.wait()
        )
    }
}

public struct BuiltExecutableError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Collects one pipe's bytes on a background thread, so neither pipe can fill up and block the child.
private final class PipeDrain: @unchecked Sendable {
    // `data` is written once by the reading thread before `done` is signalled, and read after the wait.
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
