import RelayCore
import RelayStore

extension ContactDirectory {
    /// The directory on the store the configuration names, for tools that run beside the service (the
    /// CLI): the same keys as `run`, from the environment or key files.
    public static func open(configuration: RelayConfiguration) throws(ConfigurationError) -> ContactDirectory {
        let hasher = try configuration.identityHashers().identifiers
        let cipher = try configuration.fieldCipher()
        let store: SQLiteInteractionStore
        do {
            store = try SQLiteInteractionStore(path: configuration.store.path)
        } catch {
            throw ConfigurationError(key: "store.path", "cannot open the store: \(error)")
        }
        return ContactDirectory(
            store: store, cipher: cipher, hasher: hasher, timeToLive: configuration.contacts.temporaryTimeToLive,
            defaultRegion: configuration.identity.defaultRegion)
    }
}
