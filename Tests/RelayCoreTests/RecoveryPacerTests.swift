import Foundation
import RelayCore
import Testing

@Suite("Recovery pacer")
struct RecoveryPacerTests {
    let t0 = Date(timeIntervalSince1970: 1_795_514_400)

    @Test("a second's worth at once, then one turn per 1/rate; what waits is told how long")
    func bucket() throws {
        var pacer = RecoveryPacer(ratePerSecond: 4)
        for _ in 0..<4 {
            let turn = pacer.take(now: t0)
            #expect(turn == .now)
        }
        let fifth = pacer.take(now: t0)
        guard case .later(let wait) = fifth else {
            Issue.record("expected a later turn, got \(fifth)")
            return
        }
        #expect(abs(wait.totalSeconds - 0.25) < 1e-9)
        let afterTheWait = pacer.take(now: t0.addingTimeInterval(0.25))
        #expect(afterTheWait == .now)
        let atOnceAgain = pacer.take(now: t0.addingTimeInterval(0.25))
        #expect(atOnceAgain != .now)
    }

    @Test("over a long backlog the rate holds: 100 turns take at least (100 - burst) / rate seconds")
    func rate() {
        var pacer = RecoveryPacer(ratePerSecond: 10)
        var now = t0
        var granted = 0
        while granted < 100 {
            switch pacer.take(now: now) {
            case .now: granted += 1
            case .later(let wait): now = now.addingTimeInterval(wait.totalSeconds)
            case .reserved: Issue.record("nothing reserves without reserveWithin")
            }
        }
        #expect(now.timeIntervalSince(t0) >= 8.99)
    }

    @Test("idle time refills no more than one second's worth")
    func capacity() {
        var pacer = RecoveryPacer(ratePerSecond: 3)
        _ = pacer.take(now: t0)
        let later = t0.addingTimeInterval(3600)
        for _ in 0..<3 {
            let turn = pacer.take(now: later)
            #expect(turn == .now)
        }
        let fourth = pacer.take(now: later)
        #expect(fourth != .now)
    }

    @Test("waiters within the reservation window get successive turns, not the same one")
    func reservations() {
        var pacer = RecoveryPacer(ratePerSecond: 10)
        for _ in 0..<10 { _ = pacer.take(now: t0) }
        var waits: [Double] = []
        for _ in 0..<3 {
            if case .reserved(let wait) = pacer.take(now: t0, reserveWithin: .milliseconds(250)) {
                waits.append(wait.totalSeconds)
            }
        }
        #expect(waits.count == 2, "0.1 s and 0.2 s are within the window; 0.3 s is not")
        #expect(abs(waits[0] - 0.1) < 1e-9 && abs(waits[1] - 0.2) < 1e-9)
    }
}
