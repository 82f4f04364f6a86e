import Foundation
import Logging
import RelayAMQP
import RelayCore
import RelayStore
import RelayTesting
import Testing

@testable import RelayService

/// `identity-relay dead-letters`: the logic layer (`DeadLetterQueue`) and the built CLI, against the
/// real broker, each test on its own prefixed topology.
@Suite("Dead-letter tool on a real broker")
struct DeadLetterToolTests {
    @Test(
        "list drains the queue into the store and selects by reason, time, call id and limit, in arrival order, changing no record"
    )
    func listFilters() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let now = Date()
        let records = [
            fixture.record("a", reason: .malformed, callId: "call-A", lastFailure: now.addingTimeInterval(-3 * 3600)),
            fixture.record("b", reason: .malformed, callId: "call-B", lastFailure: now.addingTimeInterval(-600)),
            fixture.record(
                "c",
                reason: .deliveryFailed,
                callId: "call-A",
                lastFailure: now.addingTimeInterval(-86_400 * 2)
            ),
            fixture.record("d", reason: .orphanedInteraction, callId: "call-C", lastFailure: now, replayable: false),
            fixture.record("e", reason: .enrichmentFailed, callId: nil, lastFailure: now.addingTimeInterval(-30)),
        ]
        try await fixture.publish(records)

