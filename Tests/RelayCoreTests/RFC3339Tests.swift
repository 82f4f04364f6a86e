import Foundation
import RelayCore
import Testing

@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    @Test(
        "parses offsets and fractions to the right instant",
        arguments: [
            ("2026-11-24T10:00:00Z", 1_795_514_400.0),
            ("2026-11-24t10:00:00z", 1_795_514_400.0),
            ("2026-11-24T11:00:00+01:00", 1_795_514_400.0),
            ("2026-11-24T04:30:00-05:30", 1_795_514_400.0),
            ("2026-11-24T10:00:00.250Z", 1_795_514_400.25),
            ("1970-01-01T00:00:00Z", 0),
            ("2024-02-29T00:00:00Z", 1_709_164_800),
            ("2000-03-01T00:00:00Z", 951_868_800),
        ]
    )
    func parses(text: String, seconds: Double) throws {
        let date = try #require(RFC3339.parse(text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.0005)
    }

    @Test(
        "rejects what is not RFC 3339",
        arguments: [
            "", "2026-11-24", "2026-11-24T10:00:00", "2026-11-24T10:00Z", "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z", "2026-11-24T24:00:00Z", "2026-11-24T10:00:00.Z", "2026-11-24T10:00:00+0100",
            "2026-11-24T10:00:00Z trailing", "yesterday",
        ]
    )
    func rejects(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test("format and parse round-trip to the millisecond")
    func roundTrip() throws {
        let date = Date(timeIntervalSince1970: 1_795_514_400.25)
        let text = RFC3339.format(date)
        #expect(text == "2026-11-24T10:00:00.250Z")
        #expect(abs(try #require(RFC3339.parse(text)).timeIntervalSince1970 - 1_795_514_400.25) < 0.0005)
    }
}
