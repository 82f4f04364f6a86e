import Foundation
import InMemoryTracing
import Logging
import RelayAMQP
import RelayCore
import RelayHTTP
import RelayService
import RelaySimulator
import RelayTesting
import Synchronization
import Testing
import Tracing

/// Each event is a span from consume to commit, each outbox attempt a span in the same trace, and
/// the trace goes on to the platform and the webhook receiver; an incoming `traceparent` is continued.
@Suite("Tracing end to end", .stopsRelays)
struct TracingTests {
    static let incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let incomingSpan = "00f067aa0ba902b7"
    static var incomingTraceparent: String { "00-\(incomingTrace)-\(incomingSpan)-01" }

    /// An event whose publisher put its span in the headers.
    static func publishTraced(_ type: String, _ body: [UInt8], to relay: RelayHarness) async throws {
        try await relay.publisher.publish(
            OutboundMessage(
                exchange: relay.names.eventsExchange,
                routingKey: type,
                body: body,
                headers: ["traceparent": .string(incomingTraceparent)]
            )
        )
    }

    /// Every request the platform and the webhook receiver got, with the `traceparent` it carried.
    final class Requests: Sendable {
        private let seen = Mutex<[(method: String, path: String, traceparent: String?)]>([])
        var all: [(method: String, path: String, traceparent: String?)] { seen.withLock { $0 } }

        func behaviour(failFirstPut: Bool = false) -> SimulatedPlatform.Behaviour {
            { attempt, request in
                let traceparent = request.headers.first { $0.name.lowercased() == "traceparent" }?.value
                self.seen.withLock { $0.append((request.method, request.path, traceparent)) }
                if failFirstPut, request.method == "PUT", attempt == 1 {
                    return ScriptedResponse(status: 503, body: Array("busy".utf8))
                }
                return nil
            }
        }
    }

    @Test("an incoming traceparent is continued: consume span, then the PUT's span, whose id the PUT carries")
    func continuesIncomingTrace() async throws {
        let tracer = W3CInMemoryTracer()
        let requests = Requests()
        let logs = RecordingLogHandler.Store()
        let relay = try await RelayHarness.start(
            platformBehaviour: requests.behaviour(),
            logger: RecordingLogHandler.logger(label: "test.relay", store: logs),
            tracer: tracer
        )
        defer { Task { await relay.stop() } }
        try await Self.publishTraced(
            "callStarted",
            callStartedBody(eventId: "traced-s", callId: "traced-call", from: "+15550100001"),
            to: relay
        )
        // And one that carries no trace: it starts its own.
        try await relay.publish([callStartedBody(eventId: "untraced-s", callId: "untraced-call", from: "+15550100002")])
        _ = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(15))
        try await eventually { tracer.spans.finishedSpans.filter { $0.operationName == "PUT" }.count == 2 }

        let spans = tracer.spans.finishedSpans
        let consumed = try #require(spans.first { $0.attributes.get("relay.event.id") == "traced-s" })
        #expect(consumed.operationName == "process \(relay.names.eventsQueue)")
        #expect(consumed.kind == .consumer)
        #expect(consumed.traceID == Self.incomingTrace)
        #expect(consumed.spanContext.parentSpanID == Self.incomingSpan)

        let put = try #require(spans.first { $0.operationName == "PUT" && $0.traceID == Self.incomingTrace })
        #expect(put.kind == .client)
        #expect(put.spanContext.parentSpanID == consumed.spanID)
        #expect(put.attributes.get("http.response.status_code") == 200)
        // The platform received the PUT's own span as its parent.
        let sent = requests.all.filter { $0.method == "PUT" }.compactMap(\.traceparent)
        #expect(sent.contains("00-\(Self.incomingTrace)-\(put.spanID)-01"))

        // The other event's trace is its own, and its PUT carries it.
        let other = try #require(spans.first { $0.attributes.get("relay.event.id") == "untraced-s" })
        #expect(other.traceID != Self.incomingTrace)
        #expect(other.spanContext.parentSpanID == nil)
        let otherPut = try #require(spans.first { $0.operationName == "PUT" && $0.traceID == other.traceID })
        #expect(otherPut.spanContext.parentSpanID == other.spanID)
        #expect(sent.contains("00-\(other.traceID)-\(otherPut.spanID)-01"))

