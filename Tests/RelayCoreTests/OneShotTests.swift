import RelayCore
import Testing

@Suite("One-shot value")
struct OneShotTests {
    @Test("every wait, before or after the value is set, gets the first value; a second set changes nothing")
    func waitsGetTheFirstValue() async throws {
        let shot = OneShot<Int>()
        let early = (0..<5).map { _ in Task { try await shot.value() } }
        #expect(shot.current == nil)
        #expect(shot.set(7))
        #expect(!shot.set(8))
        for waiter in early { #expect(try await waiter.value == 7) }
        #expect(try await shot.value() == 7)
        #expect(shot.current == 7)
    }

    @Test("a cancelled wait throws CancellationError; the others still get the value")
    func cancelledWait() async throws {
        let shot = OneShot<String>()
        let cancelled = Task { try await shot.value() }
        let other = Task { try await shot.value() }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        shot.set("ready")
        #expect(try await other.value == "ready")
    }
}
