import Hummingbird
import Logging
import Prometheus
import RelayService

/// The routes of the admin API, one group per file. Every error is JSON, `{"error": …}`, with `field`
/// naming the field at fault when there is one (`AdminError`).
struct AdminRoutes: Sendable {
    let app: RelayApp
    let settings: AdminServer.Settings
    let registry: PrometheusCollectorRegistry
    let deadLetters: DeadLetterQueue
    let sessions: ConsoleSessions
    let rates: RateHistory
    let jobs: ConsoleJobs
    let logger: Logger

    func register(on router: Router<BasicRequestContext>) {
        HealthRoutes(app: app).register(on: router)
        // Signed in with the same token, into a session cookie: pages for a browser.
        ConsoleRoutes(
            app: app,
            token: AdminToken(settings.token),
            sessions: sessions,
            rates: rates,
            jobs: jobs,
            deadLetters: deadLetters,
            store: app.store,
            contacts: app.contacts,
            defaultRegion: app.configuration.identity.defaultRegion,
            maxBodyBytes: settings.maxBodyBytes,
            logger: logger
        ).register(on: router)

        let protected = router.group().add(middleware: BearerTokenMiddleware(token: settings.token))
        ContactRoutes(
            contacts: app.contacts,
            lookup: app.lookup,
            defaultRegion: app.configuration.identity.defaultRegion,
            maxBodyBytes: settings.maxBodyBytes,
            logger: logger
        ).register(on: protected)
        DeliveryRoutes(store: app.store, maxBodyBytes: settings.maxBodyBytes).register(on: protected)
        MetricsRoutes(app: app, registry: registry).register(on: protected)
        CTIRoutes(app: app, maxBodyBytes: settings.maxBodyBytes, logger: logger).register(on: protected)
        DeadLetterRoutes(deadLetters: deadLetters, maxBodyBytes: settings.maxBodyBytes, logger: logger)
            .register(on: protected)
    }
}
