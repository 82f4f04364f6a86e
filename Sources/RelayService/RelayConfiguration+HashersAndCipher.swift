public import RelayCore

extension RelayConfiguration {
    /// The keyed hashes of `identity.phoneHashKey` (for `PHONE:` ids, and for the contact graph's
    /// identifiers), or an error naming the key: `run` and the tools beside it need the same ones.
    public func identityHashers() throws(ConfigurationError) -> (phones: PhoneHasher, identifiers: IdentifierHasher) {
        guard let key = identity.phoneHashKey else {
            throw ConfigurationError(
                key: "identity.phoneHashKey",
                "is not set: set RELAY_IDENTITY_PHONE_HASH_KEY or RELAY_IDENTITY_PHONE_HASH_KEY_FILE"
            )
        }
        guard let phones = PhoneHasher(key: Array(key.utf8)), let identifiers = IdentifierHasher(key: Array(key.utf8))
        else {
            throw ConfigurationError(key: "identity.phoneHashKey", "is too short")
        }
        return (phones, identifiers)
    }

    /// The cipher of `privacy.encryptionKey`, which seals personal data at rest, or an error naming the key.
    public func fieldCipher() throws(ConfigurationError) -> FieldCipher {
        guard let encryptionKey = privacy.encryptionKey else {
            throw ConfigurationError(
                key: "privacy.encryptionKey",
                "is not set: set RELAY_PRIVACY_ENCRYPTION_KEY or RELAY_PRIVACY_ENCRYPTION_KEY_FILE (base64 of 32 bytes)"
            )
        }
        guard let cipher = FieldCipher(base64Key: encryptionKey) else {
            throw ConfigurationError(key: "privacy.encryptionKey", "must be base64 of exactly 32 bytes")
        }
        return cipher
    }
}
