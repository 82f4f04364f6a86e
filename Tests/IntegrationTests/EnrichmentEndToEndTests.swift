import Foundation
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Synchronization
import Testing

/// Phase 2 against a local HTTP server standing in for the CRM and the ERP.
@Suite("Enrichment end to end", .stopsRelays)
struct EnrichmentEndToEndTests {
    static let contact = SimulatedPlatform.CRMRecord(
        contactId: "003A000001",
        accountId: "ACC-1",
        name: "Jane Roe",
        email: "jane.roe@example.com",
        caseId: "CASE-99812",
        loyaltyTier: "Gold",
        interactionCount: 4
    )

    func updates(_ relay: RelayHarness, count: Int) async throws -> [SimulatedPlatform.CustomerUpdate] {
        try await relay.platform.waitForCustomerUpdates(count: count, timeout: .seconds(20))
    }

    @Test("one match: the phase-1 link first, then CRM:{id} with name, email and data from CRM and ERP")
    func singleMatch() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100041", Self.contact)
        relay.platform.setERPAccount("ACC-1", status: "Active")
        try await relay.publish([callStartedBody(eventId: "m1", callId: "call-m1", from: "(555) 010-0041")])
        // Phase 1 first, unless phase 2 linked the call before it could be sent (then it is not sent).
        let phases = try await relay.platform.waitForPhases(of: "m1")
        #expect(
            phases.phaseOne.map(\.externalId) ?? relay.expectedPhoneID("+15550100041")
                == relay.expectedPhoneID("+15550100041")
        )
        #expect(phases.phaseTwo.externalId == "CRM:003A000001")
        #expect(phases.phaseTwo.customerId == relay.expectedPhoneID("+15550100041"))
        let body = try #require(
            try JSONSerialization.jsonObject(with: Data(phases.phaseTwo.body.utf8)) as? [String: Any]
        )
        #expect(body["name"] as? String == "Jane Roe")
        #expect(body["email"] as? String == "jane.roe@example.com")
        let data = try #require(body["data"] as? [String: Any])
        #expect(data["crmCaseId"] as? String == "CASE-99812")
        #expect(data["loyaltyTier"] as? String == "Gold")
        #expect(data["previousInteractionCount"] as? Int == 4)
        #expect(data["erpAccountStatus"] as? String == "Active")
        // The CRM was asked by the normalised number.
        #expect(relay.platform.server.requests.contains { $0.path == "/crm/contacts?phone=%2B15550100041" })
    }

    @Test("no match and several matches keep the phase-1 link; the oldest policy links the first match")
    func noOrSeveralMatches() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100052", Self.contact)
        relay.platform.addCRMContact(phone: "+15550100052", .init(contactId: "003B000002", name: "J. Roe"))
        try await relay.publish([
            callStartedBody(eventId: "n1", callId: "call-n1", from: "+15550100051"),
            callStartedBody(eventId: "n2", callId: "call-n2", from: "+15550100052"),
        ])
        _ = try await updates(relay, count: 2)
        try await eventually { relay.platform.server.requests.filter { $0.path.hasPrefix("/crm/contacts") }.count == 2 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(relay.platform.customerUpdates.count == 2)
        #expect(relay.platform.customerUpdates.allSatisfy { $0.externalId?.hasPrefix("PHONE:") == true })

        let oldest = try await RelayHarness.start(enrichment: true, adjust: { $0.crm.severalMatches = .oldest })
        defer { Task { await oldest.stop() } }
        oldest.platform.addCRMContact(phone: "+15550100052", Self.contact)
        oldest.platform.addCRMContact(phone: "+15550100052", .init(contactId: "003B000002"))
        try await oldest.publish([callStartedBody(eventId: "o1", callId: "call-o1", from: "+15550100052")])
        #expect(try await oldest.platform.waitForPhases(of: "o1").phaseTwo.externalId == "CRM:003A000001")
    }

    @Test("phase 1 goes out while the CRM is still holding its answer")
    func phaseOneDoesNotWaitForTheCRM() async throws {
        let crm = ResponseGate()
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.path.hasPrefix("/crm/contacts") ? .ok("[]", heldBy: crm) : nil
            },
            enrichment: true,
            adjust: { $0.crm.lookup.timeout = .seconds(60) }
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100062", Self.contact)
        try await relay.publish([callStartedBody(eventId: "h1", callId: "call-h1", from: "+15550100062")])
        // Whatever the machine's speed: the CRM has not answered, and cannot have timed out.
        let phaseOne = try await updates(relay, count: 1)
        #expect(!crm.isOpen)
        #expect(phaseOne.first?.externalId == relay.expectedPhoneID("+15550100062"))
        try await eventually { crm.heldCount == 1 }
        crm.open()
    }

    @Test("a CRM slower than its timeout: the enrichment ends as enrichmentFailed after its attempts")
    func slowCRM() async throws {
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.path.hasPrefix("/crm/contacts") ? .ok("{}", delay: .seconds(10)) : nil
            },
            enrichment: true,
            adjust: {
                $0.crm.lookup.timeout = .milliseconds(1500)
                $0.delivery.maxAttempts = 2
            }
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100061", Self.contact)
        try await relay.publish([callStartedBody(eventId: "t1", callId: "call-t1", from: "+15550100061")])
        _ = try await updates(relay, count: 1)
        let record = try #require(try await relay.deadLetters(atLeast: 1).first)
        #expect(record.reason == .enrichmentFailed)
        #expect(record.callId == "call-t1")
        #expect(record.attempts == 2)
        #expect(record.lastError.contains("timeout"))
        #expect(record.target?.url.contains("{phone}") == true, "the record holds the template, not the number")
        #expect(relay.platform.customerUpdates.count == 1)
    }

    @Test("503 then 200, and 429 with Retry-After, both end enriched")
    func retries() async throws {
        let relay = try await RelayHarness.start(
            platformBehaviour: { attempt, request in
                guard request.path.hasPrefix("/crm/contacts"), attempt == 1 else { return nil }
                return request.path.contains("0071")
                    ? .status(503) : .status(429, headers: [(name: "Retry-After", value: "1")])
            },
            enrichment: true
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100071", Self.contact)
        relay.platform.addCRMContact(phone: "+15550100072", .init(contactId: "003C000003"))
        let published = ContinuousClock.now
        try await relay.publish([
            callStartedBody(eventId: "r1", callId: "call-r1", from: "+15550100071"),
            callStartedBody(eventId: "r2", callId: "call-r2", from: "+15550100072"),
        ])
        #expect(try await relay.platform.waitForPhases(of: "r1").phaseTwo.externalId == "CRM:003A000001")
        #expect(try await relay.platform.waitForPhases(of: "r2").phaseTwo.externalId == "CRM:003C000003")
        #expect(ContinuousClock.now - published >= .seconds(1), "the 429's Retry-After was honoured")
        #expect(relay.platform.server.requests.filter { $0.path.hasPrefix("/crm/contacts") }.count == 4)
    }

    @Test(
        "a CRM outage longer than the breaker's window: refusals cost no attempt, and every call is enriched once it is back"
    )
    func outageLongerThanTheBreakerWindow() async throws {
        // The CRM fails each caller's first two searches; its breaker opens at the first failure, for a
        // second at a time. Three real tries each is all it takes; counted with the refusals (about one
        // per open window and call), the calls would run out of their four attempts.
        let relay = try await RelayHarness.start(
            platformBehaviour: { attempt, request in
                request.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") && attempt <= 2 ? .status(500) : nil
            },
            enrichment: true,
            adjust: {
                $0.crm.lookup.breakerThreshold = 1
                $0.crm.lookup.breakerOpen = .seconds(1)
                $0.delivery.maxAttempts = 4
            }
        )
        defer { Task { await relay.stop() } }
        let calls = 1...5
        for index in calls {
            relay.platform.addCRMContact(
                phone: "+1555010\(String(format: "%04d", 800 + index))",
                .init(contactId: "003OUT\(index)")
            )
        }
        try await relay.publish(
            calls.map {
                callStartedBody(
                    eventId: "o\($0)",
                    callId: "outage-\($0)",
                    from: "+1555010\(String(format: "%04d", 800 + $0))"
                )
            }
        )
        for index in calls {
            #expect(
                try await relay.platform.waitForPhases(of: "o\(index)", timeout: .seconds(60)).phaseTwo.externalId
                    == "CRM:003OUT\(index)"
            )
        }
        let searches = relay.platform.server.requests.filter {
            $0.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?")
        }
        #expect(searches.count == 15, "three real tries per call, no more")
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test("once the CRM is back, the lookups its outage set back drain at the backlog's pace, and all of them finish")
    func backlogDrainsAtItsPace() async throws {
        let crmDown = Mutex(true)
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") && crmDown.withLock({ $0 })
                    ? .status(500) : nil
            },
            enrichment: true,
            adjust: {
                $0.crm.lookup.breakerThreshold = 1
                $0.crm.lookup.breakerOpen = .seconds(1)
                $0.enrichment.backlogRatePerSecond = 4
            }
        )
        defer { Task { await relay.stop() } }
        let calls = 1...20
        func number(_ index: Int) -> String { "+1555010\(String(format: "%04d", 900 + index))" }
        for index in calls { relay.platform.addCRMContact(phone: number(index), .init(contactId: "003BACK\(index)")) }
        try await relay.publish(
            calls.map { callStartedBody(eventId: "b\($0)", callId: "backlog-\($0)", from: number($0)) }
        )
        _ = try await relay.platform.waitForCustomerUpdates(count: calls.count, timeout: .seconds(30))
        // Long enough for every lookup to have been set back by the outage (failed, or refused).
        try await Task.sleep(for: .seconds(2))
        let recovered = ContinuousClock.now
        crmDown.withLock { $0 = false }
        // Once the breaker's probe found the CRM back (the first of the backlog is enriched), a call that
        // starts is no backlog: it keeps its place ahead of the rest of the twenty.
        try await eventually(timeout: .seconds(30)) {
            relay.platform.customerUpdates.contains { $0.idempotencyKey?.hasPrefix("enrichment:b") == true }
        }
        relay.platform.addCRMContact(phone: number(99), .init(contactId: "003BACKNEW"))
        try await relay.publish([callStartedBody(eventId: "bnew", callId: "backlog-new", from: number(99))])
        #expect(
            try await relay.platform.waitForPhases(of: "bnew", timeout: .seconds(60)).phaseTwo.externalId
                == "CRM:003BACKNEW"
        )
        let backlogDoneBeforeIt = relay.platform.customerUpdates.count {
            $0.idempotencyKey?.hasPrefix("enrichment:b") == true && $0.idempotencyKey != "enrichment:bnew"
        }
        #expect(backlogDoneBeforeIt < calls.count, "the new call waited for the whole backlog")
        for index in calls {
            #expect(
                try await relay.platform.waitForPhases(of: "b\(index)", timeout: .seconds(60)).phaseTwo.externalId
                    == "CRM:003BACK\(index)"
            )
        }
        // Twenty at four a second, one second's worth at once: at least four seconds, on any machine.
        // Unpaced, they all came back within the breaker's one-second window.
        #expect(ContinuousClock.now - recovered >= .milliseconds(3500))
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test("the breaker opens during a CRM outage, spares the CRM, and closes once it is back")
    func breaker() async throws {
        let crmDown = Mutex(true)
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.path.hasPrefix("/crm/contacts") && crmDown.withLock({ $0 }) ? .status(500) : nil
            },
            enrichment: true,
            adjust: {
                $0.crm.lookup.breakerThreshold = 3
                $0.crm.lookup.breakerOpen = .seconds(1)
                $0.delivery.maxAttempts = 50
                $0.delivery.baseDelay = .milliseconds(20)
                $0.delivery.maxDelay = .milliseconds(100)
            }
        )
        defer { Task { await relay.stop() } }
        let enricher = try #require(relay.app.enricher)
        relay.platform.addCRMContact(phone: "+15550100081", Self.contact)
        try await relay.publish(
            (1...10).map { callStartedBody(eventId: "b\($0)", callId: "call-b\($0)", from: "+15550100081") }
        )
        try await eventually { if case .open = enricher.breakerState("crm") { true } else { false } }
        try await Task.sleep(for: .seconds(2))
        let duringOutage = relay.platform.server.requests.filter { $0.path.hasPrefix("/crm/contacts") }.count
        // Ten enrichments retrying every ~100 ms for 2 s would be ~200 requests; the breaker lets a
        // probe through about once a second.
        #expect(duringOutage < 20, "\(duringOutage) requests reached the CRM during the outage")
        crmDown.withLock { $0 = false }
        for call in 1...10 {
            #expect(try await relay.platform.waitForPhases(of: "b\(call)").phaseTwo.externalId == "CRM:003A000001")
        }
        #expect(enricher.breakerState("crm") == .closed(consecutiveFailures: 0))
    }

    @Test("a hung CRM never holds phase-1 updates back: lookups wait on their own queue")
    func hungCRMDoesNotDelayPhaseOne() async throws {
        let crm = ResponseGate()
        defer { crm.open() }
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") ? .ok("{}", heldBy: crm) : nil
            },
            enrichment: true,
            adjust: {
                $0.delivery.concurrency = 4
                $0.delivery.enrichmentConcurrency = 2
                $0.crm.lookup.timeout = .seconds(30)
            }
        )
        defer { Task { await relay.stop() } }
        let calls = 24
        try await relay.publish(
            (1...calls).map {
                callStartedBody(eventId: "h\($0)", callId: "hung-\($0)", from: "+1555010\(String(format: "%04d", $0))")
            }
        )
        // Every phase-1 link arrives while the two lookup slots sit on requests the CRM holds.
        let expected = Set((1...calls).map { "customer-update:h\($0)" })
        try await eventually(timeout: .seconds(30)) {
            Set(relay.platform.customerUpdates.compactMap(\.idempotencyKey)) == expected
        }
        #expect(!crm.isOpen && crm.heldCount == 2)
        #expect(relay.platform.server.requests.count { $0.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") } == 2)
    }

    @Test("retried lookups run in the lookup lane: their retries never hold phase-1 slots")
    func retriedLookupsStayInTheirLane() async throws {
        let searches = Atomic<Int>(0)
        let crm = ResponseGate()
        defer { crm.open() }
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                guard request.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") else { return nil }
                // The first two searches ask for a wait (each lookup's retry is scheduled on its outbox
                // entry); every later one is held until the test ends.
                return searches.add(1, ordering: .relaxed).newValue <= 2
                    ? .status(503, headers: [(name: "Retry-After", value: "3")]) : .ok("{}", heldBy: crm)
            },
            enrichment: true,
            adjust: {
                $0.delivery.concurrency = 1
                $0.delivery.enrichmentConcurrency = 2
                $0.crm.lookup.timeout = .seconds(30)
            }
        )
        defer { Task { await relay.stop() } }
        try await relay.publish([
            callStartedBody(eventId: "k1", callId: "park-1", from: "+15550100091"),
            callStartedBody(eventId: "k2", callId: "park-2", from: "+15550100092"),
        ])
        _ = try await updates(relay, count: 2)
        // Both retried lookups are back and hanging on the CRM; in the send lane the second could
        // not even start, queued behind the first in the only send slot.
        try await eventually(timeout: .seconds(15)) { searches.load(ordering: .relaxed) == 4 }
        try await relay.publish([callStartedBody(eventId: "k3", callId: "park-3", from: "+15550100093")])
        try await eventually(timeout: .seconds(20)) {
            relay.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:k3" }
        }
        // Sent while both lookups were still held: the phase-1 slot never waited for them.
        #expect(!crm.isOpen && crm.heldCount == 2)
    }

    @Test("phase 2's CRM link is the interaction's: the post-call webhook carries CRM:{id}, not the PHONE: id")
    func webhookCarriesTheEnrichedLink() async throws {
        let relay = try await RelayHarness.start(
            enrichment: true,
            adjust: { $0.correlation.wrapUpGrace = .seconds(30) }
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100061", Self.contact)
        try await relay.publish([callStartedBody(eventId: "w1", callId: "call-w1", from: "+15550100061")])
        _ = try await relay.platform.waitForPhases(of: "w1")
        try await eventually {
            try await relay.app.store.interaction(callId: "call-w1")?.externalId == "CRM:003A000001"
        }
        try await relay.publish([callEndedBody(eventId: "w2", callId: "call-w1")], routingKey: "callEnded")
        try await relay.publish([wrapUpBody(eventId: "w3", callId: "call-w1")], routingKey: "wrapUp")
        let webhooks = try await relay.platform.waitForWebhooks(count: 1, timeout: .seconds(15))
        let body = try #require(try JSONSerialization.jsonObject(with: Data(webhooks[0].body)) as? [String: Any])
        #expect(body["externalId"] as? String == "CRM:003A000001", "\(webhooks[0].bodyText)")
    }

    @Test("a phase-1 update still retrying when phase 2 lands is not sent again over the CRM link")
    func staleRetryIsNotSent() async throws {
        // The phase-1 PUT's first answer is held until the CRM has answered phase 2's search, then it
        // asks for a second try in 2 s; phase 2, waiting for the call's turn, relinks meanwhile.
        let firstAnswer = ResponseGate()
        defer { firstAnswer.open() }
        let relay = try await RelayHarness.start(
            platformBehaviour: { attempt, request in
                request.method == "PUT" && request.header("idempotency-key") == "customer-update:r1" && attempt == 1
                    ? ScriptedResponse(status: 503, headers: [(name: "Retry-After", value: "2")], gate: firstAnswer)
                    : nil
            },
            enrichment: true
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100071", Self.contact)
        try await relay.publish([callStartedBody(eventId: "r1", callId: "call-r1", from: "+15550100071")])
        try await eventually(timeout: .seconds(30)) {
            firstAnswer.heldCount == 1
                && relay.platform.server.requests.contains { $0.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") }
        }
        firstAnswer.open()
        let received = try await updates(relay, count: 1)
        #expect(received[0].externalId == "CRM:003A000001")
        // Past the Retry-After: the phase-1 retry was due, and was dropped as superseded.
        try await eventually {
            relay.platform.server.requests.contains { $0.header("idempotency-key") == "customer-update:r1" }
                && relay.app.pipeline.acknowledgedCount == 1
        }
        try await Task.sleep(for: .milliseconds(1500))
        #expect(relay.platform.customerUpdates.map(\.externalId) == ["CRM:003A000001"])
        #expect(relay.platform.server.requests.count { $0.header("idempotency-key") == "customer-update:r1" } == 1)
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test(
        "a phase-1 update that phase 2 overtook is not sent even once: the platform never goes back to the PHONE: link"
    )
    func overtakenPhaseOneIsNotSent() async throws {
        let logs = RecordingLogHandler.Store()
        // The answer to another call's update holds the only send slot until phase 2 (its CRM answers at
        // once, in the lookup lane) has relinked the next call and queued its update.
        let hold = ResponseGate()
        defer { hold.open() }
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.header("idempotency-key") == "customer-update:hold" ? .ok("{}", heldBy: hold) : nil
            },
            enrichment: true,
            adjust: {
                $0.delivery.concurrency = 1
                $0.platform.requestTimeout = .seconds(10)
            },
            logger: RecordingLogHandler.logger(label: "test.relay", store: logs)
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100081", Self.contact)
        try await relay.publish([callStartedBody(eventId: "hold", callId: "call-hold", from: "+15550100080")])
        try await eventually {
            relay.platform.server.requests.contains { $0.header("idempotency-key") == "customer-update:hold" }
        }
        try await relay.publish([callStartedBody(eventId: "v1", callId: "call-v1", from: "+15550100081")])
        // Phase 2 relinks the call while its phase-1 update still waits for the slot.
        try await eventually { try await relay.app.store.link(callId: "call-v1") == "CRM:003A000001" }
        hold.open()
        try await eventually { relay.platform.customerUpdates.contains { $0.idempotencyKey == "enrichment:v1" } }
        try await eventually { logs.all.contains { $0.contains("customer update superseded") } }
        #expect(!relay.platform.server.requests.contains { $0.header("idempotency-key") == "customer-update:v1" })
        #expect(
            relay.platform.customerUpdates.filter { $0.idempotencyKey?.hasSuffix(":v1") == true }.map(\.externalId) == [
                "CRM:003A000001"
            ]
        )
        #expect(try await relay.deadLetterCount() == 0)
    }

    @Test("a phase-1 update queued before a restart is not sent over the CRM link phase 2 set before it")
    func queuedPhaseOneAcrossRestart() async throws {
        let first = try await RelayHarness.start(enrichment: true)
        first.platform.addCRMContact(phone: "+15550100086", Self.contact)
        try await first.publish([callStartedBody(eventId: "q1", callId: "call-q1", from: "+15550100086")])
        _ = try await first.platform.waitForPhases(of: "q1")
        await first.stopRelayOnly()
        // As a phase-1 update that a backlog kept undelivered until the relay stopped: left in the outbox,
        // so the restarted relay takes it on its first poll, as a first attempt.
        let phoneId = first.expectedPhoneID("+15550100086")
        let update = CustomerUpdate(
            customerId: phoneId,
            externalId: try #require(ExternalID(parsing: phoneId)),
            callId: "call-q1",
            idempotencyKey: "customer-update:q1"
        )
        let left = try await first.detachedStore().enqueueOutbox(
            callId: "call-q1",
            causeId: "q1",
            [
                NewOutboxEntry(
                    kind: "delivery",
                    payload: DeliveryJob(customerUpdate: update, causeId: "q1").sealed(with: first.app.cipher).encoded()
                )
            ],
            relink: nil,
            now: Date()
        )

        let logs = RecordingLogHandler.Store()
        let second = try await RelayHarness.start(
            enrichment: true,
            reuse: first,
            logger: RecordingLogHandler.logger(label: "test.relay", store: logs)
        )
        defer { Task { await second.stop() } }
        // The restarted dispatcher reads the call's link from the store with the job: superseded.
        try await eventually { try await second.app.store.outboxEntry(id: left[0].id)?.outcome == "superseded" }
        #expect(logs.all.contains { $0.contains("customer update superseded") })
        #expect(!second.platform.server.requests.contains { $0.header("idempotency-key") == "customer-update:q1" })
        await first.publisher.shutdown()
    }

    @Test(
        "phase 2's own PUT retries under its key without asking the CRM again; a refused one is a replayable deliveryFailed"
    )
    func phaseTwoUpdateRetries() async throws {
        let p1Attempts = Atomic<Int>(0)
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                switch request.header("idempotency-key") {
                case "enrichment:p1": p1Attempts.add(1, ordering: .relaxed).newValue <= 2 ? .status(503) : nil
                case "enrichment:p2": .status(400)
                default: nil
                }
            },
            enrichment: true
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100081", Self.contact)
        relay.platform.addCRMContact(phone: "+15550100082", .init(contactId: "003C000003", name: "Ann Other"))
        try await relay.publish([
            callStartedBody(eventId: "p1", callId: "call-p1", from: "+15550100081"),
            callStartedBody(eventId: "p2", callId: "call-p2", from: "+15550100082"),
        ])
        let record = try #require(try await relay.deadLetters(atLeast: 1).first)
        try await eventually { relay.platform.customerUpdates.contains { $0.idempotencyKey == "enrichment:p1" } }
        let requests = relay.platform.server.requests
        #expect(requests.count { $0.header("idempotency-key") == "enrichment:p1" } == 3)
        #expect(requests.count { $0.header("idempotency-key") == "enrichment:p2" } == 1, "a 400 is not retried")
        #expect(
            requests.count { $0.path == "/crm/contacts?phone=%2B15550100081" } == 1,
            "retrying the PUT is not a new lookup"
        )
        #expect(requests.count { $0.path == "/crm/contacts?phone=%2B15550100082" } == 1)
        #expect(record.reason == .deliveryFailed)
        #expect(record.callId == "call-p2")
        #expect(record.target?.method == "PUT")
        #expect(record.target?.lastStatus == 400)
        // Replay sends the update again, not the lookup: the record holds the customer-update job.
        #expect(record.origin == .outbox)
        let job = try DeliveryJob.decode(record.originalPayload).opened(with: relay.app.cipher)
        #expect(job.kind == .customerUpdate && job.idempotencyKey == "enrichment:p2")
    }

    @Test("email and web chat: phase 2 asks the CRM by the address; a chat's number links it at once")
    func byAddress() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(
            phone: "+15550100091",
            .init(contactId: "003E000001", name: "Erin Mail", email: "erin.mail@example.com")
        )
        let email =
            #"{"eventId":"em1","type":"emailReceived","callId":"mail-1","occurredAt":"2026-11-24T10:00:00Z","fromAddress":"Erin.Mail@EXAMPLE.com","customerId":"cust-erin"}"#
        let chat =
            #"{"eventId":"ch1","type":"chatStarted","callId":"chat-1","occurredAt":"2026-11-24T10:00:00Z","email":"erin.mail@example.com","phone":"+1 555 010 0092"}"#
        try await relay.publish([Array(email.utf8)], routingKey: "emailReceived")
        try await relay.publish([Array(chat.utf8)], routingKey: "chatStarted")

        let chatPhases = try await relay.platform.waitForPhases(of: "ch1")
        try await eventually { relay.platform.customerUpdates.contains { $0.idempotencyKey == "enrichment:em1" } }
        let updates = relay.platform.customerUpdates
        let mail = try #require(updates.first { $0.idempotencyKey == "enrichment:em1" })
        #expect(mail.customerId == "cust-erin")
        #expect(mail.externalId == "CRM:003E000001")
        #expect(mail.body.contains("Erin Mail"))
        // An email has no phase-1 id of its own: nothing went out before the CRM answered.
        #expect(!updates.contains { $0.idempotencyKey == "customer-update:em1" })
        // The chat: its number's PHONE: id at once, then the CRM's contact found by the address.
        // (Unless phase 2 linked it before the PHONE: id could be sent, which is then not sent.)
        #expect(
            chatPhases.phaseOne.map(\.externalId) ?? relay.expectedPhoneID("+15550100092")
                == relay.expectedPhoneID("+15550100092")
        )
        #expect(chatPhases.phaseTwo.externalId == "CRM:003E000001")
        #expect(relay.platform.server.requests.contains { $0.path == "/crm/contacts?email=erin.mail%40example.com" })
        #expect(try await relay.app.store.interaction(callId: "mail-1")?.externalId == "CRM:003E000001")
    }
}
