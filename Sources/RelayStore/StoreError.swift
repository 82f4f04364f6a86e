/// A failure of the interaction store, with a code that is safe as a metric label.
///
/// Messages never hold values from the rows (call ids aside, no customer data is stored anyway), only
/// what went wrong and where.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case cannotOpen, busy, databaseFailed, corruptState, callIdMismatch
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The database file could not be opened, configured or migrated (including a schema written by a
        /// newer version of the relay).
        public static let cannotOpen = Code(.cannotOpen)
        /// Another connection held the lock past the busy timeout.
        public static let busy = Code(.busy)
        /// Any other SQLite failure (I/O error, disk full, constraint).
        public static let databaseFailed = Code(.databaseFailed)
        /// A stored interaction's JSON could not be read back.
        public static let corruptState = Code(.corruptState)
        /// A transition returned an interaction for another call than the one it was applied to.
        public static let callIdMismatch = Code(.callIdMismatch)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    /// Whether the same operation can succeed later without anyone changing anything.
    public var isRetriable: Bool { code == .busy }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