        func ids(_ filter: DeadLetterFilter) async throws -> [String] {
            try await fixture.queue.list(filter).letters.map(\.id)
        }
        let all = try await fixture.queue.list(DeadLetterFilter(), whole: true)
        #expect(all.scanned == 5)
        try await fixture.waitForDeadLetters(0)
        #expect(all.letters.map(\.id) == records.map(\.id))
        #expect(all.letters.map(\.record) == records.map(Optional.some))
        #expect(try await ids(DeadLetterFilter(reasons: ["malformed"])) == [records[0].id, records[1].id])
        #expect(
            try await ids(DeadLetterFilter(reasons: ["deliveryFailed", "orphanedInteraction"]))
                == [records[2].id, records[3].id]
        )
        #expect(try await ids(DeadLetterFilter(callId: "call-A")) == [records[0].id, records[2].id])
        let lastHour = try #require(DeadLetterFilter.parseTime("1h", now: now))
        #expect(try await ids(DeadLetterFilter(since: lastHour)) == [records[1].id, records[3].id, records[4].id])
        let dayAgo = try #require(DeadLetterFilter.parseTime("1d", now: now))
        #expect(try await ids(DeadLetterFilter(until: dayAgo)) == [records[2].id])
        #expect(try await ids(DeadLetterFilter(since: dayAgo, until: lastHour)) == [records[0].id])
        #expect(try await ids(DeadLetterFilter(limit: 2)) == [records[0].id, records[1].id])
        #expect(try await ids(DeadLetterFilter(reasons: ["malformed"], callId: "call-B")) == [records[1].id])
        #expect(try await ids(DeadLetterFilter(reasons: ["brokerDeadLettered"])) == [])

        // Listing, over and over, closed nothing and kept the order.
        #expect(try await fixture.queue.summary(DeadLetterFilter()).total == 5)
        #expect(try await ids(DeadLetterFilter()) == records.map(\.id))
    }

    @Test("show finds one record by id, whole, payload included; an unknown id finds nothing")
    func show() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let binary: [UInt8] = [0xFF, 0x00, 0xFE, 0x41]
        let records = [
            fixture.record("one", reason: .malformed, callId: "call-1"),
            fixture.record(
                "two",
                reason: .deliveryFailed,
                callId: "call-2",
                payload: binary,
                target: .init(method: "PUT", url: "http://platform/api/v2/customers/x", lastStatus: 422)
            ),
        ]
        try await fixture.publish(records)

        let listing = try await fixture.queue.list(DeadLetterFilter(ids: [records[1].id]), whole: true)
        let letter = try #require(listing.letters.first)
        #expect(listing.letters.count == 1)
        #expect(letter.record == records[1])
        #expect(letter.payload == binary)
        #expect(letter.target?.lastStatus == 422)
        let page = DeadLetterText.detail(letter, copies: 1, now: Date()).joined(separator: "\n")
        #expect(page.contains(records[1].id))
        #expect(page.contains("call-2"), "show is the whole record: the call id unmasked")
        #expect(page.contains("PUT http://platform/api/v2/customers/x (last status 422)"))
        #expect(page.contains("payload (base64, 4 bytes)"))
        #expect(page.contains(records[1].payload))
        #expect(try await fixture.queue.list(DeadLetterFilter(ids: ["dl_nope"])).letters.isEmpty)
    }

    @Test(
        "a replayed or resolved record keeps its history: list --state and show read it; --reveal prints call ids and says so"
    )
    func historyAndReveal() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let replayed = fixture.record("hist-replayed", reason: .malformed, callId: "call-history-0001")
        let resolved = fixture.record(
            "hist-resolved",
            reason: .orphanedInteraction,
            callId: "call-history-0002",
            replayable: false
        )
        let open = fixture.record("hist-open", reason: .malformed, callId: "call-history-0003")
        try await fixture.publish([replayed, resolved, open])
        #expect(try await fixture.queue.replay(DeadLetterFilter(ids: [replayed.id])).succeeded == 1)
        #expect(
            try await fixture.queue.resolve(DeadLetterFilter(ids: [resolved.id]), note: "caller hung up").succeeded == 1
        )

        let openOnly = try fixture.runCLI(["dead-letters", "list"])
        #expect(openOnly.status == 0 && openOnly.stdout.hasPrefix("open: 1 (malformed 1)"), "\(openOnly)")
        #expect(!openOnly.stdout.contains("STATE"), "a list of open ones needs no state column")

        let history = try fixture.runCLI(["dead-letters", "list", "--state", "replayed", "--state", "resolved"])
        #expect(history.status == 0, "\(history)")
        let lines = history.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "replayed or resolved: 2 (malformed 1, orphanedInteraction 1)", "\(history)")
        #expect(lines.contains { $0.hasPrefix("ID") && $0.contains("STATE") })
        #expect(lines.contains { $0.hasPrefix(replayed.id) && $0.contains("replayed") && $0.contains("********0001") })
        #expect(lines.contains { $0.hasPrefix(resolved.id) && $0.contains("resolved") })
        #expect(lines.last == "2 of 2 dead letters (replayed or resolved); open: 1", "\(history)")

        let json = try fixture.runCLI(["dead-letters", "list", "--state", "any", "--json"])
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(objects.map { $0["state"] as? String } == ["replayed", "resolved", "open"])
        #expect(objects[1]["note"] as? String == "caller hung up")
        #expect(objects.allSatisfy { $0["callId"] == nil }, "call ids stay masked unless revealed")

        let show = try fixture.runCLI(["dead-letters", "show", resolved.id])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.contains("state:         resolved since "), "\(show)")
        #expect(show.stdout.contains(": caller hung up"))
        #expect(
            try fixture.runCLI(["dead-letters", "show", replayed.id]).stdout.contains("state:         replayed since ")
        )

        let reveal = try fixture.runCLI(["dead-letters", "list", "--state", "any", "--reveal"])
        #expect(reveal.status == 0, "\(reveal)")
        #expect(
            ["call-history-0001", "call-history-0002", "call-history-0003"].allSatisfy { reveal.stdout.contains($0) }
        )
        #expect(reveal.stderr.contains("call ids shown in full (--reveal)"), "\(reveal)")
        let revealJSON = try fixture.runCLI(["dead-letters", "list", "--reveal", "--json"])
        let revealed = try #require(
            try JSONSerialization.jsonObject(with: Data(revealJSON.stdout.utf8)) as? [[String: Any]]
        )
        #expect(revealed.map { $0["callId"] as? String } == ["call-history-0003"])
        #expect(!openOnly.stdout.contains("call-history-0003"))

        #expect(try fixture.runCLI(["dead-letters", "list", "--state", "closed"]).status == 64)
        let exportAll = try fixture.runCLI(["dead-letters", "export", "--state", "any"])
        #expect(exportAll.stdout.split(separator: "\n").count == 3, "\(exportAll)")
        #expect(exportAll.stderr.contains("exported 3 dead letters (any state); open: 1"), "\(exportAll)")
    }

    @Test("a record that fails again after its replay keeps its first failure in list, show and export")
    func firstFailureKept() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let first = fixture.record(
            "kept",
            reason: .malformed,
            callId: "call-kept",
            lastFailure: Date().addingTimeInterval(-3600)
        )
        try await fixture.publish([first])
        #expect(try await fixture.queue.replay(DeadLetterFilter(ids: [first.id])).succeeded == 1)
        _ = try await fixture.next(from: fixture.names.eventsQueue)
        // The replayed event fails again: the relay publishes a record of the new failure, its own
        // first failure now, carrying the replay count.
        var again = first
        again.firstFailureAt = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        again.lastFailureAt = again.firstFailureAt
        again.lastError = "failed again after its replay"
        let cause = Delivery(
            deliveryTag: 1,
            connectionGeneration: 1,
            exchange: fixture.names.eventsExchange,
            routingKey: "callStarted",
            redelivered: false,
            body: first.originalPayload,
            headers: [DeadLetter.replayCountHeader: .int(1)],
            messageId: nil,
            consumerTag: "t"
        )
        try await DeadLetterPublisher(amqp: fixture.client, exchange: fixture.names.deadLetterExchange).publish(
            again,
            causedBy: cause
        )

        let listed = try #require(try await fixture.queue.list(DeadLetterFilter()).letters.first)
        #expect(listed.id == first.id && listed.replayCount == 1 && listed.lastError == "failed again after its replay")
        #expect(listed.firstFailureAt == first.firstFailureAt)
        let whole = try #require(try await fixture.queue.letter(id: first.id))
        #expect(whole.firstFailureAt == first.firstFailureAt && whole.lastFailureAt == again.lastFailureAt)
        let exported = try #require(try JSONSerialization.jsonObject(with: Data(whole.exportJSON())) as? [String: Any])
        #expect(exported["firstFailureAt"] as? String == RFC3339.format(first.firstFailureAt))
        #expect(exported["lastFailureAt"] as? String == RFC3339.format(again.lastFailureAt))
        let show = try fixture.runCLI(["dead-letters", "show", first.id])
        #expect(show.stdout.contains("first failure: \(RFC3339.format(first.firstFailureAt))"), "\(show)")
    }

    @Test("replay puts a malformed event back on platform.events with x-relay-replay-count 1, then removes the record")
    func replayMalformed() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let event = Array(#"{"eventId":"e-1","type":"callStarted","callId":"call-R"}"#.utf8)
        let target = fixture.record("r", reason: .malformed, callId: "call-R", payload: event)
        let other = fixture.record("o", reason: .malformed, callId: "call-O")
        try await fixture.publish([target, other])

        let report = try await fixture.queue.replay(DeadLetterFilter(ids: [target.id]))
        #expect(report.outcomes.map(\.result) == [.replayed(to: target.origin!)])
        #expect(!report.hasFailures)
        #expect(report.summary == "replayed 1, failed 0, kept 1")

        let replayed = try await fixture.next(from: fixture.names.eventsQueue)
        #expect(replayed.body == event)
        #expect(replayed.routingKey == "callStarted")
        #expect(replayed.headers[DeadLetter.replayCountHeader] == .int(1))
        #expect(replayed.headers[DeadLetter.replayOfHeader] == .string(target.id))
        try await fixture.expectOpen(1)
        #expect(try await fixture.queue.list(DeadLetterFilter()).letters.map(\.id) == [other.id])
    }

    @Test("a record that failed again after a replay shows its count, and the next replay carries count + 1")
    func replayCountAccumulates() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let record = fixture.record("again", reason: .malformed, callId: "call-again")
        // What the relay publishes when a replayed event fails again (DeadLetterPublisher.publish(_:causedBy:)).
        let cause = Delivery(
            deliveryTag: 1,
            connectionGeneration: 1,
            exchange: fixture.names.eventsExchange,
            routingKey: "callStarted",
            redelivered: false,
            body: record.originalPayload,
            headers: [DeadLetter.replayCountHeader: .int(2), "x-unrelated": .string("dropped")],
            messageId: nil,
            consumerTag: "t"
        )
        try await DeadLetterPublisher(amqp: fixture.client, exchange: fixture.names.deadLetterExchange)
            .publish(record, causedBy: cause)

        let listed = try #require(try await fixture.queue.list(DeadLetterFilter(), whole: true).letters.first)
        #expect(listed.replayCount == 2)
        #expect(listed.headers["x-unrelated"] == nil)
        #expect(DeadLetterText.table([listed], now: Date())[1].contains("  2  "))
        _ = try await fixture.queue.replay(DeadLetterFilter(ids: [record.id]))
        let replayed = try await fixture.next(from: fixture.names.eventsQueue)
        #expect(replayed.headers[DeadLetter.replayCountHeader] == .int(3))
    }

    @Test("a replay whose origin exchange is gone fails that record, keeps it, and the others still replay")
    func replayToMissingExchangeKeepsRecord() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let gone = fixture.record(
            "gone",
            reason: .malformed,
            callId: "call-gone",
            origin: .init(exchange: fixture.prefix + "deleted.exchange", routingKey: "callStarted")
        )
        let orphan = fixture.record("orphan", reason: .orphanedInteraction, callId: "call-orphan", replayable: false)
        let good = fixture.record("good", reason: .malformed, callId: "call-good")
        try await fixture.publish([gone, orphan, good])

        let report = try await fixture.queue.replay(DeadLetterFilter())
        #expect(report.outcomes.map(\.letter.id) == [gone.id, orphan.id, good.id])
        guard case .failed(let message) = report.outcomes[0].result else {
            Issue.record("expected the missing exchange to fail: \(report.outcomes[0].result)")
            return
        }
        #expect(message.contains("'\(fixture.prefix)deleted.exchange' no longer exists"))
        guard case .failed(let orphanMessage) = report.outcomes[1].result else {
            Issue.record("expected the orphan to fail: \(report.outcomes[1].result)")
            return
        }
        #expect(orphanMessage.contains("no origin"))
        #expect(report.outcomes[2].result == .replayed(to: good.origin!))
        #expect(report.hasFailures)
        #expect(report.summary == "replayed 1, failed 2, kept 2")
        #expect(report.outcomes[0].line.hasSuffix("; kept"))

        _ = try await fixture.next(from: fixture.names.eventsQueue)
        try await fixture.expectOpen(2)
        let left = try await fixture.queue.list(DeadLetterFilter())
        #expect(left.letters.map(\.id) == [gone.id, orphan.id])
        #expect(left.letters.allSatisfy { $0.replayCount == 0 })
    }

    @Test("dry runs of replay and purge report what would move and change nothing")
    func dryRunChangesNothing() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let records = [
            fixture.record("x", reason: .malformed, callId: "call-x"),
            fixture.record("y", reason: .orphanedInteraction, callId: "call-y", replayable: false),
        ]
        try await fixture.publish(records)

        let replay = try await fixture.queue.replay(DeadLetterFilter(), dryRun: true)
        #expect(replay.outcomes[0].result == .wouldReplay(to: records[0].origin!))
        #expect(replay.outcomes[1].isFailure, "the orphan has nowhere to go, even in a dry run")
        #expect(replay.summary.hasPrefix("dry run: would replay 1, failed 1, nothing changed"))
        let purge = try await fixture.queue.purge(
            DeadLetterFilter(),
            dryRun: true,
            confirm: { _ in
                Issue.record("a dry run must not ask")
                return true
            }
        )
        #expect(purge.outcomes.map(\.result) == [.wouldPurge, .wouldPurge])

        try await fixture.expectOpen(2)
        #expect(try await fixture.client.messageCount(queue: fixture.names.eventsQueue) == 0)
        #expect(try await fixture.queue.list(DeadLetterFilter()).letters.map(\.id) == records.map(\.id))
    }

    @Test("purge removes only what the filters select, after confirmation; a declined purge changes nothing")
    func purge() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let records = [
            fixture.record("p1", reason: .deliveryFailed, callId: "call-1"),
            fixture.record("p2", reason: .malformed, callId: "call-2"),
            fixture.record("p3", reason: .deliveryFailed, callId: "call-3"),
            fixture.record("p4", reason: .deliveryFailed, callId: "call-4"),
        ]
        try await fixture.publish(records)
        // The same record published twice (a crash between publish and ack) is one dead letter.
        try await fixture.publish([records[2]], total: 5)

        let declined = try await fixture.queue.purge(
            DeadLetterFilter(reasons: ["deliveryFailed"]),
            confirm: { _ in false }
        )
        #expect(declined.cancelled)
        #expect(declined.exitStatus == 2, "a declined purge is not a success a script could act on")
        // The copy of records[2] is counted on its record, not a second dead letter.
        try await fixture.expectOpen(4)

        let asked = Recorder()
        let report = try await fixture.queue.purge(
            DeadLetterFilter(reasons: ["deliveryFailed"], limit: 2),
            confirm: { letters in
                asked.set(letters.map(\.id))
                return true
            }
        )
        #expect(asked.value == [records[0].id, records[2].id])
        #expect(report.outcomes.map(\.letter.id) == [records[0].id, records[2].id])
        #expect(report.outcomes.map(\.copies) == [1, 2])
        #expect(report.summary == "purged 2, failed 0, kept 2")
        #expect(report.exitStatus == 0)
        try await fixture.expectOpen(2)
        #expect(try await fixture.queue.list(DeadLetterFilter()).letters.map(\.id) == [records[1].id, records[3].id])
    }

    @Test("export writes one JSON line per dead letter that reads back as the record")
    func exportRoundTrips() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let records = [
            fixture.record("j1", reason: .malformed, callId: "call-1"),
            fixture.record(
                "j2",
                reason: .deliveryFailed,
                callId: nil,
                payload: [0xC3, 0x28, 0x00],
                target: .init(method: "POST", url: "http://crm/hook", lastStatus: nil)
            ),
            fixture.record("j3", reason: .orphanedInteraction, callId: "call-3", replayable: false),
        ]
        try await fixture.publish(records)
        let listing = try await fixture.queue.list(DeadLetterFilter(), whole: true)
        let lines = listing.letters.map { $0.exportJSON() }
        #expect(lines.allSatisfy { !$0.contains(UInt8(ascii: "\n")) })
        #expect(try lines.map { try DeadLetterRecord.decode($0) } == records)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        #expect(object["kind"] as? String == "record")
        #expect(object["replayCount"] as? Int == 0)
    }

    @Test("export keeps a record's times exactly as published, milliseconds included")
    func exportKeepsTimes() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        var record = fixture.record("ms", reason: .malformed, callId: "call-ms")
        record.lastFailureAt = Date(timeIntervalSince1970: 1_800_000_000.123)
        record.firstFailureAt = Date(timeIntervalSince1970: 1_800_000_000.987)
        try await fixture.publish([record])
        let published = try #require(try JSONSerialization.jsonObject(with: Data(record.encoded())) as? [String: Any])
        let letter = try #require(try await fixture.queue.list(DeadLetterFilter(), whole: true).letters.first)
        let exported = try #require(try JSONSerialization.jsonObject(with: Data(letter.exportJSON())) as? [String: Any])
        #expect(exported["lastFailureAt"] as? String == published["lastFailureAt"] as? String)
        #expect(exported["firstFailureAt"] as? String == published["firstFailureAt"] as? String)
        #expect(exported["payload"] as? String == record.payload)
    }

    @Test(
        "a drain records more messages than a quorum queue's 'unlimited' prefetch (2000), a batch at a time; purge closes them all"
    )
    func largeQueue() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let count = 2500
        let publisher = DeadLetterPublisher(amqp: fixture.client, exchange: fixture.names.deadLetterExchange)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                let record = fixture.record(
                    "bulk-\(index)",
                    reason: index % 2 == 0 ? .malformed : .deliveryFailed,
                    callId: "c-\(index)"
                )
                group.addTask { try await publisher.publish(record) }
            }
            try await group.waitForAll()
        }
        try await fixture.waitForDeadLetters(count)

        let listing = try await fixture.queue.list(DeadLetterFilter(reasons: ["deliveryFailed"]))
        #expect(listing.scanned == count)
        #expect(listing.letters.count == count / 2)
        #expect(!listing.truncated)
        let progress = Recorder()
        let report = try await fixture.queue.purge(DeadLetterFilter(), progress: { progress.append("\($0.done)") })
        #expect(report.summary == "purged \(count), failed 0, kept 0")
        #expect(progress.texts.count == count)
        try await fixture.waitForDeadLetters(0)
        try await fixture.expectOpen(0)
    }

    @Test("a raw message the broker dead-lettered is listed as brokerDeadLettered and replays to its exchange")
    func brokerDeadLettered() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let body = Array(#"{"eventId":"poison-1","type":"callStarted","callId":"call-poison"}"#.utf8)
        try await fixture.client.publish(
            OutboundMessage(
                exchange: fixture.names.eventsExchange,
                routingKey: "callStarted",
                body: body,
                headers: ["x-platform-trace": .string("t-1")]
            )
        )
        // A consumer that keeps giving it back, as a relay crashing on it would: past the delivery limit
        // the broker moves it to the dead-letter exchange.
        let bouncer = try await TestBroker.connectedClient(topology: nil)
        let bouncing = Task {
            for await delivery in bouncer.consume(queue: fixture.names.eventsQueue, prefetch: 1) {
                bouncer.nack(delivery, requeue: true)
            }
        }
        try await fixture.waitForDeadLetters(1)
        await bouncer.shutdown()
        await bouncing.value

        let letter = try #require(try await fixture.queue.list(DeadLetterFilter(), whole: true).letters.first)
        #expect(letter.kind == .brokerDeadLettered)
        #expect(letter.reason == "brokerDeadLettered")
        #expect(letter.payload == body)
        #expect(letter.callId == "call-poison")
        #expect(letter.origin == .init(exchange: fixture.names.eventsExchange, routingKey: "callStarted"))
        #expect(letter.lastError.contains("delivery_limit"))
        #expect(letter.lastError.contains(fixture.names.eventsQueue))
        #expect(try await fixture.queue.list(DeadLetterFilter(reasons: ["brokerDeadLettered"])).letters.count == 1)
        // Its death history is kept with the record and shown.
        let stored = try #require(try await fixture.queue.store?.deadLetter(id: letter.id))
        #expect(stored.headers["x-first-death-reason"] == .string("delivery_limit"))
        #expect(stored.headers["x-death"] != nil)
        let page = DeadLetterText.detail(
            try #require(try await fixture.queue.letter(id: letter.id)),
            copies: 1,
            now: Date()
        )
        #expect(page.contains { $0.hasPrefix("x-first-death-reason:") && $0.hasSuffix("delivery_limit") }, "\(page)")
        #expect(page.contains { $0.hasPrefix("x-death:") && $0.contains(fixture.names.eventsQueue) }, "\(page)")

        let report = try await fixture.queue.replay(DeadLetterFilter(ids: [letter.id]))
        #expect(report.outcomes.map(\.result) == [.replayed(to: letter.origin!)])
        let replayed = try await fixture.next(from: fixture.names.eventsQueue)
        #expect(replayed.body == body)
        #expect(replayed.headers[DeadLetter.replayCountHeader] == .int(1))
        #expect(replayed.headers["x-platform-trace"] == .string("t-1"), "the message's own headers travel on")
        #expect(replayed.headers["x-first-death-reason"] == nil, "the broker's death history does not")
        #expect(replayed.headers["x-death"] == nil)
        try await fixture.expectOpen(0)
    }

    @Test("what a record carries is printed, never acted on: escapes, line breaks and NUL in a body and in ids")
    func controlCharactersArePrinted() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let planted = fixture.record(
            "ansi",
            reason: .malformed,
            callId: "c1\nnote:   SAFE TO PURGE\r",
            payload: Array("\u{1B}[2J\u{1B}[HALL CLEAR: 0 dead letters\u{0}\r\nnote: forged".utf8)
        )
        try await fixture.publish([planted])
        let list = try fixture.runCLI(["dead-letters", "list"])
        let show = try fixture.runCLI(["dead-letters", "show", planted.id])
        for result in [list, show] {
            #expect(result.status == 0, "\(result)")
            #expect(!result.stdout.unicodeScalars.contains { [0x1B, 0x0D, 0x00].contains($0.value) }, "\(result)")
            #expect(!result.stdout.split(separator: "\n").contains { $0.hasPrefix("note:") }, "\(result)")
        }
        #expect(show.stdout.contains("  \\x1B[2J\\x1B[HALL CLEAR: 0 dead letters\\0\n  note: forged"), "\(show)")
        #expect(show.stdout.contains("c1\\nnote:   SAFE TO PURGE\\r"), "\(show)")
    }

    @Test("the built CLI lists, shows, exports, replays and purges, with the documented exit codes")
    func cli() async throws {
        let fixture = try await Fixture.start()
        defer { fixture.tearDown() }
        let good = fixture.record("cli-good", reason: .malformed, callId: "call-cli-0001")
        let gone = fixture.record(
            "cli-gone",
            reason: .malformed,
            callId: "call-cli-0002",
            origin: .init(exchange: fixture.prefix + "no.such.exchange", routingKey: "callStarted")
        )
        let delivery = fixture.record("cli-delivery", reason: .deliveryFailed, callId: "call-cli-0003")
        try await fixture.publish([good, gone, delivery])

        let list = try fixture.runCLI(["dead-letters", "list"])
        #expect(list.status == 0, "\(list)")
        let lines = list.stdout.split(separator: "\n").map(String.init)
        // Counts first, then the table.
        #expect(lines.first == "open: 3 (malformed 2, deliveryFailed 1)", "\(list)")
        #expect(lines.contains { $0.hasPrefix("failed: oldest ") })
        #expect(lines.contains("error: 1 × failure of cli-good"))
        let table = Array(lines.drop { !$0.hasPrefix("ID") })
        #expect(table.first?.hasPrefix("ID") == true)
        #expect(table.allSatisfy { $0.count <= 120 })
        #expect(table.contains { $0.hasPrefix(good.id) && $0.contains("malformed") && $0.contains("********0001") })
        #expect(!list.stdout.contains("call-cli-0001"), "the table masks call ids")
        #expect(table.last == "3 of 3 open dead letters")

        let filtered = try fixture.runCLI(["dead-letters", "list", "--reason", "deliveryFailed", "--json"])
        #expect(filtered.status == 0, "\(filtered)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(filtered.stdout.utf8)) as? [[String: Any]])
        #expect(json.map { $0["id"] as? String } == [delivery.id])
        #expect(json.first?["callIdMasked"] as? String == "********0003")

        let show = try fixture.runCLI(["dead-letters", "show", good.id])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.contains("call-cli-0001"))
        #expect(show.stdout.contains("\"callId\" : \"call-cli-good\""), "the payload, indented")
        #expect(try fixture.runCLI(["dead-letters", "show", "dl_missing"]).status == 1)

        let export = try fixture.runCLI(["dead-letters", "export", "--format", "jsonl", "--call-id", "call-cli-0003"])
        #expect(export.status == 0, "\(export)")
        #expect(
            try export.stdout.split(separator: "\n").map { try DeadLetterRecord.decode(Array($0.utf8)) } == [delivery]
        )

        let dryRun = try fixture.runCLI(["dead-letters", "replay", "--all", "--reason", "malformed", "--dry-run"])
        #expect(dryRun.status == 0, "\(dryRun)")
        #expect(
            dryRun.stdout.contains("would replay \(good.id) (malformed) → \(fixture.names.eventsExchange)/callStarted")
        )

        let replay = try fixture.runCLI(["dead-letters", "replay", "--all", "--reason", "malformed", "--rate", "50"])
        #expect(replay.status == 1, "one record failed: \(replay)")
        #expect(replay.stdout.contains("replayed \(good.id)"))
        #expect(
            replay.stdout.contains(
                "failed \(gone.id) (malformed): its origin exchange '\(fixture.prefix)no.such.exchange' "
                    + "no longer exists"
            )
        )
        #expect(replay.stdout.contains("replayed 1, failed 1, kept 2"))
        #expect(replay.stderr.contains("replay: 2/2 replayed 1 failed 1"), "plain progress lines off a terminal")
        let replayed = try await fixture.next(from: fixture.names.eventsQueue)
        #expect(replayed.body == good.originalPayload)
        #expect(replayed.headers[DeadLetter.replayCountHeader] == .int(1))

        let replayAgain = try fixture.runCLI(["dead-letters", "replay", good.id])
        #expect(replayAgain.status == 1, "\(replayAgain)")
        #expect(replayAgain.stdout.contains("not found"))

        let unconfirmed = try fixture.runCLI(["dead-letters", "purge", "--reason", "malformed"])
        #expect(unconfirmed.status == 64, "\(unconfirmed)")
        #expect(unconfirmed.stderr.contains("--yes"))
        #expect(try fixture.runCLI(["dead-letters", "purge"]).status == 64, "a purge needs ids, filters or --all")
        #expect(try fixture.runCLI(["dead-letters", "list", "--reason", "bogus"]).status == 64)
        #expect(try fixture.runCLI(["dead-letters", "list", "--since", "yesterday"]).status == 64)
        let noQueue = try fixture.runCLI(["dead-letters", "list"], prefix: fixture.prefix + "missing.")
        #expect(noQueue.status == 69, "\(noQueue)")
        #expect(
            noQueue.stderr.contains(
                "the dead-letter queue '\(fixture.prefix)missing.relay.dead-letters' does not exist"
            )
        )

        #expect(try fixture.runCLI(["dead-letters", "resolve", gone.id]).status == 64, "a resolve needs a note")
        let resolve = try fixture.runCLI([
            "dead-letters", "resolve", gone.id, "--note", "exchange retired; nothing to replay",
        ])
        #expect(resolve.status == 0, "\(resolve)")
        #expect(resolve.stdout.contains("resolved \(gone.id) (malformed)"))
        #expect(resolve.stdout.contains("resolved 1, failed 0, kept 1"))
        let resolved = try #require(try await fixture.queue.store?.deadLetter(id: gone.id))
        #expect(resolved.state == .resolved && resolved.note == "exchange retired; nothing to replay")
        #expect(
            try fixture.runCLI(["dead-letters", "resolve", gone.id, "--note", "again"]).status == 1,
            "resolved already"
        )

        let purge = try fixture.runCLI(["dead-letters", "purge", "--reason", "malformed", "--yes"])
        #expect(purge.status == 0, "\(purge)")
        // Nothing malformed is open any more: one replayed, one resolved.
        #expect(purge.stdout.contains("purged 0, failed 0, kept 1"), "\(purge)")
        try await fixture.expectOpen(1)
        #expect(try await fixture.queue.list(DeadLetterFilter()).letters.map(\.id) == [delivery.id])
    }
}

