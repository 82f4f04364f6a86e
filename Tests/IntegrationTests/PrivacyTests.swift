import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayTesting
import Testing

/// DESIGN.md, "Privacy": known numbers, emails and names go in; neither the logs, nor the database file
/// with its WAL and shared-memory files, nor the durable broker records hold any of them in clear.
@Suite("Personal data stays out of logs and storage", .stopsRelays)
struct PrivacyTests {
    static let ada = (
        phone: "+15550100081", national: "5550100081", name: "Ada Lovelace", email: "ada.lovelace@example.com"
    )
    static let grace = (
        phone: "+15550100082", national: "5550100082", name: "Grace Hopper", email: "grace.hopper@example.org"
    )
    static let chat = (phone: "+15550100083", name: "Alan Turing", email: "alan.turing@example.net")
    static let mail = (name: "Edsger Dijkstra", email: "edsger.dijkstra@example.com")
    static let messaging = (name: "Barbara Liskov", id: "wa-15550100084")
    static let malformed = (phone: "+15550100086", national: "5550100086")
    /// Free text typed by a person, each with a name planted in it.
    static let freeText = (
        reason: "caller said she is Rosalind Franklin", deferredReason: "Katherine Johnson asked for her account",
        notes: "Hedy Lamarr called about her order", subject: "Invoice for Mary Jackson"
    )

    static var secrets: [String] {
        [
            ada.phone, ada.national, ada.name, ada.email, grace.phone, grace.national, grace.name, grace.email,
            chat.phone, "5550100083", chat.name, chat.email, mail.name, mail.email, messaging.name, "15550100084",
            malformed.phone, malformed.national, "Rosalind Franklin", "Katherine Johnson", "Hedy Lamarr",
            "Mary Jackson",
        ]
    }

