import Foundation
import GRDB
import RelayCore
import RelayTesting
import Synchronization
import Testing

@testable import RelayStore

/// The conformance suite of `InteractionStore`: every test runs on SQLite and on PostgreSQL and must get
/// the same answers.
@Suite struct InteractionStoreTests {
    @Test(arguments: StoreKind.allCases) func relinkReplacesOnlyWhatItsRuleAllowsAndKeepsTheRestOfTheState(
        _ kind: StoreKind
    ) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            var state = sampleInteraction(callId: "call-1")
            state.externalId = "PHONE:6f1c2a"
            let initial = state
            _ = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { _ in (initial, []) }
            #expect(try await store.link(callId: "call-1") == "PHONE:6f1c2a")

            #expect(
                try await store.relink(callId: "call-1", to: "CRM:1", now: now + 1, replacing: .phoneLinkOnly)
                    == "CRM:1"
            )
            var expected = state
            expected.externalId = "CRM:1"
            #expect(try await store.interaction(callId: "call-1") == expected)
            #expect(try await store.phoneLinkedInteractions(since: .distantPast, limit: 10).isEmpty)
            // A CRM answer never overwrites a CRM link; a validated switch does.
            #expect(
                try await store.relink(callId: "call-1", to: "CRM:2", now: now + 2, replacing: .phoneLinkOnly)
                    == "CRM:1"
            )
            #expect(try await store.relink(callId: "call-1", to: "CRM:1", now: now + 2, replacing: .anyLink) == "CRM:1")
            #expect(try await store.relink(callId: "call-1", to: "ERP:7", now: now + 3, replacing: .anyLink) == "ERP:7")
            expected.externalId = "ERP:7"
            #expect(try await store.interaction(callId: "call-1") == expected)
            #expect(try await store.link(callId: "call-1") == "ERP:7")
            #expect(try await store.relink(callId: "no-such-call", to: "CRM:1", now: now, replacing: .anyLink) == nil)
            #expect(try await store.interaction(callId: "no-such-call") == nil)
            #expect(try await store.link(callId: "no-such-call") == nil)
        }
    }

    // MARK: Apply

    @Test(arguments: StoreKind.allCases) func applyOnANewCallCommitsStateAndOutbox(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000.123_456)
            let state = sampleInteraction(callId: "call-1")
            let effects = [
                NewOutboxEntry(kind: "customerUpdate", payload: Array(#"{"externalId":"PHONE:x"}"#.utf8)),
                NewOutboxEntry(kind: "postCallWebhook", payload: [0, 1, 2, 255]),
            ]

            let result = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { current in
                #expect(current == nil)
                return (state, effects)
            }

            guard case .committed(let entries) = result else {
                Issue.record("expected committed, got \(result)")
                return
            }
            #expect(entries.map(\.kind) == ["customerUpdate", "postCallWebhook"])
            #expect(entries.map(\.payload) == effects.map(\.payload))
            #expect(entries.allSatisfy { $0.causeId == "event-1" && $0.callId == "call-1" && $0.finishedAt == nil })
            #expect(entries.allSatisfy { abs($0.createdAt.timeIntervalSince(now)) < 0.000_001 })
            #expect(entries[0].id < entries[1].id)
            #expect(try await store.interaction(callId: "call-1") == state)
            #expect(try await store.interaction(callId: "call-unknown") == nil)

            // A later commit on another call gets later ids, and the unpublished list is oldest first.
            let later = try await store.apply(callId: "call-2", eventId: "event-2", now: now + 1) { _ in
                (
                    Interaction(callId: "call-2", firstSeenAt: now + 1),
                    [NewOutboxEntry(kind: "deadLetter", payload: [7])]
                )
            }
            guard case .committed(let laterEntries) = later else {
                Issue.record("expected committed, got \(later)")
                return
            }
            #expect(laterEntries[0].id > entries[1].id)
            #expect(try await store.pendingOutbox(dueBy: nil, limit: 10) == entries + laterEntries)
            #expect(try await store.pendingOutbox(dueBy: nil, limit: 2) == entries)

            try await store.finishForTest(entries.map(\.id), at: now + 2)
            #expect(try await store.pendingOutbox(dueBy: nil, limit: 10) == laterEntries)
        }
    }

    @Test(arguments: StoreKind.allCases) func applyOfAnAlreadyProcessedEventReturnsItsOutboxWithoutCallingTheTransition(
        _ kind: StoreKind
    ) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000.5)
            let state = sampleInteraction(callId: "call-1")
            let first = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { _ in
                (
                    state,
                    [
                        NewOutboxEntry(kind: "customerUpdate", payload: [1]),
                        NewOutboxEntry(kind: "deadLetter", payload: [2]),
                    ]
                )
            }
            guard case .committed(var entries) = first else {
                Issue.record("expected committed, got \(first)")
                return
            }
            // One of them was finished since: only the unfinished one comes back.
            try await store.finishForTest([entries[0].id], at: now + 3.25)
            entries.removeFirst()

            let called = Flag()
            let again = try await store.apply(callId: "call-1", eventId: "event-1", now: now + 10) { _ in
                called.set()
                var changed = state
                changed.status = .orphaned
                return (changed, [NewOutboxEntry(kind: "customerUpdate", payload: [9])])
            }

            #expect(again == .alreadyProcessed(entries))
            #expect(!called.isSet)
            #expect(try await store.interaction(callId: "call-1") == state)
            #expect(try await store.rowCounts() == (1, 1, 2))
        }
    }

    @Test(arguments: StoreKind.allCases) func aThrowingTransitionWritesNothing(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)

            await #expect(throws: TransitionFailed.self) {
                try await store.apply(callId: "call-1", eventId: "event-1", now: now) { _ in
                    throw TransitionFailed()
                }
            }
            #expect(try await store.interaction(callId: "call-1") == nil)
            #expect(try await store.rowCounts() == (0, 0, 0))

            // The event was not recorded as processed: a redelivery runs the transition.
            let state = sampleInteraction(callId: "call-1")
            let retried = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { _ in
                (state, [NewOutboxEntry(kind: "customerUpdate", payload: [1])])
            }
            guard case .committed = retried else {
                Issue.record("expected committed, got \(retried)")
                return
            }

            // A failure on an existing call leaves its state as it was.
            await #expect(throws: TransitionFailed.self) {
                try await store.apply(callId: "call-1", eventId: "event-2", now: now) { _ in throw TransitionFailed() }
            }
            #expect(try await store.interaction(callId: "call-1") == state)
            #expect(try await store.rowCounts() == (1, 1, 1))
        }
    }

    @Test(arguments: StoreKind.allCases) func aTransitionThatReturnsAnotherCallIsRefused(_ kind: StoreKind) async throws
    {
        try await kind.withInteractionStore { store in
            let error = await #expect(throws: StoreError.self) {
                try await store.apply(callId: "call-1", eventId: "event-1", now: Date()) { _ in
                    (Interaction(callId: "call-2", firstSeenAt: Date()), [])
                }
            }
            #expect(error?.code == .callIdMismatch)
            let counts = try await store.rowCounts()
            #expect(counts == (0, 0, 0))
        }
    }

    @Test(arguments: StoreKind.allCases) func emptyPayloadsRoundTrip(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            _ = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { _ in
                (Interaction(callId: "call-1", firstSeenAt: now), [NewOutboxEntry(kind: "customerUpdate", payload: [])])
            }
            #expect(try await store.pendingOutbox(dueBy: nil, limit: 10).map(\.payload) == [[]])
        }
    }

    @Test(arguments: StoreKind.allCases) func theStateRoundTripsExactly(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            // Dates no decimal rendering of milliseconds or seconds since 1970 would give back bit for bit.
            var state = sampleInteraction(callId: "call-1")
            state.startedAt = Date(timeIntervalSinceReferenceDate: 0.1 + 0.2)
            state.endedAt = Date(timeIntervalSince1970: 1_760_000_000.123_456_7)
            state.wrappedUpAt = Date(timeIntervalSinceReferenceDate: 781_234_567.987_654_321)
            state.timers.append(.init(kind: .startNeverCame, dueAt: Date(timeIntervalSinceReferenceDate: .pi * 1e8)))
            _ = try await store.apply(callId: "call-1", eventId: "event-1", now: Date()) { [state] _ in (state, []) }
            let read = try #require(try await store.interaction(callId: "call-1"))
            #expect(read == state)
            #expect(read.startedAt?.timeIntervalSinceReferenceDate == state.startedAt?.timeIntervalSinceReferenceDate)
        }
    }

    // MARK: Timers

    @Test(arguments: StoreKind.allCases) func dueTimersAreReturnedSoonestFirstUpToTheLimit(
        _ kind: StoreKind
    ) async throws {
        try await kind.withInteractionStore { store in
            let t0 = Date(timeIntervalSince1970: 1_760_000_000)
            func put(_ callId: String, eventId: String, dueIn offsets: [TimeInterval]) async throws -> Interaction {
                var interaction = Interaction(callId: callId, firstSeenAt: t0)
                interaction.status = .active
                interaction.timers = offsets.map { InteractionTimer(kind: .endNeverCame, dueAt: t0 + $0) }
                _ = try await store.apply(callId: callId, eventId: eventId, now: t0) { [interaction] _ in
                    (interaction, [])
                }
                return interaction
            }
            let a = try await put("a", eventId: "a-1", dueIn: [10, 500])
            let b = try await put("b", eventId: "b-1", dueIn: [600, 5])
            let c = try await put("c", eventId: "c-1", dueIn: [30])
            _ = try await put("d", eventId: "d-1", dueIn: [1])
            _ = try await put("d", eventId: "d-2", dueIn: [])  // its timers were cleared
            _ = try await put("e", eventId: "e-1", dueIn: [])

            #expect(try await store.interactionsWithDueTimers(now: t0 + 20, limit: 10) == [b, a])
            #expect(try await store.interactionsWithDueTimers(now: t0 + 20, limit: 1) == [b])
            // Due at `now` counts.
            #expect(try await store.interactionsWithDueTimers(now: t0 + 30, limit: 10) == [b, a, c])
            #expect(try await store.interactionsWithDueTimers(now: t0 + 4.999, limit: 10) == [])
            #expect(
                try await store.interactionsWithDueTimers(now: t0 + 10_000, limit: 10).map(\.callId) == ["b", "a", "c"]
            )
        }
    }

    // MARK: Concurrency

    @Test(arguments: StoreKind.allCases) func concurrentAppliesOnOneCallLoseNoUpdate(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            let eventIds = (0..<50).map { "event-\($0)" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for eventId in eventIds {
                    group.addTask {
                        _ = try await store.apply(callId: "call-1", eventId: eventId, now: now) { current in
                            var interaction = current ?? Interaction(callId: "call-1", firstSeenAt: now)
                            interaction.supersededEventIds.append(eventId)
                            return (interaction, [NewOutboxEntry(kind: "customerUpdate", payload: Array(eventId.utf8))])
                        }
                    }
                }
                try await group.waitForAll()
            }
            let final = try #require(try await store.interaction(callId: "call-1"))
            #expect(final.supersededEventIds.count == 50)
            #expect(Set(final.supersededEventIds) == Set(eventIds))
            let outbox = try await store.pendingOutbox(dueBy: nil, limit: 100)
            #expect(outbox.count == 50)
            // Commit order is outbox order: the n-th entry was caused by the n-th id appended to the state.
            #expect(outbox.map { String(decoding: $0.payload, as: UTF8.self) } == final.supersededEventIds)
        }
    }

    @Test(arguments: StoreKind.allCases) func concurrentAppliesOnDifferentCalls(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            let callIds = (0..<10).map { "call-\($0)" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for callId in callIds {
                    for n in 0..<5 {
                        group.addTask {
                            let eventId = "\(callId)/event-\(n)"
                            _ = try await store.apply(callId: callId, eventId: eventId, now: now) { current in
                                var interaction = current ?? Interaction(callId: callId, firstSeenAt: now)
                                interaction.seenEventIds.append(eventId)
                                return (interaction, [NewOutboxEntry(kind: "customerUpdate", payload: [UInt8(n)])])
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            for callId in callIds {
                let interaction = try #require(try await store.interaction(callId: callId))
                #expect(Set(interaction.seenEventIds) == Set((0..<5).map { "\(callId)/event-\($0)" }))
            }
            let ids = try await store.pendingOutbox(dueBy: nil, limit: 100).map(\.id)
            #expect(ids.count == 50)
            #expect(ids == ids.sorted() && Set(ids).count == 50)
        }
    }

    /// Concurrent applies share transactions (group commit): one that throws must undo only itself.
    @Test(arguments: StoreKind.allCases) func aThrowingTransitionInASharedCommitUndoesOnlyItself(
        _ kind: StoreKind
    ) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            struct Refused: Error {}
            let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for n in 0..<60 {
                    group.addTask {
                        do {
                            _ = try await store.apply(callId: "call-\(n)", eventId: "event-\(n)", now: now) { current in
                                if n % 3 == 0 { throw Refused() }
                                return (
                                    current ?? Interaction(callId: "call-\(n)", firstSeenAt: now),
                                    [NewOutboxEntry(kind: "k", payload: [1])]
                                )
                            }
                            return (n, true)
                        } catch is Refused {
                            return (n, false)
                        }
                    }
                }
                var outcomes: [Int: Bool] = [:]
                for try await (n, committed) in group { outcomes[n] = committed }
                return outcomes
            }
            #expect(outcomes.filter { !$0.value }.keys.sorted() == stride(from: 0, to: 60, by: 3).map { $0 })
            let counts = try await store.rowCounts()
            #expect(counts.interactions == 40 && counts.processedEvents == 40 && counts.outbox == 40)
            for n in 0..<60 {
                let stored = try await store.interaction(callId: "call-\(n)")
                #expect((stored != nil) == (n % 3 != 0))
            }
        }
    }

    /// The pipeline's batch: one transaction, a savepoint per event. One that throws undoes only itself,
    /// the others commit with their outbox, and a repeat of an event in the batch is recognised.
    @Test(arguments: StoreKind.allCases) func aBatchCommitsEachEventInASavepointOfItsOwn(_ kind: StoreKind) async throws
    {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            struct Refused: Error {}
            func application(_ n: Int, eventId: String? = nil) -> EventApplication {
                EventApplication(callId: "call-\(n)", eventId: eventId ?? "event-\(n)", contact: nil) { current, _ in
                    if n == 1 { throw Refused() }
                    return (
                        current ?? Interaction(callId: "call-\(n)", firstSeenAt: now),
                        [NewOutboxEntry(kind: "k", payload: [UInt8(n)])]
                    )
                }
            }
            let results = try await store.apply(
                [application(0), application(1), application(2), application(0)],
                now: now
            )
            #expect(results.count == 4)
            guard case .success(.committed(let first)) = results[0] else {
                Issue.record("event 0: \(results[0])")
                return
            }
            #expect(first.map(\.payload) == [[0]])
            guard case .failure(let error) = results[1] else {
                Issue.record("event 1 committed")
                return
            }
            #expect(error is Refused)
            guard case .success(.committed) = results[2] else {
                Issue.record("event 2: \(results[2])")
                return
            }
            // The same event again in the batch: processed by the first, nothing added.
            guard case .success(.alreadyProcessed) = results[3] else {
                Issue.record("repeat: \(results[3])")
                return
            }
            let counts = try await store.rowCounts()
            #expect(counts.interactions == 2 && counts.processedEvents == 2 && counts.outbox == 2)
            #expect(try await store.interaction(callId: "call-1") == nil)
        }
    }

    /// Two events of one call in one batch: the second's transition sees the state the first left, and
    /// the call's row ends as the second wrote it.
    @Test(arguments: StoreKind.allCases) func eventsOfOneCallInOneBatchSeeEachOther(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            let seen = Mutex<[String?]>([])
            func application(_ eventId: String, queue: String) -> EventApplication {
                EventApplication(callId: "call-1", eventId: eventId, contact: nil) { current, _ in
                    seen.withLock { $0.append(current?.queueId) }
                    var next = current ?? Interaction(callId: "call-1", firstSeenAt: now)
                    next.queueId = queue
                    return (next, [NewOutboxEntry(kind: "k", payload: Array(eventId.utf8))])
                }
            }
            let results = try await store.apply(
                [application("e1", queue: "q1"), application("e2", queue: "q2")],
                now: now
            )
            #expect(seen.withLock { $0 } == [nil, "q1"])
            var ids: [Int64] = []
            for result in results {
                guard case .success(.committed(let entries)) = result, entries.count == 1 else {
                    Issue.record("\(result)")
                    return
                }
                ids.append(entries[0].id)
            }
            #expect(ids[0] < ids[1])
            #expect(try await store.interaction(callId: "call-1")?.queueId == "q2")
            let stored = try await store.pendingOutbox(dueBy: nil, limit: 10)
            #expect(stored.map(\.id) == ids && stored.map(\.payload) == [Array("e1".utf8), Array("e2".utf8)])
        }
    }

    // MARK: Overrides

    @Test(arguments: StoreKind.allCases) func overridesLiveUntilTheirExpiryAndAreReplacedAndPruned(
        _ kind: StoreKind
    ) async throws {
        try await kind.withInteractionStore { store in
            let now = Date(timeIntervalSince1970: 1_760_000_000)
            #expect(try await store.override(phoneKey: "k1", now: now) == nil)
            try await store.setOverride(
                phoneKey: "k1",
                externalId: "CRM:1",
                callId: "c1",
                now: now,
                expiresAt: now.addingTimeInterval(60)
            )
            #expect(try await store.override(phoneKey: "k1", now: now.addingTimeInterval(59)) == "CRM:1")
            #expect(try await store.override(phoneKey: "k1", now: now.addingTimeInterval(60)) == nil)
            #expect(try await store.override(phoneKey: "k2", now: now) == nil)
            try await store.setOverride(
                phoneKey: "k1",
                externalId: "CRM:2",
                callId: "c2",
                now: now,
                expiresAt: now.addingTimeInterval(120)
            )
            #expect(try await store.override(phoneKey: "k1", now: now.addingTimeInterval(90)) == "CRM:2")
            try await store.setOverride(
                phoneKey: "k3",
                externalId: "ERP:9",
                callId: "c3",
                now: now,
                expiresAt: now.addingTimeInterval(10)
            )
            #expect(try await store.pruneExpiredOverrides(now: now.addingTimeInterval(30)) == 1)
            #expect(try await store.override(phoneKey: "k1", now: now.addingTimeInterval(30)) == "CRM:2")
        }
    }

    // MARK: Pruning

    @Test(arguments: StoreKind.allCases) func pruningProcessedEventsForgetsOnlyOlderOnes(_ kind: StoreKind) async throws
    {
        try await kind.withInteractionStore { store in
            let t0 = Date(timeIntervalSince1970: 1_760_000_000)
            let state = Interaction(callId: "call-1", firstSeenAt: t0)
            _ = try await store.apply(callId: "call-1", eventId: "old", now: t0) { _ in (state, []) }
            _ = try await store.apply(callId: "call-1", eventId: "new", now: t0 + 100) { _ in (state, []) }

            #expect(try await store.pruneProcessedEvents(before: t0 + 50) == 1)
            #expect(try await store.pruneProcessedEvents(before: t0 + 50) == 0)
            #expect(try await store.pruneProcessedEvents(before: t0 + 100) == 0)  // strictly before

            let oldCalled = Flag()
            let old = try await store.apply(callId: "call-1", eventId: "old", now: t0 + 200) { current in
                oldCalled.set()
                return (current ?? state, [])
            }
            #expect(old == .committed([]))
            #expect(oldCalled.isSet)

            let newCalled = Flag()
            let new = try await store.apply(callId: "call-1", eventId: "new", now: t0 + 200) { current in
                newCalled.set()
                return (current ?? state, [])
            }
            #expect(new == .alreadyProcessed([]))
            #expect(!newCalled.isSet)
        }
    }

    @Test(arguments: StoreKind.allCases) func pruningTheOutboxNeverRemovesUnpublishedEntries(
        _ kind: StoreKind
    ) async throws {
        try await kind.withInteractionStore { store in
            let t0 = Date(timeIntervalSince1970: 1_760_000_000)
            let result = try await store.apply(callId: "call-1", eventId: "event-1", now: t0) { _ in
                (
                    Interaction(callId: "call-1", firstSeenAt: t0),
                    (1...3).map { NewOutboxEntry(kind: "customerUpdate", payload: [UInt8($0)]) }
                )
            }
            guard case .committed(let entries) = result else {
                Issue.record("expected committed, got \(result)")
                return
            }
            try await store.finishForTest([entries[0].id], at: t0 + 10)
            try await store.finishForTest([entries[1].id], at: t0 + 200)

            #expect(try await store.pruneFinishedOutbox(before: t0 + 100) == 1)
            #expect(try await store.pruneFinishedOutbox(before: t0 + 100_000) == 1)
            #expect(try await store.pruneFinishedOutbox(before: t0 + 100_000) == 0)
            #expect(try await store.pendingOutbox(dueBy: nil, limit: 10) == [entries[2]])
            #expect(try await store.rowCounts().outbox == 1)

            // Ids are never reused once the newest rows are gone.
            try await store.finishForTest([entries[2].id], at: t0 + 300)
            #expect(try await store.pruneFinishedOutbox(before: t0 + 100_000) == 1)
            let next = try await store.apply(callId: "call-1", eventId: "event-2", now: t0) { current in
                (try #require(current), [NewOutboxEntry(kind: "deadLetter", payload: [4])])
            }
            guard case .committed(let nextEntries) = next else {
                Issue.record("expected committed, got \(next)")
                return
            }
            #expect(nextEntries[0].id > entries[2].id)
        }
    }

}

