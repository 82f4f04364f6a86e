import Foundation
import RelayCore
import Testing

@Suite("Personal data at rest: AES-GCM field cipher and identifier hashes")
struct FieldCipherTests {
    let cipher = FieldCipher(key: Array(repeating: 7, count: 32))!

    @Test("a sealed value opens to the plaintext and does not contain it")
    func roundTrip() throws {
        let sealed = cipher.seal("+14155550123", context: "contact.phone")
        #expect(!String(decoding: sealed, as: UTF8.self).contains("4155550123"))
        #expect(sealed.count == 1 + 12 + 12 + 16)
        #expect(try cipher.openString(sealed, context: "contact.phone") == "+14155550123")
    }

    @Test("equal plaintexts seal differently (random nonce)")
    func randomNonce() {
        #expect(cipher.seal("ada@example.com") != cipher.seal("ada@example.com"))
    }

    @Test("a wrong key, another context or a flipped bit does not open")
    func refuses() throws {
        let sealed = cipher.seal("Ada Lovelace", context: "contact.name")
        let other = FieldCipher(key: Array(repeating: 8, count: 32))!
        #expect(throws: FieldCipherError.cannotOpen) { try other.open(sealed, context: "contact.name") }
        #expect(throws: FieldCipherError.cannotOpen) { try cipher.open(sealed, context: "contact.email") }
        var tampered = sealed
        tampered[20] ^= 1
        #expect(throws: FieldCipherError.cannotOpen) { try cipher.open(tampered, context: "contact.name") }
        #expect(throws: FieldCipherError.unknownVersion) {
            try cipher.open([9] + sealed.dropFirst(), context: "contact.name")
        }
        #expect(throws: FieldCipherError.unknownVersion) { try cipher.open([], context: "contact.name") }
    }

    @Test("the key must be exactly 32 bytes, in base64 from the configuration")
    func keyLength() {
        #expect(FieldCipher(key: Array(repeating: 1, count: 16)) == nil)
        #expect(FieldCipher(base64Key: Data(repeating: 1, count: 32).base64EncodedString()) != nil)
        #expect(FieldCipher(base64Key: Data(repeating: 1, count: 31).base64EncodedString()) == nil)
        #expect(FieldCipher(base64Key: "not base64!") == nil)
    }

    @Test("a phone's identifier hash is its PHONE: id; kinds never collide")
    func identifierHashes() throws {
        let key = Array("identifier-hash-key-0123456789abcdef".utf8)
        let hasher = try #require(IdentifierHasher(key: key))
        let number = try #require(PhoneNumber(normalizing: "+14155550123", defaultRegion: "US"))
        #expect(hasher.keyedHash(number) == PhoneHasher(key: key)!.keyedHash(number))
        #expect(hasher.keyedHash(kind: "email", "x") != hasher.keyedHash(kind: "cookie", "x"))
        #expect(hasher.keyedHash(kind: "email", "x") == hasher.keyedHash(kind: "email", "x"))
        #expect(hasher.keyedHash(kind: "email", "x").count == 64)
    }
}
