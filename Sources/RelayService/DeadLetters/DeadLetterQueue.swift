public import Foundation
public import Logging
public import RelayAMQP
public import RelayCore
public import RelayStore

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
    func reopenStaleClaims(_ store: any RelayDatabase) async {
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

    func requireStore() throws(DeadLetterQueueError) -> any RelayDatabase {
        guard let store else {
            throw DeadLetterQueueError(
                .storeFailed,
                "the dead-letter tools need the relay's store: run them where store.path is the relay's"
            )
        }
        return store
    }

    /// A store access; its failure ends the operation as one that could not run.
    func stored<T>(_ access: () async throws -> T) async throws(DeadLetterQueueError) -> T {
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

    // MARK: Connecting

    func connect() async throws(DeadLetterQueueError) -> AMQPClient {
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
