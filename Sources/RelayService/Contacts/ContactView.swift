public import Foundation
public import RelayCore

/// A canonical contact as operators see it: its own data, the identifiers of every alias joined, and
/// the merges that made it. Personal data in clear: for the operator's terminal or the admin API, never
/// for logs.
public struct ContactView: Sendable, Hashable, Codable {
    public var id: String
    public var type: ContactType
    public var name: String?
    public var attributes: [String: String]
    public var notes: [ContactNote]
    public var identifiers: [ContactIdentifier]
    /// Contacts merged into this one, directly or through others.
    public var aliases: [String]
    /// Live merges into this contact, oldest first (ids for `unmerge`).
    public var merges: [String]
    public var createdAt: Date
    public var updatedAt: Date
    public var lastInteractionAt: Date?
    public var expiresAt: Date?
    public var expiredAt: Date?
    /// CRM contacts that the name of a customer of this contact's interactions found (web chat,
    /// messaging), once each: shown to the agent, never linked.
    public var suggestions: [ContactSuggestion]
}

/// One interaction of a contact's journey.
public struct JourneyEntry: Sendable, Hashable, Codable {
    public var callId: String
    /// The contact or alias the interaction landed on.
    public var contactId: String
    /// What linked it: `phone`, `email`, `messaging:…`, or `new` (it created the contact).
    public var linkedBy: String
    public var channel: Channel?
    public var direction: CallDirection?
    public var at: Date
    public var queueId: String?
    public var agentId: String?
    public var wrapUpCode: String?
    public var status: Interaction.Status
    public var durationSeconds: Int?
    public var notes: String?
    /// CRM contacts the customer's name alone found: for the agent to link, or not.
    public var suggestions: [ContactSuggestion]
}

/// A CRM contact found by the customer's name alone (`CRMSuggestion`), as operators see it.
public struct ContactSuggestion: Sendable, Hashable, Codable {
    public var externalId: String
    public var name: String?
    /// The interaction whose customer's name found it.
    public var callId: String
    public var suggestedAt: Date
}

public struct Journey: Sendable, Hashable, Codable {
    public var contact: ContactView
    /// Newest first.
    public var interactions: [JourneyEntry]
}

/// How an operator names a contact: its id, or one of its identifiers.
public enum ContactReference: Sendable, Hashable, CustomStringConvertible {
    case id(String)
    case identifier(ContactIdentifier)

    /// Reads `ct-…` as an id, `+…` as a number, `…@…` as an email, `CRM:…`/`ERP:…` as an external id.
    public init?(parsing text: String, defaultRegion: String = PhoneNumber.unknownRegion) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("+") {
            guard let identifier = ContactIdentifier(kind: .phone, raw: trimmed, defaultRegion: defaultRegion) else {
                return nil
            }
            self = .identifier(identifier)
        } else if trimmed.contains("@") {
            guard let identifier = ContactIdentifier(kind: .email, raw: trimmed) else { return nil }
            self = .identifier(identifier)
        } else if trimmed.hasPrefix("CRM:") || trimmed.hasPrefix("ERP:") {
            guard let identifier = ContactIdentifier(kind: .external, raw: trimmed) else { return nil }
            self = .identifier(identifier)
        } else if let colon = trimmed.firstIndex(of: ":"),
            let platform = MessagingPlatform(rawValue: String(trimmed[..<colon]).lowercased())
        {
            // `whatsapp:wa-123`: a messaging id, named with its platform.
            let messagingId = String(trimmed[trimmed.index(after: colon)...])
            guard let identifier = ContactIdentifier(kind: .messaging(platform), raw: messagingId) else { return nil }
            self = .identifier(identifier)
        } else if !trimmed.isEmpty {
            self = .id(trimmed)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .id(let id): id
        case .identifier(let identifier): identifier.description
        }
    }
}

/// A contact to create or update (API, import, agent): raw values, validated by the directory.
public struct ContactDraft: Sendable, Hashable {
    public var name: String?
    public var phones: [String]
    public var emails: [String]
    public var externalIds: [String]
    public var attributes: [String: String]
    public var note: String?

    public init(
        name: String? = nil,
        phones: [String] = [],
        emails: [String] = [],
        externalIds: [String] = [],
        attributes: [String: String] = [:],
        note: String? = nil
    ) {
        self.name = name
        self.phones = phones
        self.emails = emails
        self.externalIds = externalIds
        self.attributes = attributes
        self.note = note
    }
}
