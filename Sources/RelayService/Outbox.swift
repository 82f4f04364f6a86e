public import Logging
public import Foundation
public import RelayAMQP
import RelayCore
public import RelayStore

/// Outbox entry kinds: what an effect becomes on the broker.
enum OutboxKind {
    /// A `DeliveryJob` for `relay.deliveries`.
    static let delivery = "delivery"
    /// A `DeliveryJob` that looks something up (enrichment, context validation), for `relay.enrichment`:
    /// slow CRM lookups must not queue in front of phase-1 customer updates.
    static let lookup = "lookup"
    /// A `DeadLetterRecord` for the dead-letter exchange.
    static let deadLetter = "deadLetter"
}

extension CallCorrelator.Effect {
    /// - Parameter cipher: seals the jobs' personal data before they reach the store (nil: left open, for
    ///   tests of a pipeline without privacy).
    func outboxEntry(causeId: String, sealingWith cipher: FieldCipher?) -> NewOutboxEntry {
        func delivery(_ job: DeliveryJob, kind: String = OutboxKind.delivery) -> NewOutboxEntry {
            NewOutboxEntry(kind: kind, payload: (cipher.map(job.sealed) ?? job).encoded())
        }
        switch self {
        case .customerUpdate(let update):
            return delivery(DeliveryJob(customerUpdate: update, causeId: causeId))
        case .enrich(let request):
            return delivery(DeliveryJob(enrichment: request, causeId: causeId), kind: OutboxKind.lookup)
        case .changeContext(let change):
            return delivery(DeliveryJob(contextChange: change, causeId: causeId), kind: OutboxKind.lookup)
        case .postCallWebhook(let webhook):
            return delivery(DeliveryJob(webhook: webhook, causeId: causeId))
        case .orphaned(let record):
            return NewOutboxEntry(kind: OutboxKind.deadLetter, payload: record.encoded())
        }
    }
}

/// Moves committed effects from the store's outbox to the broker, with publisher confirms, and marks
/// them published. An entry is published at least once: after a crash, the redelivered event or the
/// periodic sweep publishes it again, under the same idempotency key.
public struct OutboxPublisher: Sendable {
    let amqp: AMQPClient
    let store: any InteractionStore
    let names: RelayNames
    let metrics: RelayMetrics
    let logger: Logger
    /// When this publisher, and so this relay, started. An entry still unpublished that was committed
    /// before it was left by a process that is gone: nothing else will publish it, so it goes at once.
    public let startedAt: Date

    public init(
        amqp: AMQPClient, store: any InteractionStore, names: RelayNames, metrics: RelayMetrics = .disabled,
        logger: Logger, startedAt: Date = Date()
    ) {
        self.startedAt = startedAt
        self.amqp = amqp
        self.store = store
        self.names = names
        self.metrics = metrics
        self.logger = logger
    }

