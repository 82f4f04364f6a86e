public import ServiceLifecycle

/// The client as a service of the relay's group: connected when the group starts it, closed when the
/// group shuts it down, which it does after every service listed after it (the consumers and the
/// publishers) has stopped, so their last acks and confirms still have a connection.
extension AMQPClient: Service {
    public func run() async throws {
        start()
        // Shut down (or cancelled: the group failed): either way the connection closes.
        try? await gracefulShutdown()
        await shutdown()
    }
}
