public import RelayAMQP
public import RelayCore

/// Everything the relay can be configured with, one nested type per concern. Every key, its default
/// and its meaning are documented once, in `Config/relay.yaml`; reading files and the environment is in
/// `RelayConfiguration+ConfigReader.swift`.
public struct RelayConfiguration: Sendable {
    public struct AMQP: Sendable {
        public var host = "127.0.0.1"
        public var port = 5672
        public var virtualHost = "/"
        public var user = "guest"
        /// Secret. RabbitMQ's own default, which it accepts only over loopback.
        public var password = "guest"
        public var heartbeatSeconds = 30
        public var tlsEnabled = false
        public var tlsCACertificate: String?
        public var tlsVerifyPeer = true
        /// Events handled at once. Each waits on three durable writes in turn (its commit, the broker's
        /// confirm of its effects, the outbox marked published), some 20 to 30 ms under load: a window
        /// of 64 held events back on the broker from about 2,000 events/s (README, Benchmark).
        public var prefetch = 256
        public var topologyFile = "topology/definitions.json"
        /// Prepended to every exchange and queue name, so several relays can share one broker.
        public var namePrefix = ""

        /// The other nodes of a RabbitMQ cluster (`host:port`), tried in turn after `host:port`.
        public var failoverNodes: [AMQPConfiguration.Endpoint] = []

        public var connection: AMQPConfiguration {
            var connection = AMQPConfiguration(
                host: host,
                port: port,
                virtualHost: virtualHost,
                user: user,
                password: password,
                heartbeatSeconds: heartbeatSeconds,
                tls: tlsEnabled ? .init(caCertificatePath: tlsCACertificate, verifyPeer: tlsVerifyPeer) : nil
            )
            connection.failoverEndpoints = failoverNodes
            return connection
        }
    }

    public struct Platform: Sendable {
        /// Empty: the built-in simulated platform, started in-process on `simulatorPort`.
        public var baseURL = ""
        public var requestTimeout = Duration.seconds(5)
        public var simulatorPort = 8089
        /// The circuit breaker of each send target (the platform, the webhook receiver): after this many
        /// failures in a row it opens for `breakerOpen`, and the sends it refuses wait without spending
        /// an attempt.
        public var breakerThreshold = 5
        public var breakerOpen = Duration.seconds(30)
    }

    /// One configured lookup (CRM search or ERP account): URL template, auth, timeout, field pointers.
    public struct Lookup: Sendable {
        /// Empty: no lookup (or the simulator's, when the simulator stands in for this system).
        public var urlTemplate = ""
        /// Secret: sent as the `Authorization` header.
        public var authorization: String?
        public var timeout = Duration.seconds(2)
        public var pointers: [String: String] = [:]
        public var breakerThreshold = 5
        public var breakerOpen = Duration.seconds(30)
    }

    public struct CRM: Sendable {
        /// Where post-call webhooks go. Empty: the built-in simulator's `/crm/post-call`.
        public var postCallWebhookURL = ""
        public var lookup = Lookup(pointers: [
            "results": "/records", "contactId": "/Id", "accountId": "/AccountId", "name": "/Name", "email": "/Email",
            "caseId": "/CaseId", "loyaltyTier": "/LoyaltyTier", "previousInteractionCount": "/InteractionCount",
        ])
        public var severalMatches = SeveralMatchesPolicy.temporary
        /// The contact by id (`{contactId}`), for context updates and overrides; empty: none (the
        /// simulator's when the simulator is the CRM). Field pointers are the search's.
        public var contactLookupURLTemplate = ""
        /// Where the contact sits in that response ("": the response is the contact).
        public var contactLookupResultsPointer = ""
        /// The CRM search by email address (`{email}`), for email and web-chat interactions; empty: none
        /// (the simulator's when the simulator is the CRM). Field pointers are the search's.
        public var emailLookupURLTemplate = ""
        /// The CRM search by messaging id (`{messagingId}`, `{platform}`), for messaging interactions;
        /// empty: none (the simulator's when the simulator is the CRM). Field pointers are the search's.
        public var messagingLookupURLTemplate = ""
        /// The CRM search by name (`{name}`), for web chats and messages no identifier found: a single match
        /// is a suggestion, never a link. Empty: none (the simulator's when the simulator is the CRM).
        public var nameLookupURLTemplate = ""

