import Foundation
import HTTPTypes
import Hummingbird
import RelayService
import RelayStore

/// The outbox on the admin API: what `deliveries list|show|retry` shows and does, behind the token.
struct DeliveryRoutes: Sendable {
    let store: any InteractionStore
    let maxBodyBytes: Int

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("api/v1/deliveries") { request, _ in try await list(request) }
        group.post("api/v1/deliveries/retry") { request, _ in try await retry(request) }
        group.get("api/v1/deliveries/{id}") { _, context in
            guard let id = Int64(try context.parameters.require("id")) else {
                throw AdminError.badRequest("must be an outbox entry id (a whole number)", field: "id")
            }
            guard let entry = try await store.outboxEntry(id: id) else {
                throw AdminError(.notFound, "no outbox entry \(id)")
            }
            return try AdminJSON.response(OutboxEntryView(entry, now: Date()))
        }
    }

    struct Listing: Encodable {
        struct Kind: Encodable {
            var pending: Int
            var due: Int
            var retrying: Int
            var oldestPendingAgeSeconds: Double?
        }

        var kinds: [String: Kind]
        var entries: [OutboxEntryView]
    }

    private func list(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        let state = parameters.get("state") ?? "pending"
        guard let parsedState = OutboxQuery.State(rawValue: state) else {
            throw AdminError.badRequest(
                "must be one of \(OutboxQuery.State.allCases.map(\.rawValue).joined(separator: ", "))",
                field: "state"
            )
        }
        let kind = parameters.get("kind")
        if let rejection = OutboxKind.rejection(of: kind) { throw AdminError.badRequest(rejection, field: "kind") }
        let limit = parameters.get("limit").flatMap(Int.init) ?? 100
        guard (1...10_000).contains(limit) else { throw AdminError.badRequest("must be 1 to 10000", field: "limit") }
        let now = Date()
        let summary = try await store.outboxSummary(now: now)
        let entries = try await store.outboxEntries(
            OutboxQuery(state: parsedState, kind: kind, callId: parameters.get("callId"), limit: limit)
        )
        return try AdminJSON.response(
            Listing(
                kinds: summary.kinds.mapValues { counts in
                    Listing.Kind(
                        pending: counts.pending,
                        due: counts.due,
                        retrying: counts.retrying,
                        oldestPendingAgeSeconds: counts.oldestCreatedAt.map { max(0, now.timeIntervalSince($0)) }
                    )
                },
                entries: entries.map { OutboxEntryView($0, now: now) }
            )
        )
    }

    private struct RetryBody: Decodable {
        var ids: [Int64]?
        var all: Bool?
        var kind: String?
        var callId: String?
        var limit: Int?
        var dryRun: Bool?
    }

    private func retry(_ request: Request) async throws -> Response {
        let body = try await AdminBody.read(RetryBody.self, request, maxBytes: maxBodyBytes)
        let selection: OutboxRetry.Selection
        switch (body.ids, body.all ?? false) {
        case (let ids?, false) where !ids.isEmpty:
            selection = .ids(ids)
        case (nil, true):
            if let rejection = OutboxKind.rejection(of: body.kind) {
                throw AdminError.badRequest(rejection, field: "kind")
            }
            selection = .query(OutboxQuery(kind: body.kind, callId: body.callId, limit: max(1, body.limit ?? 10_000)))
        default:
            throw AdminError.badRequest("name entries in ids, or set all (with kind, callId), not both", field: "ids")
        }
        let report = try await OutboxRetry(store: store).run(selection, dryRun: body.dryRun ?? false)
        return try AdminJSON.response(report)
    }
}
