import Crypto
public import Foundation

/// Seals personal data (numbers, emails, names) before it is written anywhere durable: AES-256-GCM
/// under a key from the environment or a file, never from the configuration file.
///
/// A sealed value is `version (1 byte) || nonce (12) || ciphertext || tag (16)`. The version byte lets a
/// later key or algorithm coexist with rows written under this one. The nonce is random per value, so
/// equal plaintexts seal differently: lookups go through `IdentifierHasher`, never through ciphertexts.
public struct FieldCipher: Sendable {
    public static let keyBytes = 32
    static let version: UInt8 = 1

    private let key: SymmetricKey

    public init?(key: [UInt8]) {
        guard key.count == Self.keyBytes else { return nil }
        self.key = SymmetricKey(data: key)
    }

    /// The key as the configuration carries it: base64 of 32 bytes.
    public init?(base64Key: String) {
        guard let data = Data(base64Encoded: base64Key.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            return nil
        }
        self.init(key: Array(data))
    }

    /// - Parameter context: authenticated, not stored (e.g. the table and column): a sealed value copied
    ///   into another column does not open there.
    public func seal(_ plaintext: some DataProtocol, context: String = "") -> [UInt8] {
        // AES-GCM with a random 96-bit nonce fails only when the system's randomness does.
        let box = try! AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        return [Self.version] + Array(box.combined!)
    }

    public func seal(_ text: String, context: String = "") -> [UInt8] {
        seal(Array(text.utf8), context: context)
    }

    public func open(_ sealed: [UInt8], context: String = "") throws(FieldCipherError) -> [UInt8] {
        guard sealed.first == Self.version else { throw FieldCipherError.unknownVersion }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.dropFirst())
            return Array(try AES.GCM.open(box, using: key, authenticating: Array(context.utf8)))
        } catch {
            throw FieldCipherError.cannotOpen
        }
    }

    public func openString(_ sealed: [UInt8], context: String = "") throws(FieldCipherError) -> String {
        let bytes = try open(sealed, context: context)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw FieldCipherError.cannotOpen }
        return text
    }
}

public enum FieldCipherError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Written by a newer relay, or not a sealed value at all.
    case unknownVersion
    /// A wrong key, a value moved to another context, or tampered bytes.
    case cannotOpen

    public var description: String {
        switch self {
        case .unknownVersion: "the sealed value has an unknown version byte"
        case .cannotOpen: "the sealed value does not open under this key (wrong key, or tampered)"
        }
    }
}

/// Keyed hashes of identifiers, so that stored data can be searched by a phone number or an email
/// without holding either in clear.
///
/// A phone number's hash is exactly `PhoneHasher`'s, so the key of a contact's phone identifier and the
/// `PHONE:` external id the platform sees are one value. Other kinds are hashed with their kind in
/// front, so an email and a messaging id that happen to be the same text never collide.
public struct IdentifierHasher: Sendable {
    private let key: SymmetricKey
    public let phone: PhoneHasher

    public init?(key: [UInt8]) {
        guard let phone = PhoneHasher(key: key) else { return nil }
        self.phone = phone
        self.key = SymmetricKey(data: key)
    }

    public func keyedHash(_ number: PhoneNumber) -> String { phone.keyedHash(number) }

    /// - Parameters:
    ///   - kind: what the value is (`email`, `messaging:whatsapp`, `cookie`, `external`…), never `phone`.
    ///   - normalized: the value after its kind's normalisation (lowercased email, trimmed ids).
    public func keyedHash(kind: String, _ normalized: String) -> String {
        Hex.lowercase(HMAC<SHA256>.authenticationCode(for: Array("\(kind)\u{0}\(normalized)".utf8), using: key))
    }
}
