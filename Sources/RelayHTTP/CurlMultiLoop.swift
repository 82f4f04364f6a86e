import CCurl
import Logging
import RelayThread
import Synchronization

/// The single thread that drives every transfer of one client through one multi handle, and
/// the mailbox callers use to reach it.
///
/// Callers never touch curl handles: they post to the mailbox under a lock and wake the loop
/// with `curl_multi_wakeup`. The loop takes the mail, adds and removes easy handles, runs
/// `curl_multi_perform`, resumes finished callers and sleeps in `curl_multi_poll`.
final class CurlMultiLoop: Sendable {
    /// State shared between callers and the loop thread.
    struct Mailbox: ~Copyable {
        var nextID: UInt64 = 0
        /// Submitted, not yet taken by the loop. A caller cancelling one of these resumes it
        /// itself; the loop never saw it.
        var pending: [PendingTransfer] = []
        /// Taken by the loop and not yet finished: cancelling one of these is the loop's job.
        var active: Set<UInt64> = []
        var cancelled: [UInt64] = []
        var isShutdown = false
        var isStarted = false
        /// Cleared by the loop when it stops, before it frees the multi handle. Calling
        /// `wakeup()` through this reference under the lock is what makes that free safe.
        var multi: CurlMultiHandle?
    }

    /// What the loop thread takes from the mailbox in one go.
    struct Delivery: Sendable {
        var newTransfers: [PendingTransfer]
        var cancelled: [UInt64]
        var isShutdown: Bool
    }

    let configuration: CurlHTTPClient.Configuration
    let logger: Logger
    private let mailbox: Mutex<Mailbox>
    private let started = Atomic<Bool>(false)
    /// The loop thread's kernel id once it runs (Linux), so a test can find this client's thread.
    let kernelThreadID = Atomic<Int>(0)

    init(configuration: CurlHTTPClient.Configuration, logger: Logger) {
        CurlGlobal.ensureInitialized()
        self.configuration = configuration
        self.logger = logger
        let multi = CurlMultiHandle(
            maxConnectionsPerHost: configuration.maxConnectionsPerHost,
            maxCachedConnections: configuration.maxCachedConnections
        )
        self.mailbox = Mutex(Mailbox(multi: multi))
    }

    /// Whether the loop thread has been started (it may have stopped since).
    var hasStarted: Bool { started.load(ordering: .acquiring) }

    /// Starts the loop thread, once: at the client's `run()`, or at its first request when it runs
    /// outside a service group (a CLI tool). Not in `init`: making a client starts nothing.
    func startIfNeeded() {
        // Every request asks: after the first, one load answers.
        guard !started.load(ordering: .acquiring) else { return }
        let multi: CurlMultiHandle? = self.mailbox.withLock { mailbox in
            guard !mailbox.isStarted, !mailbox.isShutdown else { return nil }
            mailbox.isStarted = true
            return mailbox.multi
        }
        started.store(true, ordering: .releasing)
        guard let multi else { return }
        // A thread of its own: `curl_multi_poll` blocks.
        NamedThread.start(name: "curl-multi") { [self] in
            kernelThreadID.store(NamedThread.currentKernelID() ?? 0, ordering: .releasing)
            CurlMultiRunner(loop: self, multi: multi).run()
        }
    }

    // MARK: callers' side

    func makeRequestID() -> UInt64 {
        self.mailbox.withLock { mailbox in
            mailbox.nextID &+= 1
            return mailbox.nextID
        }
    }

    func submit(_ transfer: PendingTransfer) {
        enum Outcome { case queued, cancelled, shutdown }
        let outcome: Outcome = self.mailbox.withLock { mailbox in
            if mailbox.isShutdown {
                return .shutdown
            }
            // The cancellation flag is set before the handler runs, and the handler takes this
            // lock: either it finds the transfer pending, or we see the flag here.
            if Task.isCancelled {
                return .cancelled
            }
            mailbox.pending.append(transfer)
            // The loop's poll consumes the wakeup before the loop takes the pending transfers: only
            // the first of a batch needs to wake it.
            if mailbox.pending.count == 1 { mailbox.multi?.wakeup() }
            return .queued
        }
        switch outcome {
        case .queued: break
        case .cancelled: transfer.continuation.resume(throwing: CancellationError())
        case .shutdown: transfer.continuation.resume(throwing: HTTPClientError.shutdown)
        }
    }

