import Foundation
import RelayCore
import Testing

@Suite("The delivery state machine")
struct DeliveryStateMachineTests {
    let machine = DeliveryStateMachine(
        retryPolicy: RetryPolicy(
            maxAttempts: 3,
            backoff: Backoff(baseDelay: .seconds(1), maxDelay: .seconds(60)),
            maxRetryAfter: .seconds(120)
        ),
        lookupMaxAge: .seconds(900)
    )
    let now = Date(timeIntervalSince1970: 1_760_000_000)
    let phoneId = "PHONE:" + String(repeating: "ab", count: 32)

    func update(_ externalId: String, key: String = "customer-update:e1") -> DeliveryJob {
        DeliveryJob(
            customerUpdate: CustomerUpdate(
                customerId: "cust-1",
                externalId: ExternalID(parsing: externalId)!,
                callId: "call-1",
                idempotencyKey: key
            ),
            causeId: "e1"
        )
    }

    var lookup: DeliveryJob {
        DeliveryJob(
            enrichment: EnrichmentRequest(callId: "call-1", eventId: "e1", customerId: "cust-1", phone: "+15550100001"),
            causeId: "e1"
        )
    }

    // MARK: Before a send

    @Test("an update goes while its call is on its own link, on a PHONE: link, or not linked")
    func sendsWhenCurrent() {
        #expect(machine.beforeSend(update("CRM:1"), currentLink: "CRM:1") == .send)
        #expect(machine.beforeSend(update(phoneId), currentLink: phoneId) == .send)
        // Reconciliation queues its upgrade before it relinks: a PHONE: link supersedes nothing.
        #expect(machine.beforeSend(update("CRM:1"), currentLink: phoneId) == .send)
        #expect(machine.beforeSend(update("CRM:1"), currentLink: nil) == .send)
    }

    @Test("an update whose call has since been linked to another CRM or ERP id is superseded")
    func superseded() {
        #expect(machine.beforeSend(update(phoneId), currentLink: "CRM:7") == .superseded(currentLink: "CRM:7"))
        #expect(machine.beforeSend(update("CRM:1"), currentLink: "ERP:9") == .superseded(currentLink: "ERP:9"))
    }

    @Test("a webhook is never superseded")
    func webhookAlwaysSent() {
        var interaction = Interaction(callId: "call-1", firstSeenAt: now)
        interaction.externalId = phoneId
        let webhook = DeliveryJob(webhook: PostCallWebhook(completing: interaction, at: now), causeId: "e9")
        #expect(machine.beforeSend(webhook, currentLink: "CRM:7") == .send)
    }

    // MARK: After a send

    @Test("a 2xx is delivered")
    func delivered() {
        var generator = SplitMix64(state: 1)
        let action = machine.afterSend(
            update("CRM:1"),
            result: .response(status: 204, retryAfter: nil, bodyExcerpt: ""),
            now: now,
            using: &generator
        )
        #expect(action == .delivered)
    }

    @Test("a 503 retries within the backoff's first window, counting the attempt and keeping the first failure")
    func retryWithBackoff() throws {
        var generator = SplitMix64(state: 7)
        let action = machine.afterSend(
            update("CRM:1"),
            result: .response(status: 503, retryAfter: nil, bodyExcerpt: "busy"),
            now: now,
            using: &generator
        )
        guard case .retry(let at, let job) = action else {
            Issue.record("expected a retry, got \(action)")
            return
        }
        #expect(at >= now && at <= now.addingTimeInterval(1))
        #expect(job.attempts == 1)
        #expect(job.firstFailureAt == now)
        #expect(job.lastError == "HTTP 503", "the body stays out: it may echo personal data")

        // The second failure keeps the first failure's time and widens the window.
        let later = now.addingTimeInterval(5)
        let second = machine.afterSend(
            job,
            result: .transportFailure(isRetriable: true, description: "connection refused"),
            now: later,
            using: &generator
        )
        guard case .retry(let secondAt, let secondJob) = second else {
            Issue.record("expected a retry, got \(second)")
            return
        }
        #expect(secondAt >= later && secondAt <= later.addingTimeInterval(2))
        #expect(secondJob.attempts == 2)
        #expect(secondJob.firstFailureAt == now)
        #expect(secondJob.lastError == "connection refused")
    }

    @Test("a Retry-After is honoured, up to its cap")
    func retryAfter() {
        var generator = SplitMix64(state: 3)
        let honoured = machine.afterSend(
            update("CRM:1"),
            result: .response(status: 429, retryAfter: "30", bodyExcerpt: ""),
            now: now,
            using: &generator
        )
        guard case .retry(let at, _) = honoured else {
            Issue.record("expected a retry, got \(honoured)")
            return
        }
        #expect(at == now.addingTimeInterval(30))
        let capped = machine.afterSend(
            update("CRM:1"),
            result: .response(status: 503, retryAfter: "86400", bodyExcerpt: ""),
            now: now,
            using: &generator
        )
        guard case .retry(let cappedAt, _) = capped else {
            Issue.record("expected a retry, got \(capped)")
            return
        }
        #expect(cappedAt == now.addingTimeInterval(120))
    }

    @Test("a 4xx other than 408 and 429 is dead-lettered at once, with the upstream's answer")
    func clientErrorDeadLetters() {
        var generator = SplitMix64(state: 3)
        let action = machine.afterSend(
            update("CRM:1"),
            result: .response(status: 400, retryAfter: nil, bodyExcerpt: "externalId rejected"),
            now: now,
            using: &generator
        )
        guard case .deadLetter(let error, let status, let job) = action else {
            Issue.record("expected a dead letter, got \(action)")
            return
        }
        #expect(status == 400)
        #expect(error == "HTTP 400: externalId rejected")
        #expect(job.attempts == 1)
    }

