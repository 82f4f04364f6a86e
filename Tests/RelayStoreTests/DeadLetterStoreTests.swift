import Foundation
import RelayCore
import RelayStore
import RelayTesting
import Testing

/// The store as the record of dead letters: recorded once by id, counted before listed, listed in
/// pages without payloads, and claimed by one operator at a time. A conformance suite: every test
/// runs against each store (SQLite, PostgreSQL), which must give the same answers.
@Suite("Dead letters in the store")
struct DeadLetterStoreTests {
    let t0 = Date(timeIntervalSince1970: 1_765_000_000)

    func letter(
        _ id: String,
        reason: String = "malformed",
        callId: String? = "call-1",
        at offset: TimeInterval = 0,
        replayCount: Int = 0,
        lastError: String = "missing field 'toNumber'",
        payload: [UInt8] = Array("{\"a\":1}".utf8)
    ) -> StoredDeadLetter {
        StoredDeadLetter(
            id: id,
            kind: "record",
            reason: reason,
            callId: callId,
            eventType: "callStarted",
            eventId: "ev-\(id)",
            attempts: 1,
            firstFailureAt: t0 + offset,
            lastFailureAt: t0 + offset,
            lastError: lastError,
            target: reason == "deliveryFailed"
                ? .init(method: "PUT", url: "https://platform.example/x", lastStatus: 503) : nil,
            origin: .init(exchange: "platform.events", routingKey: "callStarted"),
            replayCount: replayCount,
            payloadEncoding: "utf8",
            payload: payload,
            message: Array("{\"id\":\"\(id)\"}".utf8),
            headers: [
                "x-first-death-queue": .string("relay.events"), "x-delivery-count": .int(21), "x-flag": .bool(true),
            ],
            routingKey: reason,
            recordedAt: t0
        )
    }

