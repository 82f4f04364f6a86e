import Foundation

/// `PUT {platform}/api/v2/customers/{customerId}`: links the platform's customer to our external id.
public struct CustomerUpdate: Sendable, Hashable {
    /// The platform's customer id: the event's `customerId`, else the external id itself.
    public var customerId: String
    public var externalId: ExternalID
    public var callId: String
    /// Derived from the causing event, so a retried or redelivered PUT is recognisable downstream.
    public var idempotencyKey: String

    /// What the CRM and ERP said, for the phase-2 update; nil for the phase-1 link.
    public var profile: CRMContact?

    public init(
        customerId: String,
        externalId: ExternalID,
        callId: String,
        idempotencyKey: String,
        profile: CRMContact? = nil
    ) {
        self.customerId = customerId
        self.externalId = externalId
        self.callId = callId
        self.idempotencyKey = idempotencyKey
        self.profile = profile
    }

    /// The idempotency keys of phase-1 links start with this, then the start event's id.
    public static let phaseOneKeyPrefix = "customer-update:"

    public func path() -> String {
        "/api/v2/customers/" + PercentEncoding.encodePathSegment(customerId)
    }

    /// `{"externalId"}` for the phase-1 link; with a profile, also `name`, `email` and `data`
    /// (DESIGN.md, "Outputs"), fields the CRM did not give left out.
    public func body() -> [UInt8] {
        let encoder = Self.bodyEncoder
        guard let profile else {
            // Phase 1's body, on every start: written directly, the bytes the encoder wrote.
            var json = JSONWriter(escapesSlashes: false, capacity: 64)
            json.beginObject()
            json.key("externalId")
            json.string(externalId.description)
            json.endObject()
            return json.bytes
        }
        return Array(try! encoder.encode(Body(externalId: externalId.description, profile: profile)))
    }

    /// Configured once and shared (every event sends a body): sorted keys, so one update is one byte string.
    static let bodyEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private struct Body: Encodable {
        var externalId: String
        var name: String?
        var email: String?
        var data: CustomerData

        init(externalId: String, profile: CRMContact) {
            self.externalId = externalId
            name = profile.name
            email = profile.email
            data = CustomerData(profile)
        }
    }
}

/// The platform customer's `data` object (DESIGN.md, "Outputs"), as the customer update and the CTI
/// lookup both send it: what the CRM and ERP said, fields they did not give left out.
public struct CustomerData: Encodable, Sendable, Hashable {
    public var crmCaseId: String?
    public var erpAccountStatus: String?
    public var loyaltyTier: String?
    public var previousInteractionCount: Int?

    public init(_ profile: CRMContact?) {
        crmCaseId = profile?.caseId
        erpAccountStatus = profile?.erpAccountStatus
        loyaltyTier = profile?.loyaltyTier
        previousInteractionCount = profile?.previousInteractionCount
    }
}

public enum PercentEncoding {
    /// Everything but RFC 3986 unreserved characters is escaped, so an id can never change the path's shape.
    public static func encodePathSegment(_ segment: String) -> String {
        // Bytes, not `String(format:)` per escape: every customer update's path goes through here.
        let hex = Array("0123456789ABCDEF".utf8)
        var result: [UInt8] = []
        result.reserveCapacity(segment.utf8.count + 8)
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.append(byte)
            default:
                result.append(contentsOf: [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}
