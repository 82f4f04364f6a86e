public import Foundation
public import Logging
public import RelayAMQP
public import RelayCore
public import RelayStore
public import ServiceLifecycle
import Synchronization
public import Tracing

/// Carries out the outbox: customer-update PUTs, post-call webhooks, CRM/ERP lookups and dead-letter
/// records, straight from the store, with no trip through the broker.
///
/// The store is the durable hand-off. An event's effects are committed with its state; the pipeline
/// hands the committed entries over at once (`submit`), and a poll of the store finds the rest: entries
/// due after a retry's wait, entries another process added (reconciliation, a replayed dead letter,
/// `deliveries retry`) and, at start, everything a stopped or killed process left unfinished. Each
/// attempt's outcome is written back in a group commit: finished, or due again at a time.
///
/// Sends and lookups have lanes of their own (`delivery.concurrency`, `delivery.enrichmentConcurrency`),
/// so a hung CRM never holds a phase-1 update back. A call's customer updates go out one at a time, each
/// checked against the call's link read from the store just before it is sent (`DeliveryStateMachine`).
public final class OutboxDispatcher: Service {
    public struct Settings: Sendable {
        public var concurrency: Int
        public var lookupConcurrency: Int
        /// How often the store is polled for entries this process was not handed.
        public var pollInterval: Duration
        /// Entries held in memory at most per lane (queued or running); the rest wait in the store. Per
        /// lane, so a CRM backlog never crowds the sends out of memory.
        public var maxInHand: Int
        /// How long a validated context update's recent override lives.
        public var overrideTimeToLive: Duration

        public init(
            concurrency: Int,
            lookupConcurrency: Int,
            pollInterval: Duration = .seconds(1),
            maxInHand: Int = 20_000,
            overrideTimeToLive: Duration = .seconds(3600)
        ) {
            self.concurrency = max(1, concurrency)
            self.lookupConcurrency = max(1, lookupConcurrency)
            self.pollInterval = pollInterval
            self.maxInHand = max(1, maxInHand)
            self.overrideTimeToLive = overrideTimeToLive
        }
    }

    let store: any InteractionStore
    public let sender: DeliverySender
    let enricher: Enricher?
    let rules: DeliveryStateMachine
    let deadLetters: DeadLetterPublisher
    let settings: Settings
    /// Opens the personal data of the jobs it runs, and seals it again in every job it writes back.
    let cipher: FieldCipher?
    let metrics: RelayMetrics
    let logger: Logger
    /// Told of every enrichment that linked a caller: the CTI lookup remembers the CRM's data.
    let enriched: (@Sendable (_ phone: String, _ update: CustomerUpdate) -> Void)?
    /// Gives each attempt a span in the trace its job carries, and sends it on with the request.
    let tracer: any Tracer

    private let sends = WorkLane<OutboxEntry>()
    private let lookups = WorkLane<OutboxEntry>()
    /// One customer update per call at a time: the link check and the PUT are never overtaken by a
    /// later update of the same call.
    private let updatesPerCall = SerialPerKey()
    private let state = Mutex(State())

    private enum Lane: Hashable {
        case sends, lookups
    }

    private struct State {
        /// Entries queued or running here, with their lane: neither a poll nor a hand-over takes them twice.
        var inHand: [Int64: Lane] = [:]
        var inHandPerLane: [Lane: Int] = [:]
        /// Entries of a kind this version does not know: left in the store for one that does.
        var unknown: Set<Int64> = []
        /// While a poll reads the store and takes what it read: entries let go since it began, which
        /// its snapshot may still show as due although they are finished or due later.
        var releasedDuringPoll: Set<Int64>?
        /// Entries this process finished lately: a snapshot read before one finished must not take it again.
        var recentlyFinished = RecentIDs(capacity: 65_536)
        /// Entries this process let go lately (finished, or due again later): a hand-over from a snapshot
        /// read before (a commit's entries the poll took first, a redelivered event's) must not take them
        /// again; only a poll, reading the store afresh, does.
        var recentlyReleased = RecentIDs(capacity: 65_536)
        /// The earliest retry this process scheduled and has not polled for since.
        var nextWake: Date?
        var closed = false
    }

