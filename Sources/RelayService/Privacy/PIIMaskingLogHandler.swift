public import Logging
import RelayCore

/// Wraps the real log handler so that no log line carries a phone number, an email address, a name or a
/// full external id, whatever a call site passed (DESIGN.md, "Privacy").
///
/// Two nets, because names cannot be found by pattern and numbers cannot be found by key:
/// - values under metadata keys that name personal data (`name`, `customer.name`, `email`, `fromNumber`…)
///   are masked whole;
/// - the message and every metadata string are scanned for email addresses, phone-number-like digit runs
///   and `CRM:`/`ERP:`/`PHONE:` ids, which keep their last four characters (`Masking.mask`).
///
/// It sits on every log line, so the scan is one pass over the UTF-8 bytes that allocates only when it
/// finds something to mask. Values under `*.masked` keys were masked at the call site and are not scanned.
/// Every string, masked or not, has its control characters escaped (`PrintSafe`): one event, one line.
public struct PIIMaskingLogHandler: LogHandler {
    public var upstream: any LogHandler
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(wrapping upstream: any LogHandler) {
        self.upstream = upstream
        // The upstream's own metadata and provider are taken over, so what they add is masked too.
        self.metadata = upstream.metadata
        self.metadataProvider = upstream.metadataProvider
        self.upstream.metadata = [:]
        // Handlers without provider support complain when it is set at all.
        if upstream.metadataProvider != nil { self.upstream.metadataProvider = nil }
    }

    public var logLevel: Logger.Level {
        get { upstream.logLevel }
        set { upstream.logLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata) { $1 }
        if let own = event.metadata { merged.merge(own) { $1 } }
        if let error = event.error {
            // An error's description can quote what failed to parse: it goes through the same scan.
            if merged[Self.errorKey] == nil { merged[Self.errorKey] = .string("\(error)") }
            event.error = nil
        }
        event.metadata = merged.isEmpty ? nil : Self.mask(merged)
        // A value with a line break would forge a second record in a line-oriented log, an escape
        // sequence would act on the terminal tailing it: both are written out as visible escapes.
        event.message = Logger.Message(stringLiteral: PrintSafe.escape(PIIScanner.mask(event.message.description)))
        upstream.log(event: event)
    }

    static let errorKey = "error"

    /// A value already masked by its writer, with only its control characters escaped.
    static func printSafe(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(PrintSafe.escape(text))
        case .stringConvertible(let convertible): .string(PrintSafe.escape(convertible.description))
        case .dictionary(let dictionary): .dictionary(dictionary.mapValues(printSafe))
        case .array(let values): .array(values.map(printSafe))
        }
    }

    static func mask(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var masked = metadata
        for (key, value) in metadata {
            masked[key] = mask(value, key: key)
        }
        return masked
    }

    static func mask(_ value: Logger.Metadata.Value, key: String) -> Logger.Metadata.Value {
        if key.hasSuffix(".masked") { return printSafe(value) }
        let wholeValue = PIIScanner.keyNamesPersonalData(key)
        switch value {
        case .string(let text):
            return .string(PrintSafe.escape(wholeValue ? Masking.mask(text) : PIIScanner.mask(text)))
        case .stringConvertible(let convertible):
            let text = convertible.description
            return .string(PrintSafe.escape(wholeValue ? Masking.mask(text) : PIIScanner.mask(text)))
        case .dictionary(let dictionary):
            var result: Logger.Metadata = [:]
            for (innerKey, innerValue) in dictionary {
                result[innerKey] =
                    wholeValue
                    ? .string(PrintSafe.escape(Masking.mask("\(innerValue)"))) : mask(innerValue, key: innerKey)
            }
            return .dictionary(result)
        case .array(let values):
            return .array(
                values.map { wholeValue ? .string(PrintSafe.escape(Masking.mask("\($0)"))) : mask($0, key: key) }
            )
        }
    }
}

/// Finds personal data in free text by its shape. Pure, so it is tested on its own.
public enum PIIScanner {
    /// The last component of a metadata key (after the last `.`), lowercased with `_` and `-` removed,
    /// that means "the value is personal data".
    static let personalDataKeys: Set<String> = [
        "name", "customername", "fullname", "firstname", "lastname", "displayname", "contactname",
        "email", "emailaddress", "fromaddress", "toaddress",
        "phone", "phonenumber", "number", "fromnumber", "tonumber", "msisdn", "e164", "callernumber",
        "customernumber", "messagingid", "address",
    ]

    public static func keyNamesPersonalData(_ key: String) -> Bool {
        let last = key.split(separator: ".").last.map(String.init) ?? key
        var normalized = ""
        for character in last where character != "_" && character != "-" {
            normalized.append(contentsOf: character.lowercased())
        }
        return personalDataKeys.contains(normalized)
    }

    /// Digit runs this long are phone-number-like (E.164 numbers have at most 15 digits; the shortest
    /// subscriber numbers worth hiding have 7).
    static let phoneDigits = 7...15
    static let prefixes: [[UInt8]] = ["CRM:", "ERP:", "PHONE:"].map { Array($0.utf8) }

