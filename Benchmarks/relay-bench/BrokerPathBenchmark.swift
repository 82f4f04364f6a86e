import Foundation
import Logging
import RelayAMQP
import RelayService

/// The floor under phase-1 latency: the relay's broker traffic with no relay work in it.
///
/// The same stream as `EnrichmentBenchmark` (same schedule, same rate) goes into a quorum queue. A
/// stand-in for the relay, on one connection as the relay has, consumes each event (the relay's
/// prefetch) and acks it. That is all the broker carries on the relay's behalf: its work waits in the
/// store's outbox, not on the broker. Latency runs from a start's publish to its arrival at the
/// stand-in. No decoding, no store, no HTTP: what is left is the broker, the client library and this
/// machine's scheduling.
struct BrokerPathBenchmark {
    var schedule: [EnrichmentBenchmark.ScheduledEvent]
    var rate: Int
    var prefetch: UInt16
    var port: Int
    var logger: Logger

    struct Figures {
        var p50: Duration
        var p99: Duration
        /// While the stream was published.
        var cpu: CPUShares?
    }

    func run() async throws -> Figures {
        let prefix = "bench-\(UUID().uuidString.prefix(8))."
        let events = prefix + "events"
        let quorum: [String: AMQPHeaderValue] = ["x-queue-type": .string("quorum")]
        let topology = Topology(
            exchanges: [],
            queues: [.init(name: events, durable: true, autoDelete: false, arguments: quorum)],
            bindings: []
        )
        let relay = AMQPClient(
            configuration: AMQPConfiguration(port: port, connectionName: "bench-relay"),
            topology: topology,
            logger: logger
        )
        relay.start()
        try await relay.waitUntilConnected(timeout: .seconds(15))
        let publisher = AMQPClient(
            configuration: AMQPConfiguration(port: port, connectionName: "bench"),
            topology: nil,
            logger: logger
        )
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(15))

        let total = schedule.count
        let arrived = Locked<[String: ContinuousClock.Instant]>([:])
        let incoming = relay.consume(queue: events, prefetch: prefetch)
        async let relayed: Void = {
            var received = 0
            for await delivery in incoming {
                let (type, eventId) = Self.parse(delivery.body)
                if type == "callStarted" { arrived.withLock { $0[eventId] = .now } }
                relay.ack(delivery)
                received += 1
                if received == total { break }
            }
        }()

        let steady = try await EnrichmentBenchmark.publishSteadily(schedule, rate: rate, using: publisher) { event in
            OutboundMessage(exchange: "", routingKey: events, body: Self.body(event.type, event.eventId))
        }
        await relayed
        await relay.stopConsuming()

        let sentAt = steady.startsPublishedAt
        let latencies = arrived.withLock { $0 }.compactMap { eventId, at in sentAt[eventId].map { at - $0 } }.sorted()
        try? await publisher.deleteQueue(events)
        await relay.shutdown()
        await publisher.shutdown()
        return Figures(
            p50: latencies[latencies.count / 2],
            p99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
            cpu: steady.cpu
        )
    }

    /// About the size of the relay's own messages: a kind and an event id, padded to 300 bytes.
    static func body(_ kind: String, _ eventId: String) -> [UInt8] {
        let text = "\(kind) \(eventId) "
        return Array((text + String(repeating: "x", count: max(0, 300 - text.utf8.count))).utf8)
    }

    static func parse(_ body: [UInt8]) -> (kind: String, eventId: String) {
        let parts = body.split(separator: UInt8(ascii: " "), maxSplits: 2)
        return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self))
    }
}
