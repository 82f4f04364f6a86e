public import Foundation
public import RelayCore

/// One interaction of a journey, as stored: the notes still sealed.
public struct StoredJourneyEntry: Sendable, Hashable {
    public var callId: String
    /// The contact (or alias) the interaction landed on.
    public var contactId: String
    public var linkedBy: String
    public var status: Interaction.Status
    public var channel: Channel?
    public var direction: CallDirection?
    public var startedAt: Date?
    public var endedAt: Date?
    public var firstSeenAt: Date
    public var queueId: String?
    public var agentId: String?
    public var wrapUpCode: String?
    public var notes: [UInt8]?
    /// CRM contacts the customer's name alone found, names sealed.
    public var suggestions: [StoredSuggestion] = []

    public init(
        callId: String,
        contactId: String,
        linkedBy: String,
        status: Interaction.Status,
        channel: Channel?,
        direction: CallDirection?,
        startedAt: Date?,
        endedAt: Date?,
        firstSeenAt: Date,
        queueId: String?,
        agentId: String?,
        wrapUpCode: String?,
        notes: [UInt8]?,
        suggestions: [StoredSuggestion]
    ) {
        self.callId = callId
        self.contactId = contactId
        self.linkedBy = linkedBy
        self.status = status
        self.channel = channel
        self.direction = direction
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.firstSeenAt = firstSeenAt
        self.queueId = queueId
        self.agentId = agentId
        self.wrapUpCode = wrapUpCode
        self.notes = notes
        self.suggestions = suggestions
    }
}
