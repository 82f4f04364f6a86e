import Foundation
import RelayService
import RelaySimulator

/// What every in-process benchmark relay shares: names under `prefix`, the topology and keys, and a
/// store in a temporary file of its own (`configuration.store.path`).
func benchmarkConfiguration(prefix: String, port: Int, repositoryRoot: String) -> RelayConfiguration {
    var configuration = RelayConfiguration()
    configuration.amqp.port = port
    configuration.amqp.namePrefix = prefix
    configuration.amqp.topologyFile = repositoryRoot + "/topology/definitions.json"
    configuration.identity.phoneHashKey = "benchmark-key-0123456789abcdef0123456789"
    configuration.privacy.encryptionKey = "YmVuY2htYXJrLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM="
    configuration.webhook.signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    configuration.store.path =
        FileManager.default.temporaryDirectory.appendingPathComponent("relay-bench-\(prefix)sqlite").path
    return configuration
}

/// Removes a benchmark relay's store, with its WAL and shared-memory files.
func removeBenchmarkStore(_ path: String) {
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
}

/// The simulated CRM's answer to a search: every benchmark caller is one known contact, answered after
/// `latency`. Nil for anything but a search, which the simulator answers itself.
func knownCallerSearchAnswer(_ request: RecordedRequest, latency: Duration) -> ScriptedResponse? {
    guard request.path.hasPrefix(SimulatedPlatform.crmSearchPath + "?") else { return nil }
    let phone = URLComponents(string: "http://x" + request.path)?.queryItems?.first { $0.name == "phone" }?.value ?? ""
    let body =
        #"{"totalSize":1,"records":[{"Id":"003B\#(phone.suffix(7))","Name":"Bench Customer","LoyaltyTier":"Gold"}]}"#
    return ScriptedResponse(
        status: 200,
        headers: [(name: "Content-Type", value: "application/json")],
        body: Array(body.utf8),
        delay: latency
    )
}
