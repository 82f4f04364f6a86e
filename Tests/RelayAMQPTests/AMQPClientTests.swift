import Foundation
import Logging
import RelayAMQP
import RelayTesting
import Testing

/// The rabbitmq-c adapter against the real broker: topology, confirms, acks, redelivery, errors.
@Suite("AMQP client on a real broker")
struct AMQPClientTests {
    @Test("declares the topology file's quorum queues, with their arguments")
    func declaresTopology() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
            }
        }

        for name in ["relay.events", "relay.dead-letters"] {
            #expect(try await client.messageCount(queue: prefix + name) == 0)
        }
        // Declaring the same queue as a classic queue must be refused: proof it exists as a quorum queue.
        var classic = try #require(topology.queue(named: prefix + "relay.events"))
        classic.arguments = [:]
        let conflicting = Topology(exchanges: [], queues: [classic], bindings: [])
        let other = AMQPClient(
            configuration: TestBroker.configuration(),
            topology: conflicting,
            logger: Logger(label: "test")
        )
        other.start()
        await #expect(throws: AMQPError.self) { try await other.waitUntilConnected(timeout: .seconds(3)) }
        #expect(other.lastError?.code == .topologyRejected)
        await other.shutdown()
    }

    @Test("a node that refuses connections is skipped for the next of the cluster's nodes, and logged by address")
    func failsOverToTheNextNode() async throws {
        // No broker listens on port 1 of loopback: without failover this client never connects.
        var configuration = TestBroker.configuration()
        configuration.failoverEndpoints = [.init(host: configuration.host, port: configuration.port)]
        configuration.port = 1
        #expect(configuration.endpoints.map(\.description) == ["127.0.0.1:1", "127.0.0.1:\(TestBroker.port)"])
        let client = AMQPClient(configuration: configuration, topology: nil, logger: Logger(label: "test"))
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(15))
        #expect(client.isConnected)
        await client.shutdown()

        #expect(
            AMQPConfiguration.Endpoint(parsing: " rabbit-2:5673 ", defaultPort: 5672)
                == .init(host: "rabbit-2", port: 5673)
        )
        #expect(
            AMQPConfiguration.Endpoint(parsing: "rabbit-3", defaultPort: 5672) == .init(host: "rabbit-3", port: 5672)
        )
        #expect(AMQPConfiguration.Endpoint(parsing: "rabbit-3:http", defaultPort: 5672) == nil)
        #expect(AMQPConfiguration.Endpoint(parsing: ":5672", defaultPort: 5672) == nil)
    }

    @Test("publishes with confirms and consumes with acks, nothing left behind")
    func publishAndConsume() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
            }
        }
        let count = 500

        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await client.publish(
                        OutboundMessage(
                            exchange: prefix + "platform.events",
                            routingKey: "callStarted",
                            body: Array("message-\(index)".utf8),
                            headers: ["x-index": .int(Int64(index))]
                        )
                    )
                }
            }
            try await group.waitForAll()
        }
        #expect(try await client.messageCount(queue: prefix + "relay.events") == count)

        var seen = Set<String>()
        for await delivery in client.consume(queue: prefix + "relay.events", prefetch: 50) {
            let body = String(decoding: delivery.body, as: UTF8.self)
            #expect(body == "message-\(delivery.headers["x-index"]?.intValue ?? -1)")
            #expect(delivery.routingKey == "callStarted")
            seen.insert(body)
            client.ack(delivery)
            if seen.count == count { break }
        }
        #expect(seen.count == count)
        await client.stopConsuming()
        try await eventually { try await client.messageCount(queue: prefix + "relay.events") == 0 }
    }

    @Test(
        "batches hand over each loop turn's deliveries in order, never more than the prefetch, and one ack call settles them"
    )
    func consumeBatches() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
            }
        }
        let count = 400
        let prefetch: UInt16 = 32
        // One publisher in order: the queue, and so the batches, keep the publish order.
        for index in 0..<count {
            try await client.publish(
                OutboundMessage(
                    exchange: prefix + "platform.events",
                    routingKey: "callStarted",
                    body: Array("\(index)".utf8)
                )
            )
        }
        var received: [Int] = []
        var largest = 0
        for await batch in client.consumeBatches(queue: prefix + "relay.events", prefetch: prefetch) {
            #expect(!batch.isEmpty)
            largest = max(largest, batch.count)
            received += batch.map { Int(String(decoding: $0.body, as: UTF8.self)) ?? -1 }
            client.ack(batch)
            if received.count == count { break }
        }
        #expect(received == Array(0..<count))
        // Unacked deliveries are at most the prefetch, so no turn can hold more.
        #expect(largest <= Int(prefetch))
        await client.stopConsuming()
        try await eventually { try await client.messageCount(queue: prefix + "relay.events") == 0 }
    }

    @Test("an unacked delivery comes back, marked redelivered, after its consumer's connection closes")
    func unackedIsRedelivered() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let first = try await TestBroker.connectedClient(topology: topology)
        try await first.publish(
            OutboundMessage(exchange: prefix + "platform.events", routingKey: "x", body: Array("keep me".utf8))
        )
        var iterator = first.consume(queue: prefix + "relay.events", prefetch: 1).makeAsyncIterator()
        let original = try #require(await iterator.next())
        #expect(!original.redelivered)
        await first.shutdown()  // no ack: the broker must hand it out again

        let second = try await TestBroker.connectedClient(topology: topology)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: second)
                await second.shutdown()
            }
        }
        var secondIterator = second.consume(queue: prefix + "relay.events", prefetch: 1).makeAsyncIterator()
        let again = try #require(await secondIterator.next())
        #expect(again.body == Array("keep me".utf8))
        #expect(again.redelivered)
        second.ack(again)
    }

    @Test("nack with requeue redelivers; an ack from a closed connection is ignored")
    func nackRequeues() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
            }
        }
        try await client.publish(
            OutboundMessage(exchange: prefix + "platform.events", routingKey: "x", body: [1, 2, 3])
        )
        var iterator = client.consume(queue: prefix + "relay.events", prefetch: 1).makeAsyncIterator()
        let first = try #require(await iterator.next())
        client.nack(first, requeue: true)
        let second = try #require(await iterator.next())
        #expect(second.redelivered)
        #expect(second.body == [1, 2, 3])
        // A made-up delivery from an older connection must not ack the live one.
        var stale = second
        stale.connectionGeneration -= 1
        client.ack(stale)
        client.ack(second)
        try await eventually { try await client.messageCount(queue: prefix + "relay.events") == 0 }
    }

    @Test("a mandatory publish that matches no queue fails as unroutable")
    func unroutable() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
            }
        }
        let error = await #expect(throws: AMQPError.self) {
            try await client.publish(OutboundMessage(exchange: "", routingKey: prefix + "no-such-queue", body: [1]))
        }
        #expect(error?.code == .unroutable)
    }

    @Test("publishing to a missing exchange fails that publish, and the client goes on working")
    func missingExchange() async throws {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        defer {
            Task {
                await TestBroker.tearDown(topology, using: client)
                await client.shutdown()
            }
        }
        let error = await #expect(throws: AMQPError.self) {
            try await client.publish(OutboundMessage(exchange: prefix + "missing", routingKey: "x", body: [1]))
        }
        #expect(error?.code == .channelClosed)
        try await client.publish(OutboundMessage(exchange: prefix + "platform.events", routingKey: "x", body: [2]))
        try await eventually { try await client.messageCount(queue: prefix + "relay.events") == 1 }
    }

    @Test("a broker that is not there is reported as a connection failure, not a hang")
    func connectionRefused() async throws {
        var configuration = TestBroker.configuration()
        configuration.port = 1  // nothing listens on port 1
        let client = AMQPClient(configuration: configuration, topology: nil, logger: Logger(label: "test"))
        client.start()
        let error = await #expect(throws: AMQPError.self) { try await client.waitUntilConnected(timeout: .seconds(1)) }
        #expect(error?.code == .connectionFailed)
        await client.shutdown()
        let afterShutdown = await #expect(throws: AMQPError.self) {
            try await client.publish(OutboundMessage(exchange: "", routingKey: "x", body: [1]))
        }
        #expect(afterShutdown?.code == .shutdown)
    }
}
