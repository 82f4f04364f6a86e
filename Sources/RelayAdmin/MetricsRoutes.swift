import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus
import RelayCore
import RelayService

/// `/metrics`, the Prometheus text format, behind the token.
struct MetricsRoutes: Sendable {
    let app: RelayApp
    let registry: PrometheusCollectorRegistry

    func register(on group: RouterGroup<BasicRequestContext>) {
        group.get("metrics") { _, _ in await metrics() }
    }

    private func metrics() async -> Response {
        await app.recordBacklog()
        // Breaker states are read when scraped: they change with time (open → half-open), not only on calls.
        func gaugeValue(_ state: CircuitBreaker.State?) -> Int {
            switch state {
            case .open: 2
            case .halfOpen: 1
            case .closed, nil: 0
            }
        }
        if let enricher = app.enricher {
            for upstream in enricher.upstreams {
                app.metrics.breakerState(upstream: upstream, value: gaugeValue(enricher.breakerState(upstream)))
            }
        }
        for target in DeliverySender.targetNames {
            app.metrics.breakerState(upstream: target, value: gaugeValue(app.dispatcher.sender.breakerState(target)))
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
        )
    }
}
