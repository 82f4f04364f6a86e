/// Why a contact operation was refused. Every refusal leaves everything as it was; the message names
/// contacts by id and identifiers masked, so it is safe to log and to show.
public struct ContactError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case notFound
        case identifierOwned
        case invalidIdentifier
        case bothCurated
        case sameContact
        case notMerged
        case laterMergeFirst
        case expired
    }

    public let code: Code
    public let message: String
    /// For `identifierOwned`: the contact that owns it.
    public let ownerId: String?

    public init(_ code: Code, _ message: String, ownerId: String? = nil) {
        self.code = code
        self.message = message
        self.ownerId = ownerId
    }

    public var description: String { message }
}
