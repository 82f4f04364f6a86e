/// One outbound HTTP request, as the adapter's callers describe it.
///
/// A plain value: nothing is validated until ``CurlHTTPClient/execute(_:)``, which rejects an
/// unknown method, a malformed URL or a header with a line break as
/// ``HTTPClientError/Code/invalidRequest`` before anything reaches the network.
public struct HTTPRequest: Sendable {
    /// "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" or "OPTIONS", upper case.
    public var method: String
    /// Absolute `http://` or `https://` URL.
    public var url: String
    /// Sent in order; a name may repeat.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Limit for the whole transfer, connect and queueing for a free connection included.
    public var timeout: Duration

    public init(
        method: String,
        url: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        timeout: Duration = .seconds(10)
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}
