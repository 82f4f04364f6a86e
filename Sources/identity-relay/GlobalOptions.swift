import ArgumentParser
import Foundation
import Logging
import RelayService

struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The YAML configuration file. Default: $RELAY_CONFIG, else Config/relay.yaml if it exists.",
            valueName: "path"
        )
    )
    var config: String?

    var configurationPath: String? {
        if let config { return config }
        if let fromEnvironment = ProcessInfo.processInfo.environment["RELAY_CONFIG"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return FileManager.default.fileExists(atPath: RelayConfiguration.defaultFilePath)
            ? RelayConfiguration.defaultFilePath : nil
    }

    /// The configuration with where each key came from; a problem is reported on standard error, naming
    /// the key, and ends the command with EX_CONFIG.
    func load() throws -> (RelayConfiguration, [ResolvedConfigKey]) {
        do {
            return try RelayConfiguration.load(filePath: configurationPath)
        } catch {
            throw reportConfigurationFailure(ConfigurationFailure(error: error))
        }
    }
}

/// A configuration error reported as one line naming the key, with the exit status sysexits calls
/// EX_CONFIG, so scripts can tell it from a crash.
struct ConfigurationFailure: Error, CustomStringConvertible {
    var error: ConfigurationError
    var description: String { "configuration error: \(error)" }
}

extension ConfigurationFailure {
    static let exitCode = ExitCode(78)
}

func bootstrapLogging(level: String) {
    let logLevel = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevel
        // Every command's log lines pass the privacy mask, whatever a call site forgot to mask.
        return PIIMaskingLogHandler(wrapping: handler)
    }
}

func reportConfigurationFailure(_ failure: ConfigurationFailure) -> ExitCode {
    FileHandle.standardError.write(Data("identity-relay: \(failure)\n".utf8))
    return ConfigurationFailure.exitCode
}

/// One line on standard error, prefixed with the tool's name, for what a command refuses or cannot find.
func printCommandError(_ text: String) {
    FileHandle.standardError.write(Data("identity-relay: \(text)\n".utf8))
}

/// A command's result as pretty, sorted JSON on standard output, for scripts.
func printJSONResult(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
