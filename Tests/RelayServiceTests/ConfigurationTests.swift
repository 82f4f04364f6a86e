import Foundation
import Logging
import RelayAMQP
import Testing

@testable import RelayService

/// The repository root: this file is `<root>/Tests/RelayServiceTests/ConfigurationTests.swift`.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // RelayServiceTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()  // <root>

/// The committed, documented default configuration.
let committedConfigPath = repositoryRoot.appendingPathComponent(RelayConfiguration.defaultFilePath).path

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("relay-config-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Writes `contents` to a new file in the directory and returns its path.
    func write(_ contents: String, name: String = "relay-\(UUID().uuidString).yaml") throws -> String {
        let file = url.appendingPathComponent(name)
        try contents.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// The YAML text of one dotted key: `amqp.tls.verifyPeer`, `x` → nested mappings ending in `verifyPeer: x`.
func yaml(key: String, value: String) -> String {
    let parts = key.split(separator: ".")
    var text = ""
    for (depth, part) in parts.enumerated() {
        let indent = String(repeating: "  ", count: depth)
        text += depth == parts.count - 1 ? "\(indent)\(part): \(value)\n" : "\(indent)\(part):\n"
    }
    return text
}

/// The leaf keys of a simple block-style YAML file, found line by line without a YAML library, so
/// the check of the committed file does not rely only on the reader under test.
func scanLeafKeys(ofYAML text: String) -> (leaves: Set<String>, unparsed: [String]) {
    var stack: [(indent: Int, name: String)] = []
    var leaves = Set<String>()
    var unparsed: [String] = []
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let line = String(rawLine)
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
        guard let colon = trimmed.firstIndex(of: ":") else {
            unparsed.append(line)
            continue
        }
        let indent = line.prefix { $0 == " " }.count
        let name = String(trimmed[..<colon])
        var value = String(trimmed[trimmed.index(after: colon)...])
        if let comment = value.range(of: " #") { value = String(value[..<comment.lowerBound]) }
        value = value.trimmingCharacters(in: .whitespaces)
        while let last = stack.last, last.indent >= indent { stack.removeLast() }
        let fullName = (stack.map(\.name) + [name]).joined(separator: ".")
        if value.isEmpty {
            stack.append((indent, name))
        } else {
            leaves.insert(fullName)
        }
    }
    return (leaves, unparsed)
}

/// The leading comment block of a YAML file.
func headerComment(ofYAML text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false)
        .prefix { $0.hasPrefix("#") || $0.trimmingCharacters(in: .whitespaces).isEmpty }
        .joined(separator: "\n")
}

