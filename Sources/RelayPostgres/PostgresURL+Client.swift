public import PostgresNIO

extension PostgresURL {
    /// The client configuration for this server, one for the relay, its tools and its tests. Without
    /// TLS: the store does not speak it to PostgreSQL yet.
    public var clientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: .disable
        )
    }
}
