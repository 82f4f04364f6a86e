import Foundation
public import Logging
public import RelayAMQP
public import RelayCore
public import RelayHTTP
import RelayPostgres
public import RelayStore
public import ServiceLifecycle
public import Tracing

/// The relay wired together from its configuration: broker client, store, HTTP client, and the
/// services around the core (event pipeline, outbox dispatcher, timers). `run()` runs them until
/// graceful shutdown, then closes the clients.
public final class RelayApp: Service {
    public let configuration: RelayConfiguration
    public let names: RelayNames
    public let amqp: AMQPClient
    public let http: CurlHTTPClient
    public let store: any RelayDatabase
    /// This relay's name: in its claims on the PostgreSQL store's outbox, and in `relay_info`.
    public let instanceName: String
    /// The PostgreSQL store when `store.url` names one (`store` is then the same): its pool runs, and
    /// its schema is migrated, before anything else starts.
    let postgres: PostgresStore?
    public let pipeline: EventPipeline
    /// Carries out the outbox: sends, lookups and dead-letter records, straight from the store.
    public let dispatcher: OutboxDispatcher
    public let timers: InteractionChores
    /// Forgets what is past `privacy.retention`, every `privacy.purgeInterval`.
    public let retentionPurge: RetentionPurge
    /// Records what reaches `relay.dead-letters` in the store, the record operators query.
    public let deadLetterDrain: DeadLetterDrain
    /// Phase 2, when a CRM lookup is configured.
    public let enricher: Enricher?
    /// Seals personal data before it is stored.
    public let cipher: FieldCipher
    /// Keys identifiers (phone, email, messaging ids) for lookups without holding them in clear.
    public let identifiers: IdentifierHasher
    public let metrics: RelayMetrics
    /// The CTI lookup: what the admin API's `/api/v1/genesys/lookup` answers.
    public let lookup: CustomerLookup
    /// The single customer view: contacts, merges, journeys (same database as `store`).
    public let contacts: ContactDirectory
    public let contactExpiry: ContactExpiryService
    /// Post-call reconciliation, when a CRM lookup is configured.
    public var reconciler: Reconciler? {
        enricher.map { enricher in
            Reconciler(
                store: store,
                enricher: enricher,
                dispatcher: dispatcher,
                numberFor: { [self] in try await self.customerNumber(for: $0) },
                cipher: cipher,
                logger: logger
            )
        }
    }
    public let logger: Logger

    /// Where outbound requests go when the configuration names no real platform or CRM.
    public struct Endpoints: Sendable {
        public var platformBaseURL: String
        public var postCallWebhookURL: String
        /// The CRM search (`{phone}`), CRM contact (`{contactId}`) and ERP account (`{accountId}`) URL
        /// templates; empty: none.
        public var crmLookupURLTemplate: String
        public var crmContactURLTemplate: String
        public var erpLookupURLTemplate: String
        /// The CRM search by email (`{email}`); empty: none.
        public var crmEmailLookupURLTemplate: String
        /// The CRM search by messaging id (`{messagingId}`, `{platform}`); empty: none.
        public var crmMessagingLookupURLTemplate: String
        /// The CRM search by name (`{name}`), for suggestions; empty: none.
        public var crmNameLookupURLTemplate: String

        public init(
            platformBaseURL: String,
            postCallWebhookURL: String,
            crmLookupURLTemplate: String = "",
            crmContactURLTemplate: String = "",
            erpLookupURLTemplate: String = "",
            crmEmailLookupURLTemplate: String = "",
            crmMessagingLookupURLTemplate: String = "",
            crmNameLookupURLTemplate: String = ""
        ) {
            self.crmEmailLookupURLTemplate = crmEmailLookupURLTemplate
            self.crmMessagingLookupURLTemplate = crmMessagingLookupURLTemplate
            self.crmNameLookupURLTemplate = crmNameLookupURLTemplate
            self.platformBaseURL = platformBaseURL
            self.postCallWebhookURL = postCallWebhookURL
            self.crmLookupURLTemplate = crmLookupURLTemplate
            self.crmContactURLTemplate = crmContactURLTemplate
            self.erpLookupURLTemplate = erpLookupURLTemplate
        }
    }

    /// - Parameter carriesOutOutbox: false for a tool built on the relay's parts (`reconcile`): what it
    ///   adds to the outbox is left to the running relays, never claimed by a process about to exit.
    public convenience init(
        configuration: RelayConfiguration,
        endpoints: Endpoints,
        metrics: RelayMetrics = .disabled,
        carriesOutOutbox: Bool = true,
        logger: Logger,
        tracer: any Tracer = InstrumentationSystem.tracer
    ) throws(ConfigurationError) {
        try self.init(
            configuration: configuration,
            amqpConfiguration: configuration.amqp.connection,
            endpoints: endpoints,
            metrics: metrics,
            carriesOutOutbox: carriesOutOutbox,
            logger: logger,
            tracer: tracer
        )
    }