    func cancel(id: UInt64) {
        let stillPending: PendingTransfer? = self.mailbox.withLock { mailbox in
            if let index = mailbox.pending.firstIndex(where: { $0.id == id }) {
                return mailbox.pending.remove(at: index)
            }
            if mailbox.active.contains(id) {
                mailbox.cancelled.append(id)
                mailbox.multi?.wakeup()
            }
            // Otherwise it already finished, or was never submitted (and `submit` sees the flag).
            return nil
        }
        stillPending?.continuation.resume(throwing: CancellationError())
    }

    func shutdown() {
        let orphans: [PendingTransfer] = self.mailbox.withLock { mailbox in
            if mailbox.isShutdown {
                return []
            }
            mailbox.isShutdown = true
            mailbox.multi?.wakeup()
            defer { mailbox.pending = [] }
            return mailbox.pending
        }
        for orphan in orphans {
            orphan.continuation.resume(throwing: HTTPClientError.shutdown)
        }
    }

    // MARK: loop thread's side

    func takeDelivery() -> Delivery {
        self.mailbox.withLock { mailbox in
            if mailbox.isShutdown {
                mailbox.multi = nil
                mailbox.active.removeAll()
                return Delivery(newTransfers: [], cancelled: [], isShutdown: true)
            }
            let new = mailbox.pending
            mailbox.pending = []
            for transfer in new {
                mailbox.active.insert(transfer.id)
            }
            let cancelled = mailbox.cancelled
            mailbox.cancelled = []
            return Delivery(newTransfers: new, cancelled: cancelled, isShutdown: false)
        }
    }

    func markFinished(_ ids: [UInt64]) {
        guard !ids.isEmpty else { return }
        self.mailbox.withLock { mailbox in
            for id in ids {
                mailbox.active.remove(id)
            }
        }
    }
}

/// The loop thread's own state. Not `Sendable`: it is created on the loop thread and never
/// leaves it, which is what lets it hold easy handles and transfers without locks.
private final class CurlMultiRunner {
    private let loop: CurlMultiLoop
    private let multi: CurlMultiHandle
    private var transfers: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var transferByID: [UInt64: CurlTransfer] = [:]
    private var idleHandles: [CurlEasyHandle] = []
    private var finishedIDs: [UInt64] = []
    private let connectTimeoutMilliseconds: Int
    private let maxIdleHandles: Int

    init(loop: CurlMultiLoop, multi: CurlMultiHandle) {
        self.loop = loop
        self.multi = multi
        // 0 would mean curl's default of 300 s, a negative value an error on every request.
        self.connectTimeoutMilliseconds = max(loop.configuration.connectTimeout.roundedUpMilliseconds, 1)
        self.maxIdleHandles = max(loop.configuration.maxConnectionsPerHost, 16)
    }

    func run() {
        self.loop.logger.trace("curl multi loop started")
        while true {
            let delivery = self.loop.takeDelivery()
            if delivery.isShutdown {
                break
            }
            for id in delivery.cancelled {
                self.cancel(id: id)
            }
            for pending in delivery.newTransfers {
                self.start(pending)
            }
            let performCode = self.multi.perform()
            if performCode != CURLM_OK {
                self.loop.logger.debug(
                    "curl_multi_perform failed",
                    metadata: [LogKey.curlError: "\(String(cString: curl_multi_strerror(performCode)))"]
                )
            }
            while let (easy, result) = self.multi.nextCompleted() {
                self.finish(easy: easy, result: result)
            }
            self.loop.markFinished(self.finishedIDs)
            self.finishedIDs.removeAll(keepingCapacity: true)
            // Bounded so a missed wakeup could never stall the loop for long.
            _ = self.multi.poll(timeoutMilliseconds: 1000)
        }
        self.stop()
    }

