import ArgumentParser
import Logging
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
        let (configuration, _) = try options.load()
        bootstrapLogging(level: configuration.log.level)
        let logger = Logger(label: "identity-relay")

        var platformURL = configuration.platform.baseURL
        var simulator: SimulatedPlatform?
        if platformURL.isEmpty {
            let started = try await SimulatedPlatform.start(
                port: configuration.platform.simulatorPort, logger: Logger(label: "simulated-platform"))
            simulator = started
            platformURL = started.baseURL
            logger.notice("no platform.baseUrl configured: customer updates go to the built-in simulator",
                metadata: ["simulator.url": "\(platformURL)"])
        }
        let app: RelayApp
        do {
            app = try RelayApp(configuration: configuration, platformBaseURL: platformURL, logger: logger)
        } catch {
            await simulator?.stop()
            throw reportConfigurationFailure(.init(error: error))
        }
        let group = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await simulator?.stop()
    }
}
