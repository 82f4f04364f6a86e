import CPhoneNumber
import Synchronization

/// A phone number in E.164 form (`+` and up to 15 digits), the only form used as a match or hash key.
///
/// Parsing is Google's libphonenumber: international form anywhere, national form in the configured
/// default region, visual separators and a `tel:` prefix allowed. Text that is not a possible number
/// is treated as absent, never as a key.
public struct PhoneNumber: Sendable, Hashable, CustomStringConvertible {
    public let e164: String

    /// The region used when none is configured: "ZZ" (unknown), which accepts international form only.
    public static let unknownRegion = "ZZ"

    /// libphonenumber does not document its thread safety, so calls into it take turns.
    private static let library = Mutex(())

    /// - Parameter defaultRegion: ISO 3166 code (e.g. "US", "GB") for numbers written in national form.
    public init?(normalizing raw: String, defaultRegion: String = PhoneNumber.unknownRegion) {
        var text = Substring(raw.trimmingWhitespace())
        if text.lowercased().hasPrefix("tel:") { text = text.dropFirst(4) }
        // A tel: URI may carry parameters (`;ext=12`); the number is what precedes them.
        if let semicolon = text.firstIndex(of: ";") { text = text[..<semicolon] }
        // Nothing legitimate is longer; the bound keeps junk away from the parser.
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        let input = String(text)
        let key = input + "\u{0}" + defaultRegion
        let formatted: String?
        if let known = Self.recent.withLock({ $0[key] }) {
            formatted = known
        } else {
            formatted = Self.library.withLock { _ in
                var buffer = [CChar](repeating: 0, count: 32)
                let length = relay_phone_to_e164(input, defaultRegion, &buffer, Int32(buffer.count))
                guard length > 0 else { return nil }
                return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            }
            Self.recent.withLock { recent in
                // Bounded: a flood of distinct numbers starts it afresh rather than growing it.
                if recent.count >= Self.recentCapacity { recent.removeAll(keepingCapacity: true) }
                recent[key] = .some(formatted)
            }
        }
        guard let formatted else { return nil }
        self.e164 = formatted
    }

    /// Numbers parsed lately (input and region → E.164, or nil when not a number). One event's number is
    /// parsed by phase 1, the override lookup, the contact capture and the known-link lookup: the
    /// parser's regular expressions are the costly part, and it runs one call at a time.
    private static let recent = Mutex<[String: String?]>([:])
    private static let recentCapacity = 4_096

    /// A number normalised before (a stored identifier): skips the parser on the hot path.
    init(alreadyNormalized e164: String) {
        self.e164 = e164
    }

    public var description: String { Masking.mask(e164) }
}

extension String {
    func trimmingWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[start...end]
    }
}
