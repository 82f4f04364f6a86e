import Foundation
public import Logging
public import RelayAMQP
public import RelayCore
public import RelayStore
public import ServiceLifecycle
import Synchronization
public import Tracing

/// The relay's main job: consume events, correlate them, commit, hand the effects over, then ack.
///
/// A delivery is acked once its outcome is durable: its state and effects committed to the store (or
/// its dead-letter record confirmed by the broker). From the commit on, the effects are the store's:
/// the dispatcher takes them at once, with no trip through the broker. Anything else (a crash, a
/// broker outage, shutdown mid-flight) leaves the delivery unacked, and the broker delivers it again;
/// the store recognises the event, and its unfinished effects are handed over again.
public final class EventPipeline: Service {
    let amqp: AMQPClient
    let store: any InteractionStore
    let names: RelayNames
    let decoder: InputDecoder
    let correlator: CallCorrelator
    /// Takes the effects once committed.
    let dispatcher: OutboxDispatcher?
    let deadLetters: DeadLetterPublisher
    let prefetch: UInt16
    let metrics: RelayMetrics
    let logger: Logger
    /// Seals the personal data of the delivery jobs this pipeline commits.
    let cipher: FieldCipher?
    /// Lands every interaction on a contact, in the transaction that commits its event.
    let contacts: ContactDirectory?
    /// Gives each event a span from consume to commit, continuing the trace its headers carry.
    let tracer: any Tracer
    private let acknowledged = Atomic<Int>(0)
    private let consuming = Atomic<Bool>(false)

    /// Whether events are being consumed (for readiness): the consumer loop runs and its consumer is
    /// subscribed on a live connection. False before start, after shutdown and while the broker is away.
    public var isConsuming: Bool {
        consuming.load(ordering: .relaxed) && amqp.isConsuming(queue: names.eventsQueue)
    }

    /// Deliveries this pipeline has acked since it started: each one finished for good.
    public var acknowledgedCount: Int { acknowledged.load(ordering: .relaxed) }

    public init(
        amqp: AMQPClient,
        store: any InteractionStore,
        names: RelayNames,
        decoder: InputDecoder,
        correlator: CallCorrelator,
        prefetch: Int,
        dispatcher: OutboxDispatcher?,
        cipher: FieldCipher? = nil,
        metrics: RelayMetrics = .disabled,
        logger: Logger,
        contacts: ContactDirectory? = nil,
        tracer: any Tracer = InstrumentationSystem.tracer
    ) {
        self.tracer = tracer
        self.dispatcher = dispatcher
        self.cipher = cipher
        self.contacts = contacts
        self.amqp = amqp
        self.store = store
        self.names = names
        self.decoder = decoder
        self.correlator = correlator
        self.deadLetters = DeadLetterPublisher(amqp: amqp, exchange: names.deadLetterExchange)
        self.prefetch = UInt16(clamping: prefetch)
        self.metrics = metrics
        self.logger = logger
    }

    /// Consumes until graceful shutdown, then stops consuming and finishes what is in flight.
    public func run() async throws {
        logger.info(
            "relay consuming",
            metadata: [LogKeys.amqpQueue: "\(names.eventsQueue)", LogKeys.amqpPrefetch: "\(prefetch)"]
        )
        consuming.store(true, ordering: .relaxed)
        defer { consuming.store(false, ordering: .relaxed) }
        await amqp.consumeBatchesUntilShutdown(queue: names.eventsQueue, prefetch: prefetch) { await self.process($0) }
        logger.info("relay stopped consuming; in-flight events finished")
    }

