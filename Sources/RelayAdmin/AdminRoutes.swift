import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import RelayCore
import RelayService
import RelayStore

/// The routes of the admin API. Every error is JSON, `{"error": …}`, with `field` naming the field
/// at fault when there is one.
struct AdminRoutes: Sendable {
    let app: RelayApp
    let settings: AdminServer.Settings
    let registry: PrometheusCollectorRegistry
    let deadLetters: DeadLetterQueue
    let logger: Logger

    func register(on router: Router<BasicRequestContext>) {
        router.get("healthz") { _, _ in Self.json(.ok, ["status": "up"]) }
        router.get("readyz") { _, _ in await readiness() }

        let protected = router.group().add(middleware: BearerTokenMiddleware(token: settings.token))
        ContactRoutes(
            contacts: app.contacts,
            lookup: app.lookup,
            defaultRegion: app.configuration.identity.defaultRegion,
            maxBodyBytes: settings.maxBodyBytes,
            logger: logger
        ).register(on: protected)
        DeliveryRoutes(store: app.store, maxBodyBytes: settings.maxBodyBytes).register(on: protected)
        protected.get("metrics") { _, _ in await metrics() }
        protected.post("api/v1/genesys/lookup") { request, _ in try await lookup(request) }
        protected.post("api/v1/genesys/update-context") { request, _ in try await updateContext(request) }
        protected.get("api/v1/dead-letters") { request, _ in try await listDeadLetters(request) }
        protected.get("api/v1/dead-letters/export") { request, _ in try await exportDeadLetters(request) }
        protected.get("api/v1/dead-letters/{id}") { request, context in
            try await showDeadLetter(id: context.parameters.require("id"), request)
        }
        protected.post("api/v1/dead-letters/replay") { request, _ in try await bulk(.replay, request) }
        protected.post("api/v1/dead-letters/purge") { request, _ in try await bulk(.purge, request) }
        protected.post("api/v1/dead-letters/resolve") { request, _ in try await bulk(.resolve, request) }
    }

    // MARK: Health

    private func readiness() async -> Response {
        let readiness = await app.readiness()
        var body: [String: Any] = [
            "ready": readiness.isReady, "brokerConnected": readiness.brokerConnected, "consuming": readiness.consuming,
            "storeWritable": readiness.storeWritable,
        ]
        if let storeError = readiness.storeError { body["storeError"] = storeError }
        return Self.json(readiness.isReady ? .ok : .serviceUnavailable, body)
    }

    private func metrics() async -> Response {
        await app.recordBacklog()
        // Breaker states are read when scraped: they change with time (open → half-open), not only on calls.
        func gaugeValue(_ state: CircuitBreaker.State?) -> Int {
            switch state {
            case .open: 2
            case .halfOpen: 1
            case .closed, nil: 0
            }
        }
        if let enricher = app.enricher {
            for upstream in enricher.upstreams {
                app.metrics.breakerState(upstream: upstream, value: gaugeValue(enricher.breakerState(upstream)))
            }
        }
        for target in DeliverySender.targetNames {
            app.metrics.breakerState(upstream: target, value: gaugeValue(app.dispatcher.sender.breakerState(target)))
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
        )
    }

    // MARK: CTI

