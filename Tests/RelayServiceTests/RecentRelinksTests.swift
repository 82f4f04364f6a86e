import Testing

@testable import RelayService

@Suite("Links remembered per call")
struct RecentRelinksTests {
    @Test("the newest link per call is kept; past the capacity the oldest calls are forgotten")
    func remembersTheNewestCalls() {
        let relinks = RecentRelinks(capacity: 3)
        relinks.remember("CRM:1", forCall: "call-1")
        relinks.remember("CRM:2", forCall: "call-2")
        relinks.remember("CRM:9", forCall: "call-1")  // a switch after phase 2: same call, newer link
        #expect(relinks.link(forCall: "call-1") == "CRM:9")
        relinks.remember("CRM:3", forCall: "call-3")
        relinks.remember("CRM:4", forCall: "call-4")
        #expect(relinks.link(forCall: "call-1") == nil, "the first call remembered is the first forgotten")
        #expect(relinks.link(forCall: "call-2") == "CRM:2")
        relinks.remember("CRM:5", forCall: "call-5")
        relinks.remember("CRM:6", forCall: "call-6")
        #expect(relinks.link(forCall: "call-2") == nil)
        #expect(relinks.link(forCall: "call-3") == nil)
        #expect([4, 5, 6].map { relinks.link(forCall: "call-\($0)") } == ["CRM:4", "CRM:5", "CRM:6"])
    }
}
