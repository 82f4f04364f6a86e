public import Foundation

public struct StoredMerge: Sendable, Hashable {
    public var id: String
    public var targetId: String
    public var absorbedId: String
    public var mergedAt: Date
    public var undoneAt: Date?
    /// The sealed `MergeRecord`, snapshots and all.
    public var snapshot: [UInt8]

    public init(id: String, targetId: String, absorbedId: String, mergedAt: Date, undoneAt: Date?, snapshot: [UInt8]) {
        self.id = id
        self.targetId = targetId
        self.absorbedId = absorbedId
        self.mergedAt = mergedAt
        self.undoneAt = undoneAt
        self.snapshot = snapshot
    }
}
