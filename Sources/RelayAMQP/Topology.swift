public import Foundation

/// The exchanges, queues and bindings the relay needs, read from a RabbitMQ definitions file
/// (`topology/definitions.json`, the format `rabbitmqctl import_definitions` accepts), so the broker's
/// operators and the relay share one description.
public struct Topology: Sendable, Hashable {
    public struct Exchange: Sendable, Hashable {
        public var name: String
        public var type: String
        public var durable: Bool
        public var autoDelete: Bool
        public var `internal`: Bool
        public var arguments: [String: AMQPHeaderValue]
    }

    public struct Queue: Sendable, Hashable {
        public var name: String
        public var durable: Bool
        public var autoDelete: Bool
        public var arguments: [String: AMQPHeaderValue]

        public init(name: String, durable: Bool, autoDelete: Bool, arguments: [String: AMQPHeaderValue]) {
            self.name = name
            self.durable = durable
            self.autoDelete = autoDelete
            self.arguments = arguments
        }
    }

    public struct Binding: Sendable, Hashable {
        public var source: String
        public var destination: String
        /// `queue` or `exchange`.
        public var destinationType: String
        public var routingKey: String
        public var arguments: [String: AMQPHeaderValue]
    }

    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    public init(exchanges: [Exchange], queues: [Queue], bindings: [Binding]) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    /// Reads the relay's definitions. They are declared into the virtual host the relay connects to
    /// (`amqp.vhost`), whatever the file's `vhost` fields say: those are for `rabbitmqctl
    /// import_definitions`, and a relay configured for vhost `contact-center` with a file that says `/`
    /// must still find its queues.
    public static func load(contentsOf path: String) throws(AMQPError) -> Topology {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AMQPError(.topologyInvalid, "cannot read the topology file \(path): \(error.localizedDescription)")
        }
        return try parse(data, source: path)
    }

    public static func parse(
        _ data: Data,
        source: String = "topology"
    ) throws(AMQPError)
        -> Topology
    {
        let definitions: Definitions
        do {
            definitions = try JSONDecoder().decode(Definitions.self, from: data)
        } catch {
            throw AMQPError(.topologyInvalid, "\(source) is not a valid definitions file: \(error)")
        }
        // One kind and name in two vhosts would be declared twice into the one vhost, the second with
        // arguments that may differ: refuse the file instead of guessing which was meant.
        var vhostsByName: [String: Set<String>] = [:]
        for exchange in definitions.exchanges {
            vhostsByName["exchange '\(exchange.name)'", default: []].insert(exchange.vhost ?? "/")
        }
        for queue in definitions.queues {
            vhostsByName["queue '\(queue.name)'", default: []].insert(queue.vhost ?? "/")
        }
        if let (named, hosts) = vhostsByName.filter({ $0.value.count > 1 }).min(by: { $0.key < $1.key }) {
            throw AMQPError(
                .topologyInvalid,
                "\(source) defines \(named) in more than one vhost (\(hosts.sorted().joined(separator: ", "))); "
                    + "the relay declares its topology into amqp.vhost, so keep one copy"
            )
        }
        let exchanges = try definitions.exchanges.map { (raw) throws(AMQPError) in
            Exchange(
                name: raw.name,
                type: raw.type,
                durable: raw.durable ?? true,
                autoDelete: raw.auto_delete ?? false,
                internal: raw.internal ?? false,
                arguments: try headerValues(raw.arguments, in: source)
            )
        }
        let queues = try definitions.queues.map { (raw) throws(AMQPError) in
            Queue(
                name: raw.name,
                durable: raw.durable ?? true,
                autoDelete: raw.auto_delete ?? false,
                arguments: try headerValues(raw.arguments, in: source)
            )
        }
        let bindings = try definitions.bindings.map { (raw) throws(AMQPError) in
            guard raw.destination_type == "queue" || raw.destination_type == "exchange" else {
                throw AMQPError(
                    .topologyInvalid,
                    "\(source): binding to \(raw.destination) has destination_type "
                        + "'\(raw.destination_type)', expected queue or exchange"
                )
            }
            return Binding(
                source: raw.source,
                destination: raw.destination,
                destinationType: raw.destination_type,
                routingKey: raw.routing_key,
                arguments: try headerValues(raw.arguments, in: source)
            )
        }
        return Topology(exchanges: exchanges, queues: queues, bindings: bindings)
    }

    public func queue(named name: String) -> Queue? {
        queues.first { $0.name == name }
    }

    private static func headerValues(
        _ arguments: [String: JSONScalar]?,
        in source: String
    ) throws(AMQPError)
        -> [String: AMQPHeaderValue]
    {
        var result: [String: AMQPHeaderValue] = [:]
        for (key, value) in arguments ?? [:] {
            switch value {
            case .string(let text): result[key] = .string(text)
            case .int(let number): result[key] = .int(number)
            case .bool(let flag): result[key] = .bool(flag)
            }
        }
        return result
    }

    // The definitions file's own field names, hence the snake case.
    private struct Definitions: Decodable {
        var exchanges: [RawExchange] = []
        var queues: [RawQueue] = []
        var bindings: [RawBinding] = []

        enum CodingKeys: String, CodingKey { case exchanges, queues, bindings }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            exchanges = try container.decodeIfPresent([RawExchange].self, forKey: .exchanges) ?? []
            queues = try container.decodeIfPresent([RawQueue].self, forKey: .queues) ?? []
            bindings = try container.decodeIfPresent([RawBinding].self, forKey: .bindings) ?? []
        }
    }

    private struct RawExchange: Decodable {
        var name: String
        var vhost: String?
        var type: String
        var durable: Bool?
        var auto_delete: Bool?
        var `internal`: Bool?
        var arguments: [String: JSONScalar]?
    }

    private struct RawQueue: Decodable {
        var name: String
        var vhost: String?
        var durable: Bool?
        var auto_delete: Bool?
        var arguments: [String: JSONScalar]?
    }

    private struct RawBinding: Decodable {
        var source: String
        var vhost: String?
        var destination: String
        var destination_type: String
        var routing_key: String
        var arguments: [String: JSONScalar]?
    }

    private enum JSONScalar: Decodable {
        case string(String)
        case int(Int64)
        case bool(Bool)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let flag = try? container.decode(Bool.self) {
                self = .bool(flag)
            } else if let number = try? container.decode(Int64.self) {
                self = .int(number)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }
}

extension Topology {
    /// The same topology with every exchange and queue name prefixed, dead-letter exchange arguments
    /// included: lets several relays (or tests) share one broker without seeing each other's messages.
    public func prefixed(_ prefix: String) -> Topology {
        guard !prefix.isEmpty else { return self }
        func rename(_ arguments: [String: AMQPHeaderValue]) -> [String: AMQPHeaderValue] {
            var arguments = arguments
            if case .string(let exchange) = arguments["x-dead-letter-exchange"], !exchange.isEmpty {
                arguments["x-dead-letter-exchange"] = .string(prefix + exchange)
            }
            return arguments
        }
        return Topology(
            exchanges: exchanges.map { exchange in
                var exchange = exchange
                exchange.name = prefix + exchange.name
                return exchange
            },
            queues: queues.map { queue in
                var queue = queue
                queue.name = prefix + queue.name
                queue.arguments = rename(queue.arguments)
                return queue
            },
            bindings: bindings.map { binding in
                var binding = binding
                binding.source = prefix + binding.source
                binding.destination = prefix + binding.destination
                return binding
            }
        )
    }
}
