public import Foundation

/// Who runs a scheduled chore (the retention purge, contact expiry, reconciliation) when several relays
/// share a store: the relay that takes its lease, for one round.
public protocol ChoreLeases: Sendable {
    /// Whether this relay may run the chore `name` now: true when nobody holds its lease, this relay
    /// does, or the holder's ran out; the lease is then this relay's for `duration`. A store one process
    /// owns always says yes.
    func takeChoreLease(_ name: String, for duration: Duration, now: Date) async throws -> Bool
}

extension SQLiteInteractionStore: ChoreLeases {
    public func takeChoreLease(_ name: String, for duration: Duration, now: Date) async throws -> Bool { true }
}
