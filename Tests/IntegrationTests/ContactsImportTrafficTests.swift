import Foundation
import RelayCore
import RelayService
import RelayTesting
import Testing

@Suite("Contacts: import then traffic, merge round trip", .stopsRelays)
struct ContactsImportTrafficTests {
    @Test("10,000 imported curated contacts: traffic on every channel links to them, not to new contacts")
    func importThenTraffic() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        let directory = relay.app.contacts
        var lines = ["name,phone,email,external_id,segment"]
        for index in 0..<10_000 {
            lines.append(
                "Customer \(index),+1555\(String(format: "%07d", index)),c\(index)@example.com,CRM:\(index),s\(index % 7)"
            )
        }
        let rows = ContactImportParser.parse(lines.joined(separator: "\n"), format: .csv)
        let report = try await directory.importContacts(rows)
        #expect(report.rows == 10_000 && report.created == 10_000 && report.rejected.isEmpty)

        let chosen = [0, 1, 4_999, 9_998, 9_999]
        var bodies: [[UInt8]] = []
        for index in chosen {
            bodies.append(
                callStartedBody(
                    eventId: "v\(index)",
                    callId: "voice-\(index)",
                    from: "+1555\(String(format: "%07d", index))"
                )
            )
            bodies.append(
                ContactsEndToEndTests.event(
                    "emailReceived",
                    "m\(index)",
                    "mail-\(index)",
                    at: "2026-11-24T11:00:00Z",
                    #","fromAddress":"C\#(index)@Example.com""#
                )
            )
            bodies.append(
                ContactsEndToEndTests.event(
                    "chatStarted",
                    "w\(index)",
                    "chat-\(index)",
                    at: "2026-11-24T12:00:00Z",
                    #","phone":"+1555\#(String(format: "%07d", index))","name":"Someone Else""#
                )
            )
        }
        bodies.append(callStartedBody(eventId: "stranger", callId: "voice-stranger", from: "+15559999999"))
        try await ContactsEndToEndTests.publish(relay, bodies, expectAcked: bodies.count)

        for index in chosen {
            let contact = try await directory.show(
                .identifier(ContactIdentifier(kind: .external, raw: "CRM:\(index)")!)
            )
            #expect(contact.type == .curated && contact.name == "Customer \(index)")
            let journey = try await directory.journey(.id(contact.id))
            #expect(journey.interactions.map(\.callId) == ["chat-\(index)", "mail-\(index)", "voice-\(index)"])
        }
        let stranger = try #require(try await directory.link(callId: "voice-stranger"))
        #expect(stranger.linkedBy == "new")
        #expect(try await directory.show(.id(stranger.contactId)).type == .identified)
    }

    @Test("merge then unmerge round-trips both contacts and their journeys exactly")
    func mergeRoundTrip() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        let directory = relay.app.contacts
        let curated = try await directory.create(
            ContactDraft(name: "Hal", emails: ["hal@example.com"], attributes: ["tier": "gold"], note: "VIP")
        )
        try await ContactsEndToEndTests.publish(
            relay,
            [
                callStartedBody(eventId: "h1", callId: "hal-call", from: "+15550107777"),
                ContactsEndToEndTests.event(
                    "emailReceived",
                    "h2",
                    "hal-mail",
                    at: "2026-11-24T11:00:00Z",
                    #","fromAddress":"hal@example.com""#
                ),
            ],
            expectAcked: 2
        )
        let caller = try #require(try await directory.link(callId: "hal-call")).contactId
        let beforeCaller = try await directory.show(.id(caller))
        let beforeCurated = try await directory.show(.id(curated.id))
        let beforeCallerJourney = try await directory.journey(.id(caller))
        let beforeCuratedJourney = try await directory.journey(.id(curated.id))

        let (mergeId, merged) = try await directory.merge(
            .id(caller),
            into: .identifier(ContactIdentifier(kind: .email, raw: "hal@example.com")!)
        )
        #expect(merged.id == curated.id && merged.aliases == [caller] && merged.merges == [mergeId])
        #expect(try await directory.show(.id(caller)).id == curated.id, "the alias resolves to the canonical contact")
        #expect(try await directory.journey(.id(caller)).interactions.count == 2)
        #expect(try await directory.show(.id(caller)).expiresAt == nil)
        // Merging again, or a curated pair, changes nothing.
        await #expect(throws: ContactError.self) { try await directory.merge(.id(caller), into: .id(curated.id)) }

        let restored = try await directory.unmerge(mergeId)
        #expect(restored.map(\.id) == [curated.id, caller])
        #expect(try await directory.show(.id(caller)) == beforeCaller)
        #expect(try await directory.show(.id(curated.id)) == beforeCurated)
        #expect(try await directory.journey(.id(caller)) == beforeCallerJourney)
        #expect(try await directory.journey(.id(curated.id)) == beforeCuratedJourney)
        let again = try await #require(throws: ContactError.self) { try await directory.unmerge(mergeId) }
        #expect(again.code == .notMerged)
    }
}
