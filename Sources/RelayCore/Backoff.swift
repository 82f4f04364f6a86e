/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"):
/// the wait before retry `n` is uniform in `[0, min(maxDelay, baseDelay · 2ⁿ)]`.
///
/// Full jitter spreads retries of many failed requests over the whole window, so a recovering
/// upstream is not hit by them all at once. Pure: the random source is a parameter.
public struct Backoff: Sendable, Hashable {
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(baseDelay: Duration, maxDelay: Duration) {
        precondition(baseDelay > .zero && maxDelay >= baseDelay, "backoff needs 0 < baseDelay <= maxDelay")
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The upper bound of the wait before retry number `retry` (0 for the first retry).
    public func ceiling(forRetry retry: Int) -> Duration {
        // Past 2^30 the product has long passed any sane maxDelay; capping the exponent avoids overflow.
        let factor = 1 << min(max(retry, 0), 30)
        let base = baseDelay.totalSeconds
        return .seconds(min(base * Double(factor), maxDelay.totalSeconds))
    }

    public func delay(forRetry retry: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(forRetry: retry).totalSeconds
        return .seconds(Double.random(in: 0...ceiling, using: &generator))
    }

    public func delay(forRetry retry: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(forRetry: retry, using: &generator)
    }
}

extension Duration {
    public var totalSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
