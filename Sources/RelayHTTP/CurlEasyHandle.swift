import CCurl

/// Owns one `CURL *` with the memory curl borrows from it while a transfer runs.
///
/// Not `Sendable`: created, configured, run and freed on the loop thread only. Handles are reused
/// across requests (`curl_easy_reset` keeps nothing request-specific), which saves allocating
/// curl's buffers per request.
final class CurlEasyHandle {
    let raw: UnsafeMutableRawPointer
    /// `CURLOPT_ERRORBUFFER`: curl writes a NUL-terminated message here on failure.
    private let errorBuffer: UnsafeMutablePointer<CChar>
    /// `CURLOPT_HTTPHEADER` is borrowed, not copied: it must outlive the transfer.
    private var headerList: UnsafeMutablePointer<curl_slist>?

    init() {
        guard let raw = curl_easy_init() else {
            fatalError("curl_easy_init returned NULL (out of memory)")
        }
        self.raw = raw
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(self.raw)
        if let headerList {
            curl_slist_free_all(headerList)
        }
        self.errorBuffer.deallocate()
    }

    /// Forgets the previous request's options and frees what it borrowed. Call only while the
    /// handle is not in a multi handle.
    func reset() {
        curl_easy_reset(self.raw)
        if let headerList {
            curl_slist_free_all(headerList)
            self.headerList = nil
        }
        self.errorBuffer[0] = 0
    }

    var errorMessage: String {
        String(cString: self.errorBuffer)
    }

    /// Every transfer gets the same error buffer; curl forgets it on reset.
    func attachErrorBuffer() throws(HTTPClientError) {
        try self.check(ccurl_easy_setopt_pointer(self.raw, CURLOPT_ERRORBUFFER, self.errorBuffer), "ERRORBUFFER")
    }

    func set(_ option: CURLoption, _ value: Int, _ name: StaticString) throws(HTTPClientError) {
        try self.check(ccurl_easy_setopt_long(self.raw, option, value), name)
    }

    /// For string options curl copies (all but `CURLOPT_POSTFIELDS`).
    func set(_ option: CURLoption, _ value: String, _ name: StaticString) throws(HTTPClientError) {
        try self.check(ccurl_easy_setopt_string(self.raw, option, value), name)
    }

    func set(_ option: CURLoption, _ value: UnsafeMutableRawPointer?, _ name: StaticString) throws(HTTPClientError) {
        try self.check(ccurl_easy_setopt_pointer(self.raw, option, value), name)
    }

    func set(_ option: CURLoption, _ value: curl_write_callback, _ name: StaticString) throws(HTTPClientError) {
        try self.check(ccurl_easy_setopt_write_callback(self.raw, option, value), name)
    }

    /// Sends `body` as the request body. `COPYPOSTFIELDS` copies it, so the Swift array need not
    /// stay pinned for the transfer; the size must be set first or curl would stop at a NUL byte.
    func setBody(_ body: [UInt8]) throws(HTTPClientError) {
        try self.check(
            ccurl_easy_setopt_off_t(self.raw, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)),
            "POSTFIELDSIZE_LARGE"
        )
        var empty: UInt8 = 0
        let code: CURLcode =
            if body.isEmpty {
                // curl would treat a NULL pointer as "read the body from the read callback".
                withUnsafeMutablePointer(to: &empty) {
                    ccurl_easy_setopt_pointer(self.raw, CURLOPT_COPYPOSTFIELDS, $0)
                }
            } else {
                body.withUnsafeBytes {
                    ccurl_easy_setopt_pointer(
                        self.raw,
                        CURLOPT_COPYPOSTFIELDS,
                        UnsafeMutableRawPointer(mutating: $0.baseAddress)
                    )
                }
            }
        try self.check(code, "COPYPOSTFIELDS")
    }

    func setHeaders(_ lines: [String]) throws(HTTPClientError) {
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for line in lines {
            guard let appended = curl_slist_append(list, line) else {
                curl_slist_free_all(list)
                throw HTTPClientError(code: .transport, message: "curl_slist_append: out of memory")
            }
            list = appended
        }
        if let headerList {
            curl_slist_free_all(headerList)
        }
        self.headerList = list
        try self.check(ccurl_easy_setopt_slist(self.raw, CURLOPT_HTTPHEADER, list), "HTTPHEADER")
    }

    var responseCode: Int {
        var code = 0
        _ = ccurl_easy_getinfo_long(self.raw, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    private func check(_ code: CURLcode, _ option: StaticString) throws(HTTPClientError) {
        guard code == CURLE_OK else {
            throw HTTPClientError(
                code: .transport,
                message: "curl_easy_setopt(CURLOPT_\(option)) failed: \(String(cString: curl_easy_strerror(code)))",
                isRetriable: false
            )
        }
    }
}
