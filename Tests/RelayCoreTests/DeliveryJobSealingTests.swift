import Foundation
import RelayCore
import Testing

@Suite("Delivery jobs seal their personal data")
struct DeliveryJobSealingTests {
    let cipher = FieldCipher(key: Array(repeating: 7, count: 32))!

    func enrichmentJob() -> DeliveryJob {
        DeliveryJob(
            enrichment: EnrichmentRequest(callId: "c1", eventId: "e1", customerId: "PHONE:abc", phone: "+15550100071"),
            causeId: "e1"
        )
    }

    func profileUpdateJob() -> DeliveryJob {
        let update = CustomerUpdate(
            customerId: "cust-1",
            externalId: ExternalID(parsing: "CRM:003A")!,
            callId: "c2",
            idempotencyKey: "enrichment-update:e2",
            profile: CRMContact(contactId: "003A", name: "Ada Lovelace", email: "ada@example.com")
        )
        return DeliveryJob(customerUpdate: update, causeId: "e2")
    }

    @Test("the encoded job holds neither the number, the name nor the email; what routing needs stays readable")
    func encodedBytesHoldNoPersonalData() throws {
        for job in [enrichmentJob(), profileUpdateJob()] {
            let bytes = String(decoding: job.sealed(with: cipher).encoded(), as: UTF8.self)
            for secret in ["+15550100071", "5550100071", "Ada Lovelace", "ada@example.com"] {
                #expect(!bytes.contains(secret), "\(secret) in \(bytes)")
            }
            #expect(bytes.contains(job.idempotencyKey))
            #expect(bytes.contains("\"kind\":\"\(job.kind.rawValue)\""))
        }
        // The unsealed form does hold them: the assertions above would notice a no-op seal.
        #expect(String(decoding: enrichmentJob().encoded(), as: UTF8.self).contains("+15550100071"))
    }

    @Test("sealed, encoded, decoded and opened, the job is the job")
    func roundTrip() throws {
        for job in [enrichmentJob(), profileUpdateJob()] {
            let travelled = try DeliveryJob.decode(job.sealed(with: cipher).encoded()).opened(with: cipher)
            #expect(travelled == job)
        }
    }

    @Test("sealing twice seals once; a job from before sealing opens as it is")
    func idempotentAndCompatible() throws {
        let once = enrichmentJob().sealed(with: cipher)
        #expect(once.sealed(with: cipher) == once)
        #expect(try enrichmentJob().opened(with: cipher) == enrichmentJob())
    }

    @Test("a wrong key, or sealed data moved into another job, does not open")
    func bound() throws {
        let sealed = enrichmentJob().sealed(with: cipher)
        let otherKey = FieldCipher(key: Array(repeating: 8, count: 32))!
        #expect(throws: FieldCipherError.cannotOpen) { try sealed.opened(with: otherKey) }
        var moved = profileUpdateJob().sealed(with: cipher)
        moved.sealedPersonalData = sealed.sealedPersonalData
        #expect(throws: FieldCipherError.cannotOpen) { try moved.opened(with: cipher) }
    }
}
