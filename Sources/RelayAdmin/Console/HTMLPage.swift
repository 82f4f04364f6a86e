/// Server-rendered pages of the console: one layout, every value escaped where it is written.
enum HTMLPage {
    /// Text as HTML text or an attribute value.
    static func escape(_ text: some StringProtocol) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// The whole page. `body` is HTML already; `title` is text.
    /// - Parameter refreshSeconds: the page reloads itself this often (the overview).
    static func layout(
        title: String,
        signedIn: Bool,
        csrfToken: String? = nil,
        refreshSeconds: Int? = nil,
        body: String
    ) -> String {
        let navigation =
            signedIn
            ? """
            <nav><a href="/console">Overview</a> <a href="/console/dead-letters">Dead letters</a>
            <a href="/console/deliveries">Deliveries</a> <a href="/console/contacts">Contacts</a>
            <form method="post" action="/console/logout" class="inline">
            <input type="hidden" name="csrf" value="\(escape(csrfToken ?? ""))">
            <button id="logout" type="submit">Log out</button></form></nav>
            """ : ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            \(refreshSeconds.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")
            <title>\(escape(title)) · identity-relay</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; }
            nav { margin-bottom: 1rem; } nav a { margin-right: 1rem; }
            table { border-collapse: collapse; } td, th { border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }
            .inline { display: inline; } .error { color: #a00; } .note { color: #555; } .good { color: #060; }
            pre { background: #f4f4f4; padding: .6rem; overflow-x: auto; }
            </style></head>
            <body>\(navigation)<h1>\(escape(title))</h1>
            \(body)
            </body></html>
            """
    }

    /// A hidden form field.
    static func hidden(_ name: String, _ value: String) -> String {
        "<input type=\"hidden\" name=\"\(escape(name))\" value=\"\(escape(value))\">"
    }
}
