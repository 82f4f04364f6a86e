import Foundation
import PostgresNIO
import RelayStore
import RelayTesting
import Testing

@testable import RelayPostgres

/// What only the PostgreSQL store has: versioned migrations that several relays starting at once
/// apply once, and its URL.
@Suite("PostgreSQL store")
struct PostgresStoreTests {
    @Test("migrations apply once, in order, however many relays start together; a newer schema is refused")
    func migrations() async throws {
        try await TestPostgres.withSchema { (migrated: PostgresStore) async throws -> Void in
            #expect(try await migrated.schemaVersions() == PostgresStore.migrations.map(\.version))
            #expect(try await migrated.migrate() == [], "a second start applies nothing")
        }
        // Three relays starting at once on an empty schema: the advisory lock lets one migrate.
        try await TestPostgres.withEmptySchema { url, schema in
            let relays = (0..<3).map { _ in PostgresStore(configuration: url, searchPath: schema, logger: TestPostgres.logger) }
            let runs = relays.map { relay in Task { try await relay.run() } }
            defer { for run in runs { run.cancel() } }
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for relay in relays { group.addTask { try await relay.migrate() } }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
            #expect(applied.flatMap { $0 }.sorted() == PostgresStore.migrations.map(\.version), "\(applied)")
            #expect(try await relays[0].schemaVersions() == PostgresStore.migrations.map(\.version))

            // A database a newer relay migrated: this one refuses to work on it.
            try await relays[0].client.query(
                "INSERT INTO relay_schema_migration (version, name) VALUES (999, 'future')", logger: TestPostgres.logger)
            let refusal = await #expect(throws: PostgresStoreError.self) { try await relays[1].migrate() }
            #expect(refusal?.description.contains("version 999, newer than this relay knows") == true)
        }
    }

    @Test("a wrong password is an error naming the server and the settings to check, not a hang")
    func wrongPasswordFailsInTime() async throws {
        var url = try TestPostgres.url()
        url.password = "not-the-password"
        let store = PostgresStore(configuration: url, maximumConnections: 1, logger: TestPostgres.logger)
        let run = Task { try await store.run() }
        defer { run.cancel() }
        let error = await #expect(throws: PostgresStoreError.self) { try await store.migrate(timeout: .seconds(2)) }
        #expect(error?.description.contains("\(url.host):\(url.port)/\(url.database) did not answer") == true, "\(String(describing: error))")
        #expect(error?.description.contains("not-the-password") == false)
    }

    @Test("store.url: postgres://user:password@host:port/database, the password never shown")
    func url() throws {
        let url = try PostgresURL(parsing: "postgres://relay:s%40cret@db.internal:6432/relay")
        #expect(url == PostgresURL(host: "db.internal", port: 6432, username: "relay", password: "s@cret", database: "relay"))
        #expect(url.description == "postgres://relay:***@db.internal:6432/relay")
        #expect(try PostgresURL(parsing: "postgresql://relay@localhost/relay").port == 5432)
        #expect(try PostgresURL(parsing: "postgres://relay:50%2541@localhost/relay").password == "50%41", "decoded once")
        for (text, reason) in [
            ("mysql://relay@localhost/relay", "not a postgres:// URL"), ("postgres://localhost/relay", "names no user"),
            ("postgres://relay@localhost", "names no database"),
        ] {
            #expect(throws: PostgresStoreError.self, "\(text)") { try PostgresURL(parsing: text) }
            #expect((try? PostgresURL(parsing: text)) == nil)
            do { _ = try PostgresURL(parsing: text) } catch { #expect(error.description.contains(reason), "\(text): \(error)") }
        }
    }
}
