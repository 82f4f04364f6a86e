import Synchronization

/// The link each call was last relinked to in this process (phase 2, a validated switch), for the
/// newest `capacity` calls.
///
/// The delivery worker checks every customer update against it before sending: a database read per
/// update, on the hot path, raised the benchmark's phase-1 latency several-fold. Retries and
/// redeliveries, which may come after a restart that forgot these links, read the store instead.
final class RecentRelinks: Sendable {
    private struct State {
        var links: [String: String] = [:]
        /// Calls in the order they were first remembered: a ring, `next` the oldest once it is full.
        var order: [String] = []
        var next = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        precondition(capacity > 0, "capacity must be positive")
        self.capacity = capacity
    }

    func remember(_ link: String, forCall callId: String) {
        state.withLock { state in
            guard state.links.updateValue(link, forKey: callId) == nil else { return }
            if state.order.count < capacity {
                state.order.append(callId)
            } else {
                state.links[state.order[state.next]] = nil
                state.order[state.next] = callId
                state.next = (state.next + 1) % capacity
            }
        }
    }

    func link(forCall callId: String) -> String? {
        state.withLock { $0.links[callId] }
    }
}
