import Configuration
public import Foundation
import RelayAMQP
import RelayCore
import RelayPostgres
import Yams

/// A configuration problem, always naming the key at fault.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var key: String?
    public var message: String

    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { key.map { "\($0): \(message)" } ?? message }
}

/// Where a key's effective value came from.
public enum ConfigSource: Sendable, Hashable, CustomStringConvertible {
    case defaultValue
    case file(String)
    case environment(String)
    case secretFile(String)

    public var description: String {
        switch self {
        case .defaultValue: "default"
        case .file(let path): path
        case .environment(let name): "env \(name)"
        case .secretFile(let path): "file \(path)"
        }
    }
}

/// One key of the effective configuration, as `config check` shows it.
public struct ResolvedConfigKey: Sendable, Hashable {
    public var key: String
    /// nil for an unset optional key; secrets are never held here in clear.
    public var displayValue: String?
    public var source: ConfigSource
    public var isSecret: Bool
}

extension RelayConfiguration {
    /// The YAML file `run` reads unless told otherwise (relative to the working directory).
    public static let defaultFilePath = "Config/relay.yaml"

    /// Reads the YAML file (if any), then lets the environment override any key, through
    /// swift-configuration's providers (`resolve`).
    ///
    /// A key `a.bC` is overridden by `RELAY_A_B_C`; a secret also by `RELAY_A_B_C_FILE`, the path of a
    /// file holding it. Secrets are refused in the YAML file, which is meant to be committed.
    public static func load(
        filePath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> (RelayConfiguration, [ResolvedConfigKey]) {
        var fileValues: [String: String] = [:]
        if let filePath {
            let text: String
            do {
                text = try String(contentsOfFile: filePath, encoding: .utf8)
            } catch {
                throw ConfigurationError(key: nil, "cannot read the configuration file \(filePath)")
            }
            fileValues = try flatten(yaml: text, path: filePath)
        }
        let known = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })
        for key in fileValues.keys.sorted() {
            if let why = retiredKeys[key] {
                throw ConfigurationError(
                    key: key,
                    "is no longer used (\(why)): remove it from \(filePath ?? "the configuration file")"
                )
            }
            guard let definition = known[key] else {
                throw ConfigurationError(key: key, "unknown key in \(filePath ?? "the configuration file")")
            }
            if definition.isSecret {
                throw ConfigurationError(
                    key: key,
                    "is a secret and must not be in \(filePath ?? "the configuration file"): "
                        + "set \(environmentName(for: key)) or \(environmentName(for: key))_FILE instead"
                )
            }
        }

