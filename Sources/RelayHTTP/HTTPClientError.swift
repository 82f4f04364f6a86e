/// A transport-level failure: the request got no HTTP response at all.
///
/// A struct with a code rather than an open enum, so new codes can be added without breaking
/// callers that switch over them (the swift-nio `FileSystemError` shape).
public struct HTTPClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case timeout
            case connectionRefused
            case couldNotResolveHost
            case transport
            case responseTooLarge
            case shutdown
            case invalidRequest
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The request's `timeout` (or the client's connect timeout) passed.
        public static let timeout = Code(.timeout)
        /// Nothing accepted the TCP connection (refused, unreachable).
        public static let connectionRefused = Code(.connectionRefused)
        public static let couldNotResolveHost = Code(.couldNotResolveHost)
        /// Any other failure on the wire: reset, closed without a response, TLS, protocol error.
        public static let transport = Code(.transport)
        /// The response body exceeded `Configuration.maxResponseBodyBytes`; the transfer was aborted.
        public static let responseTooLarge = Code(.responseTooLarge)
        /// The client was shut down before the request completed.
        public static let shutdown = Code(.shutdown)
        /// The request itself is wrong (method, URL, header, timeout); sending it again cannot help.
        public static let invalidRequest = Code(.invalidRequest)

        /// A short, fixed name: safe as a metric label.
        public var description: String { self.base.rawValue }

        /// Whether an identical request might succeed later.
        fileprivate var isRetriableByDefault: Bool {
            switch self.base {
            case .timeout, .connectionRefused, .couldNotResolveHost, .transport: true
            case .responseTooLarge, .shutdown, .invalidRequest: false
            }
        }
    }

    public var code: Code
    /// Human-readable detail, curl's error buffer included; bounded (curl caps it at 256 bytes).
    public var message: String
    public var isRetriable: Bool

    /// - Parameter isRetriable: defaults to what the code implies: true for `timeout`,
    ///   `connectionRefused`, `couldNotResolveHost` and `transport`, false otherwise.
    public init(code: Code, message: String, isRetriable: Bool? = nil) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable ?? code.isRetriableByDefault
    }

    public var description: String { "HTTPClientError.\(self.code): \(self.message)" }
}

extension HTTPClientError {
    static func invalidRequest(_ message: String) -> HTTPClientError {
        HTTPClientError(code: .invalidRequest, message: message)
    }

    static let shutdown = HTTPClientError(code: .shutdown, message: "the HTTP client was shut down")
}
