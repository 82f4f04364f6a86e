import Foundation
public import Logging
import Synchronization

/// A stand-in for the systems we do not own, for the embedded default, the demo, the tests and the
/// benchmark: the platform's customer API (`PUT /api/v2/customers/{customerId}`) and a CRM's post-call
/// webhook endpoint (`POST /crm/post-call`). It remembers every request it accepted.
public final class SimulatedPlatform: Sendable {
    /// One customer update as the platform received it.
    public struct CustomerUpdate: Sendable, Hashable {
        /// Percent-decoded, as the platform would see it.
        public var customerId: String
        public var externalId: String?
        public var idempotencyKey: String?
        public var body: String
        /// When the simulator answered it: for measuring how long effects take, e.g. after a restart.
        public var receivedAt = ContinuousClock.now
    }

    /// Decides each answer; the default accepts everything. Tests use it to inject failures.
    public typealias Behaviour = @Sendable (_ attempt: Int, _ request: RecordedRequest) -> ScriptedResponse?

    /// One post-call webhook as the CRM received it.
    public struct Webhook: Sendable, Hashable {
        public var id: String?
        public var timestamp: String?
        public var signature: String?
        public var body: [UInt8]
        /// When the simulator answered it.
        public var receivedAt = ContinuousClock.now
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    public static let postCallWebhookPath = "/crm/post-call"
    public static let crmSearchPath = "/crm/contacts"
    public static let erpAccountsPath = "/erp/accounts/"

    /// A contact of the simulated CRM, served with Salesforce-like field names (the default pointers).
    public struct CRMRecord: Sendable, Hashable {
        public var contactId: String
        public var accountId: String?
        public var name: String?
        public var email: String?
        public var caseId: String?
        public var loyaltyTier: String?
        public var interactionCount: Int?
        /// The messaging platform (`whatsapp`, …) and id the CRM finds this contact by.
        public var messagingPlatform: String?
        public var messagingId: String?

        public init(
            contactId: String,
            accountId: String? = nil,
            name: String? = nil,
            email: String? = nil,
            caseId: String? = nil,
            loyaltyTier: String? = nil,
            interactionCount: Int? = nil,
            messagingPlatform: String? = nil,
            messagingId: String? = nil
        ) {
            self.messagingPlatform = messagingPlatform
            self.messagingId = messagingId
            self.contactId = contactId
            self.accountId = accountId
            self.name = name
            self.email = email
            self.caseId = caseId
            self.loyaltyTier = loyaltyTier
            self.interactionCount = interactionCount
        }

    }

    /// A contact as the simulated CRM serves it: typed and encoded with `JSONEncoder`, rather than a
    /// `[String: Any]` through `JSONSerialization`.
    private struct ContactBody: Encodable {
        var record: CRMRecord

        enum CodingKeys: String, CodingKey {
            case id = "Id"
            case accountId = "AccountId"
            case name = "Name"
            case email = "Email"
            case caseId = "CaseId"
            case loyaltyTier = "LoyaltyTier"
            case interactionCount = "InteractionCount"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(record.contactId, forKey: .id)
            try container.encodeIfPresent(record.accountId, forKey: .accountId)
            try container.encodeIfPresent(record.name, forKey: .name)
            try container.encodeIfPresent(record.email, forKey: .email)
            try container.encodeIfPresent(record.caseId, forKey: .caseId)
            try container.encodeIfPresent(record.loyaltyTier, forKey: .loyaltyTier)
            try container.encodeIfPresent(record.interactionCount, forKey: .interactionCount)
        }
    }

    private struct SearchBody: Encodable {
        var totalSize: Int
        var records: [ContactBody]
    }

    private struct AccountBody: Encodable {
        var id: String
        var status: String
    }

    private static func jsonResponse(_ value: some Encodable) -> ScriptedResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data()
        return ScriptedResponse(
            status: 200,
            headers: [(name: "Content-Type", value: "application/json")],
            body: Array(body)
        )
    }

    public let server: LocalHTTPServer
    private let updates: Locked<[CustomerUpdate]>
    private let webhookLog: Locked<[Webhook]>
    private let directory: Locked<[String: [CRMRecord]]>
    private let accounts: Locked<[String: String]>

