import Foundation
import RelayCore
import Synchronization

/// The console's signed-in browsers: a random session id in an HttpOnly, `SameSite=Strict` cookie,
/// and for each a CSRF token that every form which changes something carries back. In memory: a
/// restart signs everyone out, and the admin token is never stored in the browser.
final class ConsoleSessions: Sendable {
    struct Session: Sendable {
        var csrfToken: String
        var expiresAt: Date
    }

    static let cookieName = "relay_console"
    let lifetime: Duration
    private let sessions = Mutex<[String: Session]>([:])

    init(lifetime: Duration = .seconds(8 * 3600)) {
        self.lifetime = lifetime
    }

    /// A new session, after the admin token was presented: its id (the cookie) and CSRF token.
    func open(now: Date = Date()) -> (id: String, session: Session) {
        let id = Self.randomToken()
        let session = Session(csrfToken: Self.randomToken(), expiresAt: now.addingTimeInterval(lifetime.totalSeconds))
        sessions.withLock { sessions in
            // Expired ones go when a new one comes: the map never outgrows the sign-ins of a lifetime.
            sessions = sessions.filter { $0.value.expiresAt > now }
            sessions[id] = session
        }
        return (id, session)
    }

    /// The live session the cookie names; nil for none, an unknown one or an expired one.
    func session(cookie id: String?, now: Date = Date()) -> Session? {
        guard let id else { return nil }
        return sessions.withLock { sessions in
            guard let session = sessions[id] else { return nil }
            guard session.expiresAt > now else {
                sessions[id] = nil
                return nil
            }
            return session
        }
    }

    func close(cookie id: String?) {
        guard let id else { return }
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }

    /// 32 random bytes, hex: unguessable, and safe in a cookie and a form.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Constant-time comparison of a presented CSRF token with the session's.
    static func same(_ presented: String?, _ expected: String) -> Bool {
        guard let presented else { return false }
        return AdminToken.same(presented, expected)
    }
}
