import Foundation
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
    let store: any RelayDatabase
    let names: RelayNames
    let metrics: RelayMetrics
    let logger: Logger

    /// Messages held unacked at most: recorded a batch at a time. A record can carry a 64 KB event
    /// twice (payload and message), so this bounds what one batch holds in memory to about 13 MB.
    static let prefetch: UInt16 = 100

    public init(
        amqp: AMQPClient,
        store: any RelayDatabase,
        names: RelayNames,
        metrics: RelayMetrics = .disabled,
        logger: Logger
    ) {
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
        var pause = Duration.milliseconds(500)
        while true {
            let now = Date()
            do {
                let recorded = try await store.recordDeadLetters(
                    batch.map { StoredDeadLetter(message: $0, names: names, now: now) },
                    now: now
                )
                amqp.ack(batch)
                let new = recorded.count { $0 != .copy }
                if new > 0 {
                    logger.debug("dead letters recorded", metadata: [LogKeys.deadLetterRecorded: "\(new)"])
                }
                return
            } catch {
                logger.error(
                    "could not record dead letters in the store; holding them and trying again",
                    metadata: [LogKeys.error: "\(error)", LogKeys.deadLetterBatch: "\(batch.count)"]
                )
            }
            // Held, not nacked: a requeue counts as a delivery, and a queue with a delivery limit (quorum
            // queues have one by default from RabbitMQ 4.0) would drop a dead letter the store refused
            // a few times. Stopping returns them to the queue unacked, for the next start.
            do {
                try await Task.sleep(for: pause)
            } catch {
                return
            }
            if Task.isShuttingDownGracefully { return }
            pause = min(pause * 2, .seconds(30))
        }
    }
}
