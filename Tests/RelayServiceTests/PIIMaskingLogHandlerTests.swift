import Logging
import RelayService
import RelayTesting
import Testing

@Suite("The log handler that masks personal data")
struct PIIMaskingLogHandlerTests {
    /// A logger whose lines go through the masking handler into memory.
    func maskedLogger() -> (Logger, RecordingLogHandler.Store) {
        let store = RecordingLogHandler.Store()
        let recording = RecordingLogHandler.logger(label: "test", store: store).handler
        return (Logger(label: "test") { _ in PIIMaskingLogHandler(wrapping: recording) }, store)
    }

    @Test(
        "phone numbers, emails and prefixed ids in a message keep only their last four characters",
        arguments: [
            ("caller +15550100071 rang", "caller ********0071 rang"),
            ("caller (202) 555-0143 rang", "caller ********0143 rang"),
            ("call 020 7946 0958 now", "call ********0958 now"),
            ("from jane.doe+vip@example.com.", "from ********.com."),
            ("mail 15550100071@sms.example.org", "mail ********.org"),
            ("linked CRM:003ABCDEF12 and ERP:ACC-778899", "linked CRM:*******EF12 and ERP:******8899"),
            ("{\"externalId\":\"PHONE:9f86d081884c7d65\"}", "{\"externalId\":\"PHONE:********7d65\"}"),
            // When in doubt it masks: a number glued to an id by a hyphen may well be a caller's.
            ("customer-15550100071", "customer-*******0071"),
            ("GET /crm/contacts?phone=%2B15550100071", "GET /crm/contacts?phone=********0071"),
        ]
    )
    func message(input: String, expected: String) {
        let (logger, store) = maskedLogger()
        logger.info("\(input)")
        #expect(store.all == ["info test: \(expected) "])
    }

    @Test("a line break or an escape sequence in a message or a value is written out, so one event stays one line")
    func controlCharacters() {
        let (logger, store) = maskedLogger()
        logger.warning(
            "dead-lettered\r\n\u{1B}[2Jforged",
            metadata: [
                "call.id.masked": "c1\nnote:   SAFE TO PURGE", "error": "bad byte \u{0} and \u{202E}",
                "nested": ["k": "a\nb"],
                "list": ["x\ty"],
            ]
        )
        let line = store.all.joined()
        for control in ["\n", "\r", "\u{1B}", "\u{0}", "\t", "\u{202E}"] {
            #expect(!line.contains(control), "\(control.unicodeScalars.map(\.value)) in \(line)")
        }
        #expect(line.contains("dead-lettered\\r\\n\\x1B[2Jforged"))
        #expect(line.contains("c1\\nnote:   SAFE TO PURGE"))
        #expect(line.contains("bad byte \\0 and \\u{202E}"))
    }

    @Test(
        "dates, times, short numbers and digits inside identifiers stay readable",
        arguments: [
            "at 2026-11-24T10:05:00Z", "took 1500 ms", "queue t1732456789123-relay.events",
            "event 550e8400-e29b-41d4-a716-4466554400ab", "call.id privacy-call-0001", "attempt 3 of 4",
        ]
    )
    func notPersonalData(input: String) {
        #expect(PIIScanner.mask(input) == input)
    }

    @Test("values under keys that name personal data are masked whole; names have no pattern to find")
    func personalDataKeys() {
        let (logger, store) = maskedLogger()
        logger.info(
            "profile",
            metadata: [
                "customer.name": "Ada Lovelace", "name": "Grace Hopper", "customerName": "Alan Turing",
                "email": "not-an-address", "queue.id": "support",
            ]
        )
        let line = store.all.joined()
        for name in ["Ada Lovelace", "Grace Hopper", "Alan Turing", "not-an-address"] {
            #expect(!line.contains(name), "\(name) is in \(line)")
        }
        #expect(line.contains("customer.name=********lace"))
        #expect(line.contains("customerName=*******ring"))
        #expect(line.contains("queue.id=support"))
    }

    @Test("metadata strings, nested values, handler metadata and errors are scanned too")
    func everyPlaceAValueCanHide() {
        var (logger, store) = maskedLogger()
        logger[metadataKey: "caller"] = "+447700900123"
        struct LookupFailed: Error, CustomStringConvertible {
            var description: String { "no contact for +15550100099" }
        }
        logger.error(
            "lookup failed",
            error: LookupFailed(),
            metadata: ["detail": .dictionary(["to": "bob@example.net"]), "list": .array(["+15550100098"])]
        )
        let line = store.all.joined()
        for secret in ["+447700900123", "bob@example.net", "+15550100098", "+15550100099"] {
            #expect(!line.contains(secret), "\(secret) is in \(line)")
        }
        #expect(line.contains("caller=********0123"))
        #expect(line.contains("error=no contact for ********0099"))
    }

    @Test("what a metadata provider adds is masked too")
    func provider() {
        let store = RecordingLogHandler.Store()
        var handler = PIIMaskingLogHandler(wrapping: RecordingLogHandler.logger(label: "test", store: store).handler)
        handler.metadataProvider = Logger.MetadataProvider { ["caller": "+15550100077"] }
        let logger = Logger(label: "test") { _ in handler }
        logger.info("x")
        #expect(store.all.joined().contains("caller=********0077"))
        #expect(!store.all.joined().contains("+15550100077"))
    }

    @Test("values already masked at the call site are left as they are")
    func alreadyMasked() {
        let (logger, store) = maskedLogger()
        logger.info("x", metadata: ["external.id.masked": "CRM:****1234"])
        #expect(store.all.joined().contains("external.id.masked=CRM:****1234"))
    }

    @Test("the level is the wrapped handler's")
    func level() {
        var (logger, store) = maskedLogger()
        logger.logLevel = .warning
        logger.info("hidden +15550100071")
        logger.warning("shown")
        #expect(store.all.count == 1)
    }
}
