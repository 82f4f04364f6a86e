import Foundation
public import Logging
import NIOPosix
import PostgresNIO
public import ServiceLifecycle

/// The relay's store on PostgreSQL, for several relays on one database (`store.url: postgres://…`).
///
/// It grows behind the same protocols as the SQLite store, each held to the same answers by the
/// conformance suites of the tests: the interactions, processed events, outbox, timers and overrides
/// (`InteractionStore`), the contact graph (`ContactStore`) and the record of dead letters
/// (`DeadLetterStore`).
///
/// A `Service`: its connection pool runs in `run()`, in the relay's service group. `migrate()` brings
/// the schema to this version at start, under an advisory lock, so relays starting together migrate once.
public final class PostgresStore: Service, Sendable {
    let client: PostgresClient
    let logger: Logger
    /// `host:port/database`, for errors.
    let endpoint: String
    /// The schema the tables live in when not the default (`public`): created by `migrate()`.
    let schema: String?
    /// This relay, as its claims on outbox entries name it; nil for a tool beside the relays (the CLI),
    /// which claims nothing: what it adds to the outbox is any relay's to take.
    let instance: String?
    /// How long a claim holds without renewal: a relay renews its claims every third of it, so another
    /// relay takes a dead one's work this long after its last renewal at most.
    let claimLease: Duration
    /// Where transactions that run the relay's synchronous rules wait for the server (`PostgresSession`):
    /// one thread per connection the pool may open, so no transaction waits for a thread.
    let blockingThreads: NIOThreadPool
    /// Where concurrent `settleOutbox` calls meet to be written together.
    let settlementGroup = PostgresSettlementGroup()

    /// - Parameters:
    ///   - configuration: where and how to connect (`PostgresURL`).
    ///   - searchPath: the schema to work in, when not the default (`public`): each test takes one of its own.
    ///   - instance: the relay's name in its claims (unique among the relays sharing the database); nil
    ///     for a tool that carries out no outbox entries.
    public init(
        configuration: PostgresURL,
        searchPath: String? = nil,
        maximumConnections: Int = 10,
        instance: String? = nil,
        claimLease: Duration = .seconds(15),
        logger: Logger
    ) {
        var clientConfiguration = configuration.clientConfiguration
        clientConfiguration.options.maximumConnections = maximumConnections
        clientConfiguration.options.minimumConnections = 0
        if let searchPath { clientConfiguration.options.additionalStartupParameters = [("search_path", searchPath)] }
        client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        self.logger = logger
        endpoint = "\(configuration.host):\(configuration.port)/\(configuration.database)"
        schema = searchPath
        self.instance = instance
        self.claimLease = claimLease
        blockingThreads = NIOThreadPool(numberOfThreads: maximumConnections)
        blockingThreads.start()
    }

