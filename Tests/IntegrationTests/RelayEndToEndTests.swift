import Foundation
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Synchronization
import Testing

/// The relay as a whole: real broker, real HTTP, a simulated platform standing in for the one we do
/// not own.
@Suite("Relay end to end", .stopsRelays)
struct RelayEndToEndTests {
    @Test("call starts become customer-update PUTs with the keyed PHONE id, and every event is acked")
    func customerUpdates() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        try await relay.publish([
            callStartedBody(eventId: "e1", callId: "c1", from: "+15550100001"),
            callStartedBody(
                eventId: "e2",
                callId: "c2",
                from: "+15550190000",
                to: "tel:+1 555 010 0002",
                direction: "outbound"
            ),
            callStartedBody(eventId: "e3", callId: "c3", from: "+15550100003", customerId: "platform-customer-3"),
        ])
        let updates = try await relay.platform.waitForCustomerUpdates(count: 3, timeout: .seconds(15))
        func update(_ key: String) -> SimulatedPlatform.CustomerUpdate? {
            updates.first { $0.idempotencyKey == "customer-update:\(key)" }
        }
        let first = try #require(update("e1"))
        #expect(first.externalId == relay.expectedPhoneID("+15550100001"))
        #expect(first.customerId == relay.expectedPhoneID("+15550100001"))
        // Outbound: the dialled customer, whatever its notation, not the contact center's line.
        #expect(try #require(update("e2")).externalId == relay.expectedPhoneID("+15550100002"))
        let third = try #require(update("e3"))
        #expect(third.customerId == "platform-customer-3")
        #expect(third.externalId == relay.expectedPhoneID("+15550100003"))
        #expect(!first.body.contains("+1555"), "the number itself must never leave the relay")

        try await eventually { relay.app.pipeline.acknowledgedCount == 3 }
        #expect(try await relay.publisher.messageCount(queue: relay.names.eventsQueue) == 0)
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test("a relay configured for a vhost of its own declares its topology there and relays end to end")
    func ownVirtualHost() async throws {
        // The topology file says vhost "/" throughout; the relay must declare into amqp.vhost anyway.
        let vhost = try TestBroker.addVirtualHost()
        defer { TestBroker.deleteVirtualHost(vhost) }
        try await RelayHarness.stoppingAll {
            let relay = try await RelayHarness.start(adjust: { $0.amqp.virtualHost = vhost })
            try await relay.publish([callStartedBody(eventId: "vh-1", callId: "vh-c1", from: "+15550100061")])
            let updates = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
            #expect(updates.first?.externalId == relay.expectedPhoneID("+15550100061"))
            try await eventually { relay.app.pipeline.acknowledgedCount == 1 }
            #expect(try await relay.publisher.messageCount(queue: relay.names.eventsQueue) == 0)
        }
    }

