import Foundation
import RelayCore
import Testing

/// The contact rules with an injected clock: every time below is `t0` plus an offset.
@Suite("Contacts: types, expiry, merge and unmerge")
struct ContactBookTests {
    let t0 = Date(timeIntervalSince1970: 1_795_514_400)
    let hasher = IdentifierHasher(key: Array("contact-test-key-0123456789abcdef".utf8))!
    let day: TimeInterval = 86_400

    func phone(_ raw: String) -> ContactIdentifier { ContactIdentifier(kind: .phone, raw: raw)! }
    func email(_ raw: String) -> ContactIdentifier { ContactIdentifier(kind: .email, raw: raw)! }

    func book(ttlDays: Int = 60) -> ContactBook {
        ContactBook(hasher: hasher, temporaryTimeToLive: .seconds(ttlDays * 86_400))
    }

    @Test("identifiers normalise: one number written two ways is one identifier, its key the PHONE: hash")
    func identifiers() throws {
        #expect(phone("+1 (555) 010-0001") == phone("+15550100001"))
        #expect(ContactIdentifier(kind: .phone, raw: "not a number") == nil)
        #expect(ContactIdentifier(kind: .email, raw: "nobody") == nil)
        #expect(email("Alice@Example.COM") == email("alice@example.com"))
        #expect(ContactIdentifier(kind: .external, raw: "CRM:123")?.value == "CRM:123")
        #expect(ContactIdentifier(kind: .external, raw: "123") == nil)
        #expect(phone("+15550100001").key(hasher) == hasher.keyedHash(PhoneNumber(normalizing: "+15550100001")!))
        // An email and a messaging id with the same text are different keys.
        let sameText = "x@example.com"
        #expect(
            email(sameText).key(hasher)
                != ContactIdentifier(kind: .messaging(.whatsapp), raw: sameText)!.key(hasher)
        )
        #expect(!phone("+15550100001").description.contains("0100001"))
    }

    @Test("a temporary contact expires 60 days after its last interaction; each interaction renews it")
    func expiryAndRenewal() throws {
        var book = book()
        try book.create(id: "a", type: .identified, identifiers: [phone("+15550100001")], now: t0)
        #expect(try book.contact("a").expiresAt == t0.addingTimeInterval(60 * day))
        try book.recordInteraction(on: "a", at: t0.addingTimeInterval(30 * day))
        #expect(book.dueForExpiry(now: t0.addingTimeInterval(61 * day)).isEmpty)
        #expect(try book.contact("a").expiresAt == t0.addingTimeInterval(90 * day))
        #expect(book.dueForExpiry(now: t0.addingTimeInterval(90 * day)) == ["a"])

        try book.expire("a", now: t0.addingTimeInterval(90 * day))
        let expired = try book.contact("a")
        #expect(expired.identifiers.isEmpty && expired.name == nil && expired.isExpired)
        #expect(book.owner(of: phone("+15550100001")) == nil)
        // The number is free again for whoever calls next.
        try book.create(
            id: "b",
            type: .identified,
            identifiers: [phone("+15550100001")],
            now: t0.addingTimeInterval(91 * day)
        )
    }

    @Test("the time to live is configurable")
    func configurableTimeToLive() throws {
        var book = book(ttlDays: 7)
        try book.create(id: "a", type: .ephemeral, now: t0)
        #expect(book.dueForExpiry(now: t0.addingTimeInterval(7 * day)) == ["a"])
    }

    @Test("curated and canonical contacts never expire; promote (explicit or by an edit) stops expiry")
    func typeTransitions() throws {
        var book = book()
        try book.create(id: "e", type: .ephemeral, now: t0)
        try book.create(id: "i", type: .identified, identifiers: [email("i@example.com")], now: t0)
        try book.create(id: "c", type: .curated, name: "Curated", now: t0)
        try book.create(id: "edited", type: .identified, now: t0)
        try book.create(id: "t", type: .identified, now: t0)
        try book.create(id: "m", type: .ephemeral, now: t0)
        #expect(try book.contact("c").expiresAt == nil)

        try book.promote("e", now: t0.addingTimeInterval(day))
        #expect(try book.contact("e").type == .curated)
        try book.edit("edited", name: "Ada Lovelace", now: t0.addingTimeInterval(day))
        #expect(try book.contact("edited").type == .curated)
        try book.addIdentifiers([phone("+15550100009")], to: "i", now: t0.addingTimeInterval(day))
        #expect(try book.contact("i").type == .curated)
        // Merging makes "t" canonical: it and its alias stop expiring though both are temporary.
        try book.merge("m", into: "t", mergeId: "mg1", now: t0.addingTimeInterval(day))
        #expect(try book.contact("t").type == .identified)

        #expect(book.dueForExpiry(now: t0.addingTimeInterval(3650 * day)).isEmpty)
        #expect(throws: ContactError.self) { try book.expire("t", now: t0.addingTimeInterval(3650 * day)) }
    }

    @Test("an identifier owned by another contact: the operation names the owner and changes nothing")
    func identifierOwned() throws {
        var book = book()
        try book.create(id: "a", type: .curated, identifiers: [phone("+15550100001")], now: t0)
        try book.create(id: "b", type: .identified, identifiers: [email("b@example.com")], now: t0)
        let before = book.contacts
        let error = try #require(throws: ContactError.self) {
            try book.addIdentifiers([email("new@example.com"), phone("+15550100001")], to: "b", now: t0)
        }
        #expect(error.code == .identifierOwned && error.ownerId == "a")
        #expect(error.message.contains("contact a"))
        #expect(!error.message.contains("0100001"))
        #expect(book.contacts == before)
        #expect(book.owner(of: email("new@example.com")) == nil)
        #expect(throws: ContactError.self) {
            try book.create(id: "c", type: .curated, identifiers: [phone("+15550100001")], now: t0)
        }
        #expect(book.contacts["c"] == nil)
    }

    @Test("merge joins identifiers, attributes and notes; the alias resolves; curated+curated and self-merge refused")
    func mergeRules() throws {
        var book = book()
        try book.create(
            id: "crm",
            type: .curated,
            name: "Grace Hopper",
            identifiers: [email("grace@example.com")],
            attributes: ["tier": "gold"],
            notes: [ContactNote(text: "prefers email", at: t0)],
            now: t0
        )
        try book.create(
            id: "caller",
            type: .identified,
            identifiers: [phone("+15550100002")],
            attributes: ["tier": "none", "lang": "en"],
            notes: [ContactNote(text: "called twice", at: t0.addingTimeInterval(60))],
            now: t0
        )
        try book.create(id: "other", type: .curated, name: "Other", now: t0)

        let before = book.contacts
        let both = try #require(throws: ContactError.self) {
            try book.merge("other", into: "crm", mergeId: "x", now: t0)
        }
        #expect(both.code == .bothCurated)
        let myself = try #require(throws: ContactError.self) {
            try book.merge("crm", into: "crm", mergeId: "x", now: t0)
        }
        #expect(myself.code == .sameContact)
        #expect(book.contacts == before && book.merges.isEmpty)

        try book.merge("caller", into: "crm", mergeId: "m1", now: t0.addingTimeInterval(day))
        let canonical = try book.resolve("caller")
        #expect(canonical.id == "crm")
        #expect(canonical.attributes == ["tier": "gold", "lang": "en"])
        #expect(canonical.notes.map(\.text) == ["prefers email", "called twice"])
        #expect(Set(book.allIdentifiers("crm")) == [email("grace@example.com"), phone("+15550100002")])
        #expect(book.owner(of: phone("+15550100002"))?.id == "crm")
        // Merging the alias again is merging the contact with itself.
        #expect(throws: ContactError.self) { try book.merge("caller", into: "crm", mergeId: "again", now: t0) }
        // A new identifier owned by the alias is refused for a third contact, naming the canonical one.
        let owned = try #require(throws: ContactError.self) {
            try book.addIdentifiers([phone("+15550100002")], to: "other", now: t0)
        }
        #expect(owned.ownerId == "crm")
        // Adding to the canonical contact an identifier its alias owns is no change, not a conflict.
        try book.addIdentifiers([phone("+15550100002")], to: "crm", now: t0)
        #expect(try book.contact("crm").identifiers == [email("grace@example.com")])
        #expect(book.owners[phone("+15550100002").key(hasher)] == "caller")
    }

    @Test("aliases resolve after chains of merges")
    func chains() throws {
        var book = book()
        for (index, id) in ["a", "b", "c", "d"].enumerated() {
            try book.create(id: id, type: .identified, identifiers: [phone("+1555010000\(index + 1)")], now: t0)
        }
        try book.merge("a", into: "b", mergeId: "m1", now: t0)
        try book.merge("b", into: "c", mergeId: "m2", now: t0)
        try book.merge("d", into: "a", mergeId: "m3", now: t0)  // "a" resolves to "c"
        for id in ["a", "b", "c", "d"] { #expect(try book.resolve(id).id == "c") }
        #expect(book.owner(of: phone("+15550100001"))?.id == "c")
        #expect(Set(book.aliasTree("c")) == ["a", "b", "c", "d"])
        #expect(book.allIdentifiers("c").count == 4)
    }

    @Test("unmerge restores both contacts exactly as they were; never-merged and out-of-order undo refused")
    func unmergeRoundTrip() throws {
        var book = book()
        try book.create(id: "a", type: .identified, name: "Ann", identifiers: [phone("+15550100001")], now: t0)
        try book.recordInteraction(on: "a", at: t0.addingTimeInterval(10))
        try book.create(
            id: "b",
            type: .curated,
            name: "Ann B",
            identifiers: [email("ann@example.com")],
            attributes: ["k": "v"],
            now: t0
        )
        try book.create(id: "c", type: .identified, identifiers: [phone("+15550100003")], now: t0)
        let before = book.contacts

        let never = try #require(throws: ContactError.self) { try book.unmerge("nope", now: t0) }
        #expect(never.code == .notMerged)

        try book.merge("a", into: "b", mergeId: "m1", now: t0.addingTimeInterval(day))
        try book.merge("b", into: "c", mergeId: "m2", now: t0.addingTimeInterval(2 * day))
        let outOfOrder = try #require(throws: ContactError.self) { try book.unmerge("m1", now: t0) }
        #expect(outOfOrder.code == .laterMergeFirst && outOfOrder.message.contains("m2"))

        try book.unmerge("m2", now: t0.addingTimeInterval(3 * day))
        try book.unmerge("m1", now: t0.addingTimeInterval(3 * day))
        #expect(book.contacts == before)
        #expect(book.owner(of: phone("+15550100001"))?.id == "a")
        let twice = try #require(throws: ContactError.self) { try book.unmerge("m1", now: t0) }
        #expect(twice.code == .notMerged)
        // Back to temporary and standing alone: "a" expires again 60 days after its last interaction.
        #expect(try book.contact("a").expiresAt == t0.addingTimeInterval(10 + 60 * day))
    }
}

