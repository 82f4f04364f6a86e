import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import RelayStore

/// One leased connection used synchronously, inside one transaction, on one of the store's own threads.
///
/// The relay's rules run inside the store's transactions as synchronous code (`ContactTables`, an
/// event's transition): GRDB's transactions are synchronous closures, and the same rules must run on
/// both stores. On PostgreSQL each statement is sent on the connection's event loop and waited for here,
/// on a thread of the store's own pool (`PostgresStore.blockingThreads`): never an event loop thread
/// (NIO refuses that wait) and never the cooperative pool.
struct PostgresSession {
    let connection: PostgresConnection
    let logger: Logger
    /// What the advisory locks are scoped to: the schema, so relays of separate deployments (or tests)
    /// on one server never wait for each other.
    let lockNamespace: String

    @discardableResult
    func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        try Self.answer(to: connection.query(query, logger: logger), on: connection)
    }

    /// Waits for a statement's answer, and gives up once the connection has closed. A statement sent
    /// as the pool shut down was once neither answered nor failed: `wait()` then held the store's
    /// thread, and the relay's stop, for ever (a test run hung on it). A statement that waits for a lock
    /// another transaction holds is still waited for as long as it takes.
    static func answer<T: Sendable>(to future: EventLoopFuture<T>, on connection: PostgresConnection) throws -> T {
        // As `wait()` did: on the event loop the answer could never arrive.
        precondition(!future.eventLoop.inEventLoop, "a PostgreSQL statement waited for on its own event loop")
        let answered = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<Result<T, any Error>?>(nil)
        future.whenComplete { result in
            outcome.withLockedValue { $0 = result }
            answered.signal()
        }
        while answered.wait(timeout: .now() + .seconds(1)) == .timedOut {
            if connection.isClosed, outcome.withLockedValue({ $0 }) == nil {
                throw PostgresStoreError("the connection to PostgreSQL closed before it answered a statement")
            }
        }
        return try outcome.withLockedValue { $0 }!.get()
    }

    /// The number of rows an INSERT, UPDATE or DELETE changed.
    func changes(_ query: PostgresQuery) throws -> Int {
        try run(query).metadata.rows ?? 0
    }

    /// Runs `body` in a savepoint: when it throws, what it did is undone and the transaction goes on
    /// (PostgreSQL refuses every statement of a transaction after an error, until a rollback to a savepoint).
    func inSavepoint<T>(_ body: () throws -> T) throws -> T {
        try run("SAVEPOINT relay_write")
        do {
            let value = try body()
            try run("RELEASE SAVEPOINT relay_write")
            return value
        } catch {
            _ = try? run("ROLLBACK TO SAVEPOINT relay_write")
            _ = try? run("RELEASE SAVEPOINT relay_write")
            throw error
        }
    }

    /// Takes transaction-scoped advisory locks: every write that touches a call or an identifier takes
    /// its lock first, so two relays' transactions on one call run one after the other, as SQLite's
    /// single writer runs them. Taken in one order (sorted keys), so two batches never wait on each other
    /// in a cycle; with `sharingContactGraph`, the contact graph's shared lock first, in the same statement.
    func lock(
        calls callIds: some Sequence<String>,
        identifiers keys: some Sequence<String> = [String](),
        sharingContactGraph: Bool = false
    ) throws {
        let keys = Set(callIds.map { AdvisoryLockKey.call($0, in: lockNamespace) })
            .union(keys.map { AdvisoryLockKey.identifier($0, in: lockNamespace) })
        guard !keys.isEmpty || sharingContactGraph else { return }
        // unnest yields the array in order, and the function runs row by row: the locks are taken in it.
        // UNION ALL runs its branches one after the other, so the graph's lock comes first.
        let graph = sharingContactGraph ? AdvisoryLockKey.contactGraph(in: lockNamespace) : nil
        try run(
            """
            SELECT 0 FROM pg_advisory_xact_lock_shared(\(graph)) WHERE \(graph)::int8 IS NOT NULL
            UNION ALL SELECT count(pg_advisory_xact_lock(k)) FROM unnest(\(keys.sorted())::int8[]) AS k
            """
        )
    }

    /// The shared side of the lock between the event path and the operations on the contact graph
    /// (merges, imports, expiry, forget): many commits at once, or one graph operation alone.
    func lockContactGraph(exclusive: Bool) throws {
        let key = AdvisoryLockKey.contactGraph(in: lockNamespace)
        if exclusive {
            try run("SELECT pg_advisory_xact_lock(\(key))")
        } else {
            try run("SELECT pg_advisory_xact_lock_shared(\(key))")
        }
    }
}

/// The advisory lock keys of calls and identifiers: 64-bit FNV-1a of a prefixed name, the same in
/// every relay (Swift's `Hasher` is seeded per process). A collision only makes two unrelated calls
/// wait for each other.
enum AdvisoryLockKey {
    static func call(_ callId: String, in namespace: String) -> Int64 { hash(["call", namespace, callId]) }
    static func identifier(_ key: String, in namespace: String) -> Int64 { hash(["identifier", namespace, key]) }
    static func contactGraph(in namespace: String) -> Int64 { hash(["contact-graph", namespace]) }
    static func migration(schema: String) -> Int64 { hash(["migration", schema]) }
    static func deadLetterRecording(in namespace: String) -> Int64 { hash(["dead-letter-recording", namespace]) }

    private static func hash(_ parts: [String]) -> Int64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in parts.joined(separator: "\u{0}").utf8 {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: value)
    }
}

extension PostgresStore {
    /// Runs `body` in one transaction on a leased connection, on one of the store's own threads. An
    /// error of the server comes out as a `StoreError`; the body's own errors as they are.
    ///
    /// Without `transaction`, each statement of the body commits on its own: for statements that stand
    /// alone, two round trips fewer.
    @discardableResult
    func session<T: Sendable>(
        transaction: Bool = true,
        _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws -> T {
        let logger = self.logger
        let threads = blockingThreads
        let namespace = schema ?? "public"
        do {
            return try await client.withConnection { connection in
                try await threads.runIfActive {
                    let session = PostgresSession(connection: connection, logger: logger, lockNamespace: namespace)
                    guard transaction else { return try body(session) }
                    try session.run("BEGIN")
                    do {
                        let value = try body(session)
                        try session.run("COMMIT")
                        return value
                    } catch {
                        _ = try? session.run("ROLLBACK")
                        throw error
                    }
                }
            }
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Runs `body`, the server's errors coming out as `StoreError`s.
    static func storeErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw storeError(error)
        }
    }

    /// The server's errors as the store's (SQLSTATE and message: never a row's values, which PostgreSQL
    /// puts in the detail); any other error as it is.
    static func storeError(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        if let info = error.serverInfo {
            let state = info[.sqlState] ?? "?"
            let message = info[.message] ?? "no message"
            // Serialization failures, deadlocks, lock timeouts: the same work can succeed again.
            let code: StoreError.Code = ["40001", "40P01", "55P03"].contains(state) ? .busy : .databaseFailed
            return StoreError(code, "PostgreSQL \(state): \(message)")
        }
        return StoreError(.databaseFailed, "PostgreSQL: \(error.code)")
    }
}
