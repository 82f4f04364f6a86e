import Foundation
import RelayCore
import Testing

@Suite("External ids, phone numbers and the keyed phone hash")
struct IdentityTests {
    @Test("parses only prefixed external ids from known sources")
    func externalIDs() {
        #expect(ExternalID(parsing: "CRM:500245678")?.source == .crm)
        #expect(ExternalID(parsing: "ERP:A-1001")?.value == "A-1001")
        #expect(ExternalID(parsing: "CRM:500245678")?.description == "CRM:500245678")
        for invalid in ["500245678", "crm:1", "XYZ:1", "CRM:", "CRM:a b", "CRM:1/2", "PHONE:+15550199999", "PHONE:abc"]
        {
            #expect(ExternalID(parsing: invalid) == nil, "\(invalid) must be rejected")
        }
        #expect(ExternalID(parsing: "CRM:" + String(repeating: "1", count: 129)) == nil)
    }

    @Test(
        "normalises international numbers to E.164 and treats the rest as absent",
        arguments: [
            ("+15550199999", "+15550199999"), ("tel:+1-555-019-9999", "+15550199999"),
            (" +44 20 7946 0958 ", "+442079460958"), ("TEL:+33(1)23456789;ext=5", "+33123456789"),
            // Letters are keypad digits to libphonenumber, as on vanity numbers.
            ("+1 800 FLOWERS", "+18003569377"),
        ]
    )
    func normalises(raw: String, e164: String) {
        #expect(PhoneNumber(normalizing: raw)?.e164 == e164)
    }

    @Test(
        "rejects what is not a usable number",
        arguments: [
            "", "anonymous", "5550199999", "+12", "+0123456789", "+1555019999912345", "+1555x0199", "tel:", "+1 (",
            "++++",
        ]
    )
    func rejects(raw: String) {
        #expect(PhoneNumber(normalizing: raw) == nil)
    }

    @Test(
        "numbers in national form parse in the configured region",
        arguments: [
            ("(202) 555-0143", "US", "+12025550143"), ("020 7946 0958", "GB", "+442079460958"),
            ("+44 20 7946 0958", "US", "+442079460958"), ("01 23 45 67 89", "FR", "+33123456789"),
        ]
    )
    func nationalForm(raw: String, region: String, e164: String) {
        #expect(PhoneNumber(normalizing: raw, defaultRegion: region)?.e164 == e164)
        #expect(PhoneNumber(normalizing: raw, defaultRegion: "ZZ")?.e164 == (raw.hasPrefix("+") ? e164 : nil))
    }

    @Test("the same number in any notation gives the same PHONE id; another key gives another")
    func sameNumberSameID() throws {
        let hasher = try #require(PhoneHasher(key: Array(repeating: 9, count: 32)))
        let notations = [
            "+1 (202) 555-0143", "tel:+12025550143", "202-555-0143", "  +1.202.555.0143 ", "tel:+1-202-555-0143;ext=7",
        ]
        let ids = Set(
            try notations.map { try #require(PhoneNumber(normalizing: $0, defaultRegion: "US")).e164 }.map {
                hasher.keyedHash(PhoneNumber(normalizing: $0)!)
            }
        )
        #expect(ids.count == 1)
        let other = try #require(PhoneHasher(key: Array(repeating: 8, count: 32)))
        #expect(!ids.contains(other.keyedHash(PhoneNumber(normalizing: "+12025550143")!)))
    }

