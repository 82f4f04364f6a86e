/// A dead-letter operation that could not run at all (as opposed to one record that failed).
public struct DeadLetterQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable { case brokerUnreachable, queueMissing, scanFailed, storeFailed }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        public static let brokerUnreachable = Code(.brokerUnreachable)
        public static let queueMissing = Code(.queueMissing)
        public static let scanFailed = Code(.scanFailed)
        /// The store (the record of dead letters) could not be read or written, or none is configured.
        public static let storeFailed = Code(.storeFailed)
        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