/// A valid, non-default value for every key, so that overriding each one is observable.
let sampleValues: [String: String] = [
    "amqp.host": "broker.internal",
    "amqp.port": "5671",
    "amqp.vhost": "relay",
    "amqp.user": "relay-user",
    "amqp.password": "s3cret-broker-pass",
    "amqp.heartbeatSeconds": "45",
    "amqp.tls.enabled": "true",
    "amqp.tls.caCertificate": "/etc/ssl/broker-ca.pem",
    "amqp.tls.verifyPeer": "false",
    "amqp.prefetch": "16",
    "amqp.topologyFile": "/etc/relay/topology.json",
    "amqp.namePrefix": "staging.",
    "platform.baseUrl": "https://api.example.com",
    "platform.requestTimeoutMs": "2500",
    "platform.simulatorPort": "9099",
    "identity.phoneHashKey": "hash-key-0123456789abcdef0123456789abcdef",
    "crm.postCallWebhookUrl": "https://crm.example.com/hooks/post-call",
    "identity.defaultRegion": "GB",
    "crm.lookup.urlTemplate": "https://crm.example.com/search?phone={phone}",
    "crm.lookup.authorization": "Bearer crm-token-0123456789",
    "crm.lookup.timeoutMs": "1500",
    "crm.lookup.resultsPointer": "/searchRecords",
    "crm.lookup.contactIdPointer": "/sys_id",
    "crm.lookup.accountIdPointer": "/account/id",
    "crm.lookup.namePointer": "/full_name",
    "crm.lookup.emailPointer": "/mail",
    "crm.lookup.caseIdPointer": "/case",
    "crm.lookup.loyaltyTierPointer": "/tier",
    "crm.lookup.interactionCountPointer": "/count",
    "crm.lookup.severalMatches": "oldest",
    "crm.contactLookup.urlTemplate": "https://crm.example.com/contacts/{contactId}",
    "crm.contactLookup.resultsPointer": "/record",
    "identity.overrideTtlSeconds": "86400",
    "crm.breaker.failureThreshold": "3",
    "crm.breaker.openSeconds": "60",
    "erp.lookup.urlTemplate": "https://erp.example.com/accounts/{accountId}",
    "erp.lookup.authorization": "Basic ZXJwOnNlY3JldA==",
    "erp.lookup.timeoutMs": "800",
    "erp.lookup.accountStatusPointer": "/state",
    "erp.breaker.failureThreshold": "4",
    "erp.breaker.openSeconds": "90",
    "store.path": "/var/lib/identity-relay/relay.sqlite",
    "store.url": "postgres://relay@db.internal:5432/relay",
    "amqp.failoverNodes": "rabbit-2:5672,rabbit-3:5673",
    "store.password": "pg-secret-from-a-file",
    "store.schema": "relay_eu",
    "store.maxConnections": "24",
    "store.instanceName": "relay-a",
    "store.claimLeaseSeconds": "20",
    "correlation.orphanAfterSeconds": "7200",
    "correlation.wrapUpGraceSeconds": "120",
    "correlation.startGraceSeconds": "300",
    "correlation.processedEventRetentionSeconds": "86400",
    "correlation.timerScanIntervalMs": "250",
    "delivery.pollIntervalMs": "500",
    "platform.breaker.failureThreshold": "3",
    "platform.breaker.openSeconds": "10",
    "delivery.concurrency": "32",
    "delivery.maxAttempts": "7",
    "delivery.baseDelayMs": "100",
    "delivery.maxDelayMs": "9000",
    "delivery.maxRetryAfterMs": "60000",
    "webhook.signingSecret": "whsec_c2lnbmluZy1zZWNyZXQtZm9yLXRlc3Rz",
    "input.maxBodyBytes": "1024",
    "input.maxIdLength": "64",
    "log.level": "debug",
    "delivery.enrichmentConcurrency": "32",
    "enrichment.maxAgeSeconds": "1200",
    "enrichment.backlogRatePerSecond": "20",
    "crm.emailLookup.urlTemplate": "https://crm.example.com/contacts?email={email}",
    "crm.messagingLookup.urlTemplate": "https://crm.example.com/contacts?messagingId={messagingId}&platform={platform}",
    "crm.nameLookup.urlTemplate": "https://crm.example.com/contacts?name={name}",
    "reconciliation.intervalHours": "6",
    "reconciliation.windowHours": "48",
    "admin.enabled": "false",
    "admin.host": "0.0.0.0",
    "admin.port": "9191",
    "admin.token": "admin-token-for-the-tests",
    "admin.lookupBudgetMs": "150",
    "admin.lookupCacheSeconds": "30",
    "admin.maxBodyBytes": "4096",
    "privacy.encryptionKey": "c2FtcGxlLWVuY3J5cHRpb24ta2V5LTMyLWJ5dGVzISE=",
    "privacy.retentionDays": "7",
    "privacy.purgeIntervalSeconds": "60",
    "contacts.temporaryTtlDays": "90",
    "tracing.otlpEndpoint": "http://otel-collector.internal:4318/v1/traces",
    "tracing.serviceName": "identity-relay-eu",
]

@Suite("The committed Config/relay.yaml")
struct CommittedConfigurationTests {
    let text: String

    init() throws {
        text = try String(contentsOfFile: committedConfigPath, encoding: .utf8)
    }

    @Test("loads without error and yields the built-in default of every key")
    func loadsToDefaults() throws {
        let (fromFile, fileResolved) = try RelayConfiguration.load(filePath: committedConfigPath, environment: [:])
        let (_, defaultResolved) = try RelayConfiguration.load(filePath: nil, environment: [:])

        #expect(fileResolved.map(\.key) == RelayConfiguration.keys.map(\.name))
        #expect(defaultResolved.map(\.key) == RelayConfiguration.keys.map(\.name))
        let defaults = Dictionary(uniqueKeysWithValues: defaultResolved.map { ($0.key, $0.displayValue) })
        for entry in fileResolved {
            #expect(entry.displayValue == defaults[entry.key] ?? nil, "\(entry.key) differs from RelayConfiguration()")
        }
        // The display values of a nil-file load are those of `RelayConfiguration()` itself.
        let builtIn = RelayConfiguration()
        for definition in RelayConfiguration.keys {
            let expected =
                definition.isSecret ? definition.read(builtIn).map { _ in "<redacted>" } : definition.read(builtIn)
            #expect(defaults[definition.name] == expected, "\(definition.name)")
            #expect(definition.read(fromFile) == definition.read(builtIn), "\(definition.name)")
        }
        // Spot checks of typed values, in case display and value drift apart.
        #expect(fromFile.amqp.port == 5672)
        #expect(fromFile.amqp.tlsCACertificate == nil)
        #expect(fromFile.platform.requestTimeout == .seconds(5))
        #expect(fromFile.delivery.maxRetryAfter == .seconds(3600))
        #expect(fromFile.correlation.orphanAfter == .seconds(4 * 3600))
        #expect(fromFile.identity.phoneHashKey == nil)
    }

