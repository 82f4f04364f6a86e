import Foundation

/// A customer as a CRM (and ERP) describes it: the fields the relay copies to the platform.
public struct CRMContact: Sendable, Hashable, Codable {
    public var contactId: String
    public var accountId: String?
    public var name: String?
    public var email: String?
    public var caseId: String?
    public var loyaltyTier: String?
    public var previousInteractionCount: Int?
    /// From the ERP, by the contact's account id.
    public var erpAccountStatus: String?

    public init(
        contactId: String,
        accountId: String? = nil,
        name: String? = nil,
        email: String? = nil,
        caseId: String? = nil,
        loyaltyTier: String? = nil,
        previousInteractionCount: Int? = nil,
        erpAccountStatus: String? = nil
    ) {
        self.contactId = contactId
        self.accountId = accountId
        self.name = name
        self.email = email
        self.caseId = caseId
        self.loyaltyTier = loyaltyTier
        self.previousInteractionCount = previousInteractionCount
        self.erpAccountStatus = erpAccountStatus
    }
}

/// A CRM contact found by the customer's name alone: shown to the agent, who may link it, and never
/// linked or sent as `externalId` by the relay (seeds: "a match on name alone is only a suggestion").
public struct CRMSuggestion: Sendable, Hashable, Codable {
    /// `CRM:{contactId}`.
    public var externalId: String
    /// The contact's name as the CRM has it; personal data, sealed at rest.
    public var name: String?

    public init(externalId: String, name: String?) {
        self.externalId = externalId
        self.name = name
    }
}
