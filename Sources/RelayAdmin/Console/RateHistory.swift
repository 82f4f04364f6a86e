import Foundation
import Synchronization

/// Events and sends per second over the last 15 minutes, for the console's overview: running totals
/// read every 10 seconds, in memory (a restart starts a new history).
final class RateHistory: Sendable {
    struct Point: Sendable, Hashable {
        var at: Date
        var eventsPerSecond: Double
        var sendsPerSecond: Double
    }

    private struct Sample {
        var at: Date
        var events: Int
        var sends: Int
    }

    let interval: Duration
    let capacity: Int
    private let samples = Mutex<[Sample]>([])

    init(interval: Duration = .seconds(10), window: Duration = .seconds(900)) {
        self.interval = interval
        capacity = Int(window / interval) + 1
    }

    /// Totals as counted at `at`.
    func record(events: Int, sends: Int, at: Date) {
        samples.withLock { samples in
            samples.append(Sample(at: at, events: events, sends: sends))
            if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
        }
    }

    /// The rate over each interval of the window, oldest first.
    func points() -> [Point] {
        let samples = self.samples.withLock { $0 }
        return zip(samples, samples.dropFirst()).compactMap { earlier, later in
            let seconds = later.at.timeIntervalSince(earlier.at)
            guard seconds > 0 else { return nil }
            return Point(
                at: later.at,
                // A restarted counter (a new process behind the same history) reads as no traffic.
                eventsPerSecond: Double(max(0, later.events - earlier.events)) / seconds,
                sendsPerSecond: Double(max(0, later.sends - earlier.sends)) / seconds
            )
        }
    }

    /// Reads the totals every `interval` until cancelled.
    func sampleUntilCancelled(_ totals: @Sendable () -> (events: Int, sends: Int)) async {
        while !Task.isCancelled {
            let now = totals()
            record(events: now.events, sends: now.sends, at: Date())
            try? await Task.sleep(for: interval)
        }
    }
}

/// The overview's chart: two rates as polylines in a small SVG, drawn on the server.
enum RateChart {
    static let width = 600.0
    static let height = 120.0

    static func svg(_ points: [RateHistory.Point]) -> String {
        guard points.count >= 2 else {
            return "<p class=\"note\" id=\"rate-chart\">Rates appear after the first 20 seconds.</p>"
        }
        let top = max(1, points.map { max($0.eventsPerSecond, $0.sendsPerSecond) }.max() ?? 1)
        let first = points[0].at
        let span = max(1, points[points.count - 1].at.timeIntervalSince(first))
        func line(_ value: (RateHistory.Point) -> Double) -> String {
            points.map { point in
                let x = point.at.timeIntervalSince(first) / span * width
                let y = height - value(point) / top * height
                return String(format: "%.1f,%.1f", x, y)
            }.joined(separator: " ")
        }
        let minutes = Int((span / 60).rounded())
        return """
            <svg id="rate-chart" width="\(Int(width))" height="\(Int(height) + 20)" viewBox="0 0 \(Int(width)) \(Int(height) + 20)" role="img" \
            aria-label="events and sends per second over the last \(minutes) minutes">
            <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#fafafa" stroke="#ddd"/>
            <polyline fill="none" stroke="#1f6feb" stroke-width="2" points="\(line(\.eventsPerSecond))"/>
            <polyline fill="none" stroke="#d97706" stroke-width="2" points="\(line(\.sendsPerSecond))"/>
            <text x="4" y="12" font-size="11">\(String(format: "%.0f", top))/s</text>
            <text x="4" y="\(Int(height) + 15)" font-size="11" fill="#1f6feb">events/s</text>
            <text x="70" y="\(Int(height) + 15)" font-size="11" fill="#d97706">sends/s</text>
            <text x="\(Int(width) - 90)" y="\(Int(height) + 15)" font-size="11">last \(minutes) min</text>
            </svg>
            """
    }
}
