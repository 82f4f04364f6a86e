public import Foundation

/// A `malformed` dead letter carries the event as it arrived: the relay could not parse it, so it cannot
/// pick out the personal data in it, and seals the whole payload instead. The rest of the record (reason,
/// call id, event type, error, origin) stays readable for `dead-letters list`; `show`, `export` and
/// `replay` open the payload with the key.
extension DeadLetterRecord {
    /// Bound to the record's id: a sealed payload moved into another record does not open.
    var payloadSealingContext: String { "dead-letter:\(id)" }

    public func sealingPayload(with cipher: FieldCipher) -> DeadLetterRecord {
        guard payloadEncoding != .sealed else { return self }
        var record = self
        record.payload = Data(cipher.seal(originalPayload, context: payloadSealingContext)).base64EncodedString()
        record.payloadEncoding = .sealed
        return record
    }

    /// The original bytes, opened when sealed.
    public func openedPayload(with cipher: FieldCipher) throws(FieldCipherError) -> [UInt8] {
        guard payloadEncoding == .sealed else { return originalPayload }
        return try cipher.open(originalPayload, context: payloadSealingContext)
    }
}
