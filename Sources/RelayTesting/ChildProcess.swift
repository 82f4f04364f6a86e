import CSpawn
public import Foundation
import Synchronization

/// A child process, started with posix_spawn: the few parts of Foundation's `Process` the tests use.
///
/// Foundation's `Process.run()` on Linux lists /proc/self/fd to close the parent's descriptors in the
/// child, and copies each entry's whole 256-byte name field: with a thousand descriptors open (dozens of
/// relays at once in the test process) an entry at the end of glibc's buffer made it read past the
/// page, and about one CI run in five crashed there (swift-corelibs-foundation #5472, fixed after the
/// 6.3.1 toolchain). Here the kernel closes them (`closefrom` in the spawn).
public final class ChildProcess: @unchecked Sendable {
    // The launch settings are set by the one test that owns the object before `run()`; the exit
    // status is read and written under `exit`.
    public var executableURL: URL?
    public var arguments: [String] = []
    /// Nil: this process's environment.
    public var environment: [String: String]?
    public var currentDirectoryURL: URL?
    /// A `Pipe` (the child gets its reading end), a `FileHandle`, or nil for this process's.
    public var standardInput: Any?
    /// A `Pipe` (the child gets its writing end), a `FileHandle`, or nil for this process's.
    public var standardOutput: Any?
    public var standardError: Any?

    public private(set) var processIdentifier: Int32 = 0
    private let exit = Mutex<Int32?>(nil)

    public init() {}

    public func run() throws {
        guard let path = executableURL?.path else { throw ChildProcessError("no executable to run") }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer {
            for argument in argv { free(argument) }
            for variable in envp ?? [] { free(variable) }
        }
        var pid: pid_t = 0
        let error = Self.descriptor(standardInput, reading: true) { input in
            Self.descriptor(standardOutput, reading: false) { output in
                Self.descriptor(standardError, reading: false) { errors in
                    if let envp {
                        relay_spawn(&pid, path, argv, envp, currentDirectoryURL?.path, input, output, errors)
                    } else {
                        relay_spawn(&pid, path, argv, nil, currentDirectoryURL?.path, input, output, errors)
                    }
                }
            }
        }
        guard error == 0 else {
            throw ChildProcessError("could not start \(path): \(String(cString: strerror(error)))")
        }
        processIdentifier = pid
        // The child has its ends of the pipes; the parent's copies would keep a reader from seeing the end.
        for (stream, reading) in [(standardInput, true), (standardOutput, false), (standardError, false)] {
            if let pipe = stream as? Pipe {
                try? (reading ? pipe.fileHandleForReading : pipe.fileHandleForWriting).close()
            }
        }
    }

    /// -1 for /dev/null, -2 for this process's own.
    private static func descriptor(_ stream: Any?, reading: Bool, _ body: (Int32) -> Int32) -> Int32 {
        switch stream {
        case let pipe as Pipe: body((reading ? pipe.fileHandleForReading : pipe.fileHandleForWriting).fileDescriptor)
        case let handle as FileHandle: body(handle === FileHandle.nullDevice ? -1 : handle.fileDescriptor)
        default: body(-2)
        }
    }

    /// The raw wait status, once the child has exited and been reaped.
    private func reaped() -> Int32? {
        exit.withLock { status in
            if status == nil, processIdentifier > 0 {
                var raw: Int32 = 0
                let reaped = waitpid(processIdentifier, &raw, WNOHANG)
                if reaped == processIdentifier {
                    status = raw
                } else if reaped == -1 && errno == ECHILD {
                    // Reaped elsewhere: gone, its status unknown (reported as a plain exit).
                    status = 0
                }
            }
            return status
        }
    }

    public var isRunning: Bool { processIdentifier > 0 && reaped() == nil }

    public func waitUntilExit() {
        while isRunning { usleep(5_000) }
    }

    /// The exit code, or the number of the signal that ended it.
    public var terminationStatus: Int32 {
        guard let raw = reaped() else { return 0 }
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    public var terminationReason: Process.TerminationReason {
        guard let raw = reaped() else { return .exit }
        return raw & 0x7f == 0 ? .exit : .uncaughtSignal
    }

    public func terminate() {
        // Under the lock, so the child cannot be reaped (and its pid reused) between the check and the kill.
        exit.withLock { status in
            if status == nil, processIdentifier > 0 { kill(processIdentifier, SIGTERM) }
        }
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
