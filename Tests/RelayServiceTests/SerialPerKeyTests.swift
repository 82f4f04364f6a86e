import Synchronization
import Testing

@testable import RelayService

/// The turn-taking the outbox dispatcher relies on to send a call's customer updates in order.
@Suite("One operation per key at a time")
struct SerialPerKeyTests {
    /// A gate an operation waits at until the test opens it.
    final class Gate: Sendable {
        private let state = Mutex<(isOpen: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

        func wait() async {
            await withCheckedContinuation { continuation in
                let isOpen = state.withLock { state in
                    if !state.isOpen { state.waiting.append(continuation) }
                    return state.isOpen
                }
                if isOpen { continuation.resume() }
            }
        }

        func open() {
            let waiting = state.withLock { state in
                state.isOpen = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    /// What the operations did, in order.
    final class Log: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// Per key, how many operations run now; and how often one started while another ran.
    final class Overlaps: Sendable {
        private let state = Mutex<(running: [String: Int], overlaps: Int, completed: Int)>(([:], 0, 0))
        func start(_ key: String) {
            state.withLock { state in
                if state.running[key, default: 0] > 0 { state.overlaps += 1 }
                state.running[key, default: 0] += 1
            }
        }
        func finish(_ key: String) {
            state.withLock { state in
                state.running[key, default: 0] -= 1
                state.completed += 1
            }
        }
        var counts: (overlaps: Int, completed: Int) { state.withLock { ($0.overlaps, $0.completed) } }
    }

    @Test("a second operation for a key waits for the first; another key does not; turns go in order")
    func turns() async throws {
        let serial = SerialPerKey()
        let gate = Gate()
        let log = Log()
        let first = Task {
            await serial.run("call-1") {
                log.append("first started")
                await gate.wait()
                log.append("first done")
            }
        }
        try await waitUntil { log.all == ["first started"] }
        let second = Task { await serial.run("call-1") { log.append("second") } }
        try await waitUntil { serial.waitingCount(for: "call-1") == 1 }
        let third = Task { await serial.run("call-1") { log.append("third") } }
        try await waitUntil { serial.waitingCount(for: "call-1") == 2 }
        // Another call is not held up by call-1's turn.
        let other = await serial.run("call-2") {
            log.append("other")
            return 7
        }
        #expect(other == 7)
        #expect(log.all == ["first started", "other"])

        gate.open()
        await first.value
        await second.value
        await third.value
        #expect(log.all == ["first started", "other", "first done", "second", "third"])
        #expect(serial.heldKeys == 0, "nothing is remembered once no operation runs or waits")
    }

    @Test("many concurrent operations on a few keys never overlap per key, and all run")
    func noOverlap() async {
        let serial = SerialPerKey()
        let overlaps = Overlaps()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<400 {
                let key = "call-\(index % 5)"
                group.addTask {
                    await serial.run(key) {
                        overlaps.start(key)
                        await Task.yield()
                        overlaps.finish(key)
                    }
                }
            }
        }
        #expect(overlaps.counts.overlaps == 0)
        #expect(overlaps.counts.completed == 400)
        #expect(serial.heldKeys == 0)
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within 5 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
