import ArgumentParser
import Foundation
import Glibc
import Logging
import RelayCore
import RelayService
import RelayStore

/// `identity-relay dead-letters`: the on-call engineer's tool for the record of dead letters. A thin
/// layer over `DeadLetterQueue` (RelayService/DeadLetters), which holds the logic and the guarantees.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List, show, replay, purge, resolve and export dead letters.",
        discussion: """
            Dead letters are recorded in the relay's store (store.path): every command first drains \
            relay.dead-letters into it, each message acked only once recorded, then works on the store. \
            Raw messages the broker dead-lettered itself (past a queue's delivery limit) appear with the \
            reason brokerDeadLettered and can be replayed too.
            Exit status: 0 success, 1 when a dead letter could not be handled (or was not found), 2 when a \
            purge was declined, 64 for usage errors, 69 when the broker, the queue or the store cannot be \
            reached, 78 for configuration errors.
            """,
        subcommands: [List.self, Show.self, Replay.self, Purge.self, Resolve.self, Export.self]
    )
}

/// The filters every subcommand but `show` takes.
struct DeadLetterFilterOptions: ParsableArguments {
    @Option(
        name: .customLong("reason"),
        help: ArgumentHelp(
            "Only this reason; repeat for several: \(DeadLetter.knownReasons.joined(separator: ", ")).",
            valueName: "reason"
        )
    )
    var reasons: [String] = []

    @Option(
        help: ArgumentHelp(
            "Only dead letters that last failed at or after this time: RFC 3339, a day (2026-05-01, UTC) or an "
                + "age (90s, 30m, 2h, 7d).",
            valueName: "time"
        )
    )
    var since: String?

    @Option(
        help: ArgumentHelp("Only dead letters that last failed at or before this time (as --since).", valueName: "time")
    )
    var until: String?

    @Option(name: .customLong("call-id"), help: ArgumentHelp("Only this interaction id (exact).", valueName: "id"))
    var callId: String?

    @Option(help: ArgumentHelp("At most this many dead letters, the oldest first.", valueName: "n"))
    var limit: Int?

    func validate() throws {
        do {
            _ = try checkedFilter(now: Date())
        } catch {
            throw ValidationError("--\(error.field.rawValue) \(error.problem)")
        }
    }

    /// Whether any filter was given.
    var isSet: Bool { !reasons.isEmpty || since != nil || until != nil || callId != nil || limit != nil }

    private func checkedFilter(ids: [String] = [], now: Date) throws(DeadLetterFilterError) -> DeadLetterFilter {
        try DeadLetterFilter(
            checkingReasons: reasons,
            since: since,
            until: until,
            callId: callId,
            ids: ids,
            limit: limit,
            now: now
        )
    }

    /// The filter, checked by `validate()` before any command runs.
    func filter(ids: [String] = [], now: Date) throws -> DeadLetterFilter {
        do {
            return try checkedFilter(ids: ids, now: now)
        } catch {
            throw ValidationError("--\(error.field.rawValue) \(error.problem)")
        }
    }
}

/// `--state` for the commands that read (list, export): which states to show.
struct DeadLetterStateOptions: ParsableArguments {
    @Option(
        name: .customLong("state"),
        help: ArgumentHelp(
            "Dead letters in this state (default open); repeat for several: "
                + StoredDeadLetter.State.allCases.map(\.rawValue).joined(separator: ", ") + ", or any.",
            valueName: "state"
        )
    )
    var states: [String] = []

    func validate() throws {
        let known = StoredDeadLetter.State.allCases.map(\.rawValue) + ["any"]
        for state in states where !known.contains(state) {
            throw ValidationError("unknown --state '\(state)'; expected one of \(known.joined(separator: ", "))")
        }
    }

    var selected: Set<StoredDeadLetter.State> {
        if states.isEmpty { return [.open] }
        if states.contains("any") { return Set(StoredDeadLetter.State.allCases) }
        return Set(states.compactMap(StoredDeadLetter.State.init(rawValue:)))
    }

    /// What the counts are of: `open`, `replayed`, `open or resolved`, `any state`.
    var label: String {
        let selected = selected
        if selected.count == StoredDeadLetter.State.allCases.count { return "any state" }
        return StoredDeadLetter.State.allCases.filter(selected.contains).map(\.rawValue).joined(separator: " or ")
    }
}

