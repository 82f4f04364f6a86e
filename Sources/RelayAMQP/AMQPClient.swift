import Foundation
import Glibc
public import Logging
import RelayThread
import Synchronization

/// The relay's link to RabbitMQ: one connection, driven by one dedicated thread, exposed to Swift
/// concurrency.
///
/// - Publishes wait for the broker's publisher confirm. A publish that is not yet confirmed when the
///   connection drops is sent again once it is back: at-least-once, nothing lost.
/// - Consumers receive deliveries as an `AsyncStream`; acks and nacks go back through this client.
///   Delivery tags belong to one connection, so an ack of a delivery from a connection that has since
///   gone is dropped: the broker redelivers that message.
/// - A lost connection is re-established with backoff; the topology is declared again and consumers
///   resume.
///
/// rabbitmq-c blocks and is not thread-safe, so every C call happens on the loop thread; other threads
/// only queue commands and wake it through a pipe.
public final class AMQPClient: Sendable {
    public let configuration: AMQPConfiguration
    let logger: Logger
    private let shared: Mutex<SharedState>
    private let wakePipe: WakePipe
    private let topology: Topology?

    struct SharedState: ~Copyable {
        var commands: [Command] = []
        var started = false
        var stopping = false
        var stopped = false
        var connected = false
        var consumedQueues: Set<String> = []
        var lastError: AMQPError?
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    enum Command: Sendable {
        case publish(OutboundMessage, CheckedContinuation<Result<Void, AMQPError>, Never>)
        case ack(deliveryTag: UInt64, generation: UInt64)
        case nack(deliveryTag: UInt64, generation: UInt64, requeue: Bool)
        case consume(ConsumerRegistration)
        case cancelConsumers(queue: String?, CheckedContinuation<Void, Never>)
        case admin(AdminOperation)
    }

    struct ConsumerRegistration: Sendable {
        var queue: String
        var prefetch: UInt16
        var sink: DeliverySink
    }

    /// Where a consumer's deliveries go: one at a time, or each loop turn's at once.
    enum DeliverySink: Sendable {
        case single(AsyncStream<Delivery>.Continuation)
        case batches(AsyncStream<[Delivery]>.Continuation)

        /// Hands `deliveries` over, in order; returns how many from the front were taken (none once
        /// the stream has ended).
        func hand(_ deliveries: [Delivery]) -> Int {
            switch self {
            case .single(let continuation):
                for (index, delivery) in deliveries.enumerated() {
                    guard case .enqueued = continuation.yield(delivery) else { return index }
                }
                return deliveries.count
            case .batches(let continuation):
                guard case .enqueued = continuation.yield(deliveries) else { return 0 }
                return deliveries.count
            }
        }

        func finish() {
            switch self {
            case .single(let continuation): continuation.finish()
            case .batches(let continuation): continuation.finish()
            }
        }
    }

    struct AdminOperation: Sendable {
        // Runs on the loop thread with the live connection; the result travels back as Sendable.
        var run: @Sendable (AMQPConnection, UInt16) throws(AMQPError) -> UInt64
        var continuation: CheckedContinuation<Result<UInt64, AMQPError>, Never>
    }

    public init(configuration: AMQPConfiguration, topology: Topology?, logger: Logger) {
        self.configuration = configuration
        self.topology = topology
        var logger = logger
        logger[metadataKey: LogKey.endpoint] = "\(configuration.host):\(configuration.port)"
        self.logger = logger
        self.shared = Mutex(SharedState())
        self.wakePipe = WakePipe()
    }

    /// Starts the connection thread; the first connection attempt happens there. Idempotent.
    public func start() {
        let shouldStart = shared.withLock { state in
            if state.started { return false }
            state.started = true
            return true
        }
        guard shouldStart else { return }
        let loop = ConnectionLoop(client: self, topology: topology)
        NamedThread.start(name: "amqp-\(configuration.connectionName)") { loop.run() }
    }

    public var isConnected: Bool { shared.withLock { $0.connected } }

    /// Whether a consumer of `queue` is subscribed on the live connection: false while the broker is
    /// away, and while `basic.consume` fails (say, the queue does not exist in this vhost).
    public func isConsuming(queue: String) -> Bool { shared.withLock { $0.consumedQueues.contains(queue) } }

