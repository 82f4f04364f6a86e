/// Masks personal data for logs: everything but the last four characters becomes `*`.
///
/// Applied to phone numbers, emails, names and external ids before they reach any log line.
public enum Masking {
    public static let visibleSuffixLength = 4

    public static func mask(_ value: some StringProtocol) -> String {
        let characters = Array(value)
        guard characters.count > visibleSuffixLength else { return String(repeating: "*", count: characters.count) }
        return String(repeating: "*", count: characters.count - visibleSuffixLength)
            + String(characters.suffix(visibleSuffixLength))
    }
}
