public import Foundation

/// Free text a person typed — an agent's reason for switching a call's identity, an email's subject —
/// is personal data like a number or an address: a caller's name turns up in it ("caller said she is
/// …"). It is sealed as the event comes in, before the correlator copies it into the interaction's
/// state (a context update waiting for its start), the outbox (the context change's job) or an orphan's
/// dead-letter record, so no copy of it is ever at rest in clear. Nothing in the relay reads it back
/// today; `SealedFreeText.open` does, for whoever needs it.
///
/// Wrap-up notes are sealed on their own way to the store (`interaction_note`), with their own context.
public enum SealedFreeText {
    /// Marks a sealed value, so sealing twice (a submitted event committed again) changes nothing.
    public static let prefix = "sealed:v1:"
    static let context = "event.freeText"

    public static func seal(_ text: String, with cipher: FieldCipher) -> String {
        // Already sealed only if it opens under this key: a person may type the prefix too.
        guard !text.isEmpty, !isSealed(text) || (try? open(text, with: cipher)) == nil else { return text }
        return prefix + Data(cipher.seal(text, context: context)).base64EncodedString()
    }

    public static func isSealed(_ text: String) -> Bool { text.hasPrefix(prefix) }

    /// The text as typed; a value that was never sealed comes back as it is.
    public static func open(_ text: String, with cipher: FieldCipher) throws(FieldCipherError) -> String {
        guard isSealed(text) else { return text }
        guard let sealed = Data(base64Encoded: String(text.dropFirst(prefix.count))) else { throw .cannotOpen }
        return try cipher.openString(Array(sealed), context: context)
    }
}

extension PlatformEvent {
    /// The event with every free-text field sealed (`SealedFreeText`).
    public func withFreeTextSealed(by cipher: FieldCipher) -> PlatformEvent {
        var event = self
        switch payload {
        case .contextUpdate(var update):
            update.reason = SealedFreeText.seal(update.reason, with: cipher)
            event.payload = .contextUpdate(update)
        case .emailReceived(var email):
            email.subject = email.subject.map { SealedFreeText.seal($0, with: cipher) }
            event.payload = .emailReceived(email)
        default:
            break
        }
        return event
    }
}