/// The parts of the tool that need no broker: filters, times, the table, pacing, progress, raw messages.
@Suite("Dead-letter tool, pure parts")
struct DeadLetterToolPureTests {
    let names = RelayNames(prefix: "p.")

    @Test("times: RFC 3339, a day, or an age before now")
    func parseTime() throws {
        let now = try #require(RFC3339.parse("2026-05-10T12:00:00Z"))
        #expect(DeadLetterFilter.parseTime("2026-05-01T08:00:00Z", now: now) == RFC3339.parse("2026-05-01T08:00:00Z"))
        #expect(DeadLetterFilter.parseTime("2026-05-01", now: now) == RFC3339.parse("2026-05-01T00:00:00Z"))
        #expect(DeadLetterFilter.parseTime("90s", now: now) == now.addingTimeInterval(-90))
        #expect(DeadLetterFilter.parseTime("2h", now: now) == now.addingTimeInterval(-7200))
        #expect(DeadLetterFilter.parseTime("7d", now: now) == now.addingTimeInterval(-7 * 86_400))
        for bad in ["", "yesterday", "-2h", "2x", "h"] {
            #expect(DeadLetterFilter.parseTime(bad, now: now) == nil, "\(bad)")
        }
    }

    @Test("a replay count header out of any real range is read as a bounded count, and replay does not overflow")
    func absurdReplayCount() throws {
        let now = Date()
        let record = DeadLetterRecord(
            id: "dl_absurd",
            reason: .malformed,
            callId: "call-absurd",
            eventType: nil,
            eventId: nil,
            attempts: 1,
            firstFailureAt: now,
            lastFailureAt: now,
            lastError: "bad",
            originalPayload: Array("{}".utf8),
            origin: .init(exchange: names.eventsExchange, routingKey: "callStarted")
        )
        for (header, expected) in [
            (AMQPHeaderValue.int(.max), Int(Int32.max)), (.int(-5), 0),
            (.string("9223372036854775807"), Int(Int32.max)),
        ] {
            let letter = DeadLetter(
                message: delivery(record.encoded(), headers: [DeadLetter.replayCountHeader: header]),
                names: names
            )
            #expect(letter.replayCount == expected, "\(header)")
            #expect(letter.replayMessage()?.headers[DeadLetter.replayCountHeader] == .int(Int64(expected) + 1))
        }
    }