// MARK: - Helpers

struct TransitionFailed: Error {}

/// Records whether a transition ran, from whatever thread the store runs it on.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// An interaction with every field set, fractional-second dates, two timers and superseded ids.
func sampleInteraction(callId: String) -> Interaction {
    var interaction = Interaction(callId: callId, firstSeenAt: Date(timeIntervalSince1970: 1_759_999_999.987_654))
    interaction.status = .ended
    interaction.channel = .voice
    interaction.direction = .inbound
    interaction.startedAt = Date(timeIntervalSince1970: 1_760_000_000.123_456)
    interaction.endedAt = Date(timeIntervalSince1970: 1_760_000_090.000_999)
    interaction.queueId = "queue-7"
    interaction.agentId = "agent-3"
    interaction.disconnectType = "peer"
    interaction.customerId = "customer-42"
    interaction.externalId = "PHONE:6f1c2a"
    interaction.startEventId = "event-start"
    interaction.endEventId = "event-end"
    interaction.seenEventIds = ["event-start", "event-end", "event-end-2"]
    interaction.supersededEventIds = ["event-end-2"]
    interaction.timers = [
        InteractionTimer(kind: .wrapUpGrace, dueAt: Date(timeIntervalSince1970: 1_760_000_690.5)),
        InteractionTimer(kind: .endNeverCame, dueAt: Date(timeIntervalSince1970: 1_760_000_600.000_1)),
    ]
    return interaction
}