        // The delivery's log line names the trace.
        #expect(logs.all.contains { $0.contains("delivered") && $0.contains("trace.id=\(Self.incomingTrace)") })
    }

    @Test("a retry read back from the store continues the trace: two attempts, two spans, one parent")
    func retryKeepsTheTrace() async throws {
        let tracer = W3CInMemoryTracer()
        let requests = Requests()
        let relay = try await RelayHarness.start(
            platformBehaviour: requests.behaviour(failFirstPut: true),
            tracer: tracer
        )
        defer { Task { await relay.stop() } }
        try await Self.publishTraced(
            "callStarted",
            callStartedBody(eventId: "retried-s", callId: "retried-call", from: "+15550100003"),
            to: relay
        )
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        try await eventually { tracer.spans.finishedSpans.filter { $0.operationName == "PUT" }.count == 2 }

        let spans = tracer.spans.finishedSpans
        let consumed = try #require(spans.first { $0.kind == .consumer })
        let puts = spans.filter { $0.operationName == "PUT" }
        #expect(puts.allSatisfy { $0.traceID == Self.incomingTrace && $0.spanContext.parentSpanID == consumed.spanID })
        #expect(Set(puts.map(\.spanID)).count == 2)
        let attempts: [SpanAttribute?] = puts.map { $0.attributes.get("relay.attempt") }
        #expect(attempts.contains(1) && attempts.contains(2))
        #expect(puts.contains { $0.status?.code == .error })
        let sent = requests.all.filter { $0.method == "PUT" }.compactMap(\.traceparent)
        #expect(Set(sent) == Set(puts.map { "00-\(Self.incomingTrace)-\($0.spanID)-01" }))
    }

    @Test("a whole call with enrichment: the webhook and the enriched update stay in the incoming trace")
    func wholeCallWithEnrichment() async throws {
        let tracer = W3CInMemoryTracer()
        let requests = Requests()
        let relay = try await RelayHarness.start(
            platformBehaviour: requests.behaviour(),
            enrichment: true,
            tracer: tracer
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100004", .init(contactId: "003A000009", name: "Jane Roe"))
        let events: [(String, [UInt8])] = [
            ("callStarted", callStartedBody(eventId: "whole-s", callId: "whole-call", from: "+15550100004")),
            ("callEnded", callEndedBody(eventId: "whole-e", callId: "whole-call")),
            ("wrapUp", wrapUpBody(eventId: "whole-w", callId: "whole-call")),
        ]
        for (type, body) in events { try await Self.publishTraced(type, body, to: relay) }
        _ = try await relay.platform.waitForWebhooks(count: 1, timeout: .seconds(15))
        _ = try await relay.platform.waitForCustomerUpdates(count: 2, timeout: .seconds(15))
        try await eventually {
            tracer.spans.finishedSpans.filter { ["PUT", "POST"].contains($0.operationName) }.count == 3
        }

        let spans = tracer.spans.finishedSpans
        #expect(spans.allSatisfy { $0.traceID == Self.incomingTrace })
        let byId = Dictionary(spans.map { ($0.spanID, $0) }) { first, _ in first }
        let enrich = try #require(spans.first { $0.operationName == "enrich" })
        #expect(byId[enrich.spanContext.parentSpanID ?? ""]?.kind == .consumer)
        // The enriched update is the lookup's doing; the phase-1 update the start's.
        let puts = spans.filter { $0.operationName == "PUT" }
        #expect(puts.contains { $0.spanContext.parentSpanID == enrich.spanID })
        #expect(puts.contains { byId[$0.spanContext.parentSpanID ?? ""]?.kind == .consumer })
        // The CRM was asked under the lookup's span.
        let crmAsked = requests.all.filter { $0.method == "GET" && $0.path.hasPrefix("/crm/") }.compactMap(
            \.traceparent
        )
        #expect(!crmAsked.isEmpty)
        #expect(crmAsked.allSatisfy { $0 == "00-\(Self.incomingTrace)-\(enrich.spanID)-01" })
        let post = try #require(spans.first { $0.operationName == "POST" })
        #expect(byId[post.spanContext.parentSpanID ?? ""]?.kind == .consumer)
        let sent = requests.all.filter { $0.method == "POST" }.compactMap(\.traceparent)
        #expect(sent.contains("00-\(Self.incomingTrace)-\(post.spanID)-01"))
    }

    @Test("an agent's update-context through the admin API continues the desktop's trace to the PUT it causes")
    func updateContextContinuesTheTrace() async throws {
        let tracer = W3CInMemoryTracer()
        let requests = Requests()
        let relay = try await RelayHarness.start(
            platformBehaviour: requests.behaviour(),
            enrichment: true,
            admin: true,
            tracer: tracer
        )
        defer { Task { await relay.stop() } }
        relay.platform.addCRMContact(phone: "+15550100999", .init(contactId: "500999999", name: "Acme Corp"))
        try await relay.publish([callStartedBody(eventId: "cti-s", callId: "cti-call", from: "+15550100502")])
        _ = try await relay.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(15))
        let answer = try await AdminAPITests().call(
            relay,
            "POST",
            "/api/v1/genesys/update-context",
            body: #"{"callId":"cti-call","newExternalId":"CRM:500999999","reason":"Agent Verified Account Switch"}"#,
            headers: [
                (name: "traceparent", value: Self.incomingTraceparent), (name: "Idempotency-Key", value: "cti-1"),
            ]
        )
        #expect(answer.status == 202)
        try await eventually(timeout: .seconds(15)) {
            relay.platform.customerUpdates.contains { $0.idempotencyKey == "context-update:admin:cti-1" }
        }
        let spans = tracer.spans.finishedSpans
        let submitted = try #require(spans.first { $0.operationName == "submit contextUpdate" })
        #expect(submitted.traceID == Self.incomingTrace)
        #expect(submitted.spanContext.parentSpanID == Self.incomingSpan)
        // The switch is validated by a lookup, whose update then goes out: all in the desktop's trace.
        try await eventually {
            tracer.spans.finishedSpans.contains { $0.operationName == "PUT" && $0.traceID == Self.incomingTrace }
        }
        let sent = requests.all.filter { $0.method == "PUT" }.compactMap(\.traceparent)
        #expect(sent.contains { $0.hasPrefix("00-\(Self.incomingTrace)-") })
    }

    @Test("`run` with tracing.otlpEndpoint set exports its spans over OTLP/HTTP, in the incoming trace")
    func exportsOverOTLP() async throws {
        let collector = try await LocalHTTPServer.start(logger: Logger(label: "test.collector")) { _ in
            ScriptedResponse(status: 200, body: [])
        }
        defer { Task { await collector.stop() } }
        let setup = try await GracefulShutdownTests.Setup.make()
        defer { Task { await setup.tearDown() } }
        let relay = try await setup.startRelay([
            "RELAY_TRACING_OTLP_ENDPOINT": collector.baseURL + "/v1/traces",
            "RELAY_TRACING_SERVICE_NAME": "relay-under-test",
            // Exported within moments rather than swift-otel's default 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        ])
        defer { relay.killIfRunning() }
        #expect(relay.output.contains("exporting traces over OTLP/HTTP"))
        try await setup.publisher.publish(
            OutboundMessage(
                exchange: setup.prefix + "platform.events",
                routingKey: "callStarted",
                body: callStartedBody(eventId: "otlp-s", callId: "otlp-call", from: "+15550100005"),
                headers: ["traceparent": .string(Self.incomingTraceparent)]
            )
        )
        let updates = try await setup.platform.waitForCustomerUpdates(count: 1, timeout: .seconds(20))
        #expect(updates.count == 1)
        // The trace id as OTLP's protobuf carries it: 16 raw bytes.
        let traceIdBytes = stride(from: 0, to: 32, by: 2).map {
            UInt8(Self.incomingTrace.dropFirst($0).prefix(2), radix: 16)!
        }
        try await eventually(timeout: .seconds(20), "spans of the incoming trace at the collector") {
            collector.requests.contains { $0.body.contains(traceIdBytes) }
        }
        let export = try #require(collector.requests.first { $0.body.contains(traceIdBytes) })
        #expect(export.method == "POST")
        #expect(export.path == "/v1/traces")
        #expect(
            export.headers.contains { $0.name.lowercased() == "content-type" && $0.value == "application/x-protobuf" }
        )
        #expect(export.body.contains(Array("relay-under-test".utf8)))
        #expect(export.body.contains(Array("process ".utf8)))
        relay.signal(SIGTERM)
        #expect(try await relay.waitForExit(timeout: .seconds(30)) == 0)
    }
}

