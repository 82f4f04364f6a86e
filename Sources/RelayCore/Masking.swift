/// Masks personal data for logs: everything but the last four characters becomes `*`.
///
/// Applied to phone numbers, emails, names and external ids before they reach any log line. At most
/// eight stars are shown, so a long id does not bury the log line (and its length stays hidden).
public enum Masking {
    public static let visibleSuffixLength = 4
    static let maximumStars = 8

    public static func mask(_ value: some StringProtocol) -> String {
        let characters = Array(value)
        guard characters.count > visibleSuffixLength else { return String(repeating: "*", count: characters.count) }
        return String(repeating: "*", count: min(characters.count - visibleSuffixLength, maximumStars))
            + String(characters.suffix(visibleSuffixLength))
    }
}

extension ExternalID {
    /// The source stays readable (it is not personal data); the value is masked.
    public var masked: String { "\(source.rawValue):\(Masking.mask(value))" }
}
