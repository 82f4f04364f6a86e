public import Logging

/// An async HTTP client over libcurl's multi interface.
///
/// One dedicated thread runs every transfer of the client, so hundreds of concurrent requests
/// cost one thread and keep-alive connections are shared between them through curl's connection
/// cache. The thread starts with the client's service (`run()`) or at its first request, whichever
/// comes first, and stops in ``shutdown()`` (or when the client is freed).
///
/// Only transport failures throw (``HTTPClientError``); every HTTP status is a response.
public final class CurlHTTPClient: Sendable {
    public struct Configuration: Sendable {
        /// Connections open at once to one host (`CURLMOPT_MAX_HOST_CONNECTIONS`); further requests
        /// to that host wait for a free connection, and that wait counts against their timeout.
        public var maxConnectionsPerHost: Int
        /// Idle keep-alive connections kept for reuse, over all hosts (`CURLMOPT_MAXCONNECTS`).
        public var maxCachedConnections: Int
        /// Limit for establishing a connection (TCP and TLS), within each request's own timeout.
        public var connectTimeout: Duration
        /// A longer response body aborts the transfer with ``HTTPClientError/Code/responseTooLarge``
        /// (not retriable) rather than being truncated: a cut JSON body is worse than none.
        public var maxResponseBodyBytes: Int

        public init(
            maxConnectionsPerHost: Int = 128,
            maxCachedConnections: Int = 256,
            connectTimeout: Duration = .seconds(3),
            maxResponseBodyBytes: Int = 1 << 20
        ) {
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.maxCachedConnections = maxCachedConnections
            self.connectTimeout = connectTimeout
            self.maxResponseBodyBytes = maxResponseBodyBytes
        }
    }

    let loop: CurlMultiLoop

    public init(configuration: Configuration = .init(), logger: Logger) {
        self.loop = CurlMultiLoop(configuration: configuration, logger: logger)
    }

    deinit {
        self.loop.shutdown()
    }

    /// Sends `request` and returns the complete response, whatever its status.
    ///
    /// - Throws: ``HTTPClientError`` when no response arrived (see its codes), or
    ///   `CancellationError` when the calling task is cancelled, which aborts the transfer.
    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        let prepared = try PreparedRequest(request)
        self.loop.startIfNeeded()
        let id = self.loop.makeRequestID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                self.loop.submit(PendingTransfer(id: id, request: prepared, continuation: continuation))
            }
        } onCancel: {
            self.loop.cancel(id: id)
        }
    }

    /// Fails queued and in-flight requests with ``HTTPClientError/Code/shutdown`` and stops the
    /// loop thread; later requests fail the same way. Returns without waiting for the thread,
    /// which closes the cached connections as it exits. Idempotent.
    public func shutdown() {
        self.loop.shutdown()
    }
}
