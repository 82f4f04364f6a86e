public import RelayAMQP

/// The exchanges and queues the relay uses, as named in `topology/definitions.json`, with the
/// configured prefix applied.
public struct RelayNames: Sendable, Hashable {
    public var eventsExchange: String
    public var eventsQueue: String
    public var workExchange: String
    public var deliveriesQueue: String
    /// Routing key of `relay.work` that leads to `relay.deliveries`.
    public var deliveryRoutingKey: String
    /// CRM and ERP lookups (enrichment, context validation), apart from the platform updates.
    public var enrichmentQueue: String
    public var enrichmentRoutingKey: String
    public var deadLetterExchange: String
    public var deadLettersQueue: String

    public init(prefix: String = "") {
        eventsExchange = prefix + "platform.events"
        eventsQueue = prefix + "relay.events"
        workExchange = prefix + "relay.work"
        deliveriesQueue = prefix + "relay.deliveries"
        deliveryRoutingKey = "delivery"
        enrichmentQueue = prefix + "relay.enrichment"
        enrichmentRoutingKey = "enrichment"
        deadLetterExchange = prefix + "relay.dead"
        deadLettersQueue = prefix + "relay.dead-letters"
    }
}

/// The delay queues of the topology: queues whose messages expire after a fixed time back into
/// `relay.deliveries`. A retry that must wait parks in one of them, so no process holds it in memory
/// and no delivery stays unacked for long.
public struct DelayQueues: Sendable, Hashable {
    public struct Queue: Sendable, Hashable {
        public var name: String
        public var delay: Duration
    }

    /// Shortest delay first.
    public var queues: [Queue]

    public init(topology: Topology, deliveryRoutingKey: String) {
        queues = topology.queues.compactMap { queue in
            guard let ttl = queue.arguments["x-message-ttl"]?.intValue,
                queue.arguments["x-dead-letter-routing-key"]?.description == deliveryRoutingKey
            else { return nil }
            return Queue(name: queue.name, delay: .milliseconds(ttl))
        }.sorted { $0.delay < $1.delay }
    }

    /// The longest delay queue that does not wait longer than asked (the shortest if all do): retries
    /// come back no later than their backoff planned, give or take one bucket.
    public func queue(for delay: Duration) -> Queue? {
        queues.last { $0.delay <= delay } ?? queues.first
    }
}
