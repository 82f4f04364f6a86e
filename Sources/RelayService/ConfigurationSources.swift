import Configuration
import Foundation
import Synchronization

/// A secret given as the path of a file holding it (`RELAY_ADMIN_TOKEN_FILE` for `admin.token`), as
/// container platforms mount them: the file's text, without its trailing newline, marked secret.
/// swift-configuration's `DirectoryFilesProvider` reads one directory of files named for the keys;
/// this reads the file each variable names, wherever it is.
struct SecretFileProvider: ConfigProvider, ConfigSnapshot {
    let environment: [String: String]
    /// The dotted names of the secret keys; no other key is read from a file.
    let secretKeys: Set<String>

    var providerName: String { "SecretFileProvider" }

    func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        let name = key.components.joined(separator: ".")
        let variable = RelayConfiguration.environmentName(for: name) + "_FILE"
        guard secretKeys.contains(name), let path = environment[variable] else {
            return LookupResult(encodedKey: variable, value: nil)
        }
        let contents: String
        do {
            contents = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(key: name, "cannot read \(variable) (\(path))")
        }
        return LookupResult(
            encodedKey: variable,
            value: ConfigValue(.string(contents.trimmingCharacters(in: .newlines)), isSecret: true)
        )
    }

    func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try value(forKey: key, type: type)
    }

    // The protocol's module defaults to nonisolated(nonsending); this one says it.
    nonisolated(nonsending) func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey,
        type: ConfigType,
        updatesHandler:
            nonisolated(nonsending) (
                _ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>
            ) async throws -> Return
    ) async throws -> Return {
        try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    func snapshot() -> any ConfigSnapshot { self }

    nonisolated(nonsending) func watchSnapshot<Return: ~Copyable>(
        updatesHandler:
            nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws ->
            Return
    ) async throws -> Return {
        try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
    }
}

/// The reader's report of the last key read: which provider answered, and what failed.
final class LastAccess: AccessReporter {
    private let last = Mutex<AccessEvent?>(nil)

    func report(_ event: AccessEvent) {
        last.withLock { $0 = event }
    }

    func take() -> AccessEvent? {
        last.withLock { event in
            defer { event = nil }
            return event
        }
    }
}
