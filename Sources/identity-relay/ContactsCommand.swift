import ArgumentParser
import Foundation
import Glibc
import Logging
import RelayCore
import RelayService

/// `identity-relay contacts`: the single customer view from the terminal. A thin layer over
/// `ContactDirectory` (RelayService/Contacts), which holds the rules and the guarantees, so the admin
/// API can offer the same operations.
struct ContactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts",
        abstract: "Show, search, create, edit, import, promote, merge, unmerge and forget contacts.",
        discussion: """
            Works on the store the configuration names (store.path), next to a running relay; needs the same \
            keys as `run` (RELAY_PRIVACY_ENCRYPTION_KEY, RELAY_IDENTITY_PHONE_HASH_KEY, or their _FILE forms). \
            A CONTACT is a contact id (ct-…), a phone number (+…), an email, or an external id (CRM:…, ERP:…).
            Exit status: 0 success, 1 when the operation was refused (nothing changed) or the contact was not \
            found, 64 for usage errors, 78 for configuration errors.
            """,
        subcommands: [
            Show.self, Search.self, Create.self, Edit.self, Import.self, Promote.self, Merge.self, Unmerge.self,
            Forget.self,
        ]
    )

    static func directory(_ options: GlobalOptions) async throws -> ContactDirectory {
        let (configuration, _) = try options.load()
        bootstrapLogging(level: "error")
        do {
            return try await ContactDirectory.open(
                configuration: configuration,
                logger: Logger(label: "identity-relay.store")
            )
        } catch let error as ConfigurationError {
            throw reportConfigurationFailure(ConfigurationFailure(error: error))
        }
    }

    /// Runs an operation; a refusal (or a contact not found) is reported on standard error with exit 1.
    static func attempt<T>(_ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let error as ContactError {
            printError(error.message)
            throw ExitCode(1)
        }
    }

    static func reference(_ text: String) throws -> ContactReference {
        guard let reference = ContactReference(parsing: text) else {
            throw ValidationError(
                "'\(Masking.mask(text))' is not a contact id, phone number, email, messaging id (platform:id) or external id"
            )
        }
        return reference
    }

    static func printError(_ text: String) { printCommandError(text) }

    static func printJSON(_ value: some Encodable) throws { try printJSONResult(value) }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a contact (resolved through merges).")

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The contact: id, phone number, email, messaging id (whatsapp:…) or external id.") var contact:
            String
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() async throws {
            let reference = try ContactsCommand.reference(contact)
            let directory = try await ContactsCommand.directory(options)
            let view = try await ContactsCommand.attempt { try await directory.show(reference) }
            if json {
                try ContactsCommand.printJSON(view)
            } else {
                for line in ContactText.detail(view) { print(line) }
            }
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find contacts by phone, email, external id or name (a name finds every contact of that name)."
        )

        @OptionGroup var options: GlobalOptions
        @Option(help: "A phone number.") var phone: String?
        @Option(help: "An email address.") var email: String?
        @Option(name: .customLong("external-id"), help: "An external id (CRM:…, ERP:…).") var externalId: String?
        @Option(help: "A full name (case and spacing ignored).") var name: String?
        @Flag(help: "Print JSON for scripts.") var json = false

        func validate() throws {
            guard [phone, email, externalId, name].compactMap({ $0 }).count == 1 else {
                throw ValidationError("give exactly one of --phone, --email, --external-id, --name")
            }
            _ = try identifier()
        }

        func identifier() throws -> ContactIdentifier? {
            for (kind, value) in [(ContactIdentifier.Kind.phone, phone), (.email, email), (.external, externalId)] {
                guard let value else { continue }
                guard let identifier = ContactIdentifier(kind: kind, raw: value) else {
                    throw ValidationError(
                        "--\(kind.name == "external" ? "external-id" : kind.name) is not a valid \(kind.name)"
                    )
                }
                return identifier
            }
            return nil
        }

        func run() async throws {
            let directory = try await ContactsCommand.directory(options)
            let identifier = try identifier()
            let found = try await ContactsCommand.attempt {
                try await directory.search(identifier: identifier, name: name)
            }
            if json {
                try ContactsCommand.printJSON(found)
                return
            }
            for line in ContactText.table(found) { print(line) }
            print("\(found.count) contact\(found.count == 1 ? "" : "s")")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a curated contact.")

        @OptionGroup var options: GlobalOptions
        @Option(help: "Full name.") var name: String?
        @Option(help: "Phone number (repeatable).") var phone: [String] = []
        @Option(help: "Email address (repeatable).") var email: [String] = []
        @Option(name: .customLong("external-id"), help: "CRM:… or ERP:… (repeatable).") var externalId: [String] = []
        @Option(name: .customLong("attribute"), help: "key=value (repeatable).") var attributes: [String] = []
        @Option(help: "A note.") var note: String?
        @Flag(help: "Print JSON for scripts.") var json = false

        func validate() throws {
            for attribute in attributes where !attribute.contains("=") {
                throw ValidationError("--attribute takes key=value")
            }
            if name == nil && phone.isEmpty && email.isEmpty && externalId.isEmpty {
                throw ValidationError("give at least a --name, --phone, --email or --external-id")
            }
        }

        func run() async throws {
            let directory = try await ContactsCommand.directory(options)
            var pairs: [String: String] = [:]
            for attribute in attributes {
                let parts = attribute.split(separator: "=", maxSplits: 1)
                pairs[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            let draft = ContactDraft(
                name: name,
                phones: phone,
                emails: email,
                externalIds: externalId,
                attributes: pairs,
                note: note
            )
            let view = try await ContactsCommand.attempt { try await directory.create(draft) }
            if json { try ContactsCommand.printJSON(view) } else { print("created \(view.id)") }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import curated contacts from CSV (header row) or JSON lines.",
            discussion: """
                CSV columns: name, phone, email, external_id, note (several values in a cell separated by ;); \
                any other column becomes an attribute. JSON lines: {"name", "phone", "email", "externalId", \
                "attributes", "note"}. A row whose identifiers belong to one existing contact updates it; a row \
                with an unparseable phone or email, or identifiers of different contacts, is rejected with its \
                line number and reason, and the rest import. Exit status 1 when any row was rejected.
                """
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The file; - for standard input.") var file: String
        @Option(help: "csv or jsonl; default: from the file's extension (csv unless .jsonl/.ndjson/.json).")
        var format: String?
        @Flag(help: "Print the summary as JSON.") var json = false

        func validate() throws {
            if let format, ContactImportFormat(rawValue: format) == nil {
                throw ValidationError("--format is csv or jsonl")
            }
        }

        func run() async throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: file) else {
                    ContactsCommand.printError("cannot read \(file)")
                    throw ExitCode(66)
                }
                data = contents
            }
            let chosen =
                format.flatMap(ContactImportFormat.init(rawValue:))
                ?? ([".jsonl", ".ndjson", ".json"].contains { file.lowercased().hasSuffix($0) } ? .jsonl : .csv)
            let rows = ContactImportParser.parse(String(decoding: data, as: UTF8.self), format: chosen)
            let directory = try await ContactsCommand.directory(options)
            let terminal = isatty(STDERR_FILENO) != 0
            let report = try await directory.importContacts(rows) { done, total in
                // Progress on standard error, so standard output stays the summary.
                let text = terminal ? "\rimported \(done)/\(total) rows" : "imported \(done)/\(total) rows\n"
                FileHandle.standardError.write(Data(text.utf8))
            }
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            if json {
                try ContactsCommand.printJSON(report)
            } else {
                for rejection in report.rejected { print("line \(rejection.line): rejected: \(rejection.reason)") }
                print(
                    "\(report.rows) rows: \(report.created) created, \(report.updated) updated, \(report.rejected.count) rejected"
                )
            }
            if !report.rejected.isEmpty { throw ExitCode(1) }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a temporary (ephemeral or identified) contact curated: it no longer expires."
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The contact.") var contact: String

        func run() async throws {
            let reference = try ContactsCommand.reference(contact)
            let directory = try await ContactsCommand.directory(options)
            let view = try await ContactsCommand.attempt { try await directory.promote(reference) }
            print("\(view.id) is \(view.type.rawValue)")
        }
    }

    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fold a contact into another, which becomes canonical; the first stays as an alias.",
            discussion: "Two curated contacts are never merged. Prints the merge id that `unmerge` takes."
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The contact to fold in (becomes an alias).") var contact: String
        @Option(help: "The contact that stays (canonical).") var into: String
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() async throws {
            let absorbed = try ContactsCommand.reference(contact)
            let target = try ContactsCommand.reference(into)
            let directory = try await ContactsCommand.directory(options)
            let (mergeId, view) = try await ContactsCommand.attempt {
                try await directory.merge(absorbed, into: target)
            }
            if json {
                struct Output: Encodable {
                    var mergeId: String
                    var contact: ContactView
                }
                try ContactsCommand.printJSON(Output(mergeId: mergeId, contact: view))
            } else {
                print(
                    "merged into \(view.id) (merge \(mergeId); undo with: identity-relay contacts unmerge \(mergeId))"
                )
            }
        }
    }

    struct Unmerge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Undo a merge: both contacts as they were before it, each with its interactions."
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The merge id (mg-…), as `merge` printed it or `show` lists it.") var mergeId: String

        func run() async throws {
            let directory = try await ContactsCommand.directory(options)
            let views = try await ContactsCommand.attempt { try await directory.unmerge(mergeId) }
            print("unmerged \(mergeId): \(views.map(\.id).joined(separator: " and ")) stand apart again")
        }
    }
}

