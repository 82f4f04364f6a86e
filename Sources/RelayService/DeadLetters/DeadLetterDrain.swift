public import Foundation
public import Logging
public import RelayAMQP
public import RelayStore
public import ServiceLifecycle

/// Moves what reaches `relay.dead-letters` into the store as it arrives: the relay's own records,
/// and the messages the broker dead-lettered on its own (past `relay.events`' delivery limit). Each
/// batch is recorded in one transaction, idempotently by record id, and acked only after the commit:
/// a crash between the two records it again, as a copy. The queue stays short; the table is what
/// operators query.
public final class DeadLetterDrain: Service {
    let amqp: AMQPClient
    let store: SQLiteInteractionStore
    let names: RelayNames
    let metrics: RelayMetrics
    let logger: Logger

    /// Messages held unacked at most: recorded a batch at a time. A record can carry a 64 KB event
    /// twice (payload and message), so this bounds what one batch holds in memory to about 13 MB.
    static let prefetch: UInt16 = 100

    public init(amqp: AMQPClient, store: SQLiteInteractionStore, names: RelayNames, metrics: RelayMetrics = .disabled, logger: Logger) {
        self.amqp = amqp
        self.store = store
        self.names = names
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        await amqp.consumeBatchesUntilShutdown(queue: names.deadLettersQueue, prefetch: Self.prefetch) { batch in
            await self.record(batch)
        }
    }

    func record(_ batch: [Delivery]) async {
        let now = Date()
        do {
            let recorded = try await store.recordDeadLetters(
                batch.map { StoredDeadLetter(message: $0, names: names, now: now) }, now: now)
            amqp.ack(batch)
            let new = recorded.count { $0 != .copy }
            if new > 0 {
                logger.debug("dead letters recorded", metadata: ["deadletter.recorded": "\(new)"])
            }
        } catch {
            logger.error(
                "could not record dead letters in the store; they stay on the queue",
                metadata: [LogKeys.error: "\(error)", "deadletter.batch": "\(batch.count)"])
            // Back on the queue after a pause: a store that is down is not hammered.
            try? await Task.sleep(for: .seconds(1))
            for delivery in batch { amqp.nack(delivery, requeue: true) }
        }
    }
}
