import Foundation
import RelayCore

/// What the console shows of a payload until the operator reveals it: no more than a log line may
/// hold. Every string in the JSON is masked (`Masking.mask`, its last characters kept) but for the
/// fields that name kinds, times and outcomes, and so is every long number; a payload that is not
/// JSON shows its size only.
enum ConsoleMasking {
    /// Fields whose values are never personal: kinds, times, codes, outcomes. Not `reason`: a context
    /// update's reason is what an agent typed.
    static let clearFields: Set<String> = [
        "type", "eventId", "occurredAt", "timestamp", "direction", "channel", "mediaType", "disconnectType",
        "wrapUpCode", "kind", "status", "state", "version", "topicName", "eventTime", "purpose",
    ]
    /// Numbers that are counts and times, whatever their size; any other number longer than six
    /// digits (a phone number sent as one) is masked.
    static let clearNumbers: Set<String> = [
        "attempts", "durationSeconds", "firstFailureAt", "lastFailureAt", "replayCount", "version", "status",
    ]

    static func maskedPayload(_ bytes: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
            object is [String: Any] || object is [Any],
            let pretty = try? JSONSerialization.data(
                withJSONObject: masked(object, key: nil),
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            )
        else {
            return "(\(bytes.count) bytes, not JSON: reveal to see them)"
        }
        return String(decoding: pretty, as: UTF8.self)
    }

    private static func masked(_ value: Any, key: String?) -> Any {
        switch value {
        case let object as [String: Any]:
            return object.reduce(into: [String: Any]()) { $0[$1.key] = masked($1.value, key: $1.key) }
        case let array as [Any]:
            return array.map { masked($0, key: key) }
        case let text as String:
            return key.map(clearFields.contains) == true ? text : Masking.mask(text)
        case let number as NSNumber:
            // Counts, codes and flags are short; a number long enough to be a phone number is masked.
            let digits = number.stringValue
            return key.map(clearNumbers.contains) == true || digits.count <= 6 ? number : Masking.mask(digits)
        default:
            return value
        }
    }
}
