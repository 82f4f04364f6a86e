import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RelayCore
import RelayService
import RelayStore

/// The operator console, served by the admin API under `/console`: sign in with the admin token (it
/// becomes a session cookie, never part of a URL), then look at and act on what the CLI shows.
/// Server-rendered HTML, no script; every form that changes something carries the session's CSRF
/// token, and nothing on a page is more than a log line may hold unless the operator reveals it.
struct ConsoleRoutes: Sendable {
    let token: AdminToken
    let sessions: ConsoleSessions
    let deadLetters: DeadLetterQueue
    let maxBodyBytes: Int
    let logger: Logger

    func register(on router: Router<BasicRequestContext>) {
        router.get("console/login") { _, _ in Self.html(.ok, loginPage(error: nil)) }
        router.post("console/login") { request, _ in try await login(request) }
        router.post("console/logout") { request, _ in try await signedInForm(request) { _, _ in logout(request) } }
        router.get("console") { request, _ in try await signedIn(request) { session in try await overview(session) } }
        router.get("console/dead-letters") { request, _ in
            try await signedIn(request) { session in try await deadLetterList(request, session) }
        }
        router.get("console/dead-letters/{id}") { request, context in
            let id = try context.parameters.require("id")
            return try await signedIn(request) { session in try await deadLetterPage(id: id, request, session) }
        }
        router.post("console/dead-letters/replay") { request, _ in
            try await signedInForm(request) { form, session in try await replay(form, session) }
        }
    }

    // MARK: Signing in and out

    private func loginPage(error: String?) -> String {
        HTMLPage.layout(
            title: "Sign in",
            signedIn: false,
            body: """
                \(error.map { "<p class=\"error\" id=\"login-error\">\(HTMLPage.escape($0))</p>" } ?? "")
                <form method="post" action="/console/login">
                <label>Admin token <input id="token" name="token" type="password" autocomplete="current-password"></label>
                <button id="sign-in" type="submit">Sign in</button>
                </form>
                <p class="note">The admin token (admin.token) opens a session of
                \(Int(sessions.lifetime.components.seconds / 3600)) hours in this browser.</p>
                """
        )
    }

    private func login(_ request: Request) async throws -> Response {
        let form = try await FormBody.read(request, maxBytes: maxBodyBytes)
        guard let presented = form["token"], token.matches(presented) else {
            logger.notice("console sign-in refused")
            return Self.html(.unauthorized, loginPage(error: "That is not the admin token."))
        }
        let (id, _) = sessions.open()
        logger.notice("console signed in")
        let lifetime = sessions.lifetime.components.seconds
        return Response(
            status: .seeOther,
            headers: [
                .location: "/console",
                .setCookie:
                    "\(ConsoleSessions.cookieName)=\(id); Path=/console; Max-Age=\(lifetime); HttpOnly; SameSite=Strict",
            ]
        )
    }

    private func logout(_ request: Request) -> Response {
        sessions.close(cookie: Self.cookie(request))
        logger.notice("console signed out")
        return Response(
            status: .seeOther,
            headers: [
                .location: "/console/login",
                .setCookie: "\(ConsoleSessions.cookieName)=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict",
            ]
        )
    }

    /// A page for a signed-in browser; any other is sent to sign in.
    private func signedIn(
        _ request: Request,
        _ page: (ConsoleSessions.Session) async throws -> Response
    ) async throws -> Response {
        guard let session = sessions.session(cookie: Self.cookie(request)) else {
            return Response(status: .seeOther, headers: [.location: "/console/login"])
        }
        return try await page(session)
    }

