import Synchronization

/// Work waiting for one of a fixed number of workers, in two queues, each first in first out: fresh
/// work and overdue work, taken in turns while both hold some. Neither waits behind the other's
/// backlog: a dead relay's lapsed claims behind a survivor's own work, nor a new call's update behind
/// a thousand retries come due after an outage. `next()` suspends while the lane is empty; once
/// `close()` is called, it returns nil to every worker, whatever is still queued: what a lane holds
/// is only a copy of what the store keeps.
final class WorkLane<Element: Sendable>: Sendable {
    private struct State {
        var queued: [Element] = []
        /// Index of the first element still queued: removing from the front of an array is O(n).
        var head = 0
        /// Work that was due before anything just handed over.
        var overdue: [Element] = []
        var overdueHead = 0
        /// Which queue the next take prefers while both hold work.
        var overdueTurn = true
        var waiting: [CheckedContinuation<Element?, Never>] = []
        var closed = false
    }

    private let state = Mutex(State())

    /// Queues `element` (in the overdue queue when `overdue`), or hands it to a waiting worker; false
    /// when the lane is closed.
    @discardableResult
    func push(_ element: Element, overdue: Bool = false) -> Bool {
        let waiter: CheckedContinuation<Element?, Never>?? = state.withLock { state in
            if state.closed { return .none }
            if !state.waiting.isEmpty { return .some(state.waiting.removeFirst()) }
            if overdue {
                state.overdue.append(element)
            } else {
                state.queued.append(element)
            }
            return .some(nil)
        }
        switch waiter {
        case .none: return false
        case .some(let continuation?): continuation.resume(returning: element)
        case .some(nil): break
        }
        return true
    }

    func next() async -> Element? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
            let ready: Element?? = state.withLock { state in
                if state.closed { return .some(nil) }
                let hasOverdue = state.overdueHead < state.overdue.count
                let hasFresh = state.head < state.queued.count
                if hasOverdue && (state.overdueTurn || !hasFresh) {
                    state.overdueTurn = false
                    let element = state.overdue[state.overdueHead]
                    state.overdueHead += 1
                    if state.overdueHead > 1024 && state.overdueHead * 2 > state.overdue.count {
                        state.overdue.removeFirst(state.overdueHead)
                        state.overdueHead = 0
                    }
                    return .some(element)
                }
                state.overdueTurn = true
                if hasFresh {
                    let element = state.queued[state.head]
                    state.head += 1
                    if state.head > 1024 && state.head * 2 > state.queued.count {
                        state.queued.removeFirst(state.head)
                        state.head = 0
                    }
                    return .some(element)
                }
                state.waiting.append(continuation)
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Wakes every waiting worker with nil; later pushes are refused.
    func close() {
        let waiting = state.withLock { state in
            state.closed = true
            state.queued = []
            state.head = 0
            state.overdue = []
            state.overdueHead = 0
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiting { waiter.resume(returning: nil) }
    }

    var count: Int { state.withLock { $0.queued.count - $0.head + $0.overdue.count - $0.overdueHead } }
}