    /// Runs until cancelled, not until graceful shutdown: the pool outlives the services around it,
    /// which still settle what they were running when the group began to shut down. (postgres-nio's
    /// client ends at graceful shutdown, so it runs detached from the group's shutdown signal.)
    public func run() async throws {
        let client = self.client
        let pool = Task.detached { await client.run() }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await pool.value }
                if instance != nil {
                    group.addTask { await self.renewClaimsUntilCancelled() }
                }
            }
        } onCancel: {
            pool.cancel()
        }
        try? await blockingThreads.shutdownGracefully()
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
        ),
        // The interactions, the outbox and the contact graph: SQLite's tables (SQLiteSchema v1 to v5) as
        // they stand. Times are seconds since 1970 as DOUBLE PRECISION, as SQLite keeps them
        // (`ColumnTime`), so a time the store returns at commit equals the one read back later, to the
        // bit, on both stores (`to_timestamp(x)` shows one). Nothing here holds a phone number, an email
        // or a name: external ids are pointers, and personal data is sealed.
        (
            2, "interactions, outbox and contacts",
            [
                """
                CREATE TABLE interaction (
                    call_id TEXT PRIMARY KEY,
                    status TEXT NOT NULL,
                    channel TEXT,
                    direction TEXT,
                    started_at DOUBLE PRECISION,
                    ended_at DOUBLE PRECISION,
                    wrapped_up_at DOUBLE PRECISION,
                    queue_id TEXT,
                    agent_id TEXT,
                    wrap_up_code TEXT,
                    disconnect_type TEXT,
                    external_id TEXT,
                    next_due_at DOUBLE PRECISION,
                    first_seen_at DOUBLE PRECISION NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL,
                    state BYTEA NOT NULL
                )
                """,
                "CREATE INDEX interaction_next_due_at ON interaction (next_due_at) WHERE next_due_at IS NOT NULL",
                """
                CREATE TABLE processed_event (
                    event_id TEXT PRIMARY KEY,
                    call_id TEXT NOT NULL,
                    processed_at DOUBLE PRECISION NOT NULL
                )
                """,
                "CREATE INDEX processed_event_processed_at ON processed_event (processed_at)",
                """
                CREATE TABLE outbox (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    cause_id TEXT NOT NULL,
                    call_id TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    payload BYTEA NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    due_at DOUBLE PRECISION NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    last_error TEXT,
                    finished_at DOUBLE PRECISION,
                    outcome TEXT
                )
                """,
                "CREATE INDEX outbox_cause_id ON outbox (cause_id)",
                "CREATE INDEX outbox_pending ON outbox (due_at, id) WHERE finished_at IS NULL",
                """
                CREATE TABLE identity_override (
                    phone_key TEXT PRIMARY KEY,
                    external_id TEXT NOT NULL,
                    call_id TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL
                )
                """,
                "CREATE INDEX identity_override_expires_at ON identity_override (expires_at)",
                """
                CREATE TABLE contact (
                    id TEXT PRIMARY KEY,
                    type TEXT NOT NULL,
                    merged_into TEXT,
                    aliases TEXT NOT NULL DEFAULT '[]',
                    name BYTEA,
                    name_key TEXT,
                    attributes BYTEA,
                    notes BYTEA,
                    identifiers BYTEA,
                    identifier_keys TEXT NOT NULL DEFAULT '',
                    created_at DOUBLE PRECISION NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL,
                    last_interaction_at DOUBLE PRECISION,
                    expires_at DOUBLE PRECISION,
                    expired_at DOUBLE PRECISION
                )
                """,
                "CREATE INDEX contact_expires_at ON contact (expires_at) WHERE expires_at IS NOT NULL",
                "CREATE INDEX contact_name_key ON contact (name_key) WHERE name_key IS NOT NULL",
                "CREATE TABLE contact_identifier (key TEXT PRIMARY KEY, contact_id TEXT NOT NULL)",
                """
                CREATE TABLE contact_interaction (
                    contact_id TEXT NOT NULL,
                    call_id TEXT NOT NULL,
                    linked_by TEXT NOT NULL,
                    suggestions TEXT,
                    linked_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (contact_id, call_id)
                )
                """,
                "CREATE TABLE interaction_note (call_id TEXT PRIMARY KEY, notes BYTEA NOT NULL)",
                """
                CREATE TABLE contact_merge (
                    id TEXT PRIMARY KEY,
                    target_id TEXT NOT NULL,
                    absorbed_id TEXT NOT NULL,
                    merged_at DOUBLE PRECISION NOT NULL,
                    undone_at DOUBLE PRECISION,
                    snapshot BYTEA NOT NULL
                )
                """,
                "CREATE INDEX contact_merge_target_id ON contact_merge (target_id)",
                "CREATE INDEX contact_merge_absorbed_id ON contact_merge (absorbed_id)",
                """
                CREATE TABLE crm_suggestion (
                    call_id TEXT NOT NULL,
                    external_id TEXT NOT NULL,
                    name BYTEA,
                    suggested_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (call_id, external_id)
                )
                """,
            ]
        ),
        // Several relays on one database: an outbox entry is carried out by the relay that claims it,
        // until its lease runs out; the scheduled chores run on the relay that holds their lease.
        (
            3, "claims and leases",
            [
                "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
                "ALTER TABLE outbox ADD COLUMN claimed_until DOUBLE PRECISION",
                "CREATE INDEX outbox_claimed_by ON outbox (claimed_by) WHERE finished_at IS NULL",
                """
                CREATE TABLE chore_lease (
                    name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    held_until DOUBLE PRECISION NOT NULL
                )
                """,
            ]
        ),
    ]

    /// The key of the advisory lock migrations hold, one per schema: relays sharing a schema migrate
    /// it once, and relays in other schemas (tests, several deployments on one server) do not wait.
    var migrationLock: Int64 { AdvisoryLockKey.migration(schema: schema ?? "public") }

    /// Runs `body` in a transaction; an error the body threw comes out as itself, not wrapped in
    /// postgres-nio's `PostgresTransactionError` (which also says whether the rollback worked).
    func transaction<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
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
    public func migrate(timeout: Duration = .seconds(30)) async throws -> [Int] {
        // postgres-nio's pool retries a refused or failed connection for ever, and a query waits for
        // it: without a deadline a relay (or a tool) facing a wrong password would hang, saying nothing.
        try await withThrowingTaskGroup { group in
            group.addTask { try await self.migrateNow() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw PostgresStoreError(
                    "PostgreSQL at \(self.endpoint) did not answer within \(timeout): unreachable, or refusing these "
                        + "credentials (store.url, store.password)"
                )
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func migrateNow() async throws -> [Int] {
        // The server's errors as the store's ("PostgreSQL 28P01: password authentication failed"),
        // not postgres-nio's generic text.
        try await Self.storeErrors {
            try await transaction { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
                // The connection's search_path names it already; the statements after this one find it.
                if let schema {
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \"\(schema)\""),
                        logger: logger
                    )
                }
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS relay_schema_migration (
                        version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                    """,
                    logger: logger
                )
                var applied = Set<Int>()
                for try await version in try await connection.query(
                    "SELECT version FROM relay_schema_migration",
                    logger: logger
                )
                .decode(Int.self) {
                    applied.insert(version)
                }
                if let newest = applied.max(), newest > Self.migrations.last?.version ?? 0 {
                    throw PostgresStoreError(
                        "the database's schema is at version \(newest), newer than this relay knows "
                            + "(\(Self.migrations.last?.version ?? 0)): upgrade this relay"
                    )
                }
                var done: [Int] = []
                for migration in Self.migrations where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO relay_schema_migration (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: logger
                    )
                    done.append(migration.version)
                }
                return done
            }
        }
    }

    /// The versions applied, in order.
    public func schemaVersions() async throws -> [Int] {
        var versions: [Int] = []
        for try await version in try await client.query(
            "SELECT version FROM relay_schema_migration ORDER BY version",
            logger: logger
        )
        .decode(Int.self) {
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
        guard let username = components.user, !username.isEmpty else {
            throw PostgresStoreError("the URL names no user")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw PostgresStoreError("the URL names no database (postgres://…/relay)") }
        self.host = host
        self.port = components.port ?? 5432
        // URLComponents has decoded them already.
        self.username = username
        self.password = components.password
        self.database = database
    }

    /// The URL without its password, for `store.url` when the password goes in `store.password`.
    public var withoutPassword: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    /// The URL with its password hidden: what logs and `config check` show.
    public var description: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }
}
