import Testing

@testable import RelayService

@Suite("Work lane")
struct WorkLaneTests {
    @Test("overdue work goes ahead of what was queued before it, each kind first in first out")
    func overdueFirst() async {
        let lane = WorkLane<Int>()
        lane.push(1)
        lane.push(2)
        lane.push(10, overdue: true)
        lane.push(3)
        lane.push(11, overdue: true)
        var order: [Int] = []
        for _ in 0..<5 { order.append(await lane.next() ?? -1) }
        #expect(order == [10, 11, 1, 2, 3])
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