    @Test("the table fits 120 columns, masks call ids and cuts long errors")
    func table() throws {
        let now = Date()
        let record = DeadLetterRecord(
            id: "dl_0123456789abcdef01234567",
            reason: .orphanedInteraction,
            callId: "a-very-long-call-identifier-0042",
            eventType: nil,
            eventId: nil,
            attempts: 12,
            firstFailureAt: now,
            lastFailureAt: now.addingTimeInterval(-7200),
            lastError: String(repeating: "the CRM said no; ", count: 20),
            originalPayload: [],
            origin: nil
        )
        let letter = DeadLetter(message: delivery(record.encoded(), headers: [:]), names: names)
        let lines = DeadLetterText.table([letter], now: now)
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.count <= 120 })
        #expect(lines[1].contains("********0042"))
        #expect(!lines[1].contains("identifier"))
        #expect(lines[1].contains("  2h  "))
        #expect(lines[1].hasSuffix("…"))
        // A failed delivery's target: the method and the end of its path, the external id masked.
        let delivery = DeadLetterRecord(
            id: "dl_delivery",
            reason: .deliveryFailed,
            callId: "call-0042",
            eventType: "callStarted",
            eventId: "e1",
            attempts: 5,
            firstFailureAt: now,
            lastFailureAt: now,
            lastError: "HTTP 503",
            originalPayload: [],
            origin: .outbox,
            target: .init(
                method: "PUT",
                url: "https://platform.example/api/v2/customers/CRM%3A500245678",
                lastStatus: 503
            )
        )
        let deliveryLines = DeadLetterText.table(
            [DeadLetter(message: self.delivery(delivery.encoded(), headers: [:]), names: names)],
            now: now
        )
        #expect(deliveryLines[0].contains("TARGET"))
        let masked = Masking.mask("CRM%3A500245678")
        #expect(deliveryLines[1].contains("PUT customers/\(masked)"), "\(deliveryLines)")
        #expect(!deliveryLines[1].contains("500245678"))
        #expect(lines[1].contains("  -  "), "an orphan goes nowhere")
        #expect(DeadLetterText.age(59) == "59s")
        #expect(DeadLetterText.age(3 * 86_400 + 5) == "3d")
    }

    @Test(
        "raw messages: broker dead letters get an origin, an old delay queue's go back to the outbox, others are unreadable"
    )
    func rawMessages() {
        let fromEvents = DeadLetter(
            message: delivery(
                Array("{}".utf8),
                routingKey: "callEnded",
                headers: [
                    "x-first-death-reason": .string("delivery_limit"), "x-first-death-queue": .string("p.relay.events"),
                    "x-first-death-exchange": .string("p.platform.events"), "x-death": .other("<field kind A>"),
                    "x-delivery-count": .int(20),
                ]
            ),
            names: names
        )
        #expect(fromEvents.kind == .brokerDeadLettered)
        #expect(fromEvents.attempts == 20)
        #expect(fromEvents.origin == .init(exchange: "p.platform.events", routingKey: "callEnded"))
        #expect(fromEvents.id.hasPrefix("dlb_"))
        #expect(
            fromEvents.replayMessage()?.headers == [
                DeadLetter.replayCountHeader: .int(1), DeadLetter.replayOfHeader: .string(fromEvents.id),
            ]
        )

        let fromDelay = DeadLetter(
            message: delivery(
                Array("{}".utf8),
                routingKey: "delivery",
                headers: [
                    "x-first-death-reason": .string("expired"), "x-first-death-queue": .string("p.relay.delay.5s"),
                    "x-first-death-exchange": .string(""),
                ]
            ),
            names: names
        )
        // A job of an earlier version, expired from its delay queue: back to the store's outbox.
        #expect(fromDelay.origin == .outbox)

        let foreign = DeadLetter(message: delivery(Array("hello".utf8), headers: [:]), names: names)
        #expect(foreign.kind == .unreadable)
        #expect(foreign.origin == nil)
        #expect(foreign.replayMessage() == nil)
        #expect(foreign.notReplayableReason != nil)
    }

    @Test("replays are paced at the given rate")
    func pacing() {
        var pacer = ReplayPacer(rate: 4)
        let start = ContinuousClock.now
        #expect(pacer.waitBeforeNext(now: start) == nil)
        #expect(pacer.waitBeforeNext(now: start) == .milliseconds(250))
        #expect(pacer.waitBeforeNext(now: start + .milliseconds(100)) == .milliseconds(400))
        #expect(pacer.waitBeforeNext(now: start + .seconds(5)) == nil, "an idle pause earns no burst")
        var unlimited = ReplayPacer(rate: nil)
        #expect(unlimited.waitBeforeNext(now: start) == nil)
        #expect(unlimited.waitBeforeNext(now: start) == nil)
    }

    @Test("progress: a redrawn bar on a terminal, plain lines elsewhere")
    func progress() {
        let written = Recorder()
        let terminal = DeadLetterProgressReporter(isTerminal: true) { written.append($0) }
        terminal.report(.init(operation: .replay, done: 1, total: 2, succeeded: 1, failed: 0))
        terminal.report(.init(operation: .replay, done: 2, total: 2, succeeded: 1, failed: 1))
        #expect(written.texts[0].hasPrefix("\r"))
        #expect(written.texts[0].contains("[###############...............] 1/2 replayed 1"))
        #expect(written.texts.last == "\n")

        let plain = Recorder()
        let lines = DeadLetterProgressReporter(isTerminal: false, every: 2) { plain.append($0) }
        for done in 1...5 { lines.report(.init(operation: .purge, done: done, total: 5, succeeded: done, failed: 0)) }
        #expect(plain.texts == ["purge: 2/5 purged 2\n", "purge: 4/5 purged 4\n", "purge: 5/5 purged 5\n"])
    }

    private func delivery(_ body: [UInt8], routingKey: String = "rk", headers: [String: AMQPHeaderValue]) -> Delivery {
        Delivery(
            deliveryTag: 1,
            connectionGeneration: 1,
            exchange: "p.relay.dead",
            routingKey: routingKey,
            redelivered: false,
            body: body,
            headers: headers,
            messageId: nil,
            consumerTag: "t"
        )
    }
}

