import Foundation
public import Logging
public import RelayPostgres
public import RelayStore

/// The store a configuration names, open: SQLite at `store.path`, or PostgreSQL at `store.url`.
public struct OpenedStore: Sendable {
    public let database: any RelayDatabase
    /// The PostgreSQL store, when that is the one: its connection pool runs in `run()` (a `Service`),
    /// and its schema is brought to this version (`migrate()`) before anything else uses it.
    public let postgres: PostgresStore?
    /// Where it is, for logs and `config check`: the file, or the URL with its password hidden.
    public let location: String

    /// For a command's whole life (the CLI tools): the pool runs in a task of its own, and the schema is
    /// migrated before this returns. The relay itself runs the pool in its task group instead.
    public func readyForCommand() async throws -> any RelayDatabase {
        if let postgres {
            Task { try await postgres.run() }
            try await postgres.migrate()
        }
        return database
    }
}

extension RelayConfiguration {
    /// `store.instanceName`, or a new one: the host, the process and a random part (several relays may
    /// run in one process: the tests start them side by side).
    public func makeInstanceName() -> String {
        if let name = store.instanceName { return name }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "relay"
        return
            "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    /// Opens the store `store.url` names (PostgreSQL), or the SQLite file at `store.path` when unset.
    /// SQLite is migrated here; PostgreSQL once its pool runs (`OpenedStore.postgres`).
    ///
    /// - Parameter instance: the relay's name when this process carries out outbox entries (and so
    ///   claims them under it); nil for a tool beside the relays, which claims nothing.
    public func openStore(logger: Logger, instance: String? = nil) throws(ConfigurationError) -> OpenedStore {
        guard let text = store.url else {
            do {
                return OpenedStore(
                    database: try SQLiteInteractionStore(path: store.path),
                    postgres: nil,
                    location: store.path
                )
            } catch {
                throw ConfigurationError(key: "store.path", "cannot open the store: \(error)")
            }
        }
        var url: PostgresURL
        do {
            url = try PostgresURL(parsing: text)
        } catch {
            throw ConfigurationError(key: "store.url", error.description)
        }
        if let password = store.password { url.password = password }
        let postgres = PostgresStore(
            configuration: url,
            searchPath: store.schema == "public" ? nil : store.schema,
            maximumConnections: store.maxConnections,
            instance: instance,
            claimLease: store.claimLease,
            logger: logger
        )
        return OpenedStore(
            database: postgres,
            postgres: postgres,
            location: url.description + (store.schema == "public" ? "" : " (schema \(store.schema))")
        )
    }
}
