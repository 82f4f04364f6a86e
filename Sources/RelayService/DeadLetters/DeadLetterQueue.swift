public import Foundation
public import Logging
public import RelayAMQP
public import RelayCore
public import RelayStore
import Synchronization

/// The dead-letter tools' side of the record: drains `relay.dead-letters` into the store, then
/// lists, replays, purges and resolves dead letters there.
///
/// The queue is how dead letters travel; the store's `dead_letter` table is the record operators
/// query. Every operation first drains the queue: each message is recorded (idempotently by its id)
/// and acked only once the record is committed, so nothing is lost between the two, and the queue
/// stays short however large an incident. Reads then come from the store: counts and rows without
/// payloads, in bounded memory, the same for every reader at once.
///
/// A replay claims its record first (`open` → `replaying`), so two operators replaying the same
/// record replay it once; it is marked `replayed` once the broker confirmed the republish (or the
/// outbox committed the job), and is `open` again if that failed. Replays publish on a connection of
/// their own, one at a time, each waiting for its confirm, so `rate` can pace them.
public struct DeadLetterQueue: Sendable {
    public let configuration: AMQPConfiguration
    public let names: RelayNames
    /// How long to wait for the broker when opening a connection.
    public var connectTimeout: Duration = .seconds(10)
    /// A drain waits this long for its first message (a large queue takes time to start delivering)...
    public var firstMessageTimeout: Duration = .seconds(30)
    /// ...and ends when the queue has delivered its message count, or nothing arrived for this long
    /// (a busy machine can take seconds between batches).
    public var scanIdleTimeout: Duration = .seconds(5)
    /// A replay whose confirm has not come after this long fails (and its record is kept).
    public var confirmTimeout: Duration = .seconds(30)
    /// Opens sealed payloads (`malformed` records) for show, export and replay; nil leaves them sealed,
    /// and replay then refuses them.
    public var cipher: FieldCipher?
    /// The relay's store: the record of dead letters, and the outbox failed deliveries are replayed to.
    public var store: (any RelayDatabase)?
    /// Whether each operation first drains the queue itself: the CLI's way, which works with the relay
    /// stopped. Inside a running relay (the admin API) its `DeadLetterDrain` does that already, and a
    /// connection to the broker per request would only cost time.
    public var drainsFirst = true
    let logger: Logger

    /// Messages a drain holds unacknowledged at most: recorded and acked a batch at a time. As the
    /// relay's own drain: a record can carry a 64 KB event twice, so 100 is up to about 14 MB in hand.
    static let drainPrefetch: UInt16 = 100
    /// Whole records (payloads, messages) read from the store at once by replay, show and export.
    static let wholePage = 100
    /// Records moved in one store transaction by a bulk purge.
    static let transitionBatch = 500

    public init(configuration: AMQPConfiguration, names: RelayNames, logger: Logger) {
        var configuration = configuration
        configuration.connectionName = "identity-relay dead-letters"
        self.configuration = configuration
        self.names = names
        self.logger = logger
    }

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

    /// The dead letters the filter selects (open ones unless it names states), oldest first, after a
    /// drain. Rows only, without payloads, unless `whole` (export: keep its `limit` to a page).
    public func list(
        _ filter: DeadLetterFilter,
        whole: Bool = false
    ) async throws(DeadLetterQueueError) -> DeadLetterListing {
        let drained = try await drain()
        let store = try requireStore()
        return try await stored { () async throws -> DeadLetterListing in
            var rows = try await store.deadLetters(Self.query(filter))
            if whole { rows = try await Self.wholeRows(rows, store) }
            let total = try await store.deadLetterCount(DeadLetterQuery())
            return DeadLetterListing(
                letters: rows.map { DeadLetter(stored: $0, names: names, cipher: cipher) },
                scanned: total,
                truncated: drained.remaining > 0
            )
        }
    }

