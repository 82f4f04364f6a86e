import Foundation

/// Where a configured lookup finds each field in its response: configuration, not code, so a
/// Salesforce-, ServiceNow- or SAP-style API needs no change to the relay.
public struct LookupMapping: Sendable, Hashable {
    /// The array of matches; empty pointer: the whole response is the one match.
    public var results: JSONPointer
    /// Each of these is relative to one match.
    public var contactId: JSONPointer?
    public var accountId: JSONPointer?
    public var name: JSONPointer?
    public var email: JSONPointer?
    public var caseId: JSONPointer?
    public var loyaltyTier: JSONPointer?
    public var previousInteractionCount: JSONPointer?
    public var accountStatus: JSONPointer?

    public init(
        results: JSONPointer,
        contactId: JSONPointer? = nil,
        accountId: JSONPointer? = nil,
        name: JSONPointer? = nil,
        email: JSONPointer? = nil,
        caseId: JSONPointer? = nil,
        loyaltyTier: JSONPointer? = nil,
        previousInteractionCount: JSONPointer? = nil,
        accountStatus: JSONPointer? = nil
    ) {
        self.results = results
        self.contactId = contactId
        self.accountId = accountId
        self.name = name
        self.email = email
        self.caseId = caseId
        self.loyaltyTier = loyaltyTier
        self.previousInteractionCount = previousInteractionCount
        self.accountStatus = accountStatus
    }

    /// The matches in a CRM search response; matches without a contact id are skipped.
    public func contacts(in body: [UInt8]) throws(LookupResponseError) -> [CRMContact] {
        let document = try Self.parse(body)
        let matches: [Any]
        if results.tokens.isEmpty {
            matches = [document]
        } else if let array = results.resolve(in: document) as? [Any] {
            matches = array
        } else if results.resolve(in: document) == nil || results.resolve(in: document) is NSNull {
            matches = []
        } else {
            throw LookupResponseError(message: "\(results) is not an array in the response")
        }
        return matches.compactMap { match in
            guard let contactId = contactId?.string(in: match), !contactId.isEmpty else { return nil }
            return CRMContact(
                contactId: contactId,
                accountId: accountId?.string(in: match),
                name: name?.string(in: match),
                email: email?.string(in: match),
                caseId: caseId?.string(in: match),
                loyaltyTier: loyaltyTier?.string(in: match),
                previousInteractionCount: previousInteractionCount?.string(in: match).flatMap { Int($0) }
            )
        }
    }

    /// The account status in an ERP response.
    public func accountStatus(in body: [UInt8]) throws(LookupResponseError) -> String? {
        let document = try Self.parse(body)
        return accountStatus?.string(in: document)
    }

    static func parse(_ body: [UInt8]) throws(LookupResponseError) -> Any {
        do {
            return try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
        } catch {
            throw LookupResponseError(message: "the response is not JSON")
        }
    }
}

public struct LookupResponseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