        try checkEnvironmentNames(environment)
        return try resolve(fileValues: fileValues, filePath: filePath, environment: environment)
    }

    /// Every key through one `ConfigReader`, each from the first of its providers that has it: the
    /// environment (`RELAY_…`), a secret's file (`RELAY_…_FILE`), the YAML file; else its default.
    /// The reader's access reports say which provider answered (`config check`'s source) and what
    /// failed (an unreadable secret file), so each error names its key.
    static func resolve(
        fileValues: [String: String],
        filePath: String?,
        environment: [String: String]
    ) throws(ConfigurationError) -> (RelayConfiguration, [ResolvedConfigKey]) {
        let secrets = keys.filter(\.isSecret).map(\.name)
        let providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(
                environmentVariables: environment.filter { $0.key.hasPrefix("RELAY_") },
                secretsSpecifier: .specific(Set(secrets.map(environmentName(for:))))
            ).prefixKeys(with: "relay"),
            SecretFileProvider(environment: environment, secretKeys: Set(secrets)),
            InMemoryProvider(
                name: filePath,
                values: Dictionary(
                    uniqueKeysWithValues: fileValues.map {
                        (AbsoluteConfigKey(ConfigKey($0.key)), ConfigValue(.string($0.value), isSecret: false))
                    }
                )
            ),
        ]
        let accesses = LastAccess()
        let reader = ConfigReader(providers: providers, accessReporter: accesses)
        var configuration = RelayConfiguration()
        var resolved: [ResolvedConfigKey] = []
        for definition in keys {
            let value = reader.string(forKey: ConfigKey(definition.name), isSecret: definition.isSecret)
            let answers = accesses.take()?.providerResults ?? []
            for answer in answers {
                guard case .failure(let error) = answer.result else { continue }
                throw error as? ConfigurationError ?? ConfigurationError(key: definition.name, "\(error)")
            }
            var source = ConfigSource.defaultValue
            if value != nil, let index = answers.firstIndex(where: { (try? $0.result.get().value) != nil }),
                let encodedKey = try? answers[index].result.get().encodedKey
            {
                switch index {
                case 0: source = .environment(encodedKey)
                case 1: source = .secretFile(environment[encodedKey] ?? encodedKey)
                default: source = .file(filePath ?? "")
                }
            }
            if let value {
                do {
                    try definition.apply(&configuration, value)
                } catch let error as ConfigurationError {
                    throw ConfigurationError(key: definition.name, "\(error.message) (from \(source))")
                } catch {
                    throw ConfigurationError(key: definition.name, "\(error)")
                }
            }
            let display: String? =
                definition.isSecret
                ? (definition.read(configuration).map { _ in "<redacted>" })
                : definition.read(configuration)
            resolved.append(
                ResolvedConfigKey(
                    key: definition.name,
                    displayValue: display,
                    source: source,
                    isSecret: definition.isSecret
                )
            )
        }
        try configuration.validate()
        return (configuration, resolved)
    }

    /// `RELAY_` variables that are not configuration keys: the scripts' and the tests' own settings.
    static let environmentNamesThatAreNotKeys: Set<String> = [
        "RELAY_CONFIG", "RELAY_REPO_ROOT", "RELAY_CLI_BINARY", "RELAY_KEEP_BROKER",
    ]
    static let environmentPrefixesThatAreNotKeys = [
        "RELAY_BROKER_", "RELAY_CLUSTER_", "RELAY_POSTGRES_", "RELAY_TEST_",
    ]

    /// A `RELAY_` variable that names no key is a typo until shown otherwise: ignored, it would leave
    /// the relay running on a default the operator meant to replace (`RELAY_CRM_LOOKUP_URL_TEMPLTE`
    /// would turn enrichment off without a word).
    static func checkEnvironmentNames(_ environment: [String: String]) throws(ConfigurationError) {
        var known: [String: String] = [:]
        for definition in keys {
            let name = environmentName(for: definition.name)
            known[name] = definition.name
            if definition.isSecret { known[name + "_FILE"] = definition.name }
        }
        let unknown = environment.keys.filter { name in
            name.hasPrefix("RELAY_") && known[name] == nil && !environmentNamesThatAreNotKeys.contains(name)
                && !environmentPrefixesThatAreNotKeys.contains { name.hasPrefix($0) }
        }
        for key in retiredKeys.keys.sorted() where environment[environmentName(for: key)] != nil {
            throw ConfigurationError(
                key: key,
                "is no longer used (\(retiredKeys[key]!)): unset \(environmentName(for: key))"
            )
        }
        guard let first = unknown.sorted().first else { return }
        let nearest = known.keys.min {
            (editDistance(first, $0), $0) < (editDistance(first, $1), $1)
        }
        var message = "this environment variable names no configuration key"
        if let nearest, let key = known[nearest] {
            message += "; did you mean \(nearest) (\(key))?"
        }
        if unknown.count > 1 {
            message += " (also unknown: \(unknown.sorted().dropFirst().joined(separator: ", ")))"
        }
        throw ConfigurationError(key: first, message)
    }

    /// Levenshtein distance, for the nearest key to a mistyped one.
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        var previous = Array(0...b.count)
        for i in a.indices {
            var current = [i + 1]
            for j in b.indices {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a[i] == b[j] ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }

    public static func environmentName(for key: String) -> String {
        var name = "RELAY_"
        var previousWasLower = false
        for character in key {
            if character == "." {
                name.append("_")
                previousWasLower = false
            } else if character.isUppercase {
                if previousWasLower { name.append("_") }
                name.append(character)
                previousWasLower = false
            } else {
                name.append(Character(character.uppercased()))
                previousWasLower = character.isLowercase || character.isNumber
            }
        }
        return name
    }

    /// Checks that hold across keys, each error naming the key to fix.
    public func validate() throws(ConfigurationError) {
        if delivery.baseDelay > delivery.maxDelay {
            throw ConfigurationError(key: "delivery.baseDelayMs", "must not exceed delivery.maxDelayMs")
        }
        for (key, value) in [
            ("platform.baseUrl", platform.baseURL), ("crm.postCallWebhookUrl", crm.postCallWebhookURL),
        ]
        where !value.isEmpty {
            guard let url = URL(string: value), let scheme = url.scheme, ["http", "https"].contains(scheme),
                url.host != nil
            else {
                throw ConfigurationError(key: key, "must be an http(s) URL, or empty for the simulator")
            }
        }
        if let key = identity.phoneHashKey, key.utf8.count < 32 {
            throw ConfigurationError(
                key: "identity.phoneHashKey",
                "must be at least 32 bytes (it is an HMAC-SHA256 key)"
            )
        }
        if identity.defaultRegion.count != 2 || !identity.defaultRegion.allSatisfy({ $0.isASCII && $0.isUppercase }) {
            throw ConfigurationError(
                key: "identity.defaultRegion",
                "must be a two-letter ISO 3166 code such as US or GB (ZZ: none)"
            )
        }
        if let secret = webhook.signingSecret, !secret.hasPrefix("whsec_") {
            throw ConfigurationError(key: "webhook.signingSecret", "must start with whsec_ (Standard Webhooks)")
        }
        if let key = privacy.encryptionKey, FieldCipher(base64Key: key) == nil {
            throw ConfigurationError(
                key: "privacy.encryptionKey",
                "must be base64 of exactly 32 bytes (e.g. the output of `openssl rand -base64 32`)"
            )
        }
        if !store.schema.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
            || store.schema.first?.isNumber != false
        {
            throw ConfigurationError(
                key: "store.schema",
                "must be a lower-case PostgreSQL name: letters, digits and _, not starting with a digit"
            )
        }
        if let token = admin.token, token.utf8.count < 16 {
            throw ConfigurationError(key: "admin.token", "must be at least 16 characters")
        }
    }

    /// Nested YAML mappings become dotted keys; every leaf must be a scalar. The relay reads the file
    /// itself, into an `InMemoryProvider`, rather than through swift-configuration's `YAMLSnapshot`:
    /// that one answers lookups but cannot list the keys a file holds, and a key the relay does not
    /// know (a typo, a retired key, a secret) must stop it, not be ignored.
    ///
    /// Scalars keep the text as written (only `~`, `null` and an empty value mean "unset"): each key
    /// parses its own value, exactly as it parses the environment, so `port: 010` is 10 and
    /// `namePrefix: no` is "no" rather than YAML 1.1's octal 8 and boolean false.
    static func flatten(yaml: String, path: String) throws(ConfigurationError) -> [String: String] {
        let root: Any?
        do {
            root = try Yams.load(yaml: yaml, textOnlyResolver)
        } catch {
            throw ConfigurationError(key: nil, "\(path) is not valid YAML: \(error)")
        }
        guard let root else { return [:] }
        guard let mapping = root as? [String: Any] else {
            throw ConfigurationError(key: nil, "\(path) must hold a mapping of keys")
        }
        var result: [String: String] = [:]
        func walk(_ node: [String: Any], prefix: String) throws(ConfigurationError) {
            for (key, value) in node {
                let name = prefix.isEmpty ? key : "\(prefix).\(key)"
                switch value {
                case let nested as [String: Any]: try walk(nested, prefix: name)
                case is [Any]: throw ConfigurationError(key: name, "lists are not supported here")
                case is NSNull: continue
                default: result[name] = "\(value)"
                }
            }
        }
        try walk(mapping, prefix: "")
        return result
    }

    /// YAML's default resolver minus the implicit bool, int, float and timestamp types.
    private static let textOnlyResolver = Resolver.default
        .removing(.bool).removing(.int).removing(.float).removing(.timestamp)
}

