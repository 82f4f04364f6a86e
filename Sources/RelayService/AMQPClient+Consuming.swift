public import RelayAMQP
import ServiceLifecycle

extension AMQPClient {
    /// Consumes `queue`, handling each delivery in a task of its own, until graceful shutdown; then
    /// stops consuming and returns once every delivery in hand has been handled.
    ///
    /// The broker holds back more than `prefetch` unacked deliveries, which bounds the tasks in flight.
    public func consumeUntilShutdown(
        queue: String, prefetch: UInt16, _ handle: @escaping @Sendable (Delivery) async -> Void
    ) async {
        let deliveries = consume(queue: queue, prefetch: prefetch)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await delivery in deliveries {
                    group.addTask { await handle(delivery) }
                }
            }
        } onGracefulShutdown: {
            Task { await self.stopConsuming() }
        }
    }
}
