import Foundation
public import Logging
public import RelayCore
public import RelayHTTP
import Synchronization
public import Tracing

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
        name: String,
        urlTemplate: URLTemplate,
        headers: [(name: String, value: String)],
        timeout: Duration,
        mapping: LookupMapping,
        breakerThreshold: Int,
        breakerOpenDuration: Duration
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
/// request per call; while it is open, enrichments wait (their next try scheduled in the store, no
/// attempt spent) rather than fail at once.
public final class Enricher: Sendable {
    public typealias Outcome = LookupOutcome

    let crm: UpstreamLookup
    /// Upstream names with a breaker: `crm`, and `erp` when an ERP lookup is configured.
    public var upstreams: [String] { [crm.name] + (erp.map { [$0.name] } ?? []) }
    /// The CRM's contact-by-id lookup (`{contactId}`): for overrides and context updates.
    let crmContact: UpstreamLookup?
    /// The CRM's search by email address (`{email}`): phase 2 of email and web-chat interactions.
    let crmEmail: UpstreamLookup?
    /// The CRM's search by messaging id (`{messagingId}`, `{platform}`): phase 2 of messaging.
    let crmMessaging: UpstreamLookup?
    /// The CRM's search by name (`{name}`): a suggestion only, for web chat and messaging.
    let crmName: UpstreamLookup?
    let erp: UpstreamLookup?
    let severalMatches: SeveralMatchesPolicy
    let http: CurlHTTPClient
    let policy: RetryPolicy
    let logger: Logger
    private let breakers: Mutex<[String: CircuitBreaker]>
    /// The pace of the backlog at the CRM (lookups an outage set back), so it drains at a bounded rate
    /// once the CRM is back while new calls keep their place.
    private let backlogPacer: Mutex<RecoveryPacer>
    /// Writes the task's span (`ServiceContext.current`, the dispatcher's lookup span) into each request.
    let tracer: any Tracer

    public init(
        crm: UpstreamLookup,
        crmContact: UpstreamLookup?,
        crmEmail: UpstreamLookup? = nil,
        crmMessaging: UpstreamLookup? = nil,
        crmName: UpstreamLookup? = nil,
        erp: UpstreamLookup?,
        severalMatches: SeveralMatchesPolicy,
        http: CurlHTTPClient,
        policy: RetryPolicy,
        backlogRatePerSecond: Double = 50,
        logger: Logger,
        tracer: any Tracer = InstrumentationSystem.tracer
    ) {
        self.tracer = tracer
        self.backlogPacer = Mutex(RecoveryPacer(ratePerSecond: backlogRatePerSecond))
        self.crm = crm
        self.crmContact = crmContact
        self.crmEmail = crmEmail
        self.crmMessaging = crmMessaging
        self.crmName = crmName
        self.erp = erp
        self.severalMatches = severalMatches
        self.http = http
        self.policy = policy
        self.logger = logger
        var breakers: [String: CircuitBreaker] = [:]
        // The contact lookup is the same CRM: it shares the search's breaker.
        for upstream in [crm] + (erp.map { [$0] } ?? []) {
            breakers[upstream.name] = CircuitBreaker(
                failureThreshold: upstream.breakerThreshold,
                openDuration: upstream.breakerOpenDuration
            )
        }
        self.breakers = Mutex(breakers)
    }

    /// The breaker state of an upstream, for health checks and tests.
    public func breakerState(_ upstream: String) -> CircuitBreaker.State? {
        breakers.withLock { $0[upstream]?.state }
    }

    /// A backlog lookup's turn at the CRM: nil once it may go (after a short wait for a turn reserved
    /// for it), else `.paced`, to come back later without holding a lookup slot.
    private func backlogTurn(_ isBacklog: Bool) async -> Outcome? {
        guard isBacklog else { return nil }
        switch backlogPacer.withLock({ $0.take(now: Date(), reserveWithin: Self.reservedTurnWindow) }) {
        case .now:
            return nil
        case .reserved(let wait):
            try? await Task.sleep(for: wait)
            return nil
        case .later(let wait):
            return .paced(
                reason: "\(crm.name) backlog paced at \(backlogPacer.withLock { $0.ratePerSecond })/s",
                after: wait
            )
        }
    }

    /// A backlog lookup waits in its slot for a turn this near; a later one parks, so that at most a
    /// quarter of a second's worth of backlog holds slots that new calls need.
    static let reservedTurnWindow: Duration = .milliseconds(250)

