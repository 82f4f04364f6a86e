import Foundation
public import Logging
import PostgresNIO
public import RelayPostgres
public import RelayService
public import RelayStore

/// The stores a conformance suite runs against: each test takes one as its argument and must get
/// the same answers from both.
public enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case postgres

    public var description: String { rawValue }

    /// The store the relays of the integration tests run on: SQLite unless RELAY_TEST_STORE=postgres,
    /// which runs the same tests on PostgreSQL.
    public static var forIntegrationTests: StoreKind {
        StoreKind(rawValue: ProcessInfo.processInfo.environment["RELAY_TEST_STORE"] ?? "") ?? .sqlite
    }

    /// Runs `body` on a fresh, empty store of this kind: a SQLite file of its own, or a PostgreSQL
    /// schema of its own, migrated, dropped afterwards.
    public func withStore<T>(
        _ body: (any InteractionStore & ContactStore & DeadLetterStore) async throws -> T
    ) async throws -> T {
        switch self {
        case .sqlite:
            try await withTemporaryDatabase { path in try await body(try SQLiteInteractionStore(path: path)) }
        case .postgres:
            try await TestPostgres.withSchema { store in try await body(store) }
        }
    }
}

/// Runs `body` with a database path in a fresh temporary directory, removed afterwards.
public func withTemporaryDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("relay-store-tests-\(UUID().uuidString)", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory.appendingPathComponent("relay.sqlite").path)
}

/// The PostgreSQL server the tests use: `scripts/test` starts it (scripts/postgres) and says where in
/// RELAY_TEST_POSTGRES_URL. Without it a PostgreSQL test fails, saying how to start one: it never skips.
public enum TestPostgres {
    public static var logger: Logger {
        var logger = Logger(label: "test.postgres")
        logger.logLevel = .warning
        return logger
    }

    public static func url() throws -> PostgresURL {
        let environment = ProcessInfo.processInfo.environment
        if let text = environment["RELAY_TEST_POSTGRES_URL"], !text.isEmpty { return try PostgresURL(parsing: text) }
        // After `scripts/postgres start` by hand: its password file and port.
        let root =
            environment["RELAY_REPO_ROOT"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        guard let password = try? String(contentsOfFile: root + "/.run/postgres/password", encoding: .utf8) else {
            throw PostgresStoreError(
                "no PostgreSQL for the tests: run scripts/test, or scripts/postgres start and "
                    + "export RELAY_TEST_POSTGRES_URL=$(scripts/postgres url)"
            )
        }
        return PostgresURL(
            host: "127.0.0.1",
            port: Int(environment["RELAY_POSTGRES_PORT"] ?? "") ?? 5433,
            username: "relay",
            password: password.trimmingCharacters(in: .whitespacesAndNewlines),
            database: "relay"
        )
    }

    /// Points a relay's store at the test server, in `schema` (the relay creates it).
    public static func configure(_ store: inout RelayConfiguration.Store, schema: String) throws {
        let url = try url()
        store.url = url.withoutPassword
        store.password = url.password
        store.schema = schema.lowercased().replacingOccurrences(of: ".", with: "_").replacingOccurrences(
            of: "-",
            with: "_"
        )
    }

    /// Drops a schema a relay of a test created; best effort.
    public static func dropSchema(_ schema: String) async {
        guard let url = try? url() else { return }
        await withAdminClient(url) { admin in
            _ = try? await admin.query(
                PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"),
                logger: logger
            )
        }
    }

    static func withAdminClient<T>(_ url: PostgresURL, _ body: (PostgresClient) async throws -> T) async rethrows -> T {
        let admin = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            defer { group.cancelAll() }
            return try await body(admin)
        }
    }

    /// Runs `body` with the name of a new, empty schema of its own on the test server, dropped after.
    public static func withEmptySchema<T>(
        _ body: (_ url: PostgresURL, _ schema: String) async throws -> T
    ) async throws -> T {
        let url = try url()
        let schema = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return try await withAdminClient(url) { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: logger)
            do {
                let result = try await body(url, schema)
                try await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
                return result
            } catch {
                _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
                throw error
            }
        }
    }

    /// Runs `body` on a store working in a new schema of its own, migrated; the schema is dropped after.
    public static func withSchema<T>(_ body: (PostgresStore) async throws -> T) async throws -> T {
        try await withEmptySchema { url, schema in
            let store = PostgresStore(configuration: url, searchPath: schema, logger: logger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.run() }
                defer { group.cancelAll() }
                try await store.migrate()
                return try await body(store)
            }
        }
    }
}

public struct TestPostgresError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
