public import Logging
import RelayCore
import RelayStore

extension ContactDirectory {
    /// The directory on the store the configuration names, for tools that run beside the service (the
    /// CLI): the same keys as `run`, from the environment or key files.
    public static func open(configuration: RelayConfiguration, logger: Logger) async throws -> ContactDirectory {
        let hasher = try configuration.identityHashers().identifiers
        let cipher = try configuration.fieldCipher()
        let store = try configuration.openStore(logger: logger)
        let database: any RelayDatabase
        do {
            database = try await store.readyForCommand()
        } catch {
            throw ConfigurationError(
                key: store.postgres == nil ? "store.path" : "store.url",
                "cannot open the store: \(error)"
            )
        }
        return ContactDirectory(
            store: database,
            cipher: cipher,
            hasher: hasher,
            timeToLive: configuration.contacts.temporaryTimeToLive,
            defaultRegion: configuration.identity.defaultRegion
        )
    }
}
