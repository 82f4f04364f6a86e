import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// How the admin API writes JSON: keys sorted and slashes left alone, so an answer is the same bytes
/// every time (as the README shows them), dates in ISO 8601.
enum AdminJSON {
    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
        )
    }
}

/// An answer a route returns as it is: Hummingbird's `ResponseEncodable`, written by `AdminJSON`, not
/// by the request context's encoder, whose keys come in any order and whose content type differs.
protocol AdminResponse: ResponseEncodable {}

extension AdminResponse {
    func response(from request: Request, context: some RequestContext) throws -> Response {
        try AdminJSON.response(self)
    }
}
