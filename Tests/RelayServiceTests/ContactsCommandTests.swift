import Foundation
import RelayTesting
import Testing

/// `identity-relay contacts` and `journey` run as an operator runs them: the built executable, on a
/// store of its own.
@Suite("contacts and journey commands")
struct ContactsCommandTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("contacts-cli-\(UUID().uuidString)")

    var environment: [String: String] {
        [
            "RELAY_STORE_PATH": directory.appendingPathComponent("relay.sqlite").path,
            "RELAY_PRIVACY_ENCRYPTION_KEY": "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy0hIT0=",
            "RELAY_IDENTITY_PHONE_HASH_KEY": "contacts-cli-test-key-0123456789abcdef",
        ]
    }

    func write(_ name: String, _ text: String) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test("import rejects bad rows with their line number and reason, imports the rest, and exits 1")
    func importErrors() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = try write(
            "contacts.csv",
            """
            name,phone,email,external_id,tier
            Ada Lovelace,+15550100001,ada@example.com,CRM:1,gold
            Bad Phone,12ab,,,
            Bad Email,+15550100002,bea@,,
            "Lovelace, Ada",,ada@example.com,,platinum
            Grace Hopper,+44 20 7946 0958,grace@example.com,,
            Two People,+15550100001,grace@example.com,,

            """
        )
        let result = try BuiltExecutable.run(["contacts", "import", csv], environment: environment)
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.contains("line 3: rejected: phone"))
        #expect(result.stdout.contains("is not a valid phone number"))
        #expect(result.stdout.contains("line 4: rejected: email"))
        #expect(result.stdout.contains("is not a valid email address"))
        #expect(result.stdout.contains("line 7: rejected: its identifiers belong to different contacts"))
        #expect(
            !result.stdout.contains("line 2:") && !result.stdout.contains("line 5:")
                && !result.stdout.contains("line 6:")
        )
        #expect(result.stdout.contains("6 rows: 2 created, 1 updated, 3 rejected"), "\(result)")
        #expect(result.stderr.contains("imported 6/6 rows"))

        // The JSON lines form reports the same way.
        let jsonl = try write(
            "more.jsonl",
            """
            {"name": "Linus", "phone": ["+15550100009"], "attributes": {"tier": "silver"}}
            {"name": 42}
            not json
            {"email": "linus@example.com", "externalId": "CRM:9"}
            """
        )
        let json = try BuiltExecutable.run(["contacts", "import", jsonl, "--json"], environment: environment)
        #expect(json.status == 1, "\(json)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["created"] as? Int == 2 && report["updated"] as? Int == 0)
        let rejected = try #require(report["rejected"] as? [[String: Any]])
        #expect(rejected.map { $0["line"] as? Int } == [2, 3])

        let shown = try BuiltExecutable.run(["contacts", "show", "ada@example.com"], environment: environment)
        #expect(shown.status == 0, "\(shown)")
        #expect(shown.stdout.contains("name        Lovelace, Ada") && shown.stdout.contains("tier=platinum"))
        #expect(shown.stdout.contains("identifier  external CRM:1"))
    }

    @Test(
        "create, a taken identifier, merge and unmerge refusals, an unknown contact and an empty journey: exit statuses"
    )
    func operations() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let created = try BuiltExecutable.run(
            ["contacts", "create", "--name", "Dee", "--phone", "+15550100004"],
            environment: environment
        )
        #expect(created.status == 0, "\(created)")
        let taken = try BuiltExecutable.run(
            ["contacts", "create", "--name", "Eve", "--phone", "+1 555 010 0004"],
            environment: environment
        )
        #expect(taken.status == 1)
        let deeId = created.stdout.replacingOccurrences(of: "created ", with: "").trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        #expect(taken.stderr.contains("already belongs to contact \(deeId)"))
        #expect(!taken.stderr.contains("5550100004"), "the number is masked")

        _ = try BuiltExecutable.run(
            ["contacts", "create", "--name", "Fay", "--email", "fay@example.com"],
            environment: environment
        )
        let curated = try BuiltExecutable.run(
            ["contacts", "merge", "fay@example.com", "--into", deeId],
            environment: environment
        )
        #expect(curated.status == 1 && curated.stderr.contains("both curated"))
        let myself = try BuiltExecutable.run(
            ["contacts", "merge", deeId, "--into", "+15550100004"],
            environment: environment
        )
        #expect(myself.status == 1 && myself.stderr.contains("itself"))
        let never = try BuiltExecutable.run(["contacts", "unmerge", "mg-never"], environment: environment)
        #expect(never.status == 1 && never.stderr.contains("no merge mg-never"))
        let missing = try BuiltExecutable.run(["journey", "ct-nobody"], environment: environment)
        #expect(missing.status == 1 && missing.stderr.contains("no contact ct-nobody"))
        let journey = try BuiltExecutable.run(["journey", "+15550100004", "--json"], environment: environment)
        #expect(journey.status == 0, "\(journey)")
        #expect(journey.stdout.contains("\"interactions\" : ["))

        let forgot = try BuiltExecutable.run(
            ["contacts", "forget", "--email", "fay@example.com"],
            environment: environment
        )
        #expect(forgot.status == 0, "\(forgot)")
        #expect(forgot.stdout.contains(": 1 contacts, 1 identifiers"))
        let gone = try BuiltExecutable.run(["contacts", "show", "fay@example.com"], environment: environment)
        #expect(gone.status == 1)
    }
}
