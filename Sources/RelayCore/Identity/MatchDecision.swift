import Foundation

/// What to do when a lookup finds several contacts (DESIGN.md, "Identity").
public enum SeveralMatchesPolicy: String, Sendable, Hashable, CaseIterable {
    /// Link none: the interaction keeps its temporary (phase-1) link. The seeds' rule.
    case temporary
    /// Link the first-created match, as some platforms do; the response's order is taken as creation order.
    case oldest
}

public enum MatchDecision: Sendable, Hashable {
    case linked(CRMContact)
    case noMatch
    case ambiguous(count: Int)

    public init(_ contacts: [CRMContact], policy: SeveralMatchesPolicy) {
        switch (contacts.count, policy) {
        case (0, _): self = .noMatch
        case (1, _): self = .linked(contacts[0])
        case (_, .oldest): self = .linked(contacts[0])
        case (let count, .temporary): self = .ambiguous(count: count)
        }
    }
}