    @Test("every non-secret key comes from the file, every secret from nowhere")
    func sources() throws {
        let (_, resolved) = try RelayConfiguration.load(filePath: committedConfigPath, environment: [:])
        for entry in resolved {
            if entry.isSecret {
                #expect(entry.source == .defaultValue, "\(entry.key)")
            } else {
                #expect(entry.source == .file(committedConfigPath), "\(entry.key)")
            }
        }
    }

    @Test("documents exactly the keys of RelayConfiguration.keys: values for plain keys, the header for secrets")
    func keysMatchTheTable() throws {
        let scan = scanLeafKeys(ofYAML: text)
        #expect(scan.unparsed.isEmpty, "lines the scan could not read: \(scan.unparsed)")
        // The line scan and the reader agree on what the file holds.
        let flattened = try RelayConfiguration.flatten(yaml: text, path: committedConfigPath)
        #expect(Set(flattened.keys) == scan.leaves)

        let table = Set(RelayConfiguration.keys.map(\.name))
        #expect(table.count == RelayConfiguration.keys.count, "duplicate names in RelayConfiguration.keys")
        #expect(
            scan.leaves.subtracting(table).isEmpty,
            "keys in the YAML but not in the code: \(scan.leaves.subtracting(table))"
        )

        let header = headerComment(ofYAML: text)
        for definition in RelayConfiguration.keys {
            let envName = RelayConfiguration.environmentName(for: definition.name)
            if definition.isSecret {
                #expect(!scan.leaves.contains(definition.name), "secret \(definition.name) is in the committed YAML")
                let line = header.split(separator: "\n").first { $0.contains(" \(definition.name) ") }
                #expect(line != nil, "secret \(definition.name) is not named in the header comment")
                #expect(line?.contains(" \(envName) ") == true, "header line of \(definition.name) lacks \(envName)")
                #expect(
                    line?.contains(" \(envName)_FILE") == true,
                    "header line of \(definition.name) lacks \(envName)_FILE"
                )
            } else {
                #expect(scan.leaves.contains(definition.name), "\(definition.name) is not documented in the YAML")
            }
        }
    }

    @Test("the header's example of the environment naming is what the code does")
    func headerNamingExample() throws {
        let header = headerComment(ofYAML: text)
        let example = try #require(header.split(separator: "\n").first { $0.contains("->") })
        let sides = example.dropFirst().split(separator: ":", maxSplits: 1).last?.components(separatedBy: "->")
        let parts = try #require(sides)
        try #require(parts.count == 2)
        let key = parts[0].trimmingCharacters(in: .whitespaces)
        let envName = parts[1].trimmingCharacters(in: CharacterSet.whitespaces.union(CharacterSet(charactersIn: ".")))
        #expect(RelayConfiguration.keys.contains { $0.name == key })
        #expect(RelayConfiguration.environmentName(for: key) == envName)
    }
}

@Suite("Environment overrides")
struct EnvironmentOverrideTests {
    @Test("the documented names override the file, and the source says env")
    func documentedNames() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write(
            """
            amqp:
              heartbeatSeconds: 10
              tls:
                verifyPeer: true
            platform:
              baseUrl: http://from-file.example
            """
        )
        let environment = [
            "RELAY_AMQP_HEARTBEAT_SECONDS": "45",
            "RELAY_AMQP_TLS_VERIFY_PEER": "false",
            "RELAY_PLATFORM_BASE_URL": "https://from-env.example",
        ]

        let (fileOnly, _) = try RelayConfiguration.load(filePath: path, environment: [:])
        #expect(fileOnly.amqp.heartbeatSeconds == 10)
        #expect(fileOnly.platform.baseURL == "http://from-file.example")

