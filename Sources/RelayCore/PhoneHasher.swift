import Crypto
import Foundation

/// Derives the `PHONE:` external id: an HMAC-SHA256 of the E.164 number under a secret key.
///
/// A bare SHA-256 would be worthless: the space of phone numbers is small enough to hash in full,
/// so only a keyed hash keeps the number out of reach of whoever reads the platform's data.
public struct PhoneHasher: Sendable {
    private let key: SymmetricKey

    /// The key must hold at least 16 bytes (RFC 2104 asks for no less than the hash's output size, 32).
    public static let minimumKeyBytes = 16

    public init?(key: [UInt8]) {
        guard key.count >= Self.minimumKeyBytes else { return nil }
        self.key = SymmetricKey(data: key)
    }

    public func keyedHash(_ number: PhoneNumber) -> String {
        Hex.lowercase(HMAC<SHA256>.authenticationCode(for: Array(number.e164.utf8), using: key))
    }

    public func externalID(for number: PhoneNumber) -> ExternalID {
        .phone(keyedHash: keyedHash(number))
    }
}

/// Lower-case hex in one allocation: keyed hashes are made several times per event on the hot path.
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func lowercase(_ bytes: some Sequence<UInt8>) -> String {
        var ascii: [UInt8] = []
        ascii.reserveCapacity(64)
        for byte in bytes {
            ascii.append(digits[Int(byte >> 4)])
            ascii.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: ascii, as: UTF8.self)
    }
}
