import Foundation
import RelayCore
import RelayTesting
import Testing

@testable import RelayStore

@Suite("The store forgets finished interactions past their retention")
struct RetentionStoreTests {
    let longAgo = Date(timeIntervalSince1970: 1_700_000_000)
    let cutoff = Date(timeIntervalSince1970: 1_750_000_000)
    let recently = Date(timeIntervalSince1970: 1_760_000_000)

    /// Commits one event for `callId` at `at`, leaving the interaction in `status` with one outbox entry.
    func commit(
        _ store: any InteractionStore,
        callId: String,
        eventId: String,
        status: Interaction.Status,
        at: Date
    ) async throws -> [OutboxEntry] {
        let result = try await store.apply(callId: callId, eventId: eventId, now: at) { current in
            var interaction = current ?? Interaction(callId: callId, firstSeenAt: at)
            interaction.status = status
            return (interaction, [NewOutboxEntry(kind: "delivery", payload: Array(eventId.utf8))])
        }
        guard case .committed(let entries) = result else { throw UnexpectedResult() }
        return entries
    }

    struct UnexpectedResult: Error {}

    @Test(
        "old completed and orphaned interactions go with their event ids and published entries; the rest stays",
        arguments: StoreKind.allCases
    )
    func purge(_ kind: StoreKind) async throws {
        try await kind.withInteractionStore { store in
            let oldCompleted =
                try await commit(store, callId: "old-completed", eventId: "e1", status: .active, at: longAgo)
                + (try await commit(store, callId: "old-completed", eventId: "e2", status: .completed, at: longAgo))
            let oldOrphaned = try await commit(
                store,
                callId: "old-orphaned",
                eventId: "e3",
                status: .orphaned,
                at: longAgo
            )
            let oldUnpublished = try await commit(
                store,
                callId: "old-unpublished",
                eventId: "e4",
                status: .completed,
                at: longAgo
            )
            let oldActive = try await commit(store, callId: "old-active", eventId: "e5", status: .active, at: longAgo)
            let recentCompleted = try await commit(
                store,
                callId: "recent-completed",
                eventId: "e6",
                status: .completed,
                at: recently
            )
            try await store.finishForTest(
                (oldCompleted + oldOrphaned + oldActive + recentCompleted).map(\.id),
                at: longAgo
            )
            _ = oldUnpublished

            let purged = try await store.purgeFinishedInteractions(before: cutoff)

            #expect(purged == FinishedInteractionsPurge(interactions: 3, processedEvents: 4, outboxEntries: 3))
            #expect(try await store.interaction(callId: "old-completed") == nil)
            #expect(try await store.interaction(callId: "old-orphaned") == nil)
            #expect(try await store.interaction(callId: "old-unpublished") == nil)
            // Unfinished, or finished too recently: kept.
            #expect(try await store.interaction(callId: "old-active")?.status == .active)
            #expect(try await store.interaction(callId: "recent-completed")?.status == .completed)
            let counts = try await store.rowCounts()
            #expect(counts.interactions == 2)
            #expect(counts.processedEvents == 2)
            // old-active's and recent-completed's entries, and the one never published: work still to do.
            #expect(counts.outbox == 3)
            #expect(try await store.pendingOutbox(dueBy: nil, limit: 10).map(\.callId) == ["old-unpublished"])

            // A second purge finds nothing more.
            #expect(
                try await store.purgeFinishedInteractions(before: cutoff)
                    == .init(interactions: 0, processedEvents: 0, outboxEntries: 0)
            )
        }
    }
}
