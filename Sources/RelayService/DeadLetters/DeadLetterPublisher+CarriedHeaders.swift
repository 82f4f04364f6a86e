public import RelayAMQP
public import RelayCore

extension DeadLetter {
    /// The replay headers of a message the relay is handling (`x-relay-replay-count`,
    /// `x-relay-replay-of`), for the record or retry that message turns into: a replayed message that
    /// fails again must come back to `relay.dead-letters` still saying how often it was replayed.
    public static func carriedHeaders(from headers: [String: AMQPHeaderValue]) -> [String: AMQPHeaderValue] {
        headers.filter { $0.key == replayCountHeader || $0.key == replayOfHeader }
    }
}

extension DeadLetterPublisher {
    /// Publishes `record` for a failure of `delivery`, carrying over the delivery's replay headers.
    public func publish(_ record: DeadLetterRecord, causedBy delivery: Delivery) async throws(AMQPError) {
        var message = Self.message(for: record, exchange: exchange)
        message.headers.merge(DeadLetter.carriedHeaders(from: delivery.headers)) { own, _ in own }
        try await amqp.publish(message)
    }
}
