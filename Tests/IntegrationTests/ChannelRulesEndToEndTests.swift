import Foundation
import Logging
import RelayCore
import RelayHTTP
import RelayService
import RelaySimulator
import RelayStore
import RelayTesting
import Testing

/// The seeds' per-channel rules, through the whole relay: web chat by email, then phone, then name;
/// messaging by messaging id, then name; a name alone only ever suggests.
@Suite("Channel rules end to end", .stopsRelays)
struct ChannelRulesEndToEndTests {
    let http = CurlHTTPClient(logger: Logger(label: "test.admin-client"))

    func chatBody(eventId: String, callId: String, email: String?, phone: String?, name: String?) -> [UInt8] {
        var fields = [
            #""eventId":"\#(eventId)""#, #""type":"chatStarted""#, #""callId":"\#(callId)""#,
            #""occurredAt":"2026-11-24T10:00:00Z""#,
        ]
        if let email { fields.append(#""email":"\#(email)""#) }
        if let phone { fields.append(#""phone":"\#(phone)""#) }
        if let name { fields.append(#""name":"\#(name)""#) }
        return Array("{\(fields.joined(separator: ","))}".utf8)
    }

    func messageBody(eventId: String, callId: String, messagingId: String, name: String?, customerId: String) -> [UInt8]
    {
        let name = name.map { #","name":"\#($0)""# } ?? ""
        return Array(
            #"{"eventId":"\#(eventId)","type":"messageReceived","callId":"\#(callId)","occurredAt":"2026-11-24T10:00:00Z","platform":"whatsapp","messagingId":"\#(messagingId)","customerId":"\#(customerId)"\#(name)}"#
                .utf8
        )
    }

    @Test("a web chat whose email finds no CRM contact is linked by its phone number")
    func chatFallsBackToPhone() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(
            phone: "+15550100501",
            .init(contactId: "003CHAT0501", name: "Chat Caller", email: "listed@example.com")
        )
        try await relay.publish([
            chatBody(
                eventId: "ch1",
                callId: "chat-0501",
                email: "unlisted@example.com",
                phone: "+15550100501",
                name: nil
            )
        ])
        let phases = try await relay.platform.waitForPhases(of: "ch1")
        #expect(phases.phaseOne?.externalId == relay.expectedPhoneID("+15550100501"))
        #expect(phases.phaseTwo.externalId == "CRM:003CHAT0501")
        // The address was asked first, then the number (a search retried on a loaded machine repeats).
        let searches = relay.platform.server.requests.filter { $0.path.hasPrefix("/crm/contacts?") }.map(\.path)
        let firstEmail = try #require(searches.firstIndex { $0.contains("email=") })
        let firstPhone = try #require(searches.firstIndex { $0.contains("phone=") })
        #expect(firstEmail < firstPhone)
    }

    @Test("phase 1: a contact holding the chat's address but no CRM id gives way to the one holding its number")
    func chatPhaseOneFallsBackToPhone() async throws {
        let relay = try await RelayHarness.start()
        defer { Task { await relay.stop() } }
        _ = try await relay.app.contacts.create(ContactDraft(name: "Address Only", emails: ["known@example.com"]))
        _ = try await relay.app.contacts.create(
            ContactDraft(name: "Number Holder", phones: ["+15550100502"], externalIds: ["CRM:003CHAT0502"])
        )
        try await relay.publish([
            chatBody(eventId: "ch2", callId: "chat-0502", email: "known@example.com", phone: "+15550100502", name: nil)
        ])
        let update = try #require(
            try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15)).first
        )
        #expect(update.externalId == "CRM:003CHAT0502")
    }

    @Test("a message is linked by its messaging id")
    func messagingId() async throws {
        let relay = try await RelayHarness.start(enrichment: true)
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(
            phone: "",
            .init(
                contactId: "003MSG0503",
                name: "Whats App",
                messagingPlatform: "whatsapp",
                messagingId: "wa-15550100503"
            )
        )
        try await relay.publish([
            messageBody(
                eventId: "ms1",
                callId: "msg-0503",
                messagingId: "wa-15550100503",
                name: nil,
                customerId: "platform-customer-503"
            )
        ])
        let phases = try await relay.platform.waitForPhases(of: "ms1")
        #expect(phases.phaseTwo.externalId == "CRM:003MSG0503")
        #expect(phases.phaseTwo.customerId == "platform-customer-503")
        #expect(
            relay.platform.server.requests.contains {
                $0.path.contains("messagingId=wa-15550100503") && $0.path.contains("platform=whatsapp")
            }
        )
    }

    @Test(
        "a name alone only suggests: recorded on the interaction and its contact, shown by the API, never linked or sent",
        arguments: ["chat", "message"]
    )
    func nameSuggests(channel: String) async throws {
        let relay = try await RelayHarness.start(enrichment: true, admin: true)
        defer { Task { await relay.stop() } }
        defer { http.shutdown() }
        relay.platform.addCRMContact(phone: "+15550100599", .init(contactId: "003NAME0504", name: "Grace Hopper"))
        let callId = "\(channel)-0504"
        if channel == "chat" {
            try await relay.publish([
                chatBody(
                    eventId: "nm-\(channel)",
                    callId: callId,
                    email: "nobody@example.com",
                    phone: "+15550100504",
                    name: "Grace Hopper"
                )
            ])
        } else {
            try await relay.publish([
                messageBody(
                    eventId: "nm-\(channel)",
                    callId: callId,
                    messagingId: "wa-unknown",
                    name: "Grace Hopper",
                    customerId: "pc-504"
                )
            ])
        }
        let link = try await eventuallyValue { try await relay.app.contacts.link(callId: callId) }
        let journey = try await eventuallyValue { () -> Journey? in
            let journey = try await relay.app.contacts.journey(.id(link.contactId))
            return journey.interactions.first?.suggestions.isEmpty == false ? journey : nil
        }
        let suggestion = try #require(journey.interactions.first?.suggestions.first)
        #expect(suggestion.externalId == "CRM:003NAME0504")
        #expect(suggestion.name == "Grace Hopper")
        #expect(journey.contact.suggestions.map(\.externalId) == ["CRM:003NAME0504"])

        // Never a link: the interaction keeps what phase 1 gave it, and no update names the suggestion.
        let stored = try #require(try await relay.app.store.interaction(callId: callId))
        #expect(stored.externalId?.hasPrefix("CRM:") != true)
        #expect(!relay.platform.customerUpdates.contains { $0.body.contains("003NAME0504") })
        #expect(relay.platform.server.requests.contains { $0.path.contains("name=Grace%20Hopper") })

        // The admin API shows it on the contact and in the journey.
        let base = try await relay.adminBaseURL()
        let authorization = [(name: "Authorization", value: "Bearer \(RelayHarness.testAdminToken)")]
        for path in ["/api/v1/contacts/\(link.contactId)", "/api/v1/contacts/\(link.contactId)/journey"] {
            let response = try await http.execute(HTTPRequest(method: "GET", url: base + path, headers: authorization))
            #expect(response.status == 200)
            let text = String(decoding: response.body, as: UTF8.self)
            #expect(text.contains("CRM:003NAME0504"), "\(path): \(text)")
        }
    }
}

/// Polls `read` until it gives a value (or fails after `timeout`).
func eventuallyValue<Value: Sendable>(
    timeout: Duration = .seconds(20),
    _ read: @Sendable () async throws -> Value?
) async throws -> Value {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await read() { return value }
        guard ContinuousClock.now < deadline else { throw NoValueInTime(timeout: timeout) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

struct NoValueInTime: Error, CustomStringConvertible {
    var timeout: Duration
    var description: String { "no value after \(timeout)" }
}
