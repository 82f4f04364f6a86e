import Foundation
import RelayCore
import Testing

/// Events of one call, built with event times relative to a fixed start.
struct CallScript {
    static let t0 = Date(timeIntervalSince1970: 1_795_514_400)
    var callId: String
    var caller = "+15550100001"

    func start(id: String? = nil, at offset: Double = 0, agent: String? = "agent-start") -> PlatformEvent {
        PlatformEvent(
            eventId: id ?? "\(callId)-start",
            callId: callId,
            occurredAt: Self.t0 + offset,
            payload: .callStarted(
                CallStarted(
                    fromNumber: caller,
                    toNumber: "+15550190000",
                    direction: .inbound,
                    userId: agent,
                    queueId: "queue-1"
                )
            )
        )
    }

    func end(id: String? = nil, at offset: Double = 300) -> PlatformEvent {
        PlatformEvent(
            eventId: id ?? "\(callId)-end",
            callId: callId,
            occurredAt: Self.t0 + offset,
            payload: .callEnded(CallEnded(disconnectType: "client"))
        )
    }

    func wrapUp(id: String? = nil, at offset: Double = 345) -> PlatformEvent {
        PlatformEvent(
            eventId: id ?? "\(callId)-wrap",
            callId: callId,
            occurredAt: Self.t0 + offset,
            payload: .wrapUp(WrapUp(wrapUpCode: "RESOLVED", agentId: "agent-7"))
        )
    }
}

extension Date {
    static func + (date: Date, seconds: Double) -> Date { date.addingTimeInterval(seconds) }
}

/// Feeds events to the correlator one by one, as the pipeline does, keeping every effect.
struct Harness {
    let correlator: CallCorrelator
    var states: [String: Interaction] = [:]
    var effects: [CallCorrelator.Effect] = []
    var outcomes: [CallCorrelator.Outcome] = []

    init(settings: CallCorrelator.Settings = .init()) {
        correlator = CallCorrelator(
            settings: settings,
            linking: PhaseOneLinking(hasher: PhoneHasher(key: Array(repeating: 3, count: 32))!)
        )
    }

    mutating func feed(_ event: PlatformEvent, now: Date = CallScript.t0) {
        let transition = correlator.handle(event, state: states[event.callId], now: now)
        states[event.callId] = transition.interaction
        effects += transition.effects
        outcomes.append(transition.outcome)
    }

    mutating func fireTimers(now: Date) {
        for (callId, state) in states {
            let transition = correlator.fireTimers(state, now: now)
            states[callId] = transition.interaction
            effects += transition.effects
        }
    }

    var webhooks: [PostCallWebhook] {
        effects.compactMap { if case .postCallWebhook(let webhook) = $0 { webhook } else { nil } }
    }
    var customerUpdates: [CustomerUpdate] {
        effects.compactMap { if case .customerUpdate(let update) = $0 { update } else { nil } }
    }
    var orphans: [DeadLetterRecord] {
        effects.compactMap { if case .orphaned(let record) = $0 { record } else { nil } }
    }
}

@Suite("Call correlation")
struct CallCorrelatorTests {
    let call = CallScript(callId: "call-1")

    @Test(
        "the queue comes from the wrap-up when the start names none, whatever the order; the start's wins otherwise",
        arguments: [false, true]
    )
    func queueFromTheWrapUp(wrapUpFirst: Bool) throws {
        func start(queue: String?) -> PlatformEvent {
            PlatformEvent(
                eventId: "q-start",
                callId: "call-q",
                occurredAt: CallScript.t0,
                payload: .callStarted(
                    CallStarted(
                        fromNumber: "+15550100001",
                        toNumber: "+15550190000",
                        direction: .inbound,
                        queueId: queue
                    )
                )
            )
        }
        let wrapUp = PlatformEvent(
            eventId: "q-wrap",
            callId: "call-q",
            occurredAt: CallScript.t0 + 345,
            payload: .wrapUp(WrapUp(wrapUpCode: "RESOLVED", agentId: "agent-acw", queueId: "queue-acw"))
        )
        let end = CallScript(callId: "call-q").end()
        for (startQueue, expected) in [(String?.none, "queue-acw"), ("queue-start", "queue-start")] {
            var harness = Harness()
            let events =
                wrapUpFirst ? [wrapUp, end, start(queue: startQueue)] : [start(queue: startQueue), end, wrapUp]
            for event in events { harness.feed(event) }
            let payload = try #require(harness.webhooks.first).payload
            #expect(payload.queueId == expected)
            #expect(payload.agentId == "agent-acw")
        }
    }