    /// One dead letter, payload included, in whatever state (a replayed or resolved one keeps its
    /// history), after a drain; nil when the store has no such id.
    public func letter(id: String) async throws(DeadLetterQueueError) -> DeadLetter? {
        try await drain()
        let store = try requireStore()
        return try await stored { () async throws -> DeadLetter? in
            try await store.deadLetter(id: id).map { DeadLetter(stored: $0, names: names, cipher: cipher) }
        }
    }

    /// Counts first: by reason, by last error, oldest and newest, for what the filter selects.
    public func summary(_ filter: DeadLetterFilter) async throws(DeadLetterQueueError) -> DeadLetterSummary {
        try await drain()
        let store = try requireStore()
        return try await stored { () async throws -> DeadLetterSummary in
            try await store.deadLetterSummary(Self.query(filter))
        }
    }

    /// Republishes each selected open dead letter's original payload to its origin, with the replay
    /// count incremented (a failed delivery or lookup goes back to the outbox instead), and marks it
    /// replayed once that is confirmed. One that cannot be replayed (no origin, missing exchange,
    /// unroutable, no confirm, replayed by someone else meanwhile) stays open and is reported as failed.
    ///
    /// - Parameters:
    ///   - dryRun: report what would be replayed; change nothing.
    ///   - rate: at most this many replays per second; nil for no limit.
    ///   - resetAttempts: a delivery or lookup replayed into the outbox starts a new retry budget
    ///     (attempts and age); without it the job goes on counting, so an exhausted one gets one attempt.
    public func replay(
        _ filter: DeadLetterFilter,
        dryRun: Bool = false,
        rate: Double? = nil,
        resetAttempts: Bool = false,
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        let drained = try await drain()
        let store = try requireStore()
        if !drainsFirst { await reopenStaleClaims(store) }
        let (rows, total) = try await stored { () async throws -> ([StoredDeadLetter], Int) in
            (
                try await store.deadLetters(Self.query(filter, states: [.open])),
                try await store.deadLetterCount(DeadLetterQuery())
            )
        }
        var outcomes: [DeadLetterOutcome] = []
        var publisher: AMQPClient?
        var pacer = ReplayPacer(rate: rate)
        var tally = OutcomeTally()
        // Whole records a page at a time: one read per page, never an incident's payloads at once.
        var page: [String: StoredDeadLetter] = [:]
        for (index, row) in rows.enumerated() {
            if index % Self.wholePage == 0 {
                let ids = rows[index..<min(index + Self.wholePage, rows.count)].map(\.id)
                page = Dictionary(
                    ((try? await store.deadLetters(ids: ids)) ?? []).map { ($0.id, $0) },
                    uniquingKeysWith: { first, _ in first }
                )
            }
            let whole = page.removeValue(forKey: row.id)
            // The whole record (payload, message) only while this one is handled; the report keeps the row.
            let listed = DeadLetter(stored: row, names: names, cipher: cipher)
            let outcome: DeadLetterOutcome.Result = await {
                guard let whole else { return .failed("its record could not be read from the store") }
                let letter = DeadLetter(stored: whole, names: names, cipher: cipher)
                if let reason = letter.notReplayableReason { return .failed(reason) }
                if dryRun { return .wouldReplay(to: letter.origin!) }
                // Paced and connected before the claim: a claim is held only while the replay runs.
                if let wait = pacer.waitBeforeNext(now: .now) { try? await Task.sleep(for: wait) }
                let toOutbox = letter.origin?.isOutbox == true
                if !toOutbox, publisher == nil {
                    do { publisher = try await connect() } catch { return .failed("\(error)") }
                }
                let claimed =
                    (try? await store.transitionDeadLetters(ids: [row.id], from: [.open], to: .replaying, now: Date()))
                    ?? []
                guard !claimed.isEmpty else { return .failed("replayed, purged or resolved by someone else meanwhile") }
                let result =
                    toOutbox
                    ? await requeueInOutbox(letter, resetAttempts: resetAttempts)
                    : await republish(letter, using: publisher!)
                let settled: StoredDeadLetter.State
                if case .replayed = result { settled = .replayed } else { settled = .open }
                // Left `replaying` only if the store is gone too: the next operation reopens it (`drain`).
                _ = try? await store.transitionDeadLetters(ids: [row.id], from: [.replaying], to: settled, now: Date())
                return result
            }()
            let done = DeadLetterOutcome(letter: listed, result: outcome, copies: row.copies)
            outcomes.append(done)
            tally.add(done)
            progress(
                DeadLetterProgress(
                    operation: .replay,
                    done: index + 1,
                    total: rows.count,
                    succeeded: tally.succeeded,
                    failed: tally.failed,
                    dryRun: dryRun
                )
            )
        }
        if let publisher { await publisher.shutdown() }
        return DeadLetterReport(
            operation: .replay,
            dryRun: dryRun,
            scanned: total,
            truncated: drained.remaining > 0,
            outcomes: outcomes,
            notFound: Self.notFound(filter, in: rows),
            cancelled: false
        )
    }

