import Foundation
import Glibc
import Logging
import RelayCore

/// The loop thread's side of `AMQPClient`: owns the rabbitmq-c connection, runs queued commands,
/// reads frames, settles publishes as the broker confirms them (`PublisherConfirms`) and reconnects.
///
/// `@unchecked Sendable` because it is handed to its thread once and from then on touched by that
/// thread alone; everything shared with other threads goes through `AMQPClient`'s mutex.
final class ConnectionLoop: @unchecked Sendable {
    private static let publishChannel: UInt16 = 1
    private static let consumeChannel: UInt16 = 2
    private static let adminChannel: UInt16 = 3
    /// Frames read before returning to the command queue, so acks are never starved by a busy queue.
    private static let framesPerTurn = 256

    private let client: AMQPClient
    private let topology: Topology?
    private let logger: Logger
    private let reconnectBackoff: Backoff

    private var connection: AMQPConnection?
    private var generation: UInt64 = 0
    /// The consume channel's unsettled deliveries, so acks can go out coalesced.
    private var acks = AckCoalescer()
    private var consecutiveFailures = 0
    private var lastInbound = ContinuousClock.now
    /// When the last ack or nack went out: closing right after one can lose it (see `finish`).
    private var lastSettlement: ContinuousClock.Instant?
    private static let settlementGrace: Duration = .milliseconds(300)

    private struct PendingPublish {
        var message: OutboundMessage
        var messageId: String
        var continuation: CheckedContinuation<Result<Void, AMQPError>, Never>
    }

    /// Published on the current connection, waiting for the broker's confirm.
    private var confirms = PublisherConfirms<PendingPublish>()
    /// Waiting for a connection: issued while disconnected, or unconfirmed when the last one dropped.
    private var awaitingConnection: [PendingPublish] = []

    private final class Consumer {
        let registration: AMQPClient.ConsumerRegistration
        var consumerTag: String?
        /// Stopped: its stream has ended and what still arrives is held until the connection closes.
        var cancelling = false
        /// Deliveries read in this turn of the loop, handed over together at its end.
        var turn: [Delivery] = []
        init(_ registration: AMQPClient.ConsumerRegistration) { self.registration = registration }
    }

    private var consumers: [Consumer] = []
    /// The queues last reported to the client as consumed, so readiness tells the truth.
    private var reportedConsumedQueues: Set<String> = []

    init(client: AMQPClient, topology: Topology?) {
        self.client = client
        self.topology = topology
        self.logger = client.logger
        self.reconnectBackoff = Backoff(
            baseDelay: client.configuration.reconnectBaseDelay,
            maxDelay: client.configuration.reconnectMaxDelay
        )
    }

    func run() {
        while !client.isStopping {
            if connection == nil {
                connect()
                if connection == nil {
                    // Commands still run while disconnected: publishes wait, stale acks are dropped.
                    runCommands()
                    sleepBeforeReconnect()
                    continue
                }
            }
            runCommands()
            if connection != nil { pump() }
        }
        // Acks queued before shutdown was asked for must still reach the broker: dropped, they would
        // make it deliver those messages again.
        if connection != nil { runCommands() }
        finish()
    }

    // MARK: Connecting

    /// Which of the configured nodes the next connection tries (`AMQPConfiguration.endpoints`).
    private var endpointIndex = 0

    /// The next node of the cluster, after the one in use failed or went away.
    private func moveToNextEndpoint() {
        let count = client.configuration.endpoints.count
        guard count > 1 else { return }
        endpointIndex = (endpointIndex + 1) % count
    }

    private func connect() {
        let endpoint = client.configuration.endpoints[endpointIndex]
        do {
            let connection = try AMQPConnection.open(client.configuration.aimed(at: endpoint))
            try connection.openChannel(Self.publishChannel)
            try connection.confirmSelect(Self.publishChannel)
            if let topology { try declare(topology, on: connection) }
            try connection.openChannel(Self.consumeChannel)
            try connection.openChannel(Self.adminChannel)
            self.connection = connection
            generation += 1
            acks.reset()
            // Drained consumers are not subscribed again: their streams have ended.
            consumers.removeAll(where: \.cancelling)
            for consumer in consumers {
                consumer.consumerTag = nil
                try subscribe(consumer, on: connection)
            }
            lastInbound = .now
            if consecutiveFailures > 0 {
                logger.info(
                    "amqp connection re-established",
                    metadata: [LogKey.attempts: "\(consecutiveFailures + 1)", LogKey.node: "\(endpoint)"]
                )
            } else {
                logger.info("amqp connected", metadata: [LogKey.node: "\(endpoint)"])
            }
            consecutiveFailures = 0
            client.setConnected(true)
            reportConsumedQueues()
            let backlog = awaitingConnection
            awaitingConnection.removeAll()
            for pending in backlog { send(pending) }
        } catch {
            connection = nil
            consecutiveFailures += 1
            moveToNextEndpoint()
            client.setConnected(false, error: error)
            for consumer in consumers { consumer.consumerTag = nil }
            reportConsumedQueues()
            // The first failure and every tenth after it: a broker outage must not flood the log.
            if consecutiveFailures == 1 || consecutiveFailures % 10 == 0 {
                logger.warning(
                    "amqp connection failed",
                    metadata: [
                        LogKey.error: "\(error)", LogKey.attempts: "\(consecutiveFailures)", LogKey.node: "\(endpoint)",
                    ]
                )
            }
        }
    }

