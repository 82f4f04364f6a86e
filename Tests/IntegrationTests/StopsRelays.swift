import RelayTesting
import Testing

/// Each test of the suite ends only once every relay it started has stopped and its queues are gone
/// (`RelayHarness.stoppingAll`).
struct StopsRelays: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite itself starts no relay; its tests do.
        guard testCase != nil else { return try await function() }
        try await RelayHarness.stoppingAll(function)
    }
}

extension Trait where Self == StopsRelays {
    static var stopsRelays: Self { Self() }
}
