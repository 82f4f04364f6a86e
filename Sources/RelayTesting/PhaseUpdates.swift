public import RelaySimulator

/// A start event's customer updates at the platform, once phase 2's has arrived.
public struct PhaseUpdates: Sendable {
    /// `customer-update:<eventId>`; nil when phase 2 linked the call first, and the phase-1 update,
    /// superseded, was rightly never sent.
    public var phaseOne: SimulatedPlatform.CustomerUpdate?
    /// `enrichment:<eventId>`.
    public var phaseTwo: SimulatedPlatform.CustomerUpdate
}

extension SimulatedPlatform {
    /// Waits for the phase-2 update of the start event `eventId`. Throws on timeout, and when its
    /// phase-1 update arrived after it: the platform would then have ended on the older link.
    public func waitForPhases(of eventId: String, timeout: Duration = .seconds(20)) async throws -> PhaseUpdates {
        let deadline = ContinuousClock.now + timeout
        while true {
            let updates = customerUpdates
            if let second = updates.firstIndex(where: { $0.idempotencyKey == "enrichment:" + eventId }) {
                let first = updates.firstIndex { $0.idempotencyKey == "customer-update:" + eventId }
                if let first, first > second {
                    throw PhaseOrderError(eventId: eventId)
                }
                return PhaseUpdates(phaseOne: first.map { updates[$0] }, phaseTwo: updates[second])
            }
            guard ContinuousClock.now < deadline else {
                throw EventuallyTimedOut(what: "a phase-2 update of \(eventId)", timeout: timeout)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

public struct PhaseOrderError: Error, CustomStringConvertible {
    public var eventId: String
    public var description: String { "the phase-1 update of \(eventId) reached the platform after phase 2's" }
}
