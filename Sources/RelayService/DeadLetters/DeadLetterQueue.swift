import Foundation
public import Logging
public import RelayAMQP
public import RelayCore
public import RelayStore
import Synchronization

/// Reads, replays and purges `relay.dead-letters` without losing a message.
///
/// Every operation is one scan: read the queue's message count, consume with manual acks and hold
/// every delivery unacknowledged until that many have arrived (or the queue stays quiet for
/// `scanIdleTimeout`), stop consuming, then decide per message. Only the messages to remove are acked;
/// closing the connection hands every other one back to the broker, in its place. `list` acks
/// nothing, so reading changes nothing.
///
/// Replay publishes on a second connection: a publish to an exchange that no longer exists makes the
/// broker close the publishing channel, and the client then drops and re-opens that connection. On
/// the scanning connection that would return (and un-ack) every held message; on its own connection
/// it costs one failed record. Replays go one at a time, each waiting for its confirm, so a failure
/// never takes a neighbour's confirm with it, and `rate` can pace them.
public struct DeadLetterQueue: Sendable {
    public let configuration: AMQPConfiguration
    public let names: RelayNames
    /// How long to wait for the broker when opening a connection.
    public var connectTimeout: Duration = .seconds(10)
    /// A scan ends when the queue has delivered its message count, or when nothing arrived for this long.
    public var scanIdleTimeout: Duration = .seconds(2)
    /// A replay whose confirm has not come after this long fails (and its record is kept).
    public var confirmTimeout: Duration = .seconds(30)
    /// Opens sealed payloads (`malformed` records) for show, export and replay; nil leaves them sealed,
    /// and replay then refuses them.
    public var cipher: FieldCipher?
    /// Where failed deliveries and lookups are replayed to: the relay's outbox. Nil: replay refuses them.
    public var outbox: (any InteractionStore)?
    let logger: Logger

    /// The most messages one scan holds unacknowledged: the largest prefetch AMQP can express. (A
    /// prefetch of 0 means "unlimited" in AMQP, but quorum queues cap that at 2000 in flight.)
    static let scanPrefetch = UInt16.max

    public init(configuration: AMQPConfiguration, names: RelayNames, logger: Logger) {
        var configuration = configuration
        configuration.connectionName = "identity-relay dead-letters"
        self.configuration = configuration
        self.names = names
        self.logger = logger
    }

    /// The dead letters the filter selects. Changes nothing on the queue.
    public func list(_ filter: DeadLetterFilter) async throws(DeadLetterQueueError) -> DeadLetterListing {
        let scan = try await Scan.open(self)
        let letters = try await scan.collect()
        await scan.close(flushing: false)
        return DeadLetterListing(
            letters: filter.apply(letters.map(\.letter)), scanned: letters.count, truncated: scan.truncated)
    }

    /// Republishes each selected dead letter's original payload to its origin, with the replay count
    /// incremented, and removes it once the broker confirmed the publish. A dead letter that cannot be
    /// replayed (no origin, missing exchange, unroutable, no confirm) is kept and reported as failed.
    ///
    /// - Parameters:
    ///   - dryRun: report what would be replayed; change nothing.
    ///   - rate: at most this many replays per second; nil for no limit.
    public func replay(
        _ filter: DeadLetterFilter, dryRun: Bool = false, rate: Double? = nil,
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        let scan = try await Scan.open(self)
        let scanned = try await scan.collect()
        let groups = Self.group(scanned.filter { filter.matches($0.letter) }, limit: filter.limit)
        var outcomes: [DeadLetterOutcome] = []
        var publisher: AMQPClient?
        var pacer = ReplayPacer(rate: rate)
        for (index, group) in groups.enumerated() {
            let letter = group[0].letter
            let outcome: DeadLetterOutcome.Result
            if let reason = letter.notReplayableReason {
                outcome = .failed(reason)
            } else if dryRun {
                outcome = .wouldReplay(to: letter.origin!)
            } else if letter.origin?.isOutbox == true {
                if let wait = pacer.waitBeforeNext(now: .now) { try? await Task.sleep(for: wait) }
                outcome = await requeueInOutbox(letter)
                if case .replayed = outcome {
                    for held in group { scan.client.ack(held.delivery) }
                }
            } else {
                if publisher == nil {
                    do { publisher = try await connect() } catch {
                        await scan.close(flushing: true)
                        throw error
                    }
                }
                if let wait = pacer.waitBeforeNext(now: .now) { try? await Task.sleep(for: wait) }
                outcome = await republish(letter, using: publisher!)
                if case .replayed = outcome {
                    for held in group { scan.client.ack(held.delivery) }
                }
            }
            outcomes.append(DeadLetterOutcome(letter: letter, result: outcome, copies: group.count))
            progress(
                DeadLetterProgress(
                    operation: .replay, done: index + 1, total: groups.count,
                    succeeded: outcomes.count { $0.isSuccess || $0.isWouldBe },
                    failed: outcomes.count(where: \.isFailure),
                    dryRun: dryRun))
        }
        if let publisher { await publisher.shutdown() }
        await scan.close(flushing: true)
        return DeadLetterReport(
            operation: .replay, dryRun: dryRun, scanned: scanned.count, truncated: scan.truncated, outcomes: outcomes,
            notFound: Self.notFound(filter, in: scanned), cancelled: false)
    }

