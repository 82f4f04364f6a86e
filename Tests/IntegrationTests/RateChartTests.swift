import Foundation
import Testing

@testable import RelayAdmin

/// The overview's traffic chart: rates from running totals, drawn as SVG on the server.
@Suite("Console rate chart")
struct RateChartTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("rates are the totals' differences over each interval; a restarted counter reads as no traffic")
    func rates() {
        let history = RateHistory(interval: .seconds(10), window: .seconds(30))
        history.record(events: 0, sends: 0, at: start)
        history.record(events: 500, sends: 100, at: start.addingTimeInterval(10))
        history.record(events: 1_500, sends: 300, at: start.addingTimeInterval(20))
        history.record(events: 20, sends: 5, at: start.addingTimeInterval(30))
        let points = history.points()
        #expect(points.map(\.eventsPerSecond) == [50, 100, 0])
        #expect(points.map(\.sendsPerSecond) == [10, 20, 0])
        // The window keeps window / interval + 1 totals: the oldest go.
        history.record(events: 120, sends: 5, at: start.addingTimeInterval(40))
        #expect(history.points().map(\.eventsPerSecond) == [100, 0, 10])
    }

    @Test("two polylines scaled to the highest rate, the scale and the span written out; too few samples say so")
    func svg() {
        let points = [
            RateHistory.Point(at: start, eventsPerSecond: 40, sendsPerSecond: 10),
            RateHistory.Point(at: start.addingTimeInterval(300), eventsPerSecond: 80, sendsPerSecond: 20),
        ]
        let svg = RateChart.svg(points)
        #expect(svg.components(separatedBy: "<polyline").count == 3)
        // The highest rate touches the top; the first point of the events line sits halfway down.
        #expect(svg.contains("points=\"0.0,60.0 600.0,0.0\""))
        #expect(svg.contains("points=\"0.0,105.0 600.0,90.0\""))
        #expect(svg.contains(">80/s<") && svg.contains("last 5 min"))
        #expect(RateChart.svg(Array(points.prefix(1))).contains("after the first 20 seconds"))
    }
}