    /// Marks the selected dead letters purged once `confirm` (shown all of them) agrees. Their rows stay
    /// (state `purged`) until the retention purge removes them.
    public func purge(
        _ filter: DeadLetterFilter,
        dryRun: Bool = false,
        confirm: @escaping @Sendable ([DeadLetter]) async -> Bool = { _ in true },
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        try await close(
            filter,
            to: .purged,
            operation: .purge,
            note: nil,
            dryRun: dryRun,
            confirm: confirm,
            progress: progress
        )
    }

    /// Closes the selected dead letters with a note: an orphan, or anything handled elsewhere, that
    /// needs no replay.
    public func resolve(
        _ filter: DeadLetterFilter,
        note: String,
        dryRun: Bool = false,
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        try await close(
            filter,
            to: .resolved,
            operation: .resolve,
            note: note,
            dryRun: dryRun,
            confirm: { _ in true },
            progress: progress
        )
    }

    private func close(
        _ filter: DeadLetterFilter,
        to state: StoredDeadLetter.State,
        operation: DeadLetterOperation,
        note: String?,
        dryRun: Bool,
        confirm: @escaping @Sendable ([DeadLetter]) async -> Bool,
        progress: @escaping @Sendable (DeadLetterProgress) -> Void
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        let drained = try await drain()
        let store = try requireStore()
        if !drainsFirst { await reopenStaleClaims(store) }
        let (rows, total) = try await stored { () async throws -> ([StoredDeadLetter], Int) in
            (
                try await store.deadLetters(Self.query(filter, states: [.open])),
                try await store.deadLetterCount(DeadLetterQuery())
            )
        }
        let letters = rows.map { DeadLetter(stored: $0, names: names, cipher: cipher) }
        let notFound = Self.notFound(filter, in: rows)
        if !dryRun, !rows.isEmpty, !(await confirm(letters)) {
            return DeadLetterReport(
                operation: operation,
                dryRun: false,
                scanned: total,
                truncated: drained.remaining > 0,
                outcomes: [],
                notFound: notFound,
                cancelled: true
            )
        }
        var outcomes: [DeadLetterOutcome] = []
        var tally = OutcomeTally()
        var start = 0
        while start < letters.count {
            let chunk = Array(letters[start..<min(start + Self.transitionBatch, letters.count)])
            var moved: Set<String> = []
            if !dryRun {
                moved = Set(
                    try await stored { () async throws -> [String] in
                        try await store.transitionDeadLetters(
                            ids: chunk.map(\.id),
                            from: [.open],
                            to: state,
                            note: note,
                            now: Date()
                        )
                    }
                )
            }
            for letter in chunk {
                let result: DeadLetterOutcome.Result
                if dryRun {
                    result = operation == .purge ? .wouldPurge : .wouldResolve
                } else if moved.contains(letter.id) {
                    result = operation == .purge ? .purged : .resolved
                } else {
                    result = .failed("replayed, purged or resolved by someone else meanwhile")
                }
                let done = DeadLetterOutcome(letter: letter, result: result, copies: letter.copies)
                outcomes.append(done)
                tally.add(done)
                progress(
                    DeadLetterProgress(
                        operation: operation,
                        done: outcomes.count,
                        total: letters.count,
                        succeeded: tally.succeeded,
                        failed: tally.failed,
                        dryRun: dryRun
                    )
                )
            }
            start += chunk.count
        }
        return DeadLetterReport(
            operation: operation,
            dryRun: dryRun,
            scanned: total,
            truncated: drained.remaining > 0,
            outcomes: outcomes,
            notFound: notFound,
            cancelled: false
        )
    }

