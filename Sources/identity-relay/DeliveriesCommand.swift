import ArgumentParser
import Foundation
import Logging
import RelayCore
import RelayService
import RelayStore

/// `identity-relay deliveries`: what waits in the outbox (customer updates, webhooks, lookups, dead-letter
/// records still to publish), read from the store the configuration names, next to a running relay.
struct DeliveriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveries",
        abstract: "List, show and retry the work waiting in the relay's outbox.",
        discussion: """
            Works on the store the configuration names (store.path), next to a running relay, whose dispatcher \
            takes what `retry` makes due at its next poll (delivery.pollIntervalMs).
            Exit status: 0 success, 1 when an entry named was not found or not pending, 64 for usage errors, \
            78 for configuration errors.
            """,
        subcommands: [List.self, Show.self, Retry.self]
    )

    static func store(_ options: GlobalOptions) async throws -> any RelayDatabase {
        let (configuration, _) = try options.load()
        bootstrapLogging(level: "error")
        do {
            return try await configuration.openStore(logger: Logger(label: "identity-relay.store")).readyForCommand()
        } catch {
            throw reportConfigurationFailure(
                ConfigurationFailure(
                    error: ConfigurationError(
                        key: configuration.store.url == nil ? "store.path" : "store.url",
                        "cannot open the store: \(error)"
                    )
                )
            )
        }
    }

    struct Filter: ParsableArguments {
        @Option(help: "pending (the default), failing (pending, failed at least once) or finished.")
        var state: String = "pending"
        @Option(help: "Only this outbox kind: delivery, lookup or deadLetter.") var kind: String?
        @Option(name: .customLong("call-id"), help: "Only this call's entries.") var callId: String?
        @Option(help: "At most this many, newest first.") var limit = 100

        func query() throws -> OutboxQuery {
            guard let parsed = OutboxQuery.State(rawValue: state) else {
                throw ValidationError(
                    "--state must be one of \(OutboxQuery.State.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            if let rejection = OutboxKind.rejection(of: kind) { throw ValidationError("--kind \(rejection)") }
            guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
            return OutboxQuery(state: parsed, kind: kind, callId: callId, limit: limit)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List outbox entries, newest first.")

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filter: Filter
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() async throws {
            let query = try filter.query()
            let store = try await DeliveriesCommand.store(options)
            let now = Date()
            let views = try await store.outboxEntries(query).map { OutboxEntryView($0, now: now) }
            if json {
                try printJSONResult(views)
                return
            }
            let summary = try await store.outboxSummary(now: now)
            print(
                "\(summary.pending) pending (\(summary.kinds.values.reduce(0) { $0 + $1.due }) due, "
                    + "\(summary.kinds.values.reduce(0) { $0 + $1.retrying }) retries scheduled); showing \(views.count)"
            )
            guard !views.isEmpty else { return }
            print(DeliveriesText.table(views, now: now))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one outbox entry.")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The entry's id (from `deliveries list`).") var id: Int64
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() async throws {
            let store = try await DeliveriesCommand.store(options)
            guard let entry = try await store.outboxEntry(id: id) else {
                printCommandError("no outbox entry \(id)")
                throw ExitCode(1)
            }
            let view = OutboxEntryView(entry, now: Date())
            if json { try printJSONResult(view) } else { for line in DeliveriesText.detail(view) { print(line) } }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make pending entries due now, so the relay tries them at once.",
            discussion: """
                Name entries by id, or select them with --all and the filters. A retry does not reset the attempts: \
                an entry on its last attempt is dead-lettered if it fails again. What is dead-lettered already is \
                replayed with `dead-letters replay`.
                """
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "Entry ids.") var ids: [Int64] = []
        @Flag(help: "Every pending entry the filters select.") var all = false
        @Option(help: "Only this outbox kind: delivery, lookup or deadLetter.") var kind: String?
        @Option(name: .customLong("call-id"), help: "Only this call's entries.") var callId: String?
        @Option(help: "At most this many.") var limit = 10_000
        @Flag(name: .customLong("dry-run"), help: "Say what would be made due; change nothing.") var dryRun = false

        func validate() throws {
            guard ids.isEmpty == all else { throw ValidationError("name entry ids, or --all (with filters), not both") }
            guard all || (kind == nil && callId == nil) else {
                throw ValidationError("--kind and --call-id go with --all")
            }
            if let rejection = OutboxKind.rejection(of: kind) { throw ValidationError("--kind \(rejection)") }
        }

        func run() async throws {
            let store = try await DeliveriesCommand.store(options)
            let selection: OutboxRetry.Selection =
                all ? .query(OutboxQuery(kind: kind, callId: callId, limit: max(1, limit))) : .ids(ids)
            let report = try await OutboxRetry(store: store).run(selection, dryRun: dryRun) { done, total in
                // Progress to standard error, so standard output stays the result.
                if total > 100 { FileHandle.standardError.write(Data("retry: \(done)/\(total) made due\n".utf8)) }
            }
            print(report.summary)
            for id in report.notPending { printCommandError("no pending outbox entry \(id)") }
            if !report.notPending.isEmpty { throw ExitCode(1) }
        }
    }
}

/// The terminal form of outbox entries.
enum DeliveriesText {
    static func table(_ views: [OutboxEntryView], now: Date) -> String {
        var rows = [["ID", "KIND", "JOB", "CALL", "STATE", "ATTEMPTS", "DUE", "LAST ERROR"]]
        for view in views {
            rows.append(
                [
                    "\(view.id)", view.kind, view.job, view.callId,
                    view.outcome.map { "finished: \($0)" } ?? view.state,
                    "\(view.attempts)", view.finishedAt == nil ? relative(view.dueAt, now: now) : "-",
                    view.lastError.map { String($0.prefix(60)) } ?? "-",
                ].map(PrintSafe.escape)
            )
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func detail(_ view: OutboxEntryView) -> [String] {
        let format = ISO8601DateFormatter()
        // An upstream's error text and a publisher's ids are whatever they sent: printed, never acted on.
        return [
            "id:              \(view.id)",
            "kind:            \(view.kind) (\(view.job))",
            "call:            \(view.callId)",
            "cause:           \(view.causeId)",
            "idempotency key: \(view.idempotencyKey ?? "-")",
            "target:          \(view.target)",
            "state:           \(view.outcome.map { "finished: \($0)" } ?? view.state)",
            "attempts:        \(view.attempts)",
            "created:         \(format.string(from: view.createdAt))",
            "due:             \(view.finishedAt == nil ? format.string(from: view.dueAt) : "-")",
            "finished:        \(view.finishedAt.map { format.string(from: $0) } ?? "-")",
            "last error:      \(view.lastError ?? "-")",
        ].map(PrintSafe.escape)
    }

    static func relative(_ date: Date, now: Date) -> String {
        let seconds = Int(date.timeIntervalSince(now).rounded())
        if seconds <= 0 { return "now" }
        if seconds < 120 { return "in \(seconds)s" }
        if seconds < 7200 { return "in \(seconds / 60)m" }
        return "in \(seconds / 3600)h"
    }
}
