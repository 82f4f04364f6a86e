public import Foundation

/// What happens next to one outbox job: the relay's delivery rules, with no sockets and no store.
///
/// The dispatcher asks it before a send (is the update still the call's link?), after a send (the
/// response or transport error), and after a lookup (the enricher's answer), and carries out the
/// action it returns: send, schedule the next attempt at a time, dead-letter, drop as superseded, or
/// relink the call and send the enriched update. Every wait it returns is a due time for the store's
/// outbox row, so a retry outlives the process that scheduled it.
public struct DeliveryStateMachine: Sendable {
    public var retryPolicy: RetryPolicy
    public var lookupSetbacks: LookupSetbackRule

    public init(retryPolicy: RetryPolicy, lookupMaxAge: Duration) {
        self.retryPolicy = retryPolicy
        self.lookupSetbacks = LookupSetbackRule(maxAttempts: retryPolicy.maxAttempts, maxAge: lookupMaxAge)
    }

    public enum Action: Sendable, Hashable {
        /// Send the job now.
        case send
        /// The call is linked to another CRM or ERP id than the update carries: sending it would put
        /// the platform back on an older link. Not sent, and done.
        case superseded(currentLink: String)
        /// The upstream took it (a 2xx): done.
        case delivered
        /// Try again at `at`; `job` carries the attempts, the first failure and the last error.
        case retry(at: Date, job: DeliveryJob)
        /// No further attempt: becomes a dead letter (`deliveryFailed` or `enrichmentFailed`).
        case deadLetter(error: String, status: Int?, job: DeliveryJob)
        /// The lookup found the customer: relink the call under `rule` and send `update`.
        case relinkAndSend(update: CustomerUpdate, rule: RelinkRule)
        /// The name alone found a CRM contact: recorded for the agent, never linked.
        case suggest(CRMSuggestion)
        /// The lookup finished with nothing to change (no match, a refused context update).
        case finished(reason: String)
    }

    /// Before a customer update is sent: whether the call's current link (read from the store with the
    /// job) still lets it go. A call on a `PHONE:` id, or not linked, supersedes nothing: an upgrade
    /// queues its update before it relinks. Other kinds are always sent.
    public func beforeSend(_ job: DeliveryJob, currentLink: String?) -> Action {
        guard job.kind == .customerUpdate, let currentLink, ExternalID(parsing: currentLink)?.source != .phone,
            let sent = job.externalIdInBody, sent != currentLink
        else { return .send }
        return .superseded(currentLink: currentLink)
    }

    /// After a send: delivered, retried at a time (backoff with full jitter, `Retry-After` honoured up
    /// to its cap), or dead-lettered (a 4xx other than 408/429, a transport error not worth retrying,
    /// or the last attempt).
    public func afterSend(
        _ job: DeliveryJob,
        result: DeliveryAttemptResult,
        now: Date,
        using generator: inout some RandomNumberGenerator
    ) -> Action {
        let attempt = job.attempts + 1
        var next = job
        next.attempts = attempt
        switch retryPolicy.decide(after: result, attempt: attempt, now: now, using: &generator) {
        case .delivered:
            return .delivered
        case .giveUp(let error, let status):
            next.firstFailureAt = job.firstFailureAt ?? now
            next.lastError = error
            return .deadLetter(error: error, status: status, job: next)
        case .retry(let delay):
            next.firstFailureAt = job.firstFailureAt ?? now
            next.lastError = Self.summary(of: result)
            return .retry(at: now.addingTimeInterval(delay.totalSeconds), job: next)
        }
    }

    /// A send its target's open breaker refused: nobody was asked, so no attempt is spent; it waits for
    /// the breaker's next probe. A platform outage longer than the retries' backoff dead-letters nothing.
    public func afterRefusal(_ job: DeliveryJob, until: Date, reason: String, now: Date) -> Action {
        var next = job
        next.firstFailureAt = job.firstFailureAt ?? now
        next.lastError = reason
        return .retry(at: max(until, now), job: next)
    }

    /// After a lookup: a refusal by an open breaker or the backlog's pace asked nobody, so it costs no
    /// attempt and waits for its turn; a failed request is an attempt; either gives up by attempts or
    /// by age (`enrichment.maxAgeSeconds`), never by refusals alone.
    public func afterLookup(_ job: DeliveryJob, outcome: LookupOutcome, now: Date) -> Action {
        switch outcome {
        case .update(let update):
            return .relinkAndSend(update: update, rule: job.kind == .contextChange ? .anyLink : .phoneLinkOnly)
        case .suggestion(let suggestion):
            return .suggest(suggestion)
        case .noUpdate(let reason):
            return .finished(reason: reason)
        case .failed(let error, let status):
            var next = job
            next.attempts = job.attempts + 1
            next.firstFailureAt = job.firstFailureAt ?? now
            next.lastError = error
            return .deadLetter(error: error, status: status, job: next)
        case .refused(let reason, let after), .paced(let reason, let after):
            return setBack(job, .refused(reason: reason, until: after), error: reason, now: now)
        case .retry(let after, let error):
            return setBack(job, .failed(error: error, after: after), error: error, now: now)
        }
    }

    private func setBack(_ job: DeliveryJob, _ setback: LookupSetbackRule.Setback, error: String, now: Date) -> Action {
        var next = job
        let firstSetbackAt = job.firstFailureAt ?? now
        next.firstFailureAt = firstSetbackAt
        switch lookupSetbacks.next(after: setback, attemptsMade: job.attempts, firstSetbackAt: firstSetbackAt, now: now)
        {
        case .giveUp(let reason, let attempts):
            next.attempts = attempts
            next.lastError = reason
            return .deadLetter(error: reason, status: nil, job: next)
        case .wait(let delay, let attempts):
            next.attempts = attempts
            next.lastError = error
            return .retry(at: now.addingTimeInterval(delay.totalSeconds), job: next)
        }
    }

    /// A log-safe summary of an attempt: response bodies may echo personal data back, so only the status.
    public static func summary(of result: DeliveryAttemptResult) -> String {
        switch result {
        case .response(let status, _, _): "HTTP \(status)"
        case .transportFailure(_, let description): description
        }
    }
}

extension DeliveryJob {
    /// The `externalId` a customer update's body sets on the platform.
    public var externalIdInBody: String? {
        guard kind == .customerUpdate else { return nil }
        return try? Self.linkDecoder.decode(LinkInBody.self, from: Data(body.utf8)).externalId
    }

    private struct LinkInBody: Decodable {
        var externalId: String
    }

    private static let linkDecoder = JSONDecoder()
}