/// One configuration key: its name, whether it is secret, and how to read and write it.
struct ConfigKeyDefinition: Sendable {
    var name: String
    var isSecret = false
    var apply: @Sendable (inout RelayConfiguration, String) throws -> Void
    var read: @Sendable (RelayConfiguration) -> String?
}

extension RelayConfiguration {
    /// Keys an earlier version read and this one does not, with why: named in the error, so an upgrade
    /// that keeps an old file is told what to do instead of "unknown key".
    static let retiredKeys: [String: String] = [
        "delivery.inProcessRetryLimitMs":
            "every retry is scheduled on its outbox entry in the store; there are no delay queues to park in"
    ]

    static let keys: [ConfigKeyDefinition] = [
        .string("amqp.host", \.amqp.host),
        .int("amqp.port", \.amqp.port, 1...65535),
        .endpoints("amqp.failoverNodes", \.amqp.failoverNodes),
        .string("amqp.vhost", \.amqp.virtualHost),
        .string("amqp.user", \.amqp.user),
        .string("amqp.password", \.amqp.password, secret: true),
        .int("amqp.heartbeatSeconds", \.amqp.heartbeatSeconds, 0...3600),
        .bool("amqp.tls.enabled", \.amqp.tlsEnabled),
        .optionalString("amqp.tls.caCertificate", \.amqp.tlsCACertificate),
        .bool("amqp.tls.verifyPeer", \.amqp.tlsVerifyPeer),
        .int("amqp.prefetch", \.amqp.prefetch, 1...65535),
        .string("amqp.topologyFile", \.amqp.topologyFile),
        .string("amqp.namePrefix", \.amqp.namePrefix, allowEmpty: true),
        .string("platform.baseUrl", \.platform.baseURL, allowEmpty: true),
        .milliseconds("platform.requestTimeoutMs", \.platform.requestTimeout, 1...600_000),
        .int("platform.simulatorPort", \.platform.simulatorPort, 0...65535),
        .int("platform.breaker.failureThreshold", \.platform.breakerThreshold, 1...1000),
        .seconds("platform.breaker.openSeconds", \.platform.breakerOpen, 1...86_400),
        .string("crm.postCallWebhookUrl", \.crm.postCallWebhookURL, allowEmpty: true),
        .string("crm.lookup.urlTemplate", \.crm.lookup.urlTemplate, allowEmpty: true),
        .optionalString("crm.lookup.authorization", \.crm.lookup.authorization, secret: true),
        .milliseconds("crm.lookup.timeoutMs", \.crm.lookup.timeout, 1...600_000),
        .pointer("crm.lookup.resultsPointer", \.crm.lookup.pointers, "results"),
        .pointer("crm.lookup.contactIdPointer", \.crm.lookup.pointers, "contactId"),
        .pointer("crm.lookup.accountIdPointer", \.crm.lookup.pointers, "accountId"),
        .pointer("crm.lookup.namePointer", \.crm.lookup.pointers, "name"),
        .pointer("crm.lookup.emailPointer", \.crm.lookup.pointers, "email"),
        .pointer("crm.lookup.caseIdPointer", \.crm.lookup.pointers, "caseId"),
        .pointer("crm.lookup.loyaltyTierPointer", \.crm.lookup.pointers, "loyaltyTier"),
        .pointer("crm.lookup.interactionCountPointer", \.crm.lookup.pointers, "previousInteractionCount"),
        .int("crm.breaker.failureThreshold", \.crm.lookup.breakerThreshold, 1...1000),
        .seconds("crm.breaker.openSeconds", \.crm.lookup.breakerOpen, 1...86_400),
        .string("crm.contactLookup.urlTemplate", \.crm.contactLookupURLTemplate, allowEmpty: true),
        .pointerText("crm.contactLookup.resultsPointer", \.crm.contactLookupResultsPointer),
        .string("crm.emailLookup.urlTemplate", \.crm.emailLookupURLTemplate, allowEmpty: true),
        .string("crm.messagingLookup.urlTemplate", \.crm.messagingLookupURLTemplate, allowEmpty: true),
        .string("crm.nameLookup.urlTemplate", \.crm.nameLookupURLTemplate, allowEmpty: true),
        .choice("crm.lookup.severalMatches", \.crm.severalMatchesText, SeveralMatchesPolicy.allCases.map(\.rawValue)),
        .string("erp.lookup.urlTemplate", \.erp.lookup.urlTemplate, allowEmpty: true),
        .optionalString("erp.lookup.authorization", \.erp.lookup.authorization, secret: true),
        .milliseconds("erp.lookup.timeoutMs", \.erp.lookup.timeout, 1...600_000),
        .pointer("erp.lookup.accountStatusPointer", \.erp.lookup.pointers, "accountStatus"),
        .int("erp.breaker.failureThreshold", \.erp.lookup.breakerThreshold, 1...1000),
        .seconds("erp.breaker.openSeconds", \.erp.lookup.breakerOpen, 1...86_400),
        .string("store.path", \.store.path),
        .storeURL("store.url", \.store.url),
        .optionalString("store.password", \.store.password, secret: true),
        .string("store.schema", \.store.schema),
        .int("store.maxConnections", \.store.maxConnections, 1...1000),
        .optionalString("store.instanceName", \.store.instanceName),
        .seconds("store.claimLeaseSeconds", \.store.claimLease, 3...3600),
        .seconds("correlation.orphanAfterSeconds", \.correlation.orphanAfter, 1...604_800),
        .seconds("correlation.wrapUpGraceSeconds", \.correlation.wrapUpGrace, 0...86_400),
        .seconds("correlation.startGraceSeconds", \.correlation.startGrace, 0...86_400),
        .seconds("correlation.processedEventRetentionSeconds", \.correlation.processedEventRetention, 60...2_592_000),
        .milliseconds("correlation.timerScanIntervalMs", \.correlation.timerScanInterval, 10...60_000),
        .optionalString("identity.phoneHashKey", \.identity.phoneHashKey, secret: true),
        .string("identity.defaultRegion", \.identity.defaultRegion),
        .seconds("identity.overrideTtlSeconds", \.identity.overrideTimeToLive, 1...31_536_000),
        .int("delivery.maxAttempts", \.delivery.maxAttempts, 1...100),
        .milliseconds("delivery.baseDelayMs", \.delivery.baseDelay, 1...3_600_000),
        .milliseconds("delivery.maxDelayMs", \.delivery.maxDelay, 1...86_400_000),
        .milliseconds("delivery.maxRetryAfterMs", \.delivery.maxRetryAfter, 0...86_400_000),
        .milliseconds("delivery.pollIntervalMs", \.delivery.pollInterval, 10...60_000),
        .int("delivery.concurrency", \.delivery.concurrency, 1...1024),
        .int("delivery.enrichmentConcurrency", \.delivery.enrichmentConcurrency, 1...1024),
        .seconds("enrichment.maxAgeSeconds", \.enrichment.maxAge, 1...604_800),
        .int("enrichment.backlogRatePerSecond", \.enrichment.backlogRatePerSecond, 1...100_000),
        .optionalString("webhook.signingSecret", \.webhook.signingSecret, secret: true),
        .int("input.maxBodyBytes", \.input.maxBodyBytes, 64...16_777_216),
        .int("input.maxIdLength", \.input.maxIdLength, 8...4096),
        .choice("log.level", \.log.level, ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
        .bool("admin.enabled", \.admin.enabled),
        .string("admin.host", \.admin.host),
        .int("admin.port", \.admin.port, 0...65535),
        .optionalString("admin.token", \.admin.token, secret: true),
        .milliseconds("admin.lookupBudgetMs", \.admin.lookupBudget, 10...10_000),
        .seconds("admin.lookupCacheSeconds", \.admin.lookupCacheTimeToLive, 0...86_400),
        .int("admin.maxBodyBytes", \.admin.maxBodyBytes, 256...16_777_216),
        .optionalString("privacy.encryptionKey", \.privacy.encryptionKey, secret: true),
        .days("privacy.retentionDays", \.privacy.retention, 1...3650),
        .seconds("privacy.purgeIntervalSeconds", \.privacy.purgeInterval, 1...86_400),
        .days("contacts.temporaryTtlDays", \.contacts.temporaryTimeToLive, 1...3650),
        .hours("reconciliation.intervalHours", \.reconciliation.interval, 0...720),
        .hours("reconciliation.windowHours", \.reconciliation.window, 1...720),
        .httpURL("tracing.otlpEndpoint", \.tracing.otlpEndpoint),
        .string("tracing.serviceName", \.tracing.serviceName),
    ]
}

extension ConfigKeyDefinition {
    static func string(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, String> & Sendable,
        secret: Bool = false,
        allowEmpty: Bool = false
    ) -> Self {
        Self(
            name: name,
            isSecret: secret,
            apply: { configuration, value in
                if !allowEmpty && value.isEmpty { throw ConfigurationError(key: nil, "must not be empty") }
                configuration[keyPath: path] = value
            },
            read: { $0[keyPath: path] }
        )
    }

