import ArgumentParser
import Foundation
import RelayAMQP
import RelayService

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Inspect the configuration.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration (secrets redacted) and check it.",
            discussion: "Exits 0 when `run` would accept it, 78 with the offending key otherwise."
        )

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let (configuration, resolved) = try options.load()
            print("# effective configuration (source: \(options.configurationPath ?? "built-in defaults"))")
            let width = resolved.map(\.key.count).max() ?? 0
            for entry in resolved {
                let value = entry.displayValue ?? "<not set>"
                let padded = entry.key.padding(toLength: width, withPad: " ", startingAt: 0)
                print("\(padded)  \(value)  (\(entry.source))")
            }
            // What `run` checks beyond single keys: the topology file and the required secret.
            let topology: Topology
            do {
                topology = try Topology.load(contentsOf: configuration.amqp.topologyFile)
            } catch {
                throw reportConfigurationFailure(
                    .init(error: ConfigurationError(key: "amqp.topologyFile", error.message))
                )
            }
            print(
                "# topology: \(topology.exchanges.count) exchanges, \(topology.queues.count) queues from "
                    + "\(configuration.amqp.topologyFile), declared into vhost '\(configuration.amqp.virtualHost)' (amqp.vhost)"
            )
            if configuration.identity.phoneHashKey == nil {
                throw reportConfigurationFailure(
                    .init(
                        error: ConfigurationError(
                            key: "identity.phoneHashKey",
                            "is not set: set RELAY_IDENTITY_PHONE_HASH_KEY or RELAY_IDENTITY_PHONE_HASH_KEY_FILE"
                        )
                    )
                )
            }
            if configuration.privacy.encryptionKey == nil {
                throw reportConfigurationFailure(
                    .init(
                        error: ConfigurationError(
                            key: "privacy.encryptionKey",
                            "is not set: set RELAY_PRIVACY_ENCRYPTION_KEY or RELAY_PRIVACY_ENCRYPTION_KEY_FILE"
                        )
                    )
                )
            }
            print("configuration OK")
        }
    }
}
