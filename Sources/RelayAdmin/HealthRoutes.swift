import Hummingbird
import RelayService

/// The probes, `/healthz` and `/readyz`: the only routes without the token.
struct HealthRoutes: Sendable {
    let app: RelayApp

    func register(on router: Router<BasicRequestContext>) {
        router.get("healthz") { _, _ in Health(status: "up") }
        router.get("readyz") { _, _ in await readiness() }
    }

    struct Health: AdminResponse {
        var status: String
    }

    /// 200 or 503, saying which part is not ready.
    struct Readiness: AdminResponse {
        var ready: Bool
        var brokerConnected: Bool
        var consuming: Bool
        var storeWritable: Bool
        var storeError: String?

        enum CodingKeys: String, CodingKey { case ready, brokerConnected, consuming, storeWritable, storeError }

        // `storeError` only when the store refused a write: left out, not null, otherwise.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ready, forKey: .ready)
            try container.encode(brokerConnected, forKey: .brokerConnected)
            try container.encode(consuming, forKey: .consuming)
            try container.encode(storeWritable, forKey: .storeWritable)
            try container.encodeIfPresent(storeError, forKey: .storeError)
        }
    }

    private func readiness() async -> EditedResponse<Readiness> {
        let readiness = await app.readiness()
        return EditedResponse(
            status: readiness.isReady ? .ok : .serviceUnavailable,
            response: Readiness(
                ready: readiness.isReady,
                brokerConnected: readiness.brokerConnected,
                consuming: readiness.consuming,
                storeWritable: readiness.storeWritable,
                storeError: readiness.storeError
            )
        )
    }
}
