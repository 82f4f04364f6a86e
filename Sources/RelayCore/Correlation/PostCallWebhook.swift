import Crypto
public import Foundation

/// `POST {crm.postCallWebhookUrl}` once an interaction is complete (DESIGN.md, "Outputs").
public struct PostCallWebhook: Sendable, Hashable {
    /// The Standard Webhooks `webhook-id`: derived from the call, so every retry and every redelivery
    /// carries the same one, and a receiver can drop what it has already seen.
    public var id: String
    /// When the call completed, in seconds since the epoch. (The `webhook-timestamp` header is each
    /// attempt's own time: receivers check it against their clock.)
    public var completedAt: Int64
    public var payload: Payload

    public struct Payload: Sendable, Hashable, Codable {
        public var callId: String
        public var externalId: String?
        public var channel: Channel?
        public var direction: CallDirection?
        public var startedAt: String?
        public var endedAt: String?
        public var handleTimeSeconds: Int?
        public var afterCallWorkSeconds: Int?
        public var wrapUpCode: String?
        public var disconnectType: String?
        public var queueId: String?
        public var agentId: String?
    }

    public init(completing interaction: Interaction, at completedAt: Date) {
        id = Self.webhookID(callId: interaction.callId)
        self.completedAt = Int64(completedAt.timeIntervalSince1970.rounded(.down))
        payload = Payload(
            callId: interaction.callId,
            externalId: interaction.externalId,
            channel: interaction.channel,
            direction: interaction.direction,
            startedAt: interaction.startedAt.map(RFC3339.format),
            endedAt: interaction.endedAt.map(RFC3339.format),
            handleTimeSeconds: interaction.handleTimeSeconds,
            afterCallWorkSeconds: interaction.afterCallWorkSeconds,
            wrapUpCode: interaction.wrapUpCode,
            disconnectType: interaction.disconnectType,
            queueId: interaction.queueId,
            agentId: interaction.agentId
        )
    }

    public static func webhookID(callId: String) -> String {
        let digest = SHA256.hash(data: Array("post-call:\(callId)".utf8))
        return "msg_" + Hex.lowercase(digest.prefix(16))
    }

    /// The body as sent: sorted keys, absent values as explicit nulls, so receivers see every field.
    public func body() -> [UInt8] {
        Array(try! CustomerUpdate.bodyEncoder.encode(NullPreserving(payload)))
    }

    /// Encodes nil optionals as `null` instead of leaving the key out.
    private struct NullPreserving: Encodable {
        let payload: Payload
        init(_ payload: Payload) { self.payload = payload }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Payload.CodingKeys.self)
            try container.encode(payload.callId, forKey: .callId)
            try container.encode(payload.externalId, forKey: .externalId)
            try container.encode(payload.channel, forKey: .channel)
            try container.encode(payload.direction, forKey: .direction)
            try container.encode(payload.startedAt, forKey: .startedAt)
            try container.encode(payload.endedAt, forKey: .endedAt)
            try container.encode(payload.handleTimeSeconds, forKey: .handleTimeSeconds)
            try container.encode(payload.afterCallWorkSeconds, forKey: .afterCallWorkSeconds)
            try container.encode(payload.wrapUpCode, forKey: .wrapUpCode)
            try container.encode(payload.disconnectType, forKey: .disconnectType)
            try container.encode(payload.queueId, forKey: .queueId)
            try container.encode(payload.agentId, forKey: .agentId)
        }
    }
}

extension PostCallWebhook.Payload {
    enum CodingKeys: String, CodingKey {
        case callId, externalId, channel, direction, startedAt, endedAt, handleTimeSeconds, afterCallWorkSeconds
        case wrapUpCode, disconnectType, queueId, agentId
    }
}
