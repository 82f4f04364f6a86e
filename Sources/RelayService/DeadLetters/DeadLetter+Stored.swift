public import Foundation
public import RelayAMQP
public import RelayCore
public import RelayStore

extension StoredDeadLetter {
    /// A message of `relay.dead-letters` as the store keeps it: read the way the tools read it, with its
    /// payload as the record carries it (a sealed payload stays sealed), the message itself and its headers.
    public init(message delivery: Delivery, names: RelayNames, now: Date) {
        let letter = DeadLetter(message: delivery, names: names)
        self.init(
            id: letter.id,
            kind: letter.kind.rawValue,
            reason: letter.reason,
            callId: letter.callId,
            eventType: letter.eventType,
            eventId: letter.eventId,
            attempts: letter.attempts,
            firstFailureAt: letter.firstFailureAt,
            lastFailureAt: letter.lastFailureAt,
            lastError: letter.lastError,
            target: letter.target,
            origin: letter.origin,
            replayCount: letter.replayCount,
            payloadEncoding: letter.record?.payloadEncoding.rawValue ?? "base64",
            payload: letter.payload,
            message: delivery.body,
            headers: delivery.headers.mapValues(StoredHeaderValue.init),
            routingKey: delivery.routingKey,
            recordedAt: now
        )
    }
}

extension StoredHeaderValue {
    init(_ value: AMQPHeaderValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .int(let number): self = .int(number)
        case .bool(let flag): self = .bool(flag)
        case .other(let text): self = .other(text)
        }
    }
}

extension AMQPHeaderValue {
    init(_ value: StoredHeaderValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .int(let number): self = .int(number)
        case .bool(let flag): self = .bool(flag)
        case .other(let text): self = .other(text)
        }
    }
}

extension DeadLetter {
    /// A stored dead letter as the tools present it. A whole row (`deadLetter(id:)`) is read again as the
    /// message it was, so show, export and replay see exactly what was published; a listed row (no
    /// payload, no message) carries the fields a table and `list --json` need.
    public init(stored: StoredDeadLetter, names: RelayNames, cipher: FieldCipher? = nil) {
        if !stored.message.isEmpty {
            let delivery = Delivery(
                deliveryTag: 0,
                connectionGeneration: 0,
                exchange: names.deadLetterExchange,
                routingKey: stored.routingKey,
                redelivered: false,
                body: stored.message,
                headers: stored.headers.mapValues(AMQPHeaderValue.init),
                messageId: nil,
                consumerTag: ""
            )
            self.init(message: delivery, names: names, cipher: cipher)
        } else {
            self.init(
                message: Delivery(
                    deliveryTag: 0,
                    connectionGeneration: 0,
                    exchange: names.deadLetterExchange,
                    routingKey: stored.routingKey,
                    redelivered: false,
                    body: [],
                    headers: [:],
                    messageId: nil,
                    consumerTag: ""
                ),
                names: names
            )
            kind = Kind(rawValue: stored.kind) ?? .unreadable
            reason = stored.reason
            callId = stored.callId
            eventType = stored.eventType
            eventId = stored.eventId
            attempts = stored.attempts
            firstFailureAt = stored.firstFailureAt
            lastFailureAt = stored.lastFailureAt
            lastError = stored.lastError
            origin = stored.origin
            target = stored.target
            payload = []
            payloadIsSealed = stored.payloadEncoding == DeadLetterRecord.PayloadEncoding.sealed.rawValue
        }
        // The store's word on what the message alone cannot say: its id as recorded, how often it was
        // replayed, how many messages carried it, and where it stands.
        id = stored.id
        replayCount = stored.replayCount
        copies = stored.copies
        state = stored.state
        stateChangedAt = stored.stateChangedAt
        note = stored.note
        sequence = stored.sequence
        // A dead letter that failed again after a replay carries its latest failure's message; its first
        // failure is the store's, which keeps the earliest.
        // (Earlier by more than the rounding of a time through a column.)
        if let first = stored.firstFailureAt, first < (firstFailureAt ?? .distantFuture) - 0.001 {
            firstFailureAt = first
        }
    }
}