    public init(
        store: any InteractionStore,
        sender: DeliverySender,
        enricher: Enricher?,
        rules: DeliveryStateMachine,
        deadLetters: DeadLetterPublisher,
        settings: Settings,
        cipher: FieldCipher?,
        metrics: RelayMetrics = .disabled,
        logger: Logger,
        enriched: (@Sendable (_ phone: String, _ update: CustomerUpdate) -> Void)? = nil,
        tracer: any Tracer = InstrumentationSystem.tracer
    ) {
        self.tracer = tracer
        self.store = store
        self.sender = sender
        self.enricher = enricher
        self.rules = rules
        self.deadLetters = deadLetters
        self.settings = settings
        self.cipher = cipher
        self.metrics = metrics
        self.logger = logger
        self.enriched = enriched
    }

    /// Entries held here now (queued or running), for tests and metrics.
    public var inHandCount: Int { state.withLock { $0.inHand.count } }

    /// Sends (customer updates, webhooks) this dispatcher has finished since it started, for rates.
    public var finishedSendCount: Int { finishedSends.load(ordering: .relaxed) }
    private let finishedSends = Atomic<Int>(0)

    private func isFull(_ lane: Lane, _ state: State) -> Bool {
        state.inHandPerLane[lane, default: 0] >= settings.maxInHand
    }

    /// Takes committed entries now. What is finished, due later, already held, or beyond what memory
    /// may hold is left to the poll: the store has all of it.
    public func submit(_ entries: [OutboxEntry], now: Date = Date()) {
        for entry in entries where entry.finishedAt == nil {
            // A new entry is due when committed, whatever clock its commit was given; only a retry
            // scheduled since waits for its time.
            if entry.dueAt > entry.createdAt && entry.dueAt > now {
                state.withLock { $0.nextWake = min($0.nextWake ?? entry.dueAt, entry.dueAt) }
                continue
            }
            take(entry, handedOver: true)
        }
    }

    /// - Parameter handedOver: from a snapshot read by someone else (a commit, a redelivery), not by
    ///   this dispatcher's poll: refused for anything this process let go since.
    @discardableResult
    private func take(_ entry: OutboxEntry, handedOver: Bool = false) -> Bool {
        let lane: WorkLane<OutboxEntry>
        let laneName: Lane
        switch entry.kind {
        case OutboxKind.delivery, OutboxKind.deadLetter:
            lane = sends
            laneName = .sends
        case OutboxKind.lookup:
            lane = lookups
            laneName = .lookups
        default:
            let isNew = state.withLock { $0.unknown.insert(entry.id).inserted }
            if isNew {
                logger.error(
                    "outbox entry of an unknown kind left for a relay version that knows it",
                    metadata: [LogKeys.outboxId: "\(entry.id)", LogKeys.outboxKind: "\(entry.kind)"]
                )
            }
            return false
        }
        let taken = state.withLock { state in
            guard !state.closed, !isFull(laneName, state), state.releasedDuringPoll?.contains(entry.id) != true,
                !state.recentlyFinished.contains(entry.id), !(handedOver && state.recentlyReleased.contains(entry.id)),
                state.inHand[entry.id] == nil
            else { return false }
            state.inHand[entry.id] = laneName
            state.inHandPerLane[laneName, default: 0] += 1
            return true
        }
        guard taken else { return false }
        // What a poll finds was due before what commits hand over now (a retry whose time came, a dead
        // relay's claims once their lease lapsed): it takes turns with that, not a place behind it.
        if !lane.push(entry, overdue: !handedOver) {
            release(entry.id)
            return false
        }
        return true
    }

    private func release(_ id: Int64, dueAgainAt: Date? = nil, finished: Bool = false) {
        state.withLock { state in
            if let lane = state.inHand.removeValue(forKey: id) { state.inHandPerLane[lane, default: 1] -= 1 }
            state.releasedDuringPoll?.insert(id)
            state.recentlyReleased.insert(id)
            if finished { state.recentlyFinished.insert(id) }
            if let dueAgainAt { state.nextWake = min(state.nextWake ?? dueAgainAt, dueAgainAt) }
        }
    }