    /// Removes the selected dead letters once `confirm` (shown all of them) agrees.
    public func purge(
        _ filter: DeadLetterFilter, dryRun: Bool = false,
        confirm: @escaping @Sendable ([DeadLetter]) async -> Bool = { _ in true },
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        let scan = try await Scan.open(self)
        let scanned = try await scan.collect()
        let groups = Self.group(scanned.filter { filter.matches($0.letter) }, limit: filter.limit)
        let notFound = Self.notFound(filter, in: scanned)
        if !dryRun, !groups.isEmpty, !(await confirm(groups.flatMap { $0.map(\.letter) })) {
            await scan.close(flushing: false)
            return DeadLetterReport(
                operation: .purge, dryRun: false, scanned: scanned.count, truncated: scan.truncated, outcomes: [],
                notFound: notFound, cancelled: true)
        }
        var outcomes: [DeadLetterOutcome] = []
        for (index, group) in groups.enumerated() {
            if !dryRun {
                for held in group { scan.client.ack(held.delivery) }
            }
            outcomes.append(
                DeadLetterOutcome(letter: group[0].letter, result: dryRun ? .wouldPurge : .purged, copies: group.count))
            progress(
                DeadLetterProgress(
                    operation: .purge, done: index + 1, total: groups.count, succeeded: index + 1, failed: 0,
                    dryRun: dryRun))
        }
        await scan.close(flushing: true)
        return DeadLetterReport(
            operation: .purge, dryRun: dryRun, scanned: scanned.count, truncated: scan.truncated, outcomes: outcomes,
            notFound: notFound, cancelled: false)
    }

    // MARK: Replaying one

