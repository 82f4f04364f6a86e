/// An email address as a match key: trimmed, the domain lower-cased (domains are case-insensitive;
/// local parts, strictly, are not, so they are left as written).
public struct EmailAddress: Sendable, Hashable, CustomStringConvertible {
    public let normalized: String

    public init?(normalizing raw: String) {
        var text = raw.trimmingWhitespace()
        if text.lowercased().hasPrefix("mailto:") { text = text.dropFirst(7) }
        guard text.utf8.count <= 254, let at = text.lastIndex(of: "@") else { return nil }
        let local = text[..<at]
        let domain = text[text.index(after: at)...]
        guard !local.isEmpty, local.utf8.count <= 64, !domain.isEmpty, domain.contains("."),
            !domain.hasPrefix("."), !domain.hasSuffix("."), !domain.contains(".."),
            (local + domain).allSatisfy({ !$0.isWhitespace && $0 != "<" && $0 != ">" && $0 != "," }),
            domain.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }),
            !local.contains("@")
        else { return nil }
        normalized = "\(local)@\(domain.lowercased())"
    }

    public var description: String { Masking.mask(normalized) }
}
