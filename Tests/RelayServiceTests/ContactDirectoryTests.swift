import Foundation
import RelayCore
import RelayService
import RelayStore
import RelayTesting
import Synchronization
import Testing

/// The directory on each store with an injected clock: expiry and renewal, idempotent links, and
/// forgetting a person. Every test runs on SQLite and on PostgreSQL and must get the same answers.
@Suite("Contact directory")
struct ContactDirectoryTests {
    final class Clock: Sendable {
        let now = Mutex(Date(timeIntervalSince1970: 1_795_514_400))
        func advance(days: Double) { now.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }
        var date: Date { now.withLock { $0 } }
    }

    let clock = Clock()
    let hasher = IdentifierHasher(key: Array("directory-test-key-0123456789abcdef".utf8))!

    /// Runs `body` with a directory on a fresh store of this kind.
    func withDirectory(
        _ kind: StoreKind,
        _ body: (any InteractionStore & ContactStore, ContactDirectory) async throws -> Void
    ) async throws {
        try await kind.withStore { store in try await body(store, makeDirectory(store)) }
    }

    func makeDirectory(_ store: any ContactStore) -> ContactDirectory {
        let clock = self.clock
        let directory = ContactDirectory(
            store: store,
            cipher: FieldCipher(base64Key: "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy0hIT0=")!,
            hasher: hasher,
            timeToLive: .seconds(60 * 86_400),
            clock: { clock.date }
        )
        return directory
    }

    /// Commits a start event with its contact capture, as the pipeline does, at the injected time.
    func start(
        _ store: any InteractionStore,
        _ directory: ContactDirectory,
        eventId: String,
        callId: String,
        from number: String
    ) async throws {
        let event = PlatformEvent(
            eventId: eventId,
            callId: callId,
            occurredAt: clock.date,
            payload: .callStarted(CallStarted(fromNumber: number, toNumber: "+15550190000", direction: .inbound))
        )
        let linking = PhaseOneLinking(hasher: hasher.phone)
        let now = clock.date
        _ = try await store.apply(callId: callId, eventId: eventId, now: now, contact: directory.capture(for: event)) {
            state in
            (CallCorrelator(linking: linking).handle(event, state: state, now: now).interaction, [])
        }
    }

    /// The pipeline's batch as one commit: a store that reads a batch ahead and writes it at the end
    /// (PostgreSQL) must give each event what the events before it in the batch wrote.
    @Test(
        "in one batch, a new caller twice makes one contact and a known caller's start links to its CRM id",
        arguments: StoreKind.allCases
    )
    func oneBatch(_ kind: StoreKind) async throws {
        try await withDirectory(kind) { store, directory in
            let known = try await directory.create(
                ContactDraft(name: "Known Caller", phones: ["+15550100021"], externalIds: ["CRM:500245678"])
            )
            let linking = PhaseOneLinking(hasher: hasher.phone)
            let now = clock.date
            let starts = [
                ("c1", "+15550100020"), ("c2", "+15550100020"), ("c3", "+15550100021"), ("c4", "+15550100022"),
            ]
            let applications = starts.map { callId, number in
                let event = PlatformEvent(
                    eventId: "start-\(callId)",
                    callId: callId,
                    occurredAt: now,
                    payload: .callStarted(
                        CallStarted(fromNumber: number, toNumber: "+15550190000", direction: .inbound)
                    )
                )
                let capture = directory.capture(for: event)
                let caller = linking.caller(of: event)
                return EventApplication(
                    callId: callId,
                    eventId: event.eventId,
                    contact: capture,
                    phoneKey: caller.phoneKey
                ) {
                    state,
                    rows in
                    let link = try directory.phaseOneLink(
                        phoneKey: caller.phoneKey,
                        keys: capture?.keys ?? [],
                        now: now,
                        rows
                    )
                    let transition = CallCorrelator(linking: linking).handle(
                        event,
                        state: state,
                        now: now,
                        override: link?.externalId,
                        caller: caller
                    )
                    return (transition.interaction, [NewOutboxEntry(kind: "k", payload: Array(callId.utf8))])
                }
            }
            let results = try await store.apply(applications, now: now)
            for (index, result) in results.enumerated() {
                guard case .success(.committed(let entries)) = result else {
                    Issue.record("start \(index): \(result)")
                    continue
                }
                #expect(entries.map(\.payload) == [Array(starts[index].0.utf8)])
            }
            let repeated = ContactReference.identifier(ContactIdentifier(kind: .phone, raw: "+15550100020")!)
            #expect(try await directory.journey(repeated).interactions.map(\.callId).sorted() == ["c1", "c2"])
            #expect(try await directory.journey(.id(known.id)).interactions.map(\.callId) == ["c3"])
            #expect(try await store.interaction(callId: "c3")?.externalId == "CRM:500245678")
            let other = ContactReference.identifier(ContactIdentifier(kind: .phone, raw: "+15550100022")!)
            let otherContact = try await directory.show(other)
            #expect(otherContact.id != (try await directory.show(repeated)).id && otherContact.id != known.id)
            #expect(try await store.interaction(callId: "c4")?.externalId?.hasPrefix("PHONE:") == true)
        }
    }

