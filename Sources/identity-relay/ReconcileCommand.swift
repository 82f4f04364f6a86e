import ArgumentParser
import Foundation
import Logging
import RelayAMQP
import RelayHTTP
import RelayService

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Ask the CRM again about interactions still linked by PHONE:, and upgrade those that match now.",
        discussion: """
            Each match gets a customer-update PUT with CRM:{id}, added to the store's outbox for the running \
            relay to deliver, in the transaction that relinks its interaction. `run` does the same on a schedule \
            (reconciliation.intervalHours). Progress goes to standard error; the summary to standard output. \
            Exit status: 0 done, 1 when an interaction failed, 69 broker unreachable, 78 configuration error.
            """
    )

    @OptionGroup var options: GlobalOptions

    @Option(
        help: ArgumentHelp(
            "Interactions first seen at or after this time: RFC 3339, a day, or an age (24h, 7d).",
            valueName: "time"
        )
    )
    var since = "24h"

    @Option(help: "At most this many interactions.")
    var limit = 100_000

    @Flag(help: "Ask the CRM, change nothing: report what would be upgraded.")
    var dryRun = false

    func validate() throws {
        guard DeadLetterFilter.parseTime(since, now: Date()) != nil else {
            throw ValidationError("--since '\(since)' is not a time (RFC 3339, a day, or an age such as 24h)")
        }
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
    }

    func run() async throws {
        var (configuration, _) = try options.load()
        bootstrapLogging(level: "error")
        let logger = Logger(label: "identity-relay.reconcile")
        guard !configuration.crm.lookup.urlTemplate.isEmpty else {
            throw reportConfigurationFailure(
                .init(error: ConfigurationError(key: "crm.lookup.urlTemplate", "is empty: reconciliation asks the CRM"))
            )
        }
        // No simulator: reconciliation talks to the configured CRM, and its PUTs go through the queue.
        configuration.admin.enabled = false
        let app: RelayApp
        do {
            app = try RelayApp(
                configuration: configuration,
                endpoints: .init(
                    platformBaseURL: configuration.platform.baseURL,
                    postCallWebhookURL: configuration.crm.postCallWebhookURL,
                    crmLookupURLTemplate: configuration.crm.lookup.urlTemplate,
                    crmContactURLTemplate: configuration.crm.contactLookupURLTemplate,
                    erpLookupURLTemplate: configuration.erp.lookup.urlTemplate
                ),
                carriesOutOutbox: false,
                logger: logger
            )
        } catch {
            throw reportConfigurationFailure(.init(error: error))
        }
        app.amqp.start()
        defer { app.http.shutdown() }
        do {
            try await app.amqp.waitUntilConnected(timeout: .seconds(10))
        } catch {
            FileHandle.standardError.write(Data("identity-relay: the broker is unreachable: \(error)\n".utf8))
            await app.amqp.shutdown()
            throw ExitCode(69)
        }
        let isTerminal = isatty(STDERR_FILENO) != 0
        let report = try await app.withStoreReady {
            try await app.reconciler!.run(
                since: DeadLetterFilter.parseTime(since, now: Date())!,
                limit: limit,
                dryRun: dryRun
            ) {
                progress in
                guard isTerminal || progress.done % 100 == 0 || progress.done == progress.total else { return }
                let line = "reconcile: \(progress.done)/\(progress.total), upgraded \(progress.upgraded)"
                FileHandle.standardError.write(Data((isTerminal ? "\r" + line : line + "\n").utf8))
            }
        }
        if isTerminal && report.examined > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
        await app.amqp.shutdown()
        for failure in report.failures { FileHandle.standardError.write(Data("identity-relay: \(failure)\n".utf8)) }
        print((dryRun ? "dry run: " : "") + report.summary)
        if report.failed > 0 { throw ExitCode(1) }
    }
}
