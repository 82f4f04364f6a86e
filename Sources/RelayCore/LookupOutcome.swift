/// What one try at a lookup (phase-2 enrichment, a context update's validation) came to.
public enum LookupOutcome: Sendable, Hashable {
    case update(CustomerUpdate)
    /// Nothing to add (no match, several matches under the `temporary` policy), or a context update
    /// refused: nothing changes.
    case noUpdate(reason: String)
    /// No identifier found exactly one contact, but the name did: recorded for the agent, not linked.
    case suggestion(CRMSuggestion)
    /// A request went out and failed; worth another attempt after the delay.
    case retry(after: Duration, error: String)
    /// Nothing was asked, so no attempt was made: the upstream's breaker is open (try again when it
    /// lets its next probe through).
    case refused(reason: String, after: Duration)
    /// A backlog lookup whose turn at the CRM is not near (`RecoveryPacer`): nothing was asked, and it
    /// comes back at its turn rather than hold a lookup slot, so new calls keep their place.
    case paced(reason: String, after: Duration)
    case failed(error: String, status: Int?)

    /// A bounded label for metrics.
    public var metricLabel: String {
        switch self {
        case .update: "update"
        case .noUpdate: "noUpdate"
        case .suggestion: "suggestion"
        case .retry: "retry"
        case .refused: "refused"
        case .paced: "paced"
        case .failed: "failed"
        }
    }
}
