/// Metadata keys of this adapter's log messages, in one place: each spelled once, so a search for
/// one finds every line.
enum LogKey {
    static let endpoint = "amqp.endpoint"
    static let node = "amqp.node"
    static let attempts = "amqp.attempts"
    static let error = "amqp.error"
    static let queue = "amqp.queue"
    static let channel = "amqp.channel"
    static let method = "amqp.method"
}
