import Testing

@testable import RelayAMQP

/// Coalesced acks must never settle a delivery nobody acked: `multiple` covers every unsettled tag
/// up to its own.
@Suite("Ack coalescing")
struct AckCoalescerTests {
    func coalescer(delivering tags: ClosedRange<UInt64>) -> AckCoalescer {
        var coalescer = AckCoalescer()
        for tag in tags { coalescer.delivered(tag) }
        return coalescer
    }

    @Test("a run acked at the front of the unsettled deliveries is one multiple ack")
    func run() {
        var acks = coalescer(delivering: 1...5)
        let frames = acks.frames(acking: [3, 1, 2])
        #expect(frames.count == 1 && frames[0].tag == 3 && frames[0].multiple)
        #expect(acks.unsettledCount == 2)
    }

    @Test("a gap stops the run: acks past a delivery still in hand go out one by one")
    func gap() {
        var acks = coalescer(delivering: 1...6)
        let frames = acks.frames(acking: [1, 2, 4, 5])
        #expect(frames.map(\.tag) == [2, 4, 5])
        #expect(frames.map(\.multiple) == [true, false, false])
        #expect(acks.unsettledCount == 2)  // 3 and 6
        // Once 3 is acked, the run is only 3 itself: 4 and 5 were settled already.
        let next = acks.frames(acking: [3])
        #expect(next.map(\.tag) == [3] && next[0].multiple == false)
        #expect(acks.unsettledCount == 1)
        let last = acks.frames(acking: [6])
        #expect(last.map(\.tag) == [6])
        #expect(acks.unsettledCount == 0)
    }

    @Test("a nacked delivery is skipped, never covered by a later multiple ack it was not part of")
    func nack() {
        var acks = coalescer(delivering: 1...4)
        acks.settledAlone(2)
        let frames = acks.frames(acking: [1, 3])
        // 1..3 is one run once 2 is settled: the multiple ack up to 3 covers only settled or acked tags.
        #expect(frames.count == 1 && frames[0].tag == 3 && frames[0].multiple)
        #expect(acks.unsettledCount == 1)
    }

    @Test("a single ack at the front is not a multiple ack")
    func single() {
        var acks = coalescer(delivering: 1...3)
        let frames = acks.frames(acking: [1])
        #expect(frames.count == 1 && frames[0].tag == 1 && !frames[0].multiple)
    }

    @Test("one delivery held for ever: past a bound, acks go out one by one instead of piling up")
    func heldForever() {
        var acks = AckCoalescer()
        acks.delivered(1)  // never settled
        var tag: UInt64 = 2
        while tag < UInt64(AckCoalescer.mostSettledAhead) + 10 {
            acks.delivered(tag)
            acks.delivered(tag + 1)
            #expect(acks.frames(acking: [tag, tag + 1]).allSatisfy { !$0.multiple })
            tag += 2
        }
        #expect(acks.unsettledCount == 0, "nothing tracked once it gave up")
        acks.delivered(tag)
        acks.delivered(tag + 1)
        #expect(acks.frames(acking: [tag, tag + 1]).map(\.tag) == [tag, tag + 1])
        acks.reset()
        acks.delivered(1)
        acks.delivered(2)
        #expect(acks.frames(acking: [1, 2]).map(\.multiple) == [true], "a new connection coalesces again")
    }

    @Test("random interleavings: every acked tag is settled once, and no frame covers an unacked tag")
    func property() {
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<200 {
            var acks = AckCoalescer()
            var unsettled: [UInt64] = []
            var settledAtBroker: Set<UInt64> = []
            var next: UInt64 = 1
            for _ in 0..<30 {
                for _ in 0..<Int.random(in: 0...4, using: &generator) {
                    acks.delivered(next)
                    unsettled.append(next)
                    next += 1
                }
                let handled = unsettled.shuffled(using: &generator).prefix(Int.random(in: 0...3, using: &generator))
                var batch: [UInt64] = []
                for tag in handled {
                    unsettled.removeAll { $0 == tag }
                    if Bool.random(using: &generator) {
                        batch.append(tag)
                    } else {
                        acks.settledAlone(tag)
                        settledAtBroker.insert(tag)
                    }
                }
                for frame in acks.frames(acking: batch) {
                    let covered =
                        frame.multiple ? Set((1...frame.tag).filter { !settledAtBroker.contains($0) }) : [frame.tag]
                    // Nothing still in hand may be covered.
                    #expect(covered.isDisjoint(with: unsettled))
                    settledAtBroker.formUnion(covered)
                }
                #expect(Set(batch).isSubset(of: settledAtBroker))
            }
            #expect(acks.unsettledCount == unsettled.count)
        }
    }
}

/// SplitMix64: the same sequence on every run (RelayCoreTests has its own copy: that target depends on
/// RelayCore alone).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
