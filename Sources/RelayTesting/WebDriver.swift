public import Foundation
import Glibc
import Logging
import RelayHTTP
import Synchronization

/// A headless Chromium driven over W3C WebDriver (Debian's `chromium` and `chromium-driver`), from
/// Swift over HTTP: enough of the protocol for the console's browser tests. A missing browser or
/// driver is an error, never a skip.
public final class WebDriver: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static let chromedriver = "/usr/bin/chromedriver"
    static let chromium = "/usr/bin/chromium"
    /// W3C's key for an element reference in an answer.
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    let driver: ChildProcess
    let base: String
    let session: String
    let http: CurlHTTPClient

    private init(driver: ChildProcess, base: String, session: String, http: CurlHTTPClient) {
        self.driver = driver
        self.base = base
        self.session = session
        self.http = http
    }

    /// A browser for `body`, closed when it ends, however it ends: no chromedriver or Chromium
    /// outlives the test.
    public static func with<T>(_ body: (WebDriver) async throws -> T) async throws -> T {
        let browser = try await start()
        do {
            let result = try await body(browser)
            await browser.quit()
            return result
        } catch {
            await browser.quit()
            throw error
        }
    }

    /// Starts chromedriver on a free loopback port and opens a headless browser session.
    public static func start() async throws -> WebDriver {
        for path in [chromedriver, chromium] where !FileManager.default.isExecutableFile(atPath: path) {
            throw Failure(description: "\(path) is missing: install Debian's chromium and chromium-driver")
        }
        let port = try freePort()
        let driver = ChildProcess()
        driver.executableURL = URL(fileURLWithPath: chromedriver)
        // Without --allowed-ips chromedriver listens on loopback only.
        driver.arguments = ["--port=\(port)"]
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        let http = CurlHTTPClient(logger: Logger(label: "test.webdriver"))
        let base = "http://127.0.0.1:\(port)"
        do {
            try await eventually(timeout: .seconds(30), "chromedriver answering on port \(port)") {
                (try? await http.execute(HTTPRequest(method: "GET", url: base + "/status")))?.status == 200
            }
            let answer = try await call(
                http,
                "POST",
                base + "/session",
                [
                    "capabilities": [
                        "alwaysMatch": [
                            "browserName": "chrome",
                            "goog:chromeOptions": [
                                "binary": chromium,
                                // Root in a container has no sandbox to offer; /dev/shm may be small.
                                "args": [
                                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--window-size=1280,900",
                                ],
                            ],
                        ]
                    ]
                ]
            )
            guard let session = (answer as? [String: Any])?["sessionId"] as? String else {
                throw Failure(description: "chromedriver opened no session: \(answer)")
            }
            // A click that submits a form may return before the next page is in: finding an element
            // waits for it (up to 15 s) rather than failing at once on a busy machine.
            _ = try await call(http, "POST", base + "/session/\(session)/timeouts", ["implicit": 15_000])
            return WebDriver(driver: driver, base: base, session: session, http: http)
        } catch {
            await stop(driver)
            http.shutdown()
            throw error
        }
    }

    /// Closes the browser (its session), then chromedriver.
    public func quit() async {
        _ = try? await Self.call(http, "DELETE", base + "/session/\(session)", nil)
        await Self.stop(driver)
        http.shutdown()
    }

    /// SIGTERM, a few seconds' grace, then SIGKILL; reaped either way. Waits with `Task.sleep`, not
    /// on the cooperative pool's few threads.
    private static func stop(_ driver: ChildProcess) async {
        driver.terminate()
        for _ in 0..<50 where driver.isRunning { try? await Task.sleep(for: .milliseconds(100)) }
        if driver.isRunning { kill(driver.processIdentifier, SIGKILL) }
        while driver.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    public func go(_ url: String) async throws {
        _ = try await command("POST", "url", ["url": url])
    }

    public func currentURL() async throws -> String {
        try await command("GET", "url", nil) as? String ?? ""
    }

    /// Waits until the browser is at `url` (a submitted form's answer may still be loading).
    public func waitForURL(_ url: String) async throws {
        try await eventually(timeout: .seconds(15), "the browser at \(url)") {
            (try? await self.currentURL()) == url
        }
    }

    /// Waits until the browser is at a URL that starts with `prefix`.
    public func waitForURL(prefix: String) async throws {
        try await eventually(timeout: .seconds(15), "the browser under \(prefix)") {
            (try? await self.currentURL())?.hasPrefix(prefix) == true
        }
    }

    /// Waits until the element `css` selects shows `text` (a form's answer replacing a page that has
    /// the same element).
    public func waitForText(_ css: String, _ text: String) async throws {
        _ = try await waitForText(css) { $0 == text }
    }

    /// Waits until the element `css` selects is on the page with a text `accept` takes (on a page that
    /// reloads itself, say), and returns that text.
    public func waitForText(
        _ css: String,
        timeout: Duration = .seconds(30),
        _ accept: @escaping @Sendable (String) -> Bool
    )
        async throws -> String
    {
        let seen = Mutex<String?>(nil)
        try await eventually(timeout: timeout, "\(css) on the page") {
            guard let element = try? await self.findNow(css), let text = try? await self.text(element), accept(text)
            else { return false }
            seen.withLock { $0 = text }
            return true
        }
        return seen.withLock { $0 } ?? ""
    }

    /// `find` without the implicit wait's grace: nil when the element is not there now.
    private func findNow(_ css: String) async throws -> String? {
        let answer = try await command("POST", "elements", ["using": "css selector", "value": css])
        return (answer as? [[String: Any]])?.first?[Self.elementKey] as? String
    }

    public func source() async throws -> String {
        try await command("GET", "source", nil) as? String ?? ""
    }

    /// The first element `css` selects; throws when there is none.
    public func find(_ css: String) async throws -> String {
        let answer = try await command("POST", "element", ["using": "css selector", "value": css])
        guard let element = (answer as? [String: Any])?[Self.elementKey] as? String else {
            throw Failure(description: "no element \(css)")
        }
        return element
    }

    public func findAll(_ css: String) async throws -> [String] {
        let answer = try await command("POST", "elements", ["using": "css selector", "value": css])
        return (answer as? [[String: Any]] ?? []).compactMap { $0[Self.elementKey] as? String }
    }

    public func type(_ text: String, into element: String) async throws {
        _ = try await command("POST", "element/\(element)/value", ["text": text])
    }

    public func click(_ element: String) async throws {
        _ = try await command("POST", "element/\(element)/click", [String: Any]())
    }

    public func text(_ element: String) async throws -> String {
        try await command("GET", "element/\(element)/text", nil) as? String ?? ""
    }

    /// The page as a PNG, written to `path` (its folder made if need be).
    public func screenshot(to path: String) async throws {
        guard let base64 = try await command("GET", "screenshot", nil) as? String, let png = Data(base64Encoded: base64)
        else {
            throw Failure(description: "no screenshot")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try png.write(to: URL(fileURLWithPath: path))
    }

    private func command(_ method: String, _ path: String, _ body: Any?) async throws -> Any {
        try await Self.call(http, method, base + "/session/\(session)/" + path, body)
    }

    /// One WebDriver call: its `value`, or the driver's error as a `Failure`.
    private static func call(
        _ http: CurlHTTPClient,
        _ method: String,
        _ url: String,
        _ body: Any?
    ) async throws
        -> Any
    {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let response = try await http.execute(
            HTTPRequest(
                method: method,
                url: url,
                headers: [(name: "Content-Type", value: "application/json")],
                body: data.map { Array($0) } ?? [],
                timeout: .seconds(60)
            )
        )
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        let value = object?["value"] ?? NSNull()
        guard response.status == 200 else {
            throw Failure(description: "\(method) \(url): HTTP \(response.status): \(value)")
        }
        return value
    }

    /// A port nothing listens on now: bound to 0, read, closed.
    static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(socket, pointer, length) == 0 && getsockname(socket, pointer, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
