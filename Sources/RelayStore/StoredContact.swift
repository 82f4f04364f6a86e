public import Foundation
public import RelayCore

/// A contact as stored: ids, types and times in clear; name, attributes, notes and identifier values
/// sealed by the caller (`FieldCipher`), which alone holds the key.
public struct StoredContact: Sendable, Hashable {
    public var id: String
    public var type: ContactType
    public var mergedInto: String?
    public var aliases: [String]
    public var name: [UInt8]?
    public var nameKey: String?
    public var attributes: [UInt8]?
    public var notes: [UInt8]?
    /// The sealed list of the contact's own identifiers (kind and value).
    public var identifiers: [UInt8]?
    /// Their keyed hashes, in clear: how they are found, and released when the contact lets them go.
    public var identifierKeys: [String]
    public var createdAt: Date
    public var updatedAt: Date
    public var lastInteractionAt: Date?
    public var expiresAt: Date?
    public var expiredAt: Date?

    public init(
        id: String,
        type: ContactType,
        mergedInto: String?,
        aliases: [String],
        name: [UInt8]?,
        nameKey: String?,
        attributes: [UInt8]?,
        notes: [UInt8]?,
        identifiers: [UInt8]?,
        identifierKeys: [String],
        createdAt: Date,
        updatedAt: Date,
        lastInteractionAt: Date?,
        expiresAt: Date?,
        expiredAt: Date?
    ) {
        self.id = id
        self.type = type
        self.mergedInto = mergedInto
        self.aliases = aliases
        self.name = name
        self.nameKey = nameKey
        self.attributes = attributes
        self.notes = notes
        self.identifiers = identifiers
        self.identifierKeys = identifierKeys
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastInteractionAt = lastInteractionAt
        self.expiresAt = expiresAt
        self.expiredAt = expiredAt
    }
}