    private func lookup(_ request: Request) async throws -> Response {
        struct Body: Decodable {
            var fromNumber: String
            var toNumber: String
            var callId: String
            var type: String
        }
        let body: Body
        switch try await read(Body.self, request) {
        case .success(let parsed): body = parsed
        case .failure(let error): return error.response
        }
        if let problem = checkIdentifier(body.callId, field: "callId") { return problem }
        guard let direction = CallDirection(rawValue: body.type) else {
            return Self.badRequest("must be inbound or outbound", field: "type")
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

    /// The agent's identity switch, through the same correlation and validation as a `contextUpdate`
    /// event: it is accepted here (202) and applies only once the CRM or ERP has confirmed the new id.
    private func updateContext(_ request: Request) async throws -> Response {
        struct Body: Decodable {
            var callId: String
            var newExternalId: String
            var reason: String
            var agentId: String?
        }
        let body: Body
        switch try await read(Body.self, request) {
        case .success(let parsed): body = parsed
        case .failure(let error): return error.response
        }
        if let problem = checkIdentifier(body.callId, field: "callId") { return problem }
        if body.reason.isEmpty { return Self.badRequest("must not be empty", field: "reason") }
        let callId = body.callId
        guard let externalId = ExternalID(parsing: body.newExternalId), externalId.source != .phone else {
            return Self.json(
                .unprocessableContent,
                ["error": "must be a CRM: or ERP: external id", "field": "newExternalId"]
            )
        }
        guard try await app.store.interaction(callId: callId) != nil else {
            return Self.json(.notFound, ["error": "no interaction with this callId", "field": "callId"])
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
        switch try await app.pipeline.submit(event) {
        case .accepted:
            logger.info(
                "context update accepted by the admin API",
                metadata: [
                    LogKeys.callIdMasked: "\(Masking.mask(callId))", LogKeys.externalIdMasked: "\(externalId.masked)",
                ]
            )
            return Self.json(
                .accepted,
                ["status": "accepted", "eventId": eventId, "note": "applies once its system of record confirms the id"]
            )
        case .deferred:
            logger.info(
                "context update kept by the admin API until the call's start arrives",
                metadata: [
                    LogKeys.callIdMasked: "\(Masking.mask(callId))", LogKeys.externalIdMasked: "\(externalId.masked)",
                ]
            )
            return Self.json(
                .accepted,
                [
                    "status": "deferred", "eventId": eventId,
                    "note": "applies once the call's start has arrived and its system of record confirms the id",
                ]
            )
        case .duplicate:
            return Self.json(.ok, ["status": "duplicate", "eventId": eventId])
        case .rejected(let reason):
            return Self.json(.conflict, ["error": reason, "field": "callId"])
        }
    }

    // MARK: Dead letters

    static let defaultListPage = 100
    static let maxListPage = 1_000
    static let maxExportPage = 100

    private func listDeadLetters(_ request: Request) async throws -> Response {
        let filter: DeadLetterFilter
        switch Self.filter(from: request) {
        case .success(let parsed): filter = parsed
        case .failure(let error): return error.response
        }
        // One request reads one page: at most `maxListPage` rows, never payloads.
        var page = filter
        page.limit = min(filter.limit ?? Self.defaultListPage, Self.maxListPage)
        do {
            let listing = try await deadLetters.list(page)
            var headers: HTTPFields = [
                .contentType: "application/json", HTTPField.Name("X-Relay-Scanned")!: "\(listing.scanned)",
                HTTPField.Name("X-Relay-Truncated")!: "\(listing.truncated)",
            ]
            if listing.letters.count == page.limit, let last = listing.letters.last {
                headers[HTTPField.Name("X-Relay-Next-After")!] = "\(last.sequence)"
            }
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: DeadLetter.listJSON(listing.letters, now: Date())))
            )
        } catch {
            return Self.json(.serviceUnavailable, ["error": error.message])
        }
    }

