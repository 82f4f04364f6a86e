import Foundation
import HTTPTypes
import Hummingbird
import RelayCore
import RelayService
import RelayStore

/// The console's first page: is the relay well, and is anything waiting. It reloads itself.
extension ConsoleRoutes {
    static let overviewRefreshSeconds = 10

    func overview(_ session: ConsoleSessions.Session) async throws -> Response {
        let now = Date()
        let readiness = await app.readiness()
        func state(_ good: Bool, _ yes: String, _ no: String) -> String {
            "<td class=\"\(good ? "good" : "error")\">\(HTMLPage.escape(good ? yes : no))</td>"
        }
        var body = """
            <h2>Health</h2>
            <table id="health">
            <tr><th>broker</th>\(state(readiness.brokerConnected, "connected", "unreachable: the relay keeps trying to reconnect"))</tr>
            <tr><th>events</th>\(state(readiness.consuming, "consuming", "not consuming: events wait on the broker"))</tr>
            <tr><th>store</th>\(state(readiness.storeWritable, "writable", "not writable: \(readiness.storeError ?? "unknown error")"))</tr>
            </table>
            <h2>Traffic</h2>
            \(RateChart.svg(rates.points()))
            """
        var breakers: [(String, CircuitBreaker.State?)] = DeliverySender.targetNames.map {
            ($0, app.dispatcher.sender.breakerState($0))
        }
        if let enricher = app.enricher { breakers += enricher.upstreams.map { ($0, enricher.breakerState($0)) } }
        let breakerRows = breakers.map { name, breaker in
            let text: String
            switch breaker {
            case .open(let until): text = "open until \(RFC3339.format(until)): requests wait for its probe"
            case .halfOpen: text = "half open: one probe in flight"
            case .closed(let failures): text = failures == 0 ? "closed" : "closed (\(failures) failures in a row)"
            case nil: text = "closed"
            }
            return "<tr class=\"breaker\"><th>\(HTMLPage.escape(name))</th><td>\(HTMLPage.escape(text))</td></tr>"
        }
        body += "<h2>Upstreams</h2><table id=\"breakers\">\(breakerRows.joined())</table>"
        do {
            let outbox = try await store.outboxSummary(now: now)
            let pending = outbox.kinds.values.reduce(0) { $0 + $1.pending }
            let due = outbox.kinds.values.reduce(0) { $0 + $1.due }
            let oldest = outbox.kinds.values.compactMap(\.oldestCreatedAt).min()
            body += """
                <h2>Deliveries</h2>
                <p id="deliveries-waiting"><a href="/console/deliveries">\(pending) pending</a>, \(due) due now\
                \(oldest.map { ", oldest \(DeadLetterText.age(max(0, now.timeIntervalSince($0))))" } ?? "")</p>
                """
        } catch {
            body += "<p class=\"error\">The outbox cannot be read: \(HTMLPage.escape("\(error)"))</p>"
        }
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
        return Self.page(
            .ok,
            title: "Overview",
            session: session,
            refreshSeconds: Self.overviewRefreshSeconds,
            body: body
        )
    }
}
