import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RelayCore
import RelayService

/// The single customer view on the admin API: the `contacts` and `journey` commands' operations,
/// behind the same token. A contact is named in the path by its id, `+number`, email or `CRM:`/`ERP:`
/// id (percent-encoded), as on the command line.
struct ContactRoutes: Sendable {
    let contacts: ContactDirectory
    /// Its memory of CRM answers is dropped with a forgotten person.
    let lookup: CustomerLookup
    let defaultRegion: String
    let maxBodyBytes: Int
    let logger: Logger

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("api/v1/contacts") { request, _ in try await search(request) }
        group.post("api/v1/contacts") { request, _ in try await create(request) }
        group.post("api/v1/contacts/import") { request, _ in try await importContacts(request) }
        group.post("api/v1/contacts/merge") { request, _ in try await merge(request) }
        group.post("api/v1/contacts/unmerge") { request, _ in try await unmerge(request) }
        group.post("api/v1/contacts/forget") { request, _ in try await forget(request) }
        group.get("api/v1/contacts/{contact}") { _, context in
            try await answer { try await contacts.show(try reference(context)) }
        }
        group.patch("api/v1/contacts/{contact}") { request, context in try await edit(request, context) }
        group.post("api/v1/contacts/{contact}/promote") { _, context in
            try await answer { try await contacts.promote(try reference(context)) }
        }
        group.get("api/v1/contacts/{contact}/journey") { request, context in
            let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 1_000
            guard limit > 0 else { throw AdminError.badRequest("must be a positive whole number", field: "limit") }
            return try await answer { try await contacts.journey(try reference(context), limit: limit) }
        }
    }

    struct ReferenceError: Error {}

    private func reference(_ context: BasicRequestContext) throws -> ContactReference {
        let raw = try context.parameters.require("contact")
        guard let decoded = raw.removingPercentEncoding,
            let reference = ContactReference(parsing: decoded, defaultRegion: defaultRegion)
        else { throw ReferenceError() }
        return reference
    }

    // MARK: Operations

    private func search(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var identifier: ContactIdentifier?
        for (field, kind) in [("phone", ContactIdentifier.Kind.phone), ("email", .email), ("externalId", .external)] {
            guard let raw = query.get(field) else { continue }
            guard let parsed = ContactIdentifier(kind: kind, raw: raw, defaultRegion: defaultRegion) else {
                throw AdminError.badRequest("is not a valid \(kind.name)", field: field)
            }
            identifier = parsed
        }
        let name = query.get("name")
        guard identifier != nil || name != nil else {
            throw AdminError.badRequest("give phone, email, externalId or name", field: "phone")
        }
        return try await answer { try await contacts.search(identifier: identifier, name: name) }
    }

    struct DraftBody: Decodable {
        var name: String?
        var phones: [String]?
        var emails: [String]?
        var externalIds: [String]?
        var attributes: [String: String]?
        var note: String?
        var author: String?

        var draft: ContactDraft {
            ContactDraft(
                name: name,
                phones: phones ?? [],
                emails: emails ?? [],
                externalIds: externalIds ?? [],
                attributes: attributes ?? [:],
                note: note
            )
        }
    }

    private func create(_ request: Request) async throws -> Response {
        let body = try await AdminBody.read(DraftBody.self, request, maxBytes: maxBodyBytes)
        return try await answer(status: .created) { try await contacts.create(body.draft) }
    }

    private func edit(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let reference: ContactReference
        do { reference = try self.reference(context) } catch { throw Self.badReference }
        let body = try await AdminBody.read(DraftBody.self, request, maxBytes: maxBodyBytes)
        return try await answer { try await contacts.edit(reference, body.draft, author: body.author ?? "api") }
    }

    private func importContacts(_ request: Request) async throws -> Response {
        let format: ContactImportFormat
        switch request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) {
        case "text/csv": format = .csv
        case "application/x-ndjson", "application/jsonl", "application/json-lines": format = .jsonl
        default:
            throw AdminError(
                .unsupportedMediaType,
                "send text/csv or application/x-ndjson (JSON lines)",
                field: "Content-Type"
            )
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBodyBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw AdminError(.contentTooLarge, "the body is larger than \(maxBodyBytes) bytes")
        }
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        let report = try await contacts.importContacts(ContactImportParser.parse(text, format: format))
        logger.notice(
            "contacts imported through the admin API",
            metadata: [
                LogKeys.importRows: "\(report.rows)", LogKeys.importCreated: "\(report.created)",
                LogKeys.importUpdated: "\(report.updated)",
                LogKeys.importRejected: "\(report.rejected.count)",
            ]
        )
        return try AdminJSON.response(
            report,
            status: report.rejected.isEmpty ? .ok : HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status")
        )
    }

    private func merge(_ request: Request) async throws -> Response {
        struct Body: Decodable {
            var absorbed: String
            var into: String
        }
        let body = try await AdminBody.read(Body.self, request, maxBytes: maxBodyBytes)
        guard let absorbed = ContactReference(parsing: body.absorbed, defaultRegion: defaultRegion) else {
            throw AdminError.badRequest("is not a contact id, number, email or external id", field: "absorbed")
        }
        guard let target = ContactReference(parsing: body.into, defaultRegion: defaultRegion) else {
            throw AdminError.badRequest("is not a contact id, number, email or external id", field: "into")
        }
        struct Merged: Encodable {
            var mergeId: String
            var contact: ContactView
        }
        return try await answer {
            let (mergeId, contact) = try await contacts.merge(absorbed, into: target)
            return Merged(mergeId: mergeId, contact: contact)
        }
    }

    private func unmerge(_ request: Request) async throws -> Response {
        struct Body: Decodable { var mergeId: String }
        let body = try await AdminBody.read(Body.self, request, maxBytes: maxBodyBytes)
        return try await answer { try await contacts.unmerge(body.mergeId) }
    }

    private func forget(_ request: Request) async throws -> Response {
        struct Body: Decodable {
            var phone: String?
            var email: String?
            var externalId: String?
        }
        let body = try await AdminBody.read(Body.self, request, maxBytes: maxBodyBytes)
        let given = [
            ("phone", body.phone, ContactIdentifier.Kind.phone), ("email", body.email, .email),
            ("externalId", body.externalId, .external),
        ]
        .compactMap { field, value, kind in value.map { (field, $0, kind) } }
        guard given.count == 1, let (field, raw, kind) = given.first else {
            throw AdminError.badRequest("give exactly one of phone, email, externalId", field: "phone")
        }
        guard let identifier = ContactIdentifier(kind: kind, raw: raw, defaultRegion: defaultRegion) else {
            throw AdminError.badRequest("is not a valid \(kind.name)", field: field)
        }
        let report = try await contacts.forget(identifier)
        // The CTI lookup remembers CRM answers (names, emails) by caller for a while: none may
        // outlive the erasure. Dropping all of them costs a CRM request per caller, once.
        lookup.forgetRememberedAnswers()
        logger.notice(
            "forgotten through the admin API",
            metadata: [
                LogKeys.forgetContacts: "\(report.contacts)", LogKeys.forgetInteractions: "\(report.interactions)",
            ]
        )
        return try AdminJSON.response(report)
    }

    // MARK: Responses

    static let badReference = AdminError.badRequest(
        "is not a contact id, number, email or external id",
        field: "contact"
    )

    /// Runs an operation and answers its result as JSON, or its refusal: 404 for an unknown contact,
    /// 409 for a rule that forbids it (curated + curated, an identifier someone else owns…), 400 for
    /// a malformed identifier.
    private func answer<Value: Encodable>(
        status: HTTPResponse.Status = .ok,
        _ operation: () async throws -> Value
    ) async throws -> Response {
        do {
            return try AdminJSON.response(try await operation(), status: status)
        } catch is ReferenceError {
            throw Self.badReference
        } catch let error as ContactError {
            let status: HTTPResponse.Status =
                switch error.code {
                case .notFound, .notMerged: .notFound
                case .invalidIdentifier: .badRequest
                default: .conflict
                }
            throw AdminError(status, error.message, code: error.code.rawValue)
        }
    }
}
