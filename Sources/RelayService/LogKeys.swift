/// Metadata keys of the relay's log lines, kept in one place so dashboards can rely on them.
/// Values under `*.masked` keys have passed through `Masking.mask`.
public enum LogKeys {
    public static let callIdMasked = "call.id.masked"
    public static let eventId = "event.id"
    public static let eventType = "event.type"
    public static let externalIdMasked = "external.id.masked"
    public static let deadLetterId = "deadletter.id"
    public static let deadLetterReason = "deadletter.reason"
    public static let httpStatus = "http.status"
    public static let httpMethod = "http.method"
    public static let attempt = "delivery.attempt"
    public static let error = "error"
    public static let reason = "reason"
    public static let linkCount = "links.count"
}
