import Foundation
public import Logging
public import RelayCore
public import RelayStore
import Synchronization

/// The synchronous CTI lookup (`POST /api/v1/genesys/lookup`): who is on this call, answered within a
/// budget whatever the CRM is doing.
///
/// In order: a live recent override for the caller (the store), the CRM or ERP id of the contact that
/// holds the number (the store), a recent answer for the same caller (memory), then the CRM, raced
/// against what is left of the budget. When the CRM has not answered
/// by then, the phase-1 `PHONE:` id goes back and the CRM's answer, when it comes, is remembered for the
/// next lookup: the platform's CTI timeout is 300–500 ms and a late answer is worth nothing to it.
/// Concurrent lookups for one caller share one CRM request.
public final class CustomerLookup: Sendable {
    public struct Request: Sendable, Hashable {
        public var fromNumber: String
        public var toNumber: String
        public var callId: String
        public var direction: CallDirection

        public init(fromNumber: String, toNumber: String, callId: String, direction: CallDirection) {
            self.fromNumber = fromNumber
            self.toNumber = toNumber
            self.callId = callId
            self.direction = direction
        }

        /// The customer's number: the caller on inbound calls, the dialled number on outbound ones.
        public var customerNumber: String { direction == .inbound ? fromNumber : toNumber }
    }

    public enum Source: String, Sendable, Hashable {
        /// An agent's validated switch for this caller, still live.
        case override
        /// The CRM or ERP id of the contact that holds this number (the single customer view).
        case contact
        /// What the CRM said for this caller a little earlier.
        case cache
        /// The CRM answered within the budget.
        case crm
        /// The phase-1 id: no CRM configured, no match, or no answer within the budget.
        case phone
        /// No usable number (withheld, or not a phone number): nothing to link.
        case none
    }

    public struct Answer: Sendable, Hashable {
        public var externalId: String?
        public var profile: CRMContact?
        public var source: Source

        public init(externalId: String?, profile: CRMContact? = nil, source: Source) {
            self.externalId = externalId
            self.profile = profile
            self.source = source
        }

        /// The platform's CTI response schema: `{externalId, name, email, data}`.
        public func body() -> [UInt8] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return Array(try! encoder.encode(Body(self)))
        }

        private struct Body: Encodable {
            var externalId: String?
            var name: String?
            var email: String?
            var data: CustomerData

            init(_ answer: Answer) {
                externalId = answer.externalId
                name = answer.profile?.name
                email = answer.profile?.email
                data = CustomerData(answer.profile)
            }

            // `externalId`, `name` and `email` are always present (null when unknown): the CTI schema has them.
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(externalId, forKey: .externalId)
                try container.encode(name, forKey: .name)
                try container.encode(email, forKey: .email)
                try container.encode(data, forKey: .data)
            }

