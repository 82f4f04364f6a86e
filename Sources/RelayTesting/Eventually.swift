/// Polls until the condition holds; throws if it still does not after the timeout. Broker counters
/// and acks settle asynchronously, so tests wait for them rather than sleep.
public func eventually(
    timeout: Duration = .seconds(15),
    _ what: String = "condition",
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    if try await condition() { return }
    throw EventuallyTimedOut(what: what, timeout: timeout)
}

public struct EventuallyTimedOut: Error, CustomStringConvertible {
    public var what: String
    public var timeout: Duration
    public var description: String { "\(what) still false after \(timeout)" }
}
