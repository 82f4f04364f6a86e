import Foundation
import Logging
import PostgresNIO
import RelayStore
import Testing

@testable import RelayPostgres

/// The stores a conformance suite runs against: each test takes one as its argument and must get
/// the same answers from both.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// Runs `body` on a fresh, empty store of this kind: a SQLite file of its own, or a PostgreSQL
    /// schema of its own, migrated, dropped afterwards.
    func withDeadLetterStore(_ body: (any DeadLetterStore) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            try await withTemporaryDatabase { path in try await body(try SQLiteInteractionStore(path: path)) }
        case .postgres:
            try await TestPostgres.withSchema { store in try await body(store) }
        }
    }
}

/// The PostgreSQL server the tests use: `scripts/test` starts it (scripts/postgres) and says where in
/// RELAY_TEST_POSTGRES_URL. Without it a PostgreSQL test fails, saying how to start one: it never skips.
enum TestPostgres {
    static var logger: Logger {
        var logger = Logger(label: "test.postgres")
        logger.logLevel = .warning
        return logger
    }

    static func url() throws -> PostgresURL {
        let environment = ProcessInfo.processInfo.environment
        if let text = environment["RELAY_TEST_POSTGRES_URL"], !text.isEmpty { return try PostgresURL(parsing: text) }
        // After `scripts/postgres start` by hand: its password file and port.
        let root = environment["RELAY_REPO_ROOT"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        guard let password = try? String(contentsOfFile: root + "/.run/postgres/password", encoding: .utf8) else {
            throw PostgresStoreError(
                "no PostgreSQL for the tests: run scripts/test, or scripts/postgres start and "
                    + "export RELAY_TEST_POSTGRES_URL=$(scripts/postgres url)")
        }
        return PostgresURL(
            host: "127.0.0.1", port: Int(environment["RELAY_POSTGRES_PORT"] ?? "") ?? 5433, username: "relay",
            password: password.trimmingCharacters(in: .whitespacesAndNewlines), database: "relay")
    }

    /// Runs `body` on a store working in a new schema of its own, migrated; the schema is dropped after.
    static func withSchema<T>(_ body: (PostgresStore) async throws -> T) async throws -> T {
        let url = try url()
        let schema = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let admin = PostgresStore(configuration: url, maximumConnections: 1, logger: logger)
        let adminRun = Task { try await admin.run() }
        defer { adminRun.cancel() }
        try await admin.client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: logger)
        let store = PostgresStore(configuration: url, searchPath: schema, logger: logger)
        let run = Task { try await store.run() }
        func dropSchema() async {
            run.cancel()
            _ = try? await admin.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
        }
        do {
            try await store.migrate()
            let result = try await body(store)
            await dropSchema()
            return result
        } catch {
            await dropSchema()
            throw error
        }
    }
}