            enum CodingKeys: String, CodingKey { case externalId, name, email, data }
        }
    }

    /// A remembered CRM answer (or a remembered "no match"), in memory only: personal data never
    /// reaches the disk through this cache.
    struct CachedAnswer {
        var externalId: String
        var profile: CRMContact?
        var expiresAt: ContinuousClock.Instant
    }

    let linking: PhaseOneLinking
    let store: any InteractionStore
    /// Phase 1's local answer for a phone key (a live override, else the contact holding the number), with
    /// the contact's name and email, in one read; without it, only overrides are read.
    let localAnswer: (@Sendable (String) async throws -> ContactDirectory.LocalAnswer?)?
    let enricher: Enricher?
    let budget: Duration
    let cacheTimeToLive: Duration
    let cacheCapacity: Int
    let metrics: RelayMetrics
    let logger: Logger
    private let cache = Mutex<[String: CachedAnswer]>([:])
    private let inFlight = Mutex<[String: Task<CachedAnswer?, Never>]>([:])

    public init(
        linking: PhaseOneLinking,
        store: any InteractionStore,
        localAnswer: (@Sendable (String) async throws -> ContactDirectory.LocalAnswer?)? = nil,
        enricher: Enricher?,
        budget: Duration,
        cacheTimeToLive: Duration = .seconds(600),
        cacheCapacity: Int = 100_000,
        metrics: RelayMetrics,
        logger: Logger
    ) {
        self.linking = linking
        self.store = store
        self.localAnswer = localAnswer
        self.enricher = enricher
        self.budget = budget
        self.cacheTimeToLive = cacheTimeToLive
        self.cacheCapacity = cacheCapacity
        self.metrics = metrics
        self.logger = logger
    }

    public func answer(_ request: Request) async -> Answer {
        let started = ContinuousClock.now
        let answer = await resolve(request, deadline: started + budget)
        metrics.lookup(source: answer.source.rawValue, duration: ContinuousClock.now - started)
        return answer
    }

    private func resolve(_ request: Request, deadline: ContinuousClock.Instant) async -> Answer {
        guard let number = PhoneNumber(normalizing: request.customerNumber, defaultRegion: linking.defaultRegion) else {
            return Answer(externalId: nil, source: .none)
        }
        let phoneKey = linking.hasher.keyedHash(number)
        let phoneId = ExternalID.phone(keyedHash: phoneKey).description
        // Phase 1's order: a live override, then the link the contacts already hold for this number.
        var overridden: (externalId: String, source: Source, name: String?, email: String?)?
        do {
            if let localAnswer {
                if let local = try await localAnswer(phoneKey) {
                    switch local.link {
                    case .override(let id): overridden = (id.description, .override, local.name, local.email)
                    case .contact(let id): overridden = (id.description, .contact, local.name, local.email)
                    }
                }
            } else if let stored = try await store.override(phoneKey: phoneKey, now: Date()) {
                overridden = (stored, .override, nil, nil)
            }
        } catch {
            // The store is the relay's own: when it fails, the lookup still answers.
            logger.warning("lookup could not read overrides or contacts", metadata: [LogKeys.error: "\(error)"])
        }
        // Read after the override, not before: a CRM answer that arrived meanwhile is used, not asked again.
        let now = ContinuousClock.now
        let cached = cache.withLock { cache -> CachedAnswer? in
            guard let entry = cache[phoneKey] else { return nil }
            guard entry.expiresAt > now else {
                cache[phoneKey] = nil
                return nil
            }
            return entry
        }
        if let overridden {
            // The CRM's data is the cached answer's only if it is that contact's; the name and email the
            // contact holds locally come first (an agent or an import may have corrected them).
            var profile = cached?.externalId == overridden.externalId ? cached?.profile : nil
            if overridden.name != nil || overridden.email != nil {
                var local =
                    profile
                    ?? CRMContact(contactId: ExternalID(parsing: overridden.externalId)?.value ?? overridden.externalId)
                local.name = overridden.name ?? local.name
                local.email = overridden.email ?? local.email
                profile = local
            }
            return Answer(externalId: overridden.externalId, profile: profile, source: overridden.source)
        }
        if let cached {
            return Answer(externalId: cached.externalId, profile: cached.profile, source: .cache)
        }
        guard let enricher else { return Answer(externalId: phoneId, source: .phone) }

        let crmAnswer = sharedCRMRequest(
            phoneKey: phoneKey,
            phone: number.e164,
            phoneId: phoneId,
            callId: request.callId,
            enricher: enricher
        )
        // nil: no answer in time; .some(nil): the CRM answered, with nothing.
        let answered: CachedAnswer?? = await value(before: deadline, orElse: nil) { .some(await crmAnswer.value) }
        switch answered {
        case .some(.some(let entry)):
            return Answer(
                externalId: entry.externalId,
                profile: entry.profile,
                source: entry.profile == nil ? .phone : .crm
            )
        default:
            return Answer(externalId: phoneId, source: .phone)
        }
    }

    /// One CRM request per caller at a time; its answer fills the cache even when no lookup waits for it.
    private func sharedCRMRequest(
        phoneKey: String,
        phone: String,
        phoneId: String,
        callId: String,
        enricher: Enricher
    ) -> Task<CachedAnswer?, Never> {
        inFlight.withLock { requests in
            if let running = requests[phoneKey] { return running }
            // A request that finished since the caller looked has filled the cache before it left.
            let now = ContinuousClock.now
            if let answered = cache.withLock({ $0[phoneKey] }), answered.expiresAt > now {
                return Task { answered }
            }
            let task = Task {
                let outcome = await enricher.enrich(
                    EnrichmentRequest(callId: callId, eventId: "lookup:\(callId)", customerId: phoneId, phone: phone),
                    attempt: 1
                )
                let entry: CachedAnswer?
                switch outcome {
                case .update(let update):
                    entry = CachedAnswer(
                        externalId: update.externalId.description,
                        profile: update.profile,
                        expiresAt: .now + cacheTimeToLive
                    )
                case .noUpdate, .suggestion:
                    // No match (or several): the phase-1 id is the answer, and asking again soon would
                    // only load the CRM.
                    entry = CachedAnswer(externalId: phoneId, profile: nil, expiresAt: .now + cacheTimeToLive)
                case .retry, .refused, .paced, .failed:
                    entry = nil  // the CRM is failing: ask again next time
                }
                if let entry { remember(entry, phoneKey: phoneKey) }
                _ = inFlight.withLock { $0.removeValue(forKey: phoneKey) }
                return entry
            }
            requests[phoneKey] = task
            return task
        }
    }

    /// Drops every remembered CRM answer: after a person is forgotten, none of theirs may be answered.
    public func forgetRememberedAnswers() {
        cache.withLock { $0.removeAll() }
    }

    /// Phase 2's answer for a caller (the CRM's profile, with the ERP's status), kept like a CRM answer
    /// of this lookup's own: the CTI lookup for the number then answers with the last CRM data the relay
    /// saw, whether the answer's id comes from the cache, an override or the contact.
    public func rememberEnrichment(phone: String, update: CustomerUpdate) {
        guard cacheTimeToLive > .zero, update.externalId.source != .phone,
            let number = PhoneNumber(normalizing: phone, defaultRegion: linking.defaultRegion)
        else { return }
        remember(
            CachedAnswer(
                externalId: update.externalId.description,
                profile: update.profile,
                expiresAt: .now + cacheTimeToLive
            ),
            phoneKey: linking.hasher.keyedHash(number)
        )
    }

    private func remember(_ entry: CachedAnswer, phoneKey: String) {
        cache.withLock { cache in
            if cache.count >= cacheCapacity {
                let now = ContinuousClock.now
                cache = cache.filter { $0.value.expiresAt > now }
                // Still full of live entries: start afresh rather than grow without bound.
                if cache.count >= cacheCapacity { cache.removeAll(keepingCapacity: true) }
            }
            cache[phoneKey] = entry
        }
    }
}