    /// Runs the lanes and the poll until graceful shutdown: then nothing new starts, what runs finishes
    /// and records its outcome, and what was queued stays in the store for the next start.
    public func run() async throws {
        // Cancelled (another service of the group failed) as well as shut down: either way the lanes
        // close, or their workers would wait for ever.
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for _ in 0..<settings.concurrency {
                    group.addTask { await self.work(self.sends) }
                }
                for _ in 0..<settings.lookupConcurrency {
                    group.addTask { await self.work(self.lookups) }
                }
                group.addTask { await self.pollUntilClosed() }
            }
        } onCancelOrGracefulShutdown: {
            self.close()
        }
    }

    /// Stops taking work: queued entries stay in the store, running ones finish.
    public func close() {
        state.withLock { $0.closed = true }
        sends.close()
        lookups.close()
    }

    private var isClosed: Bool { state.withLock { $0.closed } }

    private func work(_ lane: WorkLane<OutboxEntry>) async {
        while let entry = await lane.next() {
            await run(entry)
        }
    }

    // MARK: Polling

    private func pollUntilClosed() async {
        var lastPoll = ContinuousClock.now - settings.pollInterval
        while !isClosed && !Task.isCancelled {
            let now = Date()
            let wakeDue = state.withLock { state in
                guard let wake = state.nextWake, wake <= now else { return false }
                state.nextWake = nil
                return true
            }
            if wakeDue || ContinuousClock.now - lastPoll >= settings.pollInterval {
                lastPoll = .now
                await pollOnce()
            }
            // Until the next poll or the earliest retry this process scheduled, in slices of at most a
            // quarter second: a retry scheduled meanwhile for sooner, and a shutdown, wait no longer.
            let untilPoll = settings.pollInterval - (ContinuousClock.now - lastPoll)
            let untilWake = state.withLock { $0.nextWake }.map { Duration.seconds(max(0, $0.timeIntervalSinceNow)) }
            let slice = min(untilPoll, untilWake ?? untilPoll, .milliseconds(250))
            try? await Task.sleep(for: max(slice, .milliseconds(5)))
        }
    }

    /// Takes every due entry this process does not hold. Returns how many it took.
    @discardableResult
    public func pollOnce(now: Date = Date()) async -> Int {
        let limit: Int? = state.withLock { state in
            guard !state.closed, !(isFull(.sends, state) && isFull(.lookups, state)) else { return nil }
            state.releasedDuringPoll = []
            return state.inHand.count + state.unknown.count + Self.pollBatch
        }
        guard let limit else { return 0 }
        let due: [OutboxEntry]
        do {
            // Ids first: with a backlog in hand, reading every held entry each poll only to skip it
            // was most of the cost of a poll.
            let ids = try await store.pendingOutboxIds(dueBy: now, limit: limit)
            let notHeld = state.withLock { state in
                var notHeld: [Int64] = []
                for id in ids where notHeld.count < Self.pollBatch {
                    if state.inHand[id] == nil && !state.unknown.contains(id) && !state.recentlyFinished.contains(id)
                        && state.releasedDuringPoll?.contains(id) != true
                    {
                        notHeld.append(id)
                    }
                }
                return notHeld
            }
            due = try await store.claimOutbox(ids: notHeld, dueBy: now)
        } catch {
            state.withLock { $0.releasedDuringPoll = nil }
            logger.error(
                "could not read the outbox; trying again at the next poll",
                metadata: [LogKeys.error: "\(error)"]
            )
            return 0
        }
        var taken = 0
        for entry in due where take(entry) { taken += 1 }
        // Only now: an entry let go while the loop above ran would otherwise be taken a second time.
        state.withLock { $0.releasedDuringPoll = nil }
        return taken
    }

    /// Entries one poll takes at most beyond what it holds.
    static let pollBatch = 512

    // MARK: Running one entry

    private func run(_ entry: OutboxEntry) async {
        let inFlight = metrics.inFlight(stage: entry.kind == OutboxKind.lookup ? "lookups" : "deliveries")
        inFlight.increment()
        defer { inFlight.decrement() }
        let settlement: OutboxSettlement?
        switch entry.kind {
        case OutboxKind.deadLetter: settlement = await publishDeadLetter(entry)
        case OutboxKind.lookup: settlement = await lookUp(entry)
        default: settlement = await deliver(entry)
        }
        // Stopping mid-attempt: nothing is recorded, and the entry, still due, goes at the next start.
        guard let settlement, !Task.isCancelled else {
            release(entry.id)
            return
        }
        await record(settlement, of: entry)
    }

    private func record(_ settlement: OutboxSettlement, of entry: OutboxEntry) async {
        do {
            try await store.settleOutbox([settlement], now: Date())
        } catch {
            // The attempt happened but is not recorded: the entry is tried again (its keys absorb a repeat).
            logger.error(
                "could not record an outbox outcome; the entry will be tried again",
                metadata: [LogKeys.outboxId: "\(entry.id)", LogKeys.error: "\(error)"]
            )
            try? await Task.sleep(for: .seconds(1))
            release(entry.id)
            return
        }
        switch settlement {
        case .retry(_, let dueAt, _, _, _), .deadLetter(_, let dueAt, _, _): release(entry.id, dueAgainAt: dueAt)
        case .finished:
            if entry.kind == OutboxKind.delivery { finishedSends.add(1, ordering: .relaxed) }
            release(entry.id, finished: true)
        }
    }

    private func openJob(_ entry: OutboxEntry) -> Result<DeliveryJob, any Error> {
        // Made by this process's commit a moment ago: the same job, already open. Debug builds (the
        // tests) check that it is what the stored bytes say, so a writer bug cannot hide until a retry.
        if let job = entry.inMemoryJob {
            assert(
                (try? DeliveryJob.decode(entry.payload)).flatMap { stored in
                    cipher.map { try? stored.opened(with: $0) } ?? stored
                } == job,
                "the stored job of outbox entry \(entry.id) is not the one handed over"
            )
            return .success(job)
        }
        return Result {
            var job = try DeliveryJob.decode(entry.payload)
            if let cipher { job = try job.opened(with: cipher) }
            return job
        }
    }

    /// The job as it may be written to the store or a dead-letter record.
    /// The dead-letter record of a job that gave up (a send or a lookup): its id stable per job, so a
    /// record published twice is one record.
    private func givenUp(
        _ reason: DeadLetterReason,
        _ job: DeliveryJob,
        error: String,
        target: DeadLetterRecord.Target,
        now: Date
    ) -> DeadLetterRecord {
        DeadLetterRecord(
            id: DeadLetterRecord.stableID(reason: reason, source: Array(job.idempotencyKey.utf8)),
            reason: reason,
            callId: job.callId,
            eventType: nil,
            eventId: job.causeId,
            attempts: job.attempts,
            firstFailureAt: job.firstFailureAt ?? now,
            lastFailureAt: now,
            lastError: error,
            originalPayload: sealed(job).encoded(),
            origin: .outbox,
            target: target
        )
    }

    private func sealed(_ job: DeliveryJob) -> DeliveryJob {
        cipher.map(job.sealed) ?? job
    }

    private func deliver(_ entry: OutboxEntry) async -> OutboxSettlement? {
        let job: DeliveryJob
        switch openJob(entry) {
        case .success(let opened): job = opened
        case .failure(let error):
            return await deadLetterUnreadable(entry, error: error)
        }
        guard job.kind == .customerUpdate else { return await attempt(job, entry: entry) }
        return await updatesPerCall.run(job.callId) { () async -> OutboxSettlement? in
            let link: String?
            do {
                link = try await store.link(callId: job.callId)
            } catch {
                // Not an attempt: nothing was sent. It waits a moment rather than risk the older link.
                logger.error("could not read the call's link; the update waits", metadata: [LogKeys.error: "\(error)"])
                return .retry(
                    id: entry.id,
                    dueAt: Date().addingTimeInterval(1),
                    attempts: job.attempts,
                    lastError: "the call's link could not be read",
                    payload: entry.payload
                )
            }
            if case .superseded = rules.beforeSend(job, currentLink: link) {
                logger.info(
                    "customer update superseded by a later link; not sent",
                    metadata: [LogKeys.callIdMasked: "\(Masking.mask(job.callId))", LogKeys.eventId: "\(job.causeId)"]
                )
                metrics.delivery(
                    kind: DeliveryJob.Kind.customerUpdate.rawValue,
                    outcome: "superseded",
                    statusClass: "none",
                    duration: .zero
                )
                return .finished(id: entry.id, outcome: "superseded")
            }
            return await attempt(job, entry: entry)
        }
    }

    /// One send and what follows it.
    private func attempt(_ job: DeliveryJob, entry: OutboxEntry) async -> OutboxSettlement? {
        let reason = "\(DeliverySender.target(of: job)) circuit open"
        func waitForProbe(until: Date) -> OutboxSettlement? {
            metrics.delivery(kind: job.kind.rawValue, outcome: "refused", statusClass: "none", duration: .zero)
            guard case .retry(let at, let next) = rules.afterRefusal(job, until: until, reason: reason, now: Date())
            else {
                return nil
            }
            return .retry(
                id: entry.id,
                dueAt: at,
                attempts: next.attempts,
                lastError: reason,
                payload: sealed(next).encoded()
            )
        }
        let permission = sender.permit(job, now: Date())
        if case .refused(let until) = permission { return waitForProbe(until: until) }
        let started = ContinuousClock.now
        let span = attemptSpan(job.method, of: job, kind: .client)
        var traceHeaders: [(name: String, value: String)] = []
        tracer.inject(span.context, into: &traceHeaders, using: HTTPHeadersInjector())
        let result = await sender.send(job, traceHeaders: traceHeaders)
        end(span, with: result)
        sender.record(result, of: job, now: Date())
        if Task.isCancelled { return nil }
        let elapsed = ContinuousClock.now - started
        let now = Date()
        var generator = SystemRandomNumberGenerator()
        let action = rules.afterSend(job, result: result, now: now, using: &generator)
        let targetFailed: Bool
        switch result {
        case .response(let status, _, _): targetFailed = RetryPolicy.isRetriable(status: status)
        case .transportFailure(let isRetriable, _): targetFailed = isRetriable
        }
        if case .probe = permission, targetFailed {
            // The probe found the target still down: its failure, not the job's. Whichever send happens
            // to be the probe spends no attempt, or a long outage would dead-letter the few that probe.
            return waitForProbe(until: sender.openUntil(job) ?? now.addingTimeInterval(1))
        }
        let label: String
        switch action {
        case .delivered: label = "delivered"
        case .retry: label = "retried"
        default: label = "deadLettered"
        }
        metrics.delivery(
            kind: job.kind.rawValue,
            outcome: label,
            statusClass: RelayMetrics.statusClass(result),
            duration: elapsed
        )
        let details = metadata(job, attempt: job.attempts + 1, result: result)
        switch action {
        case .delivered:
            logger.info("delivered", metadata: details)
            return .finished(id: entry.id, outcome: "delivered")
        case .retry(let at, let next):
            logger.info(
                "delivery failed; retry scheduled",
                metadata: details.merging([LogKeys.deliveryDue: "\(at)"]) { $1 }
            )
            return .retry(
                id: entry.id,
                dueAt: at,
                attempts: next.attempts,
                lastError: next.lastError ?? "",
                payload: sealed(next).encoded()
            )
        case .deadLetter(let error, let status, let next):
            let record = givenUp(
                .deliveryFailed,
                next,
                error: error,
                target: .init(method: next.method, url: sender.url(for: next), lastStatus: status),
                now: now
            )
            return await deadLetter(record, entry: entry)
        default:
            return .finished(id: entry.id, outcome: label)
        }
    }

    /// Phase 2 and context updates. An answer relinks the call and adds the enriched update to the
    /// outbox in one transaction; the update then goes out on the send lane like any other.
    private func lookUp(_ entry: OutboxEntry) async -> OutboxSettlement? {
        let job: DeliveryJob
        switch openJob(entry) {
        case .success(let opened): job = opened
        case .failure(let error): return await deadLetterUnreadable(entry, error: error)
        }
        let attempt = job.attempts + 1
        let started = ContinuousClock.now
        let span = attemptSpan(job.kind == .contextChange ? "validate context" : "enrich", of: job, kind: .internal)
        defer { span.end() }
        let outcome: LookupOutcome
        // A lookup set back before is backlog: it takes its turn at the upstream's pace.
        let isBacklog = job.firstFailureAt != nil
        // The lookup's requests carry its span, for the CRM and the ERP to continue.
        switch (enricher, job.enrichment, job.contextChange) {
        case (let enricher?, let request?, _):
            outcome = await ServiceContext.withValue(span.context) {
                await enricher.enrich(request, attempt: attempt, isBacklog: isBacklog)
            }
        case (let enricher?, nil, let change?):
            outcome = await ServiceContext.withValue(span.context) {
                await enricher.validate(change, attempt: attempt, isBacklog: isBacklog)
            }
        case (nil, _, .some):
            // It must be found in the CRM before anything changes; without a CRM, nothing does.
            outcome = .noUpdate(reason: "no CRM lookup is configured to validate it")
        default:
            outcome = .failed(error: "no CRM lookup is configured", status: nil)
        }
        if Task.isCancelled { return nil }
        if span.isRecording { span.attributes["relay.lookup.outcome"] = outcome.metricLabel }
        metrics.enrichment(outcome: outcome.metricLabel, duration: ContinuousClock.now - started)
        let now = Date()
        let callMasked = Masking.mask(job.callId)
        switch rules.afterLookup(job, outcome: outcome, now: now) {
        case .relinkAndSend(let update, let rule):
            let linked = update.externalId.description
            var override: (phoneKey: String, expiresAt: Date)?
            if let phoneKey = job.contextChange?.phoneKey {
                override = (phoneKey, now.addingTimeInterval(settings.overrideTimeToLive.totalSeconds))
            }
            var updateJob = DeliveryJob(customerUpdate: update, causeId: job.causeId)
            // The enriched update is the lookup's doing: its PUT continues the trace under the lookup.
            updateJob.traceContext = tracer.carried(span.context) ?? job.traceContext
            let completion = LookupCompletion(
                entryId: entry.id,
                callId: job.callId,
                causeId: job.causeId,
                externalId: linked,
                rule: rule,
                update: NewOutboxEntry(
                    kind: OutboxKind.delivery,
                    payload: sealed(updateJob).encoded(),
                    inMemoryJob: updateJob
                ),
                override: override
            )
            let completed: (link: String?, update: OutboxEntry?)
            do {
                completed = try await store.completeLookup(completion, now: now)
            } catch {
                logger.error(
                    "could not record the new link; the lookup will run again",
                    metadata: [LogKeys.error: "\(error)"]
                )
                return .retry(
                    id: entry.id,
                    dueAt: now.addingTimeInterval(1),
                    attempts: job.attempts,
                    lastError: "the new link could not be recorded",
                    payload: entry.payload
                )
            }
            guard let updateEntry = completed.update else {
                // The call was switched while the CRM answered (or phase 1 linked it to an override):
                // this answer must not put the platform back on its match.
                logger.info(
                    "customer update superseded by a later link; not sent",
                    metadata: [
                        LogKeys.callIdMasked: "\(callMasked)", LogKeys.externalIdMasked: "\(update.externalId.masked)",
                    ]
                )
                metrics.delivery(
                    kind: DeliveryJob.Kind.customerUpdate.rawValue,
                    outcome: "superseded",
                    statusClass: "none",
                    duration: .zero
                )
                release(entry.id, finished: true)
                return nil
            }
            if job.contextChange == nil, let phone = job.enrichment?.phone { enriched?(phone, update) }
            logger.info(
                job.kind == .contextChange ? "context updated" : "enriched",
                metadata: [
                    LogKeys.callIdMasked: "\(callMasked)", LogKeys.externalIdMasked: "\(update.externalId.masked)",
                    LogKeys.attempt: "\(attempt)",
                ]
            )
            release(entry.id, finished: true)
            submit([updateEntry])
            return nil
        case .suggest(let suggestion):
            // Never a link: the interaction keeps its phase-1 id, and the agent sees the suggestion in
            // the contact and journey views.
            do {
                try await store.recordSuggestion(
                    callId: job.callId,
                    externalId: suggestion.externalId,
                    sealedName: suggestion.name.flatMap { name in
                        cipher?.seal(name, context: ContactDirectory.SealContext.suggestionName)
                    },
                    now: now
                )
            } catch {
                logger.error(
                    "could not record the suggestion; the lookup will run again",
                    metadata: [LogKeys.error: "\(error)"]
                )
                return .retry(
                    id: entry.id,
                    dueAt: now.addingTimeInterval(1),
                    attempts: job.attempts,
                    lastError: "the suggestion could not be recorded",
                    payload: entry.payload
                )
            }
            logger.info(
                "not enriched; the customer's name suggests a CRM contact",
                metadata: [
                    LogKeys.callIdMasked: "\(callMasked)",
                    LogKeys.externalIdMasked: "\(Masking.mask(suggestion.externalId))",
                ]
            )
            return .finished(id: entry.id, outcome: "suggested")
        case .finished(let reason):
            if let change = job.contextChange {
                logger.notice(
                    "context update rejected; nothing changed",
                    metadata: [
                        LogKeys.callIdMasked: "\(callMasked)",
                        LogKeys.externalIdMasked: "\(Masking.mask(change.newExternalId))", LogKeys.reason: "\(reason)",
                    ]
                )
            } else {
                logger.info(
                    "not enriched",
                    metadata: [LogKeys.callIdMasked: "\(callMasked)", LogKeys.reason: "\(reason)"]
                )
            }
            return .finished(id: entry.id, outcome: "noUpdate")
        case .retry(let at, let next):
            logger.debug(
                "lookup set back; retry scheduled",
                metadata: [
                    LogKeys.callIdMasked: "\(callMasked)", LogKeys.attempt: "\(next.attempts)",
                    LogKeys.deliveryDue: "\(at)",
                ]
            )
            return .retry(
                id: entry.id,
                dueAt: at,
                attempts: next.attempts,
                lastError: next.lastError ?? "",
                payload: sealed(next).encoded()
            )
        case .deadLetter(let error, let status, let next):
            let record = givenUp(
                .enrichmentFailed,
                next,
                error: error,
                target: .init(method: "GET", url: lookupURL(for: next), lastStatus: status),
                now: now
            )
            return await deadLetter(record, entry: entry)
        case .send, .superseded, .delivered:
            return .finished(id: entry.id, outcome: "noUpdate")
        }
    }

    /// The template, not the rendered URL: that one holds the number, address, messaging id or name
    /// searched by. The first search the request makes (the channel's order).
    private func lookupURL(for job: DeliveryJob) -> String {
        guard let enricher else { return "(no CRM lookup configured)" }
        if job.kind == .contextChange {
            return enricher.crmContact?.urlTemplate.template ?? "(no CRM contact lookup configured)"
        }
        guard let request = job.enrichment else { return enricher.crm.urlTemplate.template }
        let first: UpstreamLookup? =
            if request.contactId != nil {
                enricher.crmContact
            } else if request.email != nil, let crmEmail = enricher.crmEmail { crmEmail } else if request.phone != nil {
                enricher.crm
            } else if request.messagingId != nil, let crmMessaging = enricher.crmMessaging { crmMessaging } else {
                enricher.crmName ?? enricher.crm
            }
        return first?.urlTemplate.template ?? "(no CRM lookup configured)"
    }

    // MARK: Dead letters

    /// Publishes a job's dead-letter record with confirms, then finishes the job. When the broker does
    /// not take it, the entry becomes that record, still to publish: one durable path either way.
    private func deadLetter(_ record: DeadLetterRecord, entry: OutboxEntry) async -> OutboxSettlement {
        do {
            try await deadLetters.publish(record)
        } catch {
            logger.error(
                "could not publish a dead letter; it waits in the outbox",
                metadata: [LogKeys.error: "\(error)"]
            )
            return .deadLetter(
                id: entry.id,
                dueAt: Date().addingTimeInterval(Self.deadLetterRetryDelay.totalSeconds),
                lastError: "dead-letter record not published: \(error)",
                record: record.encoded()
            )
        }
        logDeadLettered(record)
        return .finished(id: entry.id, outcome: "deadLettered")
    }

    /// A dead-letter record in the outbox (an orphan, or a job whose record the broker did not take).
    private func publishDeadLetter(_ entry: OutboxEntry) async -> OutboxSettlement {
        let record: DeadLetterRecord
        do {
            record = try DeadLetterRecord.decode(entry.payload)
        } catch {
            logger.error(
                "unreadable dead-letter record in the outbox; finished without publishing",
                metadata: [LogKeys.outboxId: "\(entry.id)", LogKeys.error: "\(error)"]
            )
            return .finished(id: entry.id, outcome: "unreadable")
        }
        do {
            try await deadLetters.publish(record)
        } catch {
            logger.error(
                "could not publish a dead letter; it waits in the outbox",
                metadata: [LogKeys.error: "\(error)"]
            )
            return .retry(
                id: entry.id,
                dueAt: Date().addingTimeInterval(Self.deadLetterRetryDelay.totalSeconds),
                attempts: entry.attempts + 1,
                lastError: "\(error)",
                payload: entry.payload
            )
        }
        logDeadLettered(record)
        return .finished(id: entry.id, outcome: "deadLettered")
    }

    static let deadLetterRetryDelay: Duration = .seconds(5)

    /// A job this relay cannot read (written by a bug, or altered): its bytes as they are, to a record.
    private func deadLetterUnreadable(_ entry: OutboxEntry, error: any Error) async -> OutboxSettlement {
        let now = Date()
        let record = DeadLetterRecord(
            id: DeadLetterRecord.stableID(reason: .deliveryFailed, source: entry.payload),
            reason: .deliveryFailed,
            callId: entry.callId,
            eventType: nil,
            eventId: entry.causeId,
            attempts: entry.attempts,
            firstFailureAt: now,
            lastFailureAt: now,
            lastError: "not a delivery job: \(error)",
            originalPayload: entry.payload,
            origin: .outbox
        )
        return await deadLetter(record, entry: entry)
    }

    private func logDeadLettered(_ record: DeadLetterRecord) {
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
            ]
        )
    }

    private func metadata(_ job: DeliveryJob, attempt: Int, result: DeliveryAttemptResult) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            LogKeys.callIdMasked: "\(Masking.mask(job.callId))", LogKeys.eventId: "\(job.causeId)",
            LogKeys.deliveryKind: "\(job.kind.rawValue)", LogKeys.httpMethod: "\(job.method)",
            LogKeys.attempt: "\(attempt)",
            LogKeys.httpStatus: "\(DeliveryStateMachine.summary(of: result))",
        ]
        if let traceId = traceID(in: job.traceContext) { metadata[LogKeys.traceId] = "\(traceId)" }
        return metadata
    }

    // MARK: Tracing

    /// One attempt's span, in the trace of the event that made the job (a new trace for a job that
    /// carries none: a timer's, reconciliation's, or one written before tracing).
    private func attemptSpan(_ name: String, of job: DeliveryJob, kind: SpanKind) -> any Span {
        let span = tracer.startSpan(name, context: tracer.context(carriedBy: job.traceContext), ofKind: kind)
        if span.isRecording {
            span.attributes["relay.delivery.kind"] = job.kind.rawValue
            span.attributes["relay.event.id"] = job.causeId
            span.attributes["relay.attempt"] = job.attempts + 1
            if kind == .client { span.attributes["http.request.method"] = job.method }
        }
        return span
    }

    private func end(_ span: any Span, with result: DeliveryAttemptResult) {
        if span.isRecording {
            switch result {
            case .response(let status, _, _):
                span.attributes["http.response.status_code"] = status
                if status >= 400 { span.setStatus(.init(code: .error, message: "HTTP \(status)")) }
            case .transportFailure(_, let description):
                span.setStatus(.init(code: .error, message: description))
            }
        }
        span.end()
    }
}

/// The last `capacity` ids inserted, for a membership test: a ring and a set.
struct RecentIDs {
    private var ring: [Int64] = []
    private var next = 0
    private var members: Set<Int64> = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func contains(_ id: Int64) -> Bool { members.contains(id) }

    mutating func insert(_ id: Int64) {
        guard members.insert(id).inserted else { return }
        if ring.count < capacity {
            ring.append(id)
        } else {
            members.remove(ring[next])
            ring[next] = id
            next = (next + 1) % capacity
        }
    }
}
