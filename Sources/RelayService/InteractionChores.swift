public import Foundation
public import Logging
public import RelayCore
public import RelayStore
public import ServiceLifecycle

/// Fires the interactions' durable timers (orphans, wrap-up grace) when they fall due, and prunes old
/// bookkeeping. Timers live in the store, so they fire after a restart too.
public final class InteractionChores: Service {
    let store: any InteractionStore
    let correlator: CallCorrelator
    /// Takes the effects a firing committed.
    let dispatcher: OutboxDispatcher?
    let scanInterval: Duration
    let processedEventRetention: Duration
    let logger: Logger
    /// Seals the personal data of the delivery jobs a timer commits.
    let cipher: FieldCipher?

    public init(
        store: any InteractionStore,
        correlator: CallCorrelator,
        dispatcher: OutboxDispatcher?,
        scanInterval: Duration,
        processedEventRetention: Duration,
        cipher: FieldCipher? = nil,
        logger: Logger
    ) {
        self.cipher = cipher
        self.store = store
        self.correlator = correlator
        self.dispatcher = dispatcher
        self.scanInterval = scanInterval
        self.processedEventRetention = processedEventRetention
        self.logger = logger
    }

    public func run() async throws {
        var lastPrune = ContinuousClock.now - .seconds(3600)
        // Each step catches its own failure; the round itself never throws.
        await repeatUntilShutdown(every: scanInterval, startNow: true, logger: logger, failure: "timer scan failed") {
            do {
                try await fireDueTimers(now: Date())
            } catch {
                logger.error("timer scan failed; retrying at the next scan", metadata: [LogKeys.error: "\(error)"])
            }
            if ContinuousClock.now - lastPrune >= .seconds(3600) {
                do {
                    try await prune(now: Date())
                    lastPrune = .now
                } catch {
                    logger.error("pruning failed; retrying at the next scan", metadata: [LogKeys.error: "\(error)"])
                }
            }
        }
    }

    /// Fires every timer due at `now`; returns how many interactions it looked at. One interaction
    /// that fails does not hold up the others: it is logged and tried again at the next scan.
    @discardableResult
    public func fireDueTimers(now: Date, batch: Int = 256) async throws -> Int {
        let due = try await store.interactionsWithDueTimers(now: now, limit: batch)
        let correlator = self.correlator
        let cipher = self.cipher
        for interaction in due {
            guard let dueAt = interaction.nextDueAt else { continue }
            // One id per firing, so a firing is applied once even if two scans race.
            let causeId = "timer:\(interaction.callId):\(Int64(dueAt.timeIntervalSince1970 * 1000))"
            // The store picked the row by its due time in seconds since 1970; the correlator compares
            // dates, which count from 2001 and round differently. A `now` a hair before the due time
            // could pass the one and fail the other, and the firing would be recorded with nothing fired.
            let firedAt = max(now, dueAt)
            do {
                let result = try await store.apply(callId: interaction.callId, eventId: causeId, now: now) { state in
                    let transition = correlator.fireTimers(state ?? interaction, now: firedAt)
                    return (
                        transition.interaction,
                        transition.effects.map { $0.outboxEntry(causeId: causeId, sealingWith: cipher) }
                    )
                }
                switch result {
                case .committed(let entries), .alreadyProcessed(let entries):
                    dispatcher?.submit(entries)
                }
            } catch {
                logger.error(
                    "timer firing not finished; the next scan finishes it",
                    metadata: [LogKeys.callIdMasked: "\(Masking.mask(interaction.callId))", LogKeys.error: "\(error)"]
                )
            }
        }
        return due.count
    }

    private func prune(now: Date) async throws {
        let cutoff = now.addingTimeInterval(-processedEventRetention.totalSeconds)
        let events = try await store.pruneProcessedEvents(before: cutoff)
        let entries = try await store.pruneFinishedOutbox(before: cutoff)
        let overrides = try await store.pruneExpiredOverrides(now: now)
        if events + entries + overrides > 0 {
            logger.info(
                "pruned",
                metadata: [
                    LogKeys.prunedProcessedEvents: "\(events)", LogKeys.prunedOutboxEntries: "\(entries)",
                    LogKeys.prunedOverrides: "\(overrides)",
                ]
            )
        }
    }
}
