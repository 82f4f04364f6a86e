import Foundation
import RelayCore
import RelayStore
import RelayTesting
import Testing

@testable import RelayPostgres

/// Several relays on one PostgreSQL store: an outbox entry is carried out by the relay that claims it,
/// another relay takes it only once that claim's lease ran out, and a chore runs on one relay a round.
@Suite("PostgreSQL claims and leases")
struct PostgresClaimsTests {
    let t0 = Date(timeIntervalSince1970: 1_760_000_000)

    /// Runs `body` with relays named `names` on one fresh schema, each with its pool (and claim renewal)
    /// running in a task the body may cancel, as a SIGKILL would end it: without releasing anything.
    func withRelays(
        _ names: [String],
        lease: Duration,
        _ body: ([(store: PostgresStore, run: Task<Void, any Error>)]) async throws -> Void
    ) async throws {
        try await TestPostgres.withEmptySchema { url, schema in
            let relays = names.map { name in
                let store = PostgresStore(
                    configuration: url,
                    searchPath: schema,
                    maximumConnections: 4,
                    instance: name,
                    claimLease: lease,
                    logger: TestPostgres.logger
                )
                return (store: store, run: Task { try await store.run() })
            }
            defer { for relay in relays { relay.run.cancel() } }
            try await relays[0].store.migrate()
            try await body(relays)
        }
    }

    func commit(_ store: PostgresStore, callId: String, eventId: String) async throws -> ApplyResult {
        let at = t0
        return try await store.apply(callId: callId, eventId: eventId, now: at) { state in
            (state ?? Interaction(callId: callId, firstSeenAt: at), [NewOutboxEntry(kind: "delivery", payload: [1])])
        }
    }

    @Test("an entry is its committing relay's: another relay's poll and a redelivery there take nothing while it lives")
    func committedEntriesAreClaimed() async throws {
        try await withRelays(["relay-a", "relay-b"], lease: .seconds(60)) { (relays) async throws -> Void in
            let (a, b) = (relays[0].store, relays[1].store)
            guard case .committed(let entries) = try await commit(a, callId: "call-1", eventId: "e1") else {
                Issue.record("not committed")
                return
            }
            let ids = entries.map(\.id)
            #expect(try await b.pendingOutboxIds(dueBy: nil, limit: 10).isEmpty, "not b's to take")
            #expect(try await b.claimOutbox(ids: ids, dueBy: nil).isEmpty)
            // The same event delivered to b (a redelivery after a's ack was lost): processed, nothing handed over.
            #expect(try await commit(b, callId: "call-1", eventId: "e1") == .alreadyProcessed([]))
            // a's own poll finds it (a restarted dispatcher of the same relay).
            #expect(try await a.pendingOutboxIds(dueBy: nil, limit: 10) == ids)
            #expect(try await a.claimOutbox(ids: ids, dueBy: nil).map(\.id) == ids)
        }
    }

    @Test("a relay that dies holding entries: another takes them once the lease runs out, and not before")
    func deadRelaysClaimsLapse() async throws {
        try await withRelays(["relay-a", "relay-b"], lease: .seconds(3)) { (relays) async throws -> Void in
            let (a, b) = (relays[0].store, relays[1].store)
            guard case .committed(let entries) = try await commit(a, callId: "call-2", eventId: "e2") else {
                Issue.record("not committed")
                return
            }
            let ids = entries.map(\.id)
            // While a lives it renews its claim: b, asking again and again over two leases, gets nothing.
            let clock = ContinuousClock()
            let until = clock.now + .seconds(7)
            while clock.now < until {
                #expect(try await b.claimOutbox(ids: ids, dueBy: nil).isEmpty, "taken from a live relay")
                try await Task.sleep(for: .milliseconds(500))
            }
            // a dies (no release), and b takes the entry once a's last lease ran out.
            relays[0].run.cancel()
            var taken: [OutboxEntry] = []
            try await eventually(timeout: .seconds(20)) {
                taken = try await b.claimOutbox(ids: ids, dueBy: nil)
                return !taken.isEmpty
            }
            #expect(taken.map(\.id) == ids)
            // b's own claim is b's to take again. (Not necessarily at the first ask: b's renewal of its
            // claims locks the row for a moment, and a claim skips locked rows rather than wait.)
            try await eventually(timeout: .seconds(10), "b takes its own claim again") {
                try await b.claimOutbox(ids: ids, dueBy: nil).map(\.id) == ids
            }
        }
    }

    @Test("a relay stopping gracefully releases its claims: another takes them at once")
    func releaseAtStop() async throws {
        try await withRelays(["relay-a", "relay-b"], lease: .seconds(600)) { (relays) async throws -> Void in
            let (a, b) = (relays[0].store, relays[1].store)
            guard case .committed(let entries) = try await commit(a, callId: "call-3", eventId: "e3") else {
                Issue.record("not committed")
                return
            }
            #expect(try await b.claimOutbox(ids: entries.map(\.id), dueBy: nil).isEmpty)
            try await a.releaseClaims()
            #expect(try await b.claimOutbox(ids: entries.map(\.id), dueBy: nil).map(\.id) == entries.map(\.id))
        }
    }

    @Test("a chore's lease: one relay a round; the holder again; another once it ran out")
    func choreLeases() async throws {
        try await withRelays(["relay-a", "relay-b"], lease: .seconds(60)) { (relays) async throws -> Void in
            let (a, b) = (relays[0].store, relays[1].store)
            #expect(try await a.takeChoreLease("retention-purge", for: .seconds(3600), now: t0))
            #expect(try await !b.takeChoreLease("retention-purge", for: .seconds(3600), now: t0 + 10))
            #expect(try await b.takeChoreLease("contact-expiry", for: .seconds(3600), now: t0 + 10), "another chore")
            #expect(try await a.takeChoreLease("retention-purge", for: .seconds(3600), now: t0 + 3000))
            #expect(try await !b.takeChoreLease("retention-purge", for: .seconds(3600), now: t0 + 6599))
            #expect(try await b.takeChoreLease("retention-purge", for: .seconds(3600), now: t0 + 6601))
        }
    }
}
