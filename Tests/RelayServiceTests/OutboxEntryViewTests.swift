import Foundation
import RelayCore
import RelayService
import RelayStore
import Testing

@Suite("An outbox entry as an operator sees it")
struct OutboxEntryViewTests {
    @Test("external ids in a job's key and path are masked; the rest of the key stays readable")
    func masksExternalIds() throws {
        let update = CustomerUpdate(
            customerId: "cust-1",
            externalId: try #require(ExternalID(parsing: "CRM:500245678")),
            callId: "call-9",
            idempotencyKey: "reconcile:call-9:CRM:500245678"
        )
        let job = DeliveryJob(customerUpdate: update, causeId: "reconcile:call-9")
        let now = Date(timeIntervalSince1970: 1_760_000_000)
        let entry = OutboxEntry(
            id: 7,
            causeId: "reconcile:call-9",
            callId: "call-9",
            kind: "delivery",
            payload: job.encoded(),
            createdAt: now,
            dueAt: now + 60,
            attempts: 1,
            lastError: "HTTP 503"
        )
        let view = OutboxEntryView(entry, now: now)
        #expect(view.idempotencyKey?.hasPrefix("reconcile:call-9:CRM:") == true)
        #expect(view.idempotencyKey?.contains("500245678") == false)
        #expect(view.target.hasPrefix("PUT ") && !view.target.contains("500245678"))
        #expect(view.state == "scheduled" && view.job == "customerUpdate" && view.attempts == 1)
        let text = String(decoding: try JSONEncoder().encode(view), as: UTF8.self)
        #expect(!text.contains("500245678"))
    }
}
