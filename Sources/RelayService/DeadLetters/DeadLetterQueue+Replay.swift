import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayStore

extension DeadLetterQueue {
    /// Republishes each selected open dead letter's original payload to its origin, with the replay
    /// count incremented (a failed delivery or lookup goes back to the outbox instead), and marks it
    /// replayed once that is confirmed. One that cannot be replayed (no origin, missing exchange,
    /// unroutable, no confirm, replayed by someone else meanwhile) stays open and is reported as failed.
    ///
    /// - Parameters:
    ///   - dryRun: report what would be replayed; change nothing.
    ///   - rate: at most this many replays per second; nil for no limit.
    ///   - resetAttempts: a delivery or lookup replayed into the outbox starts a new retry budget
    ///     (attempts and age); without it the job goes on counting, so an exhausted one gets one attempt.
    public func replay(
        _ filter: DeadLetterFilter,
        dryRun: Bool = false,
        rate: Double? = nil,
        resetAttempts: Bool = false,
        progress: @escaping @Sendable (DeadLetterProgress) -> Void = { _ in }
    ) async throws(DeadLetterQueueError) -> DeadLetterReport {
        let drained = try await drain()
        let store = try requireStore()
        if !drainsFirst { await reopenStaleClaims(store) }
        let (rows, total) = try await stored { () async throws -> ([StoredDeadLetter], Int) in
            (
                try await store.deadLetters(Self.query(filter, states: [.open])),
                try await store.deadLetterCount(DeadLetterQuery())
            )
        }
        var outcomes: [DeadLetterOutcome] = []
        var publisher: AMQPClient?
        var pacer = ReplayPacer(rate: rate)
        var tally = OutcomeTally()
        // Whole records a page at a time: one read per page, never an incident's payloads at once.
        var page: [String: StoredDeadLetter] = [:]
        for (index, row) in rows.enumerated() {
            if index % Self.wholePage == 0 {
                let ids = rows[index..<min(index + Self.wholePage, rows.count)].map(\.id)
                page = Dictionary(
                    ((try? await store.deadLetters(ids: ids)) ?? []).map { ($0.id, $0) },
                    uniquingKeysWith: { first, _ in first }
                )
            }
            let whole = page.removeValue(forKey: row.id)
            // The whole record (payload, message) only while this one is handled; the report keeps the row.
            let listed = DeadLetter(stored: row, names: names, cipher: cipher)
            let outcome: DeadLetterOutcome.Result = await {
                guard let whole else { return .failed("its record could not be read from the store") }
                let letter = DeadLetter(stored: whole, names: names, cipher: cipher)
                if let reason = letter.notReplayableReason { return .failed(reason) }
                if dryRun { return .wouldReplay(to: letter.origin!) }
                // Paced and connected before the claim: a claim is held only while the replay runs.
                if let wait = pacer.waitBeforeNext(now: .now) { try? await Task.sleep(for: wait) }
                let toOutbox = letter.origin?.isOutbox == true
                if !toOutbox, publisher == nil {
                    do { publisher = try await connect() } catch { return .failed("\(error)") }
                }
                let claimed =
                    (try? await store.transitionDeadLetters(ids: [row.id], from: [.open], to: .replaying, now: Date()))
                    ?? []
                guard !claimed.isEmpty else { return .failed("replayed, purged or resolved by someone else meanwhile") }
                let result =
                    toOutbox
                    ? await requeueInOutbox(letter, resetAttempts: resetAttempts)
                    : await republish(letter, using: publisher!)
                let settled: StoredDeadLetter.State
                if case .replayed = result { settled = .replayed } else { settled = .open }
                // Left `replaying` only if the store is gone too: the next operation reopens it (`drain`).
                _ = try? await store.transitionDeadLetters(ids: [row.id], from: [.replaying], to: settled, now: Date())
                return result
            }()
            let done = DeadLetterOutcome(letter: listed, result: outcome, copies: row.copies)
            outcomes.append(done)
            tally.add(done)
            progress(
                DeadLetterProgress(
                    operation: .replay,
                    done: index + 1,
                    total: rows.count,
                    succeeded: tally.succeeded,
                    failed: tally.failed,
                    dryRun: dryRun
                )
            )
        }
        if let publisher { await publisher.shutdown() }
        return DeadLetterReport(
            operation: .replay,
            dryRun: dryRun,
            scanned: total,
            truncated: drained.remaining > 0,
            outcomes: outcomes,
            notFound: Self.notFound(filter, in: rows),
            cancelled: false
        )
    }