    /// - Parameter isBacklog: a lookup set back before (an outage): it waits its turn at the CRM.
    public func enrich(_ request: EnrichmentRequest, attempt: Int, isBacklog: Bool = false) async -> Outcome {
        if let wait = await backlogTurn(isBacklog) { return wait }
        var contact: CRMContact
        if let contactId = request.contactId {
            switch await fetchContact(contactId, attempt: attempt) {
            case .success(let found?): contact = found
            case .success(nil): return .noUpdate(reason: "the overriding CRM contact was not found")
            case .failure(let failure): return failure.outcome
            }
        } else {
            switch await search(request, attempt: attempt) {
            case .linked(let match): contact = match
            case .outcome(let outcome): return outcome
            }
        }
        guard let externalId = ExternalID(source: .crm, value: contact.contactId) else {
            return .failed(error: "the CRM's contact id is not a valid external id", status: nil)
        }
        if case .failure(let failure) = await addAccountStatus(to: &contact, attempt: attempt) {
            return failure.outcome
        }
        return .update(
            CustomerUpdate(
                customerId: request.customerId,
                externalId: externalId,
                callId: request.callId,
                idempotencyKey: "enrichment:\(request.eventId)",
                profile: contact
            )
        )
    }

    private enum SearchResult {
        case linked(CRMContact)
        case outcome(Outcome)
    }

    /// The seeds' order per channel: each identifier the request carries (address, number, messaging id)
    /// until one finds exactly one contact; then, when none did, the name, whose single match is only a
    /// suggestion. No match and several matches alike move on to the next identifier.
    private func search(_ request: EnrichmentRequest, attempt: Int) async -> SearchResult {
        var searches: [(lookup: UpstreamLookup, values: [String: String])] = []
        var unconfigured: [String] = []
        if let email = request.email {
            if let crmEmail { searches.append((crmEmail, ["email": email])) } else { unconfigured.append("email") }
        }
        if let phone = request.phone { searches.append((crm, ["phone": phone])) }
        if let messagingId = request.messagingId {
            if let crmMessaging {
                searches.append(
                    (crmMessaging, ["messagingId": messagingId, "platform": request.messagingPlatform ?? ""])
                )
            } else {
                unconfigured.append("messaging id")
            }
        }
        var reason =
            unconfigured.isEmpty
            ? "nothing to search the CRM by" : "no CRM \(unconfigured.joined(separator: " or ")) lookup is configured"
        for (lookup, values) in searches {
            let found: [CRMContact]
            switch await contacts(lookup, values: values, attempt: attempt) {
            case .success(let matches): found = matches
            case .failure(let failure): return .outcome(failure.outcome)
            }
            switch MatchDecision(found, policy: severalMatches) {
            case .linked(let match): return .linked(match)
            case .noMatch: reason = "no CRM match"
            case .ambiguous(let count): reason = "\(count) CRM matches: kept the temporary link"
            }
        }
        guard let name = request.name, let crmName else { return .outcome(.noUpdate(reason: reason)) }
        switch await contacts(crmName, values: ["name": name], attempt: attempt) {
        case .failure(let failure):
            // A suggestion is best effort: a name search that fails must not retry the identifier
            // searches, or dead-letter a lookup that has its answer (no single match).
            if case .refused = failure.outcome { return .outcome(failure.outcome) }
            return .outcome(.noUpdate(reason: "\(reason); the name search failed"))
        case .success(let found) where found.count == 1:
            guard let externalId = ExternalID(source: .crm, value: found[0].contactId) else {
                return .outcome(.noUpdate(reason: "\(reason); the name's match has no valid contact id"))
            }
            return .outcome(.suggestion(CRMSuggestion(externalId: externalId.description, name: found[0].name)))
        case .success(let found):
            return .outcome(.noUpdate(reason: "\(reason); \(found.count) CRM matches by name"))
        }
    }

    /// One search's matches. Every search is the same CRM: one breaker for all of them.
    private func contacts(
        _ lookup: UpstreamLookup,
        values: [String: String],
        attempt: Int
    ) async
        -> Result<[CRMContact], OutcomeFailure>
    {
        switch await call(lookup, values: values, attempt: attempt, breaker: crm.name) {
        case .success(let body):
            do {
                return .success(try lookup.mapping.contacts(in: body ?? []))
            } catch {
                return .failure(OutcomeFailure(.failed(error: "CRM response: \(error.message)", status: nil)))
            }
        case .failure(let failure):
            return .failure(failure)
        }
    }

    /// A context update applies only if its external id exists in its system of record: a CRM contact,
    /// or an ERP account. `.noUpdate` means it does not, and nothing changes.
    public func validate(_ change: ContextChange, attempt: Int, isBacklog: Bool = false) async -> Outcome {
        if let wait = await backlogTurn(isBacklog) { return wait }
        guard let externalId = ExternalID(parsing: change.newExternalId) else {
            return .noUpdate(reason: "not an external id")
        }
        var profile: CRMContact
        switch externalId.source {
        case .crm:
            switch await fetchContact(externalId.value, attempt: attempt) {
            case .success(let found?): profile = found
            case .success(nil): return .noUpdate(reason: "no such CRM contact")
            case .failure(let failure): return failure.outcome
            }
            if case .failure(let failure) = await addAccountStatus(to: &profile, attempt: attempt) {
                return failure.outcome
            }
        case .erp:
            guard let erp else { return .noUpdate(reason: "no ERP lookup is configured to validate ERP: ids") }
            switch await call(erp, values: ["accountId": externalId.value], attempt: attempt) {
            case .success(nil): return .noUpdate(reason: "no such ERP account")
            case .success(let body):
                profile = CRMContact(
                    contactId: externalId.value,
                    accountId: externalId.value,
                    erpAccountStatus: body.flatMap { try? erp.mapping.accountStatus(in: $0) }
                )
            case .failure(let failure): return failure.outcome
            }
        case .phone:
            return .noUpdate(reason: "a PHONE: id cannot be switched to")
        }
        return .update(
            CustomerUpdate(
                customerId: change.customerId,
                externalId: externalId,
                callId: change.callId,
                idempotencyKey: "context-update:\(change.eventId)",
                profile: profile
            )
        )
    }