extension DeadLettersCommand {
    /// The queue named by the configuration (`amqp.*`, `amqp.namePrefix`).
    static func queue(_ options: GlobalOptions) async throws -> DeadLetterQueue {
        let (configuration, _) = try options.load()
        // The tool reports what matters itself; the AMQP client's info lines would only be noise.
        bootstrapLogging(level: "error")
        var queue = DeadLetterQueue(
            configuration: configuration.amqp.connection,
            names: RelayNames(prefix: configuration.amqp.namePrefix),
            logger: Logger(label: "identity-relay.dead-letters")
        )
        // With the relay's key, sealed payloads open for show, export and replay; without it they stay sealed.
        queue.cipher = configuration.privacy.encryptionKey.flatMap(FieldCipher.init(base64Key:))
        // The record of dead letters, and the outbox failed deliveries are replayed into. Only the relay's
        // own file: a new one here (a relative path run from elsewhere) would take the queue's dead
        // letters where the relay never looks. A PostgreSQL store is shared, wherever this runs.
        if configuration.store.url == nil {
            let storePath = URL(fileURLWithPath: configuration.store.path).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: storePath) else {
                printError(
                    "no relay store at \(storePath): run this where store.path is the relay's (the relay creates it)"
                )
                throw ExitCode(69)
            }
        }
        do {
            queue.store = try await configuration.openStore(logger: Logger(label: "identity-relay.store"))
                .readyForCommand()
        } catch {
            printError("cannot open the store: \(error)")
            throw ExitCode(69)
        }
        return queue
    }

    static func progressReporter() -> DeadLetterProgressReporter {
        // Progress goes to standard error, so standard output stays the result (and `export` stays JSONL).
        DeadLetterProgressReporter(isTerminal: isatty(STDERR_FILENO) != 0, every: 100) { text in
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    /// Runs a queue operation; one that cannot run at all (no broker, no queue) ends the command with
    /// EX_UNAVAILABLE, so scripts can tell it from a dead letter that failed (1).
    static func attempt<T>(_ operation: () async throws(DeadLetterQueueError) -> T) async throws -> T {
        do {
            return try await operation()
        } catch {
            printError(error.message)
            throw ExitCode(69)
        }
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data("identity-relay: \(text)\n".utf8))
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List dead letters as a table (call ids masked), or as JSON with --json. Changes nothing."
        )

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filter: DeadLetterFilterOptions
        @OptionGroup var state: DeadLetterStateOptions

        @Flag(help: "Print a JSON array for scripts (call ids masked, no payload; `export` has everything).")
        var json = false

        @Flag(help: "Print call ids in full, to copy one (said on standard error: keep such output out of tickets).")
        var reveal = false

        func run() async throws {
            let queue = try await DeadLettersCommand.queue(options)
            let now = Date()
            var selected = try filter.filter(now: now)
            selected.states = state.selected
            let listing = try await DeadLettersCommand.attempt { () throws(DeadLetterQueueError) in
                try await queue.list(selected)
            }
            if reveal {
                FileHandle.standardError.write(
                    Data(
                        "identity-relay: call ids shown in full (--reveal): keep this output out of tickets and chats\n"
                            .utf8
                    )
                )
            }
            if json {
                print(
                    String(
                        decoding: DeadLetter.listJSON(listing.letters, now: now, revealCallIds: reveal),
                        as: UTF8.self
                    )
                )
                return
            }
            // Counts first: how many, of what, failing how, since when.
            var counted = selected
            (counted.limit, counted.after) = (nil, nil)
            let summary = try await DeadLettersCommand.attempt { () throws(DeadLetterQueueError) in
                try await queue.summary(counted)
            }
            for line in DeadLetterText.summary(summary, now: now, label: state.label) { print(line) }
            if !listing.letters.isEmpty {
                for line in DeadLetterText.table(listing.letters, now: now, revealCallIds: reveal) { print(line) }
            }
            let counts =
                selected.states == [.open]
                ? "\(listing.letters.count) of \(listing.scanned) open dead letters"
                : "\(listing.letters.count) of \(summary.total) dead letters (\(state.label)); open: \(listing.scanned)"
            print(
                counts
                    + (listing.truncated ? " (more were arriving on \(queue.names.deadLettersQueue): run again)" : "")
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one dead letter in full, payload included, whatever its state. Changes nothing."
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: "The dead letter's id (as `list` shows it).")
        var id: String

        @Flag(help: "Print the record as JSON (the `export` form).")
        var json = false

        @Flag(
            help:
                "With --json: write a sealed payload opened, with privacy.encryptionKey (the text form always opens it)."
        )
        var decrypt = false

        func validate() throws {
            if decrypt && !json {
                throw ValidationError("--decrypt goes with --json: the text form opens sealed payloads anyway")
            }
        }

        func run() async throws {
            let queue = try await DeadLettersCommand.queue(options)
            let now = Date()
            let found = try await DeadLettersCommand.attempt { () throws(DeadLetterQueueError) in
                try await queue.letter(id: id)
            }
            guard let letter = found else {
                DeadLettersCommand.printError("no dead letter with id \(id)")
                throw ExitCode(1)
            }
            if json {
                print(String(decoding: letter.exportJSONPretty(decrypted: decrypt), as: UTF8.self))
                if decrypt && letter.payloadIsSealed {
                    DeadLettersCommand.printError("\(letter.id): \(letter.sealedPayloadReason); written sealed")
                    throw ExitCode(1)
                }
            } else {
                for line in DeadLetterText.detail(letter, copies: letter.copies, now: now) { print(line) }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead letters' original messages back where they came from.",
            discussion: """
                Each payload is republished to its origin exchange and routing key with the header \
                x-relay-replay-count (one more than the dead letter carried), and the dead letter is removed \
                only once the broker confirmed the republish. One that cannot be replayed (no origin, the \
                exchange is gone, nothing routes it) is kept, reported, and makes the exit status 1.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: "Ids of the dead letters to replay.")
        var ids: [String] = []

        @Flag(help: "Replay every dead letter the filters select.")
        var all = false

        @OptionGroup var filter: DeadLetterFilterOptions

        @Flag(help: "Show what would be replayed, and where to; change nothing.")
        var dryRun = false

        @Option(
            help: ArgumentHelp("At most this many replays per second, to spare the systems downstream.", valueName: "n")
        )
        var rate: Double?

        @Flag(
            help: """
                Give a failed delivery or lookup a new retry budget (attempts and age). Without it the job goes \
                on counting: one that used up its attempts gets one more.
                """
        )
        var resetAttempts = false

        func validate() throws {
            if ids.isEmpty && !all {
                throw ValidationError("name the dead letters to replay, or pass --all (filters narrow it)")
            }
            if !ids.isEmpty && all { throw ValidationError("give dead-letter ids or --all, not both") }
            if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number") }
        }

        func run() async throws {
            let queue = try await DeadLettersCommand.queue(options)
            let reporter = DeadLettersCommand.progressReporter()
            let selected = try filter.filter(ids: ids, now: Date())
            let report = try await DeadLettersCommand.attempt { () throws(DeadLetterQueueError) in
                try await queue.replay(
                    selected,
                    dryRun: dryRun,
                    rate: rate,
                    resetAttempts: resetAttempts,
                    progress: { reporter.report($0) }
                )
            }
            try DeadLettersCommand.finish(report)
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove dead letters for good, after confirmation (or with --yes).",
            discussion: """
                Asks on the terminal before removing anything; without a terminal it refuses unless --yes \
                is given. Purging everything needs --all, so a missing filter never closes every dead letter.
                """
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: "Ids of the dead letters to purge.")
        var ids: [String] = []

        @Flag(help: "Purge every dead letter the filters select (all of them without filters).")
        var all = false

        @OptionGroup var filter: DeadLetterFilterOptions

        @Flag(name: [.short, .long], help: "Do not ask for confirmation.")
        var yes = false

        @Flag(help: "Show what would be purged; change nothing.")
        var dryRun = false

        func validate() throws {
            if ids.isEmpty && !all && !filter.isSet {
                throw ValidationError("name the dead letters to purge, give filters, or pass --all")
            }
            if !ids.isEmpty && all { throw ValidationError("give dead-letter ids or --all, not both") }
        }

        func run() async throws {
            let interactive = isatty(STDIN_FILENO) != 0
            if !yes && !dryRun && !interactive {
                DeadLettersCommand.printError(
                    "purge asks for confirmation, and standard input is not a terminal: pass --yes to purge anyway"
                )
                throw ExitCode.validationFailure
            }
            let queue = try await DeadLettersCommand.queue(options)
            let reporter = DeadLettersCommand.progressReporter()
            let selected = try filter.filter(ids: ids, now: Date())
            let report = try await DeadLettersCommand.attempt { () throws(DeadLetterQueueError) in
                try await queue.purge(
                    selected,
                    dryRun: dryRun,
                    confirm: { [yes] letters in
                        yes || DeadLettersCommand.confirmPurge(letters, queue: queue.names.deadLettersQueue)
                    },
                    progress: { reporter.report($0) }
                )
            }
            try DeadLettersCommand.finish(report)
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close dead letters that need no replay (an orphan, something handled elsewhere), with a note."
        )

        @OptionGroup var options: GlobalOptions

        @Argument(help: "Ids of the dead letters to resolve.")
        var ids: [String] = []

        @Option(help: ArgumentHelp("Why it needs no replay: kept with the record.", valueName: "text"))
        var note: String

        @Flag(help: "Show what would be resolved; change nothing.")
        var dryRun = false

        func validate() throws {
            if ids.isEmpty { throw ValidationError("name the dead letters to resolve") }
            if note.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--note must say why") }
        }

        func run() async throws {
            let queue = try await DeadLettersCommand.queue(options)
            let report = try await DeadLettersCommand.attempt { () throws(DeadLetterQueueError) in
                try await queue.resolve(DeadLetterFilter(ids: Set(ids)), note: note, dryRun: dryRun)
            }
            try DeadLettersCommand.finish(report)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write dead letters, payload included, one JSON object per line. Changes nothing.",
            discussion: """
                Each line holds the record's own fields (DeadLetterRecord's JSON form) plus kind and replayCount; \
                raw messages the broker dead-lettered have the reason brokerDeadLettered and no failure times.
                """
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case jsonl
        }

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filter: DeadLetterFilterOptions
        @OptionGroup var state: DeadLetterStateOptions

        @Option(help: "Output format.")
        var format: Format = .jsonl

        @Option(
            name: [.short, .long],
            help: ArgumentHelp("Write to this file instead of standard output.", valueName: "path")
        )
        var output: String?

        @Flag(
            help: """
                Write sealed payloads opened, with privacy.encryptionKey; a payload that does not open is \
                written sealed, named on standard error, and makes the exit status 1.
                """
        )
        var decrypt = false

        func run() async throws {
            var queue = try await DeadLettersCommand.queue(options)
            var selected = try filter.filter(now: Date())
            selected.states = state.selected
            // Written a page of whole records at a time: an incident's payloads never sit in memory at once.
            let pageSize = 100
            let destination: URL? = output.flatMap { $0 == "-" ? nil : URL(fileURLWithPath: $0) }
            let partial = destination.map {
                $0.deletingLastPathComponent().appendingPathComponent(".\($0.lastPathComponent).partial")
            }
            let sink: FileHandle
            if let partial {
                guard FileManager.default.createFile(atPath: partial.path, contents: nil),
                    let handle = try? FileHandle(forWritingTo: partial)
                else {
                    DeadLettersCommand.printError("cannot write \(output ?? "")")
                    throw ExitCode(1)
                }
                sink = handle
            } else {
                sink = FileHandle.standardOutput
            }
            var page = selected
            page.limit = min(pageSize, selected.limit ?? pageSize)
            var exported = 0
            var scanned = 0
            var stillSealed = 0
            var firstSealed: DeadLetter?
            while true {
                let listing = try await DeadLettersCommand.attempt { () throws(DeadLetterQueueError) in
                    try await queue.list(page, whole: true)
                }
                // Drained once, before the first page.
                queue.drainsFirst = false
                scanned = listing.scanned
                var data = Data()
                for letter in listing.letters {
                    data.append(contentsOf: letter.exportJSON(decrypted: decrypt))
                    data.append(UInt8(ascii: "\n"))
                    if decrypt && letter.payloadIsSealed {
                        stillSealed += 1
                        if firstSealed == nil { firstSealed = letter }
                    }
                }
                sink.write(data)
                exported += listing.letters.count
                guard listing.letters.count == page.limit, let last = listing.letters.last else { break }
                if let limit = selected.limit {
                    if exported >= limit { break }
                    page.limit = min(pageSize, limit - exported)
                }
                page.after = last.sequence
            }
            let described =
                selected.states == [.open]
                ? "of \(scanned) open dead letters" : "dead letters (\(state.label)); open: \(scanned)"
            if let destination, let partial {
                try? sink.close()
                do {
                    if FileManager.default.fileExists(atPath: destination.path) {
                        try FileManager.default.removeItem(at: destination)
                    }
                    try FileManager.default.moveItem(at: partial, to: destination)
                } catch {
                    DeadLettersCommand.printError("cannot write \(destination.path): \(error.localizedDescription)")
                    throw ExitCode(1)
                }
                print("exported \(exported) \(described) to \(destination.path)")
            } else {
                FileHandle.standardError.write(Data("exported \(exported) \(described)\n".utf8))
            }
            if let firstSealed {
                DeadLettersCommand.printError(
                    "\(stillSealed) payload\(stillSealed == 1 ? "" : "s") written sealed (first: \(firstSealed.id)): "
                        + firstSealed.sealedPayloadReason
                )
                throw ExitCode(1)
            }
        }
    }

    /// Prints each outcome and the summary; exits 1 when anything failed.
    static func finish(_ report: DeadLetterReport) throws {
        for outcome in report.outcomes { print(outcome.line) }
        for id in report.notFound { print("failed \(id): no such open dead letter") }
        print(report.summary)
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }

    /// Asks on the terminal; anything but y/yes declines.
    static func confirmPurge(_ letters: [DeadLetter], queue: String) -> Bool {
        var byReason: [String: Int] = [:]
        for letter in letters { byReason[letter.reason, default: 0] += 1 }
        let reasons = byReason.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        FileHandle.standardError.write(
            Data("purge \(letters.count) messages from \(queue) (\(reasons))? This cannot be undone. [y/N] ".utf8)
        )
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        return answer == "y" || answer == "yes"
    }
}