    @Test("the last attempt's failure exhausts the job")
    func exhaustion() {
        var generator = SplitMix64(state: 3)
        var job = update("CRM:1")
        job.attempts = 2
        job.firstFailureAt = now.addingTimeInterval(-10)
        let action = machine.afterSend(
            job,
            result: .response(status: 500, retryAfter: nil, bodyExcerpt: ""),
            now: now,
            using: &generator
        )
        guard case .deadLetter(let error, let status, let exhausted) = action else {
            Issue.record("expected a dead letter, got \(action)")
            return
        }
        #expect(status == 500)
        #expect(error.contains("after 3 attempts"))
        #expect(exhausted.attempts == 3)
        #expect(exhausted.firstFailureAt == now.addingTimeInterval(-10))
    }

    // MARK: After a lookup

    @Test("an enrichment's answer relinks the call from a PHONE: link only; a validated switch from any")
    func relink() throws {
        let answer = CustomerUpdate(
            customerId: "cust-1",
            externalId: try #require(ExternalID(parsing: "CRM:5")),
            callId: "call-1",
            idempotencyKey: "enrichment:e1"
        )
        #expect(
            machine.afterLookup(lookup, outcome: .update(answer), now: now)
                == .relinkAndSend(update: answer, rule: .phoneLinkOnly)
        )
        let change = DeliveryJob(
            contextChange: ContextChange(
                callId: "call-1",
                eventId: "e2",
                customerId: "cust-1",
                phoneKey: nil,
                newExternalId: "CRM:5",
                reason: "agent"
            ),
            causeId: "e2"
        )
        #expect(
            machine.afterLookup(change, outcome: .update(answer), now: now)
                == .relinkAndSend(update: answer, rule: .anyLink)
        )
    }

    @Test("no match finishes the lookup; a name's single match is a suggestion")
    func noMatchAndSuggestion() {
        #expect(
            machine.afterLookup(lookup, outcome: .noUpdate(reason: "no CRM match"), now: now)
                == .finished(reason: "no CRM match")
        )
        let suggestion = CRMSuggestion(externalId: "CRM:9", name: "A Name")
        #expect(machine.afterLookup(lookup, outcome: .suggestion(suggestion), now: now) == .suggest(suggestion))
    }

    @Test("an open breaker's refusal waits for the next probe and spends no attempt, however often")
    func refusalIsNoAttempt() {
        var job = lookup
        var at = now
        for _ in 0..<50 {
            let action = machine.afterLookup(
                job,
                outcome: .refused(reason: "crm circuit open", after: .seconds(10)),
                now: at
            )
            guard case .retry(let due, let next) = action else {
                Issue.record("expected a retry, got \(action)")
                return
            }
            #expect(due == at.addingTimeInterval(10))
            #expect(next.attempts == 0)
            job = next
            at = due
            if at.timeIntervalSince(now) > 400 { break }
        }
        #expect(job.firstFailureAt == now)
    }

    @Test("a lookup gives up by age, not by refusals: past enrichment.maxAgeSeconds it is dead-lettered")
    func givesUpByAge() {
        var job = lookup
        job.firstFailureAt = now.addingTimeInterval(-895)
        let action = machine.afterLookup(
            job,
            outcome: .refused(reason: "crm circuit open", after: .seconds(10)),
            now: now
        )
        guard case .deadLetter(let error, _, let next) = action else {
            Issue.record("expected a dead letter, got \(action)")
            return
        }
        #expect(error.contains("crm circuit open"))
        #expect(next.attempts == 0)
    }

    @Test("failed lookup requests are attempts: the last one is dead-lettered as enrichmentFailed would be")
    func lookupAttempts() {
        let first = machine.afterLookup(lookup, outcome: .retry(after: .seconds(2), error: "crm: HTTP 503"), now: now)
        guard case .retry(let at, let job) = first else {
            Issue.record("expected a retry, got \(first)")
            return
        }
        #expect(at == now.addingTimeInterval(2))
        #expect(job.attempts == 1)
        var spent = job
        spent.attempts = 2
        let last = machine.afterLookup(spent, outcome: .retry(after: .seconds(2), error: "crm: HTTP 503"), now: now)
        guard case .deadLetter(let error, _, let exhausted) = last else {
            Issue.record("expected a dead letter, got \(last)")
            return
        }
        #expect(error.contains("after 3 attempts"))
        #expect(exhausted.attempts == 3)
        // A request the CRM refused for good (a 4xx) is dead-lettered at once.
        let refused = machine.afterLookup(lookup, outcome: .failed(error: "crm: HTTP 401", status: 401), now: now)
        guard case .deadLetter(_, let status, let failed) = refused else {
            Issue.record("expected a dead letter, got \(refused)")
            return
        }
        #expect(status == 401)
        #expect(failed.attempts == 1)
    }

    @Test("a send its target's open breaker refused spends no attempt and waits for the next probe")
    func refusedSend() {
        var job = update("CRM:1")
        job.attempts = 2
        let action = machine.afterRefusal(
            job,
            until: now.addingTimeInterval(30),
            reason: "platform circuit open",
            now: now
        )
        guard case .retry(let at, let next) = action else {
            Issue.record("expected a retry, got \(action)")
            return
        }
        #expect(at == now.addingTimeInterval(30))
        #expect(next.attempts == 2 && next.lastError == "platform circuit open" && next.firstFailureAt == now)
    }
}
