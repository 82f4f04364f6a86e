public import Foundation

/// Correlates an interaction's events by `callId`: `(state, event) → (state', effects)`, pure and
/// synchronous, so every ordering can be tested without a broker or a clock.
///
/// Events may come out of order (an end before its start), twice (the same `eventId`), twice under
/// different ids (the first wins, the rest are recorded), late, or never; timers in the state cover
/// the "never". Times in outputs come from the events; timers run on processing time (`now`), which
/// the caller passes in.
public struct CallCorrelator: Sendable {
    public struct Settings: Sendable, Hashable {
        /// A start with no end after this long is an orphan.
        public var orphanAfter: Duration
        /// How long an end waits for its wrap-up before the call completes without one.
        public var wrapUpGrace: Duration
        /// How long an end (or wrap-up) waits for its start before it is an orphan.
        public var startGrace: Duration

        public init(
            orphanAfter: Duration = .seconds(4 * 3600),
            wrapUpGrace: Duration = .seconds(600),
            startGrace: Duration = .seconds(600)
        ) {
            self.orphanAfter = orphanAfter
            self.wrapUpGrace = wrapUpGrace
            self.startGrace = startGrace
        }
    }

    public enum Effect: Sendable, Hashable {
        case customerUpdate(CustomerUpdate)
        case enrich(EnrichmentRequest)
        /// An agent's identity switch, to validate against the system of record before it applies.
        case changeContext(ContextChange)
        case postCallWebhook(PostCallWebhook)
        case orphaned(DeadLetterRecord)
    }

    public enum Outcome: Sendable, Hashable {
        case applied
        /// The same event id was seen before: nothing changed, nothing new to send.
        case duplicate
        /// Another event already played this part (a second start, end or wrap-up): recorded only.
        case superseded
        /// The interaction was already completed or orphaned: recorded only.
        case late
        /// Refused before anything changed (a context update with an invalid external id).
        case rejected(reason: String)
        /// Kept until the interaction's start arrives (a context update that came before it).
        case deferred
    }

    public struct Transition: Sendable, Hashable {
        public var interaction: Interaction
        public var effects: [Effect]
        public var outcome: Outcome
    }

    public let settings: Settings
    public let linking: PhaseOneLinking

    public init(settings: Settings = .init(), linking: PhaseOneLinking) {
        self.settings = settings
        self.linking = linking
    }