// MARK: Support

/// One test's isolated topology, a client on it, and the tool's queue object.
private struct Fixture {
    let topology: Topology
    let prefix: String
    let names: RelayNames
    let client: AMQPClient
    let queue: DeadLetterQueue
    let storePath: String

    static func start() async throws -> Fixture {
        let (topology, prefix) = try TestBroker.isolatedTopology()
        let client = try await TestBroker.connectedClient(topology: topology)
        let names = RelayNames(prefix: prefix)
        var queue = DeadLetterQueue(
            configuration: TestBroker.configuration(),
            names: names,
            logger: Logger(label: "test.dead-letters")
        )
        queue.confirmTimeout = .seconds(10)
        // The record of dead letters: a store of this test's own, which the CLI runs open too.
        let storePath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dead-letter-tests-\(UUID().uuidString).sqlite"
        ).path
        queue.store = try SQLiteInteractionStore(path: storePath)
        return Fixture(
            topology: topology,
            prefix: prefix,
            names: names,
            client: client,
            queue: queue,
            storePath: storePath
        )
    }

    func tearDown() {
        let (topology, client, storePath) = (topology, client, storePath)
        Task {
            await TestBroker.tearDown(topology, using: client)
            await client.shutdown()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
        }
    }

    /// A record as the relay would publish it; its payload is a platform event unless given.
    func record(
        _ tag: String,
        reason: DeadLetterReason,
        callId: String?,
        lastFailure: Date = Date(),
        payload: [UInt8]? = nil,
        origin: DeadLetterRecord.Origin? = nil,
        replayable: Bool = true,
        target: DeadLetterRecord.Target? = nil
    ) -> DeadLetterRecord {
        let body = payload ?? Array(#"{"eventId":"ev-\#(tag)","type":"callStarted","callId":"call-\#(tag)"}"#.utf8)
        // Unless told otherwise, the event came from platform.events, as a malformed event does.
        let resolvedOrigin =
            replayable ? origin ?? .init(exchange: names.eventsExchange, routingKey: "callStarted") : nil
        // Whole seconds: the record's JSON keeps milliseconds, and a Date with more would not compare equal.
        let lastFailure = Date(timeIntervalSince1970: lastFailure.timeIntervalSince1970.rounded(.down))
        return DeadLetterRecord(
            id: DeadLetterRecord.stableID(reason: reason, source: Array((prefix + tag).utf8)),
            reason: reason,
            callId: callId,
            eventType: "callStarted",
            eventId: "ev-\(tag)",
            attempts: 3,
            firstFailureAt: lastFailure.addingTimeInterval(-60),
            lastFailureAt: lastFailure,
            lastError: "failure of \(tag)",
            originalPayload: body,
            origin: resolvedOrigin,
            target: target
        )
    }

    /// Publishes in order, each confirmed before the next, as the relay's publisher does; returns once
    /// the queue counts `total` messages (default: these records).
    func publish(_ records: [DeadLetterRecord], total: Int? = nil) async throws {
        let publisher = DeadLetterPublisher(amqp: client, exchange: names.deadLetterExchange)
        for record in records { try await publisher.publish(record) }
        try await waitForDeadLetters(total ?? records.count)
    }

    /// Expects `count` open dead letters in the store (after a drain of the queue).
    func expectOpen(_ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let open = try await queue.summary(DeadLetterFilter()).total
        #expect(open == count, "open dead letters", sourceLocation: sourceLocation)
    }

    /// Waits until the dead-letter queue holds `count` ready messages.
    func waitForDeadLetters(_ count: Int) async throws {
        try await eventually("\(count) messages on \(names.deadLettersQueue)") {
            try await client.messageCount(queue: names.deadLettersQueue) == count
        }
    }

    /// The next message on `queue`, acked; fails after a timeout.
    func next(from queue: String) async throws -> Delivery {
        try await eventually("a message on \(queue)") { try await client.messageCount(queue: queue) > 0 }
        let reader = try await TestBroker.connectedClient(topology: nil)
        var iterator = reader.consume(queue: queue, prefetch: 1).makeAsyncIterator()
        let delivery = try #require(await iterator.next())
        reader.ack(delivery)
        _ = try await reader.messageCount(queue: queue)  // the ack has left before the connection closes
        await reader.shutdown()
        return delivery
    }

    struct CLIResult: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    /// Runs the built `identity-relay` against this fixture's names, standard input not a terminal.
    func runCLI(_ arguments: [String], prefix: String? = nil) throws -> CLIResult {
        let result = try BuiltExecutable.run(
            arguments,
            environment: [
                "RELAY_CONFIG": "", "RELAY_AMQP_NAME_PREFIX": prefix ?? self.prefix, "RELAY_STORE_PATH": storePath,
                "RELAY_AMQP_PORT": String(TestBroker.port), "RELAY_AMQP_HOST": "127.0.0.1",
            ],
            inherit: true
        )
        return CLIResult(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }
}

/// Collects values from @Sendable callbacks.
private final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []
    private var written: [String] = []

    func set(_ ids: [String]) { lock.withLock { self.ids = ids } }
    var value: [String] { lock.withLock { ids } }
    func append(_ text: String) { lock.withLock { written.append(text) } }
    var texts: [String] { lock.withLock { written } }
}