    @Test("start, end, wrap-up: one customer update at the start, one webhook with the call's figures")
    func inOrder() throws {
        var harness = Harness()
        harness.feed(call.start())
        #expect(harness.customerUpdates.count == 1)
        #expect(harness.states["call-1"]?.status == .active)
        harness.feed(call.end())
        #expect(harness.webhooks.isEmpty)
        harness.feed(call.wrapUp())
        let webhook = try #require(harness.webhooks.first)
        #expect(harness.webhooks.count == 1)
        let payload = webhook.payload
        #expect(payload.callId == "call-1")
        #expect(payload.channel == .voice)
        #expect(payload.direction == .inbound)
        #expect(payload.handleTimeSeconds == 300)
        #expect(payload.afterCallWorkSeconds == 45)
        #expect(payload.wrapUpCode == "RESOLVED")
        #expect(payload.disconnectType == "client")
        #expect(payload.queueId == "queue-1")
        #expect(payload.agentId == "agent-7")
        #expect(payload.startedAt == "2026-11-24T10:00:00.000Z")
        #expect(payload.endedAt == "2026-11-24T10:05:00.000Z")
        #expect(payload.externalId == harness.customerUpdates.first?.externalId.description)
        #expect(webhook.id == PostCallWebhook.webhookID(callId: "call-1"))
        #expect(harness.states["call-1"]?.status == .completed)
        #expect(harness.states["call-1"]?.timers.isEmpty == true)
    }

    @Test("every order of start, end and wrap-up, each event possibly twice, gives the same single webhook")
    func everyOrdering() throws {
        var reference = Harness()
        for event in [call.start(), call.end(), call.wrapUp()] { reference.feed(event) }
        let expected = try #require(reference.webhooks.first)

        let events = [call.start(), call.end(), call.wrapUp()]
        for order in permutations(of: [0, 1, 2]) {
            for duplicated in [nil, 0, 1, 2] {
                var sequence = order.map { events[$0] }
                if let duplicated {
                    sequence.insert(events[duplicated], at: min(sequence.count, order.firstIndex(of: duplicated)! + 1))
                }
                var harness = Harness()
                for event in sequence { harness.feed(event) }
                #expect(harness.webhooks == [expected], "order \(order), duplicated \(String(describing: duplicated))")
                #expect(harness.customerUpdates.count == 1)
                #expect(harness.outcomes.filter { $0 == .duplicate }.count == (duplicated == nil ? 0 : 1))
                #expect(harness.states["call-1"]?.status == .completed)
            }
        }
    }

    @Test("an end without a wrap-up completes when the wrap-up grace passes, not before")
    func wrapUpGrace() throws {
        var harness = Harness(settings: .init(wrapUpGrace: .seconds(120)))
        harness.feed(call.start())
        harness.feed(call.end())
        harness.fireTimers(now: CallScript.t0 + 119)
        #expect(harness.webhooks.isEmpty)
        harness.fireTimers(now: CallScript.t0 + 120)
        let webhook = try #require(harness.webhooks.first)
        #expect(webhook.payload.afterCallWorkSeconds == nil)
        #expect(webhook.payload.wrapUpCode == nil)
        #expect(webhook.completedAt == Int64((CallScript.t0 + 120).timeIntervalSince1970))
        #expect(String(decoding: webhook.body(), as: UTF8.self).contains(#""wrapUpCode":null"#))
        // A wrap-up after that is recorded, and sends nothing more.
        harness.feed(call.wrapUp())
        #expect(harness.outcomes.last == .late)
        #expect(harness.webhooks.count == 1)
    }

