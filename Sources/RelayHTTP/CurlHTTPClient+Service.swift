public import ServiceLifecycle

/// The client as a service of the relay's group: its transfer loop stops when the group shuts it down,
/// after every service that sends through it has stopped.
extension CurlHTTPClient: Service {
    public func run() async throws {
        loop.startIfNeeded()
        try? await gracefulShutdown()
        shutdown()
    }
}
