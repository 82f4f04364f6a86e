import Foundation
public import RelayCore
public import RelayHTTP

/// Sends one delivery job over HTTP: a customer-update PUT to the platform, or a signed post-call
/// webhook. It only makes the request and reports what came back; what follows (retry, dead letter)
/// is the `DeliveryStateMachine`'s decision.
public struct DeliverySender: Sendable {
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

    public init(http: CurlHTTPClient, targets: Targets, requestTimeout: Duration) {
        self.http = http
        self.targets = targets
        self.requestTimeout = requestTimeout
    }

    /// Where a customer update or webhook goes.
    func url(for job: DeliveryJob) -> String {
        switch job.kind {
        case .customerUpdate: targets.platformBaseURL + (job.path ?? "")
        case .postCallWebhook: targets.postCallWebhookURL
        case .enrich, .contextChange: ""
        }
    }

    func send(_ job: DeliveryJob) async -> DeliveryAttemptResult {
        var headers: [(name: String, value: String)] = [
            (name: "Content-Type", value: "application/json"),
            (name: "Idempotency-Key", value: job.idempotencyKey),
        ]
        let body = Array(job.body.utf8)
        if job.kind == .postCallWebhook, let signer = targets.webhookSigner, let webhookId = job.webhookId {
            // Each attempt signs with its own time: receivers reject timestamps far from their clock.
            headers += signer.headers(id: webhookId, timestamp: Int64(Date().timeIntervalSince1970), body: body)
        }
        let request = HTTPRequest(method: job.method, url: url(for: job), headers: headers, body: body, timeout: requestTimeout)
        do {
            let response = try await http.execute(request)
            return .response(
                status: response.status, retryAfter: response.header("retry-after"), bodyExcerpt: Self.excerpt(response.body))
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