    @Test("planted numbers, emails and names appear in no log line, no store file and no dead-letter record")
    func nothingInClear() async throws {
        let logs = RecordingLogHandler.Store()
        let recording = RecordingLogHandler.logger(label: "test.relay", store: logs).handler
        // As `bootstrapLogging` installs it for every command.
        let logger = Logger(label: "test.relay") { _ in PIIMaskingLogHandler(wrapping: recording) }
        // Grace's profile update is refused until it is dead-lettered: her job travels the retry path and
        // lands, sealed, on the dead-letter queue.
        let relay = try await RelayHarness.start(
            platformBehaviour: { _, request in
                String(decoding: request.body, as: UTF8.self).contains(Self.grace.name) ? .status(500) : nil
            },
            enrichment: true,
            adjust: { $0.log.level = "trace" },
            logger: logger
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(
            phone: Self.ada.phone,
            .init(contactId: "003PRIV0081", accountId: "ACC-81", name: Self.ada.name, email: Self.ada.email)
        )
        relay.platform.addCRMContact(
            phone: Self.grace.phone,
            .init(contactId: "003PRIV0082", name: Self.grace.name, email: Self.grace.email)
        )
        relay.platform.setERPAccount("ACC-81", status: "Active")
        // What the agent switches the web chat to: a contact the CRM knows, with nothing personal.
        relay.platform.addCRMContact(phone: "+15550100089", .init(contactId: "003PRIV0089"))
        // The web chat's address and number find nobody; its name finds this contact: a suggestion,
        // whose name the store keeps sealed.
        relay.platform.addCRMContact(phone: "+15550100088", .init(contactId: "003PRIV0088", name: Self.chat.name))

        try await relay.publish([
            callStartedBody(eventId: "pv1", callId: "privacy-call-0081", from: "(555) 010-0081"),
            callStartedBody(eventId: "pv2", callId: "privacy-call-0082", from: Self.grace.phone),
            callEndedBody(eventId: "pv3", callId: "privacy-call-0081"),
            Array(
                #"{"eventId":"pv4","type":"wrapUp","callId":"privacy-call-0081","occurredAt":"2026-11-24T10:05:45Z","wrapUpCode":"RESOLVED","notes":"\#(Self.freeText.notes)"}"#
                    .utf8
            ),
            Array(
                #"{"eventId":"pv5","type":"chatStarted","callId":"privacy-chat-0083","occurredAt":"2026-11-24T10:00:00Z","email":"\#(Self.chat.email)","phone":"\#(Self.chat.phone)","name":"\#(Self.chat.name)"}"#
                    .utf8
            ),
            Array(
                #"{"eventId":"pv6","type":"emailReceived","callId":"privacy-mail-0084","occurredAt":"2026-11-24T10:00:00Z","fromAddress":"\#(Self.mail.email)","name":"\#(Self.mail.name)","subject":"\#(Self.freeText.subject)"}"#
                    .utf8
            ),
            // Malformed (no `toNumber`): dead-lettered as it arrived, number and all.
            Array(
                #"{"eventId":"pv8","type":"callStarted","callId":"privacy-bad-0086","occurredAt":"2026-11-24T10:00:00Z","fromNumber":"\#(Self.malformed.phone)","direction":"inbound"}"#
                    .utf8
            ),
            // An agent's switch, with a reason that names the caller; and one whose call has not started,
            // kept in the interaction's state until it does.
            Array(
                #"{"eventId":"pv9","type":"contextUpdate","callId":"privacy-chat-0083","occurredAt":"2026-11-24T10:01:00Z","newExternalId":"CRM:003PRIV0089","reason":"\#(Self.freeText.reason)"}"#
                    .utf8
            ),
            Array(
                #"{"eventId":"pv10","type":"contextUpdate","callId":"privacy-call-0087","occurredAt":"2026-11-24T10:01:00Z","newExternalId":"CRM:003PRIV0081","reason":"\#(Self.freeText.deferredReason)"}"#
                    .utf8
            ),
            Array(
                #"{"eventId":"pv7","type":"messageReceived","callId":"privacy-msg-0085","occurredAt":"2026-11-24T10:00:00Z","platform":"whatsapp","messagingId":"\#(Self.messaging.id)","name":"\#(Self.messaging.name)"}"#
                    .utf8
            ),
        ])
        // Ada: phase 1 and her profile; Grace and the web chat: phase 1 only; Ada's call completes with a
        // webhook.
        _ = try await relay.platform.waitForCustomerUpdates(count: 3, timeout: .seconds(20))
        try await eventually(timeout: .seconds(20)) {
            relay.platform.customerUpdates.contains {
                $0.body.contains(Self.ada.name) && $0.body.contains(Self.ada.email)
            }
        }
        _ = try await relay.platform.waitForWebhooks(count: 1, timeout: .seconds(20))
        let deadLetters = try await relay.deadLetters(atLeast: 2, timeout: .seconds(20))
        try await eventually { relay.app.pipeline.acknowledgedCount == 10 }
        try await eventually(timeout: .seconds(20)) {
            guard let link = try await relay.app.contacts.link(callId: "privacy-chat-0083") else { return false }
            return try await relay.app.contacts.journey(.id(link.contactId)).contact.suggestions
                .contains { $0.externalId == "CRM:003PRIV0088" && $0.name == Self.chat.name }
        }
        // The context change went through: its job (reason and all) was in the outbox.
        try await eventually(timeout: .seconds(20)) {
            relay.platform.customerUpdates.contains { $0.idempotencyKey == "context-update:pv9" }
        }

        // The dead-lettered job holds Grace's profile, sealed: it opens under the relay's key.
        let record = try #require(deadLetters.first { $0.callId == "privacy-call-0082" })
        let job = try DeliveryJob.decode(record.originalPayload).opened(with: relay.app.cipher)
        #expect(job.body.contains(Self.grace.email))
        let malformed = try #require(deadLetters.first { $0.callId == "privacy-bad-0086" })
        #expect(
            String(decoding: try malformed.openedPayload(with: relay.app.cipher), as: UTF8.self).contains(
                Self.malformed.phone
            )
        )
        for letter in deadLetters {
            try expectNoSecret(in: letter.encoded(), where: "dead letter \(letter.id)")
        }

        // Scanned while the relay runs (pages still in the WAL) and after it stopped.
        try expectNoSecretInStore(try await relay.storeSnapshot())
        await relay.stopRelayOnly()
        try expectNoSecretInStore(try await relay.storeSnapshot())

        let lines = logs.all
        #expect(lines.count > 20)
        for secret in Self.secrets {
            #expect(!lines.contains { $0.contains(secret) }, "a log line holds \(secret)")
        }
        // The masked forms are there, so the test would notice if logging stopped altogether.
        #expect(lines.contains { $0.contains("call.id.masked=********0081") })
        #expect(lines.contains { $0.contains("external.id.masked=CRM:") && $0.contains("0081") })
    }

    func expectNoSecretInStore(_ snapshot: [(place: String, bytes: [UInt8])]) throws {
        for (place, bytes) in snapshot {
            for secret in Self.secrets {
                #expect(!RelayHarness.holdsInClear(bytes, secret), "\(place) holds \(secret) in clear")
            }
        }
        #expect(!snapshot.isEmpty)
    }

    func expectNoSecret(in bytes: [UInt8], where place: String) throws {
        let haystack = Data(bytes)
        for secret in Self.secrets {
            #expect(haystack.range(of: Data(secret.utf8)) == nil, "\(place) holds \(secret) in clear")
            let utf16LE = Data(secret.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
            let utf16BE = Data(secret.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] })
            #expect(haystack.range(of: utf16LE) == nil, "\(place) holds \(secret) in UTF-16LE")
            #expect(haystack.range(of: utf16BE) == nil, "\(place) holds \(secret) in UTF-16BE")
        }
    }
}

