public import RelayAMQP
import ServiceLifecycle

extension AMQPClient {
    /// Consumes `queue`, handling each delivery in a task of its own, until graceful shutdown; then
    /// stops consuming and returns once every delivery in hand has been handled.
    ///
    /// The broker holds back more than `prefetch` unacked deliveries, which bounds the tasks in flight.
    public func consumeUntilShutdown(
        queue: String,
        prefetch: UInt16,
        _ handle: @escaping @Sendable (Delivery) async -> Void
    ) async {
        let deliveries = consume(queue: queue, prefetch: prefetch)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await delivery in deliveries {
                    group.addTask { await handle(delivery) }
                }
            }
        } onGracefulShutdown: {
            Task { await self.stopConsuming(queue: queue) }
        }
    }

    /// `consumeUntilShutdown`, a batch at a time: each turn's deliveries (at most `prefetch`) in one
    /// task. Batches run concurrently, so one waiting on its commit never holds the next back.
    public func consumeBatchesUntilShutdown(
        queue: String,
        prefetch: UInt16,
        _ handle: @escaping @Sendable ([Delivery]) async -> Void
    ) async {
        let batches = consumeBatches(queue: queue, prefetch: prefetch)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await batch in batches {
                    group.addTask { await handle(batch) }
                }
            }
        } onGracefulShutdown: {
            Task { await self.stopConsuming(queue: queue) }
        }
    }
}