    /// The contact by id; nil when the CRM has no such contact.
    private func fetchContact(_ contactId: String, attempt: Int) async -> Result<CRMContact?, OutcomeFailure> {
        guard let crmContact else {
            return .failure(OutcomeFailure(.failed(error: "no CRM contact lookup is configured", status: nil)))
        }
        switch await call(crmContact, values: ["contactId": contactId], attempt: attempt, breaker: crm.name) {
        case .success(nil):
            return .success(nil)
        case .success(let body?):
            do {
                return .success(try crmContact.mapping.contacts(in: body).first)
            } catch {
                return .failure(OutcomeFailure(.failed(error: "CRM response: \(error.message)", status: nil)))
            }
        case .failure(let failure):
            return .failure(failure)
        }
    }

    private func addAccountStatus(to contact: inout CRMContact, attempt: Int) async -> Result<Void, OutcomeFailure> {
        guard let erp, let accountId = contact.accountId, !accountId.isEmpty else { return .success(()) }
        switch await call(erp, values: ["accountId": accountId], attempt: attempt) {
        case .success(let body):
            contact.erpAccountStatus = body.flatMap { try? erp.mapping.accountStatus(in: $0) }
            return .success(())
        case .failure(let failure):
            return .failure(failure)
        }
    }

    /// One request to an upstream through its breaker. A 404 is an answer (nothing there), not a failure.
    private func call(
        _ upstream: UpstreamLookup,
        values: [String: String],
        attempt: Int,
        breaker: String? = nil
    ) async
        -> Result<[UInt8]?, OutcomeFailure>
    {
        let now = Date()
        let breakerName = breaker ?? upstream.name
        let permission = breakers.withLock { $0[breakerName]!.permit(now: now) }
        if case .refused(let retryAfter) = permission {
            return .failure(
                OutcomeFailure(
                    .refused(
                        reason: "\(breakerName) circuit open",
                        after: .seconds(max(0.05, retryAfter.timeIntervalSince(now)))
                    )
                )
            )
        }
        var headers = upstream.headers + [(name: "Accept", value: "application/json")]
        if let context = ServiceContext.current { tracer.inject(context, into: &headers, using: HTTPHeadersInjector()) }
        let request = HTTPRequest(
            method: "GET",
            url: upstream.urlTemplate.render(values),
            headers: headers,
            timeout: upstream.timeout
        )
        let result: DeliveryAttemptResult
        var body: [UInt8] = []
        do {
            let response = try await http.execute(request)
            body = response.body
            result = .response(
                status: response.status,
                retryAfter: response.header("retry-after"),
                bodyExcerpt: DeliverySender.excerpt(response.body)
            )
        } catch let error as HTTPClientError {
            result = .transportFailure(isRetriable: error.isRetriable, description: error.description)
        } catch {
            breakers.withLock { $0[breakerName]!.recordNoVerdict(now: Date()) }
            return .failure(OutcomeFailure(.retry(after: .zero, error: "cancelled")))
        }
        if case .response(404, _, _) = result {
            breakers.withLock { $0[breakerName]!.recordSuccess() }
            return .success(nil)
        }
        var generator = SystemRandomNumberGenerator()
        switch policy.decide(after: result, attempt: attempt, now: Date(), using: &generator) {
        case .delivered:
            breakers.withLock { $0[breakerName]!.recordSuccess() }
            return .success(body)
        case .retry(let delay):
            breakers.withLock { $0[breakerName]!.recordFailure(now: Date()) }
            return .failure(
                OutcomeFailure(
                    .retry(after: delay, error: "\(upstream.name): \(DeliveryStateMachine.summary(of: result))")
                )
            )
        case .giveUp(let error, let status):
            // A 4xx is the request's fault, not the upstream's health: the upstream answered, which
            // closes a half-open breaker like any answer (left half-open, it would refuse every call).
            if status == nil || (status ?? 0) >= 500 {
                breakers.withLock { $0[breakerName]!.recordFailure(now: Date()) }
            } else {
                breakers.withLock { $0[breakerName]!.recordSuccess() }
            }
            return .failure(OutcomeFailure(.failed(error: "\(upstream.name): \(error)", status: status)))
        }
    }

    struct OutcomeFailure: Error {
        let outcome: Outcome
        init(_ outcome: Outcome) { self.outcome = outcome }
    }
}
