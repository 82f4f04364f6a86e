import CRabbitMQ
import Glibc

/// Owns the C copies of strings, bodies and tables handed to rabbitmq-c for one call.
///
/// `amqp_cstring_bytes(swiftString)` would keep a pointer into a temporary: everything rabbitmq-c reads
/// must live in memory we own until the call returns. The arena frees it all at once when it goes away.
final class AMQPArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for allocation in allocations { free(allocation) }
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    func bytes(_ buffer: [UInt8]) -> amqp_bytes_t {
        // malloc(0) may return nil; one spare byte keeps every copy a valid pointer.
        let memory = malloc(buffer.count + 1)!
        allocations.append(memory)
        buffer.withUnsafeBytes { source in
            if let base = source.baseAddress { memcpy(memory, base, buffer.count) }
        }
        return relay_amqp_bytes(memory, buffer.count)
    }

    func table(_ entries: [String: AMQPHeaderValue]) -> amqp_table_t {
        guard !entries.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let memory = malloc(MemoryLayout<amqp_table_entry_t>.stride * entries.count)!
        allocations.append(memory)
        let table = memory.bindMemory(to: amqp_table_entry_t.self, capacity: entries.count)
        // Sorted keys make the wire form, and so every test of it, deterministic.
        for (index, (key, value)) in entries.sorted(by: { $0.key < $1.key }).enumerated() {
            let field: amqp_field_value_t
            switch value {
            case .string(let text), .other(let text): field = relay_amqp_field_utf8(bytes(text))
            case .int(let number): field = relay_amqp_field_i64(number)
            case .bool(let flag): field = relay_amqp_field_bool(flag ? 1 : 0)
            }
            (table + index).initialize(to: amqp_table_entry_t(key: bytes(key), value: field))
        }
        return amqp_table_t(num_entries: Int32(entries.count), entries: table)
    }
}

extension amqp_bytes_t {
    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }

    var string: String {
        String(decoding: array, as: UTF8.self)
    }
}

extension amqp_table_t {
    /// Reads the entries the relay understands; nested tables and arrays (the broker's `x-death`
    /// history) become `.other`, holding their text (`[{count: 21, queue: relay.events, …}]`).
    var headers: [String: AMQPHeaderValue] {
        guard num_entries > 0, let entries else { return [:] }
        var result: [String: AMQPHeaderValue] = [:]
        for index in 0..<Int(num_entries) {
            let entry = entries[index]
            result[entry.key.string] = entry.value.headerValue
        }
        return result
    }
}

extension amqp_field_value_t {
    var headerValue: AMQPHeaderValue {
        switch UInt32(kind) {
        case AMQP_FIELD_KIND_UTF8.rawValue, AMQP_FIELD_KIND_BYTES.rawValue: .string(value.bytes.string)
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: .bool(value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: .int(Int64(value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: .int(Int64(value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: .int(Int64(value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: .int(Int64(value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: .int(Int64(value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: .int(Int64(value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: .int(value.i64)
        case AMQP_FIELD_KIND_U64.rawValue, AMQP_FIELD_KIND_TIMESTAMP.rawValue:
            .int(Int64(truncatingIfNeeded: value.u64))
        case AMQP_FIELD_KIND_ARRAY.rawValue, AMQP_FIELD_KIND_TABLE.rawValue: .other(nestedDescription(depth: 0))
        default: .other("<field kind \(UnicodeScalar(UInt8(kind)))>")
        }
    }

    /// A nested value as text, for the record: tables with sorted keys, at most a few levels deep (a
    /// publisher can nest without end; the broker's `x-death` is two).
    func nestedDescription(depth: Int) -> String {
        guard depth < 4 else { return "…" }
        switch UInt32(kind) {
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            let array = value.array
            guard array.num_entries > 0, let entries = array.entries else { return "[]" }
            return "["
                + (0..<Int(array.num_entries)).map { entries[$0].nestedDescription(depth: depth + 1) }
                .joined(separator: ", ") + "]"
        case AMQP_FIELD_KIND_TABLE.rawValue:
            let table = value.table
            guard table.num_entries > 0, let entries = table.entries else { return "{}" }
            let pairs = (0..<Int(table.num_entries)).map { index in
                (entries[index].key.string, entries[index].value.nestedDescription(depth: depth + 1))
            }
            return "{" + pairs.sorted { $0.0 < $1.0 }.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "}"
        default:
            return headerValue.description
        }
    }
}