    /// - Parameters:
    ///   - override: the caller's live recent override, looked up by the caller (the store);
    ///     it wins over the `PHONE:` id in phase 1.
    ///   - caller: `linking.caller(of: event)`, when the caller worked it out already.
    public func handle(
        _ event: PlatformEvent,
        state: Interaction?,
        now: Date,
        override: ExternalID? = nil,
        caller: PhaseOneLinking.Caller? = nil
    ) -> Transition {
        var interaction = state ?? Interaction(callId: event.callId, firstSeenAt: now)
        guard !interaction.seenEventIds.contains(event.eventId) else {
            return Transition(interaction: interaction, effects: [], outcome: .duplicate)
        }
        interaction.seenEventIds.append(event.eventId)
        var effects: [Effect] = []

        switch event.payload {
        case .callStarted, .chatStarted, .emailReceived, .messageReceived:
            guard interaction.startEventId == nil else { return supersede(interaction, event) }
            recordStart(event, into: &interaction)
            let caller = caller ?? linking.caller(of: event)
            interaction.phoneKey = caller.phoneKey
            if case .effects(let linkingEffects) = linking.decide(event, override: override, caller: caller) {
                for effect in linkingEffects {
                    switch effect {
                    case .customerUpdate(let update):
                        interaction.externalId = update.externalId.description
                        interaction.customerId = update.customerId
                        effects.append(.customerUpdate(update))
                    case .enrich(let request):
                        effects.append(.enrich(request))
                    }
                }
            }
            // Context updates that came first are asked for now, after the phase-1 link they replace.
            if let pending = interaction.pendingContextUpdates, let customerId = interaction.customerId {
                for update in pending {
                    effects.append(
                        .changeContext(
                            ContextChange(
                                callId: event.callId,
                                eventId: update.eventId,
                                customerId: customerId,
                                phoneKey: interaction.phoneKey,
                                newExternalId: update.newExternalId,
                                reason: update.reason
                            )
                        )
                    )
                }
                interaction.pendingContextUpdates = nil
            }
            switch interaction.status {
            case .awaitingStart where interaction.endedAt != nil:
                interaction.timers.removeAll { $0.kind == .startNeverCame }
                interaction.status = .ended
                effects += endReached(&interaction, now: now)
            case .awaitingStart:
                interaction.timers.removeAll { $0.kind == .startNeverCame }
                interaction.status = .active
                interaction.timers.append(.init(kind: .endNeverCame, dueAt: now + settings.orphanAfter))
            case .active, .ended, .completed, .orphaned:
                // A start after the interaction was given up on still links the customer; nothing else.
                return Transition(interaction: interaction, effects: effects, outcome: .late)
            }

        case .callEnded(let end):
            guard interaction.endEventId == nil else { return supersede(interaction, event) }
            interaction.endEventId = event.eventId
            interaction.endedAt = event.occurredAt
            interaction.disconnectType = end.disconnectType
            switch interaction.status {
            case .active:
                interaction.timers.removeAll { $0.kind == .endNeverCame }
                interaction.status = .ended
                effects += endReached(&interaction, now: now)
            case .awaitingStart:
                waitForStart(&interaction, now: now)
            case .ended, .completed, .orphaned:
                return Transition(interaction: interaction, effects: [], outcome: .late)
            }

        case .wrapUp(let wrapUp):
            guard interaction.wrapUpEventId == nil else { return supersede(interaction, event) }
            interaction.wrapUpEventId = event.eventId
            interaction.wrappedUpAt = event.occurredAt
            interaction.wrapUpCode = wrapUp.wrapUpCode
            // The agent who wrapped the call up handled it; the queue is the start's when it names
            // one (Genesys puts it only on the after-call work). Precedence, not arrival order, so
            // every order and every input shape gives the same webhook.
            if let agentId = wrapUp.agentId { interaction.agentId = agentId }
            if interaction.queueId == nil { interaction.queueId = wrapUp.queueId }
            switch interaction.status {
            case .ended:
                interaction.timers.removeAll { $0.kind == .wrapUpGrace }
                effects.append(complete(&interaction, now: now))
            case .awaitingStart:
                waitForStart(&interaction, now: now)
            case .active:
                break
            case .completed, .orphaned:
                return Transition(interaction: interaction, effects: [], outcome: .late)
            }

        case .contextUpdate(let update):
            // Nothing changes here: the new id must first be found in its system of record.
            guard let externalId = ExternalID(parsing: update.newExternalId), externalId.source != .phone else {
                return Transition(
                    interaction: interaction,
                    effects: [],
                    outcome: .rejected(reason: "not a CRM: or ERP: external id")
                )
            }
            guard interaction.startEventId != nil else {
                // Events of one interaction arrive out of order: kept, and asked for once the start is
                // in. Without a start in time the interaction is orphaned, this update with it.
                interaction.pendingContextUpdates =
                    (interaction.pendingContextUpdates ?? []) + [
                        PendingContextUpdate(
                            eventId: event.eventId,
                            newExternalId: externalId.description,
                            reason: update.reason
                        )
                    ]
                waitForStart(&interaction, now: now)
                return Transition(interaction: interaction, effects: [], outcome: .deferred)
            }
            guard let customerId = interaction.customerId else {
                return Transition(
                    interaction: interaction,
                    effects: [],
                    outcome: .rejected(reason: "the call has no platform customer to update")
                )
            }
            effects.append(
                .changeContext(
                    ContextChange(
                        callId: event.callId,
                        eventId: event.eventId,
                        customerId: customerId,
                        phoneKey: interaction.phoneKey,
                        newExternalId: externalId.description,
                        reason: update.reason
                    )
                )
            )
        }
        return Transition(interaction: interaction, effects: effects, outcome: .applied)
    }

    /// Fires every timer due at `now`, oldest first.
    public func fireTimers(_ state: Interaction, now: Date) -> Transition {
        var interaction = state
        var effects: [Effect] = []
        let due = interaction.timers.filter { $0.dueAt <= now }.sorted { $0.dueAt < $1.dueAt }
        for timer in due {
            interaction.timers.removeAll { $0 == timer }
            switch (timer.kind, interaction.status) {
            case (.endNeverCame, .active):
                effects.append(
                    orphan(
                        &interaction,
                        now: now,
                        because: "no callEnded within \(Self.describe(settings.orphanAfter)) of the start"
                    )
                )
            case (.startNeverCame, .awaitingStart):
                let first =
                    interaction.endEventId == nil && interaction.wrapUpEventId == nil
                    ? "context update" : "end or wrap-up"
                effects.append(
                    orphan(
                        &interaction,
                        now: now,
                        because: "no start event within \(Self.describe(settings.startGrace)) of its \(first)"
                    )
                )
            case (.wrapUpGrace, .ended):
                effects.append(complete(&interaction, now: now))
            default:
                continue  // the state moved on; a stale timer does nothing
            }
        }
        return Transition(interaction: interaction, effects: effects, outcome: .applied)
    }

    // MARK: Steps