    @Test(
        "recorded once by id: a second copy is counted, a failure after a replay reopens it and keeps its first failure",
        arguments: StoreKind.allCases
    )
    func recordIdempotently(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            #expect(try await store.recordDeadLetters([letter("dl_1", at: 0)], now: t0) == [.new])
            #expect(try await store.recordDeadLetters([letter("dl_1", at: 0)], now: t0 + 1) == [.copy])
            #expect(
                try await store.transitionDeadLetters(ids: ["dl_1"], from: [.open], to: .replayed, now: t0 + 2) == [
                    "dl_1"
                ]
            )
            let again = letter("dl_1", at: 60, replayCount: 1, lastError: "still missing 'toNumber'")
            #expect(try await store.recordDeadLetters([again], now: t0 + 61) == [.failedAgain])
            let stored = try #require(try await store.deadLetter(id: "dl_1"))
            #expect(stored.state == .open && stored.copies == 3 && stored.replayCount == 1)
            #expect(stored.firstFailureAt == t0 && stored.lastFailureAt == t0 + 60)
            #expect(stored.lastError == "still missing 'toNumber'")
            #expect(stored.payload == Array("{\"a\":1}".utf8) && stored.message == Array("{\"id\":\"dl_1\"}".utf8))
            #expect(
                stored.headers == [
                    "x-first-death-queue": .string("relay.events"), "x-delivery-count": .int(21), "x-flag": .bool(true),
                ]
            )
            #expect(try await store.deadLetter(id: "dl_missing") == nil)
        }
    }

    @Test(
        "a job replayed into the outbox carries no replay count: failing after its replay reopens it all the same",
        arguments: StoreKind.allCases
    )
    func outboxReplayFailsAgain(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            _ = try await store.recordDeadLetters([letter("dl_job", reason: "deliveryFailed", at: 0)], now: t0)
            _ = try await store.transitionDeadLetters(ids: ["dl_job"], from: [.open], to: .replayed, now: t0 + 5)
            // A copy of the old failure, drained late, changes nothing.
            #expect(
                try await store.recordDeadLetters([letter("dl_job", reason: "deliveryFailed", at: 0)], now: t0 + 6) == [
                    .copy
                ]
            )
            #expect(try await store.deadLetter(id: "dl_job")?.state == .replayed)
            let again = letter("dl_job", reason: "deliveryFailed", at: 30, lastError: "HTTP 503 again")
            #expect(try await store.recordDeadLetters([again], now: t0 + 31) == [.failedAgain])
            let reopened = try #require(try await store.deadLetter(id: "dl_job"))
            #expect(reopened.state == .open && reopened.replayCount == 1 && reopened.firstFailureAt == t0)
            // Purged stays purged, whatever comes later.
            _ = try await store.transitionDeadLetters(ids: ["dl_job"], from: [.open], to: .purged, now: t0 + 40)
            #expect(
                try await store.recordDeadLetters(
                    [letter("dl_job", reason: "deliveryFailed", at: 50, replayCount: 5)],
                    now: t0 + 51
                ) == [.copy]
            )
            let purged = try #require(try await store.deadLetter(id: "dl_job"))
            #expect(purged.state == .purged && purged.payload.isEmpty)
        }
    }

    @Test(
        "a purge keeps the record, not what it carried: payload, message and an upstream's last error are gone",
        arguments: StoreKind.allCases
    )
    func purgeDropsWhatCarriesPersonalData(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            _ = try await store.recordDeadLetters(
                [
                    letter("dl_p", reason: "deliveryFailed", lastError: "HTTP 422: customer +15550100999 unknown"),
                    letter("dl_q"),
                ],
                now: t0
            )
            #expect(
                try await store.transitionDeadLetters(ids: ["dl_p"], from: [.open], to: .purged, now: t0 + 1) == [
                    "dl_p"
                ]
            )
            let purged = try #require(try await store.deadLetter(id: "dl_p"))
            #expect(purged.payload.isEmpty && purged.message.isEmpty)
            #expect(purged.lastError == "(purged)")
            #expect(purged.reason == "deliveryFailed" && purged.callId == "call-1" && purged.firstFailureAt == t0)
            // Resolving keeps everything: a resolved record can still be read in full.
            _ = try await store.transitionDeadLetters(
                ids: ["dl_q"],
                from: [.open],
                to: .resolved,
                note: "handled",
                now: t0 + 2
            )
            let resolved = try #require(try await store.deadLetter(id: "dl_q"))
            #expect(resolved.payload == Array("{\"a\":1}".utf8) && resolved.lastError == "missing field 'toNumber'")
            // Whole rows by id come back in arrival order, whatever their state, unknown ids left out.
            #expect(try await store.deadLetters(ids: ["dl_q", "dl_missing", "dl_p"]).map(\.id) == ["dl_p", "dl_q"])
            #expect(try await store.deadLetters(ids: ["dl_q"]).first?.message == Array("{\"id\":\"dl_q\"}".utf8))
        }
    }

    @Test(
        "listed in arrival order, page by page, without payloads; filters select by reason, call, time, id and state",
        arguments: StoreKind.allCases
    )
    func listInPages(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            let letters = (0..<25).map { index in
                letter(
                    "dl_\(index)",
                    reason: index % 5 == 0 ? "deliveryFailed" : "malformed",
                    callId: "call-\(index % 3)",
                    at: TimeInterval(index),
                    payload: Array(repeating: 0x61, count: 70_000)
                )
            }
            _ = try await store.recordDeadLetters(letters, now: t0)
            var seen: [String] = []
            var after: Int64?
            while true {
                let page = try await store.deadLetters(DeadLetterQuery(after: after, limit: 10))
                if page.isEmpty { break }
                #expect(page.allSatisfy { $0.payload.isEmpty && $0.message.isEmpty })
                seen += page.map(\.id)
                after = page.last?.sequence
            }
            #expect(seen == letters.map(\.id))
            #expect(
                try await store.deadLetters(DeadLetterQuery(reasons: ["deliveryFailed"])).map(\.id) == [
                    "dl_0", "dl_5", "dl_10", "dl_15", "dl_20",
                ]
            )
            #expect(
                try await store.deadLetters(DeadLetterQuery(callId: "call-1", limit: 3)).map(\.id) == [
                    "dl_1", "dl_4", "dl_7",
                ]
            )
            #expect(
                try await store.deadLetters(DeadLetterQuery(since: t0 + 20, until: t0 + 22)).map(\.id) == [
                    "dl_20", "dl_21", "dl_22",
                ]
            )
            #expect(try await store.deadLetters(DeadLetterQuery(ids: ["dl_3", "dl_9"])).map(\.id) == ["dl_3", "dl_9"])
            _ = try await store.transitionDeadLetters(ids: ["dl_3"], from: [.open], to: .purged, now: t0)
            #expect(try await store.deadLetters(DeadLetterQuery(ids: ["dl_3", "dl_9"])).map(\.id) == ["dl_9"])
            #expect(
                try await store.deadLetters(DeadLetterQuery(ids: ["dl_3"], states: [.purged])).first?.stateChangedAt
                    == t0
            )
        }
    }

    @Test(
        "counts first: by reason, by last error, oldest and newest, for what the filter selects",
        arguments: StoreKind.allCases
    )
    func summary(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            _ = try await store.recordDeadLetters(
                [
                    letter("dl_a", reason: "deliveryFailed", at: 5, lastError: "HTTP 503"),
                    letter("dl_b", reason: "deliveryFailed", at: 1, lastError: "HTTP 503"),
                    letter("dl_c", reason: "deliveryFailed", at: 9, lastError: "HTTP 400"),
                    letter("dl_d", reason: "malformed", at: 3),
                ],
                now: t0
            )
            let all = try await store.deadLetterSummary(DeadLetterQuery())
            #expect(all.total == 4 && all.byReason == ["deliveryFailed": 3, "malformed": 1])
            #expect(all.byLastError.first == .init(lastError: "HTTP 503", count: 2))
            #expect(all.oldestFailure == t0 + 1 && all.newestFailure == t0 + 9)
            let failed = try await store.deadLetterSummary(DeadLetterQuery(reasons: ["deliveryFailed"]), groups: 1)
            #expect(failed.total == 3 && failed.byLastError.count == 1)
            #expect(try await store.deadLetterSummary(DeadLetterQuery(states: [.resolved])).total == 0)
            #expect(try await store.deadLetterCount(DeadLetterQuery()) == 4)
            #expect(try await store.deadLetterCount(DeadLetterQuery(reasons: ["deliveryFailed"], since: t0 + 2)) == 2)
        }
    }

    @Test("twenty operators claiming the same record for a replay: exactly one gets it", arguments: StoreKind.allCases)
    func oneClaimWins(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            _ = try await store.recordDeadLetters([letter("dl_x")], now: t0)
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await store.transitionDeadLetters(
                            ids: ["dl_x"],
                            from: [.open],
                            to: .replaying,
                            now: self.t0
                        )
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(claimed == ["dl_x"])
            #expect(
                try await store.transitionDeadLetters(
                    ids: ["dl_x"],
                    from: [.replaying],
                    to: .resolved,
                    note: "handled by hand",
                    now: t0
                )
                    == ["dl_x"]
            )
            let resolved = try #require(try await store.deadLetter(id: "dl_x"))
            #expect(resolved.state == .resolved && resolved.note == "handled by hand")

            // A claim whose process died is reopened once it is older than the cutoff, not before.
            _ = try await store.recordDeadLetters([letter("dl_y")], now: t0)
            #expect(
                try await store.transitionDeadLetters(ids: ["dl_y"], from: [.open], to: .replaying, now: t0 + 10) == [
                    "dl_y"
                ]
            )
            #expect(try await store.reopenStaleReplays(claimedBefore: t0 + 5, now: t0 + 70).isEmpty)
            #expect(try await store.reopenStaleReplays(claimedBefore: t0 + 11, now: t0 + 71) == ["dl_y"])
            #expect(try await store.deadLetter(id: "dl_y")?.state == .open)
        }
    }

    @Test(
        "a failure between a replay's claim and its settling is a failure after the replay, however late it is recorded",
        arguments: StoreKind.allCases
    )
    func failureDuringSettling(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            _ = try await store.recordDeadLetters([letter("dl_s", reason: "deliveryFailed", at: 0)], now: t0)
            _ = try await store.transitionDeadLetters(ids: ["dl_s"], from: [.open], to: .replaying, now: t0 + 5)
            _ = try await store.transitionDeadLetters(ids: ["dl_s"], from: [.replaying], to: .replayed, now: t0 + 20)
            // The replayed job failed at t0 + 10, before the settling; the drain records it at t0 + 30.
            let again = letter("dl_s", reason: "deliveryFailed", at: 10, lastError: "HTTP 503 again")
            #expect(try await store.recordDeadLetters([again], now: t0 + 30) == [.failedAgain])
            #expect(try await store.deadLetter(id: "dl_s")?.state == .open)
        }
    }

    @Test(
        "ten relays recording the same new dead letter at once: one records it, nine count a copy",
        arguments: StoreKind.allCases
    )
    func concurrentRecording(_ kind: StoreKind) async throws {
        try await kind.withDeadLetterStore { store in
            let recordings = try await withThrowingTaskGroup(of: [DeadLetterRecording].self) { group in
                for _ in 0..<10 {
                    group.addTask { try await store.recordDeadLetters([self.letter("dl_race")], now: self.t0) }
                }
                return try await group.reduce(into: [DeadLetterRecording]()) { $0 += $1 }
            }
            #expect(recordings.count { $0 == .new } == 1 && recordings.count { $0 == .copy } == 9)
            let stored = try #require(try await store.deadLetter(id: "dl_race"))
            #expect(stored.copies == 10 && stored.state == .open)
            // Retention deletes by the last failure, whatever the state.
            _ = try await store.recordDeadLetters([letter("dl_late", at: 100)], now: t0)
            #expect(try await store.deleteDeadLetters(olderThan: t0 + 50) == 1)
            #expect(try await store.deadLetterCount(DeadLetterQuery(states: Set(StoredDeadLetter.State.allCases))) == 1)
        }
    }
}
