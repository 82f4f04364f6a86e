import Foundation
import Testing

@testable import RelayCore

/// A job's hand-written JSON must be byte for byte what `JSONEncoder` writes, for every kind and
/// every field, and read back to the same job: a field added to the job and not to the writer fails.
@Suite("Delivery job coding")
struct DeliveryJobCodingTests {
    static let odd = "a/b \"q\" \\ \u{1}\n\té"

    static var jobs: [DeliveryJob] {
        let update = CustomerUpdate(
            customerId: "cust/1",
            externalId: ExternalID(parsing: "CRM:500245678")!,
            callId: "call-1",
            idempotencyKey: "customer-update:e1"
        )
        var full = DeliveryJob(
            enrichment: EnrichmentRequest(
                callId: "call-" + odd,
                eventId: "e1",
                customerId: "cust-1",
                phone: "+15550100",
                email: "a@b.example",
                messagingPlatform: "whatsapp",
                messagingId: "m-1",
                name: "Ann Ödegaard",
                contactId: "003A"
            ),
            causeId: "e1"
        )
        full.contextChange = ContextChange(
            callId: "call-1",
            eventId: "e2",
            customerId: "cust-1",
            phoneKey: "k/+=",
            newExternalId: "ERP:9",
            reason: odd
        )
        full.attempts = 3
        full.firstFailureAt = Date(timeIntervalSince1970: 1_764_000_000.123_456)
        full.lastError = "HTTP 503 " + odd
        full.path = "/api/v2/customers/x"
        full.sealedPersonalData = "c2VhbGVk+/=="
        full.webhookId = "msg_1"
        // Two keys, given out of order: the writer sorts them as the encoder does.
        full.traceContext = [
            "tracestate": "vendor=a/b \"q\"", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ]
        var whole = DeliveryJob(customerUpdate: update, causeId: "e1")
        whole.firstFailureAt = Date(timeIntervalSince1970: 1_764_000_000)
        return [
            DeliveryJob(customerUpdate: update, causeId: "e1"), whole, full,
            DeliveryJob(contextChange: full.contextChange!, causeId: "e2"),
        ]
    }

    @Test("every field of the full job is set, so every field is compared")
    func fixtureSetsEveryField() {
        for child in Mirror(reflecting: Self.jobs[2]).children {
            let mirror = Mirror(reflecting: child.value)
            if mirror.displayStyle == .optional, mirror.children.isEmpty { Issue.record("nil: \(child.label ?? "?")") }
        }
    }

    @Test("byte for byte the JSON JSONEncoder writes, and the same job back")
    func sameAsFoundation() throws {
        for job in Self.jobs {
            #expect(
                String(decoding: job.encoded(), as: UTF8.self)
                    == String(decoding: job.encodedByFoundation(), as: UTF8.self)
            )
            #expect(try DeliveryJob.decode(job.encoded()) == job)
        }
    }

    @Test("the phase-1 body is what the encoder wrote")
    func phaseOneBody() throws {
        for id in ["CRM:500245678", "ERP:A-1", "PHONE:" + String(repeating: "ab", count: 32)] {
            let update = CustomerUpdate(
                customerId: "c",
                externalId: try #require(ExternalID(parsing: id)),
                callId: "c",
                idempotencyKey: "k"
            )
            let expected = try CustomerUpdate.bodyEncoder.encode(["externalId": id])
            #expect(update.body() == Array(expected))
        }
    }

    @Test("a path segment keeps only unreserved characters; everything else is escaped per UTF-8 byte, upper-case hex")
    func pathSegment() {
        #expect(PercentEncoding.encodePathSegment("AZaz09-._~") == "AZaz09-._~")
        #expect(PercentEncoding.encodePathSegment("PHONE:ab/../x?y#z") == "PHONE%3Aab%2F..%2Fx%3Fy%23z")
        #expect(PercentEncoding.encodePathSegment("é \u{0}%") == "%C3%A9%20%00%25")
        #expect(PercentEncoding.encodePathSegment("") == "")
    }
}
