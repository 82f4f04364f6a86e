import Foundation
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Testing

/// Contacts and journeys through the whole relay: events on the real broker, the contact link
/// committed with each interaction, then the directory's operations on the same store.
@Suite("Contacts end to end", .stopsRelays)
struct ContactsEndToEndTests {
    static func event(_ type: String, _ eventId: String, _ callId: String, at time: String, _ fields: String) -> [UInt8]
    {
        Array(
            #"{"eventId":"\#(eventId)","type":"\#(type)","callId":"\#(callId)","occurredAt":"\#(time)"\#(fields)}"#.utf8
        )
    }

    static func voice(_ eventId: String, _ callId: String, at time: String, from: String) -> [UInt8] {
        event(
            "callStarted",
            eventId,
            callId,
            at: time,
            #","fromNumber":"\#(from)","toNumber":"+15550190000","direction":"inbound","queueId":"q-voice","userId":"agent-1""#
        )
    }

    /// Publishes the bodies, each under its own type's routing key, and waits until all are acked.
    /// With `oneByOne`, each is acked before the next goes out, as a day's interactions, minutes apart,
    /// would be (the relay processes a burst concurrently, in no set order).
    static func publish(
        _ relay: RelayHarness,
        _ bodies: [[UInt8]],
        expectAcked total: Int,
        oneByOne: Bool = false
    ) async throws {
        let already = relay.app.pipeline.acknowledgedCount
        for (index, body) in bodies.enumerated() {
            let type = try #require(
                (try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["type"] as? String
            )
            try await relay.publish([body], routingKey: type)
            if oneByOne {
                try await eventually(timeout: .seconds(30)) {
                    relay.app.pipeline.acknowledgedCount >= already + index + 1
                }
            }
        }
        try await eventually(timeout: .seconds(30)) { relay.app.pipeline.acknowledgedCount >= total }
    }

    @Test(
        "a day over voice, email, web chat and messaging from overlapping people gives the expected contacts and journeys"
    )
    func dayOfInteractions() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        let directory = relay.app.contacts
        let carol = try await directory.create(
            ContactDraft(name: "Carol Curated", phones: ["+1 555 010 1003"], externalIds: ["CRM:C-3"])
        )

        let day: [[UInt8]] = [
            // Alice: a call, then an email, then a web chat giving both.
            Self.voice("a1", "call-a1", at: "2026-11-24T08:00:00Z", from: "+15550101001"),
            Self.event("callEnded", "a1-end", "call-a1", at: "2026-11-24T08:04:00Z", ""),
            Self.event(
                "wrapUp",
                "a1-wrap",
                "call-a1",
                at: "2026-11-24T08:05:00Z",
                #","wrapUpCode":"BILLING","agentId":"agent-1","notes":"asked about invoice 42""#
            ),
            Self.event(
                "emailReceived",
                "a2",
                "mail-a2",
                at: "2026-11-24T09:00:00Z",
                #","fromAddress":"Alice@Example.com","name":"Alice Liddell","queueId":"q-mail""#
            ),
            Self.event(
                "chatStarted",
                "a3",
                "chat-a3",
                at: "2026-11-24T10:00:00Z",
                #","email":"alice@example.com","phone":"+15550101001","name":"Alice Liddell""#
            ),
            // Bob: two WhatsApp conversations, then a chat with his name only.
            Self.event(
                "messageReceived",
                "b1",
                "msg-b1",
                at: "2026-11-24T11:00:00Z",
                #","platform":"whatsapp","messagingId":"wa-bob-77","name":"Bob Builder""#
            ),
            Self.event(
                "messageReceived",
                "b2",
                "msg-b2",
                at: "2026-11-24T12:00:00Z",
                #","platform":"whatsapp","messagingId":"wa-bob-77""#
            ),
            Self.event("chatStarted", "b3", "chat-b3", at: "2026-11-24T13:00:00Z", #","name":"bob  builder""#),
            // Carol, curated beforehand, calls in a national-looking international format.
            Self.voice("c1", "call-c1", at: "2026-11-24T14:00:00Z", from: "+1 (555) 010-1003"),
            // Somebody anonymous.
            Self.event("chatStarted", "z1", "chat-z1", at: "2026-11-24T15:00:00Z", ""),
        ]
        try await Self.publish(relay, day, expectAcked: day.count, oneByOne: true)
        // A redelivered start changes nothing.
        try await Self.publish(relay, [day[0]], expectAcked: day.count + 1)

        func landed(_ callId: String) async throws -> (contactId: String, linkedBy: String, suggestions: [String]) {
            try #require(try await directory.link(callId: callId))
        }
        let aliceByPhone = try await landed("call-a1")
        let aliceByEmail = try await landed("mail-a2")
        #expect(aliceByPhone.linkedBy == "new" && aliceByEmail.linkedBy == "new")
        #expect(aliceByPhone.contactId != aliceByEmail.contactId, "nothing tied the number to the address yet")
        // Web chat: email first, so the chat lands on the email contact although the number is known too.
        #expect(try await landed("chat-a3") == (aliceByEmail.contactId, "email", []))
        let bob = try await landed("msg-b1")
        #expect(try await landed("msg-b2") == (bob.contactId, "messaging:whatsapp", []))
        // A name alone never links: a new contact, with Bob only suggested.
        let nameOnly = try await landed("chat-b3")
        #expect(
            nameOnly.contactId != bob.contactId && nameOnly.linkedBy == "new" && nameOnly.suggestions == [bob.contactId]
        )
        #expect(try await landed("call-c1") == (carol.id, "phone", []))
        let anonymous = try await directory.show(.id(try await landed("chat-z1").contactId))
        #expect(anonymous.type == .ephemeral && anonymous.identifiers.isEmpty && anonymous.expiresAt != nil)

