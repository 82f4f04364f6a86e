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
            With no platform.baseUrl configured, customer updates go to a built-in simulated platform on \
            loopback (platform.simulatorPort), so the relay runs end to end on one machine.
            """)

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        var (configuration, _) = try options.load()
        bootstrapLogging(level: configuration.log.level)
        let logger = Logger(label: "identity-relay")

        let resolved = try await ResolvedEndpoints.resolve(
            &configuration, simulatorPort: configuration.platform.simulatorPort, logger: Logger(label: "simulator"))
        for note in resolved.notes { logger.notice("\(note)") }
        let registry = PrometheusCollectorRegistry()
        let app: RelayApp
        do {
            app = try RelayApp(
                configuration: configuration, endpoints: resolved.endpoints,
                metrics: RelayMetrics(factory: AdminServer.metricsFactory(registry)), logger: logger)
        } catch {
            await resolved.simulator?.stop()
            throw reportConfigurationFailure(.init(error: error))
        }
        var services: [any Service] = [app]
        if configuration.admin.enabled {
            if configuration.admin.token == nil {
                logger.warning(
                    "admin.token is not set: every admin endpoint but /healthz and /readyz answers 401 (set RELAY_ADMIN_TOKEN)")
            }
            services.append(
                AdminServer(
                    app: app, settings: .init(configuration.admin), registry: registry, logger: Logger(label: "admin")))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await resolved.simulator?.stop()
    }
}