    /// The most recent connection or topology error, for health checks and start-up diagnostics.
    public var lastError: AMQPError? { shared.withLock { $0.lastError } }

    /// Waits until the connection is up (or the timeout passes, which throws the last connection error).
    public func waitUntilConnected(timeout: Duration) async throws(AMQPError) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isConnected { return }
            if shared.withLock({ $0.stopping }) { throw AMQPError(.shutdown, "client is shut down") }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if isConnected { return }
        throw lastError ?? AMQPError(.connectionFailed, "not connected after \(timeout)")
    }

    /// Publishes and returns once the broker has confirmed the message (persisted, routed to a queue).
    public func publish(_ message: OutboundMessage) async throws(AMQPError) {
        let outcome = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Void, AMQPError>, Never>) in
            submit(.publish(message, continuation)) {
                continuation.resume(returning: .failure(AMQPError(.shutdown, "client is shut down")))
            }
        }
        try outcome.get()
    }

    /// Starts consuming `queue` with manual acks and at most `prefetch` unacknowledged deliveries.
    /// The stream ends after `stopConsuming()` or `shutdown()`.
    public func consume(queue: String, prefetch: UInt16) -> AsyncStream<Delivery> {
        let (stream, continuation) = AsyncStream<Delivery>.makeStream()
        submit(.consume(ConsumerRegistration(queue: queue, prefetch: prefetch, sink: .single(continuation)))) {
            continuation.finish()
        }
        return stream
    }

    /// `consume`, with the deliveries the loop thread read in one turn handed over as one array: a
    /// consumer that handles them together pays one wake-up per batch rather than one per delivery.
    public func consumeBatches(queue: String, prefetch: UInt16) -> AsyncStream<[Delivery]> {
        let (stream, continuation) = AsyncStream<[Delivery]>.makeStream()
        submit(.consume(ConsumerRegistration(queue: queue, prefetch: prefetch, sink: .batches(continuation)))) {
            continuation.finish()
        }
        return stream
    }

    public func ack(_ delivery: Delivery) {
        submit(.ack(deliveryTag: delivery.deliveryTag, generation: delivery.connectionGeneration)) {}
    }

    /// Acks several deliveries with one wake-up of the loop thread (which coalesces them into as few
    /// frames as it may).
    public func ack(_ deliveries: [Delivery]) {
        guard !deliveries.isEmpty else { return }
        let first = shared.withLock { state -> Bool? in
            if state.stopping { return nil }
            let wasEmpty = state.commands.isEmpty
            for delivery in deliveries {
                state.commands.append(
                    .ack(deliveryTag: delivery.deliveryTag, generation: delivery.connectionGeneration)
                )
            }
            return wasEmpty
        }
        if first == true { wakePipe.wake() }
    }

    /// Returns a delivery to the broker; with `requeue: false` it goes to the queue's dead-letter exchange.
    public func nack(_ delivery: Delivery, requeue: Bool) {
        submit(.nack(deliveryTag: delivery.deliveryTag, generation: delivery.connectionGeneration, requeue: requeue)) {}
    }

    /// Stops the consumers of `queue` (nil: every consumer): their streams end, and deliveries already
    /// received can still be acked. Whatever the broker still sends them is held unacked until
    /// `shutdown()` returns it to the queue. (No basic.cancel: on RabbitMQ 3.10 quorum queues that hands
    /// unacked messages back at once and loses the acks that follow.) The relay's parts stop one at a
    /// time, so one part's stop must leave the other consumers of the connection running.
    public func stopConsuming(queue: String? = nil) async {
        await withCheckedContinuation { continuation in
            submit(.cancelConsumers(queue: queue, continuation)) { continuation.resume() }
        }
    }

    /// Messages ready in a queue (not counting unacknowledged ones). Throws if the queue does not exist.
    public func messageCount(queue: String) async throws(AMQPError) -> Int {
        Int(
            try await admin { connection, channel throws(AMQPError) in
                UInt64(try connection.queueCounts(channel, queue: queue).messages)
            }
        )
    }

    /// Consumers attached to a queue, on every node of a cluster. Throws if the queue does not exist.
    public func consumerCount(queue: String) async throws(AMQPError) -> Int {
        Int(
            try await admin { connection, channel throws(AMQPError) in
                UInt64(try connection.queueCounts(channel, queue: queue).consumers)
            }
        )
    }

    public func purge(queue: String) async throws(AMQPError) {
        _ = try await admin { connection, channel throws(AMQPError) in
            try connection.purge(channel, queue: queue)
            return 0
        }
    }

    public func deleteQueue(_ queue: String) async throws(AMQPError) {
        _ = try await admin { connection, channel throws(AMQPError) in
            try connection.deleteQueue(channel, queue: queue)
            return 0
        }
    }

    public func deleteExchange(_ exchange: String) async throws(AMQPError) {
        _ = try await admin { connection, channel throws(AMQPError) in
            try connection.deleteExchange(channel, exchange: exchange)
            return 0
        }
    }

    /// Closes the connection. Unconfirmed publishes fail with `.shutdown`; consumer streams end.
    /// Call `stopConsuming()` and finish in-flight work first to shut down without redeliveries.
    public func shutdown() async {
        let needsWait: Bool = shared.withLock { state in
            state.stopping = true
            return state.started && !state.stopped
        }
        wakePipe.wake()
        guard needsWait else { return }
        await withCheckedContinuation { continuation in
            let alreadyStopped = shared.withLock { state in
                if state.stopped { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if alreadyStopped { continuation.resume() }
        }
    }

    private func admin(
        _ run: @escaping @Sendable (AMQPConnection, UInt16) throws(AMQPError) -> UInt64
    )
        async throws(AMQPError) -> UInt64
    {
        let result = await withCheckedContinuation { continuation in
            submit(.admin(AdminOperation(run: run, continuation: continuation))) {
                continuation.resume(returning: .failure(AMQPError(.shutdown, "client is shut down")))
            }
        }
        return try result.get()
    }

    private func submit(_ command: Command, ifStopped: () -> Void) {
        enum Submitted { case first, queuedBehindOthers, refused }
        let submitted: Submitted = shared.withLock { state in
            if state.stopping { return .refused }
            state.commands.append(command)
            return state.commands.count == 1 ? .first : .queuedBehindOthers
        }
        switch submitted {
        // Only the first command of a batch wakes the loop: it drains the pipe before it takes the
        // commands, so the ones queued behind go with the first. A write per command cost a syscall
        // and often a wasted turn of the loop.
        case .first: wakePipe.wake()
        case .queuedBehindOthers: break
        case .refused: ifStopped()
        }
    }

    // MARK: Used by the loop thread

    func takeCommands() -> [Command] {
        shared.withLock { state in
            let commands = state.commands
            state.commands.removeAll(keepingCapacity: true)
            return commands
        }
    }

    var isStopping: Bool { shared.withLock { $0.stopping } }

    func setConnected(_ connected: Bool, error: AMQPError? = nil) {
        shared.withLock { state in
            state.connected = connected
            if connected {
                state.lastError = nil
            } else if let error {
                state.lastError = error
            }
        }
    }

    func setConsumedQueues(_ queues: Set<String>) {
        shared.withLock { $0.consumedQueues = queues }
    }

    /// Called once, as the loop thread ends; returns commands that arrived too late to run.
    func markStopped() -> [Command] {
        let (waiters, leftovers) = shared.withLock { state in
            state.stopped = true
            state.connected = false
            defer {
                state.stopWaiters.removeAll()
                state.commands.removeAll()
            }
            return (state.stopWaiters, state.commands)
        }
        for waiter in waiters { waiter.resume() }
        return leftovers
    }

    var wakeDescriptor: Int32 { wakePipe.readDescriptor }
    func drainWakeups() { wakePipe.drain() }
}

/// A self-pipe: writing a byte wakes the loop thread out of `poll`.
final class WakePipe: Sendable {
    let readDescriptor: Int32
    let writeDescriptor: Int32

    init() {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            fatalError("pipe failed: errno \(errno); the process is out of file descriptors")
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        readDescriptor = descriptors[0]
        writeDescriptor = descriptors[1]
    }

    deinit {
        close(readDescriptor)
        close(writeDescriptor)
    }

    func wake() {
        var byte: UInt8 = 1
        // A full pipe already guarantees a wake-up, so EAGAIN is fine to ignore.
        _ = write(writeDescriptor, &byte, 1)
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(readDescriptor, &buffer, buffer.count) > 0 {}
    }
}
