import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RelayCore
import RelayService
import RelayStore

/// The platform's synchronous calls, behind the token: the CTI lookup, answered within its budget, and
/// the agent's context update.
struct CTIRoutes: Sendable {
    let app: RelayApp
    let maxBodyBytes: Int
    let logger: Logger

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.post("api/v1/genesys/lookup") { request, _ in try await lookup(request) }
        group.post("api/v1/genesys/update-context") { request, _ in try await updateContext(request) }
    }

    private func lookup(_ request: Request) async throws -> Response {
        struct Body: Decodable {
            var fromNumber: String
            var toNumber: String
            var callId: String
            var type: String
        }
        let body = try await AdminBody.read(Body.self, request, maxBytes: maxBodyBytes)
        try checkIdentifier(body.callId, field: "callId")
        guard let direction = CallDirection(rawValue: body.type) else {
            throw AdminError.badRequest("must be inbound or outbound", field: "type")
        }
        let answer = await app.lookup.answer(
            .init(fromNumber: body.fromNumber, toNumber: body.toNumber, callId: body.callId, direction: direction)
        )
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/json", HTTPField.Name("X-Relay-Answer-Source")!: answer.source.rawValue,
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body()))
        )
    }

    /// What became of an update-context request; `note` only when it is yet to apply.
    struct ContextUpdateAnswer: AdminResponse {
        var status: String
        var eventId: String
        var note: String?

        enum CodingKeys: String, CodingKey { case status, eventId, note }

        // A duplicate has no note: left out, not null.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(status, forKey: .status)
            try container.encode(eventId, forKey: .eventId)
            try container.encodeIfPresent(note, forKey: .note)
        }
    }

    /// The agent's identity switch, through the same correlation and validation as a `contextUpdate`
    /// event: it is accepted here (202) and applies only once the CRM or ERP has confirmed the new id.
    private func updateContext(_ request: Request) async throws -> EditedResponse<ContextUpdateAnswer> {
        struct Body: Decodable {
            var callId: String
            var newExternalId: String
            var reason: String
            var agentId: String?
        }
        let body = try await AdminBody.read(Body.self, request, maxBytes: maxBodyBytes)
        try checkIdentifier(body.callId, field: "callId")
        if body.reason.isEmpty { throw AdminError.badRequest("must not be empty", field: "reason") }
        let callId = body.callId
        guard let externalId = ExternalID(parsing: body.newExternalId), externalId.source != .phone else {
            throw AdminError(.unprocessableContent, "must be a CRM: or ERP: external id", field: "newExternalId")
        }
        guard try await app.store.interaction(callId: callId) != nil else {
            throw AdminError(.notFound, "no interaction with this callId", field: "callId")
        }
        // A retried request with the same Idempotency-Key is the same event: it changes nothing twice.
        let eventId =
            request.headers[HTTPField.Name("Idempotency-Key")!].map { "admin:\($0)" }
            ?? "admin:\(UUID().uuidString.lowercased())"
        let event = PlatformEvent(
            eventId: eventId,
            callId: callId,
            occurredAt: Date(),
            payload: .contextUpdate(
                ContextUpdate(newExternalId: externalId.description, reason: body.reason, agentId: body.agentId)
            )
        )
        // The agent desktop's trace, if it sent one, goes on through the update it causes.
        let traceHeaders = ["traceparent", "tracestate"].reduce(into: [String: String]()) { headers, name in
            if let field = HTTPField.Name(name), let value = request.headers[field] { headers[name] = value }
        }
        switch try await app.pipeline.submit(event, traceHeaders: traceHeaders) {
        case .accepted:
            logger.info(
                "context update accepted by the admin API",
                metadata: [
                    LogKeys.callIdMasked: "\(Masking.mask(callId))", LogKeys.externalIdMasked: "\(externalId.masked)",
                ]
            )
            return EditedResponse(
                status: .accepted,
                response: ContextUpdateAnswer(
                    status: "accepted",
                    eventId: eventId,
                    note: "applies once its system of record confirms the id"
                )
            )
        case .deferred:
            logger.info(
                "context update kept by the admin API until the call's start arrives",
                metadata: [
                    LogKeys.callIdMasked: "\(Masking.mask(callId))", LogKeys.externalIdMasked: "\(externalId.masked)",
                ]
            )
            return EditedResponse(
                status: .accepted,
                response: ContextUpdateAnswer(
                    status: "deferred",
                    eventId: eventId,
                    note: "applies once the call's start has arrived and its system of record confirms the id"
                )
            )
        case .duplicate:
            return EditedResponse(status: .ok, response: ContextUpdateAnswer(status: "duplicate", eventId: eventId))
        case .rejected(let reason):
            throw AdminError(.conflict, reason, field: "callId")
        }
    }

    private func checkIdentifier(_ value: String, field: String) throws(AdminError) {
        if value.isEmpty { throw AdminError.badRequest("must not be empty", field: field) }
        let limit = app.configuration.input.maxIdLength
        if value.count > limit { throw AdminError.badRequest("is longer than \(limit) characters", field: field) }
    }
}
