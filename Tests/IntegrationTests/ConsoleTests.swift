import Foundation
import Logging
import RelayAMQP
import RelayAdmin
import RelayHTTP
import RelayService
import RelaySimulator
import RelayTesting
import Synchronization
import Testing

/// The operator console in a real headless Chromium, and its forms against forged requests.
@Suite("Operator console", .serialized, .stopsRelays)
struct ConsoleTests {
    final class Switch: Sendable {
        let on = Atomic<Bool>(true)
    }

    /// A relay with three dead letters: two malformed events and one update the platform refused.
    static func relayWithDeadLetters(refusing: Switch) async throws -> RelayHarness {
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                request.method == "PUT" && refusing.on.load(ordering: .relaxed)
                    ? ScriptedResponse(status: 400, body: Array(#"{"message":"externalId rejected"}"#.utf8)) : nil
            },
            admin: true
        )
        let broken = Array(
            #"{"eventId":"bad-1","type":"callStarted","callId":"c-bad","occurredAt":"2026-11-24T10:00:00Z","toNumber":"+15550190000","direction":"inbound"}"#
                .utf8
        )
        try await relay.publish([
            broken, Array("not json".utf8),
            callStartedBody(eventId: "refused-s", callId: "c-refused", from: "+15550100077"),
        ])
        try await eventually(timeout: .seconds(30), "three dead letters in the store") {
            (try? await relay.deadLetterCount()) == 3
        }
        return relay
    }

    static var screenshots: String { TestBroker.repositoryRoot + "/.screenshots/console" }

    static func signIn(_ browser: WebDriver, _ base: String) async throws {
        try await browser.go(base + "/console/login")
        try await browser.type(RelayHarness.testAdminToken, into: try await browser.find("#token"))
        try await browser.click(try await browser.find("#sign-in"))
        try await browser.waitForURL(base + "/console")
    }

