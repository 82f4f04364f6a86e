import Foundation
import RelayService
import RelayTesting
import Testing

@Suite("identity-relay config check, run as a process")
struct ConfigCheckCommandTests {
    static let hashKey = "cfgcheck-hash-key-0123456789abcdef012345"
    static let encryptionKey = "Y2ZnY2hlY2stZW5jcnlwdGlvbi1rZXktMzJieXRlcyE="
    static let requiredSecrets = [
        "RELAY_IDENTITY_PHONE_HASH_KEY": hashKey, "RELAY_PRIVACY_ENCRYPTION_KEY": encryptionKey,
    ]

    @Test("a valid configuration prints every key, secrets redacted, and exits 0")
    func valid() throws {
        #expect(Self.hashKey.utf8.count == 40)
        let result = try BuiltExecutable.run(
            ["config", "check"],
            environment: Self.requiredSecrets
        )
        #expect(result.reason == .exit)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("configuration OK"))
        #expect(result.stdout.contains("source: \(RelayConfiguration.defaultFilePath)"))

        let lines = result.stdout.split(separator: "\n")
        let password = lines.first { $0.hasPrefix("amqp.password ") }
        #expect(password?.contains("<redacted>") == true, "amqp.password line: \(String(describing: password))")
        #expect(password?.contains("guest") == false)
        let hashKeyLine = lines.first { $0.hasPrefix("identity.phoneHashKey ") }
        #expect(hashKeyLine?.contains("<redacted>") == true)
        #expect(hashKeyLine?.contains("env RELAY_IDENTITY_PHONE_HASH_KEY") == true)
        #expect(lines.first { $0.hasPrefix("amqp.port ") }?.contains("5672") == true)

        #expect(!result.stdout.contains(Self.hashKey))
        #expect(!result.stderr.contains(Self.hashKey))
        #expect(lines.first { $0.hasPrefix("privacy.encryptionKey ") }?.contains("<redacted>") == true)
        #expect(!(result.stdout + result.stderr).contains(Self.encryptionKey))
    }

    @Test("a mistyped RELAY_ variable exits 78 naming it and the nearest key")
    func mistypedEnvironmentVariable() throws {
        let result = try BuiltExecutable.run(
            ["config", "check"],
            environment: Self.requiredSecrets.merging(["RELAY_CRM_LOOKUP_URL_TEMPLTE": "http://crm/{phone}"]) { $1 }
        )
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("RELAY_CRM_LOOKUP_URL_TEMPLTE"))
        #expect(result.stderr.contains("RELAY_CRM_LOOKUP_URL_TEMPLATE"))
    }

    @Test("config check says which vhost the topology is declared into")
    func namesTheVirtualHost() throws {
        let result = try BuiltExecutable.run(
            ["config", "check"],
            environment: Self.requiredSecrets.merging(["RELAY_AMQP_VHOST": "contact-center"]) { $1 }
        )
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("declared into vhost 'contact-center'"), "\(result.stdout)")
    }

    @Test("a bad port exits 78 naming amqp.port")
    func badPort() throws {
        let result = try BuiltExecutable.run(
            ["config", "check"],
            environment: Self.requiredSecrets.merging(["RELAY_AMQP_PORT": "notaport"]) { $1 }
        )
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("amqp.port"))
        #expect(!result.stdout.contains("configuration OK"))
    }

    @Test("a missing phone hash key exits 78 naming identity.phoneHashKey")
    func missingHashKey() throws {
        let result = try BuiltExecutable.run(["config", "check"], environment: [:])
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("identity.phoneHashKey"))
        #expect(!result.stdout.contains("configuration OK"))
    }

    @Test("a missing encryption key exits 78 naming privacy.encryptionKey")
    func missingEncryptionKey() throws {
        let result = try BuiltExecutable.run(
            ["config", "check"],
            environment: ["RELAY_IDENTITY_PHONE_HASH_KEY": Self.hashKey]
        )
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("privacy.encryptionKey"))
        #expect(result.stderr.contains("RELAY_PRIVACY_ENCRYPTION_KEY"))
    }

    @Test("a secret in a --config file exits 78 naming the key, without echoing the secret")
    func secretInConfigFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("amqp:\n  password: hunter2-in-yaml\n")
        let result = try BuiltExecutable.run(
            ["config", "check", "--config", path],
            environment: Self.requiredSecrets
        )
        #expect(result.reason == .exit)
        #expect(result.status == 78, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stderr.contains("amqp.password"))
        #expect(result.stderr.contains("RELAY_AMQP_PASSWORD"))
        #expect(!(result.stdout + result.stderr).contains("hunter2-in-yaml"))
    }
}
