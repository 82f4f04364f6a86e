public import Foundation

/// A delivery job is durable storage for as long as it waits: the store's outbox (every retry written
/// back) and, inside a dead-letter record, the dead-letter queue. Both hold it as bytes, so its personal data — the number or address an enrichment
/// searches by (number, address, messaging id, name), a customer update's name and email, a webhook's
/// body, a context change's reason — is sealed before it is encoded
/// and opened only by the dispatcher that sends it, in memory.
///
/// What stays readable is what routing, retries, replay and an on-call engineer need: kind, call id,
/// cause, idempotency key, path (a pointer, never a number), attempts, the last error.
extension DeliveryJob {
    private static let personalDataEncoder = JSONEncoder()
    private static let personalDataDecoder = JSONDecoder()

    struct PersonalData: Codable, Equatable {
        var body: String
        var phone: String?
        var email: String?
        var messagingId: String?
        var name: String?
        /// A context change's reason, free text typed by an agent (sealed on arrival already; see
        /// `SealedFreeText`).
        var reason: String?
    }

    /// The seal is bound to the job's idempotency key: sealed data copied into another job does not open.
    var sealingContext: String { "delivery-job:\(idempotencyKey)" }

    /// The job with its personal data sealed; the job itself when it is already sealed or holds none.
    public func sealed(with cipher: FieldCipher) -> DeliveryJob {
        guard sealedPersonalData == nil else { return self }
        let personal = PersonalData(
            body: body,
            phone: enrichment?.phone,
            email: enrichment?.email,
            messagingId: enrichment?.messagingId,
            name: enrichment?.name,
            reason: contextChange?.reason
        )
        guard personal != PersonalData(body: "") else { return self }
        var job = self
        job.body = ""
        job.enrichment?.phone = nil
        job.enrichment?.email = nil
        job.enrichment?.messagingId = nil
        job.enrichment?.name = nil
        job.contextChange?.reason = ""
        let plaintext = try! Self.personalDataEncoder.encode(personal)  // strings only: cannot fail
        job.sealedPersonalData = Data(cipher.seal(plaintext, context: sealingContext)).base64EncodedString()
        return job
    }

    /// The job with its personal data back in place; a job that was never sealed comes back as it is
    /// (one queued by a relay from before sealing).
    public func opened(with cipher: FieldCipher) throws(FieldCipherError) -> DeliveryJob {
        guard let sealedPersonalData else { return self }
        guard let sealed = Data(base64Encoded: sealedPersonalData) else { throw .cannotOpen }
        let plaintext = try cipher.open(Array(sealed), context: sealingContext)
        guard let personal = try? Self.personalDataDecoder.decode(PersonalData.self, from: Data(plaintext)) else {
            throw .cannotOpen
        }
        var job = self
        job.body = personal.body
        job.enrichment?.phone = personal.phone
        job.enrichment?.email = personal.email
        job.enrichment?.messagingId = personal.messagingId
        job.enrichment?.name = personal.name
        if let reason = personal.reason { job.contextChange?.reason = reason }
        job.sealedPersonalData = nil
        return job
    }
}
