public import Logging
import Foundation
public import RelayAMQP
public import RelayCore
public import RelayHTTP
public import RelayStore
public import ServiceLifecycle

/// Sends the outbound requests queued on `relay.deliveries`: customer-update PUTs to the platform and
/// signed post-call webhooks to the CRM.
///
/// Retries follow the `RetryPolicy`. A short wait happens here; a longer one parks the job in a delay
/// queue that expires back into `relay.deliveries`, so no process holds a backlog in memory and no
/// delivery stays unacked for long. A job that cannot be delivered becomes a `deliveryFailed` dead
/// letter. The job is acked only after its successor (a parked retry or a dead letter) is confirmed.
public final class DeliveryWorker: Service {
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

    let amqp: AMQPClient
    let http: CurlHTTPClient
    let names: RelayNames
    let delayQueues: DelayQueues
    let targets: Targets
    let policy: RetryPolicy
    let requestTimeout: Duration
    let inProcessRetryLimit: Duration
    let concurrency: UInt16
    let enrichmentConcurrency: UInt16
    let deadLetters: DeadLetterPublisher
    let enricher: Enricher?
    /// Where validated context updates leave their recent override, and for how long.
    let overrides: (store: any InteractionStore, timeToLive: Duration)?
    let metrics: RelayMetrics
    let logger: Logger
    /// Opens the personal data of the jobs it sends, and seals it again in every job it queues.
    let cipher: FieldCipher?
    /// One customer update (or relink) per call at a time (`sendUnlessSuperseded`).
    let updatesPerCall = SerialPerKey()
    /// The links this worker's relinks set, what updates are checked against (`isSuperseded`).
    let relinks = RecentRelinks(capacity: 65_536)
    /// When a lookup that did not finish is tried again, or given up (`enrichment.maxAgeSeconds`).
    let lookupSetbacks: LookupSetbackRule
    /// Told of every enrichment that linked a caller: the CTI lookup remembers the CRM's data.
    let enriched: (@Sendable (_ phone: String, _ update: CustomerUpdate) -> Void)?

    public init(
        amqp: AMQPClient, http: CurlHTTPClient, names: RelayNames, delayQueues: DelayQueues, targets: Targets,
        policy: RetryPolicy, requestTimeout: Duration, inProcessRetryLimit: Duration, concurrency: Int,
        enrichmentConcurrency: Int = 64, enricher: Enricher? = nil, overrides: (store: any InteractionStore, timeToLive: Duration)? = nil,
        cipher: FieldCipher? = nil, metrics: RelayMetrics = .disabled, logger: Logger,
        enrichmentMaxAge: Duration = .seconds(900),
        enriched: (@Sendable (_ phone: String, _ update: CustomerUpdate) -> Void)? = nil
    ) {
        self.enriched = enriched
        self.lookupSetbacks = LookupSetbackRule(maxAttempts: policy.maxAttempts, maxAge: enrichmentMaxAge)
        self.metrics = metrics
        self.cipher = cipher
        self.enricher = enricher
        self.overrides = overrides
        self.amqp = amqp
        self.http = http
        self.names = names
        self.delayQueues = delayQueues
        self.targets = targets
        self.policy = policy
        self.requestTimeout = requestTimeout
        self.inProcessRetryLimit = inProcessRetryLimit
        self.concurrency = UInt16(clamping: concurrency)
        self.enrichmentConcurrency = UInt16(clamping: enrichmentConcurrency)
        self.deadLetters = DeadLetterPublisher(amqp: amqp, exchange: names.deadLetterExchange)
        self.logger = logger
    }

