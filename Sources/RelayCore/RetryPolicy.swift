public import Foundation

/// What one attempt at an outbound request came to, in terms the retry rules need.
/// The HTTP adapter's types stay out of the core; the wiring translates.
public enum DeliveryAttemptResult: Sendable, Hashable {
    case response(status: Int, retryAfter: String?, bodyExcerpt: String)
    case transportFailure(isRetriable: Bool, description: String)
}

/// Which outbound failures are worth another try, and when.
///
/// 5xx, 408, 429, timeouts and connection errors retry; any other 4xx is the request's own fault and
/// retrying it would only repeat the failure. `Retry-After` on 429/503 is honoured up to `maxRetryAfter`.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    public var backoff: Backoff
    /// A server asking for a longer pause than this is waited on for this long, no longer.
    public var maxRetryAfter: Duration

    public init(maxAttempts: Int, backoff: Backoff, maxRetryAfter: Duration = .seconds(300)) {
        precondition(maxAttempts >= 1, "maxAttempts counts the first attempt")
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.maxRetryAfter = maxRetryAfter
    }

    public enum Decision: Sendable, Hashable {
        case delivered
        case retry(after: Duration)
        /// No further attempt: `error` says why, for the dead-letter record.
        case giveUp(error: String, status: Int?)
    }

    /// - Parameter attempt: 1 for the first attempt.
    public func decide(
        after result: DeliveryAttemptResult,
        attempt: Int,
        now: Date,
        using generator: inout some RandomNumberGenerator
    ) -> Decision {
        let failure: String
        var status: Int?
        var serverDelay: Duration?
        switch result {
        case .response(let code, let retryAfter, let excerpt):
            if (200..<300).contains(code) { return .delivered }
            status = code
            let summary = excerpt.isEmpty ? "HTTP \(code)" : "HTTP \(code): \(excerpt)"
            guard Self.isRetriable(status: code) else {
                return .giveUp(error: summary, status: code)
            }
            failure = summary
            if code == 429 || code == 503, let retryAfter {
                serverDelay = Self.parseRetryAfter(retryAfter, now: now)
            }
        case .transportFailure(let isRetriable, let description):
            guard isRetriable else { return .giveUp(error: description, status: nil) }
            failure = description
        }
        guard attempt < maxAttempts else {
            return .giveUp(error: "\(failure) (after \(attempt) attempts)", status: status)
        }
        let jittered = backoff.delay(forRetry: attempt - 1, using: &generator)
        if let serverDelay {
            return .retry(after: max(jittered, min(serverDelay, maxRetryAfter)))
        }
        return .retry(after: jittered)
    }

    public static func isRetriable(status: Int) -> Bool {
        status >= 500 || status == 408 || status == 429
    }

    /// `Retry-After` is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3); nil if neither.
    public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingWhitespace()
        if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: String(trimmed)) else { return nil }
        let seconds = date.timeIntervalSince(now)
        return .seconds(max(seconds, 0))
    }
}
