import Foundation
import Logging
import RelayService
import ServiceLifecycle
import UnixSignals

/// SIGTERM and SIGINT for `run`: the first one shuts the services down gracefully (stop consuming, finish
/// or hand back what is in flight, close the broker connection); a second one, while that is still under
/// way, ends the process at once with status 128 + the signal's number (143 for SIGTERM, 130 for
/// SIGINT), as a shell reports a process killed by that signal.
///
/// Forcing is safe: a delivery is acked only after its state is committed (each commit fsynced) and its
/// effects are confirmed, so whatever the exit cuts short is still unacked, and the broker delivers it
/// again to the next relay.
enum ShutdownSignals {
    /// Runs `group` until it finishes, with the signals above trapped for as long as it runs.
    static func run(_ group: ServiceGroup, logger: Logger) async throws {
        // Trapped before the services start, so an early signal is not lost.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                var caught = 0
                for await signal in signals {
                    caught += 1
                    if caught == 1 {
                        logger.notice(
                            "shutting down gracefully; send the signal again to exit at once",
                            metadata: [LogKeys.signal: "\(signal)"]
                        )
                        await group.triggerGracefulShutdown()
                    } else {
                        logger.warning(
                            "second signal: exiting at once; unfinished work stays on the broker",
                            metadata: [LogKeys.signal: "\(signal)", LogKeys.exitStatus: "\(forcedExitStatus(signal))"]
                        )
                        // `_exit`, not `exit`: no atexit handlers or destructors racing the running threads.
                        _exit(forcedExitStatus(signal))
                    }
                }
            }
            defer { tasks.cancelAll() }  // the signal listener ends with the services, however they end
            try await group.run()
        }
    }

    static func forcedExitStatus(_ signal: UnixSignal) -> Int32 { 128 + signal.rawValue }
}
