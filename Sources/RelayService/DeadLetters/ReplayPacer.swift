/// Spaces replays at most `rate` per second.
struct ReplayPacer {
    let interval: Duration?
    private var nextAllowed: ContinuousClock.Instant?

    init(rate: Double?) {
        interval = rate.flatMap { $0 > 0 ? .seconds(1 / $0) : nil }
    }

    /// How long to wait before the next replay, and books its slot.
    mutating func waitBeforeNext(now: ContinuousClock.Instant) -> Duration? {
        guard let interval else { return nil }
        let start = max(now, nextAllowed ?? now)
        nextAllowed = start + interval
        return start > now ? start - now : nil
    }
}
