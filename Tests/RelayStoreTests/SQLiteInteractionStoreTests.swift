import Foundation
import GRDB
import RelayCore
import RelayTesting
import Testing

@testable import RelayStore

/// What only the SQLite store has: a file that survives a reopen, its connection settings, its query
/// columns read directly, and migrations from earlier versions of the file.
@Suite struct SQLiteInteractionStoreTests {
    @Test func stateProcessedEventsAndOutboxSurviveAReopen() async throws {
        try await withTemporaryDatabase { path in
            let now = Date(timeIntervalSince1970: 1_760_000_000.001)
            let state = sampleInteraction(callId: "call-1")
            let committed: [OutboxEntry]
            do {
                let store = try SQLiteInteractionStore(path: path)
                let result = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { _ in
                    (
                        state,
                        [
                            NewOutboxEntry(kind: "customerUpdate", payload: [1]),
                            NewOutboxEntry(kind: "deadLetter", payload: [2]),
                        ]
                    )
                }
                guard case .committed(let entries) = result else {
                    Issue.record("expected committed, got \(result)")
                    return
                }
                committed = entries
            }  // the store goes away here, closing its connections

            for _ in 0..<2 {  // reopening twice: migrations that ran are not run again
                let store = try SQLiteInteractionStore(path: path)
                #expect(try await store.appliedMigrations() == ["v1", "v2", "v3", "v4", "v5", "v6"])
                #expect(try await store.interaction(callId: "call-1") == state)
                #expect(try await store.pendingOutbox(dueBy: nil, limit: 10) == committed)
                let called = Flag()
                let again = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { _ in
                    called.set()
                    return (state, [])
                }
                #expect(again == .alreadyProcessed(committed))
                #expect(!called.isSet)
            }
        }
    }

    @Test func theFileIsOpenedInWALModeWithFullSyncAndABusyTimeout() async throws {
        try await withTemporaryDatabase { path in
            let store = try SQLiteInteractionStore(path: path)
            let settings = try await store.connectionSettings()
            #expect(settings.journalMode == "wal")
            #expect(settings.synchronous == 2)  // FULL
            #expect(settings.busyTimeoutMilliseconds == Int(SQLiteInteractionStore.busyTimeout * 1000))
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func queryColumnsMatchTheState() async throws {
        try await withTemporaryDatabase { path in
            let store = try SQLiteInteractionStore(path: path)
            let now = Date(timeIntervalSince1970: 1_760_000_123.456_789)
            var state = sampleInteraction(callId: "call-1")
            _ = try await store.apply(callId: "call-1", eventId: "event-1", now: now) { [state] _ in (state, []) }

            let row = try #require(try await store.columns(callId: "call-1"))
            #expect(row.status == "ended")
            #expect(row.channel == "voice")
            #expect(row.direction == "inbound")
            #expect(row.queueId == "queue-7")
            #expect(row.agentId == "agent-3")
            #expect(row.wrapUpCode == nil)
            #expect(row.disconnectType == "peer")
            #expect(row.externalId == "PHONE:6f1c2a")
            #expect(try closeTo(row.nextDueAt, state.nextDueAt))
            #expect(try closeTo(row.startedAt, state.startedAt))
            #expect(try closeTo(row.endedAt, state.endedAt))
            #expect(row.wrappedUpAt == nil)
            #expect(try closeTo(row.firstSeenAt, state.firstSeenAt))
            #expect(try closeTo(row.updatedAt, now))

            // Completing the call clears its timers: the columns follow the state.
            state.status = .completed
            state.wrapUpCode = "sale"
            state.wrappedUpAt = Date(timeIntervalSince1970: 1_760_000_200.25)
            state.timers = []
            _ = try await store.apply(callId: "call-1", eventId: "event-2", now: now + 60) { [state] _ in (state, []) }
            let updated = try #require(try await store.columns(callId: "call-1"))
            #expect(updated.status == "completed")
            #expect(updated.wrapUpCode == "sale")
            #expect(updated.nextDueAt == nil)
            #expect(try closeTo(updated.wrappedUpAt, state.wrappedUpAt))
            #expect(try closeTo(updated.updatedAt, now + 60))
        }
    }

    @Test func aMissingParentDirectoryIsCreated() async throws {
        try await withTemporaryDatabase { path in
            let nested = URL(fileURLWithPath: path).deletingLastPathComponent()
                .appendingPathComponent("a/b/relay.sqlite").path
            _ = try SQLiteInteractionStore(path: nested)
            #expect(FileManager.default.fileExists(atPath: nested))
        }
    }

    @Test("a version-4 database migrates: published entries are finished, unpublished ones due at their commit")
    func migratesFromVersionFour() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("relay-v4-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("relay.sqlite").path
        try SQLiteSchema.migrateForTest(path: path, upTo: "v4") { db in
            try db.execute(
                sql: """
                    INSERT INTO outbox (cause_id, call_id, kind, payload, created_at, published_at)
                    VALUES ('e1', 'call-1', 'delivery', x'01', 100, 101), ('e2', 'call-2', 'lookup', x'02', 200, NULL)
                    """
            )
        }
        let store = try SQLiteInteractionStore(path: path)
        let pending = try await store.pendingOutbox(dueBy: nil, limit: 10)
        #expect(pending.map(\.causeId) == ["e2"])
        #expect(pending.first?.dueAt == Date(timeIntervalSince1970: 200) && pending.first?.attempts == 0)
        let finished = try await store.outboxEntries(.init(state: .finished))
        #expect(
            finished.map(\.outcome) == ["published"] && finished.first?.finishedAt == Date(timeIntervalSince1970: 101)
        )
    }
}
