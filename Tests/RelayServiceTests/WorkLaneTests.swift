import Testing

@testable import RelayService

@Suite("Work lane")
struct WorkLaneTests {
    @Test("overdue and fresh work take turns, overdue first, each first in first out; either alone runs on")
    func turns() async {
        let lane = WorkLane<Int>()
        for fresh in 1...4 { lane.push(fresh) }
        lane.push(10, overdue: true)
        lane.push(11, overdue: true)
        var order: [Int] = []
        for _ in 0..<6 { order.append(await lane.next() ?? -1) }
        // Overdue work queued behind four fresh elements does not wait for them all, nor they for it.
        #expect(order == [10, 1, 11, 2, 3, 4])
        lane.push(20, overdue: true)
        lane.push(21, overdue: true)
        #expect(await lane.next() == 20)
        #expect(await lane.next() == 21)
        #expect(lane.count == 0)
    }

    @Test("a waiting worker takes overdue work at once, and a closed lane gives nothing")
    func waitingWorkerAndClose() async {
        let lane = WorkLane<Int>()
        async let first = lane.next()
        // The worker may not wait yet: either way it gets the element.
        lane.push(7, overdue: true)
        #expect(await first == 7)
        lane.push(8, overdue: true)
        lane.push(9)
        #expect(lane.count == 2)
        lane.close()
        #expect(await lane.next() == nil)
        #expect(!lane.push(1, overdue: true))
    }
}
