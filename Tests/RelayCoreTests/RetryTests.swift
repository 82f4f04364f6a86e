import Foundation
import RelayCore
import Testing

/// A seeded generator, so jittered delays are reproducible in tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Backoff with full jitter")
struct BackoffTests {
    let backoff = Backoff(baseDelay: .milliseconds(100), maxDelay: .seconds(2))

    @Test("the ceiling doubles per retry up to the maximum")
    func ceiling() {
        #expect(backoff.ceiling(forRetry: 0) == .milliseconds(100))
        #expect(backoff.ceiling(forRetry: 1) == .milliseconds(200))
        #expect(backoff.ceiling(forRetry: 3) == .milliseconds(800))
        #expect(backoff.ceiling(forRetry: 5) == .seconds(2))
        #expect(backoff.ceiling(forRetry: 500) == .seconds(2))
    }

    @Test("delays stay within [0, ceiling] and are spread over the whole window")
    func jitter() {
        var generator = SplitMix64(state: 42)
        let delays = (0..<2000).map { _ in backoff.delay(forRetry: 3, using: &generator) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(800) })
        // Full jitter: a good share of waits are short, and some are near the ceiling.
        #expect(delays.filter { $0 < .milliseconds(200) }.count > 300)
        #expect(delays.contains { $0 > .milliseconds(750) })
        var again = SplitMix64(state: 42)
        #expect(backoff.delay(forRetry: 3, using: &again) == delays[0])
    }
}

@Suite("Which delivery failures are retried")
struct RetryPolicyTests {
    let policy = RetryPolicy(
        maxAttempts: 4,
        backoff: Backoff(baseDelay: .milliseconds(100), maxDelay: .seconds(1)),
        maxRetryAfter: .seconds(60)
    )
    let now = Date(timeIntervalSince1970: 1_795_514_400)

    func decide(_ result: DeliveryAttemptResult, attempt: Int = 1) -> RetryPolicy.Decision {
        var generator = SplitMix64(state: 1)
        return policy.decide(after: result, attempt: attempt, now: now, using: &generator)
    }

    @Test("2xx is delivered")
    func success() {
        #expect(decide(.response(status: 204, retryAfter: nil, bodyExcerpt: "")) == .delivered)
    }

    @Test(
        "5xx, 408, 429 and retriable transport errors are retried within the backoff ceiling",
        arguments: [500, 502, 503, 504, 408, 429]
    )
    func retriable(status: Int) {
        guard case .retry(let delay) = decide(.response(status: status, retryAfter: nil, bodyExcerpt: ""), attempt: 2)
        else {
            Issue.record("HTTP \(status) must be retried")
            return
        }
        #expect(delay <= .milliseconds(200))
    }

    @Test("other 4xx give up at once, keeping the status and body excerpt", arguments: [400, 401, 403, 404, 409, 422])
    func permanent(status: Int) {
        #expect(
            decide(.response(status: status, retryAfter: nil, bodyExcerpt: "bad field"))
                == .giveUp(error: "HTTP \(status): bad field", status: status)
        )
    }

    @Test("Retry-After on 429 and 503 is honoured, in seconds or as an HTTP date, up to the cap")
    func retryAfter() {
        #expect(decide(.response(status: 429, retryAfter: "7", bodyExcerpt: "")) == .retry(after: .seconds(7)))
        #expect(
            decide(.response(status: 503, retryAfter: "Tue, 24 Nov 2026 10:00:30 GMT", bodyExcerpt: ""))
                == .retry(after: .seconds(30))
        )
        #expect(decide(.response(status: 503, retryAfter: "86400", bodyExcerpt: "")) == .retry(after: .seconds(60)))
        // Ignored on other statuses: a 500's Retry-After is not part of the contract.
        guard case .retry(let delay) = decide(.response(status: 500, retryAfter: "30", bodyExcerpt: "")) else {
            Issue.record("500 must be retried")
            return
        }
        #expect(delay <= .milliseconds(100))
    }

    @Test("transport failures retry only when retriable")
    func transport() {
        if case .retry = decide(.transportFailure(isRetriable: true, description: "timeout")) {
        } else {
            Issue.record("a timeout must be retried")
        }
        #expect(
            decide(.transportFailure(isRetriable: false, description: "bad url"))
                == .giveUp(error: "bad url", status: nil)
        )
    }

    @Test("the last attempt gives up with the last error")
    func exhausted() {
        #expect(
            decide(.response(status: 503, retryAfter: nil, bodyExcerpt: ""), attempt: 4)
                == .giveUp(error: "HTTP 503 (after 4 attempts)", status: 503)
        )
    }
}

@Suite("Dead-letter records")
struct DeadLetterRecordTests {
    @Test("round-trips through its JSON form, with RFC 3339 times")
    func roundTrip() throws {
        let record = DeadLetterRecord(
            id: DeadLetterRecord.stableID(reason: .deliveryFailed, source: Array("key".utf8)),
            reason: .deliveryFailed,
            callId: "c1",
            eventType: "callStarted",
            eventId: "e1",
            attempts: 5,
            firstFailureAt: Date(timeIntervalSince1970: 1_795_514_400),
            lastFailureAt: Date(timeIntervalSince1970: 1_795_514_460.5),
            lastError: "HTTP 503",
            originalPayload: Array(#"{"a":1}"#.utf8),
            origin: .init(exchange: "platform.events", routingKey: "callStarted"),
            target: .init(method: "PUT", url: "http://x/api/v2/customers/1", lastStatus: 503)
        )
        let json = String(decoding: record.encoded(), as: UTF8.self)
        #expect(json.contains(#""firstFailureAt":"2026-11-24T10:00:00.000Z""#))
        #expect(json.contains(#""reason":"deliveryFailed""#))
        #expect(try DeadLetterRecord.decode(record.encoded()) == record)
        #expect(record.originalPayload == Array(#"{"a":1}"#.utf8))
    }

    @Test("keeps a non-UTF-8 payload byte for byte, as base64")
    func binaryPayload() throws {
        let bytes: [UInt8] = [0xFF, 0xFE, 0x00, 0x41]
        let record = DeadLetterRecord(
            id: "dl_x",
            reason: .malformed,
            callId: nil,
            eventType: nil,
            eventId: nil,
            attempts: 1,
            firstFailureAt: Date(),
            lastFailureAt: Date(),
            lastError: "body is not valid JSON",
            originalPayload: bytes,
            origin: nil
        )
        #expect(record.payloadEncoding == .base64)
        #expect(try DeadLetterRecord.decode(record.encoded()).originalPayload == bytes)
    }

    @Test("the same failure gets the same id; another failure another")
    func stableIDs() {
        let a = DeadLetterRecord.stableID(reason: .malformed, source: [1, 2, 3])
        #expect(a == DeadLetterRecord.stableID(reason: .malformed, source: [1, 2, 3]))
        #expect(a != DeadLetterRecord.stableID(reason: .malformed, source: [1, 2, 4]))
        #expect(a != DeadLetterRecord.stableID(reason: .deliveryFailed, source: [1, 2, 3]))
        #expect(a.hasPrefix("dl_") && a.count == 27)
    }
}
