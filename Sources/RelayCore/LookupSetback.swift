public import Foundation

/// What becomes of a lookup (phase-2 enrichment, a context update's validation) that did not finish
/// this time: wait and try again, or give up as a dead letter.
///
/// Only a real try at the upstream is an attempt. A refusal by the upstream's open circuit breaker
/// asked nobody: it waits for the breaker's next probe and costs no attempt, so an outage longer than
/// the attempts' backoff no longer dead-letters every call that started during it. What bounds a
/// lookup instead is its age since its first setback (`enrichment.maxAgeSeconds`): past it, the
/// answer would come too late to matter to the agent.
public struct LookupSetbackRule: Sendable, Hashable {
    /// Real tries at the upstream in all, the first included.
    public var maxAttempts: Int
    /// How long after its first setback a lookup may still be tried.
    public var maxAge: Duration

    public init(maxAttempts: Int, maxAge: Duration) {
        precondition(maxAttempts >= 1, "maxAttempts counts the first attempt")
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
    }

    public enum Setback: Sendable, Hashable {
        /// Nothing was asked: the upstream's breaker is open, or the backlog waits its turn.
        /// `reason` says which ("crm circuit open").
        case refused(reason: String, until: Duration)
        /// A request went out and failed in a way worth retrying after `after`.
        case failed(error: String, after: Duration)
    }

    public enum Step: Sendable, Hashable {
        /// Try again after `delay`; `attempts` is the job's attempt count from now on.
        case wait(delay: Duration, attempts: Int)
        case giveUp(error: String, attempts: Int)
    }

    /// - Parameters:
    ///   - attemptsMade: real tries before this one's outcome (a refusal made none).
    ///   - firstSetbackAt: when the lookup was first set back (this one, for the first).
    public func next(after setback: Setback, attemptsMade: Int, firstSetbackAt: Date, now: Date) -> Step {
        let age = Duration.seconds(max(0, now.timeIntervalSince(firstSetbackAt)))
        switch setback {
        case .refused(let reason, let until):
            guard age + until <= maxAge else {
                return .giveUp(
                    error: "\(reason) for longer than the lookup may wait (\(Self.describe(maxAge)))",
                    attempts: attemptsMade
                )
            }
            return .wait(delay: until, attempts: attemptsMade)
        case .failed(let error, let after):
            let attempts = attemptsMade + 1
            guard attempts < maxAttempts else {
                return .giveUp(error: "\(error) (after \(attempts) attempts)", attempts: attempts)
            }
            guard age + after <= maxAge else {
                return .giveUp(
                    error: "\(error) (gave up after \(Self.describe(age)), \(attempts) attempts)",
                    attempts: attempts
                )
            }
            return .wait(delay: after, attempts: attempts)
        }
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = Int(duration.totalSeconds.rounded())
        return seconds % 60 == 0 && seconds > 0 ? "\(seconds / 60) min" : "\(seconds) s"
    }
}
