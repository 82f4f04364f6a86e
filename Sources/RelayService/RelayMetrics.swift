public import CoreMetrics
public import Foundation
import Metrics
public import RelayCore
public import RelayStore

/// Every metric the relay records, in one place, so names and label sets stay consistent (a
/// Prometheus registry refuses one name with two label sets).
///
/// The factory is injected rather than bootstrapped globally: each relay (and each test's relay) has
/// its own registry, and the admin API exports that one.
public struct RelayMetrics: Sendable {
    public enum Name {
        public static let eventsConsumed = "relay_events_consumed_total"
        public static let eventsProcessed = "relay_events_processed_total"
        public static let deadLetters = "relay_dead_letters_total"
        public static let deliveries = "relay_deliveries_total"
        public static let retries = "relay_delivery_retries_total"
        public static let breakerState = "relay_breaker_state"
        public static let enrichmentDuration = "relay_enrichment_duration_seconds"
        public static let deliveryDuration = "relay_delivery_duration_seconds"
        public static let inFlight = "relay_messages_in_flight"
        public static let lookups = "relay_lookups_total"
        public static let lookupDuration = "relay_lookup_duration_seconds"
        public static let outboxPending = "relay_outbox_pending"
        public static let outboxDue = "relay_outbox_due"
        public static let outboxRetrying = "relay_outbox_retrying"
        public static let outboxOldestPendingAge = "relay_outbox_oldest_pending_age_seconds"
        public static let outboxInHand = "relay_outbox_in_hand"
        public static let info = "relay_info"
    }

    let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Records nothing: for tools and tests that do not look at metrics.
    public static let disabled = RelayMetrics(factory: NOOPMetricsHandler.instance)

    /// Which relay this is (its name in the store's claims) and on which store: 1, always. Several
    /// relays' metrics are told apart by it, whatever their scrape targets are called.
    public func info(instance: String, store: String) {
        Gauge(label: Name.info, dimensions: [("instance_name", instance), ("store", store)], factory: factory).record(1)
    }

    /// An event taken off `relay.events`; `type` is the event type, or `undecodable`.
    public func eventConsumed(type: String) {
        Counter(label: Name.eventsConsumed, dimensions: [("type", type)], factory: factory).increment()
    }

    /// `outcome`: applied, duplicate, deadLettered or failed (left for redelivery).
    public func eventProcessed(type: String, outcome: String) {
        Counter(label: Name.eventsProcessed, dimensions: [("type", type), ("outcome", outcome)], factory: factory)
            .increment()
    }

    public func deadLettered(reason: String) {
        Counter(label: Name.deadLetters, dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// One finished attempt of an outbound request. `outcome`: delivered, retried, deadLettered, or (no
    /// request made) refused by the target's open breaker or superseded; `statusClass`: 2xx…5xx,
    /// transport, or none.
    public func delivery(kind: String, outcome: String, statusClass: String, duration: Duration) {
        Counter(
            label: Name.deliveries,
            dimensions: [("kind", kind), ("outcome", outcome), ("status_class", statusClass)],
            factory: factory
        ).increment()
        Timer(label: Name.deliveryDuration, dimensions: [("kind", kind)], factory: factory).recordNanoseconds(
            duration.nanoseconds
        )
        if outcome == "retried" {
            Counter(label: Name.retries, dimensions: [("kind", kind)], factory: factory).increment()
        }
    }

    /// One enrichment or context-update lookup (CRM, then ERP), whatever its outcome.
    public func enrichment(outcome: String, duration: Duration) {
        Timer(label: Name.enrichmentDuration, dimensions: [("outcome", outcome)], factory: factory)
            .recordNanoseconds(duration.nanoseconds)
    }

    /// 0 closed, 1 half-open, 2 open.
    public func breakerState(upstream: String, value: Int) {
        Gauge(label: Name.breakerState, dimensions: [("upstream", upstream)], factory: factory).record(value)
    }

    /// What waits in the outbox, read when scraped, by kind (`delivery`, `lookup`, `deadLetter`):
    /// unfinished entries, those due now, retries scheduled for later, and the oldest one's age; and
    /// how many this relay holds in memory (queued or running).
    public func outbox(_ summary: OutboxSummary, now: Date, inHand: Int) {
        for kind in Set(summary.kinds.keys).union(OutboxKind.all) {
            let counts = summary.kinds[kind] ?? .init()
            let dimensions = [("kind", kind)]
            Gauge(label: Name.outboxPending, dimensions: dimensions, factory: factory).record(counts.pending)
            Gauge(label: Name.outboxDue, dimensions: dimensions, factory: factory).record(counts.due)
            Gauge(label: Name.outboxRetrying, dimensions: dimensions, factory: factory).record(counts.retrying)
            Gauge(label: Name.outboxOldestPendingAge, dimensions: dimensions, factory: factory)
                .record(counts.oldestCreatedAt.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
        Gauge(label: Name.outboxInHand, factory: factory).record(inHand)
    }

    /// `stage`: events, deliveries or lookups.
    public func inFlight(stage: String) -> InFlight {
        InFlight(meter: Meter(label: Name.inFlight, dimensions: [("stage", stage)], factory: factory))
    }

    /// Counts one message in while it is processed.
    public struct InFlight: Sendable {
        let meter: Meter
        public func increment() { meter.increment() }
        public func decrement() { meter.decrement() }
        public func increment(by count: Int) { meter.increment(by: Double(count)) }
        public func decrement(by count: Int) { meter.decrement(by: Double(count)) }
    }

    /// One CTI lookup. `source`: override, cache, crm, phone (the phase-1 id), none.
    public func lookup(source: String, duration: Duration) {
        Counter(label: Name.lookups, dimensions: [("source", source)], factory: factory).increment()
        Timer(label: Name.lookupDuration, dimensions: [("source", source)], factory: factory)
            .recordNanoseconds(duration.nanoseconds)
    }

    /// The status class a Prometheus label carries: bounded, unlike the status itself.
    public static func statusClass(_ result: DeliveryAttemptResult) -> String {
        switch result {
        case .response(let status, _, _): "\(status / 100)xx"
        case .transportFailure: "transport"
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
