import Foundation
import Testing

@testable import RelayCore

/// The byte scanner that picks an input's shape must name exactly the keys `JSONSerialization` finds,
/// and say nothing (leaving the body to `JSONDecoder` and its errors) when it is not sure.
@Suite("Top-level key scanner")
struct TopLevelKeyScannerTests {
    static let fixtures = [
        "acw-voice", "bridge-customer-start-voice-inbound", "customer-end-voice", "customer-start-callback",
        "customer-start-chat", "customer-start-email", "customer-start-open", "customer-start-sms",
        "customer-start-voice-inbound", "customer-start-voice-outbound",
    ]

    static let literalBodies: [String] = [
        #"{"eventId":"e1","type":"callStarted","callId":"c1","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"+15550100"}"#,
        "  {\n\t\"a\" : [1, -2.5e+3, 0, true, false, null, {\"b\": {\"c\": []}}] ,\"d\":\"\\\"q\\\\ \\u00e9 \\n\"}  ",
        #"{}"#,
        #"{"dup":1,"dup":2}"#,
        #"{"nested":{"type":"x"},"callId":"c"}"#,
        #"{"ünïcödé":"väl"}"#,
    ]

    static let refused: [String] = [
        #"{"a":1,}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":tru}"#, #"{"a":"x"} x"#, #"["a"]"#, #""a""#,
        #"{"a":"\x"}"#, #"{"a":"\u12"}"#, "{\"a\":\"line\nbreak\"}", #"{"a" 1}"#, #"{"a":[1,]}"#, #"{"a":{"b"}}"#,
        #"{"\u0074ype":"callStarted"}"#, "", "{", #"{"a":1"#, #"{"a":-}"#, #"{"a":1e}"#,
    ]

    @Test("keys equal JSONSerialization's for fixtures and hand-written bodies")
    func matchesFoundation() throws {
        var bodies = try Self.fixtures.map { try GenesysFixture.bytes($0) }
        bodies += Self.literalBodies.map { Array($0.utf8) }
        for body in bodies {
            let expected = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            let scanned = TopLevelKeyScanner.keys(of: body)
            #expect(scanned == Set(expected.keys), "\(String(decoding: body, as: UTF8.self))")
        }
    }

    @Test("says nothing for what is not a well-formed object, or a key with escapes")
    func refusesWhatItIsUnsureOf() {
        for text in Self.refused {
            #expect(TopLevelKeyScanner.keys(of: Array(text.utf8)) == nil, "\(text)")
        }
    }

    @Test("nesting past its depth is left to the decoder")
    func deepNesting() {
        let deep = "{\"a\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        #expect(TopLevelKeyScanner.keys(of: Array(deep.utf8)) == nil)
        let shallow = "{\"a\":" + String(repeating: "[", count: 10) + String(repeating: "]", count: 10) + "}"
        #expect(TopLevelKeyScanner.keys(of: Array(shallow.utf8)) == ["a"])
    }
}