        let (configuration, resolved) = try RelayConfiguration.load(filePath: path, environment: environment)
        #expect(configuration.amqp.heartbeatSeconds == 45)
        #expect(configuration.amqp.tlsVerifyPeer == false)
        #expect(configuration.platform.baseURL == "https://from-env.example")
        let byKey = Dictionary(uniqueKeysWithValues: resolved.map { ($0.key, $0) })
        #expect(byKey["amqp.heartbeatSeconds"]?.source == .environment("RELAY_AMQP_HEARTBEAT_SECONDS"))
        #expect(byKey["amqp.heartbeatSeconds"]?.displayValue == "45")
        #expect(byKey["amqp.tls.verifyPeer"]?.source == .environment("RELAY_AMQP_TLS_VERIFY_PEER"))
        #expect(byKey["amqp.tls.verifyPeer"]?.displayValue == "false")
        #expect(byKey["platform.baseUrl"]?.source == .environment("RELAY_PLATFORM_BASE_URL"))
        #expect(byKey["platform.baseUrl"]?.displayValue == "https://from-env.example")
        // Untouched keys keep their file or default source.
        #expect(byKey["amqp.host"]?.source == .defaultValue)
        #expect(String(describing: byKey["amqp.heartbeatSeconds"]!.source) == "env RELAY_AMQP_HEARTBEAT_SECONDS")
    }

    @Test("there is a sample value for every key")
    func sampleValuesCoverTheTable() {
        #expect(Set(sampleValues.keys) == Set(RelayConfiguration.keys.map(\.name)))
    }

    @Test("every key can be overridden over the committed file", arguments: RelayConfiguration.keys.map(\.name))
    func everyKey(key: String) throws {
        let definition = try #require(RelayConfiguration.keys.first { $0.name == key })
        let value = try #require(sampleValues[key], "no sample value for \(key)")
        let envName = RelayConfiguration.environmentName(for: key)
        let (base, _) = try RelayConfiguration.load(filePath: committedConfigPath, environment: [:])
        #expect(definition.read(base) != value, "the sample value of \(key) is its default: the test proves nothing")

        let (configuration, resolved) = try RelayConfiguration.load(
            filePath: committedConfigPath,
            environment: [envName: value]
        )
        #expect(definition.read(configuration) == value)
        let entry = try #require(resolved.first { $0.key == key })
        #expect(entry.source == .environment(envName))
        #expect(entry.displayValue == (definition.isSecret ? "<redacted>" : value))
        #expect(
            resolved.filter { $0.source != .file(committedConfigPath) && $0.source != .defaultValue }.map(\.key) == [
                key
            ]
        )
    }
}

@Suite("The same text means the same value in the YAML and in the environment")
struct FileEnvironmentParityTests {
    /// Texts YAML 1.1 would otherwise turn into booleans, octal or hex numbers, floats or dates.
    static let cases: [(key: String, text: String)] = [
        ("amqp.namePrefix", "no"),
        ("amqp.user", "on"),
        ("amqp.vhost", "2024-01-01"),
        ("amqp.user", "1e3"),
        ("amqp.namePrefix", "1.10"),
        ("amqp.user", "0123"),
        ("amqp.port", "010"),
        ("amqp.prefetch", "0x10"),
        ("platform.requestTimeoutMs", "1:30"),
        ("amqp.tls.enabled", "yes"),
        ("amqp.host", "broker.internal"),
        ("delivery.maxAttempts", "3"),
    ]

    @Test("file and environment resolve a text alike", arguments: cases)
    func parity(key: String, text: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write(yaml(key: key, value: text))
        let envName = RelayConfiguration.environmentName(for: key)
        let fromFile = Result { () throws(ConfigurationError) in
            try RelayConfiguration.load(filePath: path, environment: [:]).1.first { $0.key == key }?.displayValue
        }
        let fromEnvironment = Result { () throws(ConfigurationError) in
            try RelayConfiguration.load(filePath: nil, environment: [envName: text]).1.first { $0.key == key }?
                .displayValue
        }
        switch (fromFile, fromEnvironment) {
        case (.success(let file), .success(let environment)):
            #expect(
                file == environment,
                "\(key): \(text) gives \(file ?? "nil") from the file, \(environment ?? "nil") from env"
            )
        case (.failure(let file), .failure(let environment)):
            #expect(file.key == key)
            #expect(environment.key == key)
        default:
            Issue.record("\(key): \(text) gives \(fromFile) from the file but \(fromEnvironment) from env")
        }
    }

    @Test("a YAML null leaves the default; an empty quoted string is a value")
    func nulls() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write(
            "amqp:\n  host: ~\n  namePrefix: \"\"\n  tls:\n    caCertificate:\nplatform:\n  baseUrl: null\n"
        )
        let (configuration, resolved) = try RelayConfiguration.load(filePath: path, environment: [:])
        #expect(configuration.amqp.host == RelayConfiguration().amqp.host)
        #expect(configuration.amqp.tlsCACertificate == nil)
        #expect(configuration.platform.baseURL == "")
        let sources = Dictionary(uniqueKeysWithValues: resolved.map { ($0.key, $0.source) })
        #expect(sources["amqp.host"] == .defaultValue)
        #expect(sources["amqp.namePrefix"] == .file(path))
    }
}