        let aliceEmail = try await directory.show(
            .identifier(ContactIdentifier(kind: .email, raw: "alice@example.com")!)
        )
        #expect(aliceEmail.type == .identified && aliceEmail.name == "Alice Liddell")
        #expect(try await directory.show(.id(carol.id)).type == .curated)
        #expect(try await directory.journey(.id(carol.id)).interactions.map(\.callId) == ["call-c1"])

        // The agent sees it is one Alice: merge, and the journey spans every channel, newest first.
        let (mergeId, merged) = try await directory.merge(
            .id(aliceByPhone.contactId),
            into: .id(aliceByEmail.contactId)
        )
        #expect(Set(merged.identifiers.map(\.kind.name)) == ["email", "phone"])
        let journey = try await directory.journey(.identifier(ContactIdentifier(kind: .phone, raw: "+15550101001")!))
        #expect(journey.contact.id == aliceByEmail.contactId)
        #expect(journey.interactions.map(\.callId) == ["chat-a3", "mail-a2", "call-a1"])
        let call = try #require(journey.interactions.last)
        #expect(call.channel == .voice && call.direction == .inbound && call.queueId == "q-voice")
        #expect(call.agentId == "agent-1" && call.wrapUpCode == "BILLING" && call.status == .completed)
        #expect(call.durationSeconds == 240 && call.notes == "asked about invoice 42")
        #expect(journey.interactions.first?.channel == .chat && journey.interactions[1].channel == .email)

