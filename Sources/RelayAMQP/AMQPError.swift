/// A failure talking to the broker, with a code that is safe as a metric label.
public struct AMQPError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case connectionFailed, authenticationFailed, connectionLost, channelClosed, protocolError
            case publishNacked, unroutable, shutdown, topologyInvalid, topologyRejected
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The TCP or TLS connection could not be made.
        public static let connectionFailed = Code(.connectionFailed)
        public static let authenticationFailed = Code(.authenticationFailed)
        /// An established connection went away (broker stopped, network, missed heartbeats).
        public static let connectionLost = Code(.connectionLost)
        /// The broker closed a channel, e.g. for a missing exchange or a queue declared with other arguments.
        public static let channelClosed = Code(.channelClosed)
        public static let protocolError = Code(.protocolError)
        /// The broker answered a publish with basic.nack: it could not take responsibility for the message.
        public static let publishNacked = Code(.publishNacked)
        /// A mandatory publish matched no queue.
        public static let unroutable = Code(.unroutable)
        public static let shutdown = Code(.shutdown)
        /// The topology file could not be read or does not describe a valid topology.
        public static let topologyInvalid = Code(.topologyInvalid)
        /// The broker refused a declaration from the topology file.
        public static let topologyRejected = Code(.topologyRejected)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    /// Whether the same operation can succeed later without anyone changing anything.
    public var isRetriable: Bool {
        code == .connectionFailed || code == .connectionLost || code == .channelClosed || code == .publishNacked
    }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
