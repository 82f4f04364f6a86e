import Foundation

/// RFC 6901 JSON pointers (`/records/0/Id`), the way lookups say where a field sits in a response.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    public let tokens: [String]

    /// nil unless the text is a valid pointer: empty (the whole document) or `/`-separated tokens.
    public init?(_ text: String) {
        if text.isEmpty {
            tokens = []
            return
        }
        guard text.hasPrefix("/") else { return nil }
        var tokens: [String] = []
        for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            // ~1 before ~0, as the RFC says, so "~01" becomes "~1", not "/".
            let token = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            tokens.append(token)
        }
        self.tokens = tokens
    }

    public var description: String {
        tokens.map { "/" + $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }
            .joined()
    }

    /// The value the pointer designates in a parsed JSON document, or nil.
    public func resolve(in document: Any) -> Any? {
        var current: Any = document
        for token in tokens {
            if let object = current as? [String: Any], let next = object[token] {
                current = next
            } else if let array = current as? [Any], let index = Int(token), index >= 0, index < array.count,
                token == String(index)
            {
                current = array[index]
            } else {
                return nil
            }
        }
        return current
    }

    /// The designated value as text: strings as they are, numbers and booleans printed; nil for
    /// null, objects and arrays.
    public func string(in document: Any) -> String? {
        switch resolve(in: document) {
        case let string as String: return string
        case let number as NSNumber:
            // JSONSerialization hands booleans over as NSNumbers of type char; print them as JSON would.
            let type = String(cString: number.objCType)
            if type == "c" || type == "B" { return number.boolValue ? "true" : "false" }
            return number.stringValue
        default: return nil
        }
    }
}
