/// Metadata keys of this adapter's log messages, in one place: each spelled once, so a search for
/// one finds every line.
enum LogKey {
    static let error = "error"
    static let batch = "batch"
}