/// A stored time is within a microsecond of the date it was written from.
func closeTo(_ seconds: Double?, _ date: Date?) throws -> Bool {
    guard let seconds, let date else { return seconds == nil && date == nil }
    return abs(seconds - date.timeIntervalSince1970) < 0.000_001
}

extension InteractionStore {
    /// Finishes the entries as delivered at `at`.
    func finishForTest(_ ids: [Int64], at: Date) async throws {
        try await settleOutbox(ids.map { .finished(id: $0, outcome: "delivered") }, now: at)
    }
}

@Suite("The outbox as the work queue")
struct OutboxWorkQueueTests {
    let t0 = Date(timeIntervalSince1970: 1_760_000_000)

    func commit(
        _ store: any InteractionStore,
        _ kinds: [String],
        callId: String = "call-1",
        eventId: String = "e1"
    )
        async throws -> [OutboxEntry]
    {
        let at = t0
        let result = try await store.apply(callId: callId, eventId: eventId, now: at) { state in
            (
                state ?? Interaction(callId: callId, firstSeenAt: at),
                kinds.map { NewOutboxEntry(kind: $0, payload: [1]) }
            )
        }
        guard case .committed(let entries) = result else { throw StoreError(.databaseFailed, "not committed") }
        return entries
    }

    @Test(
        "a new entry is due when committed; a retry waits for its time, with its attempts and error on the row",
        arguments: StoreKind.allCases
    )
    func retryScheduling(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let entries = try await commit(store, ["delivery", "lookup"])
            #expect(entries.allSatisfy { $0.dueAt == $0.createdAt && $0.attempts == 0 })
            #expect(try await store.pendingOutbox(dueBy: t0, limit: 10).map(\.id) == entries.map(\.id))

            try await store.settleOutbox(
                [.retry(id: entries[0].id, dueAt: t0 + 30, attempts: 1, lastError: "HTTP 503", payload: [2])],
                now: t0 + 1
            )
            #expect(try await store.pendingOutbox(dueBy: t0 + 29, limit: 10).map(\.id) == [entries[1].id])
            let retried = try #require(try await store.pendingOutbox(dueBy: t0 + 30, limit: 10).first)
            #expect(
                retried.id == entries[0].id && retried.attempts == 1 && retried.lastError == "HTTP 503"
                    && retried.payload == [2]
            )

