import ArgumentParser
import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayService
import RelaySimulator
import RelayStore
import ServiceLifecycle
import UnixSignals

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the relay end to end against the local broker and a simulated platform, and show what came out.",
        discussion: """
            Starts the relay and a simulated platform API in this process, publishes a handful of call \
            starts (and one malformed event) to platform.events on the configured broker, waits for the \
            customer updates and the dead letter, prints them, and stops. Needs a running broker: \
            scripts/demo starts one.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Option(help: "How many calls to publish.")
    var calls = 5

    @Option(help: "Seconds to wait for the results.")
    var timeout = 30

    @Flag(help: "Show the relay's log lines (on standard error).")
    var verbose = false

    func validate() throws {
        guard (1...10_000).contains(calls) else { throw ValidationError("--calls must be between 1 and 10000") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        var (configuration, _) = try options.load()
        bootstrapLogging(level: verbose ? configuration.log.level : "error")
        let logger = Logger(label: "identity-relay")
        var notes: [String] = []
        if configuration.identity.phoneHashKey == nil {
            configuration.identity.phoneHashKey = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255))
            }.joined()
            notes.append("no identity.phoneHashKey set: this demo uses a random one, so its PHONE: ids are one-off")
        }
        if configuration.privacy.encryptionKey == nil {
            configuration.privacy.encryptionKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
                .base64EncodedString()
            notes.append("no privacy.encryptionKey set: this demo uses a random one")
        }
        // The demo always talks to the simulator, on a free port, whatever the configuration names.
        configuration.platform.baseURL = ""
        configuration.crm.postCallWebhookURL = ""
        let resolved = try await ResolvedEndpoints.resolve(
            &configuration,
            simulatorPort: 0,
            logger: Logger(label: "simulator")
        )
        let platform = resolved.simulator!
        notes += resolved.notes.filter { $0.contains("signingSecret") }
        let app: RelayApp
        do {
            app = try RelayApp(configuration: configuration, endpoints: resolved.endpoints, logger: logger)
        } catch {
            await platform.stop()
            throw reportConfigurationFailure(.init(error: error))
        }
        for index in 1...calls where DemoCall.isKnownToCRM(index) {
            platform.addCRMContact(
                phone: DemoCall.number(index),
                .init(
                    contactId: String(format: "003DEMO%04d", index),
                    accountId: "ACC-\(index)",
                    name: "Demo Customer \(index)",
                    email: "customer\(index)@example.com",
                    caseId: "CASE-\(1000 + index)",
                    loyaltyTier: index == 1 ? "Gold" : "Silver",
                    interactionCount: index
                )
            )
            platform.setERPAccount("ACC-\(index)", status: index == 1 ? "Active" : "OnHold")
        }
        // The other channels' rules: a web chat whose address the CRM does not know but whose number it
        // does, and a WhatsApp conversation the CRM knows by its messaging id.
        platform.addCRMContact(
            phone: DemoChannels.chatNumber,
            .init(
                contactId: "003DEMOCHAT",
                name: "Demo Chatter",
                email: "chatter@crm.example.com",
                loyaltyTier: "Silver"
            )
        )
        platform.addCRMContact(
            phone: "",
            .init(
                contactId: "003DEMOMSG",
                name: "Demo Messenger",
                loyaltyTier: "Gold",
                messagingPlatform: "whatsapp",
                messagingId: DemoChannels.whatsAppId
            )
        )
        print("identity-relay demo")
        print("  broker:             \(configuration.amqp.connection.endpointDescription)")
        print("  simulated platform: \(platform.baseURL)")
        print("  simulated CRM:      \(platform.postCallWebhookURL)")
        print("  store:              \(configuration.store.path)")
        for note in notes { print("  note: \(note)") }

        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { Task { await group.triggerGracefulShutdown() } }
            do {
                try await app.amqp.waitUntilConnected(timeout: .seconds(timeout))
            } catch {
                throw ValidationError(
                    "cannot reach RabbitMQ at \(configuration.amqp.connection.endpointDescription): \(error). "
                        + "Start it with scripts/broker start (scripts/demo does)."
                )
            }
            let runID = String(UUID().uuidString.prefix(8)).lowercased()
            let samples = (1...calls).map { DemoCall(index: $0, runID: runID) }
            for sample in samples {
                for (type, body) in sample.events {
                    try await app.amqp.publish(
                        OutboundMessage(exchange: app.names.eventsExchange, routingKey: type, body: body)
                    )
                }
            }
            let malformed = Array(
                #"{"eventId":"demo-\#(runID)-bad","type":"callStarted","callId":"demo-\#(runID)-bad","occurredAt":"2026-11-24T10:00:00Z","toNumber":"+15550100000","direction":"inbound"}"#
                    .utf8
            )
            try await app.amqp.publish(
                OutboundMessage(exchange: app.names.eventsExchange, routingKey: "callStarted", body: malformed)
            )
            let channels = DemoChannels(runID: runID)
            for (type, body) in channels.events {
                try await app.amqp.publish(
                    OutboundMessage(exchange: app.names.eventsExchange, routingKey: type, body: body)
                )
            }
            print(
                "\npublished \(calls) calls (start, end, wrap-up), a web chat, a WhatsApp message and 1 malformed event "
                    + "to \(app.names.eventsExchange)"
            )

            // Phase 1 for every call, phase 2 for the callers the simulated CRM knows: waited for by key, as
            // the other channels' updates arrive among them.
            let expectedKeys = Set(
                samples.map { "customer-update:\($0.eventId)" }
                    + samples.filter(\.knownToCRM).map { "enrichment:\($0.eventId)" }
            )
            let received = try await Self.updates(withKeys: expectedKeys, on: platform, timeout: .seconds(timeout))
            print("\ncustomer updates received by the simulated platform:")
            print(
                "  call id                  direction  customer number  phase 1 (at once)            phase 2 (CRM + ERP)"
            )
            for sample in samples {
                let phaseOne = received.first { $0.idempotencyKey == "customer-update:\(sample.eventId)" }?.externalId
                let phaseTwo = received.first { $0.idempotencyKey == "enrichment:\(sample.eventId)" }
                var enriched = "no CRM match: keeps phase 1"
                if let phaseTwo,
                    let body = try? JSONSerialization.jsonObject(with: Data(phaseTwo.body.utf8)) as? [String: Any]
                {
                    let data = body["data"] as? [String: Any]
                    enriched =
                        "\(phaseTwo.externalId ?? "?") \(data?["loyaltyTier"] as? String ?? "") \(data?["erpAccountStatus"] as? String ?? "")"
                }
                print(
                    "  \(sample.callId.padded(24)) \(sample.direction.rawValue.padded(10)) "
                        + "\(Masking.mask(sample.customerNumber).padded(16)) "
                        + "\((phaseOne ?? "none yet").shortened(28).padded(28)) " + enriched
                )
            }

            print("\nother channels, linked in phase 2 by the channel's rule:")
            for (label, eventId, how) in [
                (
                    "web chat", channels.chatEventId,
                    "email \(Masking.mask(DemoChannels.chatEmail)) not in the CRM, then phone \(Masking.mask(DemoChannels.chatNumber))"
                ),
                ("whatsapp", channels.messageEventId, "messaging id \(Masking.mask(DemoChannels.whatsAppId))"),
            ] {
                let linked = try await Self.phaseTwo(of: eventId, on: platform, timeout: .seconds(timeout))
                print("  \(label.padded(9)) \(how.padded(58)) → \(linked.externalId ?? "?")")
            }

            let webhookIds = Set(samples.map { PostCallWebhook.webhookID(callId: $0.callId) })
            let webhooks = try await platform.waitForWebhooks(count: calls, timeout: .seconds(timeout))
                .filter { webhookIds.contains($0.id ?? "") }
            print("\nsigned post-call webhooks received by the simulated CRM (\(webhooks.count)):")
            print("  call id                  handle  after-call  wrap-up    webhook-id")
            for webhook in webhooks {
                let payload = try? JSONSerialization.jsonObject(with: Data(webhook.body)) as? [String: Any]
                let callId = payload?["callId"] as? String ?? "?"
                let handle = (payload?["handleTimeSeconds"] as? Int).map { "\($0) s" } ?? "-"
                let afterCall = (payload?["afterCallWorkSeconds"] as? Int).map { "\($0) s" } ?? "-"
                let code = payload?["wrapUpCode"] as? String ?? "-"
                print(
                    "  \(callId.padded(24)) \(handle.padded(7)) \(afterCall.padded(11)) \(code.padded(10)) "
                        + (webhook.id ?? "?").shortened(24)
                )
            }

            let record = try await firstDeadLetter(in: app, eventBody: malformed, timeout: .seconds(timeout))
            print(
                "\nthe malformed event became a dead letter, recorded in the store (identity-relay dead-letters list):"
            )
            print("  id \(record.id), reason \(record.reason.rawValue), error: \(record.lastError)")
            print(
                "\ndone in \((ContinuousClock.now - started).formatted(.units(allowed: [.seconds, .milliseconds], width: .abbreviated)))"
            )
        }
        await platform.stop()
    }

    /// Every customer update so far, once those with `keys` have all reached the simulated platform.
    private static func updates(
        withKeys keys: Set<String>,
        on platform: SimulatedPlatform,
        timeout: Duration
    ) async throws
        -> [SimulatedPlatform.CustomerUpdate]
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let received = platform.customerUpdates
            if keys.isSubset(of: Set(received.compactMap(\.idempotencyKey))) { return received }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ValidationError("not every customer update reached the simulated platform within \(timeout)")
    }

    /// The phase-2 customer update of an event, once it has reached the simulated platform.
    private static func phaseTwo(
        of eventId: String,
        on platform: SimulatedPlatform,
        timeout: Duration
    ) async throws
        -> SimulatedPlatform.CustomerUpdate
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let update = platform.customerUpdates.first(where: { $0.idempotencyKey == "enrichment:\(eventId)" }) {
                return update
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ValidationError("no phase-2 update for \(eventId) within \(timeout)")
    }

    /// The record of `eventBody` once the relay has drained it from `relay.dead-letters` into its store.
    private func firstDeadLetter(
        in app: RelayApp,
        eventBody: [UInt8],
        timeout: Duration
    ) async throws -> DeadLetterRecord {
        guard let store = app.store as? SQLiteInteractionStore else {
            throw ValidationError("the demo needs the SQLite store")
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for row in try await store.deadLetters(DeadLetterQuery(reasons: ["malformed"])) {
                // The record holds the event sealed, as every malformed payload is: open it to compare.
                guard let whole = try await store.deadLetter(id: row.id) else { continue }
                let letter = DeadLetter(stored: whole, names: app.names, cipher: app.cipher)
                if let record = letter.record, letter.payload == eventBody { return record }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("the malformed event's dead letter did not appear within \(timeout)")
    }
}

/// One sample call of the demo: fictional numbers from the 555-01xx range reserved for fiction.
struct DemoCall {
    var eventId: String
    var callId: String
    var direction: CallDirection
    var customerNumber: String
    var knownToCRM: Bool
    var body: [UInt8]
    /// start, end and wrap-up, as the platform would publish them.
    var events: [(type: String, body: [UInt8])]

    init(index: Int, runID: String) {
        eventId = "demo-\(runID)-\(index)"
        callId = "demo-\(runID)-call-\(index)"
        direction = index % 3 == 0 ? .outbound : .inbound
        customerNumber = Self.number(index)
        knownToCRM = Self.isKnownToCRM(index)
        let contactCenter = "+15550190000"
        let (from, to) = direction == .inbound ? (customerNumber, contactCenter) : (contactCenter, customerNumber)
        let json = """
            {"eventId":"\(eventId)","type":"callStarted","callId":"\(callId)","occurredAt":"\(RFC3339.format(Date()))",\
            "fromNumber":"\(from)","toNumber":"\(to)","direction":"\(direction.rawValue)","queueId":"queue-demo"}
            """
        body = Array(json.utf8)
        let ended = RFC3339.format(Date().addingTimeInterval(Double(60 + index * 17)))
        let wrapped = RFC3339.format(Date().addingTimeInterval(Double(90 + index * 17)))
        let end =
            #"{"eventId":"\#(eventId)-end","type":"callEnded","callId":"\#(callId)","occurredAt":"\#(ended)","disconnectType":"client"}"#
        let wrapUp =
            #"{"eventId":"\#(eventId)-wrap","type":"wrapUp","callId":"\#(callId)","occurredAt":"\#(wrapped)","wrapUpCode":"RESOLVED","agentId":"agent-demo"}"#
        events = [("callStarted", body), ("callEnded", Array(end.utf8)), ("wrapUp", Array(wrapUp.utf8))]
    }

    static func number(_ index: Int) -> String { String(format: "+1555010%04d", index) }

    /// Every other caller is in the simulated CRM, so the demo shows both outcomes of phase 2.
    static func isKnownToCRM(_ index: Int) -> Bool { index % 2 == 1 }
}

/// The demo's other channels: a web chat and a WhatsApp conversation (fictional identifiers).
struct DemoChannels {
    static let chatNumber = "+15550100091"
    static let chatEmail = "not.in.crm@example.com"
    static let whatsAppId = "wa-15550100092"

    var chatEventId: String
    var messageEventId: String
    var events: [(type: String, body: [UInt8])]

    init(runID: String) {
        chatEventId = "demo-\(runID)-chat"
        messageEventId = "demo-\(runID)-message"
        let now = RFC3339.format(Date())
        let chat = """
            {"eventId":"\(chatEventId)","type":"chatStarted","callId":"demo-\(runID)-chat","occurredAt":"\(now)",\
            "email":"\(Self.chatEmail)","phone":"\(Self.chatNumber)","queueId":"queue-demo"}
            """
        // A messaging id is not a number: the platform names the customer record to update.
        let message = """
            {"eventId":"\(messageEventId)","type":"messageReceived","callId":"demo-\(runID)-message","occurredAt":"\(now)",\
            "platform":"whatsapp","messagingId":"\(Self.whatsAppId)","customerId":"demo-\(runID)-wa-customer","queueId":"queue-demo"}
            """
        events = [("chatStarted", Array(chat.utf8)), ("messageReceived", Array(message.utf8))]
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : padding(toLength: width, withPad: " ", startingAt: 0)
    }

    func shortened(_ width: Int) -> String {
        count <= width ? self : String(prefix(width - 1)) + "…"
    }
}