@Suite("Secrets")
struct SecretTests {
    static let secretKeys = RelayConfiguration.keys.filter(\.isSecret).map(\.name)

    @Test("exactly the documented secrets are secret")
    func secretSet() {
        #expect(
            Set(Self.secretKeys) == [
                "amqp.password", "identity.phoneHashKey", "webhook.signingSecret", "crm.lookup.authorization",
                "erp.lookup.authorization", "privacy.encryptionKey", "admin.token", "store.password",
            ]
        )
    }

    @Test("a broker password in the YAML is refused, naming the key and the variable to use")
    func passwordInYAMLRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("amqp:\n  password: hunter2\n")
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: [:])
        }
        #expect(error.key == "amqp.password")
        #expect(error.message.contains("RELAY_AMQP_PASSWORD"))
        #expect(!error.description.contains("hunter2"))
    }

    @Test("every secret is refused in the YAML, even when the environment also sets it", arguments: secretKeys)
    func secretInYAMLRefused(key: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let secret = try #require(sampleValues[key])
        let envName = RelayConfiguration.environmentName(for: key)
        let path = try directory.write("log:\n  level: info\n" + yaml(key: key, value: secret))
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: [envName: secret])
        }
        #expect(error.key == key)
        #expect(error.message.contains(envName))
        #expect(error.message.contains("\(envName)_FILE"))
        #expect(!error.description.contains(secret))
    }

    @Test("secrets from the environment and from *_FILE are applied and shown redacted")
    func secretsFromEnvironmentAndFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let hashKey = "file-hash-key-0123456789abcdef0123456789"
        let hashKeyPath = try directory.write(hashKey + "\n", name: "phone-hash-key")
        let webhookSecret = "whsec_ZmlsZS1zaWduaW5nLXNlY3JldA"
        let webhookPath = try directory.write(webhookSecret + "\n", name: "webhook-secret")
        let password = "env-broker-password-7f3a"
        let environment = [
            "RELAY_IDENTITY_PHONE_HASH_KEY_FILE": hashKeyPath,
            "RELAY_WEBHOOK_SIGNING_SECRET_FILE": webhookPath,
            "RELAY_AMQP_PASSWORD": password,
        ]

        let (configuration, resolved) = try RelayConfiguration.load(
            filePath: committedConfigPath,
            environment: environment
        )
        #expect(configuration.identity.phoneHashKey == hashKey)
        #expect(configuration.webhook.signingSecret == webhookSecret)
        #expect(configuration.amqp.password == password)
        #expect(configuration.amqp.connection.password == password)

        let byKey = Dictionary(uniqueKeysWithValues: resolved.map { ($0.key, $0) })
        let hashEntry = try #require(byKey["identity.phoneHashKey"])
        #expect(hashEntry.displayValue == "<redacted>")
        #expect(hashEntry.isSecret)
        #expect(hashEntry.source == .secretFile(hashKeyPath))
        let webhookEntry = try #require(byKey["webhook.signingSecret"])
        #expect(webhookEntry.displayValue == "<redacted>")
        #expect(webhookEntry.source == .secretFile(webhookPath))
        let passwordEntry = try #require(byKey["amqp.password"])
        #expect(passwordEntry.displayValue == "<redacted>")
        #expect(passwordEntry.source == .environment("RELAY_AMQP_PASSWORD"))

        let described = String(describing: resolved)
        for secret in [hashKey, webhookSecret, password] {
            #expect(!described.contains(secret))
        }
        #expect(described.contains("<redacted>"))
    }

    @Test("an unset optional secret is shown as unset, not as redacted")
    func unsetSecret() throws {
        let (_, resolved) = try RelayConfiguration.load(filePath: committedConfigPath, environment: [:])
        let entry = try #require(resolved.first { $0.key == "identity.phoneHashKey" })
        #expect(entry.displayValue == nil)
        #expect(entry.source == .defaultValue)
    }
}

