/// A header value as the relay uses them: strings, integers and booleans; anything richer is read as
/// `.other` with a description.
public enum AMQPHeaderValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case other(String)

    public var description: String {
        switch self {
        case .string(let value): value
        case .int(let value): String(value)
        case .bool(let value): String(value)
        case .other(let value): value
        }
    }

    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        if case .string(let value) = self { return Int64(value) }
        return nil
    }
}

/// A message to publish. Published persistent and mandatory: a message the broker cannot route is an
/// error, never a silent drop.
public struct OutboundMessage: Sendable, Hashable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var headers: [String: AMQPHeaderValue]
    /// Correlates a basic.return with its publish; one is generated when not given.
    public var messageId: String?
    public var contentType: String

    public init(
        exchange: String,
        routingKey: String,
        body: [UInt8],
        headers: [String: AMQPHeaderValue] = [:],
        messageId: String? = nil,
        contentType: String = "application/json"
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.headers = headers
        self.messageId = messageId
        self.contentType = contentType
    }
}

/// A message delivered to a consumer. Ack or nack it through the `AMQPClient` it came from.
public struct Delivery: Sendable, Hashable {
    public var deliveryTag: UInt64
    /// Which connection delivered it: delivery tags mean nothing on any other connection.
    public var connectionGeneration: UInt64
    public var exchange: String
    public var routingKey: String
    public var redelivered: Bool
    public var body: [UInt8]
    public var headers: [String: AMQPHeaderValue]
    public var messageId: String?
    public var consumerTag: String

    public init(
        deliveryTag: UInt64,
        connectionGeneration: UInt64,
        exchange: String,
        routingKey: String,
        redelivered: Bool,
        body: [UInt8],
        headers: [String: AMQPHeaderValue],
        messageId: String?,
        consumerTag: String
    ) {
        self.deliveryTag = deliveryTag
        self.connectionGeneration = connectionGeneration
        self.exchange = exchange
        self.routingKey = routingKey
        self.redelivered = redelivered
        self.body = body
        self.headers = headers
        self.messageId = messageId
        self.consumerTag = consumerTag
    }
}
