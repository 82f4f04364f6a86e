import Foundation
import RelayCore
import RelayService
import RelaySimulator
import RelayTesting
import Testing

@Suite("What the relay logs", .stopsRelays)
struct LogPrivacyTests {
    @Test("at trace level, no log line holds a phone number, a full external id or a full call id")
    func noPersonalData() async throws {
        let logs = RecordingLogHandler.Store()
        let relay = try await RelayHarness.start(
            platformBehaviour: { attempt, _ in attempt == 1 ? .status(503) : nil },
            adjust: { $0.log.level = "trace" },
            logger: RecordingLogHandler.logger(label: "test.relay", store: logs)
        )
        defer { Task { await relay.stop() } }
        let numbers = ["+15550100071", "+15550100072"]
        try await relay.publish([
            callStartedBody(eventId: "p1", callId: "privacy-call-0001", from: numbers[0]),
            callStartedBody(eventId: "p2", callId: "privacy-call-0002", from: numbers[1]),
            Array(
                #"{"eventId":"p3","type":"callStarted","callId":"privacy-call-0003","occurredAt":"2026-11-24T10:00:00Z","toNumber":"+15550100073","direction":"inbound"}"#
                    .utf8
            ),
        ])
        _ = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(15))
        _ = try await relay.deadLetters(atLeast: 1)

        // The relay logs a delivery once it has the answer, a moment after the platform recorded it.
        try await eventually {
            logs.all.contains { $0.contains("delivered") } && logs.all.contains { $0.contains("dead-lettered") }
        }
        let lines = logs.all
        let secrets =
            numbers + ["+15550100073", "5550100071", "privacy-call-0001", "privacy-call-0003"]
            + numbers.map { relay.expectedPhoneID($0) }
            + numbers.map { String(relay.expectedPhoneID($0).dropFirst(6).prefix(16)) }
        for secret in secrets {
            #expect(!lines.contains { $0.contains(secret) }, "a log line holds \(secret)")
        }
        // The masked forms are there, so the test would notice if logging stopped altogether.
        #expect(lines.contains { $0.contains("call.id.masked=********0001") })
    }

    @Test("an upstream answer that echoes a customer's name stays in the dead letter, out of the log")
    func upstreamBodyNotLogged() async throws {
        let logs = RecordingLogHandler.Store()
        let echo = #"{"error":"customer Jane Quimby-Public already has an open case"}"#
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.method == "PUT" ? ScriptedResponse(status: 422, body: Array(echo.utf8)) : nil
            },
            adjust: { $0.log.level = "trace" },
            logger: RecordingLogHandler.logger(label: "test.relay", store: logs)
        )
        defer { Task { await relay.stop() } }
        try await relay.publish([callStartedBody(eventId: "n1", callId: "privacy-call-0101", from: "+15550100074")])

        let records = try await relay.deadLetters(atLeast: 1)
        let record = try #require(records.first { $0.reason == .deliveryFailed })
        #expect(record.lastError.contains("Jane Quimby-Public"))  // on-call can still see what the platform said
        #expect(logs.all.contains { $0.contains("dead-lettered") && $0.contains("HTTP 422") })
        #expect(!logs.all.contains { $0.contains("Quimby") })
    }
}