    /// - Parameters:
    ///   - amqpConfiguration: the connection settings, when they need more than the configuration file
    ///     offers (tests shorten the reconnection backoff).
    ///   - tracer: spans each event from consume to commit and each outbox attempt; the process's
    ///     (`run` bootstraps swift-otel's when `tracing.otlpEndpoint` is set, else it is a no-op).
    public init(
        configuration: RelayConfiguration,
        amqpConfiguration: AMQPConfiguration,
        endpoints: Endpoints,
        metrics: RelayMetrics = .disabled,
        carriesOutOutbox: Bool = true,
        logger: Logger,
        tracer: any Tracer = InstrumentationSystem.tracer
    ) throws(ConfigurationError) {
        let (hasher, identifiers) = try configuration.identityHashers()
        let cipher = try configuration.fieldCipher()
        var signer: WebhookSigner?
        if let secret = configuration.webhook.signingSecret {
            guard let parsed = WebhookSigner(secret: secret) else {
                throw ConfigurationError(
                    key: "webhook.signingSecret",
                    "is not whsec_ followed by base64 of at least 24 bytes"
                )
            }
            signer = parsed
        } else if !configuration.crm.postCallWebhookURL.isEmpty {
            throw ConfigurationError(
                key: "webhook.signingSecret",
                "is required with crm.postCallWebhookUrl: set RELAY_WEBHOOK_SIGNING_SECRET or RELAY_WEBHOOK_SIGNING_SECRET_FILE"
            )
        }
        let topology: Topology
        do {
            topology = try Topology.load(contentsOf: configuration.amqp.topologyFile)
                .prefixed(configuration.amqp.namePrefix)
        } catch {
            throw ConfigurationError(key: "amqp.topologyFile", error.message)
        }
        let instanceName = configuration.makeInstanceName()
        let opened = try configuration.openStore(logger: logger, instance: carriesOutOutbox ? instanceName : nil)
        let store = opened.database
        self.postgres = opened.postgres
        self.instanceName = instanceName
        metrics.info(instance: instanceName, store: opened.postgres == nil ? "sqlite" : "postgres")
        let names = RelayNames(prefix: configuration.amqp.namePrefix)
        let amqp = AMQPClient(configuration: amqpConfiguration, topology: topology, logger: logger)
        // Enough connections per host for every request the dispatcher can have in flight, plus the CTI
        // lookups: when the CRM and the platform share a host, a lookup backlog must not hold updates back.
        let inFlight = configuration.delivery.concurrency + configuration.delivery.enrichmentConcurrency + 64
        let http = CurlHTTPClient(
            configuration: .init(maxConnectionsPerHost: inFlight, maxCachedConnections: 2 * inFlight),
            logger: logger
        )
        var enricher: Enricher?
        if !endpoints.crmLookupURLTemplate.isEmpty {
            let crm = try Self.lookup(
                "crm",
                configuration.crm.lookup,
                template: endpoints.crmLookupURLTemplate,
                placeholder: "phone"
            )
            let erp =
                try endpoints.erpLookupURLTemplate.isEmpty
                ? nil
                : Self.lookup(
                    "erp",
                    configuration.erp.lookup,
                    template: endpoints.erpLookupURLTemplate,
                    placeholder: "accountId"
                )
            var contactLookup = configuration.crm.lookup
            contactLookup.pointers["results"] = configuration.crm.contactLookupResultsPointer
            let crmContact =
                try endpoints.crmContactURLTemplate.isEmpty
                ? nil
                : Self.lookup(
                    "crm",
                    contactLookup,
                    template: endpoints.crmContactURLTemplate,
                    placeholder: "contactId",
                    key: "crm.contactLookup.urlTemplate"
                )
            let crmEmail =
                try endpoints.crmEmailLookupURLTemplate.isEmpty
                ? nil
                : Self.lookup(
                    "crm",
                    configuration.crm.lookup,
                    template: endpoints.crmEmailLookupURLTemplate,
                    placeholder: "email",
                    key: "crm.emailLookup.urlTemplate"
                )
            let crmMessaging =
                try endpoints.crmMessagingLookupURLTemplate.isEmpty
                ? nil
                : Self.lookup(
                    "crm",
                    configuration.crm.lookup,
                    template: endpoints.crmMessagingLookupURLTemplate,
                    placeholders: ["messagingId", "platform"],
                    key: "crm.messagingLookup.urlTemplate"
                )
            let crmName =
                try endpoints.crmNameLookupURLTemplate.isEmpty
                ? nil
                : Self.lookup(
                    "crm",
                    configuration.crm.lookup,
                    template: endpoints.crmNameLookupURLTemplate,
                    placeholder: "name",
                    key: "crm.nameLookup.urlTemplate"
                )
            enricher = Enricher(
                crm: crm,
                crmContact: crmContact,
                crmEmail: crmEmail,
                crmMessaging: crmMessaging,
                crmName: crmName,
                erp: erp,
                severalMatches: configuration.crm.severalMatches,
                http: http,
                policy: configuration.delivery.retryPolicy,
                backlogRatePerSecond: Double(configuration.enrichment.backlogRatePerSecond),
                logger: logger,
                tracer: tracer
            )
        }
        let linking = PhaseOneLinking(
            hasher: hasher,
            defaultRegion: configuration.identity.defaultRegion,
            enrichment: enricher != nil
        )
        let correlator = CallCorrelator(settings: configuration.correlation.settings, linking: linking)
        let contacts = ContactDirectory(
            store: store,
            cipher: cipher,
            hasher: identifiers,
            timeToLive: configuration.contacts.temporaryTimeToLive,
            defaultRegion: configuration.identity.defaultRegion
        )
        self.contacts = contacts
        self.contactExpiry = ContactExpiryService(
            directory: contacts,
            interval: configuration.privacy.purgeInterval,
            lease: ChoreLease(store: store, name: "contact-expiry"),
            logger: logger
        )
        self.configuration = configuration
        self.logger = logger
        self.cipher = cipher
        self.identifiers = identifiers
        self.metrics = metrics
        self.names = names
        self.amqp = amqp
        self.http = http
        self.store = store
        let lookup = CustomerLookup(
            linking: linking,
            store: store,
            localAnswer: { try await contacts.localAnswer(phoneKey: $0, now: Date()) },
            enricher: enricher,
            budget: configuration.admin.lookupBudget,
            cacheTimeToLive: configuration.admin.lookupCacheTimeToLive,
            metrics: metrics,
            logger: logger
        )
        self.lookup = lookup
        let dispatcher = OutboxDispatcher(
            store: store,
            sender: DeliverySender(
                http: http,
                targets: .init(
                    platformBaseURL: endpoints.platformBaseURL,
                    postCallWebhookURL: endpoints.postCallWebhookURL,
                    webhookSigner: signer
                ),
                requestTimeout: configuration.platform.requestTimeout,
                breakerThreshold: configuration.platform.breakerThreshold,
                breakerOpen: configuration.platform.breakerOpen
            ),
            enricher: enricher,
            rules: DeliveryStateMachine(
                retryPolicy: configuration.delivery.retryPolicy,
                lookupMaxAge: configuration.enrichment.maxAge
            ),
            deadLetters: DeadLetterPublisher(amqp: amqp, exchange: names.deadLetterExchange),
            settings: .init(
                concurrency: configuration.delivery.concurrency,
                lookupConcurrency: configuration.delivery.enrichmentConcurrency,
                pollInterval: configuration.delivery.pollInterval,
                overrideTimeToLive: configuration.identity.overrideTimeToLive
            ),
            cipher: cipher,
            metrics: metrics,
            logger: logger,
            enriched: { lookup.rememberEnrichment(phone: $0, update: $1) },
            tracer: tracer
        )
        self.dispatcher = dispatcher
        self.pipeline = EventPipeline(
            amqp: amqp,
            store: store,
            names: names,
            decoder: InputDecoder(limits: configuration.input.limits),
            correlator: correlator,
            prefetch: configuration.amqp.prefetch,
            dispatcher: dispatcher,
            cipher: cipher,
            metrics: metrics,
            logger: logger,
            contacts: contacts,
            tracer: tracer
        )
        self.enricher = enricher
        self.deadLetterDrain = DeadLetterDrain(amqp: amqp, store: store, names: names, metrics: metrics, logger: logger)
        var retentionDeadLetters = DeadLetterQueue(configuration: amqpConfiguration, names: names, logger: logger)
        retentionDeadLetters.store = store
        // The relay's own drain moves the queue into the store; retention must not wait for the broker.
        retentionDeadLetters.drainsFirst = false
        self.retentionPurge = RetentionPurge(
            store: store,
            deadLetters: retentionDeadLetters,
            retention: configuration.privacy.retention,
            interval: configuration.privacy.purgeInterval,
            lease: ChoreLease(store: store, name: "retention-purge"),
            logger: logger
        )
        self.timers = InteractionChores(
            store: store,
            correlator: correlator,
            dispatcher: dispatcher,
            scanInterval: configuration.correlation.timerScanInterval,
            processedEventRetention: configuration.correlation.processedEventRetention,
            cipher: cipher,
            logger: logger
        )
    }

