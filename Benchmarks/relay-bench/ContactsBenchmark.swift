import Foundation
import RelayCore
import RelayService
import RelayStore

/// The single customer view's costs, each against a baseline from the same run and the same disk:
/// - import: curated CSV rows per second (parse, validate, hash, seal, owner lookups, insert) against
///   the raw insert rate of the same number of pre-sealed contact rows in the same batches;
/// - journey: p50/p99 of the journey query for a contact with 1,000 interactions (among others'),
///   against a single-interaction read by primary key;
/// - the hot path: start events committed per second with their contact link against without it.
struct ContactsBenchmark {
    var rows: Int
    var interactions = 1_000
    var queries = 500

    struct Figures {
        var rawInsertsPerSecond: Double
        var importRowsPerSecond: Double
        var journeyP50: Duration
        var journeyP99: Duration
        var pointReadP50: Duration
        var pointReadP99: Duration
        var appliesPerSecondWithout: Double
        var appliesPerSecondWith: Double
        /// Parsing, hashing and sealing one start event's sighting, outside the transaction.
        var capturePerEvent: Duration
    }

    let hasher = IdentifierHasher(key: Array("benchmark-key-0123456789abcdef0123456789".utf8))!
    let cipher = FieldCipher(base64Key: "YmVuY2htYXJrLWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM=")!

    func run() async throws -> Figures {
        let directoryURL = FileManager.default.temporaryDirectory.appendingPathComponent(
            "relay-bench-contacts-\(UUID().uuidString)"
        )
        defer { try? FileManager.default.removeItem(at: directoryURL) }
        let store = try SQLiteInteractionStore(path: directoryURL.appendingPathComponent("relay.sqlite").path)
        let directory = ContactDirectory(
            store: store,
            cipher: cipher,
            hasher: hasher,
            timeToLive: .seconds(60 * 86_400)
        )

        // Baseline: the same number of contact rows, sealed beforehand, in batches of the import's size.
        let now = Date()
        let sealed = (0..<rows).map { index in
            StoredContact(
                id: "raw-\(index)",
                type: .curated,
                mergedInto: nil,
                aliases: [],
                name: cipher.seal("Raw \(index)"),
                nameKey: hasher.keyedHash(kind: "name", "raw \(index)"),
                attributes: nil,
                notes: nil,
                identifiers: cipher.seal(#"[{"kind":"email","value":"r\#(index)@example.com"}]"#),
                identifierKeys: [hasher.keyedHash(kind: "raw", "\(index)")],
                createdAt: now,
                updatedAt: now,
                lastInteractionAt: nil,
                expiresAt: nil,
                expiredAt: nil
            )
        }
        let rawStarted = ContinuousClock.now
        for start in stride(from: 0, to: rows, by: 500) {
            let batch = Array(sealed[start..<min(start + 500, rows)])
            try await store.writeContacts { contactRows in for contact in batch { try contactRows.save(contact) } }
        }
        let rawElapsed = ContinuousClock.now - rawStarted

        var lines = ["name,phone,email,external_id,segment"]
        for index in 0..<rows {
            lines.append(
                "Customer \(index),+1555\(String(format: "%07d", index)),c\(index)@example.com,CRM:\(index),s\(index % 7)"
            )
        }
        let csv = lines.joined(separator: "\n")
        let importStarted = ContinuousClock.now
        let report = try await directory.importContacts(ContactImportParser.parse(csv, format: .csv))
        let importElapsed = ContinuousClock.now - importStarted
        guard report.created == rows else { throw BenchmarkFailure("import created \(report.created) of \(rows)") }

        // The hot path: start events committed with and without their contact link, 64 in flight.
        let linking = PhaseOneLinking(hasher: hasher.phone)
        let correlator = CallCorrelator(linking: linking)
        func applyAll(_ label: String, count: Int, withContacts: Bool) async throws -> Double {
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for index in 0..<count {
                    if inFlight >= 64 {
                        try await group.next()
                        inFlight -= 1
                    }
                    let event = PlatformEvent(
                        eventId: "\(label)-\(index)",
                        callId: "\(label)-call-\(index)",
                        occurredAt: Date(),
                        payload: .callStarted(
                            CallStarted(
                                fromNumber: String(format: "+1556%07d", index),
                                toNumber: "+15550190000",
                                direction: .inbound,
                                queueId: "q"
                            )
                        )
                    )
                    group.addTask {
                        let at = Date()
                        let capture = withContacts ? directory.capture(for: event) : nil
                        _ = try await store.apply(
                            callId: event.callId,
                            eventId: event.eventId,
                            now: at,
                            contact: capture
                        ) { state in
                            let transition = correlator.handle(event, state: state, now: at)
                            return (transition.interaction, [])
                        }
                    }
                    inFlight += 1
                }
                try await group.waitForAll()
            }
            return Double(count) / (ContinuousClock.now - started).totalSeconds
        }
        let captureStarted = ContinuousClock.now
        for index in 0..<5_000 {
            _ = directory.capture(
                for: PlatformEvent(
                    eventId: "x\(index)",
                    callId: "x\(index)",
                    occurredAt: Date(),
                    payload: .callStarted(
                        CallStarted(
                            fromNumber: String(format: "+1557%07d", index),
                            toNumber: "+15550190000",
                            direction: .inbound
                        )
                    )
                )
            )
        }
        let captureCost = (ContinuousClock.now - captureStarted) / 5_000
        let without = try await applyAll("plain", count: 5_000, withContacts: false)
        let with = try await applyAll("linked", count: 5_000, withContacts: true)

        // One contact with `interactions` calls, among the others' traffic above.
        let number = "+15550000042"
        for index in 0..<interactions {
            let event = PlatformEvent(
                eventId: "j-\(index)",
                callId: "journey-call-\(index)",
                occurredAt: Date(timeIntervalSince1970: 1_795_514_400 + Double(index) * 3600),
                payload: .callStarted(
                    CallStarted(fromNumber: number, toNumber: "+15550190000", direction: .inbound, queueId: "q")
                )
            )
            let at = Date()
            _ = try await store.apply(
                callId: event.callId,
                eventId: event.eventId,
                now: at,
                contact: directory.capture(for: event)
            ) {
                state in (correlator.handle(event, state: state, now: at).interaction, [])
            }
        }
        let reference = ContactReference.identifier(ContactIdentifier(kind: .phone, raw: number)!)
        var journeyTimes: [Duration] = []
        var pointTimes: [Duration] = []
        for query in 0..<queries {
            let started = ContinuousClock.now
            let journey = try await directory.journey(reference)
            journeyTimes.append(ContinuousClock.now - started)
            guard journey.interactions.count == interactions else {
                throw BenchmarkFailure("journey has \(journey.interactions.count) interactions, not \(interactions)")
            }
            let pointStarted = ContinuousClock.now
            _ = try await store.interaction(callId: "journey-call-\(query % interactions)")
            pointTimes.append(ContinuousClock.now - pointStarted)
        }
        journeyTimes.sort()
        pointTimes.sort()
        func percentile(_ sorted: [Duration], _ p: Double) -> Duration {
            sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        return Figures(
            rawInsertsPerSecond: Double(rows) / rawElapsed.totalSeconds,
            importRowsPerSecond: Double(rows) / importElapsed.totalSeconds,
            journeyP50: percentile(journeyTimes, 0.5),
            journeyP99: percentile(journeyTimes, 0.99),
            pointReadP50: percentile(pointTimes, 0.5),
            pointReadP99: percentile(pointTimes, 0.99),
            appliesPerSecondWithout: without,
            appliesPerSecondWith: with,
            capturePerEvent: captureCost
        )
    }
}