@Suite("Sealed dead-letter payloads in the dead-letters tool")
struct SealedDeadLetterTests {
    let cipher = FieldCipher(base64Key: RelayHarness.testEncryptionKey)!
    let names = RelayNames(prefix: "p.")
    let event = Array(#"{"eventId":"e1","type":"callStarted","callId":"c1","fromNumber":"+15550100091"}"#.utf8)

    func message(_ record: DeadLetterRecord) -> Delivery {
        Delivery(
            deliveryTag: 1,
            connectionGeneration: 1,
            exchange: "p.relay.dead",
            routingKey: "malformed",
            redelivered: false,
            body: record.encoded(),
            headers: [:],
            messageId: nil,
            consumerTag: "t"
        )
    }

    func sealedRecord() -> DeadLetterRecord {
        DeadLetterRecord(
            id: "dl_sealed",
            reason: .malformed,
            callId: "c1",
            eventType: "callStarted",
            eventId: nil,
            attempts: 1,
            firstFailureAt: Date(),
            lastFailureAt: Date(),
            lastError: "missing required field 'toNumber'",
            originalPayload: event,
            origin: .init(exchange: "p.platform.events", routingKey: "callStarted")
        ).sealingPayload(with: cipher)
    }

    @Test("with the key, show, export and replay see the original event")
    func withKey() throws {
        let letter = DeadLetter(message: message(sealedRecord()), names: names, cipher: cipher)
        #expect(!String(decoding: sealedRecord().encoded(), as: UTF8.self).contains("5550100091"))
        #expect(letter.payload == event)
        #expect(!letter.payloadIsSealed)
        #expect(letter.replayMessage()?.body == event)
        #expect(letter.notReplayableReason == nil)
        #expect(DeadLetterText.detail(letter, copies: 1, now: Date()).joined(separator: "\n").contains("+15550100091"))
    }

    @Test("without the key, the payload stays sealed and replay refuses it rather than republish ciphertext")
    func withoutKey() throws {
        let letter = DeadLetter(message: message(sealedRecord()), names: names)
        #expect(letter.payloadIsSealed)
        #expect(!letter.isReplayable)
        #expect(letter.notReplayableReason?.contains("privacy.encryptionKey") == true)
        #expect(!DeadLetterText.detail(letter, copies: 1, now: Date()).joined(separator: "\n").contains("5550100091"))
        #expect(!letter.payloadKeyDoesNotFit)
        #expect(
            DeadLetterText.detail(letter, copies: 1, now: Date()).contains {
                $0.hasPrefix("payload:") && $0.contains("no privacy.encryptionKey is configured")
            }
        )
    }

    @Test("with another key, show says the key does not fit rather than print ciphertext as if it were the payload")
    func wrongKey() throws {
        let otherKey = FieldCipher(key: Array(repeating: 9, count: 32))!
        let letter = DeadLetter(message: message(sealedRecord()), names: names, cipher: otherKey)
        #expect(letter.payloadIsSealed && letter.payloadKeyDoesNotFit)
        #expect(letter.notReplayableReason?.contains("not the key it was sealed with") == true)
        let page = DeadLetterText.detail(letter, copies: 1, now: Date())
        #expect(
            page.contains {
                $0.hasPrefix("payload:") && $0.contains("does not open with the configured privacy.encryptionKey")
            }
        )
        #expect(!page.joined(separator: "\n").contains("5550100091"))
    }

    @Test("export --decrypt writes an opened payload as text; without it, the record stays byte for byte as published")
    func exportDecrypted() throws {
        let letter = DeadLetter(message: message(sealedRecord()), names: names, cipher: cipher)
        let published = try #require(
            try JSONSerialization.jsonObject(with: Data(letter.exportJSON())) as? [String: Any]
        )
        #expect(published["payloadEncoding"] as? String == "sealed")
        let opened = try #require(
            try JSONSerialization.jsonObject(with: Data(letter.exportJSON(decrypted: true))) as? [String: Any]
        )
        #expect(opened["payloadEncoding"] as? String == "utf8")
        #expect(opened["payload"] as? String == String(decoding: event, as: UTF8.self))
        #expect(
            opened["id"] as? String == "dl_sealed"
                && opened["lastError"] as? String == published["lastError"] as? String
        )
        // Without the key there is nothing to open: the sealed form is written, unchanged.
        let withoutKey = DeadLetter(message: message(sealedRecord()), names: names)
        #expect(withoutKey.exportJSON(decrypted: true) == withoutKey.exportJSON())
    }
}
