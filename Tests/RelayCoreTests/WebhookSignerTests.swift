import Foundation
import RelayCore
import Testing

@Suite("Standard Webhooks signatures for post-call webhooks")
struct WebhookSignerTests {
    // The reference vector of the Standard Webhooks libraries, copied verbatim from
    // standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py
    // (test_sign_function) and libraries/javascript/src/webhook.test.ts ("sign function works").
    static let referenceSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let referenceID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let referenceTimestamp: Int64 = 1_614_265_330
    static let referencePayload = #"{"test": 2432232314}"#
    static let referenceSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    static func referenceSigner() throws -> WebhookSigner {
        try #require(WebhookSigner(secret: referenceSecret))
    }

    static func date(_ seconds: Int64) -> Date {
        Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    @Test("signs the Standard Webhooks reference vector")
    func referenceVector() throws {
        let signer = try Self.referenceSigner()
        #expect(
            signer.signature(
                id: Self.referenceID,
                timestamp: Self.referenceTimestamp,
                body: Array(Self.referencePayload.utf8)
            )
                == Self.referenceSignature
        )
    }

    @Test("matches an independent HMAC over a non-ASCII UTF-8 body")
    func independentVector() throws {
        // Key: python3 -c 'import secrets,base64;print(base64.b64encode(secrets.token_bytes(32)).decode())'
        // Signature and body bytes, from Python's standard library alone:
        // python3 -c 'import hmac,hashlib,base64;k=base64.b64decode("oEkfdZ+42P5Gn5RkzmAxe+6wfKQVoXmZruZkMNmHvVg=");b="{\"caller\":\"Zo\u00eb \u00c5ngstr\u00f6m\",\"note\":\"\u901a\u8bdd \u260e \U0001f3a7\"}".encode();print(len(b), b.hex());print("v1,"+base64.b64encode(hmac.new(k,b"msg_2Xr7QeVn0cJ8pLm4.1767225600."+b,hashlib.sha256).digest()).decode())'
        let signer = try #require(WebhookSigner(secret: "whsec_oEkfdZ+42P5Gn5RkzmAxe+6wfKQVoXmZruZkMNmHvVg="))
        let body = Array(
            "{\"caller\":\"Zo\u{EB} \u{C5}ngstr\u{F6}m\",\"note\":\"\u{901A}\u{8BDD} \u{260E} \u{1F3A7}\"}".utf8
        )
        // The same bytes Python signed (its `b.hex()`), so no normalisation slipped in on either side.
        #expect(
            body.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
                == "7b2263616c6c6572223a225a6fc3ab20c3856e67737472c3b66d222c226e6f7465223a22e9809ae8af9d20e2988e20f09f8ea7227d"
        )
        #expect(
            signer.signature(id: "msg_2Xr7QeVn0cJ8pLm4", timestamp: 1_767_225_600, body: body)
                == "v1,hvgLU/VOYCbaoFKwtvYOD9c0IfP70WeFELvQ8GwBvZA="
        )
    }

    @Test("headers carry the id, the integer timestamp and the signature")
    func headers() throws {
        let signer = try Self.referenceSigner()
        let headers = signer.headers(
            id: Self.referenceID,
            timestamp: Self.referenceTimestamp,
            body: Array(Self.referencePayload.utf8)
        )
        #expect(headers.map(\.name) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers.map(\.value) == [Self.referenceID, "1614265330", Self.referenceSignature])
    }

    @Test("verify accepts our own headers, at the tolerance boundary too")
    func acceptsOwnHeaders() throws {
        let signer = try Self.referenceSigner()
        let body = Array(Self.referencePayload.utf8)
        let headers = Dictionary(
            uniqueKeysWithValues: signer.headers(id: "msg_own", timestamp: 1_700_000_000, body: body).map {
                ($0.name, $0.value)
            }
        )
        let id = try #require(headers["webhook-id"])
        let timestamp = try #require(headers["webhook-timestamp"])
        let signature = try #require(headers["webhook-signature"])
        for now: Int64 in [1_700_000_000, 1_700_000_000 - 300, 1_700_000_000 + 300] {
            #expect(
                signer.verify(id: id, timestamp: timestamp, signatureHeader: signature, body: body, now: Self.date(now))
            )
        }
        // The reference vector as a receiver would get it.
        #expect(
            signer.verify(
                id: Self.referenceID,
                timestamp: "1614265330",
                signatureHeader: Self.referenceSignature,
                body: body,
                now: Self.date(Self.referenceTimestamp + 10)
            )
        )
    }

    @Test("verify rejects a tampered body, a tampered id or timestamp, and another secret")
    func rejectsTampering() throws {
        let signer = try Self.referenceSigner()
        let body = Array(Self.referencePayload.utf8)
        let now = Self.date(Self.referenceTimestamp)
        let sig = Self.referenceSignature
        #expect(
            !signer.verify(
                id: Self.referenceID,
                timestamp: "1614265330",
                signatureHeader: sig,
                body: Array(#"{"test": 2432232315}"#.utf8),
                now: now
            )
        )
        #expect(
            !signer.verify(
                id: Self.referenceID,
                timestamp: "1614265330",
                signatureHeader: sig,
                body: body + [0x20],
                now: now
            )
        )
        #expect(
            !signer.verify(
                id: "msg_p5jXN8AQM9LWM0D4loKWxJel",
                timestamp: "1614265330",
                signatureHeader: sig,
                body: body,
                now: now
            )
        )
        #expect(
            !signer.verify(id: Self.referenceID, timestamp: "1614265331", signatureHeader: sig, body: body, now: now)
        )
        // One bit off in the last character (from the reference libraries' invalid-signature test).
        #expect(
            !signer.verify(
                id: Self.referenceID,
                timestamp: "1614265330",
                signatureHeader: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
                body: body,
                now: now
            )
        )

        let other = try #require(WebhookSigner(secret: "whsec_oEkfdZ+42P5Gn5RkzmAxe+6wfKQVoXmZruZkMNmHvVg="))
        #expect(
            !other.verify(id: Self.referenceID, timestamp: "1614265330", signatureHeader: sig, body: body, now: now)
        )
        // The reference key plus one byte. Not a 0x00 byte: HMAC zero-pads short keys, so a
        // trailing zero would give the very same MAC.
        let longer = try #require(WebhookSigner(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAQ=="))
        #expect(
            !longer.verify(id: Self.referenceID, timestamp: "1614265330", signatureHeader: sig, body: body, now: now)
        )
    }

    @Test("verify rejects timestamps outside the tolerance in both directions")
    func rejectsStaleAndFutureTimestamps() throws {
        let signer = try Self.referenceSigner()
        let body = Array(Self.referencePayload.utf8)
        let sent = Self.referenceTimestamp
        func verify(now: Int64, tolerance: Duration = .seconds(300)) -> Bool {
            signer.verify(
                id: Self.referenceID,
                timestamp: String(sent),
                signatureHeader: Self.referenceSignature,
                body: body,
                now: Self.date(now),
                tolerance: tolerance
            )
        }
        #expect(!verify(now: sent + 301), "too old")
        #expect(!verify(now: sent - 301), "too new")
        #expect(!verify(now: sent + 86_400))
        #expect(verify(now: sent + 3600, tolerance: .seconds(3600)))
        #expect(!verify(now: sent + 3601, tolerance: .seconds(3600)))
        // Sub-second precision of `now` counts.
        #expect(
            !signer.verify(
                id: Self.referenceID,
                timestamp: String(sent),
                signatureHeader: Self.referenceSignature,
                body: body,
                now: Date(timeIntervalSince1970: TimeInterval(sent) + 300.5)
            )
        )
    }

    @Test(
        "verify rejects timestamps that are not plain decimal integers",
        arguments: ["", "hello", "1614265330.0", "+1614265330", " 1614265330", "-1614265330", "99999999999999999999"]
    )
    func rejectsMalformedTimestamp(timestamp: String) throws {
        let signer = try Self.referenceSigner()
        #expect(
            !signer.verify(
                id: Self.referenceID,
                timestamp: timestamp,
                signatureHeader: Self.referenceSignature,
                body: Array(Self.referencePayload.utf8),
                now: Self.date(Self.referenceTimestamp)
            )
        )
    }

    @Test("verify looks only at v1 entries, in any position of the list")
    func signatureLists() throws {
        let signer = try Self.referenceSigner()
        let body = Array(Self.referencePayload.utf8)
        let now = Self.date(Self.referenceTimestamp)
        let valid = Self.referenceSignature
        let validBytes = String(valid.dropFirst(3))
        func verify(_ header: String) -> Bool {
            signer.verify(id: Self.referenceID, timestamp: "1614265330", signatureHeader: header, body: body, now: now)
        }
        #expect(verify("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + valid), "matching v1 second")
        #expect(verify("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,\(validBytes) \(valid) v1a,abc"))
        #expect(!verify("v2,\(validBytes)"), "the right bytes under an unknown version")
        #expect(!verify("v2,\(validBytes) v1a,\(validBytes) \(validBytes)"))
        #expect(!verify(""))
        #expect(!verify("v1,"))
        #expect(!verify(String(valid.prefix(8))))
        #expect(!verify(valid + "="))
        #expect(!verify("V1,\(validBytes)"))
    }

    @Test(
        "init rejects what is not a whsec_ secret of at least 24 bytes",
        arguments: [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  // no prefix
            "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  // wrong case
            " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  // leading space
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  // length not a multiple of 4
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa$w",  // not base64
            "whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw",  // embedded space
            "whsec_",  // empty key
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",  // 22 bytes: shorter than the spec's 24
            "",
        ]
    )
    func rejectsSecret(secret: String) {
        #expect(WebhookSigner(secret: secret) == nil)
    }

    @Test("init accepts 24-byte and longer keys")
    func acceptsSecret() {
        #expect(WebhookSigner(secret: "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") != nil)
        #expect(WebhookSigner(secret: "whsec_" + Data(repeating: 7, count: 64).base64EncodedString()) != nil)
    }

    @Test("message ids must be non-empty visible ASCII without '.'")
    func messageIDs() {
        #expect(WebhookSigner.isValidMessageID("msg_p5jXN8AQM9LWM0D4loKWxJek"))
        for invalid in ["", "msg.1", "msg 1", "msg\r\nX-Evil: 1", "msg_\u{E9}", "msg\t1"] {
            #expect(!WebhookSigner.isValidMessageID(invalid), "\(invalid.debugDescription) must be rejected")
        }
    }
}