    private func recordStart(_ event: PlatformEvent, into interaction: inout Interaction) {
        interaction.startEventId = event.eventId
        interaction.startedAt = event.occurredAt
        switch event.payload {
        case .callStarted(let start):
            interaction.channel = .voice
            interaction.direction = start.direction
            interaction.queueId = start.queueId ?? interaction.queueId
            interaction.customerId = start.customerId
            if interaction.agentId == nil { interaction.agentId = start.userId }
        case .chatStarted(let chat):
            interaction.channel = .chat
            interaction.direction = .inbound
            interaction.queueId = chat.queueId ?? interaction.queueId
            interaction.customerId = chat.customerId
        case .emailReceived(let email):
            interaction.channel = .email
            interaction.direction = .inbound
            interaction.queueId = email.queueId ?? interaction.queueId
            interaction.customerId = email.customerId
        case .messageReceived(let message):
            interaction.channel = .messaging
            interaction.direction = .inbound
            interaction.queueId = message.queueId ?? interaction.queueId
            interaction.customerId = message.customerId
        case .callEnded, .wrapUp, .contextUpdate:
            break
        }
    }

    /// Started and ended: complete now if the wrap-up is in, else give it its grace period.
    private func endReached(_ interaction: inout Interaction, now: Date) -> [Effect] {
        if interaction.wrappedUpAt != nil { return [complete(&interaction, now: now)] }
        interaction.timers.append(.init(kind: .wrapUpGrace, dueAt: now + settings.wrapUpGrace))
        return []
    }

    private func waitForStart(_ interaction: inout Interaction, now: Date) {
        guard !interaction.timers.contains(where: { $0.kind == .startNeverCame }) else { return }
        interaction.timers.append(.init(kind: .startNeverCame, dueAt: now + settings.startGrace))
    }

    private func complete(_ interaction: inout Interaction, now: Date) -> Effect {
        interaction.status = .completed
        interaction.timers.removeAll()
        return .postCallWebhook(PostCallWebhook(completing: interaction, at: now))
    }

    private func orphan(_ interaction: inout Interaction, now: Date, because reason: String) -> Effect {
        interaction.status = .orphaned
        interaction.timers.removeAll()
        let known = PostCallWebhook(completing: interaction, at: now).body()
        let onlyContextUpdates =
            interaction.startEventId == nil && interaction.endEventId == nil && interaction.wrapUpEventId == nil
        let eventType =
            interaction.startEventId != nil
            ? Self.startEventType(interaction.channel)
            : onlyContextUpdates && interaction.pendingContextUpdates != nil
                ? EventType.contextUpdate.rawValue : EventType.callEnded.rawValue
        return .orphaned(
            DeadLetterRecord(
                id: DeadLetterRecord.stableID(reason: .orphanedInteraction, source: Array(interaction.callId.utf8)),
                reason: .orphanedInteraction,
                callId: interaction.callId,
                eventType: eventType,
                eventId: interaction.startEventId ?? interaction.endEventId ?? interaction.wrapUpEventId
                    ?? interaction.pendingContextUpdates?.first?.eventId,
                attempts: 1,
                firstFailureAt: now,
                lastFailureAt: now,
                lastError: reason,
                originalPayload: known,
                origin: nil
            )
        )
    }

    private func supersede(_ interaction: Interaction, _ event: PlatformEvent) -> Transition {
        var interaction = interaction
        interaction.supersededEventIds.append(event.eventId)
        return Transition(interaction: interaction, effects: [], outcome: .superseded)
    }

    static func startEventType(_ channel: Channel?) -> String {
        switch channel {
        case .voice, nil: EventType.callStarted.rawValue
        case .chat: EventType.chatStarted.rawValue
        case .email: EventType.emailReceived.rawValue
        case .messaging: EventType.messageReceived.rawValue
        }
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = Int(duration.components.seconds)
        if seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        if seconds % 60 == 0 { return "\(seconds / 60) min" }
        return "\(seconds) s"
    }
}

extension Date {
    static func + (date: Date, duration: Duration) -> Date {
        date.addingTimeInterval(duration.totalSeconds)
    }
}

/// A context update waiting for validation: the call's customer, the caller's phone key (for the
/// override), and the external id the agent switched to.
public struct ContextChange: Sendable, Hashable, Codable {
    public var callId: String
    public var eventId: String
    public var customerId: String
    public var phoneKey: String?
    public var newExternalId: String
    public var reason: String

    public init(
        callId: String,
        eventId: String,
        customerId: String,
        phoneKey: String?,
        newExternalId: String,
        reason: String
    ) {
        self.callId = callId
        self.eventId = eventId
        self.customerId = customerId
        self.phoneKey = phoneKey
        self.newExternalId = newExternalId
        self.reason = reason
    }
}
