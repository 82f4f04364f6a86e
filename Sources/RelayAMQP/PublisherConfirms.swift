/// The publish channel's confirm bookkeeping: which publish each sequence number stands for, and what
/// the broker's `basic.ack` and `basic.nack` settle.
///
/// In confirm mode the broker numbers a channel's publishes 1, 2, 3… and confirms each once by its
/// number, not necessarily in order; `multiple` settles every outstanding one up to that number. A
/// message it could not route comes back (`basic.return`) before its ack, and the ack then fails it.
/// No I/O here: the loop thread publishes, reads the frames and resumes the callers with the outcomes.
struct PublisherConfirms<Publish> {
    /// How the broker settled one publish.
    enum Outcome: Hashable {
        /// Acked: the broker has taken it.
        case confirmed
        /// Acked after the broker returned it: no queue took it. The return's code and text.
        case unroutable(String)
        /// Nacked: the broker refused it.
        case refused
    }

    private struct Entry {
        var publish: Publish
        var messageId: String
    }

    /// Published on the current connection, waiting for the broker's confirm, by sequence number.
    private var unconfirmed: [UInt64: Entry] = [:]
    /// The sequence number the broker gives the channel's next publish.
    private(set) var nextSequence: UInt64 = 1
    /// Message ids the broker returned as unroutable; their confirm follows and fails them.
    private var returned: [String: String] = [:]

    /// Publishes still waiting for their confirm.
    var outstandingCount: Int { unconfirmed.count }

    /// A publish went out on the channel; returns the sequence number its confirm will carry.
    @discardableResult
    mutating func published(_ publish: Publish, messageId: String) -> UInt64 {
        let sequence = nextSequence
        unconfirmed[sequence] = Entry(publish: publish, messageId: messageId)
        nextSequence += 1
        return sequence
    }

    /// The broker returned the message with this id (`basic.return`); its ack is on its way.
    mutating func returned(messageId: String, reason: String) {
        returned[messageId] = reason
    }

    /// A `basic.ack` (`acked`) or `basic.nack` for `tag`: the publishes it settles, in publish order.
    /// A tag already settled, or never published, settles nothing.
    mutating func confirm(_ tag: UInt64, multiple: Bool, acked: Bool) -> [(publish: Publish, outcome: Outcome)] {
        let sequences = multiple ? unconfirmed.keys.filter { $0 <= tag } : [tag]
        var settled: [(publish: Publish, outcome: Outcome)] = []
        for sequence in sequences.sorted() {
            guard let entry = unconfirmed.removeValue(forKey: sequence) else { continue }
            let outcome: Outcome
            if !acked {
                outcome = .refused
            } else if let reason = returned.removeValue(forKey: entry.messageId) {
                outcome = .unroutable(reason)
            } else {
                outcome = .confirmed
            }
            settled.append((publish: entry.publish, outcome: outcome))
        }
        return settled
    }

    /// Stops waiting for the publishes that match: their confirm cannot come (their exchange is
    /// missing, so the broker closed the channel). In publish order.
    mutating func giveUp(where matches: (Publish) -> Bool) -> [Publish] {
        let sequences = unconfirmed.filter { matches($0.value.publish) }.keys.sorted()
        return sequences.compactMap { unconfirmed.removeValue(forKey: $0)?.publish }
    }

    /// The connection is gone, and with it every confirm still to come: the publishes that waited for
    /// one, in publish order, for the caller to publish again or fail. The next connection's channel
    /// numbers its publishes from 1 again.
    mutating func connectionLost() -> [Publish] {
        let outstanding = unconfirmed.sorted { $0.key < $1.key }.map(\.value.publish)
        unconfirmed.removeAll()
        returned.removeAll()
        nextSequence = 1
        return outstanding
    }
}
