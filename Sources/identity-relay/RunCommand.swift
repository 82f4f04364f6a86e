import ArgumentParser
import Logging
import Prometheus
import RelayAdmin
import RelayService
import RelaySimulator
import ServiceLifecycle
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
        let app: RelayApp
        do {
            app = try RelayApp(
                configuration: configuration,
                endpoints: resolved.endpoints,
                metrics: RelayMetrics(factory: AdminServer.metricsFactory(registry)),
                logger: logger
            )
        } catch {
            await resolved.simulator?.stop()
            throw reportConfigurationFailure(.init(error: error))
        }
        logger.notice(
            "declaring the relay's topology into vhost '\(configuration.amqp.virtualHost)'",
            metadata: [
                LogKeys.amqpVhost: "\(configuration.amqp.virtualHost)",
                "amqp.topologyFile": "\(configuration.amqp.topologyFile)",
                "amqp.namePrefix": "\(configuration.amqp.namePrefix)",
            ]
        )
        // One group for every part of the relay, the admin server last: it is the first to stop.
        var services = app.services
        if configuration.admin.enabled {
            if configuration.admin.token == nil {
                logger.warning(
                    "admin.token is not set: every admin endpoint but /healthz and /readyz answers 401 (set RELAY_ADMIN_TOKEN)"
                )
            }
            services.append(
                .init(
                    service: AdminServer(
                        app: app,
                        settings: .init(configuration.admin),
                        registry: registry,
                        logger: Logger(label: "admin")
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
}
