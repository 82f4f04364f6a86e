import CCurl

/// A request handed from a caller to the loop thread, waiting in the mailbox.
struct PendingTransfer: Sendable {
    var id: UInt64
    var request: PreparedRequest
    var continuation: CheckedContinuation<HTTPResponse, any Error>
}

/// One request while curl runs it: the easy handle, the caller to resume, and the response as
/// it streams in through curl's callbacks.
///
/// Not `Sendable`: lives on the loop thread only. curl's callbacks reach it through an unretained
/// pointer (`CURLOPT_WRITEDATA`/`HEADERDATA`); the loop's table of active transfers keeps it
/// alive until its handle has left the multi handle, after which curl no longer calls back.
final class CurlTransfer {
    let id: UInt64
    let easy: CurlEasyHandle
    let request: PreparedRequest
    let continuation: CheckedContinuation<HTTPResponse, any Error>
    let startedAt: ContinuousClock.Instant
    private let maxBodyBytes: Int

    private(set) var headers: [(name: String, value: String)] = []
    private(set) var body: [UInt8] = []
    /// Set when the write callback aborted the transfer because of ``maxBodyBytes``.
    private(set) var bodyTooLarge = false

    init(pending: PendingTransfer, easy: CurlEasyHandle, maxBodyBytes: Int) {
        self.id = pending.id
        self.easy = easy
        self.request = pending.request
        self.continuation = pending.continuation
        self.startedAt = .now
        self.maxBodyBytes = maxBodyBytes
    }

    /// Sets every option for this request on a freshly reset handle.
    func configure(connectTimeoutMilliseconds: Int) throws(HTTPClientError) {
        let easy = self.easy
        try easy.attachErrorBuffer()
        // Without it curl uses SIGALRM for DNS timeouts, which is unsafe with several threads.
        try easy.set(CURLOPT_NOSIGNAL, 1, "NOSIGNAL")
        try easy.set(CURLOPT_URL, self.request.url, "URL")
        try easy.set(CURLOPT_PROTOCOLS_STR, "http,https", "PROTOCOLS_STR")
        // An empty proxy overrides http_proxy/HTTPS_PROXY from the environment: upstreams are
        // configured explicitly, and loopback must never take a detour through a proxy.
        try easy.set(CURLOPT_PROXY, "", "PROXY")
        // Redirects are answers for the caller to judge, not hops to follow silently.
        try easy.set(CURLOPT_FOLLOWLOCATION, 0, "FOLLOWLOCATION")
        try easy.set(CURLOPT_TIMEOUT_MS, self.request.timeoutMilliseconds, "TIMEOUT_MS")
        try easy.set(CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMilliseconds, "CONNECTTIMEOUT_MS")
        // Lets idle keep-alive connections notice a dead peer instead of failing the next request.
        try easy.set(CURLOPT_TCP_KEEPALIVE, 1, "TCP_KEEPALIVE")

        switch self.request.method {
        case .get:
            try easy.set(CURLOPT_HTTPGET, 1, "HTTPGET")
        case .head:
            try easy.set(CURLOPT_NOBODY, 1, "NOBODY")
        case .post:
            try easy.setBody(self.request.body)
        case .custom(let name, let sendsBody):
            if sendsBody {
                try easy.setBody(self.request.body)
            }
            try easy.set(CURLOPT_CUSTOMREQUEST, name, "CUSTOMREQUEST")
        }
        try easy.setHeaders(self.request.headerLines)

        let me = Unmanaged.passUnretained(self).toOpaque()
        try easy.set(CURLOPT_WRITEDATA, me, "WRITEDATA")
        try easy.set(
            CURLOPT_WRITEFUNCTION,
            { buffer, size, count, context in
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                guard transfer.appendBody(UnsafeRawBufferPointer(start: buffer, count: length)) else {
                    return CCURL_WRITEFUNC_ERROR
                }
                return length
            },
            "WRITEFUNCTION"
        )
        try easy.set(CURLOPT_HEADERDATA, me, "HEADERDATA")
        try easy.set(
            CURLOPT_HEADERFUNCTION,
            { buffer, size, count, context in
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: buffer, count: length))
                return length
            },
            "HEADERFUNCTION"
        )
    }

    /// The response body limit is enforced here so an oversized body is never held in memory.
    private func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard self.body.count + bytes.count <= self.maxBodyBytes else {
            self.bodyTooLarge = true
            return false
        }
        self.body.append(contentsOf: bytes)
        return true
    }

    /// curl hands over one complete header line per call, status lines included.
    private func receiveHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        let line = String(decoding: bytes, as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A new status line: anything collected so far belonged to an interim 1xx response.
            self.headers.removeAll(keepingCapacity: true)
            return
        }
        guard let colon = line.firstIndex(of: ":") else {
            return  // the blank line ending the block
        }
        let name = line[..<colon]
        let value = line[line.index(after: colon)...].trimmingHTTPWhitespace()
        self.headers.append((name: String(name), value: value))
    }

    /// What the finished transfer amounts to for the caller.
    func outcome(_ result: CURLcode) -> Result<HTTPResponse, HTTPClientError> {
        if result == CURLE_OK {
            return .success(HTTPResponse(status: self.easy.responseCode, headers: self.headers, body: self.body))
        }
        if self.bodyTooLarge {
            return .failure(
                HTTPClientError(
                    code: .responseTooLarge,
                    message: "response body exceeds the limit of \(self.maxBodyBytes) bytes"
                )
            )
        }
        return .failure(HTTPClientError(curlCode: result, errorBuffer: self.easy.errorMessage))
    }
}

extension Substring {
    fileprivate func trimmingHTTPWhitespace() -> String {
        // "\r\n" is a single Character, which `isNewline` matches and `== "\r"` would not.
        let isWhitespace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0.isNewline }
        guard let first = self.firstIndex(where: { !isWhitespace($0) }),
            let last = self.lastIndex(where: { !isWhitespace($0) })
        else {
            return ""
        }
        return String(self[first...last])
    }
}

extension HTTPClientError {
    init(curlCode: CURLcode, errorBuffer: String) {
        let code: Code =
            switch curlCode {
            case CURLE_OPERATION_TIMEDOUT: .timeout
            case CURLE_COULDNT_CONNECT: .connectionRefused
            case CURLE_COULDNT_RESOLVE_HOST: .couldNotResolveHost
            case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: .invalidRequest
            default: .transport
            }
        // The error buffer is more specific ("Failed to connect to 127.0.0.1 port 9: Connection
        // refused"); curl leaves it empty for some failures, so fall back to the generic text.
        let detail = errorBuffer.isEmpty ? String(cString: curl_easy_strerror(curlCode)) : errorBuffer
        self.init(code: code, message: "\(detail) (curl error \(curlCode.rawValue))")
    }
}
