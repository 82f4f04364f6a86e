import Foundation
import RelayService
import Testing

/// The one check of an operator's dead-letter filter, shared by the command line and the admin API.
@Suite("Dead-letter filter")
struct DeadLetterFilterTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func problem(
        reasons: [String] = [],
        since: String? = nil,
        until: String? = nil,
        limit: Int? = nil
    ) -> DeadLetterFilterError? {
        do {
            _ = try DeadLetterFilter(
                checkingReasons: reasons,
                since: since,
                until: until,
                callId: nil,
                limit: limit,
                now: now
            )
            return nil
        } catch {
            return error
        }
    }

    @Test("known reasons, times as RFC 3339, a day or an age, and a limit become the filter")
    func accepted() throws {
        let filter = try DeadLetterFilter(
            checkingReasons: ["malformed", "deliveryFailed"],
            since: "2h",
            until: "2027-01-15",
            callId: "call-1",
            ids: ["dl_1"],
            limit: 10,
            now: now
        )
        #expect(filter.reasons == ["malformed", "deliveryFailed"])
        #expect(filter.since == now.addingTimeInterval(-7_200))
        #expect(filter.until == Date(timeIntervalSince1970: 1_799_971_200))  // 2027-01-15T00:00:00Z
        #expect(filter.callId == "call-1" && filter.ids == ["dl_1"] && filter.limit == 10)
    }

    @Test("an unknown reason, a time that is none, or a limit below 1 names its field and what is wrong")
    func refused() {
        #expect(problem(reasons: ["malformed", "lost"])?.field == .reason)
        #expect(problem(reasons: ["lost"])?.problem.hasPrefix("unknown reason 'lost'; expected one of") == true)
        #expect(problem(since: "yesterday")?.field == .since)
        #expect(problem(until: "5 fortnights")?.field == .until)
        #expect(problem(since: "yesterday")?.problem.contains("is not a time") == true)
        #expect(problem(limit: 0)?.field == .limit)
        #expect(problem(limit: 1) == nil)
    }
}