    @Test("a malformed event becomes a dead letter with its payload and error, and the queue moves on")
    func malformed() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        let broken = Array(
            #"{"eventId":"bad-1","type":"callStarted","callId":"c-bad","occurredAt":"2026-11-24T10:00:00Z","toNumber":"+15550190000","direction":"inbound"}"#
                .utf8
        )
        let notJSON = Array("\u{FF}\u{FE}garbage".utf8)
        try await relay.publish([broken, notJSON, callStartedBody(eventId: "good-1", callId: "c-good")])

        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        let records = try await relay.deadLetters(atLeast: 2)
        #expect(records.count == 2)
        let missingField = try #require(records.first { $0.callId == "c-bad" })
        #expect(missingField.reason == .malformed)
        #expect(missingField.lastError == "missing required field 'fromNumber'")
        // The raw event may hold personal data: it travels sealed, and opens under the relay's key.
        #expect(missingField.payloadEncoding == .sealed)
        #expect(try missingField.openedPayload(with: relay.app.cipher) == broken)
        #expect(missingField.eventType == "callStarted")
        #expect(missingField.origin == .init(exchange: relay.names.eventsExchange, routingKey: "callStarted"))
        let garbage = try #require(records.first { $0.callId == nil })
        #expect(garbage.lastError == "body is not valid JSON")
        #expect(try garbage.openedPayload(with: relay.app.cipher) == notJSON)
        try await eventually { relay.app.pipeline.acknowledgedCount == 3 }
        #expect(try await relay.publisher.messageCount(queue: relay.names.eventsQueue) == 0)
    }

    @Test("a 503 then 200 is retried with backoff and delivered once accepted")
    func retriesThenDelivers() async throws {
        let relay = try await RelayHarness.start(platformBehaviour: { attempt, _ in
            attempt <= 2 ? .status(503, headers: [(name: "Retry-After", value: "0")]) : nil
        })
        defer { Task { await relay.stop() } }
        try await relay.publish([callStartedBody(eventId: "r1", callId: "c-r1")])
        let updates = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        #expect(updates.count == 1)
        let attempts = relay.platform.server.requests.filter { $0.method == "PUT" }
        #expect(attempts.count == 3)
        // Every attempt carries the same idempotency key: the retries are recognisable downstream.
        #expect(Set(attempts.compactMap { $0.header("idempotency-key") }) == ["customer-update:r1"])
        try await eventually { relay.app.pipeline.acknowledgedCount == 1 }
        #expect(try await relay.publisher.messageCount(queue: relay.names.eventsQueue) == 0)
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test(
        "with the store polled all the while, every update is sent exactly once: a poll never takes an entry in hand or just finished"
    )
    func pollsNeverSendTwice() async throws {
        let relay = try await RelayHarness.start(adjust: { $0.delivery.pollInterval = .milliseconds(10) })
        defer { Task { await relay.stop() } }
        let calls = 0..<400
        try await relay.publish(calls.map { callStartedBody(eventId: "once-\($0)", callId: "c-once-\($0)") })
        _ = try await relay.platform.waitForCustomerUpdates(count: calls.count, timeout: .seconds(60))
        try await eventually { try await relay.app.store.pendingOutbox(dueBy: nil, limit: 10).isEmpty }
        // A few more polls, after everything finished.
        try await Task.sleep(for: .milliseconds(200))
        let keys = relay.platform.server.requests.filter { $0.method == "PUT" }.compactMap {
            $0.header("idempotency-key")
        }
        #expect(keys.count == calls.count, "\(keys.count - Set(keys).count) sent twice")
        #expect(Set(keys).count == calls.count)
    }

    @Test(
        "a platform outage longer than the retries' backoff: the breaker spares it, refusals cost no attempt, nothing is dead-lettered"
    )
    func platformOutage() async throws {
        let down = Mutex(true)
        let duringOutage = Atomic<Int>(0)
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                guard request.method == "PUT", down.withLock({ $0 }) else { return nil }
                duringOutage.add(1, ordering: .relaxed)
                return .status(503)
            },
            adjust: {
                $0.delivery.maxAttempts = 3
                $0.platform.breakerThreshold = 2
                $0.platform.breakerOpen = .seconds(1)
            }
        )
        defer { Task { await relay.stop() } }
        let calls = 0..<10
        try await relay.publish(calls.map { callStartedBody(eventId: "down-\($0)", callId: "c-down-\($0)") })
        // Three attempts each, without the breaker, would have dead-lettered all ten within a second or two.
        // Each failed once, or was refused by the open breaker without an attempt.
        try await eventually {
            try await relay.app.store.outboxEntries(.init(state: .pending)).filter { $0.lastError != nil }.count
                == calls.count
        }
        try await Task.sleep(for: .seconds(4))
        #expect(try await relay.deadLetterCount() == 0)
        let waiting = try await relay.app.store.outboxEntries(.init(state: .pending))
        #expect(waiting.count == calls.count && waiting.allSatisfy { $0.attempts < 3 }, "\(waiting.map(\.attempts))")
        #expect(waiting.contains { $0.lastError == "platform circuit open" })
        // Without the breaker: three tries each (30), then ten dead letters. With it: the first tries
        // already in flight when it opened, then about a probe a second, not a request per waiting update.
        #expect(duringOutage.load(ordering: .relaxed) < 25)
        down.withLock { $0 = false }
        _ = try await relay.platform.waitForCustomerUpdates(count: calls.count, timeout: .seconds(30))
        #expect(Set(relay.platform.customerUpdates.compactMap(\.idempotencyKey)).count == calls.count)
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test("a platform that keeps failing exhausts the attempts and leaves a deliveryFailed dead letter")
    func exhausted() async throws {
        let relay = try await RelayHarness.start(platformBehaviour: { _, _ in .status(500) })
        defer { Task { await relay.stop() } }
        let body = callStartedBody(eventId: "x1", callId: "c-x1")
        try await relay.publish([body])
        let records = try await relay.deadLetters(atLeast: 1)
        let record = try #require(records.first)
        #expect(record.reason == .deliveryFailed)
        #expect(record.attempts == 4)
        #expect(record.callId == "c-x1")
        #expect(record.eventId == "x1")
        #expect(record.target?.method == "PUT")
        #expect(record.target?.lastStatus == 500)
        #expect(record.target?.url.hasPrefix(relay.platform.baseURL + "/api/v2/customers/PHONE%3A") == true)
        #expect(record.lastError.contains("HTTP 500"))
        // The payload is the delivery job itself, so a replay puts the request back in the outbox.
        let job = try DeliveryJob.decode(record.originalPayload)
        #expect(job.kind == .customerUpdate)
        #expect(job.idempotencyKey == "customer-update:x1")
        #expect(job.attempts == 4)
        #expect(record.origin == .outbox)
        #expect(relay.platform.server.requests.count == 4)
        // Its outbox entry is done: dead-lettered once, not tried again.
        try await eventually {
            try await relay.app.store.outboxEntries(.init(state: .finished, callId: "c-x1")).map(\.outcome) == [
                "deadLettered"
            ]
        }
        try await eventually { relay.app.pipeline.acknowledgedCount == 1 }
        #expect(try await relay.publisher.messageCount(queue: relay.names.eventsQueue) == 0)
    }

    @Test("a 400 is dead-lettered at once, without retries")
    func clientErrorNotRetried() async throws {
        let relay = try await RelayHarness.start(platformBehaviour: { _, _ in
            ScriptedResponse(status: 400, body: Array(#"{"message":"externalId rejected"}"#.utf8))
        })
        defer { Task { await relay.stop() } }
        try await relay.publish([callStartedBody(eventId: "b1", callId: "c-b1")])
        let record = try #require(try await relay.deadLetters(atLeast: 1).first)
        #expect(record.attempts == 1)
        #expect(record.target?.lastStatus == 400)
        #expect(record.lastError.contains("externalId rejected"))
        #expect(relay.platform.server.requests.count == 1)
    }
}
