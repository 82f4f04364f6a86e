import CRabbitMQ
import Glibc

/// One rabbitmq-c connection: a socket, a login, channels.
///
/// Every method blocks and none is thread-safe: rabbitmq-c's connection state is not. The single owner
/// is the `AMQPClient` loop thread, which is why this type is not `Sendable` at all.
final class AMQPConnection {
    private let state: amqp_connection_state_t
    private var isOpen = false
    let heartbeatSeconds: Int

    /// One frame that the client loop cares about; heartbeats never surface (rabbitmq-c answers them).
    enum Frame {
        case deliver(
            channel: UInt16,
            deliveryTag: UInt64,
            redelivered: Bool,
            exchange: String,
            routingKey: String,
            consumerTag: String,
            content: Content
        )
        case ack(deliveryTag: UInt64, multiple: Bool)
        case nack(deliveryTag: UInt64, multiple: Bool)
        case returned(replyCode: UInt16, replyText: String, messageId: String?)
        case consumerCancelled(consumerTag: String)
        case channelClosed(channel: UInt16, replyCode: UInt16, replyText: String)
        case connectionClosed(replyCode: UInt16, replyText: String)
        case other(channel: UInt16, methodID: UInt32)
    }

    struct Content {
        var body: [UInt8]
        var headers: [String: AMQPHeaderValue]
        var messageId: String?
    }

    private init(state: amqp_connection_state_t, heartbeatSeconds: Int) {
        self.state = state
        self.heartbeatSeconds = heartbeatSeconds
    }