    private init(
        server: LocalHTTPServer,
        updates: Locked<[CustomerUpdate]>,
        webhooks: Locked<[Webhook]>,
        directory: Locked<[String: [CRMRecord]]>,
        accounts: Locked<[String: String]>
    ) {
        self.server = server
        self.updates = updates
        self.webhookLog = webhooks
        self.directory = directory
        self.accounts = accounts
    }

    /// The CRM search the relay's enrichment uses against this simulator.
    public var crmLookupURLTemplate: String { server.baseURL + Self.crmSearchPath + "?phone={phone}" }
    public var erpLookupURLTemplate: String { server.baseURL + Self.erpAccountsPath + "{accountId}" }
    public var crmContactURLTemplate: String { server.baseURL + Self.crmSearchPath + "/{contactId}" }
    public var crmEmailLookupURLTemplate: String { server.baseURL + Self.crmSearchPath + "?email={email}" }
    public var crmMessagingLookupURLTemplate: String {
        server.baseURL + Self.crmSearchPath + "?messagingId={messagingId}&platform={platform}"
    }
    public var crmNameLookupURLTemplate: String { server.baseURL + Self.crmSearchPath + "?name={name}" }

    /// Adds a contact the CRM finds by its E.164 number (several per number make an ambiguous match), by
    /// its email (any case), its messaging platform and id, its name (any case) and its id. A contact
    /// with no number: `phone: ""`.
    public func addCRMContact(phone: String, _ record: CRMRecord) {
        directory.withLock { $0[phone, default: []].append(record) }
    }

    public func setERPAccount(_ accountId: String, status: String) {
        accounts.withLock { $0[accountId] = status }
    }

    public var baseURL: String { server.baseURL }
    public var postCallWebhookURL: String { server.baseURL + Self.postCallWebhookPath }

    /// Post-call webhooks answered with a 2xx, in arrival order.
    public var webhooks: [Webhook] { webhookLog.withLock { $0 } }

    /// Customer updates answered with a 2xx, in arrival order.
    public var customerUpdates: [CustomerUpdate] { updates.withLock { $0 } }