/// One bad configuration and the key its error must name.
struct BadConfiguration: Sendable, CustomTestStringConvertible {
    var label: String
    var yaml: String?
    var environment: [String: String] = [:]
    var key: String
    /// Text that must not appear in the error (a secret).
    var mustNotContain: String?

    var testDescription: String { label }
}

@Suite("Bad values name the key at fault")
struct BadValueTests {
    static let cases: [BadConfiguration] = [
        .init(label: "port 70000 from env", yaml: nil, environment: ["RELAY_AMQP_PORT": "70000"], key: "amqp.port"),
        .init(label: "port 70000 from file", yaml: "amqp:\n  port: 70000\n", key: "amqp.port"),
        .init(
            label: "heartbeat abc",
            yaml: nil,
            environment: ["RELAY_AMQP_HEARTBEAT_SECONDS": "abc"],
            key: "amqp.heartbeatSeconds"
        ),
        .init(label: "unknown key amqp.hots", yaml: "amqp:\n  hots: broker\n", key: "amqp.hots"),
        .init(label: "unknown top-level key", yaml: "amqpp:\n  host: broker\n", key: "amqpp.host"),
        .init(label: "log.level loud", yaml: "log:\n  level: loud\n", key: "log.level"),
        .init(label: "platform.baseUrl ftp", yaml: "platform:\n  baseUrl: ftp://x\n", key: "platform.baseUrl"),
        .init(
            label: "platform.baseUrl not a URL",
            yaml: nil,
            environment: ["RELAY_PLATFORM_BASE_URL": "api.example.com"],
            key: "platform.baseUrl"
        ),
        .init(
            label: "webhook secret without whsec_",
            yaml: nil,
            environment: ["RELAY_WEBHOOK_SIGNING_SECRET": "plain-signing-secret-value"],
            key: "webhook.signingSecret",
            mustNotContain: "plain-signing-secret-value"
        ),
        .init(
            label: "baseDelayMs above maxDelayMs",
            yaml: "delivery:\n  baseDelayMs: 6000\n  maxDelayMs: 5000\n",
            key: "delivery.baseDelayMs"
        ),
        .init(
            label: "short phone hash key",
            yaml: nil,
            environment: ["RELAY_IDENTITY_PHONE_HASH_KEY": "too-short-key"],
            key: "identity.phoneHashKey",
            mustNotContain: "too-short-key"
        ),
        .init(
            label: "unreadable phone hash key file",
            yaml: nil,
            environment: ["RELAY_IDENTITY_PHONE_HASH_KEY_FILE": "/nonexistent/relay-\(UUID().uuidString)"],
            key: "identity.phoneHashKey"
        ),
        .init(
            label: "encryption key of 16 bytes",
            yaml: nil,
            environment: ["RELAY_PRIVACY_ENCRYPTION_KEY": "c2l4dGVlbi1ieXRlcy1rZXk="],
            key: "privacy.encryptionKey",
            mustNotContain: "c2l4dGVlbi1ieXRlcy1rZXk="
        ),
        .init(
            label: "encryption key not base64",
            yaml: nil,
            environment: ["RELAY_PRIVACY_ENCRYPTION_KEY": "not base64 at all, clearly!"],
            key: "privacy.encryptionKey",
            mustNotContain: "not base64 at all"
        ),
        .init(
            label: "short admin token",
            yaml: nil,
            environment: ["RELAY_ADMIN_TOKEN": "tiny-token1"],
            key: "admin.token",
            mustNotContain: "tiny-token1"
        ),
        .init(label: "retention of zero days", yaml: "privacy:\n  retentionDays: 0\n", key: "privacy.retentionDays"),
        .init(label: "list value", yaml: "amqp:\n  host:\n    - a.example\n    - b.example\n", key: "amqp.host"),
        .init(label: "flow list value", yaml: "log:\n  level: [info, debug]\n", key: "log.level"),
        .init(
            label: "bool not a bool",
            yaml: nil,
            environment: ["RELAY_AMQP_TLS_ENABLED": "maybe"],
            key: "amqp.tls.enabled"
        ),
        .init(label: "empty host", yaml: nil, environment: ["RELAY_AMQP_HOST": ""], key: "amqp.host"),
        .init(label: "fractional milliseconds", yaml: "delivery:\n  maxDelayMs: 2.5\n", key: "delivery.maxDelayMs"),
    ]