extension ContactsCommand {
    struct Edit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Edit a contact as an agent would: set the name, add identifiers, attributes or a note.",
            discussion: "An edit by a person curates the contact: a temporary contact stops expiring."
        )

        @OptionGroup var options: GlobalOptions
        @Argument(help: "The contact.") var contact: String
        @Option(help: "Full name.") var name: String?
        @Option(help: "Phone number to add (repeatable).") var phone: [String] = []
        @Option(help: "Email address to add (repeatable).") var email: [String] = []
        @Option(name: .customLong("external-id"), help: "CRM:… or ERP:… to add (repeatable).") var externalId:
            [String] = []
        @Option(name: .customLong("attribute"), help: "key=value (repeatable).") var attributes: [String] = []
        @Option(help: "A note.") var note: String?
        @Option(help: "Who edits (an agent id); recorded with the note.") var author: String?
        @Flag(help: "Print JSON for scripts.") var json = false

        func validate() throws {
            for attribute in attributes where !attribute.contains("=") {
                throw ValidationError("--attribute takes key=value")
            }
        }

        func run() async throws {
            let reference = try ContactsCommand.reference(contact)
            let directory = try await ContactsCommand.directory(options)
            var pairs: [String: String] = [:]
            for attribute in attributes {
                let parts = attribute.split(separator: "=", maxSplits: 1)
                pairs[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            let draft = ContactDraft(
                name: name,
                phones: phone,
                emails: email,
                externalIds: externalId,
                attributes: pairs,
                note: note
            )
            let view = try await ContactsCommand.attempt { try await directory.edit(reference, draft, author: author) }
            if json { try ContactsCommand.printJSON(view) } else { print("\(view.id) is \(view.type.rawValue)") }
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase everything held about a person and report what was removed.",
            discussion: """
                Removes the contact with this identifier, its aliases, identifiers and merges, every \
                interaction linked to it (with notes, journey links and outbox entries), and the recent \
                overrides of its numbers. Cannot be undone.
                """
        )

        @OptionGroup var options: GlobalOptions
        @Option(help: "A phone number.") var phone: String?
        @Option(help: "An email address.") var email: String?
        @Option(name: .customLong("external-id"), help: "An external id (CRM:…, ERP:…).") var externalId: String?
        @Flag(help: "Print the report as JSON.") var json = false

        func validate() throws {
            guard [phone, email, externalId].compactMap({ $0 }).count == 1 else {
                throw ValidationError("give exactly one of --phone, --email, --external-id")
            }
            _ = try identifier()
        }

        func identifier() throws -> ContactIdentifier {
            for (kind, value, flag) in [
                (ContactIdentifier.Kind.phone, phone, "--phone"), (.email, email, "--email"),
                (.external, externalId, "--external-id"),
            ] {
                guard let value else { continue }
                guard let identifier = ContactIdentifier(kind: kind, raw: value) else {
                    throw ValidationError("\(flag) is not a valid \(kind.name)")
                }
                return identifier
            }
            throw ValidationError("give exactly one of --phone, --email, --external-id")
        }

        func run() async throws {
            let identifier = try identifier()
            let directory = try await ContactsCommand.directory(options)
            let erased = try await ContactsCommand.attempt { try await directory.forget(identifier) }
            if json {
                try ContactsCommand.printJSON(erased)
                return
            }
            print(
                "forgot \(identifier): \(erased.contacts) contacts, \(erased.identifiers) identifiers, \(erased.merges) merges, "
                    + "\(erased.interactions) interactions, \(erased.interactionNotes) notes, \(erased.outboxEntries) outbox entries, "
                    + "\(erased.overrides) overrides"
            )
        }
    }
}

struct JourneyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journey",
        abstract: "A contact's interactions across channels (and its aliases'), newest first."
    )

    @OptionGroup var options: GlobalOptions
    @Argument(help: "The contact: id, phone number, email, messaging id (whatsapp:…) or external id.") var contact:
        String
    @Option(help: "At most this many interactions.") var limit = 1_000
    @Flag(help: "Print JSON for scripts.") var json = false

    func validate() throws {
        if limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let reference = try ContactsCommand.reference(contact)
        let directory = try await ContactsCommand.directory(options)
        let journey = try await ContactsCommand.attempt { try await directory.journey(reference, limit: limit) }
        if json {
            try ContactsCommand.printJSON(journey)
        } else {
            for line in ContactText.timeline(journey) { print(line) }
        }
    }
}
