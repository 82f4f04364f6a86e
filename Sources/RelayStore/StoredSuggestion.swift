public import Foundation

/// A `crm_suggestion` row: a CRM contact that only the customer's name found.
public struct StoredSuggestion: Sendable, Hashable {
    public var callId: String
    public var externalId: String
    public var name: [UInt8]?
    public var suggestedAt: Date

    public init(callId: String, externalId: String, name: [UInt8]?, suggestedAt: Date) {
        self.callId = callId
        self.externalId = externalId
        self.name = name
        self.suggestedAt = suggestedAt
    }
}
