import Synchronization

/// Work waiting for one of a fixed number of workers, in two queues, each first in first out: fresh
/// work and overdue work, taken in turns while both hold some. Neither waits behind the other's
/// backlog: a dead relay's lapsed claims behind a survivor's own work, nor a new call's update behind
/// a thousand retries come due after an outage. `next()` suspends while the lane is empty; once
/// `close()` is called, it returns nil to every worker, whatever is still queued: what a lane holds
/// is only a copy of what the store keeps.
final class WorkLane<Element: Sendable>: Sendable {
    /// First in first out over an array, read from an index: removing from the front of an array is O(n).
    private struct Queue {
        private var elements: [Element] = []
        private var head = 0

        var count: Int { elements.count - head }

        mutating func append(_ element: Element) { elements.append(element) }

        mutating func popFirst() -> Element? {
            guard head < elements.count else { return nil }
            let element = elements[head]
            head += 1
            if head > 1024 && head * 2 > elements.count {
                elements.removeFirst(head)
                head = 0
            }
            return element
        }

        mutating func removeAll() { self = Queue() }
    }

    private struct State {
        var fresh = Queue()
        /// Work that was due before anything just handed over.
        var overdue = Queue()
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
                state.fresh.append(element)
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
                let overdueFirst = state.overdueTurn || state.fresh.count == 0
                if overdueFirst, let element = state.overdue.popFirst() {
                    state.overdueTurn = false
                    return .some(element)
                }
                state.overdueTurn = true
                if let element = state.fresh.popFirst() { return .some(element) }
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
            state.fresh.removeAll()
            state.overdue.removeAll()
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiting { waiter.resume(returning: nil) }
    }

    var count: Int { state.withLock { $0.fresh.count + $0.overdue.count } }
}
