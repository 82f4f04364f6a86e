public import Foundation

/// Paces the lookups that an outage set back, so the backlog does not hit an upstream the moment its
/// breaker closes (seen: 119 to 411 requests/s for seconds, against 50/s steady). A token bucket: up
/// to `ratePerSecond` on average, at most one second's worth at once. Lookups on their first try do
/// not ask it: new calls keep their place; only the backlog waits its turn.
public struct RecoveryPacer: Sendable, Hashable {
    public let ratePerSecond: Double
    private var tokens: Double
    private var refilledAt: Date?

    public enum Turn: Sendable, Hashable {
        /// Go now.
        case now
        /// The turn is this caller's, `after` from now: wait that long, then go without asking again.
        case reserved(after: Duration)
        /// No turn soon: ask again after this long (nothing was reserved).
        case later(after: Duration)
    }

    public init(ratePerSecond: Double) {
        precondition(ratePerSecond > 0)
        self.ratePerSecond = ratePerSecond
        self.tokens = max(1, ratePerSecond)
    }

    /// Takes a turn at `now`. A turn due within `reserveWithin` is reserved, so waiters are handed
    /// successive turns rather than all waking for the same one; a later one is not, so a caller that
    /// goes away (parks) holds nothing.
    public mutating func take(now: Date, reserveWithin: Duration = .zero) -> Turn {
        let capacity = max(1, ratePerSecond)
        if let refilledAt {
            tokens = min(capacity, tokens + max(0, now.timeIntervalSince(refilledAt)) * ratePerSecond)
        }
        refilledAt = now
        // Within a millisecond of a whole turn counts as one: Dates are precise to about 0.1 µs here,
        // and a shorter wait would not move one at all.
        if tokens >= 1 - min(0.5, ratePerSecond / 1000) {
            tokens = max(0, tokens - 1)
            return .now
        }
        let wait = Duration.seconds((1 - tokens) / ratePerSecond)
        guard wait <= reserveWithin else { return .later(after: wait) }
        tokens -= 1
        return .reserved(after: wait)
    }
}
