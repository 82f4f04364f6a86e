public import RelayAMQP
public import Tracing

// How a trace crosses the relay: in from the platform's AMQP headers, through the store on each
// outbox job, out on each attempt's HTTP request. The tracer decides the format (swift-otel's writes
// and reads W3C `traceparent` and `tracestate`); the relay only carries what it is given.

/// Reads a trace context from a consumed message's headers.
public struct AMQPHeadersExtractor: Extractor {
    public init() {}

    public func extract(key: String, from carrier: [String: AMQPHeaderValue]) -> String? {
        if let value = carrier[key] { return value.description }
        // AMQP header names are case-sensitive; a publisher that wrote `Traceparent` still meant it.
        return carrier.first { $0.key.lowercased() == key.lowercased() }?.value.description
    }
}

/// Writes a trace context into, and reads it from, the string map an outbox job keeps it in.
public struct TraceContextMap: Injector, Extractor {
    public init() {}

    public func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }

    public func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

/// Writes a trace context as request headers.
public struct HTTPHeadersInjector: Injector {
    public init() {}

    public func inject(_ value: String, forKey key: String, into carrier: inout [(name: String, value: String)]) {
        carrier.append((name: key, value: value))
    }
}

extension Tracer {
    /// What `inject` writes for `context`, as a job keeps it; nil when the tracer writes nothing (the
    /// no-op tracer of a relay that does not trace), so a job without a trace stays as it was.
    func carried(_ context: ServiceContext) -> [String: String]? {
        var carrier: [String: String] = [:]
        inject(context, into: &carrier, using: TraceContextMap())
        return carrier.isEmpty ? nil : carrier
    }

    /// The context a job's span continues: the one it carries, else a new trace.
    func context(carriedBy carrier: [String: String]?) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let carrier { extract(carrier, into: &context, using: TraceContextMap()) }
        return context
    }
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), for log lines; nil for
/// any other format.
func traceID(in carrier: [String: String]?) -> String? {
    guard let traceparent = carrier?["traceparent"] else { return nil }
    let fields = traceparent.split(separator: "-")
    guard fields.count == 4, fields[1].count == 32 else { return nil }
    return String(fields[1])
}
