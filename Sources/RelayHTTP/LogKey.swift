/// Metadata keys of this adapter's log messages, in one place. Never add the URL path, query or
/// body: they can hold external ids and personal data.
enum LogKey {
    static let method = "http.method"
    static let host = "http.host"
    static let status = "http.status"
    static let durationMilliseconds = "http.duration_ms"
    static let error = "http.error"
    static let curlError = "http.error.detail"
    static let failedOnShutdown = "http.failed_on_shutdown"
}
