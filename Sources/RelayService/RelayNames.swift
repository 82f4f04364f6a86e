/// The exchanges and queues the relay uses, as named in `topology/definitions.json`, with the
/// configured prefix applied. The broker carries the input and the dead letters, nothing else: the
/// relay's own work waits in the store's outbox.
public struct RelayNames: Sendable, Hashable {
    public var eventsExchange: String
    public var eventsQueue: String
    public var deadLetterExchange: String
    public var deadLettersQueue: String
    /// The work queues of versions before the outbox dispatcher (`relay.work` and what it fed): a
    /// deployment that upgrades drains them first (README, "Upgrading from broker work queues").
    public var legacyWorkExchange: String
    public var legacyWorkQueues: [String]

    public init(prefix: String = "") {
        eventsExchange = prefix + "platform.events"
        eventsQueue = prefix + "relay.events"
        deadLetterExchange = prefix + "relay.dead"
        deadLettersQueue = prefix + "relay.dead-letters"
        legacyWorkExchange = prefix + "relay.work"
        legacyWorkQueues = [
            "relay.deliveries", "relay.enrichment", "relay.delay.5s", "relay.delay.30s", "relay.delay.2m",
            "relay.delay.10m", "relay.delay.1h",
        ].map { prefix + $0 }
    }
}