    @Test(
        "a temporary contact expires 60 days after its last interaction, renewed by each; expiry removes its PII",
        arguments: StoreKind.allCases
    )
    func expiry(_ kind: StoreKind) async throws {
        try await withDirectory(kind) { store, directory in
            let caller = ContactReference.identifier(ContactIdentifier(kind: .phone, raw: "+15550100001")!)
            try await start(store, directory, eventId: "e1", callId: "c1", from: "+15550100001")
            // The same event again (a redelivery) links nothing twice.
            try await start(store, directory, eventId: "e1", callId: "c1", from: "+15550100001")
            let first = try await directory.show(caller)
            #expect(first.type == .identified && first.expiresAt == clock.date.addingTimeInterval(60 * 86_400))

            clock.advance(days: 30)
            try await start(store, directory, eventId: "e2", callId: "c2", from: "+15550100001")
            #expect(try await directory.show(caller).id == first.id)
            clock.advance(days: 31)  // 61 days after the first call, 31 after the second
            #expect(try await directory.expireDue() == 0)
            #expect(try await directory.journey(caller).interactions.map(\.callId) == ["c2", "c1"])

            clock.advance(days: 29)
            #expect(try await directory.expireDue() == 1)
            let expired = try await directory.show(.id(first.id))
            #expect(expired.expiredAt != nil && expired.identifiers.isEmpty && expired.name == nil)
            await #expect(throws: ContactError.self) { try await directory.show(caller) }
            // The number is free again: the next call makes a new contact.
            try await start(store, directory, eventId: "e3", callId: "c3", from: "+15550100001")
            #expect(try await directory.show(caller).id != first.id)
        }
    }

    @Test(
        "identifiers with quotes, backslashes and control characters come back as they went in",
        arguments: StoreKind.allCases
    )
    func awkwardIdentifiers(_ kind: StoreKind) async throws {
        try await withDirectory(kind) { store, directory in
            let awkward = "open-\"id\\with\u{1}odd\nbits"
            let event = PlatformEvent(
                eventId: "m1",
                callId: "m1",
                occurredAt: clock.date,
                payload: .messageReceived(
                    MessageReceived(platform: .open, messagingId: awkward, name: "Odd \"Q\" Name")
                )
            )
            let now = clock.date
            let linking = PhaseOneLinking(hasher: hasher.phone)
            _ = try await store.apply(callId: "m1", eventId: "m1", now: now, contact: directory.capture(for: event)) {
                state in
                (CallCorrelator(linking: linking).handle(event, state: state, now: now).interaction, [])
            }
            let identifier = try #require(ContactIdentifier(kind: .messaging(.open), raw: awkward))
            let contact = try await directory.show(.identifier(identifier))
            #expect(contact.identifiers == [identifier] && contact.name == "Odd \"Q\" Name")
        }
    }

    @Test("curated and promoted contacts never expire", arguments: StoreKind.allCases)
    func curatedNeverExpires(_ kind: StoreKind) async throws {
        try await withDirectory(kind) { store, directory in
            let curated = try await directory.create(ContactDraft(name: "Kim", phones: ["+15550100002"]))
            try await start(store, directory, eventId: "e1", callId: "c1", from: "+15550100003")
            let promoted = try await directory.promote(
                .identifier(ContactIdentifier(kind: .phone, raw: "+15550100003")!)
            )
            #expect(promoted.type == .curated && promoted.expiresAt == nil)
            clock.advance(days: 3650)
            #expect(try await directory.expireDue() == 0)
            #expect(try await directory.show(.id(curated.id)).identifiers.count == 1)
        }
    }

