public import Logging
import Foundation
public import RelayAMQP
public import RelayCore
public import ServiceLifecycle
import Synchronization

/// The relay's main job: consume events, decide, act, dead-letter what cannot be finished, then ack.
///
/// A delivery is acked only once its outcome is safe: the customer update accepted by the platform, or
/// a dead-letter record confirmed by the broker. Anything else (a crash, a broker outage, shutdown
/// mid-flight) leaves it unacked, and the broker delivers it again.
public final class EventPipeline: Service {
    let amqp: AMQPClient
    let names: RelayNames
    let decoder: PlatformEventDecoder
    let linking: PhaseOneLinking
    let sender: CustomerUpdateSender
    let deadLetters: DeadLetterPublisher
    let prefetch: UInt16
    let logger: Logger
    private let acknowledged = Atomic<Int>(0)

    /// Deliveries this pipeline has acked since it started: each one finished for good.
    public var acknowledgedCount: Int { acknowledged.load(ordering: .relaxed) }

    public init(
        amqp: AMQPClient, names: RelayNames, decoder: PlatformEventDecoder, linking: PhaseOneLinking,
        sender: CustomerUpdateSender, prefetch: Int, logger: Logger
    ) {
        self.amqp = amqp
        self.names = names
        self.decoder = decoder
        self.linking = linking
        self.sender = sender
        self.deadLetters = DeadLetterPublisher(amqp: amqp, exchange: names.deadLetterExchange)
        self.prefetch = UInt16(clamping: prefetch)
        self.logger = logger
    }

    /// Consumes until graceful shutdown, then stops consuming and finishes what is in flight.
    public func run() async throws {
        let deliveries = amqp.consume(queue: names.eventsQueue, prefetch: prefetch)
        logger.info("relay consuming", metadata: ["amqp.queue": "\(names.eventsQueue)", "amqp.prefetch": "\(prefetch)"])
        await withGracefulShutdownHandler {
            // The broker holds back more than `prefetch` unacked deliveries, which bounds this group.
            await withDiscardingTaskGroup { group in
                for await delivery in deliveries {
                    group.addTask { await self.process(delivery) }
                }
            }
        } onGracefulShutdown: {
            Task { await self.amqp.stopConsuming() }
        }
        logger.info("relay stopped consuming; in-flight events finished")
    }

    func process(_ delivery: Delivery) async {
        let event: PlatformEvent
        do {
            event = try decoder.decode(delivery.body)
        } catch {
            await deadLetterMalformed(delivery, error: error)
            return
        }
        var metadata: Logger.Metadata = [
            LogKeys.callIdMasked: "\(Masking.mask(event.callId))", LogKeys.eventId: "\(event.eventId)",
            LogKeys.eventType: "\(event.type.rawValue)",
        ]
        switch linking.decide(event) {
        case .nothingToDo(let reason):
            logger.debug("event needs no output", metadata: metadata.merging([LogKeys.reason: "\(reason)"]) { $1 })
            acknowledge(delivery)
        case .effects(let effects):
            for effect in effects {
                switch effect {
                case .customerUpdate(let update):
                    metadata[LogKeys.externalIdMasked] = "\(update.externalId.masked)"
                    let outcome = await sender.send(update)
                    switch outcome {
                    case .delivered(let status, let attempts):
                        logger.info(
                            "customer updated",
                            metadata: metadata.merging([LogKeys.httpStatus: "\(status)", LogKeys.attempt: "\(attempts)"]) { $1 })
                    case .abandoned:
                        return  // stopping: left unacked, the broker delivers it again
                    case .failed(let error, let status, let attempts, let firstFailureAt):
                        let record = DeadLetterRecord(
                            id: DeadLetterRecord.stableID(reason: .deliveryFailed, source: Array(update.idempotencyKey.utf8)),
                            reason: .deliveryFailed, callId: event.callId, eventType: event.type.rawValue,
                            eventId: event.eventId, attempts: attempts, firstFailureAt: firstFailureAt,
                            lastFailureAt: Date(), lastError: error, originalPayload: delivery.body,
                            origin: .init(exchange: delivery.exchange, routingKey: delivery.routingKey),
                            target: .init(method: "PUT", url: sender.url(for: update), lastStatus: status))
                        guard await publish(record, metadata: metadata) else { return }
                    }
                }
            }
            acknowledge(delivery)
        }
    }

    private func acknowledge(_ delivery: Delivery) {
        amqp.ack(delivery)
        acknowledged.add(1, ordering: .relaxed)
    }

    private func deadLetterMalformed(_ delivery: Delivery, error: MalformedEventError) async {
        let known = decoder.bestEffortEnvelope(delivery.body)
        let now = Date()
        let record = DeadLetterRecord(
            id: DeadLetterRecord.stableID(reason: .malformed, source: delivery.body), reason: .malformed,
            callId: known.callId, eventType: known.type, eventId: nil, attempts: 1, firstFailureAt: now,
            lastFailureAt: now, lastError: error.message, originalPayload: delivery.body,
            origin: .init(exchange: delivery.exchange, routingKey: delivery.routingKey))
        var metadata: Logger.Metadata = [LogKeys.reason: "\(error.code)"]
        if let callId = known.callId { metadata[LogKeys.callIdMasked] = "\(Masking.mask(callId))" }
        if await publish(record, metadata: metadata) { acknowledge(delivery) }
    }

    /// True once the broker confirmed the record; false leaves the delivery unacked for redelivery.
    private func publish(_ record: DeadLetterRecord, metadata: Logger.Metadata) async -> Bool {
        var metadata = metadata
        metadata[LogKeys.deadLetterId] = "\(record.id)"
        metadata[LogKeys.deadLetterReason] = "\(record.reason.rawValue)"
        do {
            try await deadLetters.publish(record)
            // The error text is ours (decoder, HTTP status, curl): it never holds personal data.
            logger.warning("dead-lettered", metadata: metadata.merging([LogKeys.error: "\(record.lastError)"]) { $1 })
            return true
        } catch {
            logger.error("could not publish a dead letter; leaving the event for redelivery",
                metadata: metadata.merging([LogKeys.error: "\(error)"]) { $1 })
            return false
        }
    }
}