    private static func lookup(
        _ name: String,
        _ lookup: RelayConfiguration.Lookup,
        template: String,
        placeholder: String? = nil,
        placeholders: Set<String> = [],
        key: String? = nil
    ) throws(ConfigurationError) -> UpstreamLookup {
        let urlTemplate: URLTemplate
        do {
            urlTemplate = try URLTemplate(template, allowed: placeholders.union(placeholder.map { [$0] } ?? []))
        } catch {
            throw ConfigurationError(key: key ?? "\(name).lookup.urlTemplate", error.message)
        }
        func pointer(_ field: String) -> JSONPointer? { lookup.pointers[field].flatMap(JSONPointer.init) }
        let mapping = LookupMapping(
            results: pointer("results") ?? JSONPointer("")!,
            contactId: pointer("contactId"),
            accountId: pointer("accountId"),
            name: pointer("name"),
            email: pointer("email"),
            caseId: pointer("caseId"),
            loyaltyTier: pointer("loyaltyTier"),
            previousInteractionCount: pointer("previousInteractionCount"),
            accountStatus: pointer("accountStatus")
        )
        return UpstreamLookup(
            name: name,
            urlTemplate: urlTemplate,
            headers: lookup.authorization.map { [(name: "Authorization", value: $0)] } ?? [],
            timeout: lookup.timeout,
            mapping: mapping,
            breakerThreshold: lookup.breakerThreshold,
            breakerOpenDuration: lookup.breakerOpen
        )
    }

