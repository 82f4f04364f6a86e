import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Testing

@Suite("Retention purge", .stopsRelays)
struct RetentionPurgeTests {
    static let day: TimeInterval = 86_400

    func record(id: String, lastFailureAt: Date) -> DeadLetterRecord {
        DeadLetterRecord(
            id: id,
            reason: .deliveryFailed,
            callId: "retention-\(id)",
            eventType: nil,
            eventId: nil,
            attempts: 4,
            firstFailureAt: lastFailureAt,
            lastFailureAt: lastFailureAt,
            lastError: "HTTP 500",
            originalPayload: Array("{}".utf8),
            origin: nil
        )
    }

    @Test("old dead letters and expired overrides go; recent ones and recent interactions stay")
    func cutoffAtNow() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        try await relay.publish([
            callStartedBody(eventId: "r1", callId: "retention-call-1"),
            callEndedBody(eventId: "r2", callId: "retention-call-1"),
            wrapUpBody(eventId: "r3", callId: "retention-call-1"),
        ])
        _ = try await relay.platform.waitForWebhooks(count: 1, timeout: .seconds(15))
        let now = Date()
        let deadLetters = DeadLetterPublisher(amqp: relay.publisher, exchange: relay.names.deadLetterExchange)
        try await deadLetters.publish(record(id: "dl_old", lastFailureAt: now.addingTimeInterval(-40 * Self.day)))
        try await deadLetters.publish(record(id: "dl_recent", lastFailureAt: now.addingTimeInterval(-1 * Self.day)))
        _ = try await relay.deadLetters(atLeast: 2)
        try await relay.app.store.setOverride(
            phoneKey: "expired",
            externalId: "CRM:1",
            callId: "c",
            now: now - 100,
            expiresAt: now - 1
        )
        try await relay.app.store.setOverride(
            phoneKey: "live",
            externalId: "CRM:2",
            callId: "c",
            now: now,
            expiresAt: now + 100
        )

        let report = try await relay.app.retentionPurge.purge(now: now)

        #expect(report.deadLetters == 1)
        #expect(report.expiredOverrides == 1)
        #expect(report.interactions == 0)
        #expect(report.deadLetterError == nil)
        #expect(try await relay.deadLetters(atLeast: 1).map(\.id) == ["dl_recent"])
        #expect(try await relay.app.store.interaction(callId: "retention-call-1")?.status == .completed)
        #expect(try await relay.app.store.override(phoneKey: "live", now: now) == "CRM:2")
    }

    @Test("on its schedule, with the clock a month on, finished interactions go and unfinished ones stay")
    func scheduled() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        try await relay.publish([
            callStartedBody(eventId: "s1", callId: "retention-done-0001"),
            callEndedBody(eventId: "s2", callId: "retention-done-0001"),
            wrapUpBody(eventId: "s3", callId: "retention-done-0001"),
            callStartedBody(eventId: "s4", callId: "retention-open-0002"),
        ])
        _ = try await relay.platform.waitForWebhooks(count: 1, timeout: .seconds(15))
        try await eventually { relay.app.pipeline.acknowledgedCount == 4 }

        let logs = RecordingLogHandler.Store()
        let purge = RetentionPurge(
            store: relay.app.store,
            deadLetters: nil,
            retention: .seconds(30 * Self.day),
            interval: .milliseconds(100),
            now: { Date().addingTimeInterval(31 * Self.day) },
            logger: RecordingLogHandler.logger(label: "test", store: logs)
        )
        let running = Task { try await purge.run() }
        try await eventually { try await relay.app.store.interaction(callId: "retention-done-0001") == nil }
        // The purge logs what it removed once its transaction is done: wait for the line, not only the effect.
        try await eventually {
            logs.all.contains { $0.contains("retention purge") && $0.contains("purged.interactions=1") }
        }
        running.cancel()
        _ = try? await running.value

        #expect(try await relay.app.store.interaction(callId: "retention-open-0002")?.status == .active)
        // Its event ids went with it: the same start event is a new interaction now, not a duplicate.
        try await relay.publish([callStartedBody(eventId: "s1", callId: "retention-done-0001")])
        try await eventually { try await relay.app.store.interaction(callId: "retention-done-0001")?.status == .active }
    }
}
