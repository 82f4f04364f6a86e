import Foundation
import Logging
import RelayService
import RelaySimulator

/// The outbound endpoints for `run` and `demo`: the configured platform and CRM, or the built-in
/// simulator for whichever is not configured.
struct ResolvedEndpoints {
    var endpoints: RelayApp.Endpoints
    var simulator: SimulatedPlatform?
    /// Lines worth telling the user about the choices made.
    var notes: [String]

    static func resolve(
        _ configuration: inout RelayConfiguration,
        simulatorPort: Int,
        logger: Logger
    ) async throws -> ResolvedEndpoints {
        var notes: [String] = []
        let needsSimulator = configuration.platform.baseURL.isEmpty || configuration.crm.postCallWebhookURL.isEmpty
        let simulator =
            needsSimulator
            ? try await SimulatedPlatform.start(port: simulatorPort, logger: logger) : nil
        var platformURL = configuration.platform.baseURL
        var webhookURL = configuration.crm.postCallWebhookURL
        var crmLookup = configuration.crm.lookup.urlTemplate
        var erpLookup = configuration.erp.lookup.urlTemplate
        var crmContact = configuration.crm.contactLookupURLTemplate
        var crmEmail = configuration.crm.emailLookupURLTemplate
        var crmMessaging = configuration.crm.messagingLookupURLTemplate
        var crmName = configuration.crm.nameLookupURLTemplate
        if let simulator {
            if platformURL.isEmpty {
                platformURL = simulator.baseURL
                notes.append(
                    "no platform.baseUrl configured: customer updates go to the simulator at \(simulator.baseURL)"
                )
            }
            if webhookURL.isEmpty {
                webhookURL = simulator.postCallWebhookURL
                notes.append("no crm.postCallWebhookUrl configured: post-call webhooks go to \(webhookURL)")
                // The simulated CRM answers lookups too, so phase 2 runs end to end on one machine.
                if crmLookup.isEmpty { crmLookup = simulator.crmLookupURLTemplate }
                if erpLookup.isEmpty { erpLookup = simulator.erpLookupURLTemplate }
                if crmContact.isEmpty { crmContact = simulator.crmContactURLTemplate }
                if crmEmail.isEmpty { crmEmail = simulator.crmEmailLookupURLTemplate }
                if crmMessaging.isEmpty { crmMessaging = simulator.crmMessagingLookupURLTemplate }
                if crmName.isEmpty { crmName = simulator.crmNameLookupURLTemplate }
                if configuration.webhook.signingSecret == nil {
                    // The simulator checks nothing; a throwaway secret still exercises the signing path.
                    let key = (0..<32).map { _ in UInt8.random(in: 0...255) }
                    configuration.webhook.signingSecret = "whsec_" + Data(key).base64EncodedString()
                    notes.append(
                        "no webhook.signingSecret set: webhooks to the simulator are signed with a one-off secret"
                    )
                }
            }
        }
        return ResolvedEndpoints(
            endpoints: .init(
                platformBaseURL: platformURL,
                postCallWebhookURL: webhookURL,
                crmLookupURLTemplate: crmLookup,
                crmContactURLTemplate: crmContact,
                erpLookupURLTemplate: erpLookup,
                crmEmailLookupURLTemplate: crmEmail,
                crmMessagingLookupURLTemplate: crmMessaging,
                crmNameLookupURLTemplate: crmName
            ),
            simulator: simulator,
            notes: notes
        )
    }
}
