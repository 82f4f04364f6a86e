/// Text as it may reach a terminal or a log line: every character that could move the cursor, clear
/// the screen, end the line or reorder what follows is written out as a visible escape instead.
///
/// Dead letters carry whatever a publisher sent: a body holding `ESC[2J` or a call id holding a line
/// break and a forged `note:` field must print as the characters they are, not act on the screen or
/// split a log record in two.
///
/// Escaped: C0 controls (`\n`, `\r`, `\t`, `\0`, others as `\x1B`), DEL (`\x7F`), C1 controls and the
/// Unicode line/paragraph separators and bidirectional overrides and isolates (as `\u{202E}`).
/// Everything else, backslashes included, is left as written.
public enum PrintSafe {
    public static func escape(_ text: String) -> String {
        guard needsEscaping(text) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case 0x00: result += "\\0"
            case 0x01...0x1F, 0x7F: result += "\\x" + hex(scalar.value, digits: 2)
            case 0x80...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C:
                result += "\\u{" + hex(scalar.value, digits: 4) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Whether `escape` would change `text`: a byte scan, so clean text (nearly all of it) costs no copy.
    public static func needsEscaping(_ text: String) -> Bool {
        var bytes = text.utf8.makeIterator()
        while let byte = bytes.next() {
            switch byte {
            case 0x00...0x1F, 0x7F: return true
            // C1 controls are U+0080–U+009F: 0xC2 0x80–0x9F. U+2028/9, U+202A–E, U+2066–9, U+200E/F
            // start with 0xE2 0x80 or 0xE2 0x81; U+061C is 0xD8 0x9C. Those leads send the text to
            // the slow path, which decides by scalar.
            case 0xC2, 0xE2, 0xD8: return true
            default: continue
            }
        }
        return false
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
