public import RelayCore

/// What an interaction's event brings to the identity graph, prepared (hashed and sealed) before the
/// transaction, so the transaction does only lookups and writes.
public struct ContactCapture: Sendable {
    /// For start events: who the customer may be.
    public var sighting: ContactSighting?
    /// The sighting's identifiers' keys, in its order, and the identifiers sealed as a new contact keeps them.
    public var keys: [String]
    public var sealedIdentifiers: [UInt8]?
    public var nameKey: String?
    public var sealedName: [UInt8]?
    /// The id a new contact gets if nothing links.
    public var newContactId: String
    public var timeToLive: Duration
    /// A wrap-up's notes, sealed.
    public var sealedNotes: [UInt8]?

    public init(
        sighting: ContactSighting?,
        keys: [String],
        sealedIdentifiers: [UInt8]?,
        nameKey: String?,
        sealedName: [UInt8]?,
        newContactId: String,
        timeToLive: Duration,
        sealedNotes: [UInt8]?
    ) {
        self.sighting = sighting
        self.keys = keys
        self.sealedIdentifiers = sealedIdentifiers
        self.nameKey = nameKey
        self.sealedName = sealedName
        self.newContactId = newContactId
        self.timeToLive = timeToLive
        self.sealedNotes = sealedNotes
    }
}
