import Foundation
import HTTPTypes
import Hummingbird
import Logging
import RelayAMQP
import RelayCore
import RelayService
import RelayStore

/// The dead letters in the console: the table with its filter, one record, and replay or purge with
/// the count first.
extension ConsoleRoutes {
    /// `GET …?reason=` (a link from the overview), or the filter form posted: a call id is personal
    /// enough to stay out of URLs, browser history and proxy logs.
    func deadLetterList(_ selection: Selection, _ session: ConsoleSessions.Session) async throws -> Response {
        var body = filterForm(selection, session)
        let filter: DeadLetterFilter
        do {
            filter = try Self.filter(selection, limit: 200)
        } catch {
            body += "<p class=\"error\">\(HTMLPage.escape("\(error)"))</p>"
            return Self.page(.badRequest, title: "Dead letters", session: session, body: body)
        }
        let letters: [DeadLetter]
        do {
            letters = try await deadLetters.list(filter).letters
        } catch {
            body += "<p class=\"error\">The dead letters cannot be read: \(HTMLPage.escape(error.message))</p>"
            return Self.page(.serviceUnavailable, title: "Dead letters", session: session, body: body)
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
            \(HTMLPage.hidden("csrf", session.csrfToken))\(selection.hiddenFields)
            <button id="replay-filtered" type="submit">Replay these…</button>
            <button id="purge-filtered" type="submit" formaction="/console/dead-letters/purge">Purge these…</button>
            </form>
            """
        return Self.page(.ok, title: "Dead letters", session: session, body: body)
    }

    /// The console's selections, checked as the CLI's and the API's are.
    static func filter(_ selection: Selection, limit: Int? = nil) throws -> DeadLetterFilter {
        try DeadLetterFilter(
            checkingReasons: selection.reason.map { [$0] } ?? [],
            since: selection.since,
            until: selection.until,
            callId: selection.callId,
            ids: selection.ids,
            limit: limit,
            now: Date()
        )
    }

    func filterForm(_ selection: Selection, _ session: ConsoleSessions.Session) -> String {
        let options = ([""] + DeadLetterReason.allCases.map(\.rawValue)).map { value in
            let selected = value == (selection.reason ?? "") ? " selected" : ""
            return
                "<option value=\"\(HTMLPage.escape(value))\"\(selected)>\(value.isEmpty ? "any reason" : HTMLPage.escape(value))</option>"
        }
        return """
            <form method="post" action="/console/dead-letters">
            \(HTMLPage.hidden("csrf", session.csrfToken))
            <label>Reason <select id="reason" name="reason">\(options.joined())</select></label>
            <label>Call id <input id="call-id" name="callId" value="\(HTMLPage.escape(selection.callId ?? ""))"></label>
            <label>Since <input id="since" name="since" size="12" placeholder="2h, 2026-05-01" \
            value="\(HTMLPage.escape(selection.since ?? ""))"></label>
            <label>Until <input id="until" name="until" size="12" placeholder="30m, RFC 3339" \
            value="\(HTMLPage.escape(selection.until ?? ""))"></label>
            <button id="filter" type="submit">Filter</button>
            </form>
            """
    }

    func deadLetterPage(
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
            return Self.page(
                .serviceUnavailable,
                title: "Dead letter",
                session: session,
                body: "<p class=\"error\">The dead letters cannot be read: \(HTMLPage.escape(error.message))</p>"
            )
        }
        guard let letter = found else {
            return Self.page(
                .notFound,
                title: "Dead letter",
                session: session,
                body: "<p class=\"error\">No dead letter has this id.</p>"
            )
        }
        if reveal {
            logger.notice(
                "dead letter payload revealed in the console",
                metadata: [LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)"]
            )
        }
        func time(_ date: Date?) -> String { date.map { RFC3339.format($0) } ?? "unknown" }
        var fields: [(String, String)] = [
            ("id", letter.id), ("reason", letter.reason), ("state", letter.state.rawValue),
            ("call id", reveal ? (letter.callId ?? "-") : (letter.callId.map { Masking.mask($0) } ?? "-")),
            ("event type", letter.eventType ?? "-"), ("event id", letter.eventId ?? "-"),
            ("attempts", letter.attempts.map(String.init) ?? "unknown"), ("replays", String(letter.replayCount)),
            ("first failure", time(letter.firstFailureAt)), ("last failure", time(letter.lastFailureAt)),
            ("last error", letter.lastError),
            ("replayable", letter.isReplayable ? "yes" : "no: \(letter.notReplayableReason ?? "")"),
        ]
        if let target = letter.target {
            // The path ends in the customer's external id: masked as the log masks it.
            let url = reveal ? target.url : DeadLetterText.maskingLastPathComponent(target.url)
            fields.append(
                ("target", "\(target.method) \(url)" + (target.lastStatus.map { " (last status \($0))" } ?? ""))
            )
        }
        if letter.copies > 1 { fields.append(("copies", "\(letter.copies) messages carried this id")) }
        if letter.state != .open, let note = letter.note { fields.append(("note", note)) }
        // What the broker wrote when it dead-lettered the message itself: its death history.
        for (name, value) in letter.headers.sorted(by: { $0.key < $1.key })
        where DeadLetter.brokerHeaderPrefixes.contains(where: { name.hasPrefix($0) }) {
            fields.append((name, value.description))
        }
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
            <button id="purge-one" type="submit" formaction="/console/dead-letters/purge">Purge…</button>
            </form>
            """
        return Self.page(.ok, title: "Dead letter", session: session, body: body)
    }

    /// Replay or purge in two steps: the count first (a dry run), then, confirmed, the operation and
    /// its summary.
    func bulk(
        _ operation: DeadLetterOperation,
        _ form: FormBody,
        _ session: ConsoleSessions.Session
    ) async throws -> Response {
        let selection = Selection(form)
        let confirmed = form["confirm"] == "yes"
        let verb = operation == .replay ? "replay" : "purge"
        let title = operation == .replay ? "Replay" : "Purge"
        let done = operation == .replay ? "replayed" : "purged"
        func page(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Self.page(status, title: title, session: session, body: body)
        }
        let filter: DeadLetterFilter
        do {
            filter = try Self.filter(selection)
        } catch {
            return page(.badRequest, "<p class=\"error\">\(HTMLPage.escape("\(error)"))</p>")
        }
        guard !filter.selectsEverything else {
            return page(
                .badRequest,
                "<p class=\"error\">Choose a reason, a call or a dead letter first; the console never does this to every dead letter at once.</p>"
            )
        }
        let deadLetters = self.deadLetters
        if confirmed {
            // Confirmed: it runs in the background, and the browser follows it on the job's page.
            let logger = self.logger
            let job = jobs.start(operation) { progress in
                let report: DeadLetterReport
                switch operation {
                case .replay:
                    report = try await deadLetters.replay(filter, progress: progress)
                default:
                    report = try await deadLetters.purge(filter, progress: progress)
                }
                logger.notice(
                    "dead letters \(operation.rawValue) through the console",
                    metadata: [
                        LogKeys.deadLetterSucceeded: "\(report.succeeded)",
                        LogKeys.deadLetterFailed: "\(report.failed)",
                    ]
                )
                return report
            }
            return Response(status: .seeOther, headers: [.location: "/console/jobs/\(job)"])
        }
        let report: DeadLetterReport
        do {
            switch operation {
            case .replay: report = try await deadLetters.replay(filter, dryRun: true)
            default: report = try await deadLetters.purge(filter, dryRun: true)
            }
        } catch {
            return page(
                .serviceUnavailable,
                "<p class=\"error\">Nothing changed: \(HTMLPage.escape(error.message))</p>"
            )
        }
        let wouldBe = report.outcomes.count(where: \.isWouldBe)
        let carried = selection.hiddenFields
        return page(
            .ok,
            """
            <p id="\(verb)-count">\(wouldBe) dead letter\(wouldBe == 1 ? "" : "s") would be \(done)\
            \(report.failed > 0 ? "; \(report.failed) cannot be" : "").</p>
            <form method="post" action="/console/dead-letters/\(verb)">
            \(HTMLPage.hidden("csrf", session.csrfToken))\(carried)\(HTMLPage.hidden("confirm", "yes"))
            <button id="confirm-\(verb)" type="submit">\(title) \(wouldBe)</button>
            <a href="/console/dead-letters">Cancel</a>
            </form>
            """
        )
    }

    /// A bulk action's page: its progress while it runs (the page reloads itself), then its summary.
    func jobPage(id: String, _ session: ConsoleSessions.Session) -> Response {
        guard let job = jobs.job(id) else {
            return Self.page(
                .notFound,
                title: "Job",
                session: session,
                body: "<p class=\"error\">No such job: the relay may have restarted since.</p>"
            )
        }
        let verb = job.operation == .replay ? "replay" : "purge"
        let title = job.operation == .replay ? "Replay" : "Purge"
        let body: String
        if let report = job.report {
            body = """
                <p id="\(verb)-summary">\(HTMLPage.escape(report.summary))</p>
                <p><a href="/console/dead-letters">Back to the dead letters</a></p>
                """
        } else if let failure = job.failure {
            body = """
                <p class="error" id="\(verb)-failed">Stopped: \(HTMLPage.escape(failure)). What was done before stays done.</p>
                <p><a href="/console/dead-letters">Back to the dead letters</a></p>
                """
        } else {
            let done =
                job.progress.map {
                    "\($0.done) of \($0.total) done, \($0.succeeded) \($0.operation == .replay ? "replayed" : "purged"), \($0.failed) failed"
                } ?? "starting"
            body = "<p id=\"\(verb)-progress\">\(HTMLPage.escape(done))…</p>"
        }
        return Self.page(
            job.report?.hasFailures == true ? HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status") : .ok,
            title: title,
            session: session,
            refreshSeconds: job.isFinished ? nil : 1,
            body: body
        )
    }

    /// What the operator selected: the filter's fields, or the ids of the records named; carried from
    /// the table to the count and from the count to the confirmation in hidden fields, never in a URL.
    struct Selection: Sendable {
        var reason: String?
        var callId: String?
        var since: String?
        var until: String?
        var ids: [String] = []

        init(reason: String? = nil, callId: String? = nil, since: String? = nil, until: String? = nil) {
            func given(_ text: String?) -> String? {
                text.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
            }
            self.reason = given(reason)
            self.callId = given(callId)
            self.since = given(since)
            self.until = given(until)
        }

        init(_ form: FormBody) {
            self.init(reason: form["reason"], callId: form["callId"], since: form["since"], until: form["until"])
            ids = form.all("id").filter { !$0.isEmpty }
        }

        var hiddenFields: String {
            ids.map { HTMLPage.hidden("id", $0) }.joined() + HTMLPage.hidden("reason", reason ?? "")
                + HTMLPage.hidden("callId", callId ?? "") + HTMLPage.hidden("since", since ?? "")
                + HTMLPage.hidden("until", until ?? "")
        }
    }
}
