import Crypto
import Foundation
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Testing

/// Calls correlated end to end: durable state in SQLite, webhooks from the outbox, timers.
@Suite("Correlation end to end", .stopsRelays)
struct CorrelationEndToEndTests {
    @Test("a complete call, its events out of order and duplicated, gives one signed webhook that verifies")
    func signedWebhook() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        let wrap = wrapUpBody(eventId: "w1", callId: "call-w")
        try await relay.publish([
            wrap, callEndedBody(eventId: "n1", callId: "call-w"), wrap,
            callStartedBody(eventId: "s1", callId: "call-w", from: "+15550100009"),
            callEndedBody(eventId: "n1", callId: "call-w"),
        ])
        let webhooks = try await relay.platform.waitForWebhooks(count: 1, timeout: .seconds(15))
        try await eventually { relay.app.pipeline.acknowledgedCount == 5 }
        try await Task.sleep(for: .milliseconds(300))  // time for a second webhook, were there one
        // At least once: a repeat would carry the same webhook id, and there is only the one call.
        #expect(Set(relay.platform.webhooks.map(\.id)) == [PostCallWebhook.webhookID(callId: "call-w")])
        let webhook = try #require(webhooks.first)
        #expect(webhook.id == PostCallWebhook.webhookID(callId: "call-w"))
        let signer = try #require(WebhookSigner(secret: testWebhookSecret))
        #expect(
            signer.verify(
                id: try #require(webhook.id),
                timestamp: try #require(webhook.timestamp),
                signatureHeader: try #require(webhook.signature),
                body: webhook.body,
                now: Date()
            )
        )
        // And by the scheme's definition, written out here apart from WebhookSigner: v1, base64 of
        // HMAC-SHA256 under the base64-decoded whsec_ key, over "id.timestamp.body".
        let key = try #require(Data(base64Encoded: String(testWebhookSecret.dropFirst("whsec_".count))))
        let signed = Data("\(webhook.id!).\(webhook.timestamp!).".utf8) + Data(webhook.body)
        let expected =
            "v1,"
            + Data(HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: key))).base64EncodedString()
        #expect(webhook.signature?.split(separator: " ").map(String.init).contains(expected) == true)
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(webhook.body)) as? [String: Any])
        #expect(payload["callId"] as? String == "call-w")
        #expect(payload["handleTimeSeconds"] as? Int == 300)
        #expect(payload["afterCallWorkSeconds"] as? Int == 45)
        #expect(payload["wrapUpCode"] as? String == "RESOLVED")
        #expect(payload["externalId"] as? String == relay.expectedPhoneID("+15550100009"))
        // The start's update and the webhook are two sends, in either order.
        try await eventually { !relay.platform.customerUpdates.isEmpty }
        #expect(Set(relay.platform.customerUpdates.map(\.idempotencyKey)) == ["customer-update:s1"])
        let stored = try #require(try await relay.app.store.interaction(callId: "call-w"))
        #expect(stored.status == .completed)
        #expect(stored.seenEventIds.sorted() == ["n1", "s1", "w1"])
    }

    @Test("a webhook answered 503 is retried with the same webhook-id and a fresh signature")
    func webhookRetry() async throws {
        let relay = try await RelayHarness.start(platformBehaviour: { attempt, request in
            request.path == SimulatedPlatform.postCallWebhookPath && attempt == 1 ? .status(503) : nil
        })
        defer { Task { await relay.stop() } }
        try await relay.publish([
            callStartedBody(eventId: "s2", callId: "call-r"), callEndedBody(eventId: "e2", callId: "call-r"),
            wrapUpBody(eventId: "w2", callId: "call-r"),
        ])
        _ = try await relay.platform.waitForWebhooks(count: 1, timeout: .seconds(15))
        let attempts = relay.platform.server.requests.filter { $0.path == SimulatedPlatform.postCallWebhookPath }
        #expect(attempts.count == 2)
        #expect(Set(attempts.compactMap { $0.header("webhook-id") }) == [PostCallWebhook.webhookID(callId: "call-r")])
        #expect(Set(attempts.compactMap { $0.header("idempotency-key") }).count == 1)
    }

    @Test("an orphan is dead-lettered after a short orphanAfter, across a restart of the relay")
    func orphanAcrossRestart() async throws {
        let first = try await RelayHarness.start(adjust: { $0.correlation.orphanAfter = .seconds(2) })
        try await first.publish([callStartedBody(eventId: "o1", callId: "call-orphan")])
        try await eventually { first.app.pipeline.acknowledgedCount == 1 }
        await first.stopRelayOnly()  // the timer is due in 2 s; nothing runs while the relay is down

        let second = try await RelayHarness.start(adjust: { $0.correlation.orphanAfter = .seconds(2) }, reuse: first)
        defer { Task { await second.stop() } }
        let records = try await second.deadLetters(atLeast: 1, timeout: .seconds(15))
        let record = try #require(records.first { $0.reason == .orphanedInteraction })
        #expect(record.callId == "call-orphan")
        #expect(record.lastError == "no callEnded within 2 s of the start")
        #expect(try await second.app.store.interaction(callId: "call-orphan")?.status == .orphaned)
        await first.publisher.shutdown()
    }

    @Test("an effect a stopped relay committed but never published goes out at the next start, without waiting its age")
    func recoveryWithoutTheSweepAge() async throws {
        let first = try await RelayHarness.start()
        await first.stopRelayOnly()
        // As a crash between the commit and the publish leaves it: committed just now, unpublished.
        let committedAt = Date()
        let phoneId = first.expectedPhoneID("+15550100093")
        let update = CustomerUpdate(
            customerId: phoneId,
            externalId: try #require(ExternalID(parsing: phoneId)),
            callId: "call-left",
            idempotencyKey: "customer-update:left"
        )
        _ = try await first.detachedStore().apply(callId: "call-left", eventId: "left", now: committedAt) { state in
            (
                state ?? Interaction(callId: "call-left", firstSeenAt: committedAt),
                [
                    NewOutboxEntry(
                        kind: "delivery",
                        payload: DeliveryJob(customerUpdate: update, causeId: "left").sealed(with: first.app.cipher)
                            .encoded()
                    )
                ]
            )
        }
        let second = try await RelayHarness.start(reuse: first)
        defer { Task { await second.stop() } }
        try await eventually(timeout: .seconds(9)) {
            second.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:left" }
        }
        // Taken by the restart's first poll and finished in the store: nothing is left to do.
        try await eventually { try await second.app.store.pendingOutbox(dueBy: nil, limit: 10).isEmpty }
        await first.publisher.shutdown()
    }

    @Test("an outbox entry that cannot be published holds up neither the timers nor the entry beside it")
    func unpublishableOutboxEntry() async throws {
        let harness = try await RelayHarness.start(adjust: { $0.correlation.orphanAfter = .seconds(2) })
        defer { Task { await harness.stop() } }
        // Two entries a crash left a minute ago, which the dispatcher's poll finds: one of a kind this
        // version cannot publish (as a newer version may write), and beside it a dead letter.
        let then = Date().addingTimeInterval(-60)
        let neighbour = DeadLetterRecord(
            id: "dl-beside-the-unpublishable",
            reason: .malformed,
            callId: "call-beside",
            eventType: nil,
            eventId: nil,
            attempts: 1,
            firstFailureAt: then,
            lastFailureAt: then,
            lastError: "left by a crash",
            originalPayload: Array("{}".utf8),
            origin: .init(exchange: harness.names.eventsExchange, routingKey: "callStarted")
        )
        _ = try await harness.app.store.apply(callId: "call-beside", eventId: "left-by-a-crash", now: then) { state in
            (
                state ?? Interaction(callId: "call-beside", firstSeenAt: then),
                [
                    NewOutboxEntry(kind: "fromANewerVersion", payload: Array("{}".utf8)),
                    NewOutboxEntry(kind: "deadLetter", payload: neighbour.encoded()),
                ]
            )
        }
        try await harness.publish([callStartedBody(eventId: "o2", callId: "call-orphan-2")])

        let records = try await harness.deadLetters(atLeast: 2, timeout: .seconds(20))
        #expect(records.contains { $0.reason == .orphanedInteraction && $0.callId == "call-orphan-2" })
        #expect(records.contains { $0.id == neighbour.id })
        try await eventually {
            try await harness.app.store.pendingOutbox(dueBy: nil, limit: 10).map(\.kind) == ["fromANewerVersion"]
        }
    }

    @Test("a scan a hair before a timer's due time, which the store already counts as due, fires it")
    func timerAtItsDueTime() async throws {
        // An hour's orphanAfter: the relay's own scans leave the timer alone; this test fires it.
        let harness = try await RelayHarness.start(adjust: { $0.correlation.orphanAfter = .seconds(3600) })
        defer { Task { await harness.stop() } }
        // Such a scan time exists for about half of all due times (those the conversion to seconds since
        // 1970 rounded down): calls are started until one has it.
        var found: (callId: String, scanAt: Date)?
        for attempt in 0..<12 where found == nil {
            let callId = "call-due-\(attempt)"
            try await harness.publish([callStartedBody(eventId: "d\(attempt)", callId: callId)])
            try await eventually { try await harness.app.store.interaction(callId: callId)?.nextDueAt != nil }
            let dueAt = try #require(try await harness.app.store.interaction(callId: callId)?.nextDueAt)
            // A few representable steps before the due time, the same instant in seconds since 1970.
            var candidate = dueAt.timeIntervalSinceReferenceDate
            for _ in 0..<8 {
                candidate = candidate.nextDown
                let date = Date(timeIntervalSinceReferenceDate: candidate)
                if date.timeIntervalSince1970 == dueAt.timeIntervalSince1970 {
                    found = (callId, date)
                    break
                }
            }
        }
        let (callId, scanAt) = try #require(found, "no due time in 12 calls had a scan time a hair before it")
        try await harness.app.timers.fireDueTimers(now: scanAt)
        #expect(try await harness.app.store.interaction(callId: callId)?.status == .orphaned)
        // The scan fires every timer due by then, so earlier calls' orphans may be recorded first: wait
        // for this one's, not for the first.
        try await eventually(timeout: .seconds(15), "the orphan's dead letter") {
            try await harness.deadLetters(atLeast: 0).contains {
                $0.reason == .orphanedInteraction && $0.callId == callId
            }
        }
    }

    @Test("a Retry-After schedules the retry on the outbox entry, in the store, and it goes at that time")
    func scheduledRetry() async throws {
        let relay = try await RelayHarness.start(
            platformBehaviour: { attempt, request in
                request.method == "PUT" && attempt == 1
                    ? .status(429, headers: [(name: "Retry-After", value: "3")]) : nil
            })
        defer { Task { await relay.stop() } }
        try await relay.publish([callStartedBody(eventId: "p1", callId: "call-park")])
        // The refused attempt is on the entry: one attempt, its status, and a due time the server's
        // Retry-After set, not the backoff's half second.
        var scheduled: OutboxEntry?
        try await eventually {
            scheduled = try await relay.app.store.outboxEntries(.init(state: .failing, callId: "call-park")).first
            return scheduled != nil
        }
        let entry = try #require(scheduled)
        #expect(entry.attempts == 1)
        #expect(entry.lastError == "HTTP 429")
        #expect(entry.dueAt.timeIntervalSince(entry.createdAt) >= 2.9)
        #expect(relay.platform.server.requests.filter { $0.method == "PUT" }.count == 1)
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(20))
        #expect(Date() >= entry.dueAt)
        #expect(relay.platform.server.requests.filter { $0.method == "PUT" }.count == 2)
        try await eventually {
            try await relay.app.store.outboxEntry(id: entry.id)?.outcome == "delivered"
        }
    }
}