    @Test("PHONE ids are the HMAC-SHA256 of the E.164 number under the configured key")
    func keyedHash() throws {
        let hasher = try #require(PhoneHasher(key: Array(repeating: UInt8(ascii: "k"), count: 32)))
        let number = try #require(PhoneNumber(normalizing: "tel:+1 555 019 9999"))
        // Independently computed: hmac.new(b'k'*32, b'+15550199999', sha256).hexdigest()
        #expect(
            hasher.externalID(for: number).description
                == "PHONE:e3009b629e16dd9bdac7d7e5d29b52ad7f8569f0becd5118f5f572c9919b405b"
        )
        let otherKey = try #require(PhoneHasher(key: Array(repeating: UInt8(ascii: "j"), count: 32)))
        #expect(otherKey.keyedHash(number) != hasher.keyedHash(number))
        #expect(PhoneHasher(key: Array(repeating: 1, count: 15)) == nil)
    }

    @Test("masking keeps only the last four characters")
    func masking() {
        #expect(Masking.mask("+15550199999") == "********9999")
        #expect(Masking.mask("CRM:500245678") == "********5678")
        #expect(ExternalID(parsing: "CRM:500245678")?.masked == "CRM:*****5678")
        #expect(ExternalID.phone(keyedHash: String(repeating: "a", count: 60) + "4076").masked == "PHONE:********4076")
        #expect(Masking.mask("abc") == "***")
        #expect(PhoneNumber(normalizing: "+15550199999")!.description == "********9999")
    }
}

@Suite("Phase-1 linking of a call start")
struct PhaseOneLinkingTests {
    let linking = PhaseOneLinking(hasher: PhoneHasher(key: Array(repeating: 7, count: 32))!)

    func start(
        direction: CallDirection,
        from: String = "+15550199999",
        to: String = "+15550190000",
        customerId: String? = nil
    )
        -> PlatformEvent
    {
        PlatformEvent(
            eventId: "evt-1",
            callId: "call-1",
            occurredAt: Date(),
            payload: .callStarted(
                CallStarted(fromNumber: from, toNumber: to, direction: direction, customerId: customerId)
            )
        )
    }

    @Test("an inbound call links the caller's number; the customer id is the percent-encoded external id")
    func inbound() throws {
        guard case .effects(let effects) = linking.decide(start(direction: .inbound)),
            case .customerUpdate(let update) = try #require(effects.first)
        else {
            Issue.record("expected a customer update")
            return
        }
        let expected = linking.hasher.externalID(for: PhoneNumber(normalizing: "+15550199999")!)
        #expect(update.externalId == expected)
        #expect(update.customerId == expected.description)
        #expect(update.path() == "/api/v2/customers/PHONE%3A" + expected.value)
        #expect(String(decoding: update.body(), as: UTF8.self) == #"{"externalId":"\#(expected.description)"}"#)
        #expect(update.idempotencyKey == "customer-update:evt-1")
    }

    @Test("an outbound (click-to-dial) call links the dialled number, not the contact center's line")
    func outbound() throws {
        guard case .effects(let effects) = linking.decide(start(direction: .outbound)),
            case .customerUpdate(let update) = try #require(effects.first)
        else {
            Issue.record("expected a customer update")
            return
        }
        #expect(update.externalId == linking.hasher.externalID(for: PhoneNumber(normalizing: "+15550190000")!))
    }

    @Test("the event's customerId addresses the update when present")
    func customerId() throws {
        guard case .effects(let effects) = linking.decide(start(direction: .inbound, customerId: "cust/42")),
            case .customerUpdate(let update) = try #require(effects.first)
        else {
            Issue.record("expected a customer update")
            return
        }
        #expect(update.customerId == "cust/42")
        #expect(update.path() == "/api/v2/customers/cust%2F42")
    }

    @Test("a withheld number or a non-call event leads to nothing, with a reason")
    func nothingToDo() {
        #expect(linking.decide(start(direction: .inbound, from: "anonymous")) != .effects([]))
        if case .effects = linking.decide(start(direction: .inbound, from: "anonymous")) {
            Issue.record("a withheld number must not produce a customer update")
        }
        let ended = PlatformEvent(eventId: "e", callId: "c", occurredAt: Date(), payload: .callEnded(CallEnded()))
        if case .effects = linking.decide(ended) { Issue.record("callEnded must not produce a customer update yet") }
    }
}
