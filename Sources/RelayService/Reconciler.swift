public import Foundation
public import Logging
public import RelayCore
public import RelayStore
public import ServiceLifecycle

/// Post-call reconciliation (the seeds' nightly job): interactions still linked by `PHONE:` are
/// looked up in the CRM again; those that match now get a customer-update PUT with `CRM:{id}` and
/// their link upgraded.
///
/// The PUT is added to the outbox in the transaction that upgrades the link, so neither happens
/// without the other; a running relay's dispatcher sends it (this process's at once, another's at its
/// next poll of the store).
public struct Reconciler: Sendable {
    public struct Report: Sendable, Hashable {
        public var examined = 0
        public var upgraded = 0
        public var stillUnmatched = 0
        /// No number on record for the caller (erased, expired, or never known): nothing to ask.
        public var noNumber = 0
        public var failed = 0
        /// Linked since the run began, or named since by an agent (a live recent override for the
        /// caller): the CRM's match must not replace either.
        public var leftAsIs = 0
        /// One line per failure: call id masked, and why.
        public var failures: [String] = []

        public init() {}

        public var summary: String {
            "examined \(examined), upgraded \(upgraded), still unmatched \(stillUnmatched), no number \(noNumber), failed \(failed), "
                + "left as is \(leftAsIs)"
        }
    }

    public struct Progress: Sendable, Hashable {
        public var done: Int
        public var total: Int
        public var upgraded: Int
    }

    let store: any InteractionStore
    let enricher: Enricher
    /// Takes the updates at once when reconciliation runs inside the relay.
    let dispatcher: OutboxDispatcher?
    /// The caller's E.164 number for an interaction, from wherever it is kept (sealed) on record.
    let numberFor: @Sendable (Interaction) async throws -> String?
    /// Seals the personal data of the updates it queues (the profile's name and email).
    let cipher: FieldCipher?
    let logger: Logger

    public init(
        store: any InteractionStore,
        enricher: Enricher,
        dispatcher: OutboxDispatcher?,
        numberFor: @escaping @Sendable (Interaction) async throws -> String?,
        cipher: FieldCipher?,
        logger: Logger
    ) {
        self.cipher = cipher
        self.store = store
        self.enricher = enricher
        self.dispatcher = dispatcher
        self.numberFor = numberFor
        self.logger = logger
    }

    /// - Parameters:
    ///   - since: interactions first seen at or after this time.
    ///   - dryRun: ask the CRM, change nothing: `upgraded` counts what would be upgraded.
    public func run(
        since: Date,
        limit: Int = 100_000,
        dryRun: Bool = false,
        progress: @Sendable (Progress) -> Void = { _ in }
    ) async throws -> Report {
        let candidates = try await store.phoneLinkedInteractions(since: since, limit: limit)
        var report = Report()
        for interaction in candidates {
            report.examined += 1
            await reconcile(interaction, dryRun: dryRun, into: &report)
            progress(Progress(done: report.examined, total: candidates.count, upgraded: report.upgraded))
        }
        logger.notice(
            "reconciliation finished",
            metadata: [
                LogKeys.reconcileExamined: "\(report.examined)", LogKeys.reconcileUpgraded: "\(report.upgraded)",
                LogKeys.reconcileUnmatched: "\(report.stillUnmatched)", LogKeys.reconcileNoNumber: "\(report.noNumber)",
                LogKeys.reconcileFailed: "\(report.failed)", LogKeys.reconcileLeftAsIs: "\(report.leftAsIs)",
                LogKeys.reconcileDryRun: "\(dryRun)",
            ]
        )
        return report
    }