    static func optionalString(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, String?> & Sendable,
        secret: Bool = false
    ) -> Self {
        Self(
            name: name,
            isSecret: secret,
            apply: { configuration, value in configuration[keyPath: path] = value.isEmpty ? nil : value },
            read: { $0[keyPath: path] }
        )
    }

    /// Broker nodes, `host:port` separated by commas; empty: none.
    static func endpoints(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, [AMQPConfiguration.Endpoint]> & Sendable
    ) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                var endpoints: [AMQPConfiguration.Endpoint] = []
                for part in value.split(separator: ",") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
                    guard let endpoint = AMQPConfiguration.Endpoint(parsing: String(part), defaultPort: 5672) else {
                        throw ConfigurationError(key: nil, "'\(part)' is not host:port (nodes are separated by commas)")
                    }
                    endpoints.append(endpoint)
                }
                configuration[keyPath: path] = endpoints
            },
            read: { $0[keyPath: path].map(\.description).joined(separator: ",") }
        )
    }

    /// An optional `http://` or `https://` URL with a host; empty: none.
    static func httpURL(_ name: String, _ path: any WritableKeyPath<RelayConfiguration, String?> & Sendable) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                guard !value.isEmpty else {
                    configuration[keyPath: path] = nil
                    return
                }
                guard let url = URLComponents(string: value), ["http", "https"].contains(url.scheme?.lowercased()),
                    url.host?.isEmpty == false
                else {
                    throw ConfigurationError(key: nil, "'\(value)' is not an http:// or https:// URL")
                }
                // It is printed by `config check` and logged at start: credentials go elsewhere.
                guard url.user == nil, url.password == nil else {
                    throw ConfigurationError(key: nil, "must not carry credentials (user:password@)")
                }
                configuration[keyPath: path] = value
            },
            read: { $0[keyPath: path] }
        )
    }

    /// A PostgreSQL URL, checked as it is read; shown with its password hidden.
    static func storeURL(_ name: String, _ path: any WritableKeyPath<RelayConfiguration, String?> & Sendable) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                guard !value.isEmpty else {
                    configuration[keyPath: path] = nil
                    return
                }
                do {
                    _ = try PostgresURL(parsing: value)
                } catch {
                    throw ConfigurationError(key: nil, "\(error) (postgres://user@host:5432/database)")
                }
                configuration[keyPath: path] = value
            },
            read: { configuration in
                configuration[keyPath: path].map {
                    (try? PostgresURL(parsing: $0).description) ?? "(not a postgres:// URL)"
                }
            }
        )
    }

    static func int(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, Int> & Sendable,
        _ range: ClosedRange<Int>
    ) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                guard let number = Int(value.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigurationError(key: nil, "'\(value)' is not a whole number")
                }
                guard range.contains(number) else {
                    throw ConfigurationError(key: nil, "\(number) is outside \(range.lowerBound)...\(range.upperBound)")
                }
                configuration[keyPath: path] = number
            },
            read: { String($0[keyPath: path]) }
        )
    }

    static func milliseconds(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, Duration> & Sendable,
        _ range: ClosedRange<Int>
    ) -> Self {
        duration(name, path, range, unit: "milliseconds", make: Duration.milliseconds) { duration in
            let (seconds, attoseconds) = duration.components
            return seconds * 1000 + attoseconds / 1_000_000_000_000_000
        }
    }

    static func hours(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, Duration> & Sendable,
        _ range: ClosedRange<Int>
    ) -> Self {
        duration(
            name,
            path,
            range,
            unit: "hours",
            make: { .seconds($0 * 3600) },
            count: { $0.components.seconds / 3600 }
        )
    }

    static func days(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, Duration> & Sendable,
        _ range: ClosedRange<Int>
    ) -> Self {
        duration(
            name,
            path,
            range,
            unit: "days",
            make: { .seconds($0 * 86_400) },
            count: { $0.components.seconds / 86_400 }
        )
    }

    static func seconds(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, Duration> & Sendable,
        _ range: ClosedRange<Int>
    ) -> Self {
        duration(name, path, range, unit: "seconds", make: Duration.seconds) { $0.components.seconds }
    }

    /// A duration written as a whole number of `unit`s.
    private static func duration(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, Duration> & Sendable,
        _ range: ClosedRange<Int>,
        unit: String,
        make: @escaping @Sendable (Int) -> Duration,
        count: @escaping @Sendable (Duration) -> Int64
    ) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                guard let number = Int(value.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigurationError(key: nil, "'\(value)' is not a whole number of \(unit)")
                }
                guard range.contains(number) else {
                    throw ConfigurationError(key: nil, "\(number) is outside \(range.lowerBound)...\(range.upperBound)")
                }
                configuration[keyPath: path] = make(number)
            },
            read: { String(count($0[keyPath: path])) }
        )
    }

    /// A JSON pointer into a lookup's response, kept in the lookup's pointer table under `field`.
    static func pointer(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, [String: String]> & Sendable,
        _ field: String
    ) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                guard JSONPointer(value) != nil else {
                    throw ConfigurationError(key: nil, "'\(value)' is not a JSON pointer (RFC 6901: empty, or /a/0/b)")
                }
                configuration[keyPath: path][field] = value
            },
            read: { $0[keyPath: path][field] }
        )
    }

    static func pointerText(_ name: String, _ path: any WritableKeyPath<RelayConfiguration, String> & Sendable) -> Self
    {
        Self(
            name: name,
            apply: { configuration, value in
                guard JSONPointer(value) != nil else {
                    throw ConfigurationError(key: nil, "'\(value)' is not a JSON pointer (RFC 6901: empty, or /a/0/b)")
                }
                configuration[keyPath: path] = value
            },
            read: { $0[keyPath: path] }
        )
    }

    static func bool(_ name: String, _ path: any WritableKeyPath<RelayConfiguration, Bool> & Sendable) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                switch value.lowercased() {
                case "true", "yes", "1", "on": configuration[keyPath: path] = true
                case "false", "no", "0", "off": configuration[keyPath: path] = false
                default: throw ConfigurationError(key: nil, "'\(value)' is not true or false")
                }
            },
            read: { String($0[keyPath: path]) }
        )
    }

    static func choice(
        _ name: String,
        _ path: any WritableKeyPath<RelayConfiguration, String> & Sendable,
        _ choices: [String]
    ) -> Self {
        Self(
            name: name,
            apply: { configuration, value in
                guard choices.contains(value) else {
                    throw ConfigurationError(key: nil, "'\(value)' is not one of \(choices.joined(separator: ", "))")
                }
                configuration[keyPath: path] = value
            },
            read: { $0[keyPath: path] }
        )
    }
}
