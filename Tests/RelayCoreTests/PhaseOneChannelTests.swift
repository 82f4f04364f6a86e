import Foundation
import RelayCore
import Testing

/// Phase 1 and the phase-2 request on every channel: what is linked at once, and what the CRM is
/// asked by.
@Suite("Phase 1 on every channel")
struct PhaseOneChannelTests {
    let linking = PhaseOneLinking(
        hasher: PhoneHasher(key: Array(repeating: 7, count: 32))!,
        defaultRegion: "US",
        enrichment: true
    )

    func event(_ payload: PlatformEvent.Payload) -> PlatformEvent {
        PlatformEvent(eventId: "e1", callId: "c1", occurredAt: Date(), payload: payload)
    }

    func effects(_ payload: PlatformEvent.Payload, override: ExternalID? = nil) -> [PhaseOneLinking.Effect]? {
        guard case .effects(let effects) = linking.decide(event(payload), override: override) else { return nil }
        return effects
    }

    var phoneID: String { linking.hasher.externalID(for: PhoneNumber(normalizing: "+15550100001")!).description }

    func update(_ effects: [PhaseOneLinking.Effect]?) -> CustomerUpdate? {
        effects?.compactMap { if case .customerUpdate(let update) = $0 { update } else { nil } }.first
    }

    func request(_ effects: [PhaseOneLinking.Effect]?) -> EnrichmentRequest? {
        effects?.compactMap { if case .enrich(let request) = $0 { request } else { nil } }.first
    }

    @Test("voice: the PHONE: id at once, the CRM searched by the number")
    func voice() {
        let result = effects(
            .callStarted(CallStarted(fromNumber: "+15550100001", toNumber: "+15550190000", direction: .inbound))
        )
        #expect(update(result)?.externalId.description == phoneID)
        #expect(request(result)?.phone == "+15550100001")
        #expect(request(result)?.email == nil)
    }

    @Test("email: nothing to link at once without a known link; the CRM searched by the address")
    func email() {
        let result = effects(.emailReceived(EmailReceived(fromAddress: " Ada@Example.COM ", customerId: "cust-9")))
        #expect(update(result) == nil)
        #expect(request(result)?.email == "Ada@example.com")
        #expect(request(result)?.customerId == "cust-9")
        // A known contact: linked at once, and fetched by id rather than searched.
        let known = effects(
            .emailReceived(EmailReceived(fromAddress: "ada@example.com", customerId: "cust-9")),
            override: ExternalID(parsing: "CRM:500245678")
        )
        #expect(update(known)?.externalId.description == "CRM:500245678")
        #expect(update(known)?.customerId == "cust-9")
        #expect(request(known)?.contactId == "500245678")
        #expect(request(known)?.email == nil)
        // No customer of the platform to update: nothing.
        #expect(effects(.emailReceived(EmailReceived(fromAddress: "ada@example.com"))) == nil)
    }

    @Test("web chat: the number's PHONE: id at once; phase 2 gets the address, the number and the name, in that order")
    func chat() {
        let both = effects(.chatStarted(ChatStarted(email: "ada@example.com", phone: "(555) 010-0001", name: " Ada ")))
        #expect(update(both)?.externalId.description == phoneID)
        #expect(update(both)?.customerId == phoneID)
        #expect(request(both)?.email == "ada@example.com")
        #expect(request(both)?.phone == "+15550100001", "the number, for when the address finds no single contact")
        #expect(request(both)?.name == "Ada")
        let phoneOnly = effects(.chatStarted(ChatStarted(phone: "+15550100001")))
        #expect(request(phoneOnly)?.phone == "+15550100001")
        #expect(request(phoneOnly)?.email == nil)
        // A name alone links nobody at once; phase 2 may only find a suggestion by it.
        let nameOnly = effects(.chatStarted(ChatStarted(name: "Ada Lovelace", customerId: "cust-1")))
        #expect(update(nameOnly) == nil)
        #expect(request(nameOnly)?.name == "Ada Lovelace")
        #expect(request(nameOnly)?.phone == nil && request(nameOnly)?.email == nil)
        // Nothing to link and no customer to update: nothing at all.
        #expect(effects(.chatStarted(ChatStarted(name: "Ada Lovelace"))) == nil)
    }

    @Test("messaging: a known link at once; phase 2 searches by the messaging id, then the name")
    func messaging() {
        let message = MessageReceived(platform: .whatsapp, messagingId: "wa-1", name: "Ada", customerId: "cust-2")
        let unknown = effects(.messageReceived(message))
        #expect(update(unknown) == nil, "a messaging id is no PHONE: id: nothing to link at once")
        #expect(request(unknown)?.messagingId == "wa-1")
        #expect(request(unknown)?.messagingPlatform == "whatsapp")
        #expect(request(unknown)?.name == "Ada")
        #expect(request(unknown)?.customerId == "cust-2")
        let known = effects(.messageReceived(message), override: ExternalID(parsing: "ERP:A-1"))
        #expect(update(known)?.externalId.description == "ERP:A-1")
        #expect(request(known) == nil, "an ERP link has no CRM contact to fetch")
    }

    @Test("a web chat's number keys its overrides like a call's")
    func chatPhoneKey() {
        let call = linking.caller(
            of: event(
                .callStarted(CallStarted(fromNumber: "+15550100001", toNumber: "+15550190000", direction: .inbound))
            )
        ).phoneKey
        #expect(call != nil)
        #expect(linking.caller(of: event(.chatStarted(ChatStarted(phone: "+1 555 010 0001")))).phoneKey == call)
        #expect(linking.caller(of: event(.emailReceived(EmailReceived(fromAddress: "a@b.co")))).phoneKey == nil)
    }

    @Test("a caller worked out once by the pipeline and handed in links the call to that number's PHONE: id")
    func precomputedCaller() {
        let correlator = CallCorrelator(linking: linking)
        // The customer's number each payload names (nil: none), written out here, not worked out.
        let cases: [(payload: PlatformEvent.Payload, number: String?)] = [
            (
                .callStarted(CallStarted(fromNumber: "(555) 010-0001", toNumber: "+15550190000", direction: .inbound)),
                "+15550100001"
            ),
            (.callStarted(CallStarted(fromNumber: "anonymous", toNumber: "+15550190000", direction: .inbound)), nil),
            (.chatStarted(ChatStarted(email: "Ann@Example.COM", phone: "+1 555 010 0001")), "+15550100001"),
            (.emailReceived(EmailReceived(fromAddress: "ann@example.com")), nil),
        ]
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for (payload, number) in cases {
            let start = event(payload)
            let caller = linking.caller(of: start)
            let expectedLink = number.map { linking.hasher.externalID(for: PhoneNumber(normalizing: $0)!).description }
            #expect(caller.number?.e164 == number)
            #expect(caller.phoneKey.map { "PHONE:\($0)" } == expectedLink)
            let handedIn = correlator.handle(start, state: nil, now: now, caller: caller)
            #expect(handedIn.interaction.externalId == expectedLink, "\(payload.type)")
        }
    }
}
