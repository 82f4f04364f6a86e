import Foundation
import RelayCore
import Testing

@Suite("Lookup setbacks: a refusal is no attempt, age bounds the wait")
struct LookupSetbackRuleTests {
    let rule = LookupSetbackRule(maxAttempts: 3, maxAge: .seconds(600))
    let t0 = Date(timeIntervalSince1970: 1_795_514_400)

    @Test("an open breaker's refusal waits for its probe and costs no attempt, however often it comes")
    func refusalIsNoAttempt() {
        for refusal in 0..<50 {
            let now = t0.addingTimeInterval(Double(refusal) * 10)
            let step = rule.next(
                after: .refused(reason: "crm circuit open", until: .seconds(10)),
                attemptsMade: 1,
                firstSetbackAt: t0,
                now: now
            )
            #expect(step == .wait(delay: .seconds(10), attempts: 1))
        }
    }

    @Test("a failed request is an attempt; the last allowed one gives up, naming the count")
    func failuresCount() {
        let failed = LookupSetbackRule.Setback.failed(error: "crm: HTTP 503", after: .seconds(2))
        #expect(
            rule.next(after: failed, attemptsMade: 0, firstSetbackAt: t0, now: t0)
                == .wait(delay: .seconds(2), attempts: 1)
        )
        #expect(
            rule.next(after: failed, attemptsMade: 1, firstSetbackAt: t0, now: t0)
                == .wait(delay: .seconds(2), attempts: 2)
        )
        #expect(
            rule.next(after: failed, attemptsMade: 2, firstSetbackAt: t0, now: t0)
                == .giveUp(error: "crm: HTTP 503 (after 3 attempts)", attempts: 3)
        )
    }

    @Test("past its age a lookup is given up, refused or failed, and the error says why")
    func age() {
        let late = t0.addingTimeInterval(595)
        let refused = rule.next(
            after: .refused(reason: "crm circuit open", until: .seconds(10)),
            attemptsMade: 1,
            firstSetbackAt: t0,
            now: late
        )
        guard case .giveUp(let error, let attempts) = refused else {
            Issue.record("expected a give-up, got \(refused)")
            return
        }
        #expect(error.contains("crm circuit open") && error.contains("10 min"))
        #expect(attempts == 1)
        let failed = rule.next(
            after: .failed(error: "crm: timeout", after: .seconds(10)),
            attemptsMade: 1,
            firstSetbackAt: t0,
            now: late
        )
        guard case .giveUp(let reason, 2) = failed else {
            Issue.record("expected a give-up after 2 attempts, got \(failed)")
            return
        }
        #expect(reason.hasPrefix("crm: timeout"))
        // Within its age, the same wait is fine.
        #expect(
            rule.next(
                after: .refused(reason: "crm circuit open", until: .seconds(4)),
                attemptsMade: 1,
                firstSetbackAt: t0,
                now: late
            )
                == .wait(delay: .seconds(4), attempts: 1)
        )
    }
}
