/// A pointer to a customer record in a system of record, prefixed with its source
/// (`CRM:500245678`, `ERP:A-1001`, `PHONE:<keyed hash>`). The prefix makes ids from different
/// sources unable to collide, so nothing else is ever accepted as an external id.
public struct ExternalID: Sendable, Hashable, CustomStringConvertible {
    public enum Source: String, Sendable, Hashable, CaseIterable {
        case crm = "CRM"
        case erp = "ERP"
        case phone = "PHONE"
    }

    public let source: Source
    public let value: String

    /// The longest value accepted after the prefix; real CRM/ERP ids are far shorter.
    public static let maxValueLength = 128

    public init?(source: Source, value: String) {
        guard Self.isValidValue(value, for: source) else { return nil }
        self.source = source
        self.value = value
    }

    /// Parses `PREFIX:value`; nil for an unknown prefix, an empty value or characters outside the id alphabet.
    public init?(parsing string: String) {
        guard let colon = string.firstIndex(of: ":"),
            let source = Source(rawValue: String(string[..<colon]))
        else { return nil }
        self.init(source: source, value: String(string[string.index(after: colon)...]))
    }

    public static func phone(keyedHash: String) -> ExternalID {
        ExternalID(source: .phone, value: keyedHash)!
    }

    public var description: String { "\(source.rawValue):\(value)" }

    private static func isValidValue(_ value: String, for source: Source) -> Bool {
        guard !value.isEmpty, value.utf8.count <= maxValueLength else { return false }
        switch source {
        case .phone:
            // Only ever a hex HMAC digest: a plain number here would leak PII into the platform.
            return value.utf8.count == 64 && value.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        case .crm, .erp:
            return value.utf8.allSatisfy { byte in
                (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            }
        }
    }
}
