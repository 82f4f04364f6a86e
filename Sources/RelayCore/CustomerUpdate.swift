import Foundation

/// `PUT {platform}/api/v2/customers/{customerId}`: links the platform's customer to our external id.
public struct CustomerUpdate: Sendable, Hashable {
    /// The platform's customer id: the event's `customerId`, else the external id itself.
    public var customerId: String
    public var externalId: ExternalID
    public var callId: String
    /// Derived from the causing event, so a retried or redelivered PUT is recognisable downstream.
    public var idempotencyKey: String

    public init(customerId: String, externalId: ExternalID, callId: String, idempotencyKey: String) {
        self.customerId = customerId
        self.externalId = externalId
        self.callId = callId
        self.idempotencyKey = idempotencyKey
    }

    public func path() -> String {
        "/api/v2/customers/" + PercentEncoding.encodePathSegment(customerId)
    }

    public func body() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try! encoder.encode(["externalId": externalId.description]))
    }
}

public enum PercentEncoding {
    /// Everything but RFC 3986 unreserved characters is escaped, so an id can never change the path's shape.
    public static func encodePathSegment(_ segment: String) -> String {
        var result = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }
}