    /// One dead letter in whatever state, as `export` writes it; `decrypt=true` writes a sealed payload
    /// opened with the relay's key (logged, as any reveal of personal data), and says in
    /// `X-Relay-Payload-Sealed` why one stayed sealed.
    private func showDeadLetter(id: String, _ request: Request) async throws -> Response {
        let decrypt: Bool
        switch Self.flag("decrypt", request) {
        case .success(let value): decrypt = value
        case .failure(let error): return error.response
        }
        do {
            guard let letter = try await deadLetters.letter(id: id) else {
                return Self.json(.notFound, ["error": "no dead letter with this id", "field": "id"])
            }
            var headers: HTTPFields = [.contentType: "application/json"]
            if decrypt {
                logger.notice(
                    "dead letter payload opened through the admin API",
                    metadata: [LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)"]
                )
                if letter.payloadIsSealed {
                    headers[HTTPField.Name("X-Relay-Payload-Sealed")!] = letter.sealedPayloadReason
                }
            }
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: letter.exportJSON(decrypted: decrypt)))
            )
        } catch {
            return Self.json(.serviceUnavailable, ["error": error.message])
        }
    }

    /// A query parameter that is `true` or `false` (absent: false).
    static func flag(_ name: String, _ request: Request) -> Result<Bool, ResponseError> {
        switch request.uri.queryParameters.get(name) {
        case nil, "false": .success(false)
        case "true": .success(true)
        default: .failure(.init(badRequest("must be true or false", field: name)))
        }
    }

    private func exportDeadLetters(_ request: Request) async throws -> Response {
        let filter: DeadLetterFilter
        switch Self.filter(from: request) {
        case .success(let parsed): filter = parsed
        case .failure(let error): return error.response
        }
        let decrypt: Bool
        switch Self.flag("decrypt", request) {
        case .success(let value): decrypt = value
        case .failure(let error): return error.response
        }
        // Whole records, payloads included (up to two 64 KB bodies each): one request reads one page.
        var page = filter
        page.limit = min(filter.limit ?? Self.maxExportPage, Self.maxExportPage)
        do {
            let listing = try await deadLetters.list(page, whole: true)
            var body: [UInt8] = []
            for letter in listing.letters {
                body += letter.exportJSON(decrypted: decrypt)
                body.append(UInt8(ascii: "\n"))
            }
            if decrypt, !listing.letters.isEmpty {
                logger.notice(
                    "dead letter payloads opened through the admin API",
                    metadata: [LogKeys.deadLetterExported: "\(listing.letters.count)"]
                )
            }
            var headers: HTTPFields = [.contentType: "application/x-ndjson"]
            if listing.letters.count == page.limit, let last = listing.letters.last {
                headers[HTTPField.Name("X-Relay-Next-After")!] = "\(last.sequence)"
            }
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
            )
        } catch {
            return Self.json(.serviceUnavailable, ["error": error.message])
        }
    }

    /// Replay, purge or resolve: the body selects, as the CLI's options do. An empty selection is refused, so
    /// a bare request can never touch every dead letter; `"all": true` says so on purpose.
    private func bulk(_ operation: DeadLetterOperation, _ request: Request) async throws -> Response {
        struct Body: Decodable {
            var ids: [String]?
            var all: Bool?
            var dryRun: Bool?
            var rate: Double?
            var reasons: [String]?
            var callId: String?
            var since: String?
            var until: String?
            var limit: Int?
            /// For resolve: why the dead letters need no replay.
            var note: String?
            /// For replay: a failed delivery or lookup gets a new retry budget.
            var resetAttempts: Bool?
        }
        let body: Body
        switch try await read(Body.self, request) {
        case .success(let parsed): body = parsed
        case .failure(let error): return error.response
        }
        let ids = body.ids ?? []
        let all = body.all ?? false
        let dryRun = body.dryRun ?? false
        let rate = body.rate
        let reasons = body.reasons ?? []
        let callId = body.callId
        let limit = body.limit
        if let rate, rate <= 0 { return Self.badRequest("must be positive", field: "rate") }
        let filter: DeadLetterFilter
        do {
            filter = try DeadLetterFilter(
                checkingReasons: reasons,
                since: body.since,
                until: body.until,
                callId: callId,
                ids: ids,
                limit: limit,
                now: Date()
            )
        } catch {
            return Self.badRequest(error.problem, field: error.field == .reason ? "reasons" : error.field.rawValue)
        }
        let note = body.note?.trimmingCharacters(in: .whitespaces) ?? ""
        if operation == .resolve && note.isEmpty {
            return Self.badRequest("say why they need no replay", field: "note")
        }
        if filter.selectsEverything && !all {
            return Self.badRequest(
                "select dead letters (ids, reasons, callId, since, until, limit) or set all: true",
                field: "ids"
            )
        }
        do {
            let report: DeadLetterReport
            switch operation {
            case .replay:
                report = try await deadLetters.replay(
                    filter,
                    dryRun: dryRun,
                    rate: rate,
                    resetAttempts: body.resetAttempts ?? false
                )
            case .purge: report = try await deadLetters.purge(filter, dryRun: dryRun)
            case .resolve: report = try await deadLetters.resolve(filter, note: note, dryRun: dryRun)
            }
            logger.notice(
                "dead letters \(operation.rawValue) through the admin API",
                metadata: [
                    LogKeys.deadLetterSucceeded: "\(report.succeeded)", LogKeys.deadLetterFailed: "\(report.failed)",
                ]
            )
            return Self.json(
                report.hasFailures ? HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status") : .ok,
                Self.reportObject(report)
            )
        } catch {
            return Self.json(.serviceUnavailable, ["error": error.message])
        }
    }

    static func reportObject(_ report: DeadLetterReport) -> [String: Any] {
        [
            "operation": report.operation.rawValue, "dryRun": report.dryRun, "scanned": report.scanned,
            "succeeded": report.succeeded, "failed": report.failed, "notFound": report.notFound,
            "summary": report.summary,
            "outcomes": report.outcomes.map { outcome -> [String: Any] in
                var object: [String: Any] = [
                    "id": outcome.letter.id, "reason": outcome.letter.reason, "line": outcome.line,
                ]
                switch outcome.result {
                case .replayed: object["result"] = "replayed"
                case .purged: object["result"] = "purged"
                case .failed(let message):
                    object["result"] = "failed"
                    object["error"] = message
                case .wouldReplay: object["result"] = "wouldReplay"
                case .wouldPurge: object["result"] = "wouldPurge"
                case .resolved: object["result"] = "resolved"
                case .wouldResolve: object["result"] = "wouldResolve"
                }
                return object
            },
        ]
    }

    static func filter(from request: Request) -> Result<DeadLetterFilter, ResponseError> {
        let query = request.uri.queryParameters
        let now = Date()
        var limit: Int?
        if let text = query.get("limit") {
            guard let parsed = Int(text) else {
                return .failure(.init(badRequest("must be a positive whole number", field: "limit")))
            }
            limit = parsed
        }
        var filter: DeadLetterFilter
        do {
            filter = try DeadLetterFilter(
                checkingReasons: query.getAll("reason").map { String($0) },
                since: query.get("since"),
                until: query.get("until"),
                callId: query.get("callId"),
                limit: limit,
                now: now
            )
        } catch {
            return .failure(.init(badRequest(error.problem, field: error.field.rawValue)))
        }
        let states = query.getAll("state").map { String($0) }
        if !states.isEmpty {
            filter.states = []
            for state in states {
                if state == "any" {
                    filter.states.formUnion(StoredDeadLetter.State.allCases)
                } else if let known = StoredDeadLetter.State(rawValue: state) {
                    filter.states.insert(known)
                } else {
                    let expected = StoredDeadLetter.State.allCases.map(\.rawValue) + ["any"]
                    return .failure(
                        .init(
                            badRequest(
                                "unknown state \(state); expected one of \(expected.joined(separator: ", "))",
                                field: "state"
                            )
                        )
                    )
                }
            }
        }
        if let text = query.get("after") {
            guard let after = Int64(text), after >= 0 else {
                return .failure(
                    .init(
                        badRequest("must be the sequence of the last dead letter of the previous page", field: "after")
                    )
                )
            }
            filter.after = after
        }
        return .success(filter)
    }

    // MARK: Bodies and responses

    struct ResponseError: Error {
        let response: Response
        init(_ response: Response) { self.response = response }
    }

    private func read<Body: Decodable>(
        _ type: Body.Type,
        _ request: Request
    ) async throws -> Result<Body, ResponseError> {
        try await AdminBody.read(type, request, maxBytes: settings.maxBodyBytes)
    }

    private func checkIdentifier(_ value: String, field: String) -> Response? {
        if value.isEmpty { return Self.badRequest("must not be empty", field: field) }
        let limit = app.configuration.input.maxIdLength
        if value.count > limit { return Self.badRequest("is longer than \(limit) characters", field: field) }
        return nil
    }

    static func badRequest(_ message: String, field: String?) -> Response {
        var body: [String: Any] = ["error": message]
        if let field { body["field"] = field }
        return json(.badRequest, body)
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data(#"{"error":"unencodable response"}"#.utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}

/// Request bodies of the admin API, decoded with errors that name the field.
enum AdminBody {
    /// The body decoded, or the response that says why not: 413 when too large, 400 naming the field
    /// that is missing or of the wrong type.
    static func read<Body: Decodable>(
        _ type: Body.Type,
        _ request: Request,
        maxBytes: Int
    ) async throws
        -> Result<Body, AdminRoutes.ResponseError>
    {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return .failure(
                .init(AdminRoutes.json(.contentTooLarge, ["error": "the body is larger than \(maxBytes) bytes"]))
            )
        }
        let data = Data(buffer.readableBytesView)
        do {
            return .success(try JSONDecoder().decode(Body.self, from: data))
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            return .failure(.init(AdminRoutes.badRequest("the body must be a JSON object", field: nil)))
        } catch let DecodingError.keyNotFound(key, context) {
            return .failure(.init(AdminRoutes.badRequest("is required", field: path(context.codingPath + [key]))))
        } catch let DecodingError.valueNotFound(type, context) {
            return .failure(
                .init(AdminRoutes.badRequest("must be a \(describe(type)), not null", field: path(context.codingPath)))
            )
        } catch let DecodingError.typeMismatch(type, context) {
            return .failure(
                .init(AdminRoutes.badRequest("must be a \(describe(type))", field: path(context.codingPath)))
            )
        } catch {
            return .failure(.init(AdminRoutes.badRequest("the body is not valid JSON", field: nil)))
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