    private func declare(_ topology: Topology, on connection: AMQPConnection) throws(AMQPError) {
        for exchange in topology.exchanges { try connection.declareExchange(Self.publishChannel, exchange) }
        for queue in topology.queues { try connection.declareQueue(Self.publishChannel, queue) }
        for binding in topology.bindings { try connection.bind(Self.publishChannel, binding) }
    }

    private func subscribe(_ consumer: Consumer, on connection: AMQPConnection) throws(AMQPError) {
        try connection.qos(Self.consumeChannel, prefetch: consumer.registration.prefetch)
        consumer.consumerTag = try connection.consume(Self.consumeChannel, queue: consumer.registration.queue)
        logger.debug("amqp consuming", metadata: [LogKey.queue: "\(consumer.registration.queue)"])
    }

    private func sleepBeforeReconnect() {
        let delay = reconnectBackoff.delay(forRetry: consecutiveFailures - 1)
        waitForWakeup(timeoutMilliseconds: Int32(max(1, delay.totalSeconds * 1000)), socket: nil)
    }

    private func connectionLost(_ error: AMQPError) {
        guard connection != nil else { return }
        logger.warning("amqp connection lost; reconnecting", metadata: [LogKey.error: "\(error)"])
        connection = nil
        // A node that went away is likely still away: the next one first.
        moveToNextEndpoint()
        client.setConnected(false, error: error)
        // Republish in the original order once connected again: their confirms will never come now.
        awaitingConnection = confirms.connectionLost() + awaitingConnection
        for consumer in consumers { consumer.consumerTag = nil }
        reportConsumedQueues()
    }

    /// Tells the client which queues a consumer is subscribed to on the live connection: a relay whose
    /// `basic.consume` keeps failing (a missing queue) is not consuming, whatever its pipeline runs.
    private func reportConsumedQueues() {
        let consumed =
            connection == nil
            ? []
            : Set(consumers.lazy.filter { $0.consumerTag != nil && !$0.cancelling }.map(\.registration.queue))
        guard consumed != reportedConsumedQueues else { return }
        reportedConsumedQueues = consumed
        client.setConsumedQueues(consumed)
    }

    // MARK: Commands

    /// This turn's acks, coalesced: a run at the front of the unsettled deliveries is one frame.
    private func sendAcks(_ tags: [UInt64]) {
        guard !tags.isEmpty, let connection else { return }
        do {
            for frame in acks.frames(acking: tags) {
                try connection.ack(Self.consumeChannel, deliveryTag: frame.tag, multiple: frame.multiple)
            }
            lastSettlement = .now
        } catch {
            connectionLost(error)
        }
    }

    private func runCommands() {
        var acked: [UInt64] = []
        defer { sendAcks(acked) }
        for command in client.takeCommands() {
            switch command {
            case .publish(let message, let continuation):
                let messageId = message.messageId ?? UUID().uuidString
                send(PendingPublish(message: message, messageId: messageId, continuation: continuation))
            case .ack(let tag, let deliveryGeneration):
                guard connection != nil, deliveryGeneration == generation else {
                    logger.debug("dropping ack of a delivery from a closed connection; the broker redelivers it")
                    continue
                }
                acked.append(tag)
            case .nack(let tag, let deliveryGeneration, let requeue):
                guard let connection, deliveryGeneration == generation else { continue }
                do {
                    try connection.nack(Self.consumeChannel, deliveryTag: tag, requeue: requeue)
                    acks.settledAlone(tag)
                } catch {
                    connectionLost(error)
                }
            case .consume(let registration):
                let consumer = Consumer(registration)
                consumers.append(consumer)
                if let connection {
                    do { try subscribe(consumer, on: connection) } catch { connectionLost(error) }
                }
                reportConsumedQueues()
            case .cancelConsumers(let queue, let continuation):
                // No basic.cancel: on RabbitMQ 3.10 quorum queues, cancelling a consumer hands its
                // unacked messages back to the queue, and acks sent afterwards are lost, so work
                // finished during a drain would be delivered again. The consumer stays subscribed;
                // its stream ends, later deliveries are held unacked, and closing the connection
                // returns them to the queue.
                for consumer in consumers
                where !consumer.cancelling && (queue == nil || consumer.registration.queue == queue) {
                    consumer.cancelling = true
                    consumer.registration.sink.finish()
                }
                reportConsumedQueues()
                continuation.resume()
            case .admin(let operation):
                guard let connection else {
                    operation.continuation.resume(returning: .failure(AMQPError(.connectionLost, "not connected")))
                    continue
                }
                do {
                    operation.continuation.resume(returning: .success(try operation.run(connection, Self.adminChannel)))
                } catch {
                    operation.continuation.resume(returning: .failure(error))
                    if error.code == .channelClosed {
                        // The broker closed the admin channel (e.g. a missing queue): open it again.
                        do { try connection.openChannel(Self.adminChannel) } catch { connectionLost(error) }
                    } else if error.code == .connectionLost {
                        connectionLost(error)
                    }
                }
            }
        }
    }

