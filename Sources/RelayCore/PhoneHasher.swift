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
        let mac = HMAC<SHA256>.authenticationCode(for: Array(number.e164.utf8), using: key)
        return mac.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    public func externalID(for number: PhoneNumber) -> ExternalID {
        .phone(keyedHash: keyedHash(number))
    }
}
