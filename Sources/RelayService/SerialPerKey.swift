import Synchronization

/// Runs the operations given for one key one at a time, in the order they asked for their turn;
/// operations for different keys run concurrently.
///
/// The outbox dispatcher sends a call's customer updates through it, so the check "is this still the
/// call's link?" and the PUT that follows are never overtaken by a later update for the same call.
/// A key is remembered only while an operation for it runs or waits.
final class SerialPerKey: Sendable {
    private let turns = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func run<Result: Sendable>(_ key: String, _ operation: @Sendable () async throws -> Result) async rethrows -> Result
    {
        // Nearly always the key is free: take it without suspending.
        if !turns.withLock({ $0.claim(key, orWait: nil) }) {
            await withCheckedContinuation { (turn: CheckedContinuation<Void, Never>) in
                if turns.withLock({ $0.claim(key, orWait: turn) }) { turn.resume() }
            }
        }
        defer { handOver(key) }
        return try await operation()
    }

    /// How many keys are held or waited for (for tests: nothing is left behind).
    var heldKeys: Int { turns.withLock { $0.count } }

    /// How many operations wait for their turn on `key` (for tests).
    func waitingCount(for key: String) -> Int { turns.withLock { $0[key]?.count ?? 0 } }

    private func handOver(_ key: String) {
        let next = turns.withLock { waiting -> CheckedContinuation<Void, Never>? in
            guard let queue = waiting[key], let first = queue.first else {
                waiting[key] = nil
                return nil
            }
            waiting[key] = Array(queue.dropFirst())
            return first
        }
        next?.resume()
    }
}

extension [String: [CheckedContinuation<Void, Never>]] {
    /// Takes `key` if no one holds it; else queues `turn` (when given) behind its holder.
    fileprivate mutating func claim(_ key: String, orWait turn: CheckedContinuation<Void, Never>?) -> Bool {
        guard self[key] != nil else {
            self[key] = []
            return true
        }
        if let turn { self[key]!.append(turn) }
        return false
    }
}
