/// Phase 1 of identity resolution for the start of a voice call: link at once, with no network call,
/// to the keyed hash of the customer's number (DESIGN.md, "Identity"; seed guide, two-phase approach).
public struct PhaseOneLinking: Sendable {
    public let hasher: PhoneHasher
    /// Region for numbers written in national form (ISO 3166, e.g. "US").
    public let defaultRegion: String

    public init(hasher: PhoneHasher, defaultRegion: String = PhoneNumber.unknownRegion) {
        self.hasher = hasher
        self.defaultRegion = defaultRegion
    }

    public enum Effect: Sendable, Hashable {
        case customerUpdate(CustomerUpdate)
    }

    public enum Outcome: Sendable, Hashable {
        case effects([Effect])
        /// A valid event that leads to no output; the reason is safe to log (it holds no PII).
        case nothingToDo(reason: String)
    }

    public func decide(_ event: PlatformEvent) -> Outcome {
        guard case .callStarted(let start) = event.payload else {
            return .nothingToDo(reason: "\(event.type.rawValue) events are not linked yet")
        }
        guard let number = PhoneNumber(normalizing: start.customerNumber, defaultRegion: defaultRegion) else {
            return .nothingToDo(reason: "the customer's number is withheld or not a possible number")
        }
        let externalID = hasher.externalID(for: number)
        let customerID = start.customerId.flatMap { $0.isEmpty ? nil : $0 } ?? externalID.description
        let update = CustomerUpdate(
            customerId: customerID, externalId: externalID, callId: event.callId,
            idempotencyKey: "customer-update:\(event.eventId)")
        return .effects([.customerUpdate(update)])
    }
}