        /// The policy as the configuration file spells it.
        public var severalMatchesText: String {
            get { severalMatches.rawValue }
            set { severalMatches = SeveralMatchesPolicy(rawValue: newValue) ?? severalMatches }
        }
    }

    public struct ERP: Sendable {
        public var lookup = Lookup(pointers: ["accountStatus": "/status"])
    }

    public struct Store: Sendable {
        /// The SQLite database file; created with its folder when missing. Used when `url` is unset.
        public var path = ".run/identity-relay.sqlite"
        /// `postgres://user@host:port/database`: the relay's state in PostgreSQL, where several relays
        /// can share it. Unset: SQLite at `path`.
        public var url: String?
        /// The PostgreSQL password, when the URL carries none (a secret: `RELAY_STORE_PASSWORD_FILE`).
        public var password: String?
        /// The PostgreSQL schema the relay's tables live in; created at start when missing.
        public var schema = "public"
        /// Connections each relay opens to PostgreSQL at most.
        public var maxConnections = 10
        /// This relay's name in its claims on outbox entries, unique among the relays sharing the
        /// database; unset: the host name, the process id and a random suffix (new at every start, so
        /// a restarted relay takes its predecessor's claims once their lease runs out).
        public var instanceName: String?
        /// How long a relay's claim on an outbox entry holds without renewal: the longest a dead relay's
        /// work waits for another relay to take it.
        public var claimLease = Duration.seconds(15)
    }

    public struct Correlation: Sendable {
        public var orphanAfter = Duration.seconds(4 * 3600)
        public var wrapUpGrace = Duration.seconds(600)
        public var startGrace = Duration.seconds(600)
        /// How long processed event ids are remembered for deduplication.
        public var processedEventRetention = Duration.seconds(72 * 3600)
        /// How often due timers (orphans, wrap-up grace) are looked for.
        public var timerScanInterval = Duration.seconds(1)

        public var settings: CallCorrelator.Settings {
            .init(orphanAfter: orphanAfter, wrapUpGrace: wrapUpGrace, startGrace: startGrace)
        }
    }

    public struct Identity: Sendable {
        /// Secret: the HMAC key of `PHONE:` external ids. Required by `run`.
        public var phoneHashKey: String?
        /// ISO 3166 region of numbers written in national form; "ZZ" accepts international form only.
        public var defaultRegion = "US"
        /// How long an agent's validated identity switch is reused for the same caller.
        public var overrideTimeToLive = Duration.seconds(30 * 24 * 3600)
    }

    public struct Delivery: Sendable {
        public var maxAttempts = 10
        public var baseDelay = Duration.milliseconds(500)
        public var maxDelay = Duration.seconds(3600)
        public var maxRetryAfter = Duration.seconds(3600)
        /// Outbound requests (customer updates, webhooks) in flight at once.
        public var concurrency = 64
        /// CRM/ERP lookups in flight at once, apart from `concurrency`: a hung CRM holds no send's place.
        public var enrichmentConcurrency = 64
        /// How often the dispatcher reads the store for work it was not handed: retries falling due,
        /// entries added by another process (reconciliation, a replay, `deliveries retry`).
        public var pollInterval = Duration.seconds(1)

        public var retryPolicy: RetryPolicy {
            RetryPolicy(
                maxAttempts: maxAttempts,
                backoff: Backoff(baseDelay: baseDelay, maxDelay: maxDelay),
                maxRetryAfter: maxRetryAfter
            )
        }
    }

