import Foundation

/// Where and how to reach the broker.
public struct AMQPConfiguration: Sendable, Hashable {
    public struct TLS: Sendable, Hashable {
        /// PEM file of the CA that signed the broker's certificate; nil trusts the system store.
        public var caCertificatePath: String?
        public var verifyPeer: Bool
        public var verifyHostname: Bool

        public init(caCertificatePath: String? = nil, verifyPeer: Bool = true, verifyHostname: Bool = true) {
            self.caCertificatePath = caCertificatePath
            self.verifyPeer = verifyPeer
            self.verifyHostname = verifyHostname
        }
    }

    public var host: String
    public var port: Int
    /// The other nodes of a RabbitMQ cluster, tried in turn after `host:port` when the node in use is
    /// unreachable or goes away.
    public var failoverEndpoints: [Endpoint] = []
    public var virtualHost: String
    public var user: String
    public var password: String
    /// Seconds between heartbeats; 0 turns them off (not advised: a dead peer then goes unnoticed).
    public var heartbeatSeconds: Int
    public var connectTimeout: Duration
    public var tls: TLS?
    /// Shown in the broker's connection list, so an operator can tell the relay's connections apart.
    public var connectionName: String
    /// Waits between reconnection attempts grow from the first to the second value.
    public var reconnectBaseDelay: Duration
    public var reconnectMaxDelay: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 5672,
        virtualHost: String = "/",
        user: String = "guest",
        password: String = "guest",
        heartbeatSeconds: Int = 30,
        connectTimeout: Duration = .seconds(5),
        tls: TLS? = nil,
        connectionName: String = "identity-relay",
        reconnectBaseDelay: Duration = .milliseconds(100),
        reconnectMaxDelay: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.virtualHost = virtualHost
        self.user = user
        self.password = password
        self.heartbeatSeconds = heartbeatSeconds
        self.connectTimeout = connectTimeout
        self.tls = tls
        self.connectionName = connectionName
        self.reconnectBaseDelay = reconnectBaseDelay
        self.reconnectMaxDelay = reconnectMaxDelay
    }

    /// A broker node's address.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port`, or `host` alone for `defaultPort`; nil when it is neither.
        public init?(parsing text: String, defaultPort: Int) {
            let text = text.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { return nil }
            if let colon = text.lastIndex(of: ":") {
                guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port),
                    colon != text.startIndex
                else { return nil }
                self.init(host: String(text[..<colon]), port: port)
            } else {
                self.init(host: text, port: defaultPort)
            }
        }

        public var description: String { "\(host):\(port)" }
    }

    /// Every node, in the order tried: `host:port` first, then `failoverEndpoints`.
    public var endpoints: [Endpoint] { [Endpoint(host: host, port: port)] + failoverEndpoints }

    /// This configuration aimed at one of its endpoints.
    public func aimed(at endpoint: Endpoint) -> AMQPConfiguration {
        var aimed = self
        aimed.host = endpoint.host
        aimed.port = endpoint.port
        return aimed
    }

    /// For logs: never the password.
    public var endpointDescription: String {
        "\(tls == nil ? "amqp" : "amqps")://\(user)@\(host):\(port)\(virtualHost == "/" ? "/" : "/" + virtualHost)"
    }
}
