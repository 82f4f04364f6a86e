import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RelayService
import RelayStore

/// The dead letters on the admin API, behind the token: what `dead-letters list|show|export|replay|purge|
/// resolve` show and do, a page at a time, read from the store.
struct DeadLetterRoutes: Sendable {
    let deadLetters: DeadLetterQueue
    let maxBodyBytes: Int
    let logger: Logger

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("api/v1/dead-letters") { request, _ in try await list(request) }
        group.get("api/v1/dead-letters/export") { request, _ in try await export(request) }
        group.get("api/v1/dead-letters/{id}") { request, context in
            try await show(id: context.parameters.require("id"), request)
        }
        group.post("api/v1/dead-letters/replay") { request, _ in try await bulk(.replay, request) }
        group.post("api/v1/dead-letters/purge") { request, _ in try await bulk(.purge, request) }
        group.post("api/v1/dead-letters/resolve") { request, _ in try await bulk(.resolve, request) }
    }

    static let defaultListPage = 100
    static let maxListPage = 1_000
    static let maxExportPage = 100

    private func list(_ request: Request) async throws -> Response {
        let filter = try Self.filter(from: request)
        // One request reads one page: at most `maxListPage` rows, never payloads.
        var page = filter
        page.limit = min(filter.limit ?? Self.defaultListPage, Self.maxListPage)
        let listing: DeadLetterListing
        do {
            listing = try await deadLetters.list(page)
        } catch {
            throw AdminError(.serviceUnavailable, error.message)
        }
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
    }

    /// One dead letter in whatever state, as `export` writes it; `decrypt=true` writes a sealed payload
    /// opened with the relay's key (logged, as any reveal of personal data), and says in
    /// `X-Relay-Payload-Sealed` why one stayed sealed.
    private func show(id: String, _ request: Request) async throws -> Response {
        let decrypt = try Self.flag("decrypt", request)
        let found: DeadLetter?
        do {
            found = try await deadLetters.letter(id: id)
        } catch {
            throw AdminError(.serviceUnavailable, error.message)
        }
        guard let letter = found else {
            throw AdminError(.notFound, "no dead letter with this id", field: "id")
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
    }

    /// A query parameter that is `true` or `false` (absent: false).
    static func flag(_ name: String, _ request: Request) throws(AdminError) -> Bool {
        switch request.uri.queryParameters.get(name) {
        case nil, "false": false
        case "true": true
        default: throw AdminError.badRequest("must be true or false", field: name)
        }
    }

    private func export(_ request: Request) async throws -> Response {
        let filter = try Self.filter(from: request)
        let decrypt = try Self.flag("decrypt", request)
        // Whole records, payloads included (up to two 64 KB bodies each): one request reads one page.
        var page = filter
        page.limit = min(filter.limit ?? Self.maxExportPage, Self.maxExportPage)
        let listing: DeadLetterListing
        do {
            listing = try await deadLetters.list(page, whole: true)
        } catch {
            throw AdminError(.serviceUnavailable, error.message)
        }
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
    }

    /// Replay, purge or resolve: the body selects, as the CLI's options do. An empty selection is refused, so
    /// a bare request can never touch every dead letter; `"all": true` says so on purpose.
    private func bulk(_ operation: DeadLetterOperation, _ request: Request) async throws -> EditedResponse<Report> {
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
        let body = try await AdminBody.read(Body.self, request, maxBytes: maxBodyBytes)
        let ids = body.ids ?? []
        let all = body.all ?? false
        let dryRun = body.dryRun ?? false
        let rate = body.rate
        let reasons = body.reasons ?? []
        let callId = body.callId
        let limit = body.limit
        if let rate, rate <= 0 { throw AdminError.badRequest("must be positive", field: "rate") }
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
            throw AdminError.badRequest(error.problem, field: error.field == .reason ? "reasons" : error.field.rawValue)
        }
        let note = body.note?.trimmingCharacters(in: .whitespaces) ?? ""
        if operation == .resolve && note.isEmpty {
            throw AdminError.badRequest("say why they need no replay", field: "note")
        }
        if filter.selectsEverything && !all {
            throw AdminError.badRequest(
                "select dead letters (ids, reasons, callId, since, until, limit) or set all: true",
                field: "ids"
            )
        }
        let report: DeadLetterReport
        do {
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
        } catch {
            throw AdminError(.serviceUnavailable, error.message)
        }
        logger.notice(
            "dead letters \(operation.rawValue) through the admin API",
            metadata: [
                LogKeys.deadLetterSucceeded: "\(report.succeeded)", LogKeys.deadLetterFailed: "\(report.failed)",
            ]
        )
        return EditedResponse(
            status: report.hasFailures ? HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status") : .ok,
            response: Report(report)
        )
    }

    /// A bulk operation's report: the counts, the summary line and each dead letter's outcome.
    struct Report: AdminResponse {
        struct Outcome: Encodable {
            var id: String
            var reason: String
            var line: String
            var result: String
            var error: String?

            enum CodingKeys: String, CodingKey { case id, reason, line, result, error }

            // `error` only for a failed one: left out, not null, otherwise.
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
                try container.encode(reason, forKey: .reason)
                try container.encode(line, forKey: .line)
                try container.encode(result, forKey: .result)
                try container.encodeIfPresent(error, forKey: .error)
            }
        }

        var operation: String
        var dryRun: Bool
        var scanned: Int
        var succeeded: Int
        var failed: Int
        var notFound: [String]
        var summary: String
        var outcomes: [Outcome]

        init(_ report: DeadLetterReport) {
            operation = report.operation.rawValue
            dryRun = report.dryRun
            scanned = report.scanned
            succeeded = report.succeeded
            failed = report.failed
            notFound = report.notFound
            summary = report.summary
            outcomes = report.outcomes.map { outcome in
                var result: String
                var error: String?
                switch outcome.result {
                case .replayed: result = "replayed"
                case .purged: result = "purged"
                case .failed(let message):
                    result = "failed"
                    error = message
                case .wouldReplay: result = "wouldReplay"
                case .wouldPurge: result = "wouldPurge"
                case .resolved: result = "resolved"
                case .wouldResolve: result = "wouldResolve"
                }
                return Outcome(
                    id: outcome.letter.id,
                    reason: outcome.letter.reason,
                    line: outcome.line,
                    result: result,
                    error: error
                )
            }
        }
    }

    static func filter(from request: Request) throws(AdminError) -> DeadLetterFilter {
        let query = request.uri.queryParameters
        let now = Date()
        var limit: Int?
        if let text = query.get("limit") {
            guard let parsed = Int(text) else {
                throw AdminError.badRequest("must be a positive whole number", field: "limit")
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
            throw AdminError.badRequest(error.problem, field: error.field.rawValue)
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
                    throw AdminError.badRequest(
                        "unknown state \(state); expected one of \(expected.joined(separator: ", "))",
                        field: "state"
                    )
                }
            }
        }
        if let text = query.get("after") {
            guard let after = Int64(text), after >= 0 else {
                throw AdminError.badRequest(
                    "must be the sequence of the last dead letter of the previous page",
                    field: "after"
                )
            }
            filter.after = after
        }
        return filter
    }
}
