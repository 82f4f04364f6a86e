import Foundation

/// Phase 1 of identity resolution for the start of an interaction: link at once, with no network call,
/// to what is known locally or to the keyed hash of the customer's number (DESIGN.md, "Identity"; seed
/// guide, two-phase approach), and ask for phase 2 by the channel's identifier.
public struct PhaseOneLinking: Sendable {
    public let hasher: PhoneHasher
    /// Region for numbers written in national form (ISO 3166, e.g. "US").
    public let defaultRegion: String
    /// Whether a CRM is there to ask: then every link also asks for phase 2, the enrichment.
    public let enrichment: Bool

    public init(hasher: PhoneHasher, defaultRegion: String = PhoneNumber.unknownRegion, enrichment: Bool = false) {
        self.hasher = hasher
        self.defaultRegion = defaultRegion
        self.enrichment = enrichment
    }

    public enum Effect: Sendable, Hashable {
        case customerUpdate(CustomerUpdate)
        /// Phase 2: look the customer up in the CRM (and ERP) in the background.
        case enrich(EnrichmentRequest)
    }

    public enum Outcome: Sendable, Hashable {
        case effects([Effect])
        /// A valid event that leads to no output; the reason is safe to log (it holds no PII).
        case nothingToDo(reason: String)
    }

    /// The customer's number on an event (a call's customer, a web chat's phone) and its keyed hash,
    /// worked out once per event: the pipeline reads overrides by the key, the correlator links with it,
    /// and the parse and HMAC are the costliest steps of phase 1.
    public struct Caller: Sendable, Hashable {
        public var number: PhoneNumber?
        /// The keyed hash of `number`: the key of recent overrides, the value of the `PHONE:` id.
        public var phoneKey: String?
    }

    public func caller(of event: PlatformEvent) -> Caller {
        let number = customerNumber(of: event)
        return Caller(number: number, phoneKey: number.map(hasher.keyedHash))
    }

    func customerNumber(of event: PlatformEvent) -> PhoneNumber? {
        let raw: String?
        switch event.payload {
        case .callStarted(let start): raw = start.customerNumber
        case .chatStarted(let chat): raw = chat.phone
        default: raw = nil
        }
        return raw.flatMap { PhoneNumber(normalizing: $0, defaultRegion: defaultRegion) }
    }

    /// Phase 1 per channel, at once and with no network call: the external id (the override or known
    /// link if there is one, else the number's `PHONE:` id) for the platform's customer (the event's,
    /// else the `PHONE:` one). Phase 2 searches the CRM by the channel's identifiers in the seeds' order: a
    /// call's number; an email's address; a web chat's address, then its number, then its name; a
    /// message's messaging id, then its name (a name only ever suggests).
    ///
    /// - Parameter override: a live recent override, or the link already known locally for this
    ///   customer: it wins over the `PHONE:` id, and phase 2 then asks the CRM for that contact.
    /// - Parameter caller: `caller(of: event)`, when the caller worked it out already.
    public func decide(_ event: PlatformEvent, override: ExternalID? = nil, caller: Caller? = nil) -> Outcome {
        let caller = caller ?? self.caller(of: event)
        let number = caller.number
        let customerIdOnEvent: String?
        var email: EmailAddress?
        var messaging: (platform: String, id: String)?
        var name: String?
        func trimmed(_ text: String?) -> String? {
            let value = text?.trimmingCharacters(in: .whitespacesAndNewlines)
            return value?.isEmpty == false ? value : nil
        }
        switch event.payload {
        case .callStarted(let start):
            guard number != nil else {
                return .nothingToDo(reason: "the customer's number is withheld or not a possible number")
            }
            customerIdOnEvent = start.customerId
        case .chatStarted(let chat):
            customerIdOnEvent = chat.customerId
            email = chat.email.flatMap(EmailAddress.init(normalizing:))
            name = trimmed(chat.name)
        case .emailReceived(let received):
            customerIdOnEvent = received.customerId
            email = EmailAddress(normalizing: received.fromAddress)
        case .messageReceived(let message):
            customerIdOnEvent = message.customerId
            messaging = trimmed(message.messagingId).map { (message.platform.rawValue, $0) }
            name = trimmed(message.name)
        default:
            return .nothingToDo(reason: "\(event.type.rawValue) events link nobody")
        }
        let phoneID = caller.phoneKey.map(ExternalID.phone(keyedHash:))
        // The platform's customer is the event's, else the phone-linked one: an override changes who
        // that customer is, not which customer record is updated.
        guard let customerID = customerIdOnEvent.flatMap({ $0.isEmpty ? nil : $0 }) ?? phoneID?.description else {
            return .nothingToDo(reason: "no customer id on the event and no number to derive one from")
        }
        var effects: [Effect] = []
        if let externalID = override ?? phoneID {
            effects.append(
                .customerUpdate(
                    CustomerUpdate(
                        customerId: customerID,
                        externalId: externalID,
                        callId: event.callId,
                        idempotencyKey: CustomerUpdate.phaseOneKeyPrefix + event.eventId
                    )
                )
            )
        }
        guard enrichment else {
            return effects.isEmpty ? .nothingToDo(reason: "nothing known to link to yet") : .effects(effects)
        }
        var request = EnrichmentRequest(
            callId: event.callId,
            eventId: event.eventId,
            customerId: customerID,
            phone: nil
        )
        if let override {
            // A known contact is fetched by id; an ERP link has no CRM contact to fetch. The number rides
            // along so the answer is remembered for the caller's next CTI lookup.
            guard override.source == .crm else { return .effects(effects) }
            request.contactId = override.value
            request.phone = number?.e164
        } else {
            request.email = email?.normalized
            request.phone = number?.e164
            request.messagingPlatform = messaging?.platform
            request.messagingId = messaging?.id
            request.name = name
            guard request.email != nil || request.phone != nil || request.messagingId != nil || request.name != nil
            else {
                return effects.isEmpty
                    ? .nothingToDo(reason: "no identifier the CRM is searched by") : .effects(effects)
            }
        }
        return .effects(effects + [.enrich(request)])
    }
}

/// Phase 2 of identity resolution for one interaction: which customer to update, found by what.
public struct EnrichmentRequest: Sendable, Hashable, Codable {
    public var callId: String
    public var eventId: String
    /// The platform's customer to update with what the CRM says.
    public var customerId: String
    /// The E.164 number to search the CRM by, when the contact is not known yet (a call's; a web chat's,
    /// after its address). With `contactId` it is not searched: it keys the CTI lookup's memory of the
    /// answer.
    public var phone: String?
    /// The normalised address to search the CRM by (email and web chat), first.
    public var email: String?
    /// Messaging: the platform (`whatsapp`, `facebook`, …) and the id to search the CRM by.
    public var messagingPlatform: String?
    public var messagingId: String?
    /// Web chat and messaging: the customer's name, searched last when no identifier found exactly one
    /// contact. A single match is only a suggestion for the agent, never a link.
    public var name: String?
    /// The CRM contact to fetch directly (a recent override, or a context update to validate).
    public var contactId: String?

    public init(
        callId: String,
        eventId: String,
        customerId: String,
        phone: String?,
        email: String? = nil,
        messagingPlatform: String? = nil,
        messagingId: String? = nil,
        name: String? = nil,
        contactId: String? = nil
    ) {
        self.callId = callId
        self.eventId = eventId
        self.customerId = customerId
        self.phone = phone
        self.email = email
        self.messagingPlatform = messagingPlatform
        self.messagingId = messagingId
        self.name = name
        self.contactId = contactId
    }
}
