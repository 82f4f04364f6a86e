import Foundation
import HTTPTypes
import Hummingbird
import Logging
import RelayCore
import RelayService
import RelayStore

/// The outbox in the console: what waits or fails (`deliveries list`), and "retry now" (`deliveries
/// retry`).
extension ConsoleRoutes {
    func deliveryList(_ request: Request, _ session: ConsoleSessions.Session) async throws -> Response {
        let query = request.uri.queryParameters
        let failing = query.get("state") == "failing"
        let now = Date()
        var body = """
            <p><a href="/console/deliveries">Pending</a> · <a href="/console/deliveries?state=failing">Failing</a></p>
            """
        do {
            let summary = try await store.outboxSummary(now: now)
            let kinds = summary.kinds.sorted { $0.key < $1.key }.map { kind, counts in
                let oldest = counts.oldestCreatedAt.map { DeadLetterText.age(max(0, now.timeIntervalSince($0))) } ?? "-"
                return """
                    <tr class="outbox-kind"><td>\(HTMLPage.escape(kind))</td><td>\(counts.pending)</td>\
                    <td>\(counts.due)</td><td>\(counts.retrying)</td><td>\(oldest)</td></tr>
                    """
            }
            body += """
                <table id="outbox-summary"><tr><th>kind</th><th>pending</th><th>due</th><th>retries scheduled</th>\
                <th>oldest pending</th></tr>\(kinds.joined())</table>
                """
            let entries = try await store.outboxEntries(OutboxQuery(state: failing ? .failing : .pending, limit: 200))
            let rows = entries.map { entry in
                let view = OutboxEntryView(entry, now: now)
                return """
                    <tr class="delivery"><td>\(view.id)</td><td>\(HTMLPage.escape(view.job))</td>\
                    <td>\(HTMLPage.escape(view.target))</td><td>\(HTMLPage.escape(Masking.mask(view.callId)))</td>\
                    <td class="state">\(HTMLPage.escape(view.state))</td><td>\(view.attempts)</td>\
                    <td>\(RFC3339.format(view.dueAt))</td><td>\(HTMLPage.escape(String((view.lastError ?? "").prefix(120))))</td>\
                    <td><form method="post" action="/console/deliveries/retry" class="inline">\
                    \(HTMLPage.hidden("csrf", session.csrfToken))\(HTMLPage.hidden("id", String(view.id)))\
                    <button class="retry" type="submit">Retry now</button></form></td></tr>
                    """
            }
            body += """
                <p id="delivery-count">\(entries.count) \(failing ? "failing" : "pending")</p>
                <table><tr><th>id</th><th>job</th><th>target</th><th>call</th><th>state</th><th>attempts</th>\
                <th>next due</th><th>last error</th><th></th></tr>\(rows.joined())</table>
                """
        } catch {
            body += "<p class=\"error\">The store cannot be read: \(HTMLPage.escape("\(error)"))</p>"
            return Self.page(.serviceUnavailable, title: "Deliveries", session: session, body: body)
        }
        return Self.page(.ok, title: "Deliveries", session: session, body: body)
    }

    func retryDelivery(_ form: FormBody, _ session: ConsoleSessions.Session) async throws -> Response {
        let ids = form.all("id").compactMap { Int64($0) }
        func page(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Self.page(status, title: "Retry", session: session, body: body)
        }
        guard !ids.isEmpty else { return page(.badRequest, "<p class=\"error\">No outbox entry was named.</p>") }
        do {
            let report = try await OutboxRetry(store: store).run(.ids(ids), dryRun: false)
            logger.notice("outbox entries made due through the console", metadata: [LogKeys.outboxId: "\(ids)"])
            return page(
                .ok,
                """
                <p id="retry-summary">\(HTMLPage.escape(report.summary))</p>
                <p><a href="/console/deliveries">Back to the deliveries</a></p>
                """
            )
        } catch {
            return page(.serviceUnavailable, "<p class=\"error\">Nothing changed: \(HTMLPage.escape("\(error)"))</p>")
        }
    }
}
