import Foundation
import RelayAMQP
import RelayTesting
import Testing

/// The README's first command runs `identity-relay demo`: it must work end to end, as a process.
@Suite("identity-relay demo, run as a process")
struct DemoCommandTests {
    @Test("the demo shows phase 1 and 2, the webhooks and the malformed event's dead letter, and exits 0")
    func demo() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: nil)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
            }
        }
        let store = FileManager.default.temporaryDirectory.appendingPathComponent("relay-demo-\(prefix)sqlite").path
        defer { try? FileManager.default.removeItem(atPath: store) }
        let result = try BuiltExecutable.run(
            ["demo", "--calls", "3", "--timeout", "30"],
            environment: [
                "RELAY_AMQP_PORT": String(TestBroker.port), "RELAY_AMQP_NAME_PREFIX": prefix, "RELAY_STORE_PATH": store,
            ]
        )
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("customer updates received by the simulated platform"))
        // Every caller the CRM knows is shown enriched, whatever the other channels' updates did meanwhile.
        #expect(result.stdout.contains("CRM:003DEMO0001"))
        #expect(result.stdout.contains("CRM:003DEMO0003"), "\(result.stdout)")
        #expect(result.stdout.components(separatedBy: "no CRM match").count - 1 == 1, "\(result.stdout)")
        #expect(result.stdout.contains("signed post-call webhooks received by the simulated CRM (3)"))
        #expect(result.stdout.contains("the malformed event became a dead letter"))
        // The other channels' rules: the web chat by its number after its address missed, the message by its id.
        #expect(result.stdout.contains("CRM:003DEMOCHAT"), "\(result.stdout)")
        #expect(result.stdout.contains("CRM:003DEMOMSG"), "\(result.stdout)")
        #expect(!result.stdout.contains("+15550100001"), "numbers are shown masked")
    }
}
