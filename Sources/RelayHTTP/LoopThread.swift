#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A detached OS thread for blocking work. `curl_multi_poll` blocks; on the cooperative pool it
/// would take one of only a few threads (two on the target machine) away from every task.
enum LoopThread {
    private final class Body {
        let name: String
        let run: @Sendable () -> Void

        init(name: String, run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// - Parameter name: shows in debuggers where the platform lets Swift set it.
    static func start(name: String, _ run: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(name: name, run: run)).toOpaque()
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t? = nil
        #endif
        let result = pthread_create(
            &thread,
            nil,
            { context in
                let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
                // Glibc's module map hides pthread_setname_np (it needs _GNU_SOURCE), so Linux
                // threads stay unnamed.
                #if canImport(Darwin)
                _ = pthread_setname_np(body.name)
                #endif
                body.run()
                return nil
            },
            context
        )
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            fatalError("pthread_create failed: \(result)")
        }
        #if canImport(Glibc)
        pthread_detach(thread)
        #else
        pthread_detach(thread!)
        #endif
    }
}
