public import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle

/// The relay's store on PostgreSQL, for several relays on one database (`store.url: postgres://…`).
///
/// It grows behind the same protocols as the SQLite store, each held to the same answers by the
/// conformance suites of the tests. It keeps the record of dead letters (`DeadLetterStore`) today; the
/// interactions, the outbox, the timers and the contacts follow.
///
/// A `Service`: its connection pool runs in `run()`, in the relay's service group. `migrate()` brings
/// the schema to this version at start, under an advisory lock, so relays starting together migrate once.
public final class PostgresStore: Service, Sendable {
    let client: PostgresClient
    let logger: Logger

    /// - Parameters:
    ///   - configuration: where and how to connect (`PostgresURL`).
    ///   - searchPath: the schema to work in, when not the default (`public`): each test takes one of its own.
    public init(configuration: PostgresURL, searchPath: String? = nil, maximumConnections: Int = 10, logger: Logger) {
        var clientConfiguration = PostgresClient.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: .disable)
        clientConfiguration.options.maximumConnections = maximumConnections
        clientConfiguration.options.minimumConnections = 0
        if let searchPath { clientConfiguration.options.additionalStartupParameters = [("search_path", searchPath)] }
        client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        self.logger = logger
    }

    public func run() async throws {
        await client.run()
    }

    // MARK: Migrations

    /// The schema's versions, in order: each applied once, in one transaction with its record.
    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (
            1, "dead letters",
            [
                """
                CREATE TABLE dead_letter (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    call_id TEXT,
                    event_type TEXT,
                    event_id TEXT,
                    attempts BIGINT,
                    first_failure_at TIMESTAMPTZ,
                    last_failure_at TIMESTAMPTZ,
                    last_error TEXT NOT NULL,
                    target_method TEXT,
                    target_url TEXT,
                    target_status BIGINT,
                    origin_exchange TEXT,
                    origin_routing_key TEXT,
                    replay_count BIGINT NOT NULL DEFAULT 0,
                    payload_encoding TEXT NOT NULL,
                    payload BYTEA NOT NULL,
                    message BYTEA NOT NULL,
                    headers TEXT NOT NULL DEFAULT '{}',
                    routing_key TEXT NOT NULL DEFAULT '',
                    state TEXT NOT NULL DEFAULT 'open'
                        CHECK (state IN ('open', 'replaying', 'replayed', 'purged', 'resolved')),
                    state_changed_at TIMESTAMPTZ,
                    note TEXT,
                    recorded_at TIMESTAMPTZ NOT NULL,
                    copies BIGINT NOT NULL DEFAULT 1
                )
                """,
                "CREATE INDEX dead_letter_by_state ON dead_letter (state, seq)",
                "CREATE INDEX dead_letter_by_reason ON dead_letter (reason, state)",
                "CREATE INDEX dead_letter_by_call ON dead_letter (call_id)",
            ]
        )
    ]

    /// The key of the advisory lock migrations hold: any fixed number the relay alone uses.
    static let migrationLock: Int64 = 0x7265_6C61_795F_6D69  // "relay_mi"

    /// Runs `body` in a transaction; an error the body threw comes out as itself, not wrapped in
    /// postgres-nio's `PostgresTransactionError` (which also says whether the rollback worked).
    func transaction<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await client.withTransaction(logger: logger, isolation: isolation, body)
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error
        }
    }

    /// Brings the schema to this version; returns the versions it applied.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS relay_schema_migration (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM relay_schema_migration", logger: logger)
                .decode(Int.self)
            {
                applied.insert(version)
            }
            if let newest = applied.max(), newest > Self.migrations.last?.version ?? 0 {
                throw PostgresStoreError(
                    "the database's schema is at version \(newest), newer than this relay knows "
                        + "(\(Self.migrations.last?.version ?? 0)): upgrade this relay")
            }
            var done: [Int] = []
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO relay_schema_migration (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger)
                done.append(migration.version)
            }
            return done
        }
    }

    /// The versions applied, in order.
    public func schemaVersions() async throws -> [Int] {
        var versions: [Int] = []
        for try await version in try await client.query("SELECT version FROM relay_schema_migration ORDER BY version", logger: logger)
            .decode(Int.self)
        {
            versions.append(version)
        }
        return versions
    }
}

/// A failure of the PostgreSQL store that is not the server's own error.
public struct PostgresStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// `postgres://user:password@host:port/database`, as `store.url` gives it. The password may instead
/// come from a secret; percent-escapes in the user and password are decoded (once).
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Nil, with the reason, when `text` is not such a URL.
    public init(parsing text: String) throws(PostgresStoreError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            scheme == "postgres" || scheme == "postgresql"
        else { throw PostgresStoreError("not a postgres:// URL") }
        guard let host = components.host, !host.isEmpty else { throw PostgresStoreError("the URL names no host") }
        guard let username = components.user, !username.isEmpty else { throw PostgresStoreError("the URL names no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw PostgresStoreError("the URL names no database (postgres://…/relay)") }
        self.host = host
        self.port = components.port ?? 5432
        // URLComponents has decoded them already.
        self.username = username
        self.password = components.password
        self.database = database
    }

    /// The URL with its password hidden: what logs and `config check` show.
    public var description: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }
}
