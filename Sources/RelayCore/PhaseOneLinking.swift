/// Phase 1 of identity resolution for the start of a voice call: link at once, with no network call,
/// to the keyed hash of the customer's number (DESIGN.md, "Identity"; seed guide, two-phase approach).
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

    /// The keyed hash of the customer's number on a call start: the key of recent overrides.
    public func phoneKey(for event: PlatformEvent) -> String? {
        guard case .callStarted(let start) = event.payload,
            let number = PhoneNumber(normalizing: start.customerNumber, defaultRegion: defaultRegion)
        else { return nil }
        return hasher.keyedHash(number)
    }

    /// - Parameter override: a live recent override for this caller: it wins over the `PHONE:` id, and
    ///   phase 2 then asks the CRM for that contact rather than searching by number.
    public func decide(_ event: PlatformEvent, override: ExternalID? = nil) -> Outcome {
        guard case .callStarted(let start) = event.payload else {
            return .nothingToDo(reason: "\(event.type.rawValue) events are not linked yet")
        }
        guard let number = PhoneNumber(normalizing: start.customerNumber, defaultRegion: defaultRegion) else {
            return .nothingToDo(reason: "the customer's number is withheld or not a possible number")
        }
        let phoneID = hasher.externalID(for: number)
        let externalID = override ?? phoneID
        // The platform's customer is the phone-linked one unless the event names it: an override changes
        // who that customer is, not which customer record is updated.
        let customerID = start.customerId.flatMap { $0.isEmpty ? nil : $0 } ?? phoneID.description
        let update = CustomerUpdate(
            customerId: customerID, externalId: externalID, callId: event.callId,
            idempotencyKey: CustomerUpdate.phaseOneKeyPrefix + event.eventId)
        guard enrichment else { return .effects([.customerUpdate(update)]) }
        let request = EnrichmentRequest(
            callId: event.callId, eventId: event.eventId, customerId: customerID,
            phone: override == nil ? number.e164 : nil,
            contactId: override?.source == .crm ? override?.value : nil)
        if override != nil && request.contactId == nil { return .effects([.customerUpdate(update)]) }
        return .effects([.customerUpdate(update), .enrich(request)])
    }
}

/// Phase 2 of identity resolution for one interaction: which customer to update, found by what.
public struct EnrichmentRequest: Sendable, Hashable, Codable {
    public var callId: String
    public var eventId: String
    /// The platform's customer to update with what the CRM says.
    public var customerId: String
    /// The E.164 number to search the CRM by, when the contact is not known yet.
    public var phone: String?
    /// The CRM contact to fetch directly (a recent override, or a context update to validate).
    public var contactId: String?

    public init(callId: String, eventId: String, customerId: String, phone: String?, contactId: String? = nil) {
        self.callId = callId
        self.eventId = eventId
        self.customerId = customerId
        self.phone = phone
        self.contactId = contactId
    }
}
