import CoreMetrics
import Foundation
import MetricsTestKit
import RelayService
import RelayStore
import Testing

/// What `RelayMetrics` records, read back through swift-metrics' test factory: each call lands on the
/// metric of its name and label set, and repeated calls add to the same one (made once, kept).
/// The exposition format itself is checked end to end with Prometheus's own parser (AdminAPITests).
@Suite("Relay metrics")
struct RelayMetricsTests {
    @Test("events, dead letters and deliveries count on the metric of their labels; repeats add up")
    func countersByLabels() throws {
        let recorded = TestMetrics()
        let metrics = RelayMetrics(factory: recorded)
        for _ in 0..<3 { metrics.eventConsumed(type: "callStarted") }
        metrics.eventConsumed(type: "undecodable")
        metrics.eventProcessed(type: "callStarted", outcome: "applied")
        metrics.eventProcessed(type: "callStarted", outcome: "applied")
        metrics.eventProcessed(type: "callStarted", outcome: "duplicate")
        metrics.deadLettered(reason: "malformed")
        metrics.delivery(kind: "customerUpdate", outcome: "delivered", statusClass: "2xx", duration: .milliseconds(12))
        metrics.delivery(kind: "customerUpdate", outcome: "retried", statusClass: "5xx", duration: .milliseconds(30))

        let consumed = RelayMetrics.Name.eventsConsumed
        #expect(try recorded.expectCounter(consumed, [("type", "callStarted")]).totalValue == 3)
        #expect(try recorded.expectCounter(consumed, [("type", "undecodable")]).totalValue == 1)
        #expect(recorded.counters(label: consumed).count == 2, "one counter per label set, however many calls")
        let processed = RelayMetrics.Name.eventsProcessed
        #expect(
            try recorded.expectCounter(processed, [("type", "callStarted"), ("outcome", "applied")]).totalValue == 2
        )
        #expect(
            try recorded.expectCounter(processed, [("type", "callStarted"), ("outcome", "duplicate")]).totalValue == 1
        )
        #expect(try recorded.expectCounter(RelayMetrics.Name.deadLetters, [("reason", "malformed")]).totalValue == 1)
        let delivered = [("kind", "customerUpdate"), ("outcome", "delivered"), ("status_class", "2xx")]
        #expect(try recorded.expectCounter(RelayMetrics.Name.deliveries, delivered).totalValue == 1)
        #expect(try recorded.expectCounter(RelayMetrics.Name.retries, [("kind", "customerUpdate")]).totalValue == 1)
        let durations = try recorded.expectTimer(RelayMetrics.Name.deliveryDuration, [("kind", "customerUpdate")])
        #expect(durations.values == [12_000_000, 30_000_000])
    }

    @Test("the outbox gauges by kind, every known kind present, and what this relay holds")
    func outboxGauges() throws {
        let recorded = TestMetrics()
        let metrics = RelayMetrics(factory: recorded)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var delivery = OutboxSummary.Kind()
        delivery.pending = 5
        delivery.due = 2
        delivery.retrying = 3
        delivery.oldestCreatedAt = now.addingTimeInterval(-90)
        metrics.outbox(OutboxSummary(kinds: ["delivery": delivery]), now: now, inHand: 4)
        delivery.pending = 1
        metrics.outbox(OutboxSummary(kinds: ["delivery": delivery]), now: now, inHand: 0)

        #expect(try recorded.expectGauge(RelayMetrics.Name.outboxPending, [("kind", "delivery")]).values == [5, 1])
        #expect(try recorded.expectGauge(RelayMetrics.Name.outboxDue, [("kind", "delivery")]).lastValue == 2)
        #expect(try recorded.expectGauge(RelayMetrics.Name.outboxRetrying, [("kind", "delivery")]).lastValue == 3)
        #expect(
            try recorded.expectGauge(RelayMetrics.Name.outboxOldestPendingAge, [("kind", "delivery")]).lastValue == 90
        )
        // A kind with nothing waiting still reads 0, so a dashboard never shows a gap for it.
        #expect(try recorded.expectGauge(RelayMetrics.Name.outboxPending, [("kind", "lookup")]).lastValue == 0)
        #expect(try recorded.expectGauge(RelayMetrics.Name.outboxInHand).values == [4, 0])
    }

    @Test("in flight goes up and down on one meter per stage")
    func inFlight() throws {
        let recorded = TestMetrics()
        let metrics = RelayMetrics(factory: recorded)
        metrics.inFlight(stage: "events").increment(by: 3)
        metrics.inFlight(stage: "events").decrement()
        metrics.inFlight(stage: "deliveries").increment()
        #expect(try recorded.expectMeter(RelayMetrics.Name.inFlight, [("stage", "events")]).lastValue == 2)
        #expect(try recorded.expectMeter(RelayMetrics.Name.inFlight, [("stage", "deliveries")]).lastValue == 1)
    }
}
