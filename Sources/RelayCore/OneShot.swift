import Synchronization

/// A value set once and awaited by any number of tasks: each wait returns as soon as it is set, or
/// throws `CancellationError` when its own task is cancelled first. For "the store is ready", "the
/// server is bound to this port", "the gate is open": a wait that wakes when it happens, where a poll
/// would wake every few milliseconds until it does.
public final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Value, any Error>] = [:]
        var cancelledBeforeWaiting: Set<Int> = []
    }

    private let state = Mutex(State())

    private enum WaitOutcome {
        case resume(Value)
        case fail
        case wait
    }

    public init() {}

    /// The value, once set.
    public var current: Value? { state.withLock { $0.value } }

    /// Sets the value and wakes every wait. Only the first call sets it: it returns false for the others.
    @discardableResult
    public func set(_ value: Value) -> Bool {
        let waiters: [CheckedContinuation<Value, any Error>]? = state.withLock { state in
            guard state.value == nil else { return nil }
            state.value = value
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: value) }
        return true
    }

    /// Waits until the value is set.
    public func value() async throws -> Value {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let now: WaitOutcome = state.withLock { state in
                    if let value = state.value { return .resume(value) }
                    if state.cancelledBeforeWaiting.remove(id) != nil { return .fail }
                    state.waiters[id] = continuation
                    return .wait
                }
                switch now {
                case .resume(let value): continuation.resume(returning: value)
                case .fail: continuation.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            // Cancelled before the wait was stored: it fails as soon as it would be stored.
            let waiter: CheckedContinuation<Value, any Error>? = state.withLock { state in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    if state.value == nil { state.cancelledBeforeWaiting.insert(id) }
                    return nil
                }
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
