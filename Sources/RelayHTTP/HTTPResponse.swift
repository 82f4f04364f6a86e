/// A complete HTTP response. Every status, 4xx and 5xx included, arrives as a response: deciding
/// what a status means (retry, dead-letter, accept) is the caller's business, not the transport's.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Headers of the final response only; interim 1xx responses are dropped.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name`, compared case-insensitively as HTTP requires.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.headers.first { $0.name.lowercased() == wanted }?.value
    }
}