    @Test("a start with no end becomes an orphan dead letter after orphanAfter")
    func orphanWithoutEnd() throws {
        var harness = Harness(settings: .init(orphanAfter: .seconds(3600)))
        harness.feed(call.start())
        harness.fireTimers(now: CallScript.t0 + 3599)
        #expect(harness.orphans.isEmpty)
        harness.fireTimers(now: CallScript.t0 + 3600)
        let record = try #require(harness.orphans.first)
        #expect(record.reason == .orphanedInteraction)
        #expect(record.callId == "call-1")
        #expect(record.eventType == "callStarted")
        #expect(record.lastError == "no callEnded within 1 h of the start")
        #expect(String(decoding: record.originalPayload, as: UTF8.self).contains(#""queueId":"queue-1""#))
        #expect(harness.states["call-1"]?.status == .orphaned)
        // A late end changes nothing further.
        harness.feed(call.end())
        #expect(harness.outcomes.last == .late)
        #expect(harness.webhooks.isEmpty)
    }

    @Test("an end whose start never comes is an orphan after the start grace; a start in time completes it")
    func endBeforeStart() throws {
        var orphaned = Harness(settings: .init(startGrace: .seconds(60)))
        orphaned.feed(call.end())
        #expect(orphaned.states["call-1"]?.status == .awaitingStart)
        orphaned.fireTimers(now: CallScript.t0 + 60)
        let record = try #require(orphaned.orphans.first)
        #expect(record.eventType == "callEnded")
        #expect(record.lastError == "no start event within 1 min of its end or wrap-up")

        var rescued = Harness(settings: .init(startGrace: .seconds(60)))
        rescued.feed(call.end())
        rescued.feed(call.wrapUp())
        rescued.feed(call.start(), now: CallScript.t0 + 30)
        rescued.fireTimers(now: CallScript.t0 + 3600)
        #expect(rescued.orphans.isEmpty)
        #expect(rescued.webhooks.count == 1)
        #expect(rescued.webhooks.first?.payload.handleTimeSeconds == 300)
    }

    @Test("a second start or end under another id: the first wins, the second is recorded")
    func superseded() throws {
        var harness = Harness()
        harness.feed(call.start())
        harness.feed(call.start(id: "other-start", at: 10))
        harness.feed(call.end())
        harness.feed(call.end(id: "other-end", at: 400))
        harness.feed(call.wrapUp())
        #expect(harness.outcomes == [.applied, .superseded, .applied, .superseded, .applied])
        let state = try #require(harness.states["call-1"])
        #expect(state.supersededEventIds == ["other-start", "other-end"])
        #expect(state.startedAt == CallScript.t0)
        #expect(harness.customerUpdates.count == 1)
        #expect(harness.webhooks.first?.payload.handleTimeSeconds == 300)
    }

    @Test("stale timers do nothing once the state has moved on")
    func staleTimers() {
        var harness = Harness(settings: .init(orphanAfter: .seconds(60)))
        harness.feed(call.start())
        harness.feed(call.end())
        harness.feed(call.wrapUp())
        var state = harness.states["call-1"]!
        state.timers = [InteractionTimer(kind: .endNeverCame, dueAt: CallScript.t0)]
        let transition = harness.correlator.fireTimers(state, now: CallScript.t0 + 3600)
        #expect(transition.effects.isEmpty)
        #expect(transition.interaction.status == .completed)
        #expect(transition.interaction.timers.isEmpty)
    }