    /// What the AMQP thread read in one turn: decoded here, committed in one transaction (a savepoint
    /// per event, so one bad event undoes only itself), then acked together. Per batch that is one hop
    /// from the AMQP thread, one to the store's writer and back, and one wake-up of the AMQP thread.
    func process(_ batch: [Delivery]) async {
        let inFlight = metrics.inFlight(stage: "events")
        inFlight.increment(by: batch.count)
        defer { inFlight.decrement(by: batch.count) }
        var decoded: [(delivery: Delivery, event: PlatformEvent, span: any Span)] = []
        var malformed: [(delivery: Delivery, error: MalformedEventError, span: any Span)] = []
        decoded.reserveCapacity(batch.count)
        for delivery in batch {
            let span = consumeSpan(of: delivery)
            do {
                let event = try decoder.decode(delivery.body)
                metrics.eventConsumed(type: event.type.rawValue)
                if span.isRecording {
                    span.attributes["relay.event.type"] = event.type.rawValue
                    span.attributes["relay.event.id"] = event.eventId
                }
                decoded.append((delivery, event, span))
            } catch {
                metrics.eventConsumed(type: "undecodable")
                malformed.append((delivery, error, span))
            }
        }
        var results: [Result<Committed, any Error>]
        do {
            results = try await commit(decoded.map(\.event), traces: decoded.map { tracer.carried($0.span.context) })
        } catch {
            results = Array(repeating: .failure(error), count: decoded.count)
        }
        // One result per event: a delivery left out here would be neither acked nor nacked.
        precondition(results.count == decoded.count, "the store answered \(results.count) of \(decoded.count) events")
        var acked: [Delivery] = []
        var unfinished: [Delivery] = []
        acked.reserveCapacity(decoded.count)
        for ((delivery, event, span), result) in zip(decoded, results) {
            switch result {
            case .success(let committed):
                log(committed, of: event)
                acked.append(delivery)
            case .failure(let error):
                metrics.eventProcessed(type: event.type.rawValue, outcome: "failed")
                logger.error(
                    "event not finished; the broker will deliver it again",
                    metadata: metadata(of: event, span: span).merging([LogKeys.error: "\(error)"]) { $1 }
                )
                span.recordError(error)
                span.setStatus(.init(code: .error, message: "not committed; left for redelivery"))
                unfinished.append(delivery)
            }
            span.end()
        }
        acknowledge(acked)
        let requeued = unfinished
        guard !requeued.isEmpty || !malformed.isEmpty else { return }
        await withDiscardingTaskGroup { group in
            for (delivery, error, span) in malformed {
                group.addTask {
                    await self.deadLetterMalformed(delivery, error: error)
                    span.recordError(error)
                    span.setStatus(.init(code: .error, message: "malformed; dead-lettered"))
                    span.end()
                }
            }
            if !requeued.isEmpty {
                group.addTask {
                    // Requeued after a pause rather than held: a lasting fault ends in the queue's delivery limit.
                    try? await Task.sleep(for: .seconds(1))
                    for delivery in requeued { self.amqp.nack(delivery, requeue: true) }
                }
            }
        }
    }

    /// The span of one consumed message, from now to its commit: a child of the span its publisher
    /// put in its headers, else the root of a new trace.
    private func consumeSpan(of delivery: Delivery) -> any Span {
        var parent = ServiceContext.topLevel
        tracer.extract(delivery.headers, into: &parent, using: AMQPHeadersExtractor())
        let span = tracer.startSpan("process \(names.eventsQueue)", context: parent, ofKind: .consumer)
        if span.isRecording {
            span.attributes["messaging.system"] = "rabbitmq"
            span.attributes["messaging.operation.type"] = "process"
            span.attributes["messaging.destination.name"] = names.eventsQueue
            span.attributes["messaging.rabbitmq.destination.routing_key"] = delivery.routingKey
        }
        return span
    }

