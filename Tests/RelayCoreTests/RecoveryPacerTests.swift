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
            #expect(turn == nil)
        }
        let fifth = pacer.take(now: t0)
        let wait = try #require(fifth)
        #expect(abs(wait.totalSeconds - 0.25) < 1e-9)
        let afterTheWait = pacer.take(now: t0.addingTimeInterval(0.25))
        #expect(afterTheWait == nil)
        let atOnceAgain = pacer.take(now: t0.addingTimeInterval(0.25))
        #expect(atOnceAgain != nil)
    }

    @Test("over a long backlog the rate holds: 100 turns take at least (100 - burst) / rate seconds")
    func rate() {
        var pacer = RecoveryPacer(ratePerSecond: 10)
        var now = t0
        var granted = 0
        while granted < 100 {
            if let wait = pacer.take(now: now) { now = now.addingTimeInterval(wait.totalSeconds) } else { granted += 1 }
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
            #expect(turn == nil)
        }
        let fourth = pacer.take(now: later)
        #expect(fourth != nil)
    }
}