    @Test("the error names the key", arguments: cases)
    func namesTheKey(bad: BadConfiguration) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try bad.yaml.map { try directory.write($0) }
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: bad.environment)
        }
        #expect(error.key == bad.key, "\(error)")
        #expect(error.description.hasPrefix("\(bad.key): "))
        #expect(!error.message.isEmpty)
        if let secret = bad.mustNotContain {
            #expect(!error.description.contains(secret))
        }
    }

    @Test("a bad value in the file says it came from the file")
    func fileValueNamesTheFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("amqp:\n  prefetch: lots\n")
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: [:])
        }
        #expect(error.key == "amqp.prefetch")
        #expect(error.message.contains(path))
    }

    @Test("invalid YAML: no key, and the message names the file")
    func invalidYAML() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("amqp:\n  host: [unclosed\n  port: 5672\n")
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: [:])
        }
        #expect(error.key == nil)
        #expect(error.message.contains(path))
    }

    @Test("a YAML file that is not a mapping: no key, and the message names the file")
    func notAMapping() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("- amqp\n- log\n")
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: [:])
        }
        #expect(error.key == nil)
        #expect(error.message.contains(path))
    }

    @Test("a missing file: no key, and the message names the file")
    func missingFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID().uuidString).yaml")
            .path
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: [:])
        }
        #expect(error.key == nil)
        #expect(error.message.contains(path))
    }
}

@Suite("Environment variable names")
struct EnvironmentNameTests {
    @Test(
        "RELAY_ plus the key in upper snake case",
        arguments: [
            ("amqp.heartbeatSeconds", "RELAY_AMQP_HEARTBEAT_SECONDS"),
            ("amqp.tls.verifyPeer", "RELAY_AMQP_TLS_VERIFY_PEER"),
            ("platform.baseUrl", "RELAY_PLATFORM_BASE_URL"),
            ("amqp.host", "RELAY_AMQP_HOST"),
            ("amqp.vhost", "RELAY_AMQP_VHOST"),
            ("amqp.tls.caCertificate", "RELAY_AMQP_TLS_CA_CERTIFICATE"),
            ("identity.phoneHashKey", "RELAY_IDENTITY_PHONE_HASH_KEY"),
            ("platform.requestTimeoutMs", "RELAY_PLATFORM_REQUEST_TIMEOUT_MS"),
            ("delivery.maxRetryAfterMs", "RELAY_DELIVERY_MAX_RETRY_AFTER_MS"),
            ("webhook.signingSecret", "RELAY_WEBHOOK_SIGNING_SECRET"),
            ("privacy.encryptionKey", "RELAY_PRIVACY_ENCRYPTION_KEY"),
            ("contacts.temporaryTtlDays", "RELAY_CONTACTS_TEMPORARY_TTL_DAYS"),
        ]
    )
    func name(key: String, expected: String) {
        #expect(RelayConfiguration.environmentName(for: key) == expected)
    }

    @Test("no two keys share an environment variable")
    func unique() {
        let names = RelayConfiguration.keys.map { RelayConfiguration.environmentName(for: $0.name) }
        #expect(Set(names).count == names.count)
    }
}

