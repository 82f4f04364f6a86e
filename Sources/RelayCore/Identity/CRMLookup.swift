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

/// What to do when a lookup finds several contacts (DESIGN.md, "Identity").
public enum SeveralMatchesPolicy: String, Sendable, Hashable, CaseIterable {
    /// Link none: the interaction keeps its temporary (phase-1) link. The seeds' rule.
    case temporary
    /// Link the first-created match, as some platforms do; the response's order is taken as creation order.
    case oldest
}

public enum MatchDecision: Sendable, Hashable {
    case linked(CRMContact)
    case noMatch
    case ambiguous(count: Int)

    public init(_ contacts: [CRMContact], policy: SeveralMatchesPolicy) {
        switch (contacts.count, policy) {
        case (0, _): self = .noMatch
        case (1, _): self = .linked(contacts[0])
        case (_, .oldest): self = .linked(contacts[0])
        case (let count, .temporary): self = .ambiguous(count: count)
        }
    }
}

/// Fills `{name}` placeholders with percent-encoded values; an unknown placeholder is an error, so a
/// typo in the configuration shows at start-up rather than as requests to a wrong URL.
public struct URLTemplate: Sendable, Hashable, CustomStringConvertible {
    public let template: String
    public let placeholders: Set<String>

    public init(_ template: String, allowed: Set<String>) throws(LookupResponseError) {
        var found: Set<String> = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw LookupResponseError(message: "unclosed { in \(template)")
            }
            let name = String(rest[rest.index(after: open)..<close])
            guard allowed.contains(name) else {
                throw LookupResponseError(
                    message:
                        "unknown placeholder {\(name)} (known: \(allowed.sorted().map { "{\($0)}" }.joined(separator: ", ")))"
                )
            }
            found.insert(name)
            rest = rest[rest.index(after: close)...]
        }
        self.template = template
        self.placeholders = found
    }

    public func render(_ values: [String: String]) -> String {
        var result = template
        for name in placeholders {
            result = result.replacingOccurrences(
                of: "{\(name)}",
                with: PercentEncoding.encodePathSegment(values[name] ?? "")
            )
        }
        return result
    }

    public var description: String { template }
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
