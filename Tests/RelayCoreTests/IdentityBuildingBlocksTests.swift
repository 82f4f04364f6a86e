import Foundation
import RelayCore
import Testing

@Suite("Email addresses")
struct EmailAddressTests {
    @Test(
        "trims, drops mailto:, lower-cases the domain only",
        arguments: [
            (" John.Doe@Example.COM ", "John.Doe@example.com"), ("mailto:a@b.example", "a@b.example"),
            ("x+tag@sub.Example.org", "x+tag@sub.example.org"),
        ]
    )
    func normalises(raw: String, expected: String) {
        #expect(EmailAddress(normalizing: raw)?.normalized == expected)
    }

    @Test(
        "rejects what is not an address",
        arguments: [
            "", "john", "@example.com", "john@", "john@localhost", "a b@c.d", "a@b..c", "a@@b.c", "<a@b.c>", "a@b.c.",
        ]
    )
    func rejects(raw: String) {
        #expect(EmailAddress(normalizing: raw) == nil)
    }
}

@Suite("Circuit breaker")
struct CircuitBreakerTests {
    let t0 = Date(timeIntervalSince1970: 1_795_514_400)

    @Test("opens after consecutive failures, refuses until its time, probes once, closes on success")
    func lifecycle() {
        var breaker = CircuitBreaker(failureThreshold: 3, openDuration: .seconds(30))
        for _ in 0..<2 {
            #expect(breaker.permit(now: t0) == .allowed)
            breaker.recordFailure(now: t0)
        }
        #expect(breaker.state == .closed(consecutiveFailures: 2))
        breaker.recordSuccess()  // a success in between resets the count
        for _ in 0..<3 { breaker.recordFailure(now: t0) }
        #expect(breaker.state == .open(until: t0.addingTimeInterval(30)))
        #expect(breaker.permit(now: t0.addingTimeInterval(29)) == .refused(retryAfter: t0.addingTimeInterval(30)))
        #expect(breaker.permit(now: t0.addingTimeInterval(30)) == .probe)
        // While the probe is out, nobody else goes through.
        if case .refused = breaker.permit(now: t0.addingTimeInterval(30)) {
        } else {
            Issue.record("a second probe went through")
        }
        breaker.recordSuccess()
        #expect(breaker.state == .closed(consecutiveFailures: 0))
        #expect(breaker.permit(now: t0.addingTimeInterval(31)) == .allowed)
    }

    @Test("a failed probe opens it again for a full period")
    func failedProbe() {
        var breaker = CircuitBreaker(failureThreshold: 1, openDuration: .seconds(10))
        breaker.recordFailure(now: t0)
        #expect(breaker.permit(now: t0.addingTimeInterval(10)) == .probe)
        breaker.recordFailure(now: t0.addingTimeInterval(10))
        #expect(breaker.state == .open(until: t0.addingTimeInterval(20)))
    }
}

@Suite("JSON pointers")
struct JSONPointerTests {
    let document = try! JSONSerialization.jsonObject(
        with: Data(
            #"{"records":[{"Id":"003A","Account":{"Id":42},"Active":true,"a/b":"slash","m~n":"tilde"}],"totalSize":1,"none":null}"#
                .utf8
        )
    )

    @Test(
        "resolves object members, array indexes and escaped tokens",
        arguments: [
            ("/records/0/Id", "003A"), ("/records/0/Account/Id", "42"), ("/totalSize", "1"),
            ("/records/0/Active", "true"),
            ("/records/0/a~1b", "slash"), ("/records/0/m~0n", "tilde"),
        ]
    )
    func resolves(pointer: String, value: String) throws {
        #expect(try #require(JSONPointer(pointer)).string(in: document) == value)
    }

    @Test(
        "gives nil for missing members, bad indexes, null and containers",
        arguments: [
            "/records/1/Id", "/records/-1", "/records/01/Id", "/nope", "/none", "/records", "/records/0/Account",
        ]
    )
    func missing(pointer: String) throws {
        #expect(try #require(JSONPointer(pointer)).string(in: document) == nil)
    }

    @Test("rejects text that is not a pointer, and prints what it parsed")
    func syntax() {
        #expect(JSONPointer("records/0") == nil)
        #expect(JSONPointer("")?.tokens == [])
        #expect(JSONPointer("/a~1b/c~0d")?.description == "/a~1b/c~0d")
    }
}