/// swift-distributed-tracing's in-memory tracer, speaking W3C trace context on the wire as swift-otel's
/// tracer does: ids in W3C's shape, `traceparent` written and read. The test hands the relay a
/// `traceparent` and reads the ones it sends, without an exporter.
struct W3CInMemoryTracer: Tracer {
    let spans = InMemoryTracer(
        idGenerator: .init(
            nextTraceID: { String(format: "%032llx", UInt64.random(in: 1...UInt64.max)) },
            nextSpanID: { String(format: "%016llx", UInt64.random(in: 1...UInt64.max)) }
        )
    )

    func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> ServiceContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> InMemorySpan {
        spans.startSpan(
            operationName,
            context: context(),
            ofKind: kind,
            at: instant(),
            function: function,
            file: fileID,
            line: line
        )
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(
        _ context: ServiceContext,
        into carrier: inout Carrier,
        using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject("00-\(span.traceID)-\(span.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier,
        into context: inout ServiceContext,
        using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier) else { return }
        let fields = value.split(separator: "-")
        guard fields.count == 4, fields[1].count == 32, fields[2].count == 16 else { return }
        context.inMemorySpanContext = InMemorySpanContext(
            traceID: String(fields[1]),
            spanID: String(fields[2]),
            parentSpanID: nil
        )
    }
}
