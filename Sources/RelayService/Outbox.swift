public import Foundation
import RelayCore
public import RelayStore

/// Outbox entry kinds: which of the dispatcher's lanes carries an effect out.
public enum OutboxKind {
    /// A `DeliveryJob` that sends (a customer update, a post-call webhook): the send lane.
    public static let delivery = "delivery"
    /// A `DeliveryJob` that looks something up (enrichment, context validation): the lookup lane, so
    /// slow CRM lookups never queue in front of phase-1 customer updates.
    public static let lookup = "lookup"
    /// A `DeadLetterRecord` for the dead-letter exchange.
    public static let deadLetter = "deadLetter"

    public static let all = [delivery, lookup, deadLetter]

    /// Why an operator's kind filter is refused (the CLI's `--kind`, the admin API's `kind`); nil when
    /// there is none or it is one of `all`.
    public static func rejection(of kind: String?) -> String? {
        guard let kind, !all.contains(kind) else { return nil }
        return "must be one of \(all.joined(separator: ", "))"
    }
}

extension CallCorrelator.Effect {
    /// - Parameters:
    ///   - trace: the causing event's span, as the tracer wrote it: the job's attempts continue its trace.
    ///   - cipher: seals the jobs' personal data before they reach the store (nil: left open, for tests
    ///     of a pipeline without privacy).
    func outboxEntry(
        causeId: String,
        trace: [String: String]? = nil,
        sealingWith cipher: FieldCipher?
    ) -> NewOutboxEntry {
        func delivery(_ made: DeliveryJob, kind: String = OutboxKind.delivery) -> NewOutboxEntry {
            var job = made
            job.traceContext = trace
            return NewOutboxEntry(kind: kind, payload: (cipher.map(job.sealed) ?? job).encoded(), inMemoryJob: job)
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