    @Test(
        "an agent's edit promotes implicitly; an identifier owned elsewhere names the owner and changes nothing",
        arguments: StoreKind.allCases
    )
    func editPromotes(_ kind: StoreKind) async throws {
        try await withDirectory(kind) { store, directory in
            let owner = try await directory.create(ContactDraft(name: "Owner", emails: ["owner@example.com"]))
            try await start(store, directory, eventId: "e1", callId: "c1", from: "+15550100008")
            let caller = ContactReference.identifier(ContactIdentifier(kind: .phone, raw: "+15550100008")!)
            let before = try await directory.show(caller)
            #expect(before.type == .identified)

            let refused = try await #require(throws: ContactError.self) {
                try await directory.edit(
                    caller,
                    ContactDraft(name: "Someone", emails: ["owner@example.com"]),
                    author: "agent-3"
                )
            }
            #expect(refused.code == .identifierOwned && refused.ownerId == owner.id)
            #expect(try await directory.show(caller) == before)

            let edited = try await directory.edit(
                caller,
                ContactDraft(name: "Sam Caller", emails: ["sam@example.com"], note: "prefers mornings"),
                author: "agent-3"
            )
            #expect(edited.type == .curated && edited.expiresAt == nil && edited.name == "Sam Caller")
            #expect(edited.identifiers.map(\.kind.name) == ["phone", "email"])
            #expect(edited.notes.map(\.author) == ["agent-3"])
            #expect(try await directory.search(name: "sam  CALLER").map(\.id) == [edited.id])
        }
    }

    @Test(
        "the retention purge takes a finished interaction's journey link and notes with it; the contact stays",
        arguments: StoreKind.allCases
    )
    func retention(_ kind: StoreKind) async throws {
        try await withDirectory(kind) { store, directory in
            let linking = PhaseOneLinking(hasher: hasher.phone)
            let events = [
                PlatformEvent(
                    eventId: "s",
                    callId: "c1",
                    occurredAt: clock.date,
                    payload: .callStarted(
                        CallStarted(fromNumber: "+15550100009", toNumber: "+15550190000", direction: .inbound)
                    )
                ),
                PlatformEvent(eventId: "e", callId: "c1", occurredAt: clock.date, payload: .callEnded(CallEnded())),
                PlatformEvent(
                    eventId: "w",
                    callId: "c1",
                    occurredAt: clock.date,
                    payload: .wrapUp(WrapUp(wrapUpCode: "OK", notes: "call back"))
                ),
            ]
            for event in events {
                let now = clock.date
                _ = try await store.apply(
                    callId: "c1",
                    eventId: event.eventId,
                    now: now,
                    contact: directory.capture(for: event)
                ) { state in
                    (CallCorrelator(linking: linking).handle(event, state: state, now: now).interaction, [])
                }
            }
            let caller = ContactReference.identifier(ContactIdentifier(kind: .phone, raw: "+15550100009")!)
            #expect(try await directory.journey(caller).interactions.first?.notes == "call back")
            let purged = try await store.purgeFinishedInteractions(before: clock.date.addingTimeInterval(1))
            #expect(purged.interactions == 1)
            #expect(try await directory.link(callId: "c1") == nil)
            #expect(try await directory.journey(caller).interactions.isEmpty)
            // The sealed notes went too: the same call id started again carries none.
            try await start(store, directory, eventId: "s2", callId: "c1", from: "+15550100009")
            let again = try await directory.journey(caller).interactions
            #expect(again.map(\.callId) == ["c1"] && again.first?.notes == nil)
        }
    }

    @Test(
        "forget erases the contact, its aliases, interactions and overrides, and reports the counts",
        arguments: StoreKind.allCases
    )
    func forget(_ kind: StoreKind) async throws {
        try await withDirectory(kind) { store, directory in
            let curated = try await directory.create(
                ContactDraft(name: "Lee", emails: ["lee@example.com"], externalIds: ["CRM:5"])
            )
            try await start(store, directory, eventId: "e1", callId: "c1", from: "+15550100005")
            try await start(store, directory, eventId: "e2", callId: "c2", from: "+15550100005")
            try await start(store, directory, eventId: "e3", callId: "other", from: "+15550100006")
            let phone = ContactIdentifier(kind: .phone, raw: "+15550100005")!
            _ = try await directory.merge(.identifier(phone), into: .id(curated.id))
            try await store.setOverride(
                phoneKey: phone.key(hasher),
                externalId: "CRM:5",
                callId: "c1",
                now: clock.date,
                expiresAt: clock.date.addingTimeInterval(86_400)
            )

            let erased = try await directory.forget(ContactIdentifier(kind: .external, raw: "CRM:5")!)
            #expect(erased.contacts == 2 && erased.identifiers == 3 && erased.merges == 1)
            #expect(erased.interactions == 2 && erased.overrides == 1)
            #expect(try await store.interaction(callId: "c1") == nil)
            #expect(try await store.interaction(callId: "other") != nil)
            #expect(try await store.override(phoneKey: phone.key(hasher), now: clock.date) == nil)
            await #expect(throws: ContactError.self) { try await directory.show(.id(curated.id)) }
            #expect(
                try await directory.journey(.identifier(ContactIdentifier(kind: .phone, raw: "+15550100006")!))
                    .interactions.count == 1
            )
        }
    }
}
