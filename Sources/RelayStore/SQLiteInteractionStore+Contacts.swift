import GRDB

extension SQLiteInteractionStore: ContactStore {
    public func readContacts<T: Sendable>(_ body: @escaping @Sendable (any ContactTables) throws -> T) async throws -> T
    {
        try await writer.read { db in try body(ContactRows(db: db)) }
    }

    /// On the single writer: it never interleaves with another write, an event's contact link included.
    public func writeContacts<T: Sendable>(
        _ body: @escaping @Sendable (any ContactTables) throws -> T
    ) async throws -> T {
        try await writer.write { db in try body(ContactRows(db: db)) }
    }
}
