public import CoreMetrics
public import Foundation
import Metrics
public import RelayCore
public import RelayStore
import Synchronization

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
    private let eventsConsumed: MetricCache<Counter>
    private let eventsProcessed: MetricCache<Counter>
    private let deadLetters: MetricCache<Counter>
    private let deliveries: MetricCache<Counter>
    private let deliveryDurations: MetricCache<Timer>
    private let retries: MetricCache<Counter>
    private let enrichmentDurations: MetricCache<Timer>
    private let breakerStates: MetricCache<Gauge>
    private let inFlightMeters: MetricCache<Meter>
    private let lookups: MetricCache<Counter>
    private let lookupDurations: MetricCache<Timer>
    private let outboxGauges: MetricCache<Gauge>

    public init(factory: any MetricsFactory) {
        self.factory = factory
        func counters(_ label: String, _ dimensions: String...) -> MetricCache<Counter> {
            MetricCache { values in Counter(label: label, dimensions: Array(zip(dimensions, values)), factory: factory)
            }
        }
        func timers(_ label: String, _ dimensions: String...) -> MetricCache<Timer> {
            MetricCache { values in Timer(label: label, dimensions: Array(zip(dimensions, values)), factory: factory) }
        }
        func gauges(_ label: String, _ dimensions: String...) -> MetricCache<Gauge> {
            MetricCache { values in Gauge(label: label, dimensions: Array(zip(dimensions, values)), factory: factory) }
        }
        eventsConsumed = counters(Name.eventsConsumed, "type")
        eventsProcessed = counters(Name.eventsProcessed, "type", "outcome")
        deadLetters = counters(Name.deadLetters, "reason")
        deliveries = counters(Name.deliveries, "kind", "outcome", "status_class")
        deliveryDurations = timers(Name.deliveryDuration, "kind")
        retries = counters(Name.retries, "kind")
        enrichmentDurations = timers(Name.enrichmentDuration, "outcome")
        breakerStates = gauges(Name.breakerState, "upstream")
        inFlightMeters = MetricCache { values in
            Meter(label: Name.inFlight, dimensions: [("stage", values[0])], factory: factory)
        }
        lookups = counters(Name.lookups, "source")
        lookupDurations = timers(Name.lookupDuration, "source")
        // The label first, then the kind when it has one (`relay_outbox_in_hand` has none).
        outboxGauges = MetricCache { values in
            Gauge(label: values[0], dimensions: values.count > 1 ? [("kind", values[1])] : [], factory: factory)
        }
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
        eventsConsumed([type]).increment()
    }

    /// `outcome`: applied, duplicate, deadLettered or failed (left for redelivery).
    public func eventProcessed(type: String, outcome: String) {
        eventsProcessed([type, outcome]).increment()
    }

    public func deadLettered(reason: String) {
        deadLetters([reason]).increment()
    }

    /// One finished attempt of an outbound request. `outcome`: delivered, retried, deadLettered, or (no
    /// request made) refused by the target's open breaker or superseded; `statusClass`: 2xx…5xx,
    /// transport, or none.
    public func delivery(kind: String, outcome: String, statusClass: String, duration: Duration) {
        deliveries([kind, outcome, statusClass]).increment()
        deliveryDurations([kind]).recordNanoseconds(duration.nanoseconds)
        if outcome == "retried" {
            retries([kind]).increment()
        }
    }

    /// One enrichment or context-update lookup (CRM, then ERP), whatever its outcome.
    public func enrichment(outcome: String, duration: Duration) {
        enrichmentDurations([outcome]).recordNanoseconds(duration.nanoseconds)
    }

    /// 0 closed, 1 half-open, 2 open.
    public func breakerState(upstream: String, value: Int) {
        breakerStates([upstream]).record(value)
    }

    /// What waits in the outbox, read when scraped, by kind (`delivery`, `lookup`, `deadLetter`):
    /// unfinished entries, those due now, retries scheduled for later, and the oldest one's age; and
    /// how many this relay holds in memory (queued or running).
    public func outbox(_ summary: OutboxSummary, now: Date, inHand: Int) {
        for kind in Set(summary.kinds.keys).union(OutboxKind.all) {
            let counts = summary.kinds[kind] ?? .init()
            outboxGauges([Name.outboxPending, kind]).record(counts.pending)
            outboxGauges([Name.outboxDue, kind]).record(counts.due)
            outboxGauges([Name.outboxRetrying, kind]).record(counts.retrying)
            outboxGauges([Name.outboxOldestPendingAge, kind])
                .record(counts.oldestCreatedAt.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
        outboxGauges([Name.outboxInHand]).record(inHand)
    }

    /// `stage`: events, deliveries or lookups.
    public func inFlight(stage: String) -> InFlight {
        InFlight(meter: inFlightMeters([stage]))
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
        lookups([source]).increment()
        lookupDurations([source]).recordNanoseconds(duration.nanoseconds)
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

/// The metrics of one name, made once per set of label values and kept. Making one asks the factory
/// each time (the Prometheus registry takes its lock and looks the name and labels up), and the relay
/// records several per event.
final class MetricCache<Metric: Sendable>: Sendable {
    private let made = Mutex<[[String]: Metric]>([:])
    private let make: @Sendable ([String]) -> Metric

    init(_ make: @escaping @Sendable ([String]) -> Metric) {
        self.make = make
    }

    func callAsFunction(_ values: [String]) -> Metric {
        made.withLock { made in
            if let metric = made[values] { return metric }
            let metric = make(values)
            made[values] = metric
            return metric
        }
    }
}
