/// The exchanges and queues the relay uses, as named in `topology/definitions.json`, with the
/// configured prefix applied.
public struct RelayNames: Sendable, Hashable {
    public var eventsExchange: String
    public var eventsQueue: String
    public var deliveriesQueue: String
    public var deadLetterExchange: String
    public var deadLettersQueue: String

    public init(prefix: String = "") {
        eventsExchange = prefix + "platform.events"
        eventsQueue = prefix + "relay.events"
        deliveriesQueue = prefix + "relay.deliveries"
        deadLetterExchange = prefix + "relay.dead"
        deadLettersQueue = prefix + "relay.dead-letters"
    }
}
