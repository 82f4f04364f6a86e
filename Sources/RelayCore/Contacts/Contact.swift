public import Foundation

/// How much the relay knows about a contact, and so whether it may expire (DESIGN.md, "Identity").
public enum ContactType: String, Sendable, Hashable, Codable, CaseIterable {
    /// No personal data: only a cookie or web id, or nothing at all (a withheld number).
    case ephemeral
    /// Some personal data (a number, an email, a messaging id, a name) but nobody vouched for it.
    case identified
    /// Created or edited by a person (API, import, an agent): never expires.
    case curated

    public var isTemporary: Bool { self != .curated }
}

/// One way to recognise a contact. `value` is normalised for its kind, so the same number written two
/// ways is one identifier; `kind` says how to hash it (`IdentifierHasher`).
public struct ContactIdentifier: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable, Codable {
        case phone
        case email
        case messaging(MessagingPlatform)
        case cookie
        /// A pointer into a system of record (`CRM:123`, `ERP:A-1`).
        case external

        /// Stable text for storage and hashing; the messaging platform is part of it because the same id
        /// on two platforms is two people.
        public var name: String {
            switch self {
            case .phone: "phone"
            case .email: "email"
            case .messaging(let platform): "messaging:\(platform.rawValue)"
            case .cookie: "cookie"
            case .external: "external"
            }
        }

        public init?(name: String) {
            switch name {
            case "phone": self = .phone
            case "email": self = .email
            case "cookie": self = .cookie
            case "external": self = .external
            default:
                guard name.hasPrefix("messaging:"),
                    let platform = MessagingPlatform(rawValue: String(name.dropFirst("messaging:".count)))
                else { return nil }
                self = .messaging(platform)
            }
        }

        /// Whether the kind is personal data; a cookie alone leaves a contact ephemeral.
        public var isPersonal: Bool { self != .cookie }
    }

    public let kind: Kind
    public let value: String

    /// Builds an identifier from what a person or a file wrote, normalising it; nil when the value is
    /// not one of its kind (an unparseable number or email, an external id without a known prefix).
    public init?(kind: Kind, raw: String, defaultRegion: String = PhoneNumber.unknownRegion) {
        switch kind {
        case .phone:
            guard let number = PhoneNumber(normalizing: raw, defaultRegion: defaultRegion) else { return nil }
            value = number.e164
        case .email:
            guard let email = EmailAddress(normalizing: raw) else { return nil }
            // Local parts are case-sensitive on paper only: every mailbox provider a customer uses
            // ignores case, and one person writing `Alice@` and `alice@` must be one contact.
            value = email.normalized.lowercased()
        case .external:
            guard let id = ExternalID(parsing: String(raw.trimmingWhitespace())), id.source != .phone else {
                return nil
            }
            value = id.description
        case .messaging, .cookie:
            let trimmed = raw.trimmingWhitespace()
            guard !trimmed.isEmpty, trimmed.utf8.count <= 256 else { return nil }
            value = String(trimmed)
        }
        self.kind = kind
    }

    public static func phone(_ number: PhoneNumber) -> ContactIdentifier {
        ContactIdentifier(kind: .phone, normalized: number.e164)
    }

    /// For values already normalised (read back from storage).
    public init(kind: Kind, normalized: String) {
        self.kind = kind
        self.value = normalized
    }

    /// The lookup key: the keyed hash, never the value. A phone's key equals its `PHONE:` id's hash.
    public func key(_ hasher: IdentifierHasher) -> String {
        switch kind {
        case .phone:
            // Values of this kind were normalised to E.164 when the identifier was made.
            return hasher.keyedHash(PhoneNumber(alreadyNormalized: value))
        default:
            return hasher.keyedHash(kind: kind.name, value)
        }
    }

    /// Safe for logs and error messages: the kind and the last characters only.
    public var description: String { "\(kind.name) \(Masking.mask(value))" }

    private enum CodingKeys: String, CodingKey { case kind, value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(String.self, forKey: .kind)
        guard let kind = Kind(name: name) else {
            throw DecodingError.dataCorruptedError(
                forKey: .kind,
                in: container,
                debugDescription: "unknown kind \(name)"
            )
        }
        self.kind = kind
        self.value = try container.decode(String.self, forKey: .value)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind.name, forKey: .kind)
        try container.encode(value, forKey: .value)
    }
}

public struct ContactNote: Sendable, Hashable, Codable {
    public var text: String
    public var at: Date
    /// Who wrote it (an agent id, `import`, `api`); not personal data.
    public var author: String?

    public init(text: String, at: Date, author: String? = nil) {
        self.text = text
        self.at = at
        self.author = author
    }
}

/// A customer as the relay's identity graph knows them: a pointer hub, not a CRM record. Everything
/// here but ids, types and times is personal data and sealed at rest.
public struct Contact: Sendable, Hashable, Codable {
    public var id: String
    public var type: ContactType
    public var name: String?
    public var attributes: [String: String]
    public var notes: [ContactNote]
    /// The identifiers this contact owns itself (its aliases own theirs).
    public var identifiers: [ContactIdentifier]
    /// Set when this contact was merged into another: it is an alias and resolves to that one.
    public var mergedInto: String?
    /// Contacts merged into this one, oldest merge first: non-empty makes it canonical, which never expires.
    public var aliases: [String]
    public var createdAt: Date
    public var updatedAt: Date
    public var lastInteractionAt: Date?
    /// When a temporary contact's personal data goes; nil for contacts that never expire.
    public var expiresAt: Date?
    /// Set once expiry removed the personal data.
    public var expiredAt: Date?

    public init(
        id: String,
        type: ContactType,
        name: String? = nil,
        attributes: [String: String] = [:],
        notes: [ContactNote] = [],
        identifiers: [ContactIdentifier] = [],
        createdAt: Date
    ) {
        self.id = id
        self.type = type
        self.name = name
        self.attributes = attributes
        self.notes = notes
        self.identifiers = identifiers
        self.mergedInto = nil
        self.aliases = []
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.expiresAt = nil
    }

    public var isAlias: Bool { mergedInto != nil }
    public var isCanonicalTarget: Bool { !aliases.isEmpty }
    public var isExpired: Bool { expiredAt != nil }

    /// Whether this contact may expire at all: temporary, standing alone, never merged with anything.
    public var canExpire: Bool { type.isTemporary && !isAlias && !isCanonicalTarget && !isExpired }

    /// The expiry rule in one place: `timeToLive` after the last interaction (or creation), for the
    /// contacts that may expire; nil for the others.
    public func expiry(timeToLive: Duration) -> Date? {
        guard canExpire else { return nil }
        return (lastInteractionAt ?? createdAt).addingTimeInterval(timeToLive.totalSeconds)
    }
}