    @Test("sign in, filter by reason, open one, replay it with the count first, see it leave, sign out")
    func browserWalkThrough() async throws {
        let refusing = Switch()
        let relay = try await Self.relayWithDeadLetters(refusing: refusing)
        defer { Task { await relay.stop() } }
        let base = try await relay.adminBaseURL()
        try await WebDriver.with { browser in

            // Not signed in: every page sends the browser to sign in.
            try await browser.go(base + "/console/dead-letters")
            try await browser.waitForURL(base + "/console/login")

            // A wrong token is refused.
            try await browser.type("not-the-admin-token", into: try await browser.find("#token"))
            try await browser.click(try await browser.find("#sign-in"))
            #expect(try await browser.text(try await browser.find("#login-error")).contains("not the admin token"))
            try await browser.screenshot(to: Self.screenshots + "/01-sign-in-refused.png")

            try await browser.type(RelayHarness.testAdminToken, into: try await browser.find("#token"))
            try await browser.click(try await browser.find("#sign-in"))
            try await browser.waitForURL(base + "/console")
            // The overview reloads itself: read it whole, at once, rather than element by element.
            let overview = try await browser.source()
            #expect(overview.contains(#"<p id="dead-letter-total">3 open</p>"#))
            #expect(
                overview.contains(">connected<") && overview.contains(">consuming<") && overview.contains(">writable<")
            )
            #expect(overview.contains(#"<tr class="breaker"><th>platform</th><td>closed</td></tr>"#))
            #expect(overview.contains(#"id="deliveries-waiting""#) && overview.contains(#"id="rate-chart""#))
            try await browser.screenshot(to: Self.screenshots + "/02-overview.png")

            // Filter by reason.
            try await browser.go(base + "/console/dead-letters")
            #expect(try await browser.findAll("tr.dead-letter").count == 3)
            try await browser.click(try await browser.find("#reason option[value=deliveryFailed]"))
            try await browser.click(try await browser.find("#filter"))
            try await browser.waitForText("#shown", "1 shown")
            let filtered = try await browser.findAll("tr.dead-letter td.reason")
            #expect(filtered.count == 1)
            #expect(try await browser.text(filtered[0]) == "deliveryFailed")
            try await browser.screenshot(to: Self.screenshots + "/03-filtered.png")
            // A time window: all three are from the last minutes, none from before an hour ago.
            try await browser.type("1h", into: try await browser.find("#until"))
            try await browser.click(try await browser.find("#filter"))
            try await browser.waitForText("#shown", "0 shown")

            // A malformed event's page shows no personal data until revealed.
            try await browser.go(base + "/console/dead-letters?reason=malformed")
            var malformedPage: String?
            // The ids first: an element of this page is gone once the browser leaves it.
            let ids = try await browser.findAll("tr.dead-letter td a").asyncMap { try await browser.text($0) }
            for id in ids {
                try await browser.go(base + "/console/dead-letters/\(id)")
                if try await browser.source().contains("missing required field") {
                    malformedPage = id
                    break
                }
            }
            let malformedId = try #require(malformedPage)
            let masked = try await browser.source()
            #expect(!masked.contains("+15550190000"))
            #expect(!masked.contains("c-bad"))
            try await browser.screenshot(to: Self.screenshots + "/04-record-masked.png")
            try await browser.click(try await browser.find("#reveal"))
            try await browser.waitForURL(base + "/console/dead-letters/\(malformedId)?reveal=true")
            #expect(try await browser.source().contains("+15550190000"))

            // Replay the refused update: the count first, then the replay, and it leaves the list.
            try await browser.go(base + "/console/dead-letters?reason=deliveryFailed")
            try await browser.click(try await browser.find("tr.dead-letter td a"))
            try await browser.waitForURL(prefix: base + "/console/dead-letters/dl_")
            let record = try await browser.source()
            #expect(record.contains("(last status 400)") && record.contains("/api/v2/customers/"))
            try await browser.click(try await browser.find("#replay-one"))
            let count = try await browser.text(try await browser.find("#replay-count"))
            #expect(count == "1 dead letter would be replayed.", "\(count)")
            try await browser.screenshot(to: Self.screenshots + "/05-replay-count.png")
            #expect(try await relay.deadLetterCount() == 3, "the count changed nothing")
            refusing.on.store(false, ordering: .relaxed)
            try await browser.click(try await browser.find("#confirm-replay"))
            // Confirmed, it runs in the background; its page follows it to the summary.
            try await browser.waitForURL(prefix: base + "/console/jobs/")
            #expect(try await browser.waitForText("#replay-summary") { !$0.isEmpty }.contains("1"))
            try await browser.screenshot(to: Self.screenshots + "/06-replayed.png")
            try await browser.go(base + "/console/dead-letters?reason=deliveryFailed")
            #expect(try await browser.text(try await browser.find("#shown")) == "0 shown")
            // Replayed into the outbox: the platform now takes the update.
            try await eventually(timeout: .seconds(15), "the replayed update accepted") {
                relay.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:refused-s" }
            }

            // Signed out, the console is closed again.
            try await browser.click(try await browser.find("#logout"))
            try await browser.waitForURL(base + "/console/login")
            try await browser.go(base + "/console")
            try await browser.waitForURL(base + "/console/login")
        }
    }

    @Test(
        "a delivery the platform keeps refusing shows as failing with its attempts; retry now sends it; purge counts first"
    )
    func deliveriesAndPurge() async throws {
        let busy = Switch()
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                // Busy for minutes: the retry is scheduled far ahead, so only "retry now" brings it back.
                request.method == "PUT" && busy.on.load(ordering: .relaxed)
                    ? ScriptedResponse(status: 503, headers: [(name: "Retry-After", value: "600")]) : nil
            },
            admin: true,
            adjust: { $0.delivery.maxRetryAfter = .seconds(900) }
        )
        defer { Task { await relay.stop() } }
        try await relay.publish([
            callStartedBody(eventId: "busy-s", callId: "c-busy", from: "+15550100088"), Array("not json".utf8),
        ])
        try await eventually(timeout: .seconds(30), "the update refused once, and the malformed event dead-lettered") {
            let refusedOnce = relay.platform.server.requests.contains { $0.method == "PUT" }
            guard refusedOnce else { return false }
            return (try? await relay.deadLetterCount()) == 1
        }
        let base = try await relay.adminBaseURL()
        try await WebDriver.with { browser in
            try await Self.signIn(browser, base)

            try await browser.go(base + "/console/deliveries?state=failing")
            let rows = try await browser.findAll("tr.delivery")
            #expect(rows.count == 1)
            let row = try await browser.text(try #require(rows.first))
            #expect(row.contains("customerUpdate") && row.contains("HTTP 503") && row.contains("scheduled"))
            #expect(!row.contains("c-busy"), "the call id is masked")
            try await browser.screenshot(to: Self.screenshots + "/07-deliveries-failing.png")
            busy.on.store(false, ordering: .relaxed)
            try await browser.click(try await browser.find("button.retry"))
            #expect(try await browser.text(try await browser.find("#retry-summary")).hasPrefix("made 1 due now"))
            try await eventually(timeout: .seconds(15), "the retried update accepted") {
                relay.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:busy-s" }
            }

            // Purge: the count first, nothing gone until confirmed.
            try await browser.go(base + "/console/dead-letters?reason=malformed")
            try await browser.click(try await browser.find("#purge-filtered"))
            #expect(try await browser.text(try await browser.find("#purge-count")) == "1 dead letter would be purged.")
            #expect(try await relay.deadLetterCount() == 1)
            try await browser.screenshot(to: Self.screenshots + "/08-purge-count.png")
            try await browser.click(try await browser.find("#confirm-purge"))
            try await browser.waitForURL(prefix: base + "/console/jobs/")
            #expect(try await browser.waitForText("#purge-summary") { !$0.isEmpty }.contains("1"))
            #expect(try await relay.deadLetterCount() == 0)
        }
    }

    @Test(
        "a contact found by number: its journey across a call and a chat; merged with a messaging contact, a message too; unmerged"
    )
    func contactJourneyMergeUnmerge() async throws {
        let relay = try await RelayHarness.start(admin: true)
        defer { Task { await relay.stop() } }
        let day: [[UInt8]] = [
            ContactsEndToEndTests.voice("d1", "call-d1", at: "2026-11-24T08:00:00Z", from: "+15550102001"),
            ContactsEndToEndTests.event("callEnded", "d1-end", "call-d1", at: "2026-11-24T08:04:00Z", ""),
            ContactsEndToEndTests.event(
                "wrapUp",
                "d1-wrap",
                "call-d1",
                at: "2026-11-24T08:05:00Z",
                #","wrapUpCode":"BILLING","agentId":"agent-1","notes":"asked about invoice 42""#
            ),
            ContactsEndToEndTests.event(
                "chatStarted",
                "d2",
                "chat-d2",
                at: "2026-11-24T09:00:00Z",
                #","phone":"+15550102001","queueId":"q-chat""#
            ),
            ContactsEndToEndTests.event(
                "messageReceived",
                "d3",
                "msg-d3",
                at: "2026-11-24T10:00:00Z",
                #","platform":"whatsapp","messagingId":"wa-dana-1","name":"Dana Scully""#
            ),
        ]
        try await ContactsEndToEndTests.publish(relay, day, expectAcked: day.count, oneByOne: true)
        let base = try await relay.adminBaseURL()
        try await WebDriver.with { browser in
            try await Self.signIn(browser, base)

            try await browser.go(base + "/console/contacts")
            try await browser.type("+15550102001", into: try await browser.find("#contact-query"))
            try await browser.click(try await browser.find("#find"))
            try await browser.waitForURL(prefix: base + "/console/contacts/")
            // Found by a form post: the number never reaches a URL.
            #expect(!(try await browser.currentURL()).contains("5550102001"))
            #expect(try await browser.text(try await browser.find("#interaction-count")) == "2 interactions")
            var channels = try await browser.findAll("#journey td.channel")
            #expect(Set(try await channels.asyncMap { try await browser.text($0) }) == ["voice", "chat"])
            let masked = try await browser.source()
            #expect(!masked.contains("+15550102001") && !masked.contains("invoice 42"))
            #expect(masked.contains("BILLING") && masked.contains("q-voice") && masked.contains("agent-1"))
            try await browser.screenshot(to: Self.screenshots + "/09-contact-journey.png")

            // The same person on WhatsApp, merged in: the journey holds the message too.
            try await browser.type("whatsapp:wa-dana-1", into: try await browser.find("#absorbed"))
            try await browser.click(try await browser.find("#merge"))
            #expect(try await browser.text(try await browser.find("#notice")).hasPrefix("Merged"))
            #expect(try await browser.text(try await browser.find("#interaction-count")) == "3 interactions")
            channels = try await browser.findAll("#journey td.channel")
            #expect(Set(try await channels.asyncMap { try await browser.text($0) }) == ["voice", "chat", "messaging"])
            try await browser.screenshot(to: Self.screenshots + "/10-merged.png")

            // A contact merged into itself is refused, with the rule that refused it.
            try await browser.type("+15550102001", into: try await browser.find("#absorbed"))
            try await browser.click(try await browser.find("#merge"))
            #expect(try await browser.text(try await browser.find("#change-refused")).contains("was refused"))

            try await browser.go(base + "/console/contacts")
            try await browser.type("+15550102001", into: try await browser.find("#contact-query"))
            try await browser.click(try await browser.find("#find"))
            try await browser.waitForURL(prefix: base + "/console/contacts/")
            try await browser.click(try await browser.find("button.unmerge"))
            #expect(try await browser.text(try await browser.find("#notice")).hasPrefix("Unmerged"))
            #expect(try await browser.text(try await browser.find("#interaction-count")) == "2 interactions")
            try await browser.screenshot(to: Self.screenshots + "/11-unmerged.png")
        }
    }

    @Test("a form without the session's CSRF token, or a request without the cookie, changes nothing")
    func forgedRequestsChangeNothing() async throws {
        let refusing = Switch()
        let relay = try await Self.relayWithDeadLetters(refusing: refusing)
        defer { Task { await relay.stop() } }
        let base = try await relay.adminBaseURL()
        let http = CurlHTTPClient(logger: Logger(label: "test.console"))
        defer { http.shutdown() }
        func post(_ path: String, _ form: String, cookie: String?) async throws -> HTTPResponse {
            var headers = [(name: "Content-Type", value: "application/x-www-form-urlencoded")]
            if let cookie { headers.append((name: "Cookie", value: "relay_console=\(cookie)")) }
            return try await http.execute(
                HTTPRequest(method: "POST", url: base + path, headers: headers, body: Array(form.utf8))
            )
        }
        let signIn = try await post("/console/login", "token=\(RelayHarness.testAdminToken)", cookie: nil)
        #expect(signIn.status == 303)
        let setCookie = try #require(signIn.header("set-cookie"))
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
        let cookie = try #require(
            setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init)
        )
        let wrongToken = try await post("/console/login", "token=wrong-token-0123456789", cookie: nil)
        #expect(wrongToken.status == 401)
        #expect(wrongToken.header("set-cookie") == nil)

        // The refused update: replayed, it goes out once the platform takes it.
        let refused = try await relay.deadLetterQueue.list(.init(reasons: ["deliveryFailed"])).letters
        let target = try #require(refused.first).id
        refusing.on.store(false, ordering: .relaxed)
        let replay = "id=\(target)&confirm=yes"
        // No CSRF token, a wrong one, no cookie: refused, and the dead letter stays open.
        #expect(try await post("/console/dead-letters/replay", replay, cookie: cookie).status == 403)
        #expect(try await post("/console/dead-letters/replay", replay + "&csrf=0123", cookie: cookie).status == 403)
        let anonymous = try await post("/console/dead-letters/replay", replay, cookie: nil)
        #expect(anonymous.status == 303)
        #expect(anonymous.header("location") == "/console/login")
        #expect(try await post("/console/logout", "", cookie: cookie).status == 403)
        #expect(try await relay.deadLetterCount() == 3)

        // The same form with the session's token does replay: the refusals above were the token's.
        let page = try await http.execute(
            HTTPRequest(
                method: "GET",
                url: base + "/console",
                headers: [(name: "Cookie", value: "relay_console=\(cookie)")]
            )
        )
        #expect(page.status == 200)
        let html = String(decoding: page.body, as: UTF8.self)
        let csrf = try #require(
            html.firstMatch(of: /name="csrf" value="([0-9a-f]{64})"/).map { String($0.1) }
        )
        let accepted = try await post("/console/dead-letters/replay", replay + "&csrf=\(csrf)", cookie: cookie)
        // Accepted: it runs in the background, on a page of its own.
        #expect(accepted.status == 303)
        #expect(accepted.header("location")?.hasPrefix("/console/jobs/") == true)
        try await eventually { (try? await relay.deadLetterCount()) == 2 }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
