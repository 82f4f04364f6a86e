import RelayCore
import RelayStore

extension ContactDirectory {
    /// The directory on the store the configuration names, for tools that run beside the service (the
    /// CLI): the same keys as `run`, from the environment or key files.
    public static func open(configuration: RelayConfiguration) throws(ConfigurationError) -> ContactDirectory {
        guard let key = configuration.identity.phoneHashKey else {
            throw ConfigurationError(
                key: "identity.phoneHashKey",
                "is not set: set RELAY_IDENTITY_PHONE_HASH_KEY or RELAY_IDENTITY_PHONE_HASH_KEY_FILE")
        }
        guard let hasher = IdentifierHasher(key: Array(key.utf8)) else {
            throw ConfigurationError(key: "identity.phoneHashKey", "is too short")
        }
        guard let encryptionKey = configuration.privacy.encryptionKey else {
            throw ConfigurationError(
                key: "privacy.encryptionKey",
                "is not set: set RELAY_PRIVACY_ENCRYPTION_KEY or RELAY_PRIVACY_ENCRYPTION_KEY_FILE (base64 of 32 bytes)")
        }
        guard let cipher = FieldCipher(base64Key: encryptionKey) else {
            throw ConfigurationError(key: "privacy.encryptionKey", "must be base64 of exactly 32 bytes")
        }
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
