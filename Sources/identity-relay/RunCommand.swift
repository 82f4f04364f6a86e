import ArgumentParser
import Foundation
import Logging
import OTel
import Prometheus
import RelayAdmin
import RelayService
import RelaySimulator
import ServiceLifecycle
import Tracing
import UnixSignals

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Consume platform events and relay customer updates until SIGTERM or SIGINT.",
        discussion: """
            The first SIGTERM or SIGINT stops consuming, lets in-flight work finish or go back to the broker, \
            and exits 0; a second one during that exits at once with 128 + the signal number (143, 130). \
            Nothing is lost either way: unfinished events are redelivered to the next run.

            With no platform.baseUrl configured, customer updates go to a built-in simulated platform on \
            loopback (platform.simulatorPort), so the relay runs end to end on one machine.
            """
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        var (configuration, _) = try options.load()
        bootstrapLogging(level: configuration.log.level)
        let logger = Logger(label: "identity-relay")

        let resolved = try await ResolvedEndpoints.resolve(
            &configuration,
            simulatorPort: configuration.platform.simulatorPort,
            logger: Logger(label: "simulator")
        )
        for note in resolved.notes { logger.notice("\(note)") }
        let registry = PrometheusCollectorRegistry()
        let tracing: (tracer: any Tracer, exporter: any Service)?
        let app: RelayApp
        do {
            tracing = try Self.tracing(configuration.tracing, logger: logger)
            app = try RelayApp(
                configuration: configuration,
                endpoints: resolved.endpoints,
                metrics: RelayMetrics(factory: AdminServer.metricsFactory(registry)),
                logger: logger,
                tracer: tracing?.tracer ?? NoOpTracer()
            )
        } catch {
            await resolved.simulator?.stop()
            throw reportConfigurationFailure(.init(error: error))
        }
        logger.notice(
            "declaring the relay's topology into vhost '\(configuration.amqp.virtualHost)'",
            metadata: [
                LogKeys.amqpVhost: "\(configuration.amqp.virtualHost)",
                LogKeys.amqpTopologyFile: "\(configuration.amqp.topologyFile)",
                LogKeys.amqpNamePrefix: "\(configuration.amqp.namePrefix)",
            ]
        )
        // One group for every part of the relay, the admin server last: it is the first to stop. The
        // span exporter comes first, so it stops last and sends the spans of the final batches.
        var services =
            (tracing.map { [.init(service: NamedPart(name: "span exporter", service: $0.exporter, logger: logger))] }
                ?? []) + app.services
        if configuration.admin.enabled {
            if configuration.admin.token == nil {
                logger.warning(
                    "admin.token is not set: every admin endpoint but /healthz and /readyz answers 401 (set RELAY_ADMIN_TOKEN)"
                )
            }
            services.append(
                .init(
                    service: NamedPart(
                        name: "admin API",
                        service: AdminServer(
                            app: app,
                            settings: .init(configuration.admin),
                            registry: registry,
                            logger: Logger(label: "admin")
                        ),
                        logger: logger
                    )
                )
            )
        }
        // ShutdownSignals handles SIGTERM and SIGINT (a second one forces exit): not the group's own.
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        try await ShutdownSignals.run(group, logger: logger)
        logger.notice("stopped")
        await resolved.simulator?.stop()
    }

    /// swift-otel's tracer and its exporter when `tracing.otlpEndpoint` is set: traces only (the relay's
    /// logs and Prometheus metrics stay as they are), W3C trace context, OTLP/HTTP with protobuf. The
    /// `OTEL_*` environment variables swift-otel reads (sampler, batch sizes, headers) apply on top.
    static func tracing(
        _ settings: RelayConfiguration.Tracing,
        logger: Logger
    ) throws(ConfigurationError) -> (tracer: any Tracer, exporter: any Service)? {
        guard let endpoint = settings.otlpEndpoint else { return nil }
        if ProcessInfo.processInfo.environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" {
            logger.notice("tracing.otlpEndpoint is set, but OTEL_SDK_DISABLED=true: no spans are made or exported")
            return nil
        }
        var otel = OTel.Configuration.default
        otel.serviceName = settings.serviceName
        otel.logs.enabled = false
        otel.metrics.enabled = false
        otel.propagators = [.traceContext]
        otel.traces.exporter = .otlp
        otel.traces.otlpExporter.protocol = .httpProtobuf
        otel.traces.otlpExporter.endpoint = endpoint
        otel.diagnosticLogger = .custom(logger)
        otel.diagnosticLogLevel = .warning
        let backend: (factory: any Tracer, service: any Service)
        do {
            let made = try OTel.makeTracingBackend(configuration: otel)
            backend = (made.factory, made.service)
        } catch {
            throw ConfigurationError(key: "tracing.otlpEndpoint", "tracing cannot start: \(error)")
        }
        logger.notice(
            "exporting traces over OTLP/HTTP",
            metadata: [LogKeys.tracingEndpoint: "\(endpoint)", LogKeys.tracingServiceName: "\(settings.serviceName)"]
        )
        return (backend.factory, backend.service)
    }
}