    /// Starts the simulator on loopback. `behaviour` may return a response to send instead of the
    /// default 200; `attempt` counts the requests for the same path, from 1.
    public static func start(
        port: Int = 0,
        logger: Logger,
        behaviour: Behaviour? = nil
    ) async throws
        -> SimulatedPlatform
    {
        let updates = Locked<[CustomerUpdate]>([])
        let webhooks = Locked<[Webhook]>([])
        let directory = Locked<[String: [CRMRecord]]>([:])
        let accounts = Locked<[String: String]>([:])
        let attempts = Locked<[String: Int]>([:])
        let server = try await LocalHTTPServer.start(port: port, logger: logger) { request in
            let prefix = "/api/v2/customers/"
            let isWebhook = request.method == "POST" && request.path == postCallWebhookPath
            let isLookup =
                request.method == "GET"
                && (request.path.hasPrefix(crmSearchPath + "?") || request.path.hasPrefix(crmSearchPath + "/")
                    || request.path.hasPrefix(erpAccountsPath))
            guard isWebhook || isLookup || (request.method == "PUT" && request.path.hasPrefix(prefix)) else {
                return ScriptedResponse(status: 404, body: Array(#"{"message":"not found"}"#.utf8))
            }
            if isLookup {
                let attempt = attempts.withLock { counts in
                    counts[request.path, default: 0] += 1
                    return counts[request.path]!
                }
                if let scripted = behaviour?(attempt, request) { return scripted }
                return lookup(request, directory: directory, accounts: accounts)
            }
            // Attempts are counted per request target, and per webhook id for the one webhook path.
            let target = isWebhook ? "webhook:\(request.header("webhook-id") ?? "")" : request.path
            let attempt = attempts.withLock { counts in
                counts[target, default: 0] += 1
                return counts[target]!
            }
            let accept: @Sendable () -> Void = {
                if isWebhook {
                    webhooks.withLock {
                        $0.append(
                            Webhook(
                                id: request.header("webhook-id"),
                                timestamp: request.header("webhook-timestamp"),
                                signature: request.header("webhook-signature"),
                                body: request.body
                            )
                        )
                    }
                } else {
                    updates.withLock { $0.append(update(from: request)) }
                }
            }
            if let scripted = behaviour?(attempt, request) {
                if (200..<300).contains(scripted.status) { accept() }
                return scripted
            }
            if isWebhook {
                accept()
                return ScriptedResponse(status: 204)
            }
            guard let body = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
                body["externalId"] is String
            else {
                return ScriptedResponse(status: 400, body: Array(#"{"message":"externalId is required"}"#.utf8))
            }
            let received = update(from: request)
            updates.withLock { $0.append(received) }
            return ScriptedResponse(
                status: 200,
                headers: [(name: "Content-Type", value: "application/json")],
                body: Array(#"{"id":"\#(received.customerId.count)","version":1}"#.utf8)
            )
        }
        return SimulatedPlatform(
            server: server,
            updates: updates,
            webhooks: webhooks,
            directory: directory,
            accounts: accounts
        )
    }

    /// Waits until `count` updates have been accepted; throws naming both counts on timeout.
    public func waitForCustomerUpdates(count: Int, timeout: Duration) async throws -> [CustomerUpdate] {
        try await waitFor(count, "customer updates", timeout: timeout) { customerUpdates }
    }

    /// Waits until `count` webhooks have been accepted; throws naming both counts on timeout.
    public func waitForWebhooks(count: Int, timeout: Duration) async throws -> [Webhook] {
        try await waitFor(count, "webhooks", timeout: timeout) { webhooks }
    }

    private func waitFor<Item>(
        _ count: Int,
        _ what: String,
        timeout: Duration,
        read: () -> [Item]
    ) async throws -> [Item] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let received = read()
            if received.count >= count { return received }
            guard ContinuousClock.now < deadline else {
                throw LocalHTTPServerError(
                    message: "expected \(count) \(what) within \(timeout), received \(received.count)"
                )
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    public func stop() async {
        await server.stop()
    }

    private static func lookup(
        _ request: RecordedRequest,
        directory: Locked<[String: [CRMRecord]]>,
        accounts: Locked<[String: String]>
    ) -> ScriptedResponse {
        if request.path.hasPrefix(crmSearchPath + "?") {
            let query = URLComponents(string: "http://simulator" + request.path)?.queryItems ?? []
            let records: [CRMRecord]
            func value(_ name: String) -> String? { query.first { $0.name == name }?.value }
            if let email = value("email")?.lowercased() {
                records = directory.withLock { $0.values.joined().filter { $0.email?.lowercased() == email } }
            } else if let messagingId = value("messagingId") {
                let platform = value("platform") ?? ""
                records = directory.withLock {
                    $0.values.joined().filter { $0.messagingId == messagingId && $0.messagingPlatform == platform }
                }
            } else if let name = value("name")?.lowercased() {
                records = directory.withLock { $0.values.joined().filter { $0.name?.lowercased() == name } }
            } else {
                let phone = query.first { $0.name == "phone" }?.value ?? ""
                records = directory.withLock { $0[phone] ?? [] }
            }
            return jsonResponse(SearchBody(totalSize: records.count, records: records.map(ContactBody.init)))
        } else if request.path.hasPrefix(crmSearchPath + "/") {
            let contactId = String(request.path.dropFirst(crmSearchPath.count + 1)).removingPercentEncoding ?? ""
            guard let record = directory.withLock({ $0.values.joined().first { $0.contactId == contactId } }) else {
                return ScriptedResponse(status: 404, body: Array(#"[{"errorCode":"NOT_FOUND"}]"#.utf8))
            }
            return jsonResponse(ContactBody(record: record))
        } else {
            let accountId = String(request.path.dropFirst(erpAccountsPath.count)).removingPercentEncoding ?? ""
            guard let status = accounts.withLock({ $0[accountId] }) else {
                return ScriptedResponse(status: 404, body: Array(#"{"message":"no such account"}"#.utf8))
            }
            return jsonResponse(AccountBody(id: accountId, status: status))
        }
    }

    private static func update(from request: RecordedRequest) -> CustomerUpdate {
        let encodedId = String(request.path.dropFirst("/api/v2/customers/".count).prefix { $0 != "?" })
        let body = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]
        return CustomerUpdate(
            customerId: encodedId.removingPercentEncoding ?? encodedId,
            externalId: body?["externalId"] as? String,
            idempotencyKey: request.header("idempotency-key"),
            body: request.bodyText
        )
    }
}

/// A mutex-guarded value that closures can share (a `Mutex` itself cannot be captured by copy).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}
