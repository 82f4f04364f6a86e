import HTTPTypes
import Hummingbird

/// A refusal, thrown from a route and answered by the router, as Hummingbird's `HTTPError` is, but in
/// this API's documented shape rather than `HTTPError`'s `{"error": {"message": …}}`: `{"error": …}`,
/// with `field` naming the field at fault, or `code` the contact rule that refused, when there is one.
struct AdminError: HTTPResponseError, Sendable {
    let status: HTTPResponse.Status
    let message: String
    let field: String?
    let code: String?

    init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
        self.code = code
    }

    static func badRequest(_ message: String, field: String?) -> AdminError {
        AdminError(.badRequest, message, field: field)
    }

    private struct Body: Encodable {
        var error: String
        var field: String?
        var code: String?

        enum CodingKeys: String, CodingKey { case error, field, code }

        // Left out, not null, when there is none: the shape the README documents.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(error, forKey: .error)
            try container.encodeIfPresent(field, forKey: .field)
            try container.encodeIfPresent(code, forKey: .code)
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try AdminJSON.response(Body(error: message, field: field, code: code), status: status)
    }
}
