import CCurl

/// libcurl's process-wide setup. `curl_global_init` must run once before any other curl call
/// and is not safe to race with itself; a `static let` gives exactly-once, thread-safe
/// initialisation through the Swift runtime.
enum CurlGlobal {
    private static let initResult: CURLcode = curl_global_init(CCURL_GLOBAL_ALL)

    static func ensureInitialized() {
        precondition(
            Self.initResult == CURLE_OK,
            "curl_global_init failed with curl error \(Self.initResult.rawValue)"
        )
    }
}
