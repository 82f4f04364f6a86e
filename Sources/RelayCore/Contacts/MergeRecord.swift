public import Foundation

/// One merge, with both contacts exactly as they were before it: what `unmerge` puts back.
public struct MergeRecord: Sendable, Hashable, Codable {
    public var id: String
    public var targetId: String
    public var absorbedId: String
    public var mergedAt: Date
    public var undoneAt: Date?
    public var targetBefore: Contact
    public var absorbedBefore: Contact

    public init(id: String, targetBefore: Contact, absorbedBefore: Contact, mergedAt: Date) {
        self.id = id
        self.targetId = targetBefore.id
        self.absorbedId = absorbedBefore.id
        self.mergedAt = mergedAt
        self.targetBefore = targetBefore
        self.absorbedBefore = absorbedBefore
    }
}