    /// Retention: drains the queue, then deletes every dead letter (whatever its state) whose last
    /// failure, or recording when it has none, is older than `cutoff`, payload and all. Returns how many.
    public func deleteOlder(than cutoff: Date) async throws(DeadLetterQueueError) -> Int {
        try await drain()
        let store = try requireStore()
        return try await stored { () async throws -> Int in try await store.deleteDeadLetters(olderThan: cutoff) }
    }

    // MARK: The store

    /// A replay claimed long before and never settled: its process died mid-replay. Open again, so it
    /// is seen and can be replayed. Before every drain (the CLI) and every replay, purge or resolve: a
    /// read inside the relay (the admin API) costs no write.
    private func reopenStaleClaims(_ store: any RelayDatabase) async {
        let stale =
            (try? await store.reopenStaleReplays(claimedBefore: Date() - 2 * confirmTimeout.totalSeconds, now: Date()))
            ?? []
        if !stale.isEmpty {
            logger.warning(
                "replays left unfinished by a stopped process are open again",
                metadata: [LogKeys.deadLetterReopened: "\(stale.count)"]
            )
        }
    }

    private func requireStore() throws(DeadLetterQueueError) -> any RelayDatabase {
        guard let store else {
            throw DeadLetterQueueError(
                .storeFailed,
                "the dead-letter tools need the relay's store: run them where store.path is the relay's"
            )
        }
        return store
    }

    /// A store access; its failure ends the operation as one that could not run.
    private func stored<T>(_ access: () async throws -> T) async throws(DeadLetterQueueError) -> T {
        do {
            return try await access()
        } catch {
            throw DeadLetterQueueError(.storeFailed, "the store did not answer: \(error)")
        }
    }

    /// The store's question for `filter`; `states` overrides the filter's (what an action may act on).
    static func query(_ filter: DeadLetterFilter, states: Set<StoredDeadLetter.State>? = nil) -> DeadLetterQuery {
        DeadLetterQuery(
            reasons: filter.reasons,
            since: filter.since,
            until: filter.until,
            callId: filter.callId,
            ids: filter.ids,
            states: states ?? filter.states,
            after: filter.after,
            limit: filter.limit
        )
    }

    static func wholeRows(_ rows: [StoredDeadLetter], _ store: any RelayDatabase) async throws -> [StoredDeadLetter] {
        var whole: [StoredDeadLetter] = []
        var start = 0
        while start < rows.count {
            let ids = rows[start..<min(start + wholePage, rows.count)].map(\.id)
            let read = Dictionary(
                try await store.deadLetters(ids: ids).map { ($0.id, $0) },
                uniquingKeysWith: { first, _ in first }
            )
            whole += rows[start..<min(start + wholePage, rows.count)].map { read[$0.id] ?? $0 }
            start += wholePage
        }
        return whole
    }

    static func notFound(_ filter: DeadLetterFilter, in rows: [StoredDeadLetter]) -> [String] {
        guard !filter.ids.isEmpty else { return [] }
        return filter.ids.subtracting(rows.map(\.id)).sorted()
    }

    // MARK: Replaying one