@Suite("Contacts: per-channel linking")
struct ContactLinkingTests {
    let start = Date(timeIntervalSince1970: 1_795_514_400)

    func event(_ payload: PlatformEvent.Payload) -> PlatformEvent {
        PlatformEvent(eventId: "e1", callId: "c1", occurredAt: start, payload: payload)
    }

    @Test("each channel offers its identifiers in its order; a name is never one")
    func sightings() throws {
        let voice = try #require(
            ContactSighting(
                event(
                    .callStarted(CallStarted(fromNumber: "+15550100001", toNumber: "+15550190000", direction: .inbound))
                )
            )
        )
        #expect(voice.identifiers.map(\.kind) == [.phone] && voice.newContactType == .identified)
        let outbound = try #require(
            ContactSighting(
                event(
                    .callStarted(
                        CallStarted(fromNumber: "+15550190000", toNumber: "+15550100007", direction: .outbound)
                    )
                )
            )
        )
        #expect(outbound.identifiers.first?.value == "+15550100007")
        let chat = try #require(
            ContactSighting(
                event(.chatStarted(ChatStarted(email: "a@example.com", phone: "+15550100001", name: "Ann")))
            )
        )
        #expect(chat.identifiers.map(\.kind) == [.email, .phone] && chat.name == "Ann")
        let anonymous = try #require(ContactSighting(event(.chatStarted(ChatStarted()))))
        #expect(anonymous.identifiers.isEmpty && anonymous.newContactType == .ephemeral)
        let withheld = try #require(
            ContactSighting(
                event(.callStarted(CallStarted(fromNumber: "anonymous", toNumber: "+15550190000", direction: .inbound)))
            )
        )
        #expect(withheld.newContactType == .ephemeral)
        let message = try #require(
            ContactSighting(
                event(.messageReceived(MessageReceived(platform: .whatsapp, messagingId: "wa-1", name: "Bo")))
            )
        )
        #expect(message.identifiers.map(\.kind) == [.messaging(.whatsapp)])
        #expect(ContactSighting(event(.wrapUp(WrapUp(wrapUpCode: "X")))) == nil)
    }

    @Test("the first owned identifier in order links; otherwise a new contact, name matches only suggested")
    func decisions() throws {
        let chat = try #require(
            ContactSighting(
                event(.chatStarted(ChatStarted(email: "a@example.com", phone: "+15550100001", name: "Ann")))
            )
        )
        #expect(ContactLinking.decide(chat, owners: ["x", "y"], sameName: []) == .link(contactId: "x", by: .email))
        #expect(ContactLinking.decide(chat, owners: [nil, "y"], sameName: ["z"]) == .link(contactId: "y", by: .phone))
        #expect(
            ContactLinking.decide(chat, owners: [nil, nil], sameName: ["z"])
                == .create(type: .identified, suggestions: ["z"])
        )
    }
}