    private func reconcile(_ interaction: Interaction, dryRun: Bool, into report: inout Report) async {
        let masked = Masking.mask(interaction.callId)
        let number: String?
        do {
            number = try await numberFor(interaction)
        } catch {
            report.failed += 1
            report.failures.append("\(masked): the number on record cannot be read: \(error)")
            return
        }
        guard let number, let customerId = interaction.customerId ?? interaction.externalId else {
            report.noNumber += 1
            return
        }
        // The candidates were read when the run began, and a run may take hours: since then the call
        // may have been linked (phase 2, an agent's switch), or an agent may have named this caller's
        // customer on another call (a recent override, which later calls take over any CRM match).
        do {
            if let current = try await store.link(callId: interaction.callId), !current.hasPrefix("PHONE:") {
                report.leftAsIs += 1
                return
            }
            if let phoneKey = interaction.phoneKey, try await store.override(phoneKey: phoneKey, now: Date()) != nil {
                report.leftAsIs += 1
                return
            }
        } catch {
            report.failed += 1
            report.failures.append("\(masked): the current link cannot be read: \(error)")
            return
        }
        let request = EnrichmentRequest(
            callId: interaction.callId,
            eventId: "reconcile:\(interaction.callId)",
            customerId: customerId,
            phone: number
        )
        switch await enricher.enrich(request, attempt: 1) {
        case .noUpdate, .suggestion:
            report.stillUnmatched += 1
        case .retry(_, let error), .failed(let error, _):
            report.failed += 1
            report.failures.append("\(masked): \(error)")
        case .refused(let reason, _), .paced(let reason, _):
            report.failed += 1
            report.failures.append("\(masked): \(reason)")
        case .update(let update):
            if dryRun {
                report.upgraded += 1
                return
            }
            let job = DeliveryJob(
                customerUpdate: CustomerUpdate(
                    customerId: update.customerId,
                    externalId: update.externalId,
                    callId: interaction.callId,
                    idempotencyKey: "reconcile:\(interaction.callId):\(update.externalId)",
                    profile: update.profile
                ),
                causeId: "reconcile:\(interaction.callId)"
            )
            do {
                let queued = try await store.enqueueOutbox(
                    callId: interaction.callId,
                    causeId: job.causeId,
                    [NewOutboxEntry(kind: OutboxKind.delivery, payload: (cipher.map(job.sealed) ?? job).encoded())],
                    relink: (update.externalId.description, .phoneLinkOnly),
                    now: Date()
                )
                if queued.isEmpty {
                    // Linked in the moments since the check above: that newer link stays, and no update
                    // is queued for this match.
                    report.leftAsIs += 1
                    logger.notice(
                        "reconciliation found the call linked since; left as is",
                        metadata: [
                            LogKeys.callIdMasked: "\(masked)", LogKeys.externalIdMasked: "\(update.externalId.masked)",
                        ]
                    )
                    return
                }
                dispatcher?.submit(queued)
                report.upgraded += 1
                logger.info(
                    "reconciled",
                    metadata: [
                        LogKeys.callIdMasked: "\(masked)", LogKeys.externalIdMasked: "\(update.externalId.masked)",
                    ]
                )
            } catch {
                report.failed += 1
                report.failures.append("\(masked): could not queue the update: \(error)")
            }
        }
    }
}

/// Reconciliation on a schedule inside `run`: every `interval`, over the last `window`.
public struct ReconciliationSchedule: Service {
    let reconciler: Reconciler
    let interval: Duration
    let window: Duration
    let lease: ChoreLease?
    let logger: Logger

    public init(reconciler: Reconciler, interval: Duration, window: Duration, lease: ChoreLease? = nil, logger: Logger)
    {
        self.lease = lease
        self.reconciler = reconciler
        self.interval = interval
        self.window = window
        self.logger = logger
    }

    public func run() async {
        // Switched off: it still runs as a part of the relay, ending with it.
        guard interval > .zero else {
            try? await gracefulShutdown()
            return
        }
        await repeatUntilShutdown(
            every: interval,
            startNow: false,
            lease: lease,
            logger: logger,
            failure: "scheduled reconciliation failed; the next run tries again"
        ) {
            _ = try await reconciler.run(since: Date().addingTimeInterval(-window.totalSeconds))
        }
    }
}