    /// `text` with every email address, phone-number-like digit run and prefixed external id masked to its
    /// last four characters; `text` itself (no copy) when there is nothing to mask.
    public static func mask(_ text: String) -> String {
        var text = text
        // Scanned in place (native strings are contiguous UTF-8): a line with nothing to mask costs no copy.
        let spans = text.withUTF8 { findSpans($0) }
        guard !spans.isEmpty else { return text }
        var utf8 = Array(text.utf8)
        // Replace from the end, so earlier offsets stay valid.
        for span in spans.reversed() {
            let original = String(decoding: utf8[span], as: UTF8.self)
            utf8.replaceSubrange(span, with: Array(Masking.mask(original).utf8))
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// The byte ranges to mask, in order and not overlapping.
    static func findSpans(_ bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var spans: [Range<Int>] = []
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            let startsWord = index == 0 || !isWordByte(bytes[index - 1])
            if byte == UInt8(ascii: "@") {
                if let span = emailSpan(bytes, at: index) {
                    // An email's local part was scanned over before the `@` was seen: drop spans inside it.
                    while let last = spans.last, last.upperBound > span.lowerBound { spans.removeLast() }
                    spans.append(span)
                    index = span.upperBound
                    continue
                }
            } else if startsWord, isUppercaseLetter(byte),
                let prefix = prefixes.first(where: { hasPrefix(bytes, $0, at: index) })
            {
                let valueStart = index + prefix.count
                var end = valueStart
                while end < count, isIdentifierByte(bytes[end]) { end += 1 }
                if end > valueStart {
                    spans.append(valueStart..<end)
                    index = end
                    continue
                }
            } else if byte == UInt8(ascii: "%"), index + 3 < count, bytes[index + 1] == UInt8(ascii: "2"),
                bytes[index + 2] | 0x20 == UInt8(ascii: "b"), isDigit(bytes[index + 3]),
                let span = phoneSpan(bytes, at: index + 3)
            {
                // `%2B` is a `+` in a URL's query: `?phone=%2B15550100071`.
                spans.append(index..<span.upperBound)
                index = span.upperBound
                continue
            } else if startsWord, byte == UInt8(ascii: "+") || byte == UInt8(ascii: "(") || isDigit(byte) {
                if let span = phoneSpan(bytes, at: index) {
                    spans.append(span)
                    index = span.upperBound
                    continue
                }
            }
            // Skip the rest of a word: digits inside an identifier (a UUID, a queue name) are not a number.
            if isWordByte(byte) {
                while index < count, isWordByte(bytes[index]) { index += 1 }
            } else {
                index += 1
            }
        }
        return spans
    }

    private static func phoneSpan(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Range<Int>? {
        var index = start
        var digits = 0
        var lastDigitEnd = start
        var groups: [Int] = []
        var currentGroup = 0
        var dashesOnly = true
        if bytes[index] == UInt8(ascii: "+") { index += 1 }
        while index < bytes.count {
            let byte = bytes[index]
            if isDigit(byte) {
                digits += 1
                currentGroup += 1
                index += 1
                lastDigitEnd = index
            } else if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "(") || byte == UInt8(ascii: ")")
            {
                // One separator between digit groups (`) ` after an area code is the one pair allowed).
                let next = index + 1 < bytes.count ? bytes[index + 1] : 0
                let afterNext = index + 2 < bytes.count ? bytes[index + 2] : 0
                let continues =
                    isDigit(next) || next == UInt8(ascii: "(")
                    || (byte == UInt8(ascii: ")") && next == UInt8(ascii: " ") && isDigit(afterNext))
                guard continues else { break }
                if byte != UInt8(ascii: "-") { dashesOnly = false }
                if currentGroup > 0 { groups.append(currentGroup) }
                currentGroup = 0
                index += 1
            } else {
                break
            }
        }
        if currentGroup > 0 { groups.append(currentGroup) }
        guard phoneDigits.contains(digits) else { return nil }
        // A number glued to a word (`5551234x`) is part of an identifier.
        if lastDigitEnd < bytes.count, isWordByte(bytes[lastDigitEnd]) { return nil }
        // Dates (2026-11-24) and times are digit runs too: they are not personal data.
        if dashesOnly && groups == [4, 2, 2] { return nil }
        if lastDigitEnd < bytes.count,
            bytes[lastDigitEnd] == UInt8(ascii: ":") || bytes[lastDigitEnd] == UInt8(ascii: "T")
        {
            if groups.first == 4 { return nil }
        }
        return start..<lastDigitEnd
    }

    private static func emailSpan(_ bytes: UnsafeBufferPointer<UInt8>, at: Int) -> Range<Int>? {
        var start = at
        while start > 0, isEmailLocalByte(bytes[start - 1]) { start -= 1 }
        var end = at + 1
        var sawDot = false
        while end < bytes.count, isDomainByte(bytes[end]) {
            if bytes[end] == UInt8(ascii: ".") { sawDot = true }
            end += 1
        }
        // A trailing dot ends the sentence, not the domain.
        while end > at + 1, bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
        guard start < at, end > at + 1, sawDot else { return nil }
        return start..<end
    }

    private static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: [UInt8], at index: Int) -> Bool {
        guard index + prefix.count <= bytes.count else { return false }
        for offset in 0..<prefix.count where bytes[index + offset] != prefix[offset] { return false }
        return true
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    @inline(__always) static func isUppercaseLetter(_ byte: UInt8) -> Bool { byte >= 0x41 && byte <= 0x5A }
    @inline(__always) static func isLetter(_ byte: UInt8) -> Bool {
        isUppercaseLetter(byte) || (byte >= 0x61 && byte <= 0x7A)
    }
    @inline(__always) static func isWordByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || isLetter(byte) || byte == UInt8(ascii: "_") || byte >= 0x80
    }
    /// What an external id's value is made of: everything up to whitespace, a quote or JSON punctuation.
    @inline(__always) static func isIdentifierByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "'") && byte != UInt8(ascii: ",")
            && byte != UInt8(ascii: "}") && byte != UInt8(ascii: "]") && byte != UInt8(ascii: ")") && byte != 0x7F
    }
    @inline(__always) static func isEmailLocalByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || isLetter(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "%")
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte >= 0x80
    }
    @inline(__always) static func isDomainByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || isLetter(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte >= 0x80
    }
}
