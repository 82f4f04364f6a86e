/// What `forget` removed, table by table.
public struct ForgetReport: Sendable, Hashable, Codable {
    public var contacts: Int
    public var identifiers: Int
    public var merges: Int
    public var interactions: Int
    public var interactionNotes: Int
    public var outboxEntries: Int
    public var overrides: Int
}
