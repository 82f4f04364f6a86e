public import Foundation

/// A circuit breaker per upstream, as a pure state machine: after `failureThreshold` consecutive
/// failures it opens and refuses calls for `openDuration`; then it lets one probe through
/// (half-open). The probe's success closes it; its failure opens it again. An outage so costs no
/// more than a probe now and then.
public struct CircuitBreaker: Sendable, Hashable {
    public enum State: Sendable, Hashable, CustomStringConvertible {
        case closed(consecutiveFailures: Int)
        case open(until: Date)
        /// One probe is in flight; other calls are refused until it reports.
        case halfOpen

        public var description: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "halfOpen"
            }
        }
    }

    public enum Permission: Sendable, Hashable {
        case allowed
        /// This call is the probe: report its outcome like any other.
        case probe
        case refused(retryAfter: Date)
    }

    public var failureThreshold: Int
    public var openDuration: Duration
    public private(set) var state: State = .closed(consecutiveFailures: 0)

    public init(failureThreshold: Int = 5, openDuration: Duration = .seconds(30)) {
        precondition(failureThreshold >= 1)
        self.failureThreshold = failureThreshold
        self.openDuration = openDuration
    }

    /// Asks to make a call at `now`.
    public mutating func permit(now: Date) -> Permission {
        switch state {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .refused(retryAfter: until) }
            state = .halfOpen
            return .probe
        case .halfOpen:
            return .refused(retryAfter: now.addingTimeInterval(1))
        }
    }

    public mutating func recordSuccess() {
        state = .closed(consecutiveFailures: 0)
    }

    /// A call that ended without the upstream's verdict (cancelled): a probe hands its turn back, so
    /// the next call probes at once instead of the breaker staying half-open for good.
    public mutating func recordNoVerdict(now: Date) {
        if case .halfOpen = state { state = .open(until: now) }
    }

    public mutating func recordFailure(now: Date) {
        switch state {
        case .closed(let failures) where failures + 1 < failureThreshold:
            state = .closed(consecutiveFailures: failures + 1)
        case .closed, .halfOpen, .open:
            state = .open(until: now.addingTimeInterval(openDuration.totalSeconds))
        }
    }
}
