import Foundation
public import Logging
public import RelayAMQP

/// The RabbitMQ node the integration tests run against: a real broker on loopback, started by
/// `scripts/broker start` (which `scripts/test` does).
///
/// When it is not reachable the tests fail with a message saying how to start it; they never skip,
/// because a skipped integration test proves nothing.
public enum TestBroker {
    public static var port: Int {
        Int(ProcessInfo.processInfo.environment["RELAY_TEST_BROKER_PORT"] ?? "") ?? 5672
    }

    /// The repository root, for `topology/` and `scripts/`: from the environment, else from this file.
    public static var repositoryRoot: String {
        if let root = ProcessInfo.processInfo.environment["RELAY_REPO_ROOT"], !root.isEmpty { return root }
        // Sources/RelayTesting/TestBroker.swift → the root is three levels up.
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    public static func configuration(heartbeatSeconds: Int = 10, virtualHost: String = "/") -> AMQPConfiguration {
        AMQPConfiguration(
            host: "127.0.0.1",
            port: port,
            virtualHost: virtualHost,
            heartbeatSeconds: heartbeatSeconds,
            connectTimeout: .seconds(2),
            connectionName: "identity-relay-tests",
            reconnectBaseDelay: .milliseconds(50),
            reconnectMaxDelay: .milliseconds(500)
        )
    }

    /// The project's topology file with every name prefixed by a fresh unique prefix, so tests running
    /// side by side on one broker never see each other's messages.
    public static func isolatedTopology() throws -> (topology: Topology, prefix: String) {
        let prefix = "test-\(UUID().uuidString.prefix(8).lowercased())."
        let topology = try Topology.load(contentsOf: repositoryRoot + "/topology/definitions.json")
        return (topology.prefixed(prefix), prefix)
    }

    /// A started client connected to the test broker, or a thrown error that says how to start it.
    public static func connectedClient(
        topology: Topology?,
        virtualHost: String = "/",
        logger: Logger = Logger(label: "test.amqp")
    ) async throws -> AMQPClient {
        let client = AMQPClient(
            configuration: configuration(virtualHost: virtualHost),
            topology: topology,
            logger: logger
        )
        client.start()
        do {
            try await client.waitUntilConnected(timeout: .seconds(15))
        } catch {
            await client.shutdown()
            throw TestBrokerUnavailable(port: port, underlying: error)
        }
        return client
    }

    /// Deletes the test's queues and exchanges, best effort, so repeated runs leave the broker clean.
    public static func tearDown(_ topology: Topology, using client: AMQPClient) async {
        for queue in topology.queues { try? await client.deleteQueue(queue.name) }
        for exchange in topology.exchanges { try? await client.deleteExchange(exchange.name) }
    }

    /// A fresh virtual host that the broker's `guest` user may use, as an operator would create one per
    /// tenant; delete it with `deleteVirtualHost`.
    public static func addVirtualHost() throws -> String {
        let name = "test-vhost-\(UUID().uuidString.prefix(8).lowercased())"
        try control("ctl", "add_vhost", name)
        try control("ctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return name
    }

    public static func deleteVirtualHost(_ name: String) {
        try? control("ctl", "delete_vhost", name)
    }

    /// Runs `scripts/broker <verb> [arguments]` (start, stop, restart, ctl …) and waits for it; throws if it fails.
    public static func control(_ verb: String, _ arguments: String...) throws {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repositoryRoot + "/scripts/broker", verb] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["RELAY_BROKER_PORT"] = String(port)
        process.environment = environment
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BrokerControlFailed(
                verb: ([verb] + arguments).joined(separator: " "),
                status: process.terminationStatus
            )
        }
    }
}

public struct TestBrokerUnavailable: Error, CustomStringConvertible {
    public var port: Int
    public var underlying: any Error
    public var description: String {
        "RabbitMQ is not reachable on 127.0.0.1:\(port) (\(underlying)). Start it with `scripts/broker start`, "
            + "or run the tests through `scripts/test`, which does."
    }
}

public struct BrokerControlFailed: Error, CustomStringConvertible {
    public var verb: String
    public var status: Int32
    public var description: String { "scripts/broker \(verb) exited with status \(status)" }
}
