public import Foundation

/// The channel an interaction happens on; the start event's type decides it.
public enum Channel: String, Sendable, Hashable, Codable, CaseIterable {
    case voice, chat, email, messaging
}

/// What the relay remembers of one interaction (one `callId`): enough to correlate its events and
/// report on it, and nothing of the customer but the external id it was linked to.
public struct Interaction: Sendable, Hashable, Codable {
    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        /// An end or wrap-up came first; waiting for the start.
        case awaitingStart
        /// Started, not ended.
        case active
        /// Ended, waiting for the wrap-up or for its grace period to pass.
        case ended
        /// The post-call webhook has been emitted.
        case completed
        /// Given up on: dead-lettered as `orphanedInteraction`.
        case orphaned
    }

    public var callId: String
    public var status: Status
    public var channel: Channel?
    public var direction: CallDirection?
    public var startedAt: Date?
    public var endedAt: Date?
    public var wrappedUpAt: Date?
    public var queueId: String?
    public var agentId: String?
    public var wrapUpCode: String?
    public var disconnectType: String?
    /// The platform's customer the relay updates for this interaction (the event's, else the phase-1 id).
    public var customerId: String?
    /// The phase-1 link (`PHONE:…`, or a live override), a pointer, never the number itself.
    public var externalId: String?
    /// The keyed hash of the customer's number: how recent overrides find this caller again.
    public var phoneKey: String?
    public var startEventId: String?
    public var endEventId: String?
    public var wrapUpEventId: String?
    /// Every event id seen for this interaction, to recognise duplicates.
    public var seenEventIds: [String]
    /// Second starts, ends or wrap-ups under other event ids: the first one won; these are kept for the record.
    public var supersededEventIds: [String]
    /// Context updates that came before the start (events of one interaction arrive out of order):
    /// asked for once the start has linked the call. Optional so that states stored before it decode.
    public var pendingContextUpdates: [PendingContextUpdate]?
    /// Durable timers: they are part of the state, so they survive a restart with it.
    public var timers: [InteractionTimer]
    /// When the relay first heard of this interaction (processing time, not event time).
    public var firstSeenAt: Date

    public init(callId: String, firstSeenAt: Date) {
        self.callId = callId
        self.status = .awaitingStart
        self.seenEventIds = []
        self.supersededEventIds = []
        self.timers = []
        self.firstSeenAt = firstSeenAt
    }

    /// When the next timer is due, for the store to index; nil when none is set.
    public var nextDueAt: Date? { timers.map(\.dueAt).min() }

    /// Handle time: from start to end, in whole seconds.
    public var handleTimeSeconds: Int? {
        guard let startedAt, let endedAt else { return nil }
        return max(0, Int((endedAt.timeIntervalSince(startedAt)).rounded()))
    }

    /// After-call work: from end to wrap-up, in whole seconds; nil without a wrap-up.
    public var afterCallWorkSeconds: Int? {
        guard let endedAt, let wrappedUpAt else { return nil }
        return max(0, Int((wrappedUpAt.timeIntervalSince(endedAt)).rounded()))
    }
}

/// A `contextUpdate` kept until its interaction's start arrives.
public struct PendingContextUpdate: Sendable, Hashable, Codable {
    public var eventId: String
    public var newExternalId: String
    public var reason: String

    public init(eventId: String, newExternalId: String, reason: String) {
        self.eventId = eventId
        self.newExternalId = newExternalId
        self.reason = reason
    }
}

public struct InteractionTimer: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Started but never ended within `orphanAfter`.
        case endNeverCame
        /// Ended (or wrapped up) but never started within `startGrace`.
        case startNeverCame
        /// Ended and not wrapped up: complete without the wrap-up once `wrapUpGrace` passes.
        case wrapUpGrace
    }

    public var kind: Kind
    public var dueAt: Date

    public init(kind: Kind, dueAt: Date) {
        self.kind = kind
        self.dueAt = dueAt
    }
}
