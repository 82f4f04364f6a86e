package import Foundation
package import RelayCore

/// How a time is held in a column: REAL seconds since 1970, readable by operators with
/// `datetime(x, 'unixepoch', 'subsec')`. A Double holds today's times to well under a microsecond.
package enum ColumnTime {
    package static func value(_ date: Date) -> Double { date.timeIntervalSince1970 }
    package static func value(_ date: Date?) -> Double? { date.map(value) }
    package static func date(_ value: Double) -> Date { Date(timeIntervalSince1970: value) }
    /// The date as it comes back from a column, so a value returned at commit equals the one read later.
    package static func stored(_ date: Date) -> Date { self.date(value(date)) }
}

/// The JSON of an `Interaction`, as kept in `interaction.state`.
///
/// Dates are written as seconds since the reference date (2001), the `Double` a `Date` holds: Swift writes
/// the shortest digits that read back to the same `Double`, so the state round-trips exactly, where
/// milliseconds or seconds since 1970 would round. Keys are sorted so the same state gives the same bytes.
package enum InteractionStateCoding {
    // One configured coder each, shared: every event encodes and decodes a state, and Foundation's
    // coders are safe to share once configured.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.timeIntervalSinceReferenceDate)
        }
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            Date(timeIntervalSinceReferenceDate: try decoder.singleValueContainer().decode(Double.self))
        }
        return decoder
    }()

    package static func encode(_ interaction: Interaction) throws -> Data {
        var json = JSONWriter(escapesSlashes: true, capacity: 512)
        write(interaction, into: &json)
        if json.wroteNonFinite {
            throw StoreError(.corruptState, "call \(interaction.callId) has a time that is not a finite number")
        }
        return Data(json.bytes)
    }

    /// What `JSONEncoder` (sorted keys, dates as reference-date seconds) writes for `interaction`,
    /// written field by field: every event writes a state, and `Codable`'s containers cost several times
    /// the bytes. `InteractionStateCodingTests` holds the two to the same JSON.
    static func written(_ interaction: Interaction) -> [UInt8] {
        var json = JSONWriter(escapesSlashes: true, capacity: 512)
        write(interaction, into: &json)
        return json.bytes
    }

    private static func write(_ interaction: Interaction, into json: inout JSONWriter) {
        func date(_ key: StaticString, _ value: Date?) {
            guard let value else { return }
            json.key(key)
            json.double(value.timeIntervalSinceReferenceDate)
        }
        func string(_ key: StaticString, _ value: String?) {
            guard let value else { return }
            json.key(key)
            json.string(value)
        }
        func strings(_ key: StaticString, _ values: [String]) {
            json.key(key)
            json.beginArray()
            for value in values { json.string(value) }
            json.endArray()
        }
        json.beginObject()
        string("agentId", interaction.agentId)
        string("callId", interaction.callId)
        string("channel", interaction.channel?.rawValue)
        string("customerId", interaction.customerId)
        string("direction", interaction.direction?.rawValue)
        string("disconnectType", interaction.disconnectType)
        string("endEventId", interaction.endEventId)
        date("endedAt", interaction.endedAt)
        string("externalId", interaction.externalId)
        date("firstSeenAt", interaction.firstSeenAt)
        if let pending = interaction.pendingContextUpdates {
            json.key("pendingContextUpdates")
            json.beginArray()
            for update in pending {
                json.beginObject()
                string("eventId", update.eventId)
                string("newExternalId", update.newExternalId)
                string("reason", update.reason)
                json.endObject()
            }
            json.endArray()
        }
        string("phoneKey", interaction.phoneKey)
        string("queueId", interaction.queueId)
        strings("seenEventIds", interaction.seenEventIds)
        string("startEventId", interaction.startEventId)
        date("startedAt", interaction.startedAt)
        string("status", interaction.status.rawValue)
        strings("supersededEventIds", interaction.supersededEventIds)
        json.key("timers")
        json.beginArray()
        for timer in interaction.timers {
            json.beginObject()
            date("dueAt", timer.dueAt)
            string("kind", timer.kind.rawValue)
            json.endObject()
        }
        json.endArray()
        string("wrapUpCode", interaction.wrapUpCode)
        string("wrapUpEventId", interaction.wrapUpEventId)
        date("wrappedUpAt", interaction.wrappedUpAt)
        json.endObject()
    }

    /// The `Codable` path `written` stands in for, for the tests that hold them to one JSON.
    static func encodedByFoundation(_ interaction: Interaction) throws -> Data {
        try encoder.encode(interaction)
    }

    package static func decode(_ data: Data, callId: String) throws(StoreError) -> Interaction {
        do {
            return try decoder.decode(Interaction.self, from: data)
        } catch {
            throw StoreError(.corruptState, "the stored state of call \(callId) is not a valid interaction: \(error)")
        }
    }
}
