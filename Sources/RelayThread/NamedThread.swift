public import Foundation

/// Starts the relay's few OS threads (the AMQP connection's, the curl loop's): blocking loops that
/// must not sit on the cooperative pool, which has only a few threads (two on the target machine).
/// One way for both, named so `top -H`, `perf` and a debugger say which is which.
public enum NamedThread {
    /// - Parameter name: at most 15 bytes show on Linux (the kernel's limit); longer names are cut.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            nameCurrentThread(name)
            body()
        }
        thread.name = name
        thread.start()
    }

    /// The calling thread's kernel id (Linux: what `/proc/self/task/<id>` names), for tests and
    /// diagnostics; nil elsewhere.
    public static func currentKernelID() -> Int? {
        #if os(Linux)
        // /proc/thread-self is a link to <pid>/task/<tid>.
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self") else {
            return nil
        }
        return target.split(separator: "/").last.flatMap { Int($0) }
        #else
        return nil
        #endif
    }

    /// Foundation's `Thread.name` does not reach the kernel on Linux, and Glibc's module map hides
    /// `pthread_setname_np` (it needs `_GNU_SOURCE`); the calling thread's `comm` file takes the name.
    static func nameCurrentThread(_ name: String) {
        #if os(Linux)
        let kernelName = String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self)
        try? kernelName.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
        #endif
    }
}
