public import Foundation

/// The record of dead letters, as every store keeps it (SQLite, PostgreSQL): recorded idempotently by
/// id, counted before listed, listed in pages without payloads, claimed by one operator at a time.
/// `DeadLetterStoreConformance` in the tests holds every store to the same answers.
public protocol DeadLetterStore: Sendable {
    /// Records dead letters idempotently by id, in one transaction (see `DeadLetterRecording`).
    func recordDeadLetters(_ letters: [StoredDeadLetter], now: Date) async throws -> [DeadLetterRecording]

    /// Counts first: by reason, the `groups` most frequent last errors, oldest and newest failure.
    func deadLetterSummary(_ query: DeadLetterQuery, groups: Int) async throws -> DeadLetterSummary

    /// How many dead letters the query selects (its page ignored).
    func deadLetterCount(_ query: DeadLetterQuery) async throws -> Int

    /// The rows the query selects, in arrival order, without payloads or messages.
    func deadLetters(_ query: DeadLetterQuery) async throws -> [StoredDeadLetter]

    /// Dead letters by id, payloads and messages included, whatever their state, in arrival order.
    func deadLetters(ids: [String]) async throws -> [StoredDeadLetter]

    /// Moves the dead letters among `ids` that are in one of `from` to `to`, in one statement; returns
    /// the ids it moved. A purge drops the payload, the message and the last error.
    func transitionDeadLetters(
        ids: [String],
        from: Set<StoredDeadLetter.State>,
        to: StoredDeadLetter.State,
        note: String?,
        now: Date
    ) async throws -> [String]

    /// Reopens replays claimed before `cutoff` and never settled; returns their ids.
    func reopenStaleReplays(claimedBefore cutoff: Date, now: Date) async throws -> [String]

    /// Deletes every dead letter whose last failure (or recording, when it has none) is before `cutoff`.
    func deleteDeadLetters(olderThan cutoff: Date) async throws -> Int
}

extension DeadLetterStore {
    public func deadLetterSummary(_ query: DeadLetterQuery) async throws -> DeadLetterSummary {
        try await deadLetterSummary(query, groups: 10)
    }

    /// One dead letter, payload and message included, whatever its state.
    public func deadLetter(id: String) async throws -> StoredDeadLetter? {
        try await deadLetters(ids: [id]).first
    }

    public func transitionDeadLetters(
        ids: [String],
        from: Set<StoredDeadLetter.State>,
        to: StoredDeadLetter.State,
        now: Date
    ) async throws -> [String] {
        try await transitionDeadLetters(ids: ids, from: from, to: to, note: nil, now: now)
    }
}

extension DeadLetterRecording {
    /// What recording `letter` does to the dead letter stored under its id: the one decision both
    /// stores make, so they cannot drift apart.
    ///
    /// - Parameter stored: the stored record's replay count, state and last state change; nil when
    ///   the store does not know the id.
    /// - Returns: the recording, and for `failedAgain` the replay count to store.
    public static func decide(
        _ letter: StoredDeadLetter,
        stored: (replayCount: Int, state: StoredDeadLetter.State, stateChangedAt: Date?)?
    ) -> (recording: DeadLetterRecording, replayCount: Int) {
        guard let stored else { return (.new, letter.replayCount) }
        // Failed again after a replay: a higher replay count (a republished event carries one), or a
        // failure after the replay was claimed (a job replayed into the outbox carries none). Purged
        // and resolved records stay closed: a late copy is only counted.
        let laterFailure = letter.lastFailureAt.map { $0 > (stored.stateChangedAt ?? .distantFuture) } ?? false
        let failedAgain: Bool
        switch stored.state {
        case .open: failedAgain = letter.replayCount > stored.replayCount
        case .replaying, .replayed: failedAgain = letter.replayCount > stored.replayCount || laterFailure
        case .purged, .resolved: failedAgain = false
        }
        guard failedAgain else { return (.copy, stored.replayCount) }
        return (
            .failedAgain, stored.state == .open ? letter.replayCount : max(letter.replayCount, stored.replayCount + 1)
        )
    }
}
