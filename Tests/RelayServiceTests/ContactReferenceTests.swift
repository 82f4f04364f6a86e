import RelayCore
import RelayService
import Testing

/// How an operator names a contact on the command line, the API and the console.
@Suite("Contact references")
struct ContactReferenceTests {
    @Test("a number, an email, a CRM id, a messaging id with its platform, else a contact id")
    func parsing() {
        #expect(
            ContactReference(parsing: "+1 555 010 2001", defaultRegion: "US")
                == .identifier(ContactIdentifier(kind: .phone, raw: "+15550102001", defaultRegion: "US")!)
        )
        #expect(
            ContactReference(parsing: "Dana@Example.com")
                == .identifier(ContactIdentifier(kind: .email, raw: "dana@example.com")!)
        )
        #expect(
            ContactReference(parsing: "CRM:500245678")
                == .identifier(ContactIdentifier(kind: .external, raw: "CRM:500245678")!)
        )
        #expect(
            ContactReference(parsing: "WhatsApp:wa-dana-1")
                == .identifier(ContactIdentifier(kind: .messaging(.whatsapp), raw: "wa-dana-1")!)
        )
        #expect(ContactReference(parsing: "ct-1a25304b82ac5b5e97") == .id("ct-1a25304b82ac5b5e97"))
        // Not a platform the relay knows: a contact id, as before.
        #expect(ContactReference(parsing: "telegram:123") == .id("telegram:123"))
        #expect(ContactReference(parsing: "  ") == nil)
    }
}