    private func metadata(of event: PlatformEvent, span: (any Span)? = nil) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            LogKeys.callIdMasked: "\(Masking.mask(event.callId))", LogKeys.eventId: "\(event.eventId)",
            LogKeys.eventType: "\(event.type.rawValue)",
        ]
        if let span, let traceId = traceID(in: tracer.carried(span.context)) {
            metadata[LogKeys.traceId] = "\(traceId)"
        }
        return metadata
    }

    private func log(_ committed: Committed, of event: PlatformEvent) {
        if committed.isDuplicate {
            logger.debug("duplicate event; nothing changed", metadata: metadata(of: event))
        } else if committed.outcome == .deferred {
            logger.info("context update kept until the call's start arrives", metadata: metadata(of: event))
        } else if case .rejected(let reason) = committed.outcome {
            // Only context updates are refused.
            var refused = metadata(of: event).merging([LogKeys.reason: "\(reason)"]) { $1 }
            if case .contextUpdate(let update) = event.payload {
                refused[LogKeys.externalIdMasked] = "\(Masking.mask(update.newExternalId))"
            }
            logger.notice("context update rejected; nothing changed", metadata: refused)
        } else if logger.logLevel <= .debug {
            logger.debug(
                "event applied",
                metadata: metadata(of: event).merging([LogKeys.effects: "\(committed.effects)"]) { $1 }
            )
        }
    }

    /// What became of an event handed to `submit`.
    public enum Submission: Sendable, Hashable {
        /// Committed, with its effects.
        case accepted
        /// Processed before under this event id: nothing changed.
        case duplicate
        /// The correlator refused it (e.g. a context update for a call without a platform customer).
        case rejected(reason: String)
        /// Committed, and kept until the call's start arrives (a context update before its start).
        case deferred
    }

    /// An event that comes from the admin API rather than the broker (an agent's update-context): the
    /// same correlation, commit and outbox as a consumed event, answered to the caller instead of acked.
    /// - Parameter traceHeaders: the request's headers, for a trace its caller started to continue.
    public func submit(_ event: PlatformEvent, traceHeaders: [String: String] = [:]) async throws -> Submission {
        metrics.eventConsumed(type: event.type.rawValue)
        let span = tracer.startSpan(
            "submit \(event.type.rawValue)",
            context: tracer.context(carriedBy: traceHeaders),
            ofKind: .server
        )
        defer { span.end() }
        let committed: Committed
        do {
            committed = try await commit([event], traces: [tracer.carried(span.context)])[0].get()
        } catch {
            span.recordError(error)
            throw error
        }
        if committed.isDuplicate { return .duplicate }
        if case .rejected(let reason) = committed.outcome { return .rejected(reason: reason) }
        if committed.outcome == .deferred { return .deferred }
        return .accepted
    }

    /// What `commit` did with one event.
    struct Committed: Sendable {
        /// Processed before under this event id: nothing changed.
        var isDuplicate: Bool
        /// Effects the event caused (none for a duplicate).
        var effects: Int
        /// The correlator's verdict; nil for a duplicate.
        var outcome: CallCorrelator.Outcome?
    }

    /// The one path of every event, consumed or submitted: phase-1 context, correlation and commit, then
    /// the effects handed to the dispatcher. One transaction for all of `received`, with each event's
    /// outcome in its place; throws when the transaction did not commit.
    /// - Parameter traces: each event's span, as its jobs carry it on.
    private func commit(
        _ received: [PlatformEvent],
        traces: [[String: String]?]
    ) async throws -> [Result<Committed, any Error>] {
        guard !received.isEmpty else { return [] }
        let correlator = self.correlator
        let cipher = self.cipher
        let contacts = self.contacts
        let now = Date()
        let outcomes = Mutex<[Int: CallCorrelator.Outcome]>([:])
        var applications: [EventApplication] = []
        applications.reserveCapacity(received.count)
        for (index, receivedEvent) in received.enumerated() {
            // Typed free text never reaches the store (interaction state, outbox, orphan records) in clear.
            let event = cipher.map { receivedEvent.withFreeTextSealed(by: $0) } ?? receivedEvent
            let caller = correlator.linking.caller(of: event)
            let capture = contacts?.capture(for: event)
            let keys = capture?.keys ?? []
            let trace = traces[index]
            applications.append(
                EventApplication(
                    callId: event.callId,
                    eventId: event.eventId,
                    contact: capture,
                    phoneKey: caller.phoneKey
                ) { state, rows in
                    // Phase 1 takes, in order: a live recent override for this caller, the link already
                    // known locally (the CRM or ERP id of the contact holding the channel's identifier),
                    // else the PHONE: id. Read in the commit's transaction, then handed to the correlator,
                    // which stays pure.
                    let override: ExternalID?
                    if let contacts {
                        override = try contacts.phaseOneLink(phoneKey: caller.phoneKey, keys: keys, now: now, rows)?
                            .externalId
                    } else if let phoneKey = caller.phoneKey {
                        override = try rows.liveOverride(phoneKey: phoneKey, now: now).flatMap(
                            ExternalID.init(parsing:)
                        )
                    } else {
                        override = nil
                    }
                    let transition = correlator.handle(
                        event,
                        state: state,
                        now: now,
                        override: override,
                        caller: caller
                    )
                    outcomes.withLock { $0[index] = transition.outcome }
                    return (
                        transition.interaction,
                        transition.effects.map {
                            $0.outboxEntry(causeId: event.eventId, trace: trace, sealingWith: cipher)
                        }
                    )
                }
            )
        }
        let applied = try await store.apply(applications, now: now)
        let verdicts = outcomes.withLock { $0 }
        var handedOver: [OutboxEntry] = []
        var committed: [Result<Committed, any Error>] = []
        committed.reserveCapacity(applied.count)
        for (index, result) in applied.enumerated() {
            let type = received[index].type.rawValue
            switch result {
            case .success(.committed(let entries)):
                handedOver.append(contentsOf: entries)
                metrics.eventProcessed(type: type, outcome: "applied")
                committed.append(
                    .success(Committed(isDuplicate: false, effects: entries.count, outcome: verdicts[index]))
                )
            case .success(.alreadyProcessed(let entries)):
                // A redelivery after a crash, or a duplicate: what its processing left unfinished is handed
                // over again; the dispatcher skips what it already holds.
                handedOver.append(contentsOf: entries)
                metrics.eventProcessed(type: type, outcome: "duplicate")
                committed.append(.success(Committed(isDuplicate: true, effects: 0, outcome: nil)))
            case .failure(let error):
                committed.append(.failure(error))
            }
        }
        dispatcher?.submit(handedOver)
        return committed
    }

    private func acknowledge(_ delivery: Delivery) {
        amqp.ack(delivery)
        acknowledged.add(1, ordering: .relaxed)
    }

    private func acknowledge(_ deliveries: [Delivery]) {
        amqp.ack(deliveries)
        acknowledged.add(deliveries.count, ordering: .relaxed)
    }

    private func deadLetterMalformed(_ delivery: Delivery, error: MalformedEventError) async {
        let known = decoder.bestEffortEnvelope(delivery.body)
        let now = Date()
        let readable = DeadLetterRecord(
            id: DeadLetterRecord.stableID(reason: .malformed, source: delivery.body),
            reason: .malformed,
            callId: known.callId,
            eventType: known.type,
            eventId: nil,
            attempts: 1,
            firstFailureAt: now,
            lastFailureAt: now,
            lastError: error.message,
            originalPayload: delivery.body,
            origin: .init(exchange: delivery.exchange, routingKey: delivery.routingKey)
        )
        let record = cipher.map(readable.sealingPayload) ?? readable
        var metadata: Logger.Metadata = [
            LogKeys.reason: "\(error.code)", LogKeys.deadLetterId: "\(record.id)",
            LogKeys.deadLetterReason: "\(record.reason.rawValue)",
        ]
        if let callId = known.callId { metadata[LogKeys.callIdMasked] = "\(Masking.mask(callId))" }
        do {
            try await deadLetters.publish(record, causedBy: delivery)
            metrics.eventProcessed(type: "undecodable", outcome: "deadLettered")
            metrics.deadLettered(reason: record.reason.rawValue)
            // The error text is the decoder's: it names fields, never their values.
            logger.warning("dead-lettered", metadata: metadata.merging([LogKeys.error: "\(record.lastError)"]) { $1 })
            acknowledge(delivery)
        } catch {
            logger.error(
                "could not publish a dead letter; leaving the event for redelivery",
                metadata: metadata.merging([LogKeys.error: "\(error)"]) { $1 }
            )
        }
    }
}
