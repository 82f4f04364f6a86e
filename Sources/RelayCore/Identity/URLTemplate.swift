import Foundation

/// Fills `{name}` placeholders with percent-encoded values; an unknown placeholder is an error, so a
/// typo in the configuration shows at start-up rather than as requests to a wrong URL.
public struct URLTemplate: Sendable, Hashable, CustomStringConvertible {
    public let template: String
    public let placeholders: Set<String>

    public init(_ template: String, allowed: Set<String>) throws(LookupResponseError) {
        var found: Set<String> = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw LookupResponseError(message: "unclosed { in \(template)")
            }
            let name = String(rest[rest.index(after: open)..<close])
            guard allowed.contains(name) else {
                throw LookupResponseError(
                    message:
                        "unknown placeholder {\(name)} (known: \(allowed.sorted().map { "{\($0)}" }.joined(separator: ", ")))"
                )
            }
            found.insert(name)
            rest = rest[rest.index(after: close)...]
        }
        self.template = template
        self.placeholders = found
    }

    public func render(_ values: [String: String]) -> String {
        var result = template
        for name in placeholders {
            result = result.replacingOccurrences(
                of: "{\(name)}",
                with: PercentEncoding.encodePathSegment(values[name] ?? "")
            )
        }
        return result
    }

    public var description: String { template }
}
