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
        host: String = "127.0.0.1", port: Int = 5672, virtualHost: String = "/", user: String = "guest",
        password: String = "guest", heartbeatSeconds: Int = 30, connectTimeout: Duration = .seconds(5),
        tls: TLS? = nil, connectionName: String = "identity-relay",
        reconnectBaseDelay: Duration = .milliseconds(100), reconnectMaxDelay: Duration = .seconds(10)
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

    /// For logs: never the password.
    public var endpointDescription: String {
        "\(tls == nil ? "amqp" : "amqps")://\(user)@\(host):\(port)\(virtualHost == "/" ? "/" : "/" + virtualHost)"
    }
}