    /// A failed delivery or lookup goes back to the store's outbox as a new entry; the running relay's
    /// dispatcher takes it at its next poll, and the record is marked replayed only once the entry is
    /// committed. It goes on counting its attempts (an exhausted job gets one more: is it fixed?) unless
    /// `resetAttempts` gives it a new budget. Either way its record keeps its first failure.
    private func requeueInOutbox(_ letter: DeadLetter, resetAttempts: Bool) async -> DeadLetterOutcome.Result {
        guard let outbox = store else {
            return .failed(
                "a failed delivery is replayed into the relay's store: run this where store.path is the relay's"
            )
        }
        var job: DeliveryJob
        do {
            job = try DeliveryJob.decode(letter.payload)
        } catch {
            return .failed("its payload is not a delivery job: \(error)")
        }
        if resetAttempts {
            // The age a lookup gives up by is measured from the job's first failure: a new budget
            // restarts that clock too. The store's record keeps its own first failure.
            job.attempts = 0
            job.firstFailureAt = nil
        }
        job.lastError = nil
        let kind = job.kind == .enrich || job.kind == .contextChange ? "lookup" : "delivery"
        do {
            _ = try await outbox.enqueueOutbox(
                callId: job.callId,
                causeId: "replay:\(letter.id):\(letter.replayCount + 1)",
                [NewOutboxEntry(kind: kind, payload: job.encoded())],
                relink: nil,
                now: Date()
            )
        } catch {
            return .failed("the store did not take it: \(error)")
        }
        logger.info(
            "dead letter replayed into the outbox",
            metadata: [
                LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)",
                LogKeys.deadLetterReplayCount: "\(letter.replayCount + 1)",
                LogKeys.deadLetterReplayResetAttempts: "\(resetAttempts)",
            ]
        )
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
                    LogKeys.amqpExchange: "\(origin.exchange)",
                    LogKeys.deadLetterReplayCount: "\(letter.replayCount + 1)",
                ]
            )
            return .replayed(to: origin)
        case .failure(let error):
            logger.warning(
                "dead letter replay failed; kept",
                metadata: [LogKeys.deadLetterId: "\(letter.id)", LogKeys.error: "\(error)"]
            )
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
    static func publish(
        _ message: OutboundMessage,
        on client: AMQPClient,
        timeout: Duration
    ) async
        -> Result<Void, AMQPError>
    {
        await value(
            before: .now + timeout,
            orElse: .failure(AMQPError(.shutdown, "no confirm from the broker within \(timeout)"))
        ) {
            do throws(AMQPError) {
                try await client.publish(message)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
    }

    // MARK: Connecting

    private func connect() async throws(DeadLetterQueueError) -> AMQPClient {
        let client = AMQPClient(configuration: configuration, topology: nil, logger: logger)
        client.start()
        do {
            try await client.waitUntilConnected(timeout: connectTimeout)
        } catch {
            await client.shutdown()
            throw DeadLetterQueueError(
                .brokerUnreachable,
                "cannot reach the broker at \(configuration.endpointDescription): \(error.message)"
            )
        }
        return client
    }
}

/// Running counts for progress: counting the outcomes so far at every step was quadratic, minutes at
/// an incident's 20,000.
struct OutcomeTally {
    var succeeded = 0
    var failed = 0

    mutating func add(_ outcome: DeadLetterOutcome) {
        if outcome.isSuccess || outcome.isWouldBe { succeeded += 1 }
        if outcome.isFailure { failed += 1 }
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
        private enum Value: String, Sendable, Hashable { case brokerUnreachable, queueMissing, scanFailed, storeFailed }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public static let brokerUnreachable = Code(.brokerUnreachable)
        public static let queueMissing = Code(.queueMissing)
        public static let scanFailed = Code(.scanFailed)
        /// The store (the record of dead letters) could not be read or written, or none is configured.
        public static let storeFailed = Code(.storeFailed)
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
