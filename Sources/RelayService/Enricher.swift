public import Logging
import Foundation
public import RelayCore
public import RelayHTTP
import Synchronization

/// One configured lookup against a system of record (CRM search, ERP account).
public struct UpstreamLookup: Sendable {
    public var name: String
    public var urlTemplate: URLTemplate
    public var headers: [(name: String, value: String)]
    public var timeout: Duration
    public var mapping: LookupMapping
    public var breakerThreshold: Int
    public var breakerOpenDuration: Duration

    public init(
        name: String, urlTemplate: URLTemplate, headers: [(name: String, value: String)], timeout: Duration,
        mapping: LookupMapping, breakerThreshold: Int, breakerOpenDuration: Duration
    ) {
        self.name = name
        self.urlTemplate = urlTemplate
        self.headers = headers
        self.timeout = timeout
        self.mapping = mapping
        self.breakerThreshold = breakerThreshold
        self.breakerOpenDuration = breakerOpenDuration
    }
}

/// Phase 2 of identity resolution: asks the CRM who the caller is, then the ERP about the account,
/// and turns the answer into a customer update with `CRM:{contactId}` and the profile.
///
/// Each upstream has its own circuit breaker, so an outage costs a probe now and then instead of a
/// request per call; while it is open, enrichments wait (parked) rather than fail at once.
public final class Enricher: Sendable {
    public enum Outcome: Sendable {
        case update(CustomerUpdate)
        /// Nothing to add (no match, several matches under the `temporary` policy): the phase-1 link stays.
        case noUpdate(reason: String)
        case retry(after: Duration, error: String)
        case failed(error: String, status: Int?)
    }

    let crm: UpstreamLookup
    let erp: UpstreamLookup?
    let severalMatches: SeveralMatchesPolicy
    let http: CurlHTTPClient
    let policy: RetryPolicy
    let logger: Logger
    private let breakers: Mutex<[String: CircuitBreaker]>

    public init(
        crm: UpstreamLookup, erp: UpstreamLookup?, severalMatches: SeveralMatchesPolicy, http: CurlHTTPClient,
        policy: RetryPolicy, logger: Logger
    ) {
        self.crm = crm
        self.erp = erp
        self.severalMatches = severalMatches
        self.http = http
        self.policy = policy
        self.logger = logger
        var breakers: [String: CircuitBreaker] = [:]
        for upstream in [crm] + (erp.map { [$0] } ?? []) {
            breakers[upstream.name] = CircuitBreaker(
                failureThreshold: upstream.breakerThreshold, openDuration: upstream.breakerOpenDuration)
        }
        self.breakers = Mutex(breakers)
    }

    /// The breaker state of an upstream, for health checks and tests.
    public func breakerState(_ upstream: String) -> CircuitBreaker.State? {
        breakers.withLock { $0[upstream]?.state }
    }

    public func enrich(_ request: EnrichmentRequest, attempt: Int) async -> Outcome {
        let contacts: [CRMContact]
        switch await call(crm, values: ["phone": request.phone], attempt: attempt) {
        case .success(let body):
            do {
                contacts = try crm.mapping.contacts(in: body ?? [])
            } catch {
                return .failed(error: "CRM response: \(error.message)", status: nil)
            }
        case .failure(let failure):
            return failure.outcome
        }
        var contact: CRMContact
        switch MatchDecision(contacts, policy: severalMatches) {
        case .noMatch:
            return .noUpdate(reason: "no CRM match")
        case .ambiguous(let count):
            return .noUpdate(reason: "\(count) CRM matches: kept the temporary link")
        case .linked(let match):
            contact = match
        }
        guard let externalId = ExternalID(source: .crm, value: contact.contactId) else {
            return .failed(error: "the CRM's contact id is not a valid external id", status: nil)
        }
        if let erp, let accountId = contact.accountId, !accountId.isEmpty {
            switch await call(erp, values: ["accountId": accountId], attempt: attempt) {
            case .success(let body):
                contact.erpAccountStatus = body.flatMap { try? erp.mapping.accountStatus(in: $0) }
            case .failure(let failure):
                return failure.outcome
            }
        }
        return .update(
            CustomerUpdate(
                customerId: request.customerId, externalId: externalId, callId: request.callId,
                idempotencyKey: "enrichment:\(request.eventId)", profile: contact))
    }

    /// One request to an upstream through its breaker. A 404 is an answer (nothing there), not a failure.
    private func call(_ upstream: UpstreamLookup, values: [String: String], attempt: Int) async
        -> Result<[UInt8]?, OutcomeFailure>
    {
        let now = Date()
        let permission = breakers.withLock { $0[upstream.name]!.permit(now: now) }
        if case .refused(let retryAfter) = permission {
            return .failure(
                OutcomeFailure(.retry(after: .seconds(max(0.05, retryAfter.timeIntervalSince(now))), error: "\(upstream.name) circuit open")))
        }
        let request = HTTPRequest(
            method: "GET", url: upstream.urlTemplate.render(values),
            headers: upstream.headers + [(name: "Accept", value: "application/json")], timeout: upstream.timeout)
        let result: DeliveryAttemptResult
        var body: [UInt8] = []
        do {
            let response = try await http.execute(request)
            body = response.body
            result = .response(
                status: response.status, retryAfter: response.header("retry-after"),
                bodyExcerpt: DeliveryWorker.excerpt(response.body))
        } catch let error as HTTPClientError {
            result = .transportFailure(isRetriable: error.isRetriable, description: error.description)
        } catch {
            return .failure(OutcomeFailure(.retry(after: .zero, error: "cancelled")))
        }
        if case .response(404, _, _) = result {
            breakers.withLock { $0[upstream.name]!.recordSuccess() }
            return .success(nil)
        }
        var generator = SystemRandomNumberGenerator()
        switch policy.decide(after: result, attempt: attempt, now: Date(), using: &generator) {
        case .delivered:
            breakers.withLock { $0[upstream.name]!.recordSuccess() }
            return .success(body)
        case .retry(let delay):
            breakers.withLock { $0[upstream.name]!.recordFailure(now: Date()) }
            return .failure(OutcomeFailure(.retry(after: delay, error: "\(upstream.name): \(DeliveryWorker.summary(of: result))")))
        case .giveUp(let error, let status):
            // A 4xx is the request's fault, not the upstream's health.
            if status == nil || (status ?? 0) >= 500 {
                breakers.withLock { $0[upstream.name]!.recordFailure(now: Date()) }
            }
            return .failure(OutcomeFailure(.failed(error: "\(upstream.name): \(error)", status: status)))
        }
    }

    struct OutcomeFailure: Error {
        let outcome: Outcome
        init(_ outcome: Outcome) { self.outcome = outcome }
    }
}