    /// Two consumers, one worker: platform updates and webhooks on `relay.deliveries`, lookups on
    /// `relay.enrichment`, each with its own prefetch, so a slow CRM never holds phase-1 updates back.
    /// Either consumer handles any job: a parked lookup retry comes back through `relay.deliveries`.
    public func run() async throws {
        await rememberRecentLinks()
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.amqp.consumeUntilShutdown(queue: self.names.deliveriesQueue, prefetch: self.concurrency) {
                    await self.process($0)
                }
            }
            group.addTask {
                await self.amqp.consumeUntilShutdown(
                    queue: self.names.enrichmentQueue, prefetch: self.enrichmentConcurrency
                ) { await self.process($0) }
            }
        }
    }

    /// Before consuming: the links set in the last hour, as this worker's relinks would have left them,
    /// so a phase-1 update still queued from before a restart is not sent over its call's CRM link.
    func rememberRecentLinks() async {
        guard let store = overrides?.store else { return }
        do {
            let links = try await store.recentCRMOrERPLinks(since: Date().addingTimeInterval(-3600), limit: relinks.capacity)
            // Oldest first, so the newest are the last the ring would forget.
            for link in links.reversed() { relinks.remember(link.externalId, forCall: link.callId) }
            logger.debug("remembered recent links", metadata: [LogKeys.linkCount: "\(links.count)"])
        } catch {
            // Nothing is lost: updates queued from before the restart may go out before their successor.
            logger.error(
                "could not read recent links; updates queued before the restart are not checked against them",
                metadata: [LogKeys.error: "\(error)"])
        }
    }

    func url(for job: DeliveryJob) -> String {
        switch job.kind {
        case .customerUpdate: targets.platformBaseURL + (job.path ?? "")
        case .postCallWebhook: targets.postCallWebhookURL
        // The template, not the rendered URL: that one holds the number, address, messaging id or
        // name searched by. The first search the request makes (the channel's order).
        case .enrich: firstLookup(of: job.enrichment)?.urlTemplate.template ?? "(no CRM lookup configured)"
        case .contextChange: enricher?.crmContact?.urlTemplate.template ?? "(no CRM contact lookup configured)"
        }
    }

    private func firstLookup(of request: EnrichmentRequest?) -> UpstreamLookup? {
        guard let enricher, let request else { return enricher?.crm }
        if request.contactId != nil { return enricher.crmContact }
        if request.email != nil, let crmEmail = enricher.crmEmail { return crmEmail }
        if request.phone != nil { return enricher.crm }
        if request.messagingId != nil, let crmMessaging = enricher.crmMessaging { return crmMessaging }
        return enricher.crmName ?? enricher.crm
    }

    func process(_ delivery: Delivery) async {
        let inFlight = metrics.inFlight(stage: "deliveries")
        inFlight.increment()
        defer { inFlight.decrement() }
        let job: DeliveryJob
        do {
            var decoded = try DeliveryJob.decode(delivery.body)
            if let cipher { decoded = try decoded.opened(with: cipher) }
            job = decoded
        } catch {
            // Only the relay writes this queue: a job it cannot read is a bug or a foreign message.
            let now = Date()
            let record = DeadLetterRecord(
                id: DeadLetterRecord.stableID(reason: .deliveryFailed, source: delivery.body), reason: .deliveryFailed,
                callId: nil, eventType: nil, eventId: nil, attempts: 0, firstFailureAt: now, lastFailureAt: now,
                lastError: "not a delivery job: \(error)", originalPayload: delivery.body,
                origin: .init(exchange: names.workExchange, routingKey: names.deliveryRoutingKey))
            await finish(delivery, deadLetter: record)
            return
        }
        if job.kind == .enrich || job.kind == .contextChange {
            if delivery.routingKey == names.deliveryRoutingKey {
                // A parked lookup comes back from its delay queue through relay.deliveries (the delay
                // queues dead-letter under one routing key), as does one replayed from an older record:
                // it goes back to relay.enrichment, so retries during a CRM outage never hold the slots
                // of phase-1 updates.
                await handBack(delivery, toRoutingKey: names.enrichmentRoutingKey)
                return
            }
            await lookUp(job, delivery: delivery)
            return
        }
        await deliver(job, settling: delivery)
    }

    /// Sends the job, retrying in process for short waits, and settles `delivery` with the outcome:
    /// acked once delivered, or once the job is parked in a delay queue or dead-lettered (both
    /// confirmed). `delivery` is the job's own message, or the lookup whose answer the job is.
    private func deliver(_ job: DeliveryJob, settling delivery: Delivery) async {
        var current = job
        var generator = SystemRandomNumberGenerator()
        while true {
            let attempt = current.attempts + 1
            let started = ContinuousClock.now
            guard let result = await sendUnlessSuperseded(current, redelivered: delivery.redelivered) else {
                dropSuperseded(
                    delivery, callId: current.callId, [LogKeys.eventId: "\(current.causeId)", LogKeys.attempt: "\(attempt)"])
                return
            }
            if Task.isCancelled { return }  // stopping: left unacked, the broker delivers it again
            let elapsed = ContinuousClock.now - started
            let now = Date()
            let decision = policy.decide(after: result, attempt: attempt, now: now, using: &generator)
            let outcome: String
            switch decision {
            case .delivered: outcome = "delivered"
            case .giveUp: outcome = "deadLettered"
            case .retry(let delay): outcome = delay <= inProcessRetryLimit || delayQueues.queues.isEmpty ? "retried" : "parked"
            }
            metrics.delivery(
                kind: current.kind.rawValue, outcome: outcome, statusClass: RelayMetrics.statusClass(result), duration: elapsed)
            switch decision {
            case .delivered:
                logger.info("delivered", metadata: metadata(current, attempt: attempt, result: result))
                amqp.ack(delivery)
                return
            case .giveUp(let error, let status):
                current.attempts = attempt
                let record = DeadLetterRecord(
                    id: DeadLetterRecord.stableID(reason: .deliveryFailed, source: Array(current.idempotencyKey.utf8)),
                    reason: .deliveryFailed, callId: current.callId, eventType: nil, eventId: current.causeId,
                    attempts: attempt, firstFailureAt: current.firstFailureAt ?? now, lastFailureAt: now, lastError: error,
                    originalPayload: sealed(current).encoded(),
                    origin: .init(exchange: names.workExchange, routingKey: names.deliveryRoutingKey),
                    target: .init(method: current.method, url: url(for: current), lastStatus: status))
                await finish(delivery, deadLetter: record)
                return
            case .retry(let delay):
                current.attempts = attempt
                current.firstFailureAt = current.firstFailureAt ?? now
                current.lastError = Self.summary(of: result)
                // Shutting down: the retry waits in a delay queue (or, without one, goes back unacked)
                // rather than keep the process up.
                if !Task.isShuttingDownGracefully && (delay <= inProcessRetryLimit || delayQueues.queues.isEmpty) {
                    logger.debug("retrying", metadata: metadata(current, attempt: attempt, result: result))
                    do { try await Task.sleep(for: delay) } catch { return }  // stopping: left unacked
                    continue
                }
                await park(current, delivery: delivery, delay: delay, result: result)
                return
            }
        }
    }

    /// Phase 2 and context updates: the enricher's answer becomes a customer-update job, sent from here
    /// with the same retries, parking and dead-lettering as any other. A validated context update also
    /// leaves a recent override for the caller.
    private func lookUp(_ job: DeliveryJob, delivery: Delivery) async {
        var current = job
        while true {
            let attempt = current.attempts + 1
            let started = ContinuousClock.now
            let outcome: Enricher.Outcome
            switch (enricher, job.enrichment, job.contextChange) {
            case (let enricher?, let request?, _):
                // A lookup set back before is backlog: it takes its turn at the upstream's pace.
                outcome = await enricher.enrich(request, attempt: attempt, isBacklog: current.firstFailureAt != nil)
            case (let enricher?, nil, let change?):
                outcome = await enricher.validate(change, attempt: attempt, isBacklog: current.firstFailureAt != nil)
            case (nil, _, .some):
                // It must be found in the CRM before anything changes; without a CRM, nothing does.
                outcome = .noUpdate(reason: "no CRM lookup is configured to validate it")
            default:
                outcome = .failed(error: "no CRM lookup is configured", status: nil)
            }
            if Task.isCancelled { return }  // stopping: left unacked, the broker delivers it again
            metrics.enrichment(outcome: outcome.metricLabel, duration: ContinuousClock.now - started)
            let now = Date()
            switch outcome {
            case .update(let update):
                do {
                    // The interaction follows its customer: the post-call webhook and reconciliation see the
                    // new link. Enrichment only upgrades a PHONE: link; a validated switch replaces any.
                    // Relinked under the call's turn before the update is sent, so an update of the call
                    // still to be sent sees itself superseded (`isSuperseded`).
                    let linked = update.externalId.description
                    let rule: RelinkRule = job.contextChange != nil ? .anyLink : .phoneLinkOnly
                    let current: String?
                    if let store = overrides?.store {
                        current = try await updatesPerCall.run(job.callId) {
                            let current = try await store.relink(callId: job.callId, to: linked, now: now, replacing: rule)
                            if let current { self.relinks.remember(current, forCall: job.callId) }
                            return current
                        }
                    } else {
                        current = nil
                    }
                    if let current, current != linked {
                        // The call was switched while the CRM answered (or phase 1 linked it to an
                        // override): this answer must not put the platform back on its match.
                        dropSuperseded(delivery, callId: job.callId, [LogKeys.externalIdMasked: "\(update.externalId.masked)"])
                        return
                    }
                    if job.contextChange == nil, let phone = job.enrichment?.phone { enriched?(phone, update) }
                    if let change = job.contextChange, let phoneKey = change.phoneKey, let overrides {
                        try await overrides.store.setOverride(
                            phoneKey: phoneKey, externalId: linked, callId: job.callId, now: now,
                            expiresAt: now.addingTimeInterval(overrides.timeToLive.totalSeconds))
                    }
                } catch {
                    await requeue(delivery, couldNotRecord: "the new link", error)
                    return
                }
                logger.info(
                    job.kind == .contextChange ? "context updated" : "enriched",
                    metadata: [
                        LogKeys.callIdMasked: "\(Masking.mask(job.callId))", LogKeys.externalIdMasked: "\(update.externalId.masked)",
                        LogKeys.attempt: "\(attempt)",
                    ])
                // Sent from this slot rather than queued on relay.deliveries: one broker round trip fewer per
                // enrichment, and a slow platform holds lookup slots, never phase-1 ones. The phase-1 update
                // cannot overtake it: it waits for the call's turn and then finds itself superseded. A retry
                // that must wait is parked like any delivery's and comes back through relay.deliveries; a
                // crash before this lookup is acked redelivers it, and the update is sent then.
                await deliver(DeliveryJob(customerUpdate: update, causeId: job.causeId), settling: delivery)
                return
            case .suggestion(let suggestion):
                // Never a link: the interaction keeps its phase-1 id, and the agent sees the suggestion
                // in the contact and journey views.
                if let store = overrides?.store {
                    do {
                        try await store.recordSuggestion(
                            callId: job.callId, externalId: suggestion.externalId,
                            sealedName: suggestion.name.flatMap { name in
                                cipher?.seal(name, context: ContactDirectory.SealContext.suggestionName)
                            }, now: now)
                    } catch {
                        await requeue(delivery, couldNotRecord: "the suggestion", error)
                        return
                    }
                }
                logger.info(
                    "not enriched; the customer's name suggests a CRM contact",
                    metadata: [
                        LogKeys.callIdMasked: "\(Masking.mask(job.callId))",
                        LogKeys.externalIdMasked: "\(Masking.mask(suggestion.externalId))",
                    ])
                amqp.ack(delivery)
                return
            case .noUpdate(let reason):
                if let change = job.contextChange {
                    logger.notice(
                        "context update rejected; nothing changed",
                        metadata: [
                            LogKeys.callIdMasked: "\(Masking.mask(job.callId))",
                            LogKeys.externalIdMasked: "\(Masking.mask(change.newExternalId))", LogKeys.reason: "\(reason)",
                        ])
                } else {
                    logger.info("not enriched", metadata: [LogKeys.callIdMasked: "\(Masking.mask(job.callId))", LogKeys.reason: "\(reason)"])
                }
                amqp.ack(delivery)
                return
            case .failed(let error, let status):
                current.attempts = attempt
                await deadLetterLookup(current, delivery: delivery, error: error, status: status, now: now)
                return
            case .refused(let reason, let delay), .paced(let reason, let delay):
                // Nobody was asked (an open breaker, or the backlog's pace): no attempt is spent. A paced
                // backlog lookup parks even a short wait, so its slot goes to a new call.
                var paced = false
                if case .paced = outcome { paced = true }
                if await setBack(
                    &current, .refused(reason: reason, until: delay), error: reason, delivery: delivery, now: now,
                    parkShortWaits: paced)
                {
                    continue
                }
                return
            case .retry(let delay, let failure):
                if await setBack(&current, .failed(error: failure, after: delay), error: failure, delivery: delivery, now: now) {
                    continue
                }
                return
            }
        }
    }

    /// A lookup that did not finish this time: waits here and returns true (try again now), or parks or
    /// dead-letters it and returns false. Bounded by its attempts and its age (`LookupSetbackRule`).
    /// - Parameter parkShortWaits: park even a short wait, freeing the slot (a paced backlog lookup).
    private func setBack(
        _ job: inout DeliveryJob, _ setback: LookupSetbackRule.Setback, error: String, delivery: Delivery, now: Date,
        parkShortWaits: Bool = false
    ) async -> Bool {
        let firstSetbackAt = job.firstFailureAt ?? now
        job.firstFailureAt = firstSetbackAt
        switch lookupSetbacks.next(after: setback, attemptsMade: job.attempts, firstSetbackAt: firstSetbackAt, now: now) {
        case .giveUp(let reason, let attempts):
            job.attempts = attempts
            await deadLetterLookup(job, delivery: delivery, error: reason, status: nil, now: now)
            return false
        case .wait(let delay, let attempts):
            job.attempts = attempts
            job.lastError = error
            // Shutting down: the retry waits in a delay queue (or, without one, goes back unacked).
            let canPark = !delayQueues.queues.isEmpty
            if !Task.isShuttingDownGracefully && (!canPark || (!parkShortWaits && delay <= inProcessRetryLimit)) {
                do { try await Task.sleep(for: delay) } catch { return false }  // stopping: left unacked
                return true
            }
            await park(job, delivery: delivery, delay: delay, result: .transportFailure(isRetriable: true, description: error))
            return false
        }
    }

    /// A lookup that will not finish becomes an `enrichmentFailed` dead letter (its job sealed, the URL
    /// its template), acked once the record is confirmed.
    private func deadLetterLookup(_ job: DeliveryJob, delivery: Delivery, error: String, status: Int?, now: Date) async {
        let record = DeadLetterRecord(
            id: DeadLetterRecord.stableID(reason: .enrichmentFailed, source: Array(job.idempotencyKey.utf8)),
            reason: .enrichmentFailed, callId: job.callId, eventType: nil, eventId: job.causeId,
            attempts: job.attempts, firstFailureAt: job.firstFailureAt ?? now, lastFailureAt: now, lastError: error,
            originalPayload: sealed(job).encoded(),
            origin: .init(exchange: names.workExchange, routingKey: names.enrichmentRoutingKey),
            target: .init(method: "GET", url: url(for: job), lastStatus: status))
        await finish(delivery, deadLetter: record)
    }

    /// A lookup whose outcome the store would not take goes back to the queue, after a pause: a store that
    /// refuses writes would otherwise take it round in a loop.
    private func requeue(_ delivery: Delivery, couldNotRecord what: String, _ error: any Error) async {
        logger.error("could not record \(what); the job stays queued", metadata: [LogKeys.error: "\(error)"])
        try? await Task.sleep(for: .seconds(1))
        amqp.nack(delivery, requeue: true)
    }

    /// A customer update that a later link of its call superseded: not sent, counted, and the message
    /// that carried it acked (the update's own, or the lookup whose answer it was).
    private func dropSuperseded(_ delivery: Delivery, callId: String, _ details: Logger.Metadata) {
        logger.info(
            "customer update superseded by a later link; not sent",
            metadata: details.merging([LogKeys.callIdMasked: "\(Masking.mask(callId))"]) { $1 })
        metrics.delivery(
            kind: DeliveryJob.Kind.customerUpdate.rawValue, outcome: "superseded", statusClass: "none", duration: .zero)
        amqp.ack(delivery)
    }

    /// Customer updates go out one at a time per call, each only while nothing has superseded it; nil
    /// when something has. Checked and sent under the call's turn, which relinks also take: of two
    /// updates for a call, the one relinked later is always sent later, or the earlier one not at all.
    private func sendUnlessSuperseded(_ job: DeliveryJob, redelivered: Bool) async -> DeliveryAttemptResult? {
        guard job.kind == .customerUpdate else { return await send(job) }
        return await updatesPerCall.run(job.callId) {
            await self.isSuperseded(job, redelivered: redelivered) ? nil : await self.send(job)
        }
    }

    /// An update whose call has since been linked to another CRM or ERP id (phase 2 over phase 1, a
    /// validated switch over phase 2): sending it would put the platform back on the older link. A call
    /// still on a `PHONE:` id supersedes nothing: reconciliation queues its upgrade before relinking.
    ///
    /// First attempts are checked against the links this worker set, or found set in the last hour when
    /// it started (no read on the hot path). A retry or a redelivery reads the store. Left open: a
    /// relink by reconciliation (which queues its update, then relinks) racing a phase-1 first attempt.
    func isSuperseded(_ job: DeliveryJob, redelivered: Bool) async -> Bool {
        guard job.kind == .customerUpdate else { return false }
        let current: String?
        if let remembered = relinks.link(forCall: job.callId) {
            current = remembered
        } else if job.attempts > 0 || redelivered, let store = overrides?.store {
            current = try? await store.link(callId: job.callId)
        } else {
            return false
        }
        guard let current, ExternalID(parsing: current)?.source != .phone,
            let sent = try? Self.linkDecoder.decode(LinkInBody.self, from: Data(job.body.utf8)).externalId
        else { return false }
        return current != sent
    }

    private struct LinkInBody: Decodable {
        var externalId: String
    }

    private static let linkDecoder = JSONDecoder()

    /// The job as it may be written to the broker.
    private func sealed(_ job: DeliveryJob) -> DeliveryJob {
        cipher.map(job.sealed) ?? job
    }

    private func send(_ job: DeliveryJob) async -> DeliveryAttemptResult {
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

    /// Puts the job in the delay queue that fits the wait; acks the delivery once that is confirmed.
    private func park(_ job: DeliveryJob, delivery: Delivery, delay: Duration, result: DeliveryAttemptResult) async {
        guard let queue = delayQueues.queue(for: delay) else { return }
        do {
            try await amqp.publish(
                OutboundMessage(
                    exchange: "", routingKey: queue.name, body: sealed(job).encoded(),
                    headers: DeadLetter.carriedHeaders(from: delivery.headers),
                    messageId: "\(job.idempotencyKey)#\(job.attempts)"))
            logger.info(
                "delivery parked for a retry",
                metadata: metadata(job, attempt: job.attempts, result: result).merging(["delivery.delay.queue": "\(queue.name)"]) { $1 })
            amqp.ack(delivery)
        } catch {
            logger.error("could not park a retry; the delivery stays queued", metadata: [LogKeys.error: "\(error)"])
            amqp.nack(delivery, requeue: true)
        }
    }

    /// Moves a delivery, as it is, to another queue of the work exchange; acks it once confirmed there.
    private func handBack(_ delivery: Delivery, toRoutingKey routingKey: String) async {
        do {
            try await amqp.publish(
                OutboundMessage(
                    exchange: names.workExchange, routingKey: routingKey, body: delivery.body,
                    headers: DeadLetter.carriedHeaders(from: delivery.headers)))
            amqp.ack(delivery)
        } catch {
            logger.error("could not hand a lookup back to its queue; it stays queued", metadata: [LogKeys.error: "\(error)"])
            try? await Task.sleep(for: .seconds(1))
            amqp.nack(delivery, requeue: true)
        }
    }

    private func finish(_ delivery: Delivery, deadLetter record: DeadLetterRecord) async {
        do {
            try await deadLetters.publish(record, causedBy: delivery)
            metrics.deadLettered(reason: record.reason.rawValue)
            // The record keeps the upstream's answer for diagnosis; the log only its status. A body may
            // echo a customer's name, which no pattern would catch.
            let loggedError = record.target?.lastStatus.map { "HTTP \($0)" } ?? record.lastError
            logger.warning(
                "dead-lettered",
                metadata: [
                    LogKeys.deadLetterId: "\(record.id)", LogKeys.deadLetterReason: "\(record.reason.rawValue)",
                    LogKeys.callIdMasked: "\(Masking.mask(record.callId ?? ""))", LogKeys.error: "\(loggedError)",
                    LogKeys.attempt: "\(record.attempts)",
                ])
            amqp.ack(delivery)
        } catch {
            logger.error("could not publish a dead letter; the delivery stays queued", metadata: [LogKeys.error: "\(error)"])
            amqp.nack(delivery, requeue: true)
        }
    }

    private func metadata(_ job: DeliveryJob, attempt: Int, result: DeliveryAttemptResult) -> Logger.Metadata {
        [
            LogKeys.callIdMasked: "\(Masking.mask(job.callId))", LogKeys.eventId: "\(job.causeId)",
            "delivery.kind": "\(job.kind.rawValue)", LogKeys.httpMethod: "\(job.method)", LogKeys.attempt: "\(attempt)",
            LogKeys.httpStatus: "\(Self.summary(of: result))",
        ]
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