    /// A failed delivery or lookup goes back to the store's outbox as a new entry, with its attempts
    /// counted afresh: a replay is a new chance, not the last attempt's echo. The running relay's
    /// dispatcher takes it at its next poll. The dead letter is removed only once the entry is committed.
    private func requeueInOutbox(_ letter: DeadLetter) async -> DeadLetterOutcome.Result {
        guard let outbox else {
            return .failed("a failed delivery is replayed into the relay's store: run this where store.path is the relay's")
        }
        var job: DeliveryJob
        do {
            job = try DeliveryJob.decode(letter.payload)
        } catch {
            return .failed("its payload is not a delivery job: \(error)")
        }
        job.attempts = 0
        job.firstFailureAt = nil
        job.lastError = nil
        let kind = job.kind == .enrich || job.kind == .contextChange ? "lookup" : "delivery"
        do {
            _ = try await outbox.enqueueOutbox(
                callId: job.callId, causeId: "replay:\(letter.id):\(letter.replayCount + 1)",
                [NewOutboxEntry(kind: kind, payload: job.encoded())], relink: nil, now: Date())
        } catch {
            return .failed("the store did not take it: \(error)")
        }
        logger.info(
            "dead letter replayed into the outbox",
            metadata: [
                LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)",
                "deadletter.replay.count": "\(letter.replayCount + 1)",
            ])
        return .replayed(to: .outbox)
    }

    private func republish(_ letter: DeadLetter, using publisher: AMQPClient) async -> DeadLetterOutcome.Result {
        guard let origin = letter.origin, let message = letter.replayMessage() else {
            return .failed(letter.notReplayableReason ?? "nothing to replay")
        }
        let result = await Self.publish(message, on: publisher, timeout: confirmTimeout)
        switch result {
        case .success:
            logger.info(
                "dead letter replayed",
                metadata: [
                    LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)",
                    "amqp.exchange": "\(origin.exchange)", "deadletter.replay.count": "\(letter.replayCount + 1)",
                ])
            return .replayed(to: origin)
        case .failure(let error):
            logger.warning(
                "dead letter replay failed; kept",
                metadata: [LogKeys.deadLetterId: "\(letter.id)", LogKeys.error: "\(error)"])
            return .failed(Self.explain(error, origin: origin))
        }
    }

    /// The operator's reading of a failed republish.
    static func explain(_ error: AMQPError, origin: DeadLetterRecord.Origin) -> String {
        let exchange = origin.exchange.isEmpty ? "the default exchange" : "exchange '\(origin.exchange)'"
        if error.code == .channelClosed, error.message.contains("404") {
            return "its origin \(exchange) no longer exists (\(error.message))"
        }
        if error.code == .unroutable {
            return "its origin \(exchange) routes '\(origin.routingKey)' to no queue any more"
        }
        if error.code == .publishNacked {
            return "the broker refused the republish to \(exchange) (queue full or unavailable)"
        }
        return "republish to \(exchange) failed: \(error)"
    }

    /// Publishes and waits for the confirm, at most `timeout`. A publish still unconfirmed then may yet
    /// arrive: its record is kept, so the worst case is one more replay of the same payload.
    static func publish(_ message: OutboundMessage, on client: AMQPClient, timeout: Duration) async
        -> Result<Void, AMQPError>
    {
        let race = PublishRace()
        return await withCheckedContinuation { continuation in
            race.begin(continuation)
            let timer = Task {
                do { try await Task.sleep(for: timeout) } catch { return }
                race.settle(.failure(AMQPError(.shutdown, "no confirm from the broker within \(timeout)")))
            }
            Task {
                do throws(AMQPError) {
                    try await client.publish(message)
                    race.settle(.success(()))
                } catch {
                    race.settle(.failure(error))
                }
                timer.cancel()
            }
        }
    }

    /// The first of a confirm and a timeout resumes the waiting replay; the other is ignored.
    private final class PublishRace: Sendable {
        private let continuation = Mutex<CheckedContinuation<Result<Void, AMQPError>, Never>?>(nil)

        func begin(_ continuation: CheckedContinuation<Result<Void, AMQPError>, Never>) {
            self.continuation.withLock { $0 = continuation }
        }

        func settle(_ result: Result<Void, AMQPError>) {
            let waiting = continuation.withLock { continuation in
                defer { continuation = nil }
                return continuation
            }
            waiting?.resume(returning: result)
        }
    }

    // MARK: Scanning

    private func connect() async throws(DeadLetterQueueError) -> AMQPClient {
        let client = AMQPClient(configuration: configuration, topology: nil, logger: logger)
        client.start()
        do {
            try await client.waitUntilConnected(timeout: connectTimeout)
        } catch {
            await client.shutdown()
            throw DeadLetterQueueError(
                .brokerUnreachable, "cannot reach the broker at \(configuration.endpointDescription): \(error.message)")
        }
        return client
    }

    /// Messages grouped by dead-letter id, in queue order, at most `limit` groups.
    static func group(_ held: [Held], limit: Int?) -> [[Held]] {
        var order: [String] = []
        var groups: [String: [Held]] = [:]
        for message in held {
            if groups[message.letter.id] == nil {
                if let limit, order.count >= limit { continue }
                order.append(message.letter.id)
            }
            groups[message.letter.id, default: []].append(message)
        }
        return order.map { groups[$0]! }
    }

    static func notFound(_ filter: DeadLetterFilter, in held: [Held]) -> [String] {
        guard !filter.ids.isEmpty else { return [] }
        let present = Set(held.map(\.letter.id))
        return filter.ids.subtracting(present).sorted()
    }

    struct Held: Sendable {
        var delivery: Delivery
        var letter: DeadLetter
    }

    /// One scanning connection and the deliveries it holds.
    final class Scan: Sendable {
        let client: AMQPClient
        let queue: String
        let names: RelayNames
        let idleTimeout: Duration
        let cipher: FieldCipher?
        private let state = Mutex<(deliveries: [Delivery], truncated: Bool)>(([], false))

        private init(client: AMQPClient, queue: String, names: RelayNames, idleTimeout: Duration, cipher: FieldCipher?) {
            self.cipher = cipher
            self.client = client
            self.queue = queue
            self.names = names
            self.idleTimeout = idleTimeout
        }

        static func open(_ owner: DeadLetterQueue) async throws(DeadLetterQueueError) -> Scan {
            Scan(
                client: try await owner.connect(), queue: owner.names.deadLettersQueue, names: owner.names,
                idleTimeout: owner.scanIdleTimeout, cipher: owner.cipher)
        }

        var truncated: Bool { state.withLock { $0.truncated } }

        /// Every message on the queue, held unacknowledged, in queue order.
        func collect() async throws(DeadLetterQueueError) -> [Held] {
            let expected: Int
            do {
                expected = try await client.messageCount(queue: queue)
            } catch {
                await client.shutdown()
                if error.code == .channelClosed {
                    throw DeadLetterQueueError(
                        .queueMissing,
                        "the dead-letter queue '\(queue)' does not exist (is amqp.namePrefix right, and has the relay "
                            + "declared its topology?): \(error.message)")
                }
                throw DeadLetterQueueError(.scanFailed, "cannot read '\(queue)': \(error)")
            }
            guard expected > 0 else { return [] }
            let target = min(expected, Int(DeadLetterQueue.scanPrefetch))
            let stream = client.consume(queue: queue, prefetch: DeadLetterQueue.scanPrefetch)
            let collector = Task {
                for await delivery in stream { self.state.withLock { $0.deliveries.append(delivery) } }
            }
            var lastCount = 0
            var lastChange = ContinuousClock.now
            while true {
                // After a reconnect the broker delivers everything again: only the newest connection's
                // deliveries count, or the scan would stop early, holding part of the queue.
                let count = state.withLock { Self.newestConnection($0.deliveries).count }
                if count >= target { break }
                if count != lastCount {
                    lastCount = count
                    lastChange = .now
                } else if ContinuousClock.now - lastChange > idleTimeout {
                    break
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
            await client.stopConsuming()
            await collector.value
            let deliveries = state.withLock { state in
                let current = Self.newestConnection(state.deliveries)
                // Fewer than asked for (the broker went quiet for the idle timeout): say the scan is partial.
                state.truncated = expected > Int(DeadLetterQueue.scanPrefetch) || current.count < target
                return current
            }
            return deliveries.map { Held(delivery: $0, letter: DeadLetter(message: $0, names: names, cipher: cipher)) }
        }

        /// The deliveries of the newest connection: after a reconnect mid-scan the broker delivered
        /// everything again on the new one, and the older copies' tags mean nothing now.
        static func newestConnection(_ deliveries: [Delivery]) -> [Delivery] {
            let generation = deliveries.map(\.connectionGeneration).max() ?? 0
            return deliveries.filter { $0.connectionGeneration == generation }
        }

        /// Closes the connection: every message not acked goes back to the queue. With `flushing`, a
        /// round trip first makes sure the acks sent before it have left for the broker.
        func close(flushing: Bool) async {
            if flushing { _ = try? await client.messageCount(queue: queue) }
            await client.shutdown()
        }
    }
}

/// Spaces replays at most `rate` per second.
struct ReplayPacer {
    let interval: Duration?
    private var nextAllowed: ContinuousClock.Instant?

    init(rate: Double?) {
        interval = rate.flatMap { $0 > 0 ? .seconds(1 / $0) : nil }
    }

    /// How long to wait before the next replay, and books its slot.
    mutating func waitBeforeNext(now: ContinuousClock.Instant) -> Duration? {
        guard let interval else { return nil }
        let start = max(now, nextAllowed ?? now)
        nextAllowed = start + interval
        return start > now ? start - now : nil
    }
}

/// A dead-letter operation that could not run at all (as opposed to one record that failed).
public struct DeadLetterQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable { case brokerUnreachable, queueMissing, scanFailed }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public static let brokerUnreachable = Code(.brokerUnreachable)
        public static let queueMissing = Code(.queueMissing)
        public static let scanFailed = Code(.scanFailed)
        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