    // MARK: Replaying one

    /// A failed delivery or lookup goes back to the store's outbox as a new entry; the running relay's
    /// dispatcher takes it at its next poll, and the record is marked replayed only once the entry is
    /// committed. It goes on counting its attempts (an exhausted job gets one more: is it fixed?) unless
    /// `resetAttempts` gives it a new budget. Either way its record keeps its first failure.
    private func requeueInOutbox(_ letter: DeadLetter, resetAttempts: Bool) async -> DeadLetterOutcome.Result {
        guard let outbox = store else {
            return .failed(
                "a failed delivery is replayed into the relay's store: run this where store.path is the relay's"
            )
        }
        var job: DeliveryJob
        do {
            job = try DeliveryJob.decode(letter.payload)
        } catch {
            return .failed("its payload is not a delivery job: \(error)")
        }
        if resetAttempts {
            // The age a lookup gives up by is measured from the job's first failure: a new budget
            // restarts that clock too. The store's record keeps its own first failure.
            job.attempts = 0
            job.firstFailureAt = nil
        }
        job.lastError = nil
        let kind = job.kind == .enrich || job.kind == .contextChange ? "lookup" : "delivery"
        do {
            _ = try await outbox.enqueueOutbox(
                callId: job.callId,
                causeId: "replay:\(letter.id):\(letter.replayCount + 1)",
                [NewOutboxEntry(kind: kind, payload: job.encoded())],
                relink: nil,
                now: Date()
            )
        } catch {
            return .failed("the store did not take it: \(error)")
        }
        logger.info(
            "dead letter replayed into the outbox",
            metadata: [
                LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)",
                LogKeys.deadLetterReplayCount: "\(letter.replayCount + 1)",
                LogKeys.deadLetterReplayResetAttempts: "\(resetAttempts)",
            ]
        )
        return .replayed(to: .outbox)
    }

    private func republish(_ letter: DeadLetter, using publisher: AMQPClient) async -> DeadLetterOutcome.Result {
        guard let origin = letter.origin, let message = letter.replayMessage() else {
            return .failed(letter.notReplayableReason ?? "nothing to replay")
        }
        let result = await Self.publish(message, on: publisher, timeout: confirmTimeout)
        switch result {
        case .success:
            logger.info(
                "dead letter replayed",
                metadata: [
                    LogKeys.deadLetterId: "\(letter.id)", LogKeys.deadLetterReason: "\(letter.reason)",
                    LogKeys.amqpExchange: "\(origin.exchange)",
                    LogKeys.deadLetterReplayCount: "\(letter.replayCount + 1)",
                ]
            )
            return .replayed(to: origin)
        case .failure(let error):
            logger.warning(
                "dead letter replay failed; kept",
                metadata: [LogKeys.deadLetterId: "\(letter.id)", LogKeys.error: "\(error)"]
            )
            return .failed(Self.explain(error, origin: origin))
        }
    }

    /// The operator's reading of a failed republish.
    static func explain(_ error: AMQPError, origin: DeadLetterRecord.Origin) -> String {
        let exchange = origin.exchange.isEmpty ? "the default exchange" : "exchange '\(origin.exchange)'"
        if error.code == .channelClosed, error.message.contains("404") {
            return "its origin \(exchange) no longer exists (\(error.message))"
        }
        if error.code == .unroutable {
            return "its origin \(exchange) routes '\(origin.routingKey)' to no queue any more"
        }
        if error.code == .publishNacked {
            return "the broker refused the republish to \(exchange) (queue full or unavailable)"
        }
        return "republish to \(exchange) failed: \(error)"
    }

    /// Publishes and waits for the confirm, at most `timeout`. A publish still unconfirmed then may yet
    /// arrive: its record is kept, so the worst case is one more replay of the same payload.
    static func publish(
        _ message: OutboundMessage,
        on client: AMQPClient,
        timeout: Duration
    ) async
        -> Result<Void, AMQPError>
    {
        await value(
            before: .now + timeout,
            orElse: .failure(AMQPError(.shutdown, "no confirm from the broker within \(timeout)"))
        ) {
            do throws(AMQPError) {
                try await client.publish(message)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
    }
}