    /// Publishes the entries not yet published and marks them; throws if the broker did not confirm
    /// one of them. The confirmed ones are marked even then: one entry that keeps failing must not
    /// have its neighbours published again at every sweep.
    public func publish(_ entries: [OutboxEntry]) async throws {
        let pending = entries.filter { $0.publishedAt == nil }
        guard !pending.isEmpty else { return }
        let outcomes = await withTaskGroup(of: PublishOutcome.self) { group in
            for entry in pending {
                // Nothing in the child throws: see `attempt`.
                let message = Result { try self.message(for: entry) }
                group.addTask { await self.attempt(entry, message) }
            }
            var outcomes: [PublishOutcome] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let published = outcomes.filter { $0.error == nil }.map(\.entry)
        try await store.markPublished(published.map(\.id), at: Date())
        for entry in published where entry.kind == OutboxKind.deadLetter {
            if let record = try? DeadLetterRecord.decode(entry.payload) {
                metrics.deadLettered(reason: record.reason.rawValue)
                logger.warning(
                    "dead-lettered",
                    metadata: [
                        LogKeys.deadLetterId: "\(record.id)", LogKeys.deadLetterReason: "\(record.reason.rawValue)",
                        LogKeys.callIdMasked: "\(Masking.mask(entry.callId))", LogKeys.error: "\(record.lastError)",
                    ])
            }
        }
        if let failed = outcomes.first(where: { $0.error != nil }), let error = failed.error {
            throw OutboxPublishFailed(entryId: failed.entry.id, failedCount: outcomes.count - published.count, underlying: error)
        }
    }

    /// One entry's publish, with no `throws` anywhere: swift-frontend 6.3.1's release build crashed
    /// ("while splitting coroutine") on an async throwing call inside the task group's child closure,
    /// even once moved into a function it inlined there.
    private func attempt(_ entry: OutboxEntry, _ message: Result<OutboundMessage, any Error>) async -> PublishOutcome {
        switch message {
        case .failure(let error):
            return PublishOutcome(entry: entry, error: error)
        case .success(let message):
            switch await amqp.publishOutcome(message) {
            case .success: return PublishOutcome(entry: entry, error: nil)
            case .failure(let error): return PublishOutcome(entry: entry, error: error)
            }
        }
    }

    /// Entries this relay committed that are younger than this are left to the path that committed
    /// them: sweeping them too would publish them twice in normal operation.
    public static let sweepMinimumAge: Duration = .seconds(10)

    /// Publishes whatever a crash left unpublished; returns how many entries it published. What a
    /// previous process committed goes at the first sweep after the start, however young.
    @discardableResult
    public func sweep(limit: Int = 500, now: Date = Date()) async throws -> Int {
        let abandoned = abandoned(try await store.unpublishedOutbox(limit: limit), now: now)
        try await publish(abandoned)
        return abandoned.count
    }

    /// The unpublished entries no path is still publishing: committed before this relay started, or by
    /// it longer than `sweepMinimumAge` ago.
    public func abandoned(_ entries: [OutboxEntry], now: Date) -> [OutboxEntry] {
        Self.abandoned(entries, now: now, startedAt: startedAt)
    }

    public static func abandoned(_ entries: [OutboxEntry], now: Date, startedAt: Date) -> [OutboxEntry] {
        let cutoff = now.addingTimeInterval(-sweepMinimumAge.totalSeconds)
        return entries.filter { $0.publishedAt == nil && ($0.createdAt < cutoff || $0.createdAt < startedAt) }
    }

    func message(for entry: OutboxEntry) throws -> OutboundMessage {
        switch entry.kind {
        case OutboxKind.delivery:
            return OutboundMessage(
                exchange: names.workExchange, routingKey: names.deliveryRoutingKey, body: entry.payload,
                messageId: "outbox-\(entry.id)")
        case OutboxKind.lookup:
            return OutboundMessage(
                exchange: names.workExchange, routingKey: names.enrichmentRoutingKey, body: entry.payload,
                messageId: "outbox-\(entry.id)")
        case OutboxKind.deadLetter:
            let record = try DeadLetterRecord.decode(entry.payload)
            return DeadLetterPublisher.message(for: record, exchange: names.deadLetterExchange)
        default:
            throw UnknownOutboxKind(kind: entry.kind)
        }
    }
}

private struct PublishOutcome: Sendable {
    var entry: OutboxEntry
    var error: (any Error)?
}

/// Some entries were not published (the others are marked): the first failure, and how many failed.
public struct OutboxPublishFailed: Error, CustomStringConvertible {
    public var entryId: Int64
    public var failedCount: Int
    public var underlying: any Error
    public var description: String {
        "\(failedCount) outbox \(failedCount == 1 ? "entry" : "entries") not published; entry \(entryId): \(underlying)"
    }
}

struct UnknownOutboxKind: Error, CustomStringConvertible {
    var kind: String
    var description: String { "unknown outbox entry kind '\(kind)'" }
}
