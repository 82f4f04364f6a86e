public import Logging
public import Foundation
public import RelayCore
public import RelayHTTP

/// Sends customer-update PUTs to the platform, retrying with backoff per the `RetryPolicy`.
public struct CustomerUpdateSender: Sendable {
    public enum Outcome: Sendable, Hashable {
        case delivered(status: Int, attempts: Int)
        case failed(error: String, status: Int?, attempts: Int, firstFailureAt: Date)
        /// The task was cancelled (the relay is stopping) before an outcome: neither delivered nor failed.
        case abandoned
    }

    let http: CurlHTTPClient
    let baseURL: String
    let requestTimeout: Duration
    let policy: RetryPolicy
    let logger: Logger

    public init(http: CurlHTTPClient, baseURL: String, requestTimeout: Duration, policy: RetryPolicy, logger: Logger) {
        self.http = http
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.requestTimeout = requestTimeout
        self.policy = policy
        self.logger = logger
    }

    public func url(for update: CustomerUpdate) -> String {
        baseURL + update.path()
    }

    public func send(_ update: CustomerUpdate) async -> Outcome {
        let request = HTTPRequest(
            method: "PUT", url: url(for: update),
            headers: [
                (name: "Content-Type", value: "application/json"),
                (name: "Idempotency-Key", value: update.idempotencyKey),
            ],
            body: update.body(), timeout: requestTimeout)
        var generator = SystemRandomNumberGenerator()
        var firstFailureAt: Date?
        var attempt = 1
        while true {
            let result: DeliveryAttemptResult
            do {
                let response = try await http.execute(request)
                result = .response(
                    status: response.status, retryAfter: response.header("retry-after"),
                    bodyExcerpt: Self.excerpt(response.body))
            } catch let error as HTTPClientError {
                result = .transportFailure(isRetriable: error.isRetriable, description: error.description)
            } catch {
                // Only cancellation gets here: the relay is stopping.
                return .abandoned
            }
            let now = Date()
            switch policy.decide(after: result, attempt: attempt, now: now, using: &generator) {
            case .delivered:
                if case .response(let status, _, _) = result { return .delivered(status: status, attempts: attempt) }
                return .delivered(status: 200, attempts: attempt)
            case .giveUp(let error, let status):
                return .failed(error: error, status: status, attempts: attempt, firstFailureAt: firstFailureAt ?? now)
            case .retry(let delay):
                firstFailureAt = firstFailureAt ?? now
                logger.debug(
                    "customer update failed; retrying",
                    metadata: [
                        LogKeys.callIdMasked: "\(Masking.mask(update.callId))", LogKeys.attempt: "\(attempt)",
                        LogKeys.error: "\(Self.summary(of: result))",
                    ])
                do { try await Task.sleep(for: delay) } catch { return .abandoned }
                attempt += 1
            }
        }
    }

    /// A log-safe summary: response bodies may echo personal data back, so only the status is kept.
    static func summary(of result: DeliveryAttemptResult) -> String {
        switch result {
        case .response(let status, _, _): "HTTP \(status)"
        case .transportFailure(_, let description): description
        }
    }

    /// Enough of an error body to diagnose, bounded so a dead-letter record stays small.
    static func excerpt(_ body: [UInt8], limit: Int = 512) -> String {
        let text = String(decoding: body.prefix(limit), as: UTF8.self)
        return body.count > limit ? text + "…" : text
    }
}