        // Undo: each Alice gets back exactly the interactions she had.
        _ = try await directory.unmerge(mergeId)
        #expect(try await directory.journey(.id(aliceByPhone.contactId)).interactions.map(\.callId) == ["call-a1"])
        #expect(
            try await directory.journey(.id(aliceByEmail.contactId)).interactions.map(\.callId) == [
                "chat-a3", "mail-a2",
            ]
        )

        // The operator's view of the same store, next to the running relay.
        let environment = relay.storeEnvironment.merging([
            "RELAY_PRIVACY_ENCRYPTION_KEY": RelayHarness.testEncryptionKey,
            "RELAY_IDENTITY_PHONE_HASH_KEY": relay.hashKey,
        ]) { $1 }
        let timeline = try BuiltExecutable.run(["journey", "alice@example.com"], environment: environment)
        #expect(timeline.status == 0, "\(timeline)")
        let lines = timeline.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(aliceByEmail.contactId) (identified) Alice Liddell: 2 interactions")
        #expect(
            lines.count == 4 && lines[1].hasPrefix("TIME") && lines[2].contains("chat") && lines[3].contains("email")
        )
        #expect(lines[3].contains("q-mail") && lines[3].contains("mail-a2"))
        let voiceTimeline = try BuiltExecutable.run(["journey", "+15550101001"], environment: environment)
        #expect(voiceTimeline.stdout.contains("4m00s") && voiceTimeline.stdout.contains("BILLING"))
        #expect(voiceTimeline.stdout.contains("call-a1 notes: asked about invoice 42"))

        // An agent names the anonymous chatter from the terminal: the contact is curated from then on.
        let anonymousId = anonymous.id
        let edited = try BuiltExecutable.run(
            ["contacts", "edit", anonymousId, "--name", "Zed Anon", "--author", "agent-9"],
            environment: environment
        )
        #expect(edited.status == 0 && edited.stdout.contains("\(anonymousId) is curated"), "\(edited)")
        #expect(try await directory.show(.id(anonymousId)).expiresAt == nil)

        // Nothing personal is in clear in the database (its file, or a dump of its schema).
        let bytes = try await relay.storeSnapshot().flatMap(\.bytes)
        #expect(!bytes.isEmpty)
        // Not CRM:C-3: external ids are the pointers the relay keeps by design (Carol's call is linked to
        // it in phase 1, and the interaction row says so); the contact's own copy of it is sealed.
        for planted in [
            "+15550101001", "5550101001", "alice@example.com", "Alice@Example.com", "Alice Liddell", "wa-bob-77",
            "Bob Builder", "Carol Curated", "+15550101003", "invoice 42", "Zed Anon",
        ] {
            #expect(!RelayHarness.holdsInClear(bytes, planted), "\(planted) is in clear in the database")
        }
    }

    @Test("phase 1 links a known contact's number to its CRM id at once; a live override still wins")
    func knownLinkInPhaseOne() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550101501", .init(contactId: "500777777", name: "Known Customer"))
        _ = try await relay.app.contacts.create(
            ContactDraft(name: "Known Customer", phones: ["+15550101501"], externalIds: ["CRM:500777777"])
        )

        try await relay.publish([callStartedBody(eventId: "kl1", callId: "known-1", from: "+15550101501")])
        let updates = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(15))
        let phaseOne = try #require(updates.first { $0.idempotencyKey == "customer-update:kl1" })
        #expect(phaseOne.externalId == "CRM:500777777")
        // Phase 2 fetched the contact by id, not by searching the number.
        #expect(updates.first { $0.idempotencyKey == "enrichment:kl1" }?.externalId == "CRM:500777777")
        #expect(relay.platform.server.requests.contains { $0.path == "/crm/contacts/500777777" })
        #expect(!relay.platform.server.requests.contains { $0.path.hasPrefix("/crm/contacts?phone=") })

        // An agent's validated switch for this caller outranks what the contact says.
        try await relay.app.store.setOverride(
            phoneKey: String(relay.expectedPhoneID("+15550101501").dropFirst("PHONE:".count)),
            externalId: "CRM:500888888",
            callId: "known-1",
            now: Date(),
            expiresAt: Date().addingTimeInterval(3600)
        )
        try await relay.publish([callStartedBody(eventId: "kl2", callId: "known-2", from: "+15550101501")])
        try await eventually { relay.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:kl2" } }
        #expect(
            relay.platform.customerUpdates.first { $0.idempotencyKey == "customer-update:kl2" }?.externalId
                == "CRM:500888888"
        )

        // By the channel's identifier: an email from a known address is linked at once too.
        _ = try await relay.app.contacts.create(
            ContactDraft(name: "Known Writer", emails: ["known.writer@example.com"], externalIds: ["ERP:A-77"])
        )
        let email =
            #"{"eventId":"kl3","type":"emailReceived","callId":"known-mail-3","occurredAt":"2026-11-24T10:00:00Z","fromAddress":"Known.Writer@example.com","customerId":"cust-kw"}"#
        try await relay.publish([Array(email.utf8)], routingKey: "emailReceived")
        try await eventually { relay.platform.customerUpdates.contains { $0.idempotencyKey == "customer-update:kl3" } }
        let mailUpdate = relay.platform.customerUpdates.first { $0.idempotencyKey == "customer-update:kl3" }
        #expect(mailUpdate?.externalId == "ERP:A-77")
        #expect(mailUpdate?.customerId == "cust-kw")
    }
}
