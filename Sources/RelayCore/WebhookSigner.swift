import Crypto
public import Foundation

/// Signs post-call webhooks the Standard Webhooks way (https://www.standardwebhooks.com, symmetric
/// scheme): `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
///
/// Pure: the id, the timestamp and the clock are all parameters.
public struct WebhookSigner: Sendable {
    public static let secretPrefix = "whsec_"
    /// The spec asks for random signing secrets of at least 24 bytes (192 bits).
    public static let minimumKeyBytes = 24

    public static let idHeader = "webhook-id"
    public static let timestampHeader = "webhook-timestamp"
    public static let signatureHeader = "webhook-signature"

    private let key: SymmetricKey

    /// Parses `whsec_<base64 of the key bytes>`.
    ///
    /// Returns nil for anything else: a missing or differently cased prefix, base64 that does not
    /// decode strictly (padding required, no whitespace), or a key shorter than `minimumKeyBytes`
    /// (which includes an empty key). Nil rather than an error so the secret, which may be close
    /// to valid, never ends up in an error message or a log.
    public init?(secret: String) {
        guard secret.hasPrefix(Self.secretPrefix),
            let key = Data(base64Encoded: String(secret.dropFirst(Self.secretPrefix.count))),
            key.count >= Self.minimumKeyBytes
        else { return nil }
        self.key = SymmetricKey(data: key)
    }

    /// Whether `id` is safe as a `webhook-id`: non-empty visible ASCII without `.`.
    ///
    /// The spec forbids `.` because the id is the first field of the dot-delimited signed content;
    /// the rest keeps the header free of whitespace and control characters. Derive ids from
    /// something of ours (e.g. `msg_` + a hash of the call id) rather than passing platform data.
    public static func isValidMessageID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ".") }
    }

    /// The three headers for one delivery attempt, in the order `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`.
    ///
    /// - Parameters:
    ///   - id: the same on every retry of one event (receivers use it for deduplication); must
    ///     satisfy `isValidMessageID` (checked by an assertion in debug builds).
    ///   - timestamp: seconds since the epoch. The spec means the time of *this attempt*: receivers
    ///     reject timestamps more than (typically) 5 minutes from their clock, so a retry that
    ///     reused the first attempt's timestamp later than that would be refused.
    ///   - body: exactly the bytes sent as the request body.
    public func headers(id: String, timestamp: Int64, body: [UInt8]) -> [(name: String, value: String)] {
        [
            (name: Self.idHeader, value: id),
            (name: Self.timestampHeader, value: String(timestamp)),
            (name: Self.signatureHeader, value: signature(id: id, timestamp: timestamp, body: body)),
        ]
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        assert(Self.isValidMessageID(id), "webhook ids must be non-empty visible ASCII without '.'")
        return "v1," + Data(mac(id: id, timestamp: timestamp, body: body)).base64EncodedString()
    }

    /// Verification as a receiver does it: true if any `v1` entry of the space-separated
    /// `signatureHeader` matches (compared in constant time), and the timestamp, a decimal integer
    /// of seconds, is within `tolerance` of `now` in either direction (the boundary included).
    /// Entries of other versions (`v1a`, `v2`, …) are ignored.
    public func verify(
        id: String,
        timestamp: String,
        signatureHeader: String,
        body: [UInt8],
        now: Date,
        tolerance: Duration = .seconds(300)
    ) -> Bool {
        guard !timestamp.isEmpty, timestamp.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let seconds = Int64(timestamp)
        else { return false }
        let (whole, atto) = tolerance.components
        let toleranceSeconds = Double(whole) + Double(atto) * 1e-18
        guard abs(now.timeIntervalSince1970 - Double(seconds)) <= toleranceSeconds else { return false }

        // Compare the base64 text, as the reference libraries do: no decoding, so no question of
        // which non-canonical encodings a decoder would let through.
        let expected = Array(Data(mac(id: id, timestamp: seconds, body: body)).base64EncodedString().utf8)
        var matched = false
        for entry in signatureHeader.split(separator: " ", omittingEmptySubsequences: true) {
            guard let comma = entry.firstIndex(of: ","), entry[..<comma] == "v1" else { continue }
            if Self.constantTimeEquals(Array(entry[entry.index(after: comma)...].utf8), expected) {
                matched = true
            }
        }
        return matched
    }

    private func mac(id: String, timestamp: Int64, body: [UInt8]) -> HMAC<SHA256>.MAC {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return hmac.finalize()
    }

    /// Time depends only on the lengths, never on where the bytes first differ.
    private static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices {
            difference |= lhs[index] ^ rhs[index]
        }
        return difference == 0
    }
}
