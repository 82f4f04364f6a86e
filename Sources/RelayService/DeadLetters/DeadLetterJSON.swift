public import Foundation
import RelayCore
import RelayStore

extension DeadLetter {
    /// One line of `export --format jsonl`: the record's own fields, under the record's names, so
    /// `DeadLetterRecord.decode` reads a record's line back as the record; plus `kind` and
    /// `replayCount`. Raw messages the broker dead-lettered have the reason `brokerDeadLettered` and
    /// no failure times.
    ///
    /// - Parameter decrypted: a sealed payload that opened is written open (`payloadEncoding` `utf8`, or
    ///   `base64` for bytes that are not text); every other value stays as published.
    public func exportJSON(decrypted: Bool = false) -> [UInt8] {
        publishedRecordJSON(pretty: false, decrypted: decrypted) ?? Self.encode(Exported(self))
    }

    /// The same object, indented, for `show --json`.
    public func exportJSONPretty(decrypted: Bool = false) -> [UInt8] {
        publishedRecordJSON(pretty: true, decrypted: decrypted) ?? Self.encode(Exported(self), pretty: true)
    }

    /// A record's export: its JSON as published, every value unchanged, with `kind` and `replayCount` added.
    private func publishedRecordJSON(pretty: Bool, decrypted: Bool) -> [UInt8]? {
        guard let recordJSON, var object = try? JSONSerialization.jsonObject(with: Data(recordJSON)) as? [String: Any],
            object["kind"] == nil, object["replayCount"] == nil
        else { return nil }
        object["kind"] = kind.rawValue
        object["replayCount"] = replayCount
        addState(to: &object)
        // The first failure of a dead letter that failed again after a replay is the store's, not its
        // latest message's (every other time stays exactly as published).
        if let firstFailureAt, let published = record?.firstFailureAt, firstFailureAt < published - 0.001 {
            object["firstFailureAt"] = RFC3339.format(firstFailureAt)
        }
        if decrypted, record?.payloadEncoding == .sealed, !payloadIsSealed {
            if let text = String(validating: payload, as: UTF8.self) {
                (object["payload"], object["payloadEncoding"]) = (text, DeadLetterRecord.PayloadEncoding.utf8.rawValue)
            } else {
                (object["payload"], object["payloadEncoding"]) =
                    (Data(payload).base64EncodedString(), DeadLetterRecord.PayloadEncoding.base64.rawValue)
            }
        }
        var options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        if pretty { options.insert(.prettyPrinted) }
        return (try? JSONSerialization.data(withJSONObject: object, options: options)).map(Array.init)
    }

    /// Where the record stands in the store: `state`, and when it changed and the operator's note once
    /// it is not open.
    private func addState(to object: inout [String: Any]) {
        object["state"] = state.rawValue
        if let stateChangedAt, state != .open { object["stateChangedAt"] = RFC3339.format(stateChangedAt) }
        if let note { object["note"] = note }
    }

    /// The object `list --json` prints per dead letter: no payload, the call id masked (and in full as
    /// `callId` too when `revealCallIds`).
    public func listJSON(now: Date, revealCallIds: Bool = false) -> [UInt8] {
        Self.encode(Listed(self, now: now, revealCallIds: revealCallIds))
    }

    /// A JSON array of `listJSON` objects.
    public static func listJSON(_ letters: [DeadLetter], now: Date, revealCallIds: Bool = false) -> [UInt8] {
        Array("[".utf8)
            + letters.map { $0.listJSON(now: now, revealCallIds: revealCallIds) }.joined(separator: Array(",".utf8))
            + Array("]".utf8)
    }

    private static func encode(_ value: some Encodable, pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        // Strings, numbers and dates only: encoding cannot fail.
        return Array(try! encoder.encode(value))
    }

    /// Payload as the record carries it: UTF-8 text when it is, else base64.
    var payloadForJSON: (text: String, encoding: DeadLetterRecord.PayloadEncoding) {
        // An opened payload is shown as what it is; one still sealed, as the record carries it.
        if let record, record.payloadEncoding != .sealed || payloadIsSealed {
            return (record.payload, record.payloadEncoding)
        }
        if let text = String(validating: payload, as: UTF8.self) { return (text, .utf8) }
        return (Data(payload).base64EncodedString(), .base64)
    }

    private struct Exported: Encodable {
        var id: String
        var kind: Kind
        var reason: String
        var callId: String?
        var eventType: String?
        var eventId: String?
        var attempts: Int?
        var firstFailureAt: Date?
        var lastFailureAt: Date?
        var lastError: String
        var payload: String
        var payloadEncoding: DeadLetterRecord.PayloadEncoding
        var origin: DeadLetterRecord.Origin?
        var target: DeadLetterRecord.Target?
        var replayCount: Int
        var state: StoredDeadLetter.State
        var stateChangedAt: Date?
        var note: String?

        init(_ letter: DeadLetter) {
            id = letter.id
            kind = letter.kind
            reason = letter.reason
            callId = letter.callId
            eventType = letter.eventType
            eventId = letter.eventId
            attempts = letter.attempts
            firstFailureAt = letter.firstFailureAt
            lastFailureAt = letter.lastFailureAt
            lastError = letter.lastError
            (payload, payloadEncoding) = letter.payloadForJSON
            origin = letter.origin
            target = letter.target
            replayCount = letter.replayCount
            state = letter.state
            stateChangedAt = letter.state == .open ? nil : letter.stateChangedAt
            note = letter.note
        }
    }

    private struct Listed: Encodable {
        var id: String
        var kind: Kind
        var reason: String
        var callIdMasked: String?
        /// Only when asked for (`--reveal`).
        var callId: String?
        var eventType: String?
        var attempts: Int?
        var replayCount: Int
        var firstFailureAt: Date?
        var lastFailureAt: Date?
        var ageSeconds: Int?
        var lastError: String
        var origin: DeadLetterRecord.Origin?
        var target: DeadLetterRecord.Target?
        /// The store's order of arrival: give the last one as `after` for the next page.
        var sequence: Int64
        var copies: Int
        var state: StoredDeadLetter.State
        var stateChangedAt: Date?
        var note: String?

        init(_ letter: DeadLetter, now: Date, revealCallIds: Bool) {
            id = letter.id
            kind = letter.kind
            reason = letter.reason
            callIdMasked = letter.callId.map { Masking.mask($0) }
            callId = revealCallIds ? letter.callId : nil
            eventType = letter.eventType
            attempts = letter.attempts
            replayCount = letter.replayCount
            firstFailureAt = letter.firstFailureAt
            lastFailureAt = letter.lastFailureAt
            ageSeconds = letter.age(now: now).map { Int($0) }
            lastError = letter.lastError
            origin = letter.origin
            // The end of a delivery's path is the customer's external id: masked, as in the table.
            target = letter.target.map {
                .init(
                    method: $0.method,
                    url: DeadLetterText.maskingLastPathComponent($0.url),
                    lastStatus: $0.lastStatus
                )
            }
            sequence = letter.sequence
            copies = letter.copies
            state = letter.state
            stateChangedAt = letter.stateChangedAt
            note = letter.note
        }
    }
}
