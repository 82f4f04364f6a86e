import Foundation
import RelayCore
import Testing

@testable import RelayStore

/// The state's hand-written JSON must be the JSON `JSONEncoder` writes, field for field, and read
/// back to the same interaction: a field added to `Interaction` and not to the writer fails here.
@Suite("Interaction state coding")
struct InteractionStateCodingTests {
    static func full(_ seconds: Double) -> Interaction {
        var interaction = Interaction(
            callId: "call/\"quoted\"\\ \u{1}\n\té",
            firstSeenAt: Date(timeIntervalSinceReferenceDate: seconds)
        )
        interaction.status = .ended
        interaction.channel = .chat
        interaction.direction = .outbound
        interaction.startedAt = Date(timeIntervalSinceReferenceDate: seconds + 0.123456789)
        interaction.endedAt = Date(timeIntervalSinceReferenceDate: seconds + 60)
        interaction.wrappedUpAt = Date(timeIntervalSinceReferenceDate: seconds + 61.5)
        interaction.queueId = "queue-1"
        interaction.agentId = "agent-ß"
        interaction.wrapUpCode = "SALE"
        interaction.disconnectType = "peer"
        interaction.customerId = "customer-1"
        interaction.externalId = "CRM:500245678"
        interaction.phoneKey = "k/ey+=="
        interaction.startEventId = "e1"
        interaction.endEventId = "e2"
        interaction.wrapUpEventId = "e3"
        interaction.seenEventIds = ["e1", "e2", "e3"]
        interaction.supersededEventIds = ["e0"]
        interaction.pendingContextUpdates = [.init(eventId: "e4", newExternalId: "ERP:1", reason: "agent said \"so\"")]
        interaction.timers = [
            .init(kind: .wrapUpGrace, dueAt: Date(timeIntervalSinceReferenceDate: seconds + 120)),
            .init(kind: .endNeverCame, dueAt: Date(timeIntervalSinceReferenceDate: seconds + 3600.25)),
        ]
        return interaction
    }

    static var samples: [Interaction] {
        var minimal = Interaction(callId: "c", firstSeenAt: Date(timeIntervalSinceReferenceDate: 0))
        minimal.pendingContextUpdates = []
        return [
            full(786_000_000), full(786_000_000.000_001), full(-5), full(1e-7), minimal,
            Interaction(callId: "", firstSeenAt: Date(timeIntervalSinceReferenceDate: 1)),
        ]
    }

    @Test("every field of the fixture is set, so every field is compared")
    func fixtureSetsEveryField() {
        for child in Mirror(reflecting: Self.full(1)).children {
            if case Optional<Any>.none = child.value as Any? { Issue.record("unset: \(child.label ?? "?")") }
            let mirror = Mirror(reflecting: child.value)
            if mirror.displayStyle == .optional, mirror.children.isEmpty { Issue.record("nil: \(child.label ?? "?")") }
        }
    }

    @Test("byte for byte the JSON JSONEncoder writes, and the same interaction back")
    func sameAsFoundation() throws {
        for interaction in Self.samples {
            let written = InteractionStateCoding.written(interaction)
            let foundation = try InteractionStateCoding.encodedByFoundation(interaction)
            let ours = try #require(try JSONSerialization.jsonObject(with: Data(written)) as? NSDictionary)
            let theirs = try #require(try JSONSerialization.jsonObject(with: foundation) as? NSDictionary)
            #expect(ours == theirs)
            #expect(String(decoding: written, as: UTF8.self) == String(decoding: foundation, as: UTF8.self))
            #expect(try InteractionStateCoding.decode(Data(written), callId: interaction.callId) == interaction)
        }
    }
}
