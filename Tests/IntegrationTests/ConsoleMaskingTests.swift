import Foundation
import Testing

@testable import RelayAdmin

/// What the console shows of a dead letter's payload before anyone reveals it.
@Suite("Console masking")
struct ConsoleMaskingTests {
    @Test("strings are masked but kinds and times; a number long enough to be a phone number too; a typed reason too")
    func payload() throws {
        let payload = Array(
            #"{"type":"contextUpdate","eventId":"e-1","occurredAt":"2026-11-24T10:00:00Z","callId":"call-12345","from":15550100001,"attempts":3,"reason":"caller said she is Ann Smith","answered":true}"#
                .utf8
        )
        let shown = ConsoleMasking.maskedPayload(payload)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "contextUpdate")
        #expect(object["eventId"] as? String == "e-1")
        #expect(object["occurredAt"] as? String == "2026-11-24T10:00:00Z")
        #expect(object["callId"] as? String == "******2345")
        #expect(object["from"] as? String == "*******0001")
        #expect((object["attempts"] as? NSNumber)?.intValue == 3)
        #expect(!shown.contains("Ann Smith") && !shown.contains("15550100001"))
        #expect(
            ConsoleMasking.maskedPayload(Array("+15550100001 not json".utf8))
                == "(21 bytes, not JSON: reveal to see them)"
        )
    }
}