    private func start(_ pending: PendingTransfer) {
        let easy = self.idleHandles.popLast() ?? CurlEasyHandle()
        easy.reset()
        let transfer = CurlTransfer(
            pending: pending,
            easy: easy,
            maxBodyBytes: self.loop.configuration.maxResponseBodyBytes
        )
        do {
            try transfer.configure(connectTimeoutMilliseconds: self.connectTimeoutMilliseconds)
        } catch {
            self.recycle(easy)
            self.finishedIDs.append(pending.id)
            transfer.continuation.resume(throwing: error)
            return
        }
        let addCode = self.multi.add(easy)
        guard addCode == CURLM_OK else {
            self.recycle(easy)
            self.finishedIDs.append(pending.id)
            let message = String(cString: curl_multi_strerror(addCode))
            transfer.continuation.resume(
                throwing: HTTPClientError(code: .transport, message: "curl_multi_add_handle failed: \(message)")
            )
            return
        }
        self.transfers[easy.raw] = transfer
        self.transferByID[transfer.id] = transfer
        self.loop.logger.trace(
            "HTTP request started",
            metadata: [LogKey.method: "\(transfer.request.methodName)", LogKey.host: "\(transfer.request.host)"]
        )
    }

    private func finish(easy: UnsafeMutableRawPointer, result: CURLcode) {
        guard let transfer = self.transfers[easy] else {
            return
        }
        // Before detaching: recycling resets the handle, and with it the response code.
        let outcome = transfer.outcome(result)
        _ = self.detach(easy: easy)
        var metadata: Logger.Metadata = [
            LogKey.method: "\(transfer.request.methodName)",
            LogKey.host: "\(transfer.request.host)",
            LogKey.durationMilliseconds: "\((ContinuousClock.now - transfer.startedAt).roundedUpMilliseconds)",
        ]
        switch outcome {
        case .success(let response):
            metadata[LogKey.status] = "\(response.status)"
            self.loop.logger.debug("HTTP request finished", metadata: metadata)
            transfer.continuation.resume(returning: response)
        case .failure(let error):
            metadata[LogKey.error] = "\(error.code)"
            metadata[LogKey.curlError] = "\(error.message)"
            self.loop.logger.debug("HTTP request failed", metadata: metadata)
            transfer.continuation.resume(throwing: error)
        }
    }

    private func cancel(id: UInt64) {
        guard let transfer = self.transferByID[id], self.detach(easy: transfer.easy.raw) != nil else {
            return  // finished before the cancellation reached the loop
        }
        self.loop.logger.trace(
            "HTTP request cancelled",
            metadata: [LogKey.method: "\(transfer.request.methodName)", LogKey.host: "\(transfer.request.host)"]
        )
        transfer.continuation.resume(throwing: CancellationError())
    }

    /// Takes a transfer out of curl and the tables; its easy handle goes back to the pool.
    private func detach(easy: UnsafeMutableRawPointer) -> CurlTransfer? {
        guard let transfer = self.transfers.removeValue(forKey: easy) else {
            return nil
        }
        self.transferByID[transfer.id] = nil
        // Removing a finished transfer hands its connection to the cache; removing an unfinished
        // one closes the connection, since its state mid-response is unknown.
        self.multi.remove(transfer.easy)
        self.recycle(transfer.easy)
        self.finishedIDs.append(transfer.id)
        return transfer
    }

    private func recycle(_ easy: CurlEasyHandle) {
        guard self.idleHandles.count < self.maxIdleHandles else {
            return
        }
        // Reset now rather than on reuse so the header list and the pointer to the finished
        // transfer do not linger in an idle handle.
        easy.reset()
        self.idleHandles.append(easy)
    }

    /// Fails what is still running, then lets the handles go: easy handles first, since curl
    /// requires them out of the multi handle before `curl_multi_cleanup`.
    private func stop() {
        let remaining = Array(self.transfers.values)
        for transfer in remaining {
            _ = self.detach(easy: transfer.easy.raw)
            transfer.continuation.resume(throwing: HTTPClientError.shutdown)
        }
        self.idleHandles.removeAll()
        self.loop.logger.trace("curl multi loop stopped", metadata: [LogKey.failedOnShutdown: "\(remaining.count)"])
    }
}