@Suite("Mistyped RELAY_ environment variables")
struct UnknownEnvironmentVariableTests {
    @Test(
        "a RELAY_ variable that names no key is an error naming it and the nearest key",
        arguments: [
            ("RELAY_STORE_PTH", "RELAY_STORE_PATH"),
            ("RELAY_CRM_LOOKUP_URL_TEMPLTE", "RELAY_CRM_LOOKUP_URL_TEMPLATE"),
            ("RELAY_AMQP_HEARTBEAT_SECOND", "RELAY_AMQP_HEARTBEAT_SECONDS"),
            ("RELAY_WEBHOOK_SIGNING_SECRET_FIEL", "RELAY_WEBHOOK_SIGNING_SECRET_FILE"),
        ]
    )
    func typo(name: String, nearest: String) throws {
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: nil, environment: [name: "x"])
        }
        #expect(error.key == name, "\(error)")
        #expect(error.message.contains(nearest), "\(error)")
    }

    @Test("a key an earlier version read is refused with what to do instead, in the file and the environment")
    func retiredKey() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("delivery:\n  inProcessRetryLimitMs: 2000\n")
        let fromFile = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: path, environment: [:])
        }
        #expect(fromFile.key == "delivery.inProcessRetryLimitMs")
        #expect(fromFile.message.contains("no longer used") && fromFile.message.contains("outbox"), "\(fromFile)")
        let fromEnvironment = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(
                filePath: nil,
                environment: ["RELAY_DELIVERY_IN_PROCESS_RETRY_LIMIT_MS": "2000"]
            )
        }
        #expect(fromEnvironment.key == "delivery.inProcessRetryLimitMs")
        #expect(
            fromEnvironment.message.contains("unset RELAY_DELIVERY_IN_PROCESS_RETRY_LIMIT_MS"),
            "\(fromEnvironment)"
        )
    }

    @Test("RELAY_STORE_DSN, a key that does not exist, is refused too")
    func nonexistentKey() throws {
        let error = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: nil, environment: ["RELAY_STORE_DSN": "postgres://db/relay"])
        }
        #expect(error.key == "RELAY_STORE_DSN")
        #expect(!error.description.contains("postgres://db/relay"), "the value may be a secret: never echoed")
    }

    @Test("the _FILE form of a secret, the scripts' and the tests' own variables are not keys and are accepted")
    func accepted() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let secret = try directory.write("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", name: "secret")
        let (configuration, _) = try RelayConfiguration.load(
            filePath: nil,
            environment: [
                "RELAY_WEBHOOK_SIGNING_SECRET_FILE": secret, "RELAY_CONFIG": "Config/relay.yaml",
                "RELAY_BROKER_PORT": "5673", "RELAY_TEST_BROKER_PORT": "5673", "RELAY_REPO_ROOT": "/tmp",
                "RELAY_POSTGRES_PORT": "5433", "RELAY_TEST_POSTGRES_URL": "postgres://relay@127.0.0.1:5433/relay",
                "RELAY_STORE_PATH": "/tmp/x.sqlite", "NOT_RELAY_STORE_PTH": "ignored: not ours",
            ]
        )
        #expect(configuration.store.path == "/tmp/x.sqlite")
        #expect(configuration.webhook.signingSecret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    }
}

@Suite("The store a configuration names")
struct StoreConfigurationTests {
    @Test("store.url must be a postgres:// URL naming user, host and database; config check hides its password")
    func storeURL() throws {
        let refused = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: nil, environment: ["RELAY_STORE_URL": "mysql://relay@db/relay"])
        }
        #expect(refused.key == "store.url" && refused.message.contains("not a postgres:// URL"), "\(refused)")
        let noDatabase = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: nil, environment: ["RELAY_STORE_URL": "postgres://relay@db"])
        }
        #expect(noDatabase.key == "store.url" && noDatabase.message.contains("names no database"), "\(noDatabase)")

        let (configuration, resolved) = try RelayConfiguration.load(
            filePath: nil,
            environment: ["RELAY_STORE_URL": "postgres://relay:hunter2@db.internal:6432/relay"]
        )
        #expect(configuration.store.url == "postgres://relay:hunter2@db.internal:6432/relay")
        let shown = try #require(resolved.first { $0.key == "store.url" }).displayValue
        #expect(shown == "postgres://relay:***@db.internal:6432/relay")

        let badSchema = try #require(throws: ConfigurationError.self) {
            _ = try RelayConfiguration.load(filePath: nil, environment: ["RELAY_STORE_SCHEMA": "Relay; DROP"])
        }
        #expect(badSchema.key == "store.schema")
    }

    @Test("without store.url the relay opens SQLite at store.path; with it, PostgreSQL, the password from its secret")
    func opensTheNamedStore() throws {
        var configuration = RelayConfiguration()
        configuration.store.path =
            FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: configuration.store.path) }
        let sqlite = try configuration.openStore(logger: Logger(label: "test"))
        #expect(sqlite.postgres == nil && sqlite.location == configuration.store.path)

        configuration.store.url = "postgres://relay@db.internal:5432/relay"
        configuration.store.password = "from-a-file"
        configuration.store.schema = "relay_eu"
        let postgres = try configuration.openStore(logger: Logger(label: "test"))
        #expect(postgres.postgres != nil)
        #expect(postgres.location == "postgres://relay:***@db.internal:5432/relay (schema relay_eu)")
    }
}