    /// A form that changes something: a signed-in browser, and the session's CSRF token in the form.
    /// Anything else changes nothing.
    private func signedInForm(
        _ request: Request,
        _ action: (FormBody, ConsoleSessions.Session) async throws -> Response
    ) async throws -> Response {
        guard let session = sessions.session(cookie: Self.cookie(request)) else {
            return Response(status: .seeOther, headers: [.location: "/console/login"])
        }
        let form = try await FormBody.read(request, maxBytes: maxBodyBytes)
        guard ConsoleSessions.same(form["csrf"], session.csrfToken) else {
            logger.warning("console form refused: its CSRF token is missing or wrong")
            return Self.html(
                .forbidden,
                HTMLPage.layout(
                    title: "Refused",
                    signedIn: true,
                    csrfToken: session.csrfToken,
                    body:
                        "<p class=\"error\" id=\"csrf-refused\">This form is not from this session; nothing changed.</p>"
                )
            )
        }
        return try await action(form, session)
    }

    static func cookie(_ request: Request) -> String? {
        guard let header = request.headers[.cookie] else { return nil }
        for pair in header.split(separator: ";") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == ConsoleSessions.cookieName { return String(parts[1]) }
        }
        return nil
    }

    static func html(_ status: HTTPResponse.Status, _ page: String) -> Response {
        Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                HTTPField.Name("Content-Security-Policy")!: "default-src 'self'; style-src 'unsafe-inline'",
                HTTPField.Name("X-Frame-Options")!: "DENY",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: page))
        )
    }

    // MARK: Pages

    private func overview(_ session: ConsoleSessions.Session) async throws -> Response {
        var body = ""
        do {
            let summary = try await deadLetters.summary(DeadLetterFilter())
            let rows = summary.byReason.sorted { $0.key < $1.key }.map { reason, count in
                "<tr><td><a href=\"/console/dead-letters?reason=\(HTMLPage.escape(reason))\">\(HTMLPage.escape(reason))</a></td><td>\(count)</td></tr>"
            }
            body += """
                <h2>Dead letters</h2>
                <p id="dead-letter-total">\(summary.total) open</p>
                <table><tr><th>reason</th><th>open</th></tr>\(rows.joined())</table>
                """
        } catch {
            body += "<p class=\"error\">The dead letters cannot be read: \(HTMLPage.escape(error.message))</p>"
        }
        return Self.html(
            .ok,
            HTMLPage.layout(title: "Overview", signedIn: true, csrfToken: session.csrfToken, body: body)
        )
    }

    private func deadLetterList(_ request: Request, _ session: ConsoleSessions.Session) async throws -> Response {
        let query = request.uri.queryParameters
        let reason = query.get("reason").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
        let callId = query.get("callId").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
        var body = filterForm(reason: reason, callId: callId)
        let filter: DeadLetterFilter
        do {
            filter = try Self.filter(reason: reason, callId: callId, limit: 200)
        } catch {
            body += "<p class=\"error\">\(HTMLPage.escape("\(error)"))</p>"
            return Self.html(
                .badRequest,
                HTMLPage.layout(title: "Dead letters", signedIn: true, csrfToken: session.csrfToken, body: body)
            )
        }
        let letters: [DeadLetter]
        do {
            letters = try await deadLetters.list(filter).letters
        } catch {
            body += "<p class=\"error\">The dead letters cannot be read: \(HTMLPage.escape(error.message))</p>"
            return Self.html(
                .serviceUnavailable,
                HTMLPage.layout(title: "Dead letters", signedIn: true, csrfToken: session.csrfToken, body: body)
            )
        }
        let now = Date()
        let rows = letters.map { letter in
            """
            <tr class="dead-letter"><td><a href="/console/dead-letters/\(HTMLPage.escape(letter.id))">\(HTMLPage.escape(letter.id))</a></td>\
            <td class="reason">\(HTMLPage.escape(letter.reason))</td>\
            <td>\(letter.age(now: now).map { DeadLetterText.age($0) } ?? "")</td>\
            <td>\(HTMLPage.escape(letter.callId.map { Masking.mask($0) } ?? "-"))</td>\
            <td>\(HTMLPage.escape(String(letter.lastError.prefix(120))))</td></tr>
            """
        }
        body += """
            <p id="shown">\(letters.count) shown</p>
            <table><tr><th>id</th><th>reason</th><th>age</th><th>call</th><th>last error</th></tr>\(rows.joined())</table>
            <form method="post" action="/console/dead-letters/replay">
            \(HTMLPage.hidden("csrf", session.csrfToken))\(HTMLPage.hidden("reason", reason ?? ""))\
            \(HTMLPage.hidden("callId", callId ?? ""))
            <button id="replay-filtered" type="submit">Replay these…</button>
            </form>
            """
        return Self.html(
            .ok,
            HTMLPage.layout(title: "Dead letters", signedIn: true, csrfToken: session.csrfToken, body: body)
        )
    }

    /// The console's selections, checked as the CLI's and the API's are.
    static func filter(
        reason: String?,
        callId: String?,
        ids: [String] = [],
        limit: Int? = nil
    ) throws
        -> DeadLetterFilter
    {
        try DeadLetterFilter(
            checkingReasons: reason.map { [$0] } ?? [],
            since: nil,
            until: nil,
            callId: callId,
            ids: ids,
            limit: limit,
            now: Date()
        )
    }

    private func filterForm(reason: String?, callId: String?) -> String {
        let options = ([""] + DeadLetterReason.allCases.map(\.rawValue)).map { value in
            let selected = value == (reason ?? "") ? " selected" : ""
            return
                "<option value=\"\(HTMLPage.escape(value))\"\(selected)>\(value.isEmpty ? "any reason" : HTMLPage.escape(value))</option>"
        }
        return """
            <form method="get" action="/console/dead-letters">
            <label>Reason <select id="reason" name="reason">\(options.joined())</select></label>
            <label>Call id <input id="call-id" name="callId" value="\(HTMLPage.escape(callId ?? ""))"></label>
            <button id="filter" type="submit">Filter</button>
            </form>
            """
    }

    private func deadLetterPage(
        id: String,
        _ request: Request,
        _ session: ConsoleSessions.Session
    ) async throws
        -> Response
    {
        let reveal = request.uri.queryParameters.get("reveal") == "true"
        let found: DeadLetter?
        do {
            found = try await deadLetters.letter(id: id)
        } catch {
            return Self.html(
                .serviceUnavailable,
                HTMLPage.layout(
                    title: "Dead letter",
                    signedIn: true,
                    csrfToken: session.csrfToken,
                    body: "<p class=\"error\">The dead letters cannot be read: \(HTMLPage.escape(error.message))</p>"
                )
            )
        }
        guard let letter = found else {
            return Self.html(
                .notFound,
                HTMLPage.layout(
                    title: "Dead letter",
                    signedIn: true,
                    csrfToken: session.csrfToken,
                    body: "<p class=\"error\">No dead letter has this id.</p>"
                )
            )
        }
        if reveal {
            logger.notice(
                "dead letter payload revealed in the console",
                metadata: [LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)"]
            )
        }
        func time(_ date: Date?) -> String { date.map { RFC3339.format($0) } ?? "unknown" }
        let fields: [(String, String)] = [
            ("id", letter.id), ("reason", letter.reason), ("state", letter.state.rawValue),
            ("call id", reveal ? (letter.callId ?? "-") : (letter.callId.map { Masking.mask($0) } ?? "-")),
            ("event type", letter.eventType ?? "-"), ("event id", letter.eventId ?? "-"),
            ("attempts", letter.attempts.map(String.init) ?? "unknown"), ("replays", String(letter.replayCount)),
            ("first failure", time(letter.firstFailureAt)), ("last failure", time(letter.lastFailureAt)),
            ("last error", letter.lastError),
            ("replayable", letter.isReplayable ? "yes" : "no: \(letter.notReplayableReason ?? "")"),
        ]
        let rows = fields.map { "<tr><th>\(HTMLPage.escape($0.0))</th><td>\(HTMLPage.escape($0.1))</td></tr>" }
        let payload: String
        if letter.payloadIsSealed {
            payload = "not opened: \(letter.sealedPayloadReason)"
        } else if reveal {
            payload = String(decoding: letter.payload, as: UTF8.self)
        } else {
            payload = ConsoleMasking.maskedPayload(letter.payload)
        }
        let body = """
            <table id="fields">\(rows.joined())</table>
            <h2>Payload</h2>
            <pre id="payload">\(HTMLPage.escape(payload))</pre>
            \(reveal ? "<p class=\"note\">Personal data shown; this view was logged.</p>" : "<p><a id=\"reveal\" href=\"/console/dead-letters/\(HTMLPage.escape(letter.id))?reveal=true\">Reveal personal data</a> (logged)</p>")
            <form method="post" action="/console/dead-letters/replay">
            \(HTMLPage.hidden("csrf", session.csrfToken))\(HTMLPage.hidden("id", letter.id))
            <button id="replay-one" type="submit">Replay…</button>
            </form>
            """
        return Self.html(
            .ok,
            HTMLPage.layout(title: "Dead letter", signedIn: true, csrfToken: session.csrfToken, body: body)
        )
    }

    /// Replay in two steps: the count first (a dry run), then, confirmed, the replay and its summary.
    private func replay(_ form: FormBody, _ session: ConsoleSessions.Session) async throws -> Response {
        let ids = form.all("id").filter { !$0.isEmpty }
        let reason = form["reason"].flatMap { $0.isEmpty ? nil : $0 }
        let callId = form["callId"].flatMap { $0.isEmpty ? nil : $0 }
        let confirmed = form["confirm"] == "yes"
        func page(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Self.html(
                status,
                HTMLPage.layout(title: "Replay", signedIn: true, csrfToken: session.csrfToken, body: body)
            )
        }
        let filter: DeadLetterFilter
        do {
            filter = try Self.filter(reason: reason, callId: callId, ids: ids)
        } catch {
            return page(.badRequest, "<p class=\"error\">\(HTMLPage.escape("\(error)"))</p>")
        }
        guard !filter.selectsEverything else {
            return page(
                .badRequest,
                "<p class=\"error\">Choose a reason, a call or a dead letter first; the console never replays everything at once.</p>"
            )
        }
        let report: DeadLetterReport
        do {
            report = try await deadLetters.replay(filter, dryRun: !confirmed, rate: nil, resetAttempts: false)
        } catch {
            return page(
                .serviceUnavailable,
                "<p class=\"error\">Nothing replayed: \(HTMLPage.escape(error.message))</p>"
            )
        }
        if confirmed {
            logger.notice(
                "dead letters replayed through the console",
                metadata: [
                    LogKeys.deadLetterSucceeded: "\(report.succeeded)", LogKeys.deadLetterFailed: "\(report.failed)",
                ]
            )
            return page(
                report.hasFailures ? HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status") : .ok,
                """
                <p id="replay-summary">\(HTMLPage.escape(report.summary))</p>
                <p><a href="/console/dead-letters">Back to the dead letters</a></p>
                """
            )
        }
        let wouldReplay = report.outcomes.count(where: \.isWouldBe)
        let carried =
            ids.map { HTMLPage.hidden("id", $0) }.joined() + HTMLPage.hidden("reason", reason ?? "")
            + HTMLPage.hidden("callId", callId ?? "")
        return page(
            .ok,
            """
            <p id="replay-count">\(wouldReplay) dead letter\(wouldReplay == 1 ? "" : "s") would be replayed\
            \(report.failed > 0 ? "; \(report.failed) cannot be" : "").</p>
            <form method="post" action="/console/dead-letters/replay">
            \(HTMLPage.hidden("csrf", session.csrfToken))\(carried)\(HTMLPage.hidden("confirm", "yes"))
            <button id="confirm-replay" type="submit">Replay \(wouldReplay)</button>
            <a href="/console/dead-letters">Cancel</a>
            </form>
            """
        )
    }
}
