public import Foundation

/// What an interaction's start event says about who the customer is, in the order the channel's rule
/// tries it (DESIGN.md, "Identity"): voice by caller number; email by address; web chat by email, then
/// phone, then name; messaging by messaging id, then name. A name is never an identifier: it may only
/// suggest.
public struct ContactSighting: Sendable, Hashable {
    public var callId: String
    public var channel: Channel
    public var identifiers: [ContactIdentifier]
    public var name: String?

    /// The type a new contact made from this sighting gets.
    public var newContactType: ContactType {
        identifiers.contains(where: \.kind.isPersonal) || name != nil ? .identified : .ephemeral
    }

    /// nil for events that start nothing (ends, wrap-ups, context updates).
    public init?(_ event: PlatformEvent, defaultRegion: String = PhoneNumber.unknownRegion) {
        func phone(_ raw: String?) -> ContactIdentifier? {
            raw.flatMap { ContactIdentifier(kind: .phone, raw: $0, defaultRegion: defaultRegion) }
        }
        func email(_ raw: String?) -> ContactIdentifier? { raw.flatMap { ContactIdentifier(kind: .email, raw: $0) } }
        func name(_ raw: String?) -> String? {
            let trimmed = raw.map { String($0.trimmingWhitespace()) }
            return trimmed?.isEmpty == false ? trimmed : nil
        }
        callId = event.callId
        switch event.payload {
        case .callStarted(let start):
            channel = .voice
            identifiers = [phone(start.customerNumber)].compactMap { $0 }
            self.name = nil
        case .emailReceived(let received):
            channel = .email
            identifiers = [email(received.fromAddress)].compactMap { $0 }
            self.name = name(received.name)
        case .chatStarted(let chat):
            channel = .chat
            identifiers = [email(chat.email), phone(chat.phone)].compactMap { $0 }
            self.name = name(chat.name)
        case .messageReceived(let message):
            channel = .messaging
            identifiers = [ContactIdentifier(kind: .messaging(message.platform), raw: message.messagingId)].compactMap {
                $0
            }
            self.name = name(message.name)
        case .callEnded, .wrapUp, .contextUpdate:
            return nil
        }
    }

    /// The key a name is suggested by: case and spacing do not make two people.
    public static func nameKey(_ name: String, hasher: IdentifierHasher) -> String {
        let folded = name.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return hasher.keyedHash(kind: "name", folded)
    }
}

/// The linking decision for one sighting, given who owns each of its identifiers (resolved to the
/// canonical contact) and which contacts carry the same name.
public enum ContactLinking {
    public enum Decision: Sendable, Hashable {
        /// The first identifier, in the channel's order, that some contact owns.
        case link(contactId: String, by: ContactIdentifier.Kind)
        /// Nothing linked: a new temporary contact owning the sighting's identifiers, with the contacts
        /// of the same name as suggestions only.
        case create(type: ContactType, suggestions: [String])
    }

    /// - Parameters:
    ///   - owners: for each of the sighting's identifiers, in order, its owner (nil: nobody's).
    ///   - sameName: contacts whose name matches the sighting's.
    public static func decide(_ sighting: ContactSighting, owners: [String?], sameName: [String]) -> Decision {
        for (identifier, owner) in zip(sighting.identifiers, owners) {
            if let owner { return .link(contactId: owner, by: identifier.kind) }
        }
        return .create(type: sighting.newContactType, suggestions: sameName)
    }
}
