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
    let app: RelayApp
    let token: AdminToken
    let sessions: ConsoleSessions
    /// Events and sends per second, for the overview's chart.
    let rates: RateHistory
    /// Bulk actions running or done, for their pages.
    let jobs: ConsoleJobs
    let deadLetters: DeadLetterQueue
    let store: any InteractionStore
    let contacts: ContactDirectory
    let defaultRegion: String
    let maxBodyBytes: Int
    let logger: Logger

    func register(on router: Router<BasicRequestContext>) {
        router.get("console/login") { _, _ in Self.html(.ok, loginPage(error: nil)) }
        router.post("console/login") { request, _ in try await login(request) }
        router.post("console/logout") { request, _ in try await signedInForm(request) { _, _ in logout(request) } }
        router.get("console") { request, _ in try await signedIn(request) { session in try await overview(session) } }
        router.get("console/dead-letters") { request, _ in
            try await signedIn(request) { session in
                try await deadLetterList(
                    Selection(reason: request.uri.queryParameters.get("reason").map { String($0) }),
                    session
                )
            }
        }
        router.post("console/dead-letters") { request, _ in
            try await signedInForm(request) { form, session in
                try await deadLetterList(Selection(form), session)
            }
        }
        router.get("console/dead-letters/{id}") { request, context in
            let id = try context.parameters.require("id")
            return try await signedIn(request) { session in try await deadLetterPage(id: id, request, session) }
        }
        router.post("console/dead-letters/replay") { request, _ in
            try await signedInForm(request) { form, session in try await bulk(.replay, form, session) }
        }
        router.post("console/dead-letters/purge") { request, _ in
            try await signedInForm(request) { form, session in try await bulk(.purge, form, session) }
        }
        router.get("console/contacts") { request, _ in
            try await signedIn(request) { session in try await contactSearch(nil, session) }
        }
        router.post("console/contacts") { request, _ in
            try await signedInForm(request) { form, session in try await contactSearch(form["q"], session) }
        }
        router.get("console/contacts/{id}") { request, context in
            let id = try context.parameters.require("id")
            return try await signedIn(request) { session in try await contactPage(id: id, request, session) }
        }
        for change in [ContactChange.promote, .merge, .unmerge] {
            router.post("console/contacts/\(change.rawValue)") { request, _ in
                try await signedInForm(request) { form, session in
                    try await changeContact(change, form, request, session)
                }
            }
        }
        router.get("console/jobs/{id}") { request, context in
            let id = try context.parameters.require("id")
            return try await signedIn(request) { session in jobPage(id: id, session) }
        }
        router.get("console/deliveries") { request, _ in
            try await signedIn(request) { session in try await deliveryList(request, session) }
        }
        router.post("console/deliveries/retry") { request, _ in
            try await signedInForm(request) { form, session in try await retryDelivery(form, session) }
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
            // A second per wrong guess: slow enough for a guesser, unnoticed by a person who mistyped.
            try? await Task.sleep(for: .seconds(1))
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
            return Self.page(
                .forbidden,
                title: "Refused",
                session: session,
                body: "<p class=\"error\" id=\"csrf-refused\">This form is not from this session; nothing changed.</p>"
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

    /// A page for a signed-in browser: the layout with its navigation and the session's logout form.
    static func page(
        _ status: HTTPResponse.Status,
        title: String,
        session: ConsoleSessions.Session,
        refreshSeconds: Int? = nil,
        body: String
    ) -> Response {
        html(
            status,
            HTMLPage.layout(
                title: title,
                signedIn: true,
                csrfToken: session.csrfToken,
                refreshSeconds: refreshSeconds,
                body: body
            )
        )
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

}