            let summary = try await store.outboxSummary(now: t0 + 10)
            #expect(summary.kinds["delivery"]?.pending == 1 && summary.kinds["delivery"]?.due == 0)
            #expect(summary.kinds["delivery"]?.retrying == 1)
            #expect(summary.kinds["lookup"]?.due == 1 && summary.oldestCreatedAt == entries[0].createdAt)

            // An operator's retry makes it due now; a finished entry stays finished, whatever comes after.
            #expect(try await store.makeOutboxDue(ids: [entries[0].id], now: t0 + 11) == 1)
            #expect(try await store.pendingOutbox(dueBy: t0 + 11, limit: 10).count == 2)
            try await store.settleOutbox([.finished(id: entries[0].id, outcome: "delivered")], now: t0 + 12)
            try await store.settleOutbox(
                [.retry(id: entries[0].id, dueAt: t0 + 60, attempts: 2, lastError: "late", payload: [3])],
                now: t0 + 13
            )
            let finished = try #require(try await store.outboxEntry(id: entries[0].id))
            #expect(finished.outcome == "delivered" && finished.finishedAt == t0 + 12 && finished.attempts == 1)
            #expect(try await store.makeOutboxDue(ids: [entries[0].id], now: t0 + 14) == 0)
            #expect(try await store.outboxEntries(.init(state: .finished)).map(\.id) == [entries[0].id])
            #expect(try await store.outboxEntries(.init(state: .pending, kind: "lookup")).map(\.id) == [entries[1].id])
        }
    }

    @Test(
        "a poll reads the due ids from the index, then only the entries it asks for that are still pending",
        arguments: StoreKind.allCases
    )
    func pollByIds(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let entries = try await commit(store, ["delivery", "delivery", "lookup", "delivery"])
            try await store.settleOutbox(
                [
                    .retry(id: entries[1].id, dueAt: t0 + 30, attempts: 1, lastError: "HTTP 503", payload: [2]),
                    .finished(id: entries[2].id, outcome: "delivered"),
                ],
                now: t0 + 1
            )
            #expect(try await store.pendingOutboxIds(dueBy: t0 + 2, limit: 10) == [entries[0].id, entries[3].id])
            #expect(try await store.pendingOutboxIds(dueBy: t0 + 2, limit: 1) == [entries[0].id])
            #expect(
                try await store.pendingOutboxIds(dueBy: t0 + 30, limit: 10) == [
                    entries[0].id, entries[1].id, entries[3].id,
                ]
            )
            // Asked in any order, answered in commit order; a finished one is left out, and one due later
            // (rescheduled by someone else since its id was read) too.
            let read = try await store.pendingOutbox(
                ids: [entries[3].id, entries[2].id, entries[1].id],
                dueBy: t0 + 30
            )
            #expect(read.map(\.id) == [entries[1].id, entries[3].id])
            #expect(read[0].attempts == 1 && read[0].payload == [2])
            #expect(
                try await store.pendingOutbox(ids: [entries[1].id, entries[3].id], dueBy: t0 + 2).map(\.id) == [
                    entries[3].id
                ]
            )
            #expect(try await store.pendingOutbox(ids: [], dueBy: nil).isEmpty)
        }
    }

    @Test(
        "a job whose dead-letter record the broker did not take becomes that record, still to publish",
        arguments: StoreKind.allCases
    )
    func deadLetterConversion(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let entry = try #require(try await commit(store, ["delivery"]).first)
            try await store.settleOutbox(
                [.deadLetter(id: entry.id, dueAt: t0 + 5, lastError: "broker away", record: [9, 9])],
                now: t0 + 1
            )
            let converted = try #require(try await store.outboxEntry(id: entry.id))
            #expect(converted.kind == "deadLetter" && converted.payload == [9, 9] && converted.finishedAt == nil)
            #expect(converted.dueAt == t0 + 5 && converted.lastError == "broker away")
        }
    }

    @Test(
        "a lookup's answer relinks the call and queues its update in one transaction, unless the link is another's",
        arguments: StoreKind.allCases
    )
    func completeLookup(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let phone = "PHONE:" + String(repeating: "cd", count: 32)
            _ = try await store.apply(callId: "call-1", eventId: "e1", now: t0) { _ in
                var interaction = Interaction(callId: "call-1", firstSeenAt: self.t0)
                interaction.externalId = phone
                return (interaction, [NewOutboxEntry(kind: "lookup", payload: [1])])
            }
            let lookup = try #require(try await store.pendingOutbox(dueBy: nil, limit: 10).first)
            let completion = LookupCompletion(
                entryId: lookup.id,
                callId: "call-1",
                causeId: "e1",
                externalId: "CRM:5",
                rule: .phoneLinkOnly,
                update: NewOutboxEntry(kind: "delivery", payload: [7]),
                override: (phoneKey: "key-1", expiresAt: t0 + 3600)
            )
            let done = try await store.completeLookup(completion, now: t0 + 1)
            #expect(done.link == "CRM:5")
            #expect(done.update?.kind == "delivery" && done.update?.payload == [7] && done.update?.causeId == "e1")
            #expect(try await store.link(callId: "call-1") == "CRM:5")
            #expect(try await store.override(phoneKey: "key-1", now: t0 + 2) == "CRM:5")
            #expect(try await store.outboxEntry(id: lookup.id)?.outcome == "relinked")

            // A second answer that may replace only a PHONE: link finds the CRM link and queues nothing.
            let again = try await store.completeLookup(
                LookupCompletion(
                    entryId: lookup.id,
                    callId: "call-1",
                    causeId: "e1",
                    externalId: "CRM:6",
                    rule: .phoneLinkOnly,
                    update: NewOutboxEntry(kind: "delivery", payload: [8])
                ),
                now: t0 + 2
            )
            #expect(again.link == "CRM:5" && again.update == nil)
            #expect(try await store.pendingOutbox(dueBy: nil, limit: 10).map(\.payload) == [[7]])
        }
    }

}
