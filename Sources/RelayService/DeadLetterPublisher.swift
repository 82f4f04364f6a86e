public import RelayAMQP
public import RelayCore

/// Publishes dead-letter records to the dead-letter exchange and waits for the broker's confirm, so a
/// record exists before the message that caused it is acked.
public struct DeadLetterPublisher: Sendable {
    /// Header naming the reason, so the queue can be filtered without parsing bodies.
    public static let reasonHeader = "x-relay-dead-letter-reason"

    let amqp: AMQPClient
    let exchange: String

    public init(amqp: AMQPClient, exchange: String) {
        self.amqp = amqp
        self.exchange = exchange
    }

    public func publish(_ record: DeadLetterRecord) async throws(AMQPError) {
        try await amqp.publish(Self.message(for: record, exchange: exchange))
    }

    static func message(for record: DeadLetterRecord, exchange: String) -> OutboundMessage {
        OutboundMessage(
            exchange: exchange,
            routingKey: record.reason.rawValue,
            body: record.encoded(),
            headers: [reasonHeader: .string(record.reason.rawValue)],
            messageId: record.id
        )
    }
}