    @Test("other channels correlate the same way and report their channel")
    func otherChannels() throws {
        var harness = Harness()
        let chat = PlatformEvent(
            eventId: "chat-start",
            callId: "chat-1",
            occurredAt: CallScript.t0,
            payload: .chatStarted(ChatStarted(email: "a@example.com", queueId: "chat-queue"))
        )
        harness.feed(chat)
        harness.feed(
            PlatformEvent(
                eventId: "chat-end",
                callId: "chat-1",
                occurredAt: CallScript.t0 + 60,
                payload: .callEnded(CallEnded())
            )
        )
        harness.feed(
            PlatformEvent(
                eventId: "chat-wrap",
                callId: "chat-1",
                occurredAt: CallScript.t0 + 90,
                payload: .wrapUp(WrapUp(wrapUpCode: "ANSWERED"))
            )
        )
        let payload = try #require(harness.webhooks.first?.payload)
        #expect(payload.channel == .chat)
        #expect(payload.queueId == "chat-queue")
        #expect(payload.handleTimeSeconds == 60)
        #expect(harness.customerUpdates.isEmpty)  // chat identity resolution is not phase-1 linked yet
    }

    @Test("random permutations and duplicates of many interactions end in the in-order records and outputs")
    func permutationProperty() {
        var generator = SplitMix64(state: 2026)
        var events: [PlatformEvent] = []
        for index in 0..<400 {
            let script = CallScript(callId: "call-\(index)", caller: String(format: "+1555010%04d", index))
            // Every shape: complete, no wrap-up, no end, no start, start only.
            switch index % 5 {
            case 0, 1:
                events += [script.start(), script.end(at: Double(60 + index)), script.wrapUp(at: Double(90 + index))]
            case 2: events += [script.start(), script.end(at: Double(60 + index))]
            case 3: events += [script.end(), script.wrapUp()]
            default: events += [script.start()]
            }
        }
        let settings = CallCorrelator.Settings(
            orphanAfter: .seconds(3600),
            wrapUpGrace: .seconds(60),
            startGrace: .seconds(60)
        )
        var inOrder = Harness(settings: settings)
        for event in events { inOrder.feed(event) }
        inOrder.fireTimers(now: CallScript.t0 + 86_400)

        for round in 0..<5 {
            var shuffled = events
            for _ in 0..<200 { shuffled.append(events[Int.random(in: 0..<events.count, using: &generator)]) }
            shuffled.shuffle(using: &generator)
            var harness = Harness(settings: settings)
            for event in shuffled { harness.feed(event) }
            harness.fireTimers(now: CallScript.t0 + 86_400)

            #expect(normalized(harness.states) == normalized(inOrder.states), "round \(round): final records differ")
            #expect(Set(harness.webhooks) == Set(inOrder.webhooks) && harness.webhooks.count == inOrder.webhooks.count)
            #expect(Set(harness.orphans) == Set(inOrder.orphans) && harness.orphans.count == inOrder.orphans.count)
            #expect(Set(harness.customerUpdates) == Set(inOrder.customerUpdates))
            #expect(harness.customerUpdates.count == inOrder.customerUpdates.count)
        }
        #expect(inOrder.webhooks.count == 240)  // 160 wrapped up + 80 completed by the grace period
        #expect(inOrder.orphans.count == 160)  // 80 with no end + 80 with no start
    }

    /// The records without what legitimately depends on arrival order.
    func normalized(_ states: [String: Interaction]) -> [String: Interaction] {
        states.mapValues { state in
            var state = state
            state.seenEventIds.sort()
            return state
        }
    }
}

func permutations(of items: [Int]) -> [[Int]] {
    guard items.count > 1 else { return [items] }
    return items.indices.flatMap { index -> [[Int]] in
        var rest = items
        let head = rest.remove(at: index)
        return permutations(of: rest).map { [head] + $0 }
    }
}

@Suite("Overrides and context updates in the core")
struct OverrideTests {
    let call = CallScript(callId: "call-1")

