import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayHTTP
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Synchronization
import Testing

/// The admin API over a real socket, in front of a whole relay on the real broker.
@Suite("Admin API", .stopsRelays)
struct AdminAPITests {
    let http = CurlHTTPClient(logger: Logger(label: "test.admin-client"))

    func call(
        _ relay: RelayHarness,
        _ method: String,
        _ path: String,
        body: String? = nil,
        token: String? = RelayHarness.testAdminToken,
        headers: [(name: String, value: String)] = []
    ) async throws -> HTTPResponse {
        var allHeaders = headers
        if let token { allHeaders.append((name: "Authorization", value: "Bearer \(token)")) }
        if body != nil, !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            allHeaders.append((name: "Content-Type", value: "application/json"))
        }
        // With two busy loops beside the suite, answers took longer than 10 s: these tests are about the
        // answers, and the lookup's own budget tests assert cause, not this bound.
        return try await http.execute(
            HTTPRequest(
                method: method,
                url: try await relay.adminBaseURL() + path,
                headers: allHeaders,
                body: Array((body ?? "").utf8),
                timeout: .seconds(60)
            )
        )
    }

    func object(_ response: HTTPResponse) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            "\(response.bodyText)"
        )
    }

    @Test("health needs no token; everything else answers 401 with no detail to a missing or wrong token")
    func authentication() async throws {
        let relay = try await RelayHarness.start(admin: true)
        defer { Task { await relay.stop() } }
        #expect(try await call(relay, "GET", "/healthz", token: nil).status == 200)
        let lookup = #"{"fromNumber":"+15550100001","toNumber":"+15550190000","callId":"c1","type":"inbound"}"#
        for (method, path, body) in [
            ("GET", "/metrics", nil), ("POST", "/api/v1/genesys/lookup", lookup), ("GET", "/api/v1/dead-letters", nil),
            ("POST", "/api/v1/genesys/update-context", "{}"),
        ] {
            for token in [nil, "wrong-token-0123456789", RelayHarness.testAdminToken + "x"] as [String?] {
                let response = try await call(relay, method, path, body: body, token: token)
                #expect(response.status == 401, "\(method) \(path) with \(token ?? "no token")")
                #expect(response.bodyText == #"{"error":"unauthorized"}"#)
            }
        }
        #expect(try await call(relay, "GET", "/metrics").status == 200)
    }

    @Test("without a configured token the API is closed, not open")
    func noTokenConfigured() async throws {
        let relay = try await RelayHarness.start(admin: true, adjust: { $0.admin.token = nil })
        defer { Task { await relay.stop() } }
        #expect(try await call(relay, "GET", "/metrics").status == 401)
        #expect(try await call(relay, "GET", "/readyz", token: nil).status == 200)
    }

    @Test("readiness reports broker, consumer and store")
    func readiness() async throws {
        let relay = try await RelayHarness.start(admin: true)
        defer { Task { await relay.stop() } }
        try await eventually { try await call(relay, "GET", "/readyz", token: nil).status == 200 }
        let ready = try object(try await call(relay, "GET", "/readyz", token: nil))
        #expect(ready["ready"] as? Bool == true)
        #expect(ready["brokerConnected"] as? Bool == true)
        #expect(ready["consuming"] as? Bool == true)
        #expect(ready["storeWritable"] as? Bool == true)
    }

    @Test("metrics after traffic: Prometheus's own parser reads them, with the counts the traffic made")
    func metricsParse() async throws {
        let relay = try await RelayHarness.start(
            platformBehaviour: { attempt, request in
                request.path.hasSuffix("retry-once") && attempt == 1 ? .status(503) : nil
            },
            admin: true
        )
        defer { Task { await relay.stop() } }
        try await relay.publish([
            callStartedBody(eventId: "m1", callId: "metrics-1", from: "+15550100301"),
            callStartedBody(eventId: "m2", callId: "metrics-2", from: "+15550100302", customerId: "retry-once"),
            callStartedBody(eventId: "m1", callId: "metrics-1", from: "+15550100301"),  // a duplicate
            Array("not json".utf8),
        ])
        _ = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(15))
        _ = try await relay.deadLetters(atLeast: 1)
        try await eventually {
            let text = try await call(relay, "GET", "/metrics").bodyText
            return text.contains("relay_deliveries_total") && text.contains("outcome=\"duplicate\"")
        }
        let response = try await call(relay, "GET", "/metrics")
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let samples = try PrometheusText.parse(response.bodyText)

        #expect(samples.value("relay_events_consumed_total", ["type": "callStarted"]) == 3)
        #expect(samples.value("relay_events_consumed_total", ["type": "undecodable"]) == 1)
        #expect(samples.value("relay_events_processed_total", ["type": "callStarted", "outcome": "applied"]) == 2)
        #expect(samples.value("relay_events_processed_total", ["type": "callStarted", "outcome": "duplicate"]) == 1)
        #expect(samples.value("relay_dead_letters_total", ["reason": "malformed"]) == 1)
        #expect(
            samples.value(
                "relay_deliveries_total",
                ["kind": "customerUpdate", "outcome": "delivered", "status_class": "2xx"]
            ) == 2
        )
        #expect(
            samples.value(
                "relay_deliveries_total",
                ["kind": "customerUpdate", "outcome": "retried", "status_class": "5xx"]
            ) == 1
        )
        #expect(samples.value("relay_delivery_retries_total", ["kind": "customerUpdate"]) == 1)
        #expect(samples.value("relay_delivery_duration_seconds_count", ["kind": "customerUpdate"]) == 3)
        #expect(samples.value("relay_messages_in_flight", ["stage": "events"]) == 0)
        #expect(samples.value("relay_outbox_pending", ["kind": "delivery"]) == 0)
        #expect(
            samples.value(
                "relay_info",
                [
                    "instance_name": relay.app.instanceName,
                    "store": relay.app.configuration.store.url == nil ? "sqlite" : "postgres",
                ]
            )
                == 1
        )
    }

    @Test("metrics show what waits in the outbox: pending, due and retrying by kind, with the oldest one's age")
    func backlogMetrics() async throws {
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.method == "PUT" ? .status(503, headers: [(name: "Retry-After", value: "600")]) : nil
            },
            admin: true
        )
        defer { Task { await relay.stop() } }
        func gauge(_ name: String, _ kind: String) async throws -> Double? {
            let samples = try PrometheusText.parse(try await call(relay, "GET", "/metrics").bodyText)
            return samples.value(name, ["kind": kind])
        }
        #expect(try await gauge("relay_outbox_pending", "delivery") == 0)
        // A refused update waits for its Retry-After: pending, not due, a retry scheduled.
        try await relay.publish([callStartedBody(eventId: "m1", callId: "call-retrying")])
        try await eventually { try await gauge("relay_outbox_retrying", "delivery") == 1 }
        #expect(try await gauge("relay_outbox_pending", "delivery") == 1)
        #expect(try await gauge("relay_outbox_due", "delivery") == 0)
        // An entry of a kind this version cannot carry out (as a newer version may write) stays pending.
        let then = Date().addingTimeInterval(-120)
        _ = try await relay.app.store.apply(callId: "call-waiting", eventId: "waiting", now: then) { state in
            (
                state ?? Interaction(callId: "call-waiting", firstSeenAt: then),
                [NewOutboxEntry(kind: "fromANewerVersion", payload: Array("{}".utf8))]
            )
        }
        #expect(try await gauge("relay_outbox_pending", "fromANewerVersion") == 1)
        #expect(try await gauge("relay_outbox_due", "fromANewerVersion") == 1)
        #expect((try await gauge("relay_outbox_oldest_pending_age_seconds", "fromANewerVersion") ?? 0) >= 120)
    }

    @Test("the deliveries API lists what waits in the outbox, shows one entry, and a retry sends it at once")
    func deliveriesAPI() async throws {
        let refusals = Atomic<Int>(0)
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                guard request.method == "PUT" else { return nil }
                return refusals.add(1, ordering: .relaxed).newValue == 1
                    ? .status(503, headers: [(name: "Retry-After", value: "3000")]) : nil
            },
            admin: true
        )
        defer { Task { await relay.stop() } }
        try await relay.publish([callStartedBody(eventId: "api-d1", callId: "call-api-waiting")])
        var listing: [String: Any] = [:]
        try await eventually {
            listing = try object(try await call(relay, "GET", "/api/v1/deliveries?state=failing"))
            // The totals and the entries are two reads: wait for both to show the retry.
            let kinds = listing["kinds"] as? [String: [String: Any]]
            return (listing["entries"] as? [[String: Any]])?.count == 1 && kinds?["delivery"]?["retrying"] as? Int == 1
        }
        let entry = try #require((listing["entries"] as? [[String: Any]])?.first)
        #expect(entry["state"] as? String == "scheduled" && entry["attempts"] as? Int == 1)
        #expect(entry["lastError"] as? String == "HTTP 503")
        let kinds = try #require(listing["kinds"] as? [String: [String: Any]])
        #expect(kinds["delivery"]?["retrying"] as? Int == 1 && kinds["delivery"]?["due"] as? Int == 0)
        let id = try #require(entry["id"] as? Int)
        let shown = try object(try await call(relay, "GET", "/api/v1/deliveries/\(id)"))
        #expect(shown["idempotencyKey"] as? String == "customer-update:api-d1")
        #expect(try await call(relay, "GET", "/api/v1/deliveries/999999").status == 404)
        #expect(try await call(relay, "GET", "/api/v1/deliveries?state=stuck").status == 400)
        #expect(
            try await call(relay, "POST", "/api/v1/deliveries/retry", body: #"{"all":true,"ids":[1]}"#).status == 400
        )

        let dryRun = try object(
            try await call(relay, "POST", "/api/v1/deliveries/retry", body: #"{"all":true,"dryRun":true}"#)
        )
        #expect(dryRun["madeDue"] as? Int == 1 && dryRun["dryRun"] as? Bool == true)
        #expect(relay.platform.customerUpdates.isEmpty)
        let retried = try object(try await call(relay, "POST", "/api/v1/deliveries/retry", body: #"{"ids":[\#(id)]}"#))
        #expect(retried["madeDue"] as? Int == 1)
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(20))
        #expect(relay.platform.customerUpdates.map(\.idempotencyKey) == ["customer-update:api-d1"])
    }

    func lookupBody(_ number: String, callId: String, type: String = "inbound") -> String {
        type == "inbound"
            ? #"{"fromNumber":"\#(number)","toNumber":"+15550190000","callId":"\#(callId)","type":"inbound"}"#
            : #"{"fromNumber":"+15550190000","toNumber":"\#(number)","callId":"\#(callId)","type":"outbound","userId":"u1"}"#
    }

    @Test("the lookup answers within its budget while the CRM hangs, and remembers a late CRM answer")
    func lookupWithinBudget() async throws {
        let hung = ResponseGate()
        let late = ResponseGate()
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                if request.path.hasSuffix("%2B15550100401") { return .ok("[]", heldBy: hung) }
                if request.path.hasSuffix("%2B15550100403") {
                    // Answers once the test lets it, after the lookup gave up: what it says is for the next lookup.
                    return .ok(#"{"records":[{"Id":"500000003","Name":"Late Answer"}]}"#, heldBy: late)
                }
                return nil
            },
            enrichment: true,
            admin: true,
            adjust: {
                $0.admin.lookupBudget = .milliseconds(300)
                // Far beyond the budget: an answer before it did not wait for the CRM.
                $0.crm.lookup.timeout = .seconds(60)
            }
        )
        defer { Task { await relay.stop() } }
        defer {
            hung.open()
            late.open()
        }

        let started = ContinuousClock.now
        let fallbackResponse = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100401", callId: "l-1")
        )
        let elapsed = ContinuousClock.now - started
        #expect(fallbackResponse.status == 200)
        // Answered while the CRM still held its answer, and not before the budget was spent.
        #expect(!hung.isOpen)
        // The CRM is asked all the same (on a loaded machine the budget can run out before it is).
        try await eventually { relay.platform.server.requests.contains { $0.path.hasSuffix("%2B15550100401") } }
        #expect(elapsed >= .milliseconds(250), "answered after \(elapsed): the budget was not waited for")
        let fallback = try object(fallbackResponse)
        #expect(fallback["externalId"] as? String == relay.expectedPhoneID("+15550100401"))
        #expect(fallbackResponse.header("x-relay-answer-source") == "phone")
        #expect(fallback.keys.contains("name") && fallback["name"] is NSNull)

        let beforeTheAnswer = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100403", callId: "l-2")
        )
        #expect(beforeTheAnswer.header("x-relay-answer-source") == "phone")
        late.open()
        try await eventually {
            let again = try await call(
                relay,
                "POST",
                "/api/v1/genesys/lookup",
                body: lookupBody("+15550100403", callId: "l-3")
            )
            let name = try object(again)["name"] as? String
            return again.header("x-relay-answer-source") == "cache" && name == "Late Answer"
        }
        // One search for both lookups: the second joined the first, then the cache answered.
        #expect(relay.platform.server.requests.count { $0.path.hasSuffix("%2B15550100403") } == 1)
    }

    @Test("a CRM answering within the budget is the answer; the same caller is then answered from memory")
    func lookupFromCRMThenMemory() async throws {
        let relay = try await RelayHarness.start(
            // A budget no loaded machine runs out of: this test is about the answer, not the budget.
            enrichment: true,
            admin: true,
            adjust: { $0.admin.lookupBudget = .seconds(30) }
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(
            phone: "+15550100402",
            .init(contactId: "500000002", name: "Ann Lee", email: "ann.lee@example.com")
        )
        let fresh = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100402", callId: "f-1")
        )
        #expect(fresh.header("x-relay-answer-source") == "crm")
        let answer = try object(fresh)
        #expect(answer["externalId"] as? String == "CRM:500000002")
        #expect(answer["name"] as? String == "Ann Lee")
        #expect(answer["email"] as? String == "ann.lee@example.com")

        let searches = relay.platform.server.requests.count { $0.path.hasPrefix("/crm/contacts?") }
        let again = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100402", callId: "f-2")
        )
        #expect(again.header("x-relay-answer-source") == "cache")
        #expect(try object(again)["externalId"] as? String == "CRM:500000002")
        #expect(relay.platform.server.requests.count { $0.path.hasPrefix("/crm/contacts?") } == searches)

        // Outbound: the customer is the dialled number.
        let outbound = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100402", callId: "f-3", type: "outbound")
        )
        #expect(try object(outbound)["externalId"] as? String == "CRM:500000002")
    }

    @Test("a number a contact holds is answered with the contact's CRM id, without asking the CRM")
    func lookupFromContact() async throws {
        // A budget no loaded machine runs out of: the last lookup must reach the CRM's answer.
        let relay = try await RelayHarness.start(
            enrichment: true,
            admin: true,
            adjust: { $0.admin.lookupBudget = .seconds(30) }
        )
        defer { Task { await relay.stop() } }
        _ = try await relay.app.contacts.create(
            ContactDraft(
                name: "Held Number",
                phones: ["+15550100405"],
                emails: ["held.number@example.com"],
                externalIds: ["CRM:500000005"]
            )
        )
        let answer = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100405", callId: "h-1")
        )
        #expect(answer.header("x-relay-answer-source") == "contact")
        let body = try object(answer)
        #expect(body["externalId"] as? String == "CRM:500000005")
        // What the relay knows locally, opened from the store, within the same budget.
        #expect(body["name"] as? String == "Held Number")
        #expect(body["email"] as? String == "held.number@example.com")
        #expect(!relay.platform.server.requests.contains { $0.path.hasPrefix("/crm/contacts") })

        // A call from the number: phase 2 fetches the contact from the CRM. The next lookup answers with
        // the CRM's data it saw then, and still the contact's own name.
        relay.platform.addCRMContact(
            phone: "+15550100405",
            .init(contactId: "500000005", name: "CRM Name", caseId: "CASE-405", loyaltyTier: "Gold")
        )
        try await relay.publish([callStartedBody(eventId: "h-call", callId: "h-call", from: "+15550100405")])
        #expect(try await relay.platform.waitForPhases(of: "h-call").phaseTwo.externalId == "CRM:500000005")
        let again = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100405", callId: "h-2")
        )
        #expect(again.header("x-relay-answer-source") == "contact")
        let enriched = try object(again)
        #expect(enriched["name"] as? String == "Held Number")
        let data = try #require(enriched["data"] as? [String: Any])
        #expect(data["loyaltyTier"] as? String == "Gold")
        #expect(data["crmCaseId"] as? String == "CASE-405")

        // Forgetting the person drops what the lookup remembered: the next answer asks the CRM again.
        let forgotten = try await call(relay, "POST", "/api/v1/contacts/forget", body: #"{"phone":"+15550100405"}"#)
        #expect(forgotten.status == 200)
        let afterForget = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: lookupBody("+15550100405", callId: "h-3")
        )
        #expect(afterForget.header("x-relay-answer-source") == "crm")
    }

    @Test("with admin.lookupCacheSeconds 0, every lookup asks the CRM again")
    func lookupWithoutCache() async throws {
        let relay = try await RelayHarness.start(
            enrichment: true,
            admin: true,
            adjust: {
                $0.admin.lookupBudget = .seconds(30)
                $0.admin.lookupCacheTimeToLive = .zero
            }
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100404", .init(contactId: "500000004", name: "No Cache"))
        for callId in ["n-1", "n-2"] {
            let answer = try await call(
                relay,
                "POST",
                "/api/v1/genesys/lookup",
                body: lookupBody("+15550100404", callId: callId)
            )
            #expect(answer.header("x-relay-answer-source") == "crm")
        }
        #expect(relay.platform.server.requests.count { $0.path.hasSuffix("%2B15550100404") } == 2)
    }

    @Test("malformed lookup bodies get a 400 naming the field; oversized bodies a 413")
    func lookupBadInput() async throws {
        let relay = try await RelayHarness.start(admin: true, adjust: { $0.admin.maxBodyBytes = 1024 })
        defer { Task { await relay.stop() } }
        let cases: [(body: String, field: String?)] = [
            (#"{"toNumber":"+15550190000","callId":"c","type":"inbound"}"#, "fromNumber"),
            (#"{"fromNumber":15550100001,"toNumber":"+15550190000","callId":"c","type":"inbound"}"#, "fromNumber"),
            (#"{"fromNumber":"+15550100001","toNumber":"+15550190000","callId":"","type":"inbound"}"#, "callId"),
            (#"{"fromNumber":"+15550100001","toNumber":"+15550190000","callId":"c","type":"sideways"}"#, "type"),
            (#"{"fromNumber":"+15550100001","toNumber":null,"callId":"c","type":"inbound"}"#, "toNumber"),
            (#"["not","an","object"]"#, nil),
            ("{not json", nil),
        ]
        for (body, field) in cases {
            let response = try await call(relay, "POST", "/api/v1/genesys/lookup", body: body)
            #expect(response.status == 400, "\(body)")
            let error = try object(response)
            #expect(error["field"] as? String == field, "\(body): \(response.bodyText)")
            #expect((error["error"] as? String)?.isEmpty == false)
        }
        let huge =
            #"{"fromNumber":"+15550100001","toNumber":"+15550190000","callId":"c","type":"inbound","pad":""#
            + String(repeating: "x", count: 4096) + #""}"#
        #expect(try await call(relay, "POST", "/api/v1/genesys/lookup", body: huge).status == 413)
        // A withheld number is not an error: there is nobody to link.
        let withheld = try await call(
            relay,
            "POST",
            "/api/v1/genesys/lookup",
            body: #"{"fromNumber":"anonymous","toNumber":"+15550190000","callId":"c","type":"inbound"}"#
        )
        #expect(withheld.status == 200)
        #expect(try object(withheld)["externalId"] is NSNull)
    }

    @Test("update-context: validated like a contextUpdate event, then the override answers the next lookup")
    func updateContext() async throws {
        let relay = try await RelayHarness.start(enrichment: true, admin: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100999", .init(contactId: "500999999", name: "Acme Corp"))
        let caller = "+15550100501"
        try await relay.publish([callStartedBody(eventId: "u1", callId: "ctx-call-1", from: caller)])
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        // An end without a start: the interaction exists but has no customer to switch yet.
        try await relay.publish([callEndedBody(eventId: "u2", callId: "ctx-call-2")], routingKey: "callEnded")
        try await eventually { try await relay.app.store.interaction(callId: "ctx-call-2") != nil }

        func update(_ body: String, key: String? = nil) async throws -> HTTPResponse {
            try await call(
                relay,
                "POST",
                "/api/v1/genesys/update-context",
                body: body,
                headers: key.map { [(name: "Idempotency-Key", value: $0)] } ?? []
            )
        }
        let missing = try await update(#"{"callId":"ctx-call-1","reason":"Agent Verified Account Switch"}"#)
        #expect(missing.status == 400)
        #expect(try object(missing)["field"] as? String == "newExternalId")
        let phone = try await update(#"{"callId":"ctx-call-1","newExternalId":"PHONE:abc","reason":"r"}"#)
        #expect(phone.status == 422)
        #expect(try object(phone)["field"] as? String == "newExternalId")
        let unknown = try await update(#"{"callId":"no-such-call","newExternalId":"CRM:500999999","reason":"r"}"#)
        #expect(unknown.status == 404)
        // Its end came first: the update waits for the start.
        let notStarted = try await update(#"{"callId":"ctx-call-2","newExternalId":"CRM:500999999","reason":"r"}"#)
        #expect(notStarted.status == 202)
        #expect(try object(notStarted)["status"] as? String == "deferred")
        let notInCRM = try await update(
            #"{"callId":"ctx-call-1","newExternalId":"CRM:404404404","reason":"r"}"#,
            key: "k-bad"
        )
        #expect(notInCRM.status == 202)

        let accepted = try await update(
            #"{"callId":"ctx-call-1","newExternalId":"CRM:500999999","reason":"Agent Verified Account Switch","agentId":"agent-7"}"#,
            key: "k-good"
        )
        #expect(accepted.status == 202)
        #expect(try object(accepted)["eventId"] as? String == "admin:k-good")
        let updates = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(15))
        let switched = try #require(updates.first { $0.idempotencyKey == "context-update:admin:k-good" })
        #expect(switched.externalId == "CRM:500999999")
        #expect(switched.customerId == relay.expectedPhoneID(caller))
        #expect(!relay.platform.customerUpdates.contains { $0.idempotencyKey == "context-update:admin:k-bad" })

        // The same request again (a client retry) changes nothing.
        #expect(
            try await update(
                #"{"callId":"ctx-call-1","newExternalId":"CRM:500999999","reason":"Agent Verified Account Switch"}"#,
                key: "k-good"
            ).status == 200
        )

        // The next lookup for this caller answers with the override, without asking the CRM.
        try await eventually {
            let answer = try await call(
                relay,
                "POST",
                "/api/v1/genesys/lookup",
                body: #"{"fromNumber":"\#(caller)","toNumber":"+15550190000","callId":"ctx-call-3","type":"inbound"}"#
            )
            let externalId = try object(answer)["externalId"] as? String
            return answer.header("x-relay-answer-source") == "override" && externalId == "CRM:500999999"
        }
    }

    @Test(
        "dead letters over the API come from the store: concurrent readers agree, pages cover all once, resolve needs a note"
    )
    func deadLetterPagesAndReaders() async throws {
        let relay = try await RelayHarness.start(admin: true)
        defer { Task { await relay.stop() } }
        let publisher = DeadLetterPublisher(amqp: relay.publisher, exchange: relay.names.deadLetterExchange)
        let now = Date()
        var ids: [String] = []
        for index in 0..<25 {
            let record = DeadLetterRecord(
                id: "dl_page_\(index)",
                reason: .orphanedInteraction,
                callId: "page-call-\(index)",
                eventType: nil,
                eventId: nil,
                attempts: 1,
                firstFailureAt: now,
                lastFailureAt: now,
                lastError: "no end came",
                originalPayload: Array("{}".utf8),
                origin: nil
            )
            try await publisher.publish(record)
            ids.append(record.id)
        }
        // The relay drains its queue into its store; every reader then sees the same rows.
        try await eventually { try await relay.deadLetterCount() == 25 }
        let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<20 {
                group.addTask {
                    let list = try await self.call(relay, "GET", "/api/v1/dead-letters?limit=1000")
                    return (try self.array(list).count, list.header("x-relay-scanned"))
                }
            }
            return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.0 == 25 && $0.1 == "25" }, "\(answers)")

        var seen: [String] = []
        var after: String?
        for _ in 0..<5 {
            let page = try await call(
                relay,
                "GET",
                "/api/v1/dead-letters?limit=10" + (after.map { "&after=\($0)" } ?? "")
            )
            seen += try array(page).compactMap { $0["id"] as? String }
            after = page.header("x-relay-next-after")
            if after == nil { break }
        }
        // Once each, in the order they were recorded: the relay's drain and the harness's own (a tool's)
        // can record two neighbours in either order, so the order is the store's, not the publisher's.
        #expect(seen.count == ids.count && Set(seen) == Set(ids), "pages of 10 cover the 25 once each")
        #expect(try await call(relay, "GET", "/api/v1/dead-letters?after=soon").status == 400)

        #expect(
            try await call(relay, "POST", "/api/v1/dead-letters/resolve", body: #"{"ids":["dl_page_0"]}"#).status == 400
        )
        let resolve = try await call(
            relay,
            "POST",
            "/api/v1/dead-letters/resolve",
            body: #"{"ids":["dl_page_0","dl_page_1"],"note":"calls ended in the platform"}"#
        )
        #expect(resolve.status == 200)
        #expect(try object(resolve)["succeeded"] as? Int == 2)
        #expect(try await relay.deadLetterCount() == 23)
        let resolved = try await call(relay, "GET", "/api/v1/dead-letters/dl_page_0")
        #expect(resolved.status == 200, "a resolved record can still be read")
        #expect(try object(resolved)["state"] as? String == "resolved")
        #expect(try object(resolved)["note"] as? String == "calls ended in the platform")
        let closed = try await call(relay, "GET", "/api/v1/dead-letters?state=resolved")
        // In the store's order, which is the order the two were recorded in (either, as above).
        let closedIds = try array(closed).compactMap { $0["id"] as? String }
        #expect(closedIds.count == 2 && Set(closedIds) == ["dl_page_0", "dl_page_1"], "\(closedIds)")
        #expect(try array(try await call(relay, "GET", "/api/v1/dead-letters?state=any&limit=1000")).count == 25)
        #expect(try await call(relay, "GET", "/api/v1/dead-letters?state=closed").status == 400)
    }

    @Test("dead letters over the API: list, show, export, replay and purge")
    func deadLetters() async throws {
        let relay = try await RelayHarness.start(admin: true)
        defer { Task { await relay.stop() } }
        try await relay.publish([
            Array(#"{"eventId":"d1","type":"callStarted","callId":"dl-call-1"}"#.utf8),
            Array(#"{"eventId":"d2","type":"callStarted","callId":"dl-call-2"}"#.utf8),
        ])
        _ = try await relay.deadLetters(atLeast: 2)

        let list = try await call(relay, "GET", "/api/v1/dead-letters?reason=malformed")
        #expect(list.status == 200)
        let letters = try #require(try JSONSerialization.jsonObject(with: Data(list.body)) as? [[String: Any]])
        #expect(letters.count == 2)
        let ids = letters.compactMap { $0["id"] as? String }
        #expect(ids.count == 2)
        #expect(!list.bodyText.contains("dl-call-1"), "list shows call ids masked")
        #expect(try await call(relay, "GET", "/api/v1/dead-letters?reason=nonsense").status == 400)
        #expect(try await call(relay, "GET", "/api/v1/dead-letters?since=yesterday-ish").status == 400)

        let show = try await call(relay, "GET", "/api/v1/dead-letters/\(ids[0])")
        #expect(show.status == 200)
        #expect(try object(show)["reason"] as? String == "malformed")
        #expect(try object(show)["payloadEncoding"] as? String == "sealed", "a malformed event's body is kept sealed")
        #expect(!show.bodyText.contains("\"eventId\":\"d"), "the body stays sealed without decrypt")
        let opened = try await call(relay, "GET", "/api/v1/dead-letters/\(ids[0])?decrypt=true")
        #expect(opened.status == 200 && opened.header("x-relay-payload-sealed") == nil)
        #expect(try object(opened)["payloadEncoding"] as? String == "utf8")
        #expect((try object(opened)["payload"] as? String)?.contains("\"eventId\":\"d") == true, "\(opened.bodyText)")
        #expect(try await call(relay, "GET", "/api/v1/dead-letters/\(ids[0])?decrypt=maybe").status == 400)
        #expect(try await call(relay, "GET", "/api/v1/dead-letters/dl_nonexistent").status == 404)

        let export = try await call(relay, "GET", "/api/v1/dead-letters/export")
        #expect(export.bodyText.split(separator: "\n").count == 2)

        #expect(try await call(relay, "POST", "/api/v1/dead-letters/purge", body: "{}").status == 400)
        let dryRun = try await call(
            relay,
            "POST",
            "/api/v1/dead-letters/purge",
            body: #"{"ids":["\#(ids[0])"],"dryRun":true}"#
        )
        #expect(try object(dryRun)["succeeded"] as? Int == 0)
        // A dry run changes nothing: both are still open.
        #expect(try await relay.deadLetterCount() == 2)

        let purge = try await call(relay, "POST", "/api/v1/dead-letters/purge", body: #"{"ids":["\#(ids[0])"]}"#)
        #expect(purge.status == 200)
        #expect(try object(purge)["succeeded"] as? Int == 1)
        #expect(try await relay.deadLetterCount() == 1)

        // Replayed, the malformed event fails again: the record comes back with its replay count.
        let replay = try await call(relay, "POST", "/api/v1/dead-letters/replay", body: #"{"all":true}"#)
        #expect(replay.status == 200)
        #expect(try object(replay)["succeeded"] as? Int == 1)
        try await eventually {
            let again = try await call(relay, "GET", "/api/v1/dead-letters/\(ids[1])")
            guard again.status == 200 else { return false }
            return try object(again)["replayCount"] as? Int == 1
        }
        #expect(
            try await call(relay, "POST", "/api/v1/dead-letters/replay", body: #"{"rate":-1,"all":true}"#).status == 400
        )
        #expect(try await call(relay, "POST", "/api/v1/dead-letters/replay", body: #"{"all":"yes"}"#).status == 400)
    }
}

extension AdminAPITests {
    func array(_ response: HTTPResponse) throws -> [[String: Any]] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]],
            "\(response.bodyText)"
        )
    }

    @Test("contacts over the API: create, show, search, import, journey, merge, unmerge, forget, with clear refusals")
    func contacts() async throws {
        let relay = try await RelayHarness.start(admin: true)
        defer { Task { await relay.stop() } }
        let created = try await call(
            relay,
            "POST",
            "/api/v1/contacts",
            body: #"{"name":"Dana Curated","phones":["+1 555 010 2001"],"externalIds":["CRM:D-1"],"note":"VIP"}"#
        )
        #expect(created.status == 201, "\(created.bodyText)")
        let dana = try object(created)
        let danaId = try #require(dana["id"] as? String)
        #expect(dana["type"] as? String == "curated")

        // Refusals: a malformed number (400), a number someone owns (409, naming the owner), no token.
        let bad = try await call(relay, "POST", "/api/v1/contacts", body: #"{"name":"X","phones":["not a number"]}"#)
        #expect(bad.status == 400)
        let owned = try await call(relay, "POST", "/api/v1/contacts", body: #"{"phones":["+15550102001"]}"#)
        #expect(owned.status == 409)
        #expect(try object(owned)["code"] as? String == "identifierOwned")
        #expect(try object(owned)["error"] as? String ?? "" != "")
        #expect(try await call(relay, "GET", "/api/v1/contacts/\(danaId)", token: nil).status == 401)

        // Named by id, by number (percent-encoded) or by external id; searched by email or name.
        #expect(try await call(relay, "GET", "/api/v1/contacts/\(danaId)").status == 200)
        let byNumber = try await call(relay, "GET", "/api/v1/contacts/%2B15550102001")
        #expect(try object(byNumber)["id"] as? String == danaId)
        #expect(try object(try await call(relay, "GET", "/api/v1/contacts/CRM:D-1"))["id"] as? String == danaId)
        #expect(try await call(relay, "GET", "/api/v1/contacts/ct-nobody").status == 404)
        #expect(try array(try await call(relay, "GET", "/api/v1/contacts?name=Dana%20Curated")).count == 1)
        #expect(try await call(relay, "GET", "/api/v1/contacts").status == 400)

        // Import: JSON lines, one bad row rejected with its line, the rest imported.
        let imported = try await call(
            relay,
            "POST",
            "/api/v1/contacts/import",
            body: #"{"name":"Eve Import","phone":"+15550102002"}"# + "\n"
                + #"{"name":"Bad Row","email":"not-an-email"}"# + "\n",
            headers: [(name: "Content-Type", value: "application/x-ndjson")]
        )
        #expect(imported.status == 207, "\(imported.bodyText)")
        let report = try object(imported)
        #expect(report["created"] as? Int == 1)
        #expect((report["rejected"] as? [[String: Any]])?.first?["line"] as? Int == 2)
        #expect(try await call(relay, "POST", "/api/v1/contacts/import", body: "x").status == 415)

        // Traffic: Dana calls; an unknown caller lands on a new identified contact.
        try await relay.publish([
            callStartedBody(eventId: "k1", callId: "api-call-1", from: "+15550102001"),
            callStartedBody(eventId: "k2", callId: "api-call-2", from: "+15550102009"),
        ])
        try await eventually { relay.app.pipeline.acknowledgedCount == 2 }
        let journey = try object(try await call(relay, "GET", "/api/v1/contacts/\(danaId)/journey"))
        #expect((journey["interactions"] as? [[String: Any]])?.map { $0["callId"] as? String } == ["api-call-1"])
        let strangerId = try #require(
            try object(try await call(relay, "GET", "/api/v1/contacts/%2B15550102009"))["id"] as? String
        )

        // Merge: curated + curated is refused; the stranger folds into Dana; unmerge restores both.
        let eveId = try #require(
            try object(try await call(relay, "GET", "/api/v1/contacts/%2B15550102002"))["id"] as? String
        )
        let refused = try await call(
            relay,
            "POST",
            "/api/v1/contacts/merge",
            body: #"{"absorbed":"\#(eveId)","into":"\#(danaId)"}"#
        )
        #expect(refused.status == 409)
        #expect(try object(refused)["code"] as? String == "bothCurated")
        let merged = try await call(
            relay,
            "POST",
            "/api/v1/contacts/merge",
            body: #"{"absorbed":"\#(strangerId)","into":"\#(danaId)"}"#
        )
        #expect(merged.status == 200, "\(merged.bodyText)")
        let mergeId = try #require(try object(merged)["mergeId"] as? String)
        let joined = try object(try await call(relay, "GET", "/api/v1/contacts/%2B15550102009/journey"))
        #expect(
            Set((joined["interactions"] as? [[String: Any]] ?? []).compactMap { $0["callId"] as? String }) == [
                "api-call-1", "api-call-2",
            ]
        )
        #expect(
            try await call(relay, "POST", "/api/v1/contacts/unmerge", body: #"{"mergeId":"\#(mergeId)"}"#).status == 200
        )
        #expect(
            try await call(relay, "POST", "/api/v1/contacts/unmerge", body: #"{"mergeId":"\#(mergeId)"}"#).status == 404
        )
        let apart = try object(try await call(relay, "GET", "/api/v1/contacts/\(strangerId)/journey"))
        #expect((apart["interactions"] as? [[String: Any]])?.map { $0["callId"] as? String } == ["api-call-2"])

        // Forget: everything about Dana goes, and the API says what.
        #expect(
            try await call(relay, "POST", "/api/v1/contacts/forget", body: #"{"phone":"+15550102001","email":"x@y.z"}"#)
                .status == 400
        )
        let forgotten = try await call(relay, "POST", "/api/v1/contacts/forget", body: #"{"phone":"+15550102001"}"#)
        #expect(forgotten.status == 200)
        #expect(try object(forgotten)["contacts"] as? Int == 1)
        #expect(try object(forgotten)["interactions"] as? Int == 1)
        #expect(try await call(relay, "GET", "/api/v1/contacts/\(danaId)").status == 404)
        #expect(try await relay.app.store.interaction(callId: "api-call-1") == nil)
    }
}

extension HTTPResponse {
    var bodyText: String { String(decoding: body, as: UTF8.self) }
}
