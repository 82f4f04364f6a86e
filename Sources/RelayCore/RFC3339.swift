public import Foundation

/// RFC 3339 timestamps, with or without fractional seconds, always with an offset.
public enum RFC3339 {
    public static func parse(_ string: String) -> Date? {
        // ISO8601DateFormatter is not Sendable; a fresh one per call keeps this free of shared state.
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFraction.date(from: string) { return date }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: string)
    }

    public static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