    private func send(_ pending: PendingPublish) {
        guard let connection else {
            awaitingConnection.append(pending)
            return
        }
        do {
            try connection.publish(Self.publishChannel, pending.message, messageId: pending.messageId)
            confirms.published(pending, messageId: pending.messageId)
        } catch {
            if error.code == .connectionLost {
                awaitingConnection.append(pending)
                connectionLost(error)
            } else {
                pending.continuation.resume(returning: .failure(error))
            }
        }
    }

    // MARK: Reading

    private func pump() {
        guard let connection else { return }
        if !connection.hasBufferedInput {
            // Wake at least four times per heartbeat interval, so rabbitmq-c sends ours in time.
            let heartbeat = connection.heartbeatSeconds
            let timeout = heartbeat > 0 ? min(1000, Int32(heartbeat) * 250) : 1000
            if waitForWakeup(timeoutMilliseconds: timeout, socket: connection.socketDescriptor) {
                lastInbound = .now
            }
        }
        // What this turn read goes to the consumers at once, whatever ends the turn: a delivery from a
        // connection lost meanwhile is still handled, and its ack dropped (the broker delivers it again).
        defer { handOverTurns() }
        do {
            for _ in 0..<Self.framesPerTurn {
                guard let frame = try connection.nextFrame() else { break }
                lastInbound = .now
                handle(frame, on: connection)
                if self.connection == nil { return }
            }
            connection.releaseBuffers()
        } catch {
            connectionLost(error)
            return
        }
        // rabbitmq-c only notices a silent peer inside a blocking wait, which this loop never does.
        let heartbeat = connection.heartbeatSeconds
        if heartbeat > 0, ContinuousClock.now - lastInbound > .seconds(heartbeat * 2) {
            connectionLost(
                AMQPError(.connectionLost, "no data from the broker for \(heartbeat * 2) s (heartbeats missed)")
            )
        }
    }

    private func handOverTurns() {
        for consumer in consumers where !consumer.turn.isEmpty {
            let turn = consumer.turn
            consumer.turn.removeAll(keepingCapacity: true)
            let taken = consumer.registration.sink.hand(turn)
            for delivery in turn[taken...] {
                guard let connection, delivery.connectionGeneration == generation else { break }
                acks.settledAlone(delivery.deliveryTag)
                // Nobody is listening any more: hand the message back rather than hold it unacked.
                do { try connection.nack(Self.consumeChannel, deliveryTag: delivery.deliveryTag, requeue: true) } catch
                {
                    connectionLost(error)
                }
            }
        }
    }

