import Foundation
public import RelayCore
public import RelayHTTP
import Synchronization

/// Sends one delivery job over HTTP: a customer-update PUT to the platform, or a signed post-call
/// webhook. It makes the request and reports what came back; what follows (retry, dead letter) is the
/// `DeliveryStateMachine`'s decision. Each target has a circuit breaker, so an outage costs a probe now
/// and then instead of a request (and an attempt) per waiting send.
public final class DeliverySender: Sendable {
    public struct Targets: Sendable {
        public var platformBaseURL: String
        public var postCallWebhookURL: String
        public var webhookSigner: WebhookSigner?

        public init(platformBaseURL: String, postCallWebhookURL: String, webhookSigner: WebhookSigner?) {
            self.platformBaseURL = platformBaseURL.hasSuffix("/") ? String(platformBaseURL.dropLast()) : platformBaseURL
            self.postCallWebhookURL = postCallWebhookURL
            self.webhookSigner = webhookSigner
        }
    }

    let http: CurlHTTPClient
    let targets: Targets
    let requestTimeout: Duration
    private let breakers: Mutex<[String: CircuitBreaker]>

    /// The send targets, as breakers and metrics name them.
    public static let targetNames = ["platform", "webhook"]

    public init(
        http: CurlHTTPClient,
        targets: Targets,
        requestTimeout: Duration,
        breakerThreshold: Int = 5,
        breakerOpen: Duration = .seconds(30)
    ) {
        self.http = http
        self.targets = targets
        self.requestTimeout = requestTimeout
        self.breakers = Mutex(
            Dictionary(
                uniqueKeysWithValues: Self.targetNames.map {
                    ($0, CircuitBreaker(failureThreshold: breakerThreshold, openDuration: breakerOpen))
                }
            )
        )
    }

    static func target(of job: DeliveryJob) -> String {
        job.kind == .postCallWebhook ? "webhook" : "platform"
    }

    public func breakerState(_ target: String) -> CircuitBreaker.State? {
        breakers.withLock { $0[target]?.state }
    }

    /// Until when the job's target's breaker is open; nil when it is not.
    func openUntil(_ job: DeliveryJob) -> Date? {
        guard case .open(let until) = breakerState(Self.target(of: job)) else { return nil }
        return until
    }

    /// Whether the job's target takes a request now; `.refused` says until when it will not.
    func permit(_ job: DeliveryJob, now: Date) -> CircuitBreaker.Permission {
        breakers.withLock { $0[Self.target(of: job)]!.permit(now: now) }
    }

    /// What an attempt says about its target's health: any answer but a 5xx, 408 or 429 is a healthy
    /// target (a 4xx is the request's fault); a 5xx, 408, 429 or a transport error is a failure.
    func record(_ result: DeliveryAttemptResult, of job: DeliveryJob, now: Date) {
        breakers.withLock { breakers in
            let target = Self.target(of: job)
            switch result {
            case .response(let status, _, _) where !RetryPolicy.isRetriable(status: status):
                breakers[target]!.recordSuccess()
            case .transportFailure(_, "cancelled"):
                breakers[target]!.recordNoVerdict(now: now)
            default:
                breakers[target]!.recordFailure(now: now)
            }
        }
    }

    /// Where a customer update or webhook goes.
    func url(for job: DeliveryJob) -> String {
        switch job.kind {
        case .customerUpdate: targets.platformBaseURL + (job.path ?? "")
        case .postCallWebhook: targets.postCallWebhookURL
        case .enrich, .contextChange: ""
        }
    }

    /// - Parameter traceHeaders: the attempt's span, as the tracer writes it for the receiver to continue.
    func send(_ job: DeliveryJob, traceHeaders: [(name: String, value: String)] = []) async -> DeliveryAttemptResult {
        var headers: [(name: String, value: String)] = [
            (name: "Content-Type", value: "application/json"),
            (name: "Idempotency-Key", value: job.idempotencyKey),
        ]
        headers += traceHeaders
        let body = Array(job.body.utf8)
        if job.kind == .postCallWebhook, let signer = targets.webhookSigner, let webhookId = job.webhookId {
            // Each attempt signs with its own time: receivers reject timestamps far from their clock.
            headers += signer.headers(id: webhookId, timestamp: Int64(Date().timeIntervalSince1970), body: body)
        }
        let request = HTTPRequest(
            method: job.method,
            url: url(for: job),
            headers: headers,
            body: body,
            timeout: requestTimeout
        )
        do {
            let response = try await http.execute(request)
            return .response(
                status: response.status,
                retryAfter: response.header("retry-after"),
                bodyExcerpt: Self.excerpt(response.body)
            )
        } catch let error as HTTPClientError {
            return .transportFailure(isRetriable: error.isRetriable, description: error.description)
        } catch {
            return .transportFailure(isRetriable: true, description: "cancelled")
        }
    }

    /// Enough of an error body to diagnose, bounded so a dead-letter record stays small.
    static func excerpt(_ body: [UInt8], limit: Int = 512) -> String {
        let text = String(decoding: body.prefix(limit), as: UTF8.self)
        return body.count > limit ? text + "…" : text
    }
}
