import Foundation
import Hummingbird
import NIOCore

/// Request bodies of the admin API, decoded with errors that name the field.
enum AdminBody {
    /// The body decoded, or the refusal that says why not: 413 when too large, 400 naming the field
    /// that is missing or of the wrong type.
    static func read<Body: Decodable>(
        _ type: Body.Type,
        _ request: Request,
        maxBytes: Int
    ) async throws -> Body {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw AdminError(.contentTooLarge, "the body is larger than \(maxBytes) bytes")
        }
        let data = Data(buffer.readableBytesView)
        do {
            return try JSONDecoder().decode(Body.self, from: data)
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            throw AdminError.badRequest("the body must be a JSON object", field: nil)
        } catch let DecodingError.keyNotFound(key, context) {
            throw AdminError.badRequest("is required", field: path(context.codingPath + [key]))
        } catch let DecodingError.valueNotFound(type, context) {
            throw AdminError.badRequest("must be a \(describe(type)), not null", field: path(context.codingPath))
        } catch let DecodingError.typeMismatch(type, context) {
            throw AdminError.badRequest("must be a \(describe(type))", field: path(context.codingPath))
        } catch {
            throw AdminError.badRequest("the body is not valid JSON", field: nil)
        }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "string"
        case is Bool.Type: "boolean"
        case is Int.Type, is Double.Type: "number"
        case is [String].Type: "array of strings"
        default: "\(type)"
        }
    }
}
