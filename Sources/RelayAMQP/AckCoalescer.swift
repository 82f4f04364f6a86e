/// Turns the acks of one loop turn into as few `basic.ack` frames as possible.
///
/// Every ack of a quorum queue is a command the broker writes to its log; one ack with `multiple`
/// settles a whole run of deliveries for the price of one. A run may only be acked that way when every
/// delivery of the channel up to its last tag is acked: `multiple` settles all of them, including
/// one still being handled or one a draining consumer holds. So this tracks the channel's unsettled
/// deliveries in order and coalesces only the acked prefix; other acks go out one by one.
struct AckCoalescer {
    /// Delivery tags in the order delivered; those before `head` are settled.
    private var delivered: [UInt64] = []
    private var head = 0
    /// Settled tags (acked or nacked one by one) not yet at the front of `delivered`.
    private var settledAhead: Set<UInt64> = []
    /// Set when one delivery stayed in hand while very many after it were settled: tracking them
    /// all would grow without bound, so acks go out one by one until the next connection.
    private var givenUp = false
    static let mostSettledAhead = 65_536

    /// A delivery is in hand, unsettled. Tags only grow on a channel.
    mutating func delivered(_ tag: UInt64) {
        guard !givenUp else { return }
        delivered.append(tag)
    }

    /// A delivery was settled on its own (a nack), before the acks of this turn go out.
    mutating func settledAlone(_ tag: UInt64) {
        guard !givenUp else { return }
        settledAhead.insert(tag)
        advanceHead()
    }

    /// The frames that ack `tags` (this turn's acks, in any order): one `multiple` ack for the acked
    /// run at the front of the unsettled deliveries, single acks for the rest.
    mutating func frames(acking tags: [UInt64]) -> [(tag: UInt64, multiple: Bool)] {
        guard !tags.isEmpty else { return [] }
        guard !givenUp else { return tags.map { (tag: $0, multiple: false) } }
        var acked = Set(tags)
        var frames: [(tag: UInt64, multiple: Bool)] = []
        var index = head
        var last: UInt64?
        var covered = 0
        while index < delivered.count {
            let tag = delivered[index]
            if settledAhead.contains(tag) {
                index += 1
                continue
            }
            guard acked.remove(tag) != nil else { break }
            last = tag
            covered += 1
            index += 1
        }
        if let last {
            frames.append((tag: last, multiple: covered > 1))
            for position in head..<index { settledAhead.remove(delivered[position]) }
            head = index
        }
        for tag in acked.sorted() {
            frames.append((tag: tag, multiple: false))
            settledAhead.insert(tag)
        }
        advanceHead()
        if settledAhead.count > Self.mostSettledAhead {
            reset()
            givenUp = true
        }
        return frames
    }

    /// A new connection: its tags start again.
    mutating func reset() {
        delivered.removeAll()
        head = 0
        settledAhead.removeAll()
        givenUp = false
    }

    /// Deliveries still unsettled, for tests.
    var unsettledCount: Int { delivered.count - head - settledAhead.count }

    private mutating func advanceHead() {
        while head < delivered.count, settledAhead.remove(delivered[head]) != nil { head += 1 }
        if head > 4096, head * 2 > delivered.count {
            delivered.removeFirst(head)
            head = 0
        }
    }
}