    private func handle(_ frame: AMQPConnection.Frame, on connection: AMQPConnection) {
        switch frame {
        case .deliver(_, let tag, let redelivered, let exchange, let routingKey, let consumerTag, let content):
            let delivery = Delivery(
                deliveryTag: tag,
                connectionGeneration: generation,
                exchange: exchange,
                routingKey: routingKey,
                redelivered: redelivered,
                body: content.body,
                headers: content.headers,
                messageId: content.messageId,
                consumerTag: consumerTag
            )
            guard let consumer = consumers.first(where: { $0.consumerTag == consumerTag }) else {
                // Nobody is listening any more: hand the message back rather than hold it unacked.
                do { try connection.nack(Self.consumeChannel, deliveryTag: tag, requeue: true) } catch {
                    connectionLost(error)
                }
                return
            }
            // A draining consumer holds what still arrives, unacked: nacking it back would only
            // bring it straight back here, counting towards the queue's delivery limit each time.
            acks.delivered(tag)
            if consumer.cancelling { return }
            consumer.turn.append(delivery)
        case .ack(let tag, let multiple):
            settle(confirms.confirm(tag, multiple: multiple, acked: true))
        case .nack(let tag, let multiple):
            settle(confirms.confirm(tag, multiple: multiple, acked: false))
        case .returned(let code, let text, let messageId):
            if let messageId { confirms.returned(messageId: messageId, reason: "\(code) \(text)") }
        case .consumerCancelled(let consumerTag):
            // The broker cancelled us (queue deleted or moved): reconnecting declares it again.
            connectionLost(AMQPError(.channelClosed, "the broker cancelled consumer \(consumerTag)"))
        case .channelClosed(let channel, let code, let text):
            if channel == Self.publishChannel, code == 404 {
                // Publishing to an exchange that does not exist would fail the same way forever.
                let declared = Set(topology?.exchanges.map(\.name) ?? []).union([""])
                for pending in confirms.giveUp(where: { !declared.contains($0.message.exchange) }) {
                    pending.continuation.resume(returning: .failure(AMQPError(.channelClosed, "\(code) \(text)")))
                }
            }
            connectionLost(AMQPError(.channelClosed, "broker closed channel \(channel): \(code) \(text)"))
        case .connectionClosed(let code, let text):
            connectionLost(AMQPError(.connectionLost, "broker closed the connection: \(code) \(text)"))
        case .other(let channel, let methodID):
            logger.debug(
                "amqp ignoring method",
                metadata: [LogKey.channel: "\(channel)", LogKey.method: "\(methodID)"]
            )
        }
    }

    private func settle(_ settled: [(publish: PendingPublish, outcome: PublisherConfirms<PendingPublish>.Outcome)]) {
        for (pending, outcome) in settled {
            switch outcome {
            case .confirmed:
                pending.continuation.resume(returning: .success(()))
            case .unroutable(let reason):
                pending.continuation.resume(
                    returning: .failure(
                        AMQPError(.unroutable, "\(pending.message.exchange)/\(pending.message.routingKey): \(reason)")
                    )
                )
            case .refused:
                pending.continuation.resume(
                    returning: .failure(
                        AMQPError(.publishNacked, "the broker refused the message on \(pending.message.exchange)")
                    )
                )
            }
        }
    }

    /// Blocks until the wake pipe or `socket` is readable, or the timeout passes; true if the socket is.
    @discardableResult
    private func waitForWakeup(timeoutMilliseconds: Int32, socket: Int32?) -> Bool {
        var descriptors = [pollfd(fd: client.wakeDescriptor, events: Int16(POLLIN), revents: 0)]
        if let socket { descriptors.append(pollfd(fd: socket, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&descriptors, nfds_t(descriptors.count), timeoutMilliseconds)
        if ready > 0, descriptors[0].revents != 0 { client.drainWakeups() }
        return ready > 0 && descriptors.count > 1 && descriptors[1].revents != 0
    }

    // MARK: Stopping

    private func finish() {
        // RabbitMQ 3.10 quorum queues can return messages acked just before the channel goes away, as if
        // the acks had never been sent (seen: a few hundred of 2,500 acks sent in a burst right before
        // closing). Those messages would be delivered again: not lost, but work done twice. A short
        // grace after the last ack, then closing the consume channel before the connection, made it
        // go away in the tests; a workaround for a broker race, not a guarantee.
        if let lastSettlement {
            let remaining = Self.settlementGrace - (ContinuousClock.now - lastSettlement)
            if remaining > .zero { Thread.sleep(forTimeInterval: remaining.totalSeconds) }
        }
        connection?.closeChannel(Self.consumeChannel)
        connection?.close()
        connection = nil
        reportConsumedQueues()
        let shutdownError = AMQPError(.shutdown, "client is shut down")
        for pending in confirms.connectionLost() { pending.continuation.resume(returning: .failure(shutdownError)) }
        for pending in awaitingConnection { pending.continuation.resume(returning: .failure(shutdownError)) }
        awaitingConnection.removeAll()
        for consumer in consumers { consumer.registration.sink.finish() }
        consumers.removeAll()
        for command in client.markStopped() {
            switch command {
            case .publish(_, let continuation): continuation.resume(returning: .failure(shutdownError))
            case .consume(let registration): registration.sink.finish()
            case .cancelConsumers(_, let continuation): continuation.resume()
            case .admin(let operation): operation.continuation.resume(returning: .failure(shutdownError))
            case .ack, .nack: break
            }
        }
        logger.info("amqp connection closed")
    }
}