    /// Reads what waits in the outbox (pending, due, retrying, oldest, by kind) into the metrics; called
    /// when they are scraped. When the store cannot be read, the gauges keep their last values.
    public func recordBacklog() async {
        let now = Date()
        guard let summary = try? await store.outboxSummary(now: now) else { return }
        metrics.outbox(summary, now: now, inHand: dispatcher.inHandCount)
    }

    /// Warns when the broker still holds work queues of an earlier version with messages in them:
    /// this version never reads them (README, "Upgrading from broker work queues").
    func warnAboutLegacyWorkQueues() async {
        for _ in 0..<100 where !amqp.isConnected { try? await Task.sleep(for: .milliseconds(100)) }
        // Every earlier version declared `relay.deliveries`: without it there is nothing to look for,
        // and one passive declare (which closes the admin channel when the queue is missing) is enough.
        for (index, queue) in names.legacyWorkQueues.enumerated() {
            guard let count = try? await amqp.messageCount(queue: queue) else {
                if index == 0 { return }
                continue
            }
            guard count > 0 else { continue }
            logger.warning(
                "an earlier version's work queue still holds messages this version does not read; drain it with the earlier version",
                metadata: [LogKeys.amqpQueue: "\(queue)", LogKeys.amqpMessages: "\(count)"]
            )
        }
    }

    /// Runs every part (`services`) in a group of its own, until graceful shutdown: for tests and
    /// embedders; `identity-relay run` puts the parts in its own group, beside the admin server.
    public func run() async throws {
        try await ServiceGroup(configuration: .init(services: services, logger: logger)).run()
    }

    /// Runs `body` with the store ready, for a tool that uses the relay's parts without `run()`: the
    /// PostgreSQL pool running and its schema migrated (SQLite is ready when opened).
    public func withStoreReady<T>(_ body: () async throws -> T) async throws -> T {
        guard let postgres else { return try await body() }
        return try await withThrowingTaskGroup { group in
            group.addTask { try await postgres.run() }
            defer { group.cancelAll() }
            try await postgres.migrate()
            return try await body()
        }
    }

    /// The caller's E.164 number, opened from where it is kept sealed: the phone identifier of the
    /// contact the interaction landed on.
    public func customerNumber(for interaction: Interaction) async throws -> String? {
        guard let phoneKey = interaction.phoneKey else { return nil }
        return try await contacts.phoneNumber(forKey: phoneKey)
    }

    /// What readiness means: the broker connected, the consumer running, the store taking writes.
    public func readiness() async -> Readiness {
        var storeError: String?
        do { try await store.checkWritable() } catch { storeError = "\(error)" }
        return Readiness(
            brokerConnected: amqp.isConnected,
            consuming: pipeline.isConsuming,
            storeWritable: storeError == nil,
            storeError: storeError
        )
    }

    public struct Readiness: Sendable, Hashable {
        public var brokerConnected: Bool
        public var consuming: Bool
        public var storeWritable: Bool
        public var storeError: String?
        public var isReady: Bool { brokerConnected && consuming && storeWritable }
    }
}
