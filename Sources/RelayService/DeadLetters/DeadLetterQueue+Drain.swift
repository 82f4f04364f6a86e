import Foundation
import Logging
import RelayAMQP
import RelayStore
import Synchronization

extension DeadLetterQueue {
    /// What a drain moved from the queue into the store.
    public struct DrainReport: Sendable, Hashable {
        /// Messages recorded and acked.
        public var recorded: Int
        /// Messages still on the queue when it ended (arrived meanwhile, or the broker went quiet).
        public var remaining: Int
    }

    /// Moves every message on `relay.dead-letters` into the store: recorded, then acked.
    @discardableResult
    public func drain() async throws(DeadLetterQueueError) -> DrainReport {
        let store = try requireStore()
        guard drainsFirst else { return DrainReport(recorded: 0, remaining: 0) }
        await reopenStaleClaims(store)
        let client = try await connect()
        let queue = names.deadLettersQueue
        let expected: Int
        do {
            expected = try await client.messageCount(queue: queue)
        } catch {
            await client.shutdown()
            if error.code == .channelClosed {
                throw DeadLetterQueueError(
                    .queueMissing,
                    "the dead-letter queue '\(queue)' does not exist (is amqp.namePrefix right, and has the relay "
                        + "declared its topology?): \(error.message)"
                )
            }
            throw DeadLetterQueueError(.scanFailed, "cannot read '\(queue)': \(error)")
        }
        guard expected > 0 else {
            await client.shutdown()
            return DrainReport(recorded: 0, remaining: 0)
        }
        let arrived = Mutex<[[Delivery]]>([])
        let batches = client.consumeBatches(queue: queue, prefetch: Self.drainPrefetch)
        let collector = Task {
            for await batch in batches { arrived.withLock { $0.append(batch) } }
        }
        var recorded = 0
        var failure: DeadLetterQueueError?
        var lastArrival = ContinuousClock.now
        var lastCount = ContinuousClock.now
        let started = ContinuousClock.now
        while recorded < expected {
            let taken = arrived.withLock { pending in
                defer { pending.removeAll() }
                return pending
            }
            if taken.isEmpty {
                // The first message of a large queue can take a while; after it, silence means the end.
                let quiet = ContinuousClock.now - (recorded == 0 ? started : lastArrival)
                if quiet > (recorded == 0 ? firstMessageTimeout : scanIdleTimeout) { break }
                // The running relay drains the same queue: what it took is not coming here. Nothing ready
                // before anything came means nothing will. (After a first batch, the deliveries still
                // on their way here are not "ready" either: then only silence ends the wait.)
                if recorded == 0, ContinuousClock.now - lastCount > .milliseconds(200) {
                    lastCount = .now
                    if (try? await client.messageCount(queue: queue)) == 0, arrived.withLock({ $0.isEmpty }) { break }
                }
                try? await Task.sleep(for: .milliseconds(5))
                continue
            }
            lastArrival = .now
            let deliveries = taken.flatMap { $0 }
            let now = Date()
            do {
                _ = try await store.recordDeadLetters(
                    deliveries.map { StoredDeadLetter(message: $0, names: names, now: now) },
                    now: now
                )
            } catch {
                // Not acked: the broker keeps them for the next drain.
                failure = DeadLetterQueueError(.storeFailed, "cannot record dead letters in the store: \(error)")
                break
            }
            client.ack(deliveries)
            recorded += deliveries.count
        }
        await client.stopConsuming()
        await collector.value
        // A round trip after the acks: they have left before the connection closes.
        let remaining = (try? await client.messageCount(queue: queue)) ?? 0
        await client.shutdown()
        if let failure { throw failure }
        if recorded > 0 {
            logger.info("dead letters drained into the store", metadata: [LogKeys.deadLetterRecorded: "\(recorded)"])
        }
        return DrainReport(recorded: recorded, remaining: remaining)
    }
}
