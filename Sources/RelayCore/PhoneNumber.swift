/// A phone number in E.164 form (`+` and 8 to 15 digits), the only form used as a match or hash key.
///
/// This accepts numbers already in international form, with the usual visual separators and an optional
/// `tel:` prefix. Numbers in national form need a region-aware parser and are treated as absent.
public struct PhoneNumber: Sendable, Hashable, CustomStringConvertible {
    public let e164: String

    public init?(normalizing raw: String) {
        var text = Substring(raw.trimmingWhitespace())
        if text.lowercased().hasPrefix("tel:") { text = text.dropFirst(4) }
        // A tel: URI may carry parameters (`;ext=12`); the number is what precedes them.
        if let semicolon = text.firstIndex(of: ";") { text = text[..<semicolon] }
        guard text.first == "+" else { return nil }
        var digits = ""
        for character in text.dropFirst() {
            if let ascii = character.asciiValue, ascii >= 48 && ascii <= 57 {
                digits.append(character)
            } else if " -.()/".contains(character) {
                continue
            } else {
                return nil
            }
        }
        // E.164: at most 15 digits, and no country code starts with 0.
        guard (8...15).contains(digits.count), digits.first != "0" else { return nil }
        self.e164 = "+" + digits
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
