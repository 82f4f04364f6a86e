public import Logging
import Synchronization

/// Keeps every log line in memory, rendered with its metadata, so tests can assert on what the relay
/// logs, and on what it must never log.
public struct RecordingLogHandler: LogHandler {
    public final class Store: Sendable {
        private let lines = Mutex<[String]>([])
        public init() {}
        public var all: [String] { lines.withLock { $0 } }
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace
    let store: Store
    let label: String

    public static func logger(label: String, store: Store) -> Logger {
        Logger(label: label) { label in RecordingLogHandler(store: store, label: label) }
    }

    init(store: Store, label: String) {
        self.store = store
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        store.append("\(event.level) \(label): \(event.message) \(rendered)")
    }
}