    deinit {
        if isOpen {
            // Best effort: a clean close lets the broker requeue at once instead of waiting for a timeout.
            _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        amqp_destroy_connection(state)
    }

    static func open(_ configuration: AMQPConfiguration) throws(AMQPError) -> AMQPConnection {
        guard let state = amqp_new_connection() else {
            throw AMQPError(.connectionFailed, "could not allocate a connection")
        }
        let connection = AMQPConnection(state: state, heartbeatSeconds: configuration.heartbeatSeconds)
        let socket: OpaquePointer?
        if let tls = configuration.tls {
            socket = amqp_ssl_socket_new(state)
            if let socket {
                if let ca = tls.caCertificatePath, amqp_ssl_socket_set_cacert(socket, ca) != AMQP_STATUS_OK.rawValue {
                    throw AMQPError(.connectionFailed, "could not read the TLS CA certificate at \(ca)")
                }
                amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
                amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
            }
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else { throw AMQPError(.connectionFailed, "could not create a socket") }

        var timeout = timeval(duration: configuration.connectTimeout)
        let status = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &timeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(
                .connectionFailed,
                "\(configuration.endpointDescription): \(String(cString: amqp_error_string2(status)))"
            )
        }
        // Bounds every synchronous RPC (declare, qos, consume): a broker that stops answering must
        // surface as an error, not hang the loop thread.
        var rpcTimeout = timeval(duration: .seconds(15))
        amqp_set_rpc_timeout(state, &rpcTimeout)

        let login = relay_amqp_login_plain(
            state,
            configuration.virtualHost,
            0,
            131_072,
            Int32(configuration.heartbeatSeconds),
            configuration.user,
            configuration.password
        )
        if login.reply_type != AMQP_RESPONSE_NORMAL {
            let reason = Self.describe(login)
            let refused =
                login.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION
                || login.library_error == AMQP_STATUS_SOCKET_CLOSED.rawValue
                || login.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue
            throw AMQPError(
                refused ? .authenticationFailed : .connectionFailed,
                "login to \(configuration.endpointDescription) failed: \(reason)"
            )
        }
        connection.isOpen = true
        return connection
    }

    var socketDescriptor: Int32 { amqp_get_sockfd(state) }

    /// Whether frames are already read or buffered, so waiting on the socket would be wrong.
    var hasBufferedInput: Bool {
        amqp_data_in_buffer(state) != 0 || amqp_frames_enqueued(state) != 0
    }

    func openChannel(_ channel: UInt16) throws(AMQPError) {
        amqp_channel_open(state, channel)
        try check(amqp_get_rpc_reply(state), "channel.open \(channel)", channel: channel)
    }

    func confirmSelect(_ channel: UInt16) throws(AMQPError) {
        amqp_confirm_select(state, channel)
        try check(amqp_get_rpc_reply(state), "confirm.select", channel: channel)
    }

    func qos(_ channel: UInt16, prefetch: UInt16) throws(AMQPError) {
        amqp_basic_qos(state, channel, 0, prefetch, 0)
        try check(amqp_get_rpc_reply(state), "basic.qos", channel: channel)
    }

    func consume(_ channel: UInt16, queue: String) throws(AMQPError) -> String {
        let arena = AMQPArena()
        let reply = amqp_basic_consume(
            state,
            channel,
            arena.bytes(queue),
            amqp_empty_bytes,
            0,
            0,
            0,
            amqp_empty_table
        )
        try check(amqp_get_rpc_reply(state), "basic.consume on \(queue)", channel: channel)
        guard let reply else { throw AMQPError(.protocolError, "basic.consume on \(queue) had no reply") }
        return reply.pointee.consumer_tag.string
    }

    func declareExchange(_ channel: UInt16, _ exchange: Topology.Exchange) throws(AMQPError) {
        let arena = AMQPArena()
        amqp_exchange_declare(
            state,
            channel,
            arena.bytes(exchange.name),
            arena.bytes(exchange.type),
            0,
            exchange.durable ? 1 : 0,
            exchange.autoDelete ? 1 : 0,
            exchange.internal ? 1 : 0,
            arena.table(exchange.arguments)
        )
        try check(amqp_get_rpc_reply(state), "exchange.declare \(exchange.name)", channel: channel, topology: true)
    }

    func declareQueue(_ channel: UInt16, _ queue: Topology.Queue) throws(AMQPError) {
        let arena = AMQPArena()
        amqp_queue_declare(
            state,
            channel,
            arena.bytes(queue.name),
            0,
            queue.durable ? 1 : 0,
            0,
            queue.autoDelete ? 1 : 0,
            arena.table(queue.arguments)
        )
        try check(amqp_get_rpc_reply(state), "queue.declare \(queue.name)", channel: channel, topology: true)
    }

    func bind(_ channel: UInt16, _ binding: Topology.Binding) throws(AMQPError) {
        let arena = AMQPArena()
        if binding.destinationType == "exchange" {
            amqp_exchange_bind(
                state,
                channel,
                arena.bytes(binding.destination),
                arena.bytes(binding.source),
                arena.bytes(binding.routingKey),
                arena.table(binding.arguments)
            )
        } else {
            amqp_queue_bind(
                state,
                channel,
                arena.bytes(binding.destination),
                arena.bytes(binding.source),
                arena.bytes(binding.routingKey),
                arena.table(binding.arguments)
            )
        }
        try check(
            amqp_get_rpc_reply(state),
            "bind \(binding.source) → \(binding.destination)",
            channel: channel,
            topology: true
        )
    }

    /// Messages ready in a queue and consumers on it; declares it passively, so a missing queue is an error.
    func queueCounts(_ channel: UInt16, queue: String) throws(AMQPError) -> (messages: UInt32, consumers: UInt32) {
        let arena = AMQPArena()
        let reply = amqp_queue_declare(state, channel, arena.bytes(queue), 1, 0, 0, 0, amqp_empty_table)
        try check(amqp_get_rpc_reply(state), "queue.declare (passive) \(queue)", channel: channel)
        return (reply?.pointee.message_count ?? 0, reply?.pointee.consumer_count ?? 0)
    }

    func purge(_ channel: UInt16, queue: String) throws(AMQPError) {
        let arena = AMQPArena()
        amqp_queue_purge(state, channel, arena.bytes(queue))
        try check(amqp_get_rpc_reply(state), "queue.purge \(queue)", channel: channel)
    }

    func deleteQueue(_ channel: UInt16, queue: String) throws(AMQPError) {
        let arena = AMQPArena()
        amqp_queue_delete(state, channel, arena.bytes(queue), 0, 0)
        try check(amqp_get_rpc_reply(state), "queue.delete \(queue)", channel: channel)
    }

    func deleteExchange(_ channel: UInt16, exchange: String) throws(AMQPError) {
        let arena = AMQPArena()
        amqp_exchange_delete(state, channel, arena.bytes(exchange), 0)
        try check(amqp_get_rpc_reply(state), "exchange.delete \(exchange)", channel: channel)
    }

    func publish(_ channel: UInt16, _ message: OutboundMessage, messageId: String) throws(AMQPError) {
        let arena = AMQPArena()
        var properties = amqp_basic_properties_t()
        properties._flags =
            relay_amqp_basic_content_type_flag | relay_amqp_basic_delivery_mode_flag
            | relay_amqp_basic_message_id_flag | relay_amqp_basic_headers_flag
        properties.content_type = arena.bytes(message.contentType)
        properties.delivery_mode = 2  // persistent
        properties.message_id = arena.bytes(messageId)
        properties.headers = arena.table(message.headers)
        let status = amqp_basic_publish(
            state,
            channel,
            arena.bytes(message.exchange),
            arena.bytes(message.routingKey),
            1,
            0,
            &properties,
            arena.bytes(message.body)
        )
        try check(status: status, "basic.publish")
    }

    func ack(_ channel: UInt16, deliveryTag: UInt64, multiple: Bool) throws(AMQPError) {
        try check(status: amqp_basic_ack(state, channel, deliveryTag, multiple ? 1 : 0), "basic.ack")
    }

    func nack(_ channel: UInt16, deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        try check(status: amqp_basic_nack(state, channel, deliveryTag, 0, requeue ? 1 : 0), "basic.nack")
    }

    /// The next frame if one can be had without waiting, else nil.
    func nextFrame() throws(AMQPError) -> Frame? {
        var frame = amqp_frame_t()
        var immediately = timeval(tv_sec: 0, tv_usec: 0)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &immediately)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        try check(status: status, "reading a frame", lost: true)
        guard frame.frame_type == AMQP_FRAME_METHOD else {
            // Content frames only follow a deliver or a return, which read their content at once.
            throw AMQPError(.protocolError, "unexpected frame type \(frame.frame_type) on channel \(frame.channel)")
        }
        let channel = frame.channel
        let method = frame.payload.method
        switch method.id {
        case relay_amqp_basic_deliver_method:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            // The method's strings live in the connection's pool, which reading the content may recycle.
            let exchange = deliver.exchange.string
            let routingKey = deliver.routing_key.string
            let consumerTag = deliver.consumer_tag.string
            let content = try readContent(channel)
            return .deliver(
                channel: channel,
                deliveryTag: deliver.delivery_tag,
                redelivered: deliver.redelivered != 0,
                exchange: exchange,
                routingKey: routingKey,
                consumerTag: consumerTag,
                content: content
            )
        case relay_amqp_basic_ack_method:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .ack(deliveryTag: ack.delivery_tag, multiple: ack.multiple != 0)
        case relay_amqp_basic_nack_method:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .nack(deliveryTag: nack.delivery_tag, multiple: nack.multiple != 0)
        case relay_amqp_basic_return_method:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let code = returned.reply_code
            let text = returned.reply_text.string
            let content = try readContent(channel)
            return .returned(replyCode: code, replyText: text, messageId: content.messageId)
        case relay_amqp_basic_cancel_method:
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .consumerCancelled(consumerTag: cancel.consumer_tag.string)
        case relay_amqp_channel_close_method:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            var ok = amqp_channel_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, channel, relay_amqp_channel_close_ok_method, &ok)
            return .channelClosed(channel: channel, replyCode: close.reply_code, replyText: close.reply_text.string)
        case relay_amqp_connection_close_method:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var ok = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, 0, relay_amqp_connection_close_ok_method, &ok)
            isOpen = false
            return .connectionClosed(replyCode: close.reply_code, replyText: close.reply_text.string)
        default:
            return .other(channel: channel, methodID: method.id)
        }
    }

    func releaseBuffers() {
        amqp_maybe_release_buffers(state)
    }

    /// Closes one channel and waits for the broker's close-ok, which it sends only after handling every
    /// frame sent on that channel before, acks included.
    func closeChannel(_ channel: UInt16) {
        guard isOpen else { return }
        _ = amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
    }

    /// Closes the connection politely; errors are irrelevant at this point.
    func close() {
        guard isOpen else { return }
        isOpen = false
        var shortTimeout = timeval(duration: .seconds(2))
        amqp_set_rpc_timeout(state, &shortTimeout)
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
    }

    private func readContent(_ channel: UInt16) throws(AMQPError) -> Content {
        var message = amqp_message_t()
        let reply = amqp_read_message(state, channel, &message, 0)
        try check(reply, "reading message content", channel: channel, lost: true)
        defer { amqp_destroy_message(&message) }
        let properties = message.properties
        let hasHeaders = properties._flags & relay_amqp_basic_headers_flag != 0
        let hasMessageId = properties._flags & relay_amqp_basic_message_id_flag != 0
        return Content(
            body: message.body.array,
            headers: hasHeaders ? properties.headers.headers : [:],
            messageId: hasMessageId ? properties.message_id.string : nil
        )
    }

    private func check(status: Int32, _ operation: String, lost: Bool = false) throws(AMQPError) {
        guard status < 0 else { return }
        if status == AMQP_STATUS_CONNECTION_CLOSED.rawValue || status == AMQP_STATUS_SOCKET_ERROR.rawValue
            || status == AMQP_STATUS_SOCKET_CLOSED.rawValue || status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue
            || lost
        {
            isOpen = false
            throw AMQPError(.connectionLost, "\(operation): \(String(cString: amqp_error_string2(status)))")
        }
        throw AMQPError(.protocolError, "\(operation): \(String(cString: amqp_error_string2(status)))")
    }

    private func check(
        _ reply: amqp_rpc_reply_t,
        _ operation: String,
        channel: UInt16 = 0,
        lost: Bool = false,
        topology: Bool = false
    ) throws(AMQPError) {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == relay_amqp_connection_close_method {
                isOpen = false
                var ok = amqp_connection_close_ok_t(dummy: 0)
                _ = amqp_send_method(state, 0, relay_amqp_connection_close_ok_method, &ok)
                throw AMQPError(.connectionLost, "\(operation): \(Self.describe(reply))")
            }
            // The broker closed the channel: acknowledge so the channel id can be reopened.
            var ok = amqp_channel_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, channel, relay_amqp_channel_close_ok_method, &ok)
            throw AMQPError(topology ? .topologyRejected : .channelClosed, "\(operation): \(Self.describe(reply))")
        default:
            isOpen = false
            throw AMQPError(.connectionLost, "\(operation): \(Self.describe(reply))")
        }
    }

    static func describe(_ reply: amqp_rpc_reply_t) -> String {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return "ok"
        case AMQP_RESPONSE_NONE:
            return "no reply (missing RPC reply type)"
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return String(cString: amqp_error_string2(reply.library_error))
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == relay_amqp_connection_close_method {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                return "broker closed the connection: \(close.reply_code) \(close.reply_text.string)"
            }
            if reply.reply.id == relay_amqp_channel_close_method {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                return "broker closed the channel: \(close.reply_code) \(close.reply_text.string)"
            }
            return "broker error (method \(reply.reply.id))"
        default:
            return "unknown reply type"
        }
    }
}

extension timeval {
    init(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
