import ArgumentParser

@main
struct IdentityRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identity-relay",
        abstract: "Links contact-center interactions to customers in CRM and ERP.",
        subcommands: [
            RunCommand.self, ConfigCommand.self, DemoCommand.self, DeadLettersCommand.self, DeliveriesCommand.self,
            ContactsCommand.self,
            JourneyCommand.self, ReconcileCommand.self,
        ],
        defaultSubcommand: nil
    )
}
