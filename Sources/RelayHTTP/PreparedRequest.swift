import CCurl

/// An ``HTTPRequest`` checked and translated into what libcurl needs, on the caller's thread, so
/// a bad request fails at once and the loop thread only ever sees requests it can send.
struct PreparedRequest: Sendable {
    enum Method: Sendable {
        case get
        case head
        case post
        /// Any other method: curl sends `CURLOPT_CUSTOMREQUEST` with the body (if the method has one).
        case custom(String, sendsBody: Bool)
    }

    var method: Method
    var methodName: String
    var url: String
    /// For logs: a URL's path and query can hold external ids, the host cannot.
    var host: String
    /// `Name: value` lines for `CURLOPT_HTTPHEADER`, including the suppressions below.
    var headerLines: [String]
    var body: [UInt8]
    var timeoutMilliseconds: Int

    init(_ request: HTTPRequest) throws(HTTPClientError) {
        switch request.method {
        case "GET": self.method = .get
        case "HEAD": self.method = .head
        case "POST": self.method = .post
        case "PUT", "PATCH": self.method = .custom(request.method, sendsBody: true)
        case "DELETE", "OPTIONS": self.method = .custom(request.method, sendsBody: !request.body.isEmpty)
        default:
            throw .invalidRequest("unsupported HTTP method \"\(request.method.prefix(16))\"")
        }
        self.methodName = request.method

        if !request.body.isEmpty, case .get = self.method {
            throw .invalidRequest("a GET request cannot carry a body")
        }
        if !request.body.isEmpty, case .head = self.method {
            throw .invalidRequest("a HEAD request cannot carry a body")
        }

        self.host = try Self.validatedHost(of: request.url)
        self.url = request.url

        guard request.timeout > .zero else {
            throw .invalidRequest("timeout must be positive")
        }
        self.timeoutMilliseconds = request.timeout.roundedUpMilliseconds

        var lines: [String] = []
        lines.reserveCapacity(request.headers.count + 2)
        var hasContentType = false
        var hasExpect = false
        for (name, value) in request.headers {
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                throw .invalidRequest("invalid header name")
            }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else {
                throw .invalidRequest("header \(name) has a line break in its value")
            }
            let lowercased = name.lowercased()
            hasContentType = hasContentType || lowercased == "content-type"
            hasExpect = hasExpect || lowercased == "expect"
            // curl reads "Name:" as "remove this header" and "Name;" as "send it empty".
            lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        // curl would add "Expect: 100-continue" to bodies over 1 MiB and wait up to a second for
        // an interim answer many servers never send.
        if !hasExpect {
            lines.append("Expect:")
        }
        // curl labels every POSTFIELDS body as a form unless told otherwise; better no type than a wrong one.
        if !hasContentType {
            lines.append("Content-Type:")
        }
        self.headerLines = lines
        self.body = request.body
    }

    var sendsBody: Bool {
        switch self.method {
        case .get, .head: false
        case .post: true
        case .custom(_, let sendsBody): sendsBody
        }
    }

    /// Parses with curl's own URL parser, so what is accepted here is exactly what curl will send.
    private static func validatedHost(of url: String) throws(HTTPClientError) -> String {
        guard let handle = curl_url() else {
            throw HTTPClientError(code: .transport, message: "curl_url: out of memory")
        }
        defer { curl_url_cleanup(handle) }

        guard curl_url_set(handle, CURLUPART_URL, url, 0) == CURLUE_OK else {
            throw .invalidRequest("malformed URL")
        }
        guard let scheme = Self.part(CURLUPART_SCHEME, of: handle), scheme == "http" || scheme == "https" else {
            throw .invalidRequest("only http and https URLs are supported")
        }
        guard let host = Self.part(CURLUPART_HOST, of: handle), !host.isEmpty else {
            throw .invalidRequest("URL has no host")
        }
        return host
    }

    private static func part(_ part: CURLUPart, of handle: OpaquePointer) -> String? {
        var value: UnsafeMutablePointer<CChar>? = nil
        guard curl_url_get(handle, part, &value, 0) == CURLUE_OK, let value else {
            return nil
        }
        defer { curl_free(value) }
        return String(cString: value)
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension Duration {
    /// Rounded up so a sub-millisecond timeout does not become 0, which curl reads as "no timeout".
    var roundedUpMilliseconds: Int {
        let (seconds, attoseconds) = self.components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        let (millis, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow, millis < Int64(Int.max) - 1 else {
            return Int.max
        }
        let fraction = (attoseconds + attosecondsPerMillisecond - 1) / attosecondsPerMillisecond
        return Int(millis + fraction)
    }
}