    /// Phase 2: how long a lookup that keeps being set back (the CRM failing, or its breaker open) is
    /// still worth trying. A refusal by an open breaker is no attempt; this bounds the wait instead.
    public struct Enrichment: Sendable {
        public var maxAge = Duration.seconds(900)
        /// Lookups an outage set back go to the CRM at most this often, so the backlog does not hit it
        /// the moment it is back; lookups on their first try are not held to it.
        public var backlogRatePerSecond = 50
    }

    public struct Webhook: Sendable {
        /// Secret (`whsec_…`): signs post-call webhooks.
        public var signingSecret: String?
    }

    public struct Input: Sendable {
        public var maxBodyBytes = 64 * 1024
        public var maxIdLength = 128

        public var limits: PlatformEventDecoder.Limits {
            .init(maxBodyBytes: maxBodyBytes, maxIdLength: maxIdLength)
        }
    }

    public struct Log: Sendable {
        public var level = "info"
    }

    /// The operators' HTTP API: health, metrics, dead letters, contacts and the synchronous CTI lookup.
    public struct Admin: Sendable {
        public var enabled = true
        /// Loopback by default: the API is for operators and the CTI connector on this host.
        public var host = "127.0.0.1"
        /// 0: any free port (tests).
        public var port = 8090
        /// Secret: the bearer token every endpoint but the health checks requires.
        public var token: String?
        /// The CTI lookup answers within this budget with whatever is known by then.
        public var lookupBudget = Duration.milliseconds(300)
        /// How long a CRM answer is reused for the same caller's next lookups (memory only); zero: never.
        public var lookupCacheTimeToLive = Duration.seconds(600)
        public var maxBodyBytes = 64 * 1024
    }

    /// Personal data at rest: encryption, retention.
    public struct Privacy: Sendable {
        /// Secret: base64 of 32 bytes, the AES-256-GCM key of numbers, emails and names at rest.
        public var encryptionKey: String?
        /// Interactions, journeys and dead letters older than this are purged.
        public var retention = Duration.seconds(30 * 24 * 3600)
        /// How often the retention purge and the contact expiry run.
        public var purgeInterval = Duration.seconds(3600)
    }

    /// Post-call reconciliation: interactions still linked by `PHONE:` are asked about again.
    public struct Reconciliation: Sendable {
        /// How often `run` reconciles; zero: never (the `reconcile` command still works).
        public var interval = Duration.seconds(24 * 3600)
        /// How far back each scheduled run looks.
        public var window = Duration.seconds(24 * 3600)
    }

    /// Traces: a span per event from consume to commit and per outbox attempt, continuing an incoming
    /// `traceparent` and sent on with each customer update and webhook.
    public struct Tracing: Sendable {
        /// Where spans go, over OTLP/HTTP (protobuf), e.g. `http://127.0.0.1:4318/v1/traces`, used as
        /// written; nil: the relay neither makes spans nor sends a trace on.
        public var otlpEndpoint: String?
        /// The `service.name` the spans are exported under.
        public var serviceName = "identity-relay"
    }

    /// The single customer view: contacts, merges, journeys.
    public struct Contacts: Sendable {
        /// A temporary (ephemeral or identified) contact expires this long after its last interaction.
        public var temporaryTimeToLive = Duration.seconds(60 * 24 * 3600)
    }

    public var amqp = AMQP()
    public var platform = Platform()
    public var crm = CRM()
    public var erp = ERP()
    public var store = Store()
    public var correlation = Correlation()
    public var identity = Identity()
    public var delivery = Delivery()
    public var enrichment = Enrichment()
    public var webhook = Webhook()
    public var input = Input()
    public var log = Log()
    public var admin = Admin()
    public var privacy = Privacy()
    public var contacts = Contacts()
    public var reconciliation = Reconciliation()
    public var tracing = Tracing()

    public init() {}
}