    @Test("a live override wins over the PHONE id in phase 1, and the platform customer stays the phone-linked one")
    func overrideWins() throws {
        var harness = Harness()
        let override = try #require(ExternalID(parsing: "CRM:500999999"))
        let transition = harness.correlator.handle(call.start(), state: nil, now: CallScript.t0, override: override)
        guard case .customerUpdate(let update) = try #require(transition.effects.first) else {
            Issue.record("expected a customer update")
            return
        }
        #expect(update.externalId == override)
        let phoneID = harness.correlator.linking.hasher.externalID(for: PhoneNumber(normalizing: call.caller)!)
        #expect(update.customerId == phoneID.description)
        #expect(transition.interaction.phoneKey == phoneID.value)
        harness.feed(call.start(id: "plain"))
        #expect(harness.customerUpdates.first?.externalId == phoneID)
    }

    @Test(
        "a context update with a valid id asks for validation; anything else is rejected and changes nothing",
        arguments: [
            ("CRM:500999999", true), ("ERP:A-7", true), ("PHONE:abc", false), ("500999999", false), ("CRM:", false),
        ]
    )
    func contextUpdates(newId: String, valid: Bool) throws {
        var harness = Harness()
        harness.feed(call.start())
        let before = harness.states["call-1"]!
        let event = PlatformEvent(
            eventId: "ctx",
            callId: "call-1",
            occurredAt: CallScript.t0 + 10,
            payload: .contextUpdate(ContextUpdate(newExternalId: newId, reason: "Agent Verified Account Switch"))
        )
        let transition = harness.correlator.handle(event, state: before, now: CallScript.t0)
        if valid {
            guard case .changeContext(let change) = try #require(transition.effects.first) else {
                Issue.record("expected a context change")
                return
            }
            #expect(change.newExternalId == newId)
            #expect(change.customerId == before.customerId)
            #expect(change.phoneKey == before.phoneKey)
        } else {
            #expect(transition.effects.isEmpty)
            #expect(transition.outcome == .rejected(reason: "not a CRM: or ERP: external id"))
        }
        // Either way the link itself is untouched until a system of record confirms the new id.
        #expect(transition.interaction.externalId == before.externalId)
    }

    @Test("a context update before its start is kept, and asked for after the start's phase-1 link")
    func contextBeforeStart() throws {
        var harness = Harness()
        let call = CallScript(callId: "call-9")
        let update = PlatformEvent(
            eventId: "ctx",
            callId: "call-9",
            occurredAt: CallScript.t0 + 30,
            payload: .contextUpdate(ContextUpdate(newExternalId: "CRM:1", reason: "Agent Verified Account Switch"))
        )
        harness.feed(update)
        #expect(harness.outcomes.last == .deferred)
        #expect(harness.effects.isEmpty)
        #expect(harness.states["call-9"]?.status == .awaitingStart)
        #expect(harness.states["call-9"]?.timers.map(\.kind) == [.startNeverCame])

        harness.feed(call.start(), now: CallScript.t0 + 1)
        let effectsOfStart = harness.effects.count
        guard case .customerUpdate(let phaseOne)? = harness.effects.first,
            case .changeContext(let change)? = harness.effects.last,
            harness.effects.count { if case .changeContext = $0 { true } else { false } } == 1
        else {
            Issue.record("expected the phase-1 update first and one context change last: \(harness.effects)")
            return
        }
        #expect(change.eventId == "ctx")
        #expect(change.newExternalId == "CRM:1")
        #expect(change.customerId == phaseOne.customerId)
        #expect(change.phoneKey == harness.states["call-9"]?.phoneKey)
        #expect(harness.states["call-9"]?.pendingContextUpdates == nil)
        #expect(harness.states["call-9"]?.status == .active)
        // Asked for once: a redelivered start changes nothing more.
        harness.feed(call.start(), now: CallScript.t0 + 2)
        #expect(harness.effects.count == effectsOfStart)
    }

    @Test("a context update whose start never comes is orphaned with it after the start grace")
    func contextUpdateOrphaned() throws {
        var harness = Harness(settings: .init(startGrace: .seconds(60)))
        harness.feed(
            PlatformEvent(
                eventId: "ctx-alone",
                callId: "call-10",
                occurredAt: CallScript.t0,
                payload: .contextUpdate(ContextUpdate(newExternalId: "ERP:77", reason: "r"))
            )
        )
        harness.fireTimers(now: CallScript.t0 + 60)
        let record = try #require(harness.orphans.first)
        #expect(record.eventType == "contextUpdate")
        #expect(record.eventId == "ctx-alone")
        #expect(record.lastError == "no start event within 1 min of its context update")
    }
}
