import Testing

@testable import RelayAMQP

/// A confirm must settle exactly the publishes it names, each once, and a lost connection must leave
/// none of them waiting for a confirm that cannot come.
@Suite("Publisher confirms")
struct PublisherConfirmsTests {
    typealias Confirms = PublisherConfirms<String>

    func confirms(publishing names: [String]) -> Confirms {
        var confirms = Confirms()
        for name in names { confirms.published(name, messageId: "id-\(name)") }
        return confirms
    }

    @Test("publishes are numbered 1, 2, 3… on a channel")
    func numbering() {
        var confirms = Confirms()
        #expect(confirms.published("a", messageId: "id-a") == 1)
        #expect(confirms.published("b", messageId: "id-b") == 2)
        #expect(confirms.nextSequence == 3)
        #expect(confirms.outstandingCount == 2)
    }

    @Test("a single ack settles its own publish only, once")
    func singleAck() {
        var confirms = confirms(publishing: ["a", "b", "c"])
        let settled = confirms.confirm(2, multiple: false, acked: true)
        #expect(settled.map(\.publish) == ["b"])
        #expect(settled.map(\.outcome) == [.confirmed])
        #expect(confirms.outstandingCount == 2)
        #expect(confirms.confirm(2, multiple: false, acked: true).isEmpty, "a second ack of 2 settles nothing")
        #expect(confirms.confirm(9, multiple: false, acked: true).isEmpty, "nor does an ack of a tag never published")
    }

    @Test("a multiple ack settles every outstanding publish up to its tag, in publish order, and none after")
    func multipleAck() {
        var confirms = confirms(publishing: ["a", "b", "c", "d", "e"])
        let settled = confirms.confirm(3, multiple: true, acked: true)
        #expect(settled.map(\.publish) == ["a", "b", "c"])
        #expect(settled.allSatisfy { $0.outcome == .confirmed })
        #expect(confirms.outstandingCount == 2)
        #expect(confirms.confirm(5, multiple: true, acked: true).map(\.publish) == ["d", "e"])
        #expect(confirms.outstandingCount == 0)
    }

    @Test("a nack refuses what it names, singly or up to its tag")
    func nack() {
        var confirms = confirms(publishing: ["a", "b", "c"])
        let one = confirms.confirm(1, multiple: false, acked: false)
        #expect(one.map(\.publish) == ["a"])
        #expect(one.map(\.outcome) == [.refused])
        let rest = confirms.confirm(3, multiple: true, acked: false)
        #expect(rest.map(\.publish) == ["b", "c"])
        #expect(rest.map(\.outcome) == [.refused, .refused])
        #expect(confirms.outstandingCount == 0)
    }

    @Test("confirms out of order: a multiple ack after single ones settles only what is still outstanding")
    func outOfOrder() {
        var confirms = confirms(publishing: ["a", "b", "c", "d", "e"])
        #expect(confirms.confirm(4, multiple: false, acked: true).map(\.publish) == ["d"])
        #expect(confirms.confirm(2, multiple: false, acked: false).map(\.publish) == ["b"])
        // 1…4 with 2 and 4 settled already: a and c, not b or d again, and not e.
        let settled = confirms.confirm(4, multiple: true, acked: true)
        #expect(settled.map(\.publish) == ["a", "c"])
        #expect(confirms.outstandingCount == 1)
        #expect(confirms.confirm(5, multiple: false, acked: true).map(\.publish) == ["e"])
    }

    @Test("a returned message's ack fails it as unroutable; the others of the same multiple ack are confirmed")
    func returned() {
        var confirms = confirms(publishing: ["a", "b"])
        confirms.returned(messageId: "id-a", reason: "312 NO_ROUTE")
        let settled = confirms.confirm(2, multiple: true, acked: true)
        #expect(settled.map(\.publish) == ["a", "b"])
        #expect(settled.map(\.outcome) == [.unroutable("312 NO_ROUTE"), .confirmed])
        // The return was used up: the same message id published again and acked is confirmed.
        confirms.published("a again", messageId: "id-a")
        #expect(confirms.confirm(3, multiple: false, acked: true).map(\.outcome) == [.confirmed])
    }

    @Test("a publish whose confirm cannot come is given up, the others still wait for theirs")
    func giveUp() {
        var confirms = confirms(publishing: ["x1", "y2", "x3"])
        #expect(confirms.giveUp(where: { $0.hasPrefix("x") }) == ["x1", "x3"])
        #expect(confirms.outstandingCount == 1)
        #expect(confirms.confirm(3, multiple: true, acked: true).map(\.publish) == ["y2"])
    }

    @Test(
        "a lost connection hands back every outstanding publish in order; the next numbers from 1, with no old return"
    )
    func connectionLost() {
        var confirms = confirms(publishing: ["a", "b", "c", "d"])
        #expect(confirms.confirm(2, multiple: false, acked: true).map(\.publish) == ["b"])
        confirms.returned(messageId: "id-c", reason: "312 NO_ROUTE")
        #expect(confirms.connectionLost() == ["a", "c", "d"])
        #expect(confirms.outstandingCount == 0)
        #expect(confirms.nextSequence == 1)
        #expect(confirms.confirm(4, multiple: true, acked: true).isEmpty, "nothing is left for an old tag to settle")
        #expect(confirms.connectionLost().isEmpty)

        // Published again on the new connection: numbered from 1, and c's old return is forgotten.
        #expect(confirms.published("c", messageId: "id-c") == 1)
        #expect(confirms.confirm(1, multiple: false, acked: true).map(\.outcome) == [.confirmed])
    }
}
