import Foundation
import PostgresNIO
import RelayTesting
import Testing

@testable import RelayPostgres
@testable import RelayStore

extension StoreKind {
    /// `withStore`, with what the suites of this target also count in the tables.
    func withInteractionStore(_ body: (any TestableStore) async throws -> Void) async throws {
        try await withStore { store in
            // Both stores conform (below).
            try await body(store as! any TestableStore)
        }
    }

    func withDeadLetterStore(_ body: (any DeadLetterStore) async throws -> Void) async throws {
        try await withStore { store in try await body(store) }
    }
}

/// A store as the conformance suites see it: its protocols, and what the tests count in its tables.
protocol TestableStore: InteractionStore, ContactStore, DeadLetterStore {
    func rowCounts() async throws -> (interactions: Int, processedEvents: Int, outbox: Int)
}

extension SQLiteInteractionStore: TestableStore {}

extension PostgresStore: TestableStore {
    func rowCounts() async throws -> (interactions: Int, processedEvents: Int, outbox: Int) {
        let rows = try await client.query(
            """
            SELECT (SELECT COUNT(*) FROM interaction), (SELECT COUNT(*) FROM processed_event),
                (SELECT COUNT(*) FROM outbox)
            """,
            logger: logger
        )
        for try await (interactions, processedEvents, outbox) in rows.decode((Int, Int, Int).self) {
            return (interactions, processedEvents, outbox)
        }
        return (0, 0, 0)
    }
}
