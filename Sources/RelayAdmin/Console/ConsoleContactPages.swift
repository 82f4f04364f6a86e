import Foundation
import HTTPTypes
import Hummingbird
import Logging
import RelayCore
import RelayService

/// Contacts and journeys in the console: find a contact by number, email, messaging id
/// (`whatsapp:…`) or `CRM:`/`ERP:` id; its profile, masked as the log would have it; its journey
/// across channels with the seeds' fields; promote, merge and unmerge under the API's rules.
extension ConsoleRoutes {
    /// The search form posted (a number or an address stays out of URLs, history and proxy logs):
    /// found, the browser goes to the contact's page, named by its id.
    func contactSearch(_ query: String?, _ session: ConsoleSessions.Session) async throws -> Response {
        let text = query?.trimmingCharacters(in: .whitespaces) ?? ""
        var body = searchForm(text, session)
        guard !text.isEmpty else {
            return Self.page(.ok, title: "Contacts", session: session, body: body)
        }
        guard let reference = ContactReference(parsing: text, defaultRegion: defaultRegion) else {
            body +=
                "<p class=\"error\" id=\"search-error\">Give a number (+…), an email, a messaging id (whatsapp:…), a CRM:/ERP: id or a contact id.</p>"
            return Self.page(.badRequest, title: "Contacts", session: session, body: body)
        }
        do {
            let contact = try await contacts.show(reference)
            return Response(
                status: .seeOther,
                headers: [.location: "/console/contacts/\(Self.pathSegment(contact.id))"]
            )
        } catch let error as ContactError where error.code == .notFound {
            body += "<p class=\"error\" id=\"search-error\">No contact has this identifier.</p>"
            return Self.page(.notFound, title: "Contacts", session: session, body: body)
        } catch {
            body += "<p class=\"error\">The contacts cannot be read: \(HTMLPage.escape("\(error)"))</p>"
            return Self.page(.serviceUnavailable, title: "Contacts", session: session, body: body)
        }
    }

    private func searchForm(_ text: String, _ session: ConsoleSessions.Session) -> String {
        """
        <form method="post" action="/console/contacts">
        \(HTMLPage.hidden("csrf", session.csrfToken))
        <label>Find <input id="contact-query" name="q" value="\(HTMLPage.escape(text))" \
        placeholder="+15550100001, name@example.com, whatsapp:…, CRM:…"></label>
        <button id="find" type="submit">Find</button>
        </form>
        """
    }

    func contactPage(
        id: String,
        _ request: Request,
        _ session: ConsoleSessions.Session,
        notice: String? = nil
    )
        async throws -> Response
    {
        let reveal = request.uri.queryParameters.get("reveal") == "true"
        let journey: Journey
        do {
            journey = try await contacts.journey(.id(id), limit: 200)
        } catch let error as ContactError {
            return Self.page(
                .notFound,
                title: "Contact",
                session: session,
                body: searchForm("", session) + "<p class=\"error\">\(HTMLPage.escape(error.message))</p>"
            )
        } catch {
            return Self.page(
                .serviceUnavailable,
                title: "Contact",
                session: session,
                body: "<p class=\"error\">The contacts cannot be read: \(HTMLPage.escape("\(error)"))</p>"
            )
        }
        if reveal {
            logger.notice("contact's personal data revealed in the console", metadata: [LogKeys.contactId: "\(id)"])
        }
        let contact = journey.contact
        func shown(_ text: String) -> String { reveal ? text : Masking.mask(text) }
        var fields: [(String, String)] = [
            ("id", contact.id), ("type", contact.type.rawValue), ("name", contact.name.map(shown) ?? "-"),
            (
                "identifiers",
                contact.identifiers.map { reveal ? "\($0.kind.name) \($0.value)" : $0.description }
                    .joined(separator: ", ")
            ),
            ("last interaction", contact.lastInteractionAt.map { RFC3339.format($0) } ?? "-"),
        ]
        for (key, value) in contact.attributes.sorted(by: { $0.key < $1.key }) { fields.append((key, shown(value))) }
        if !contact.aliases.isEmpty { fields.append(("merged into it", contact.aliases.joined(separator: ", "))) }
        for suggestion in contact.suggestions {
            fields.append(("suggested", "\(Masking.mask(suggestion.externalId)) (by name; never linked)"))
        }
        let profile = fields.map { "<tr><th>\(HTMLPage.escape($0.0))</th><td>\(HTMLPage.escape($0.1))</td></tr>" }
        let merges = contact.merges.map { mergeId in
            """
            <li>\(HTMLPage.escape(mergeId)) <form method="post" action="/console/contacts/unmerge" class="inline">\
            \(HTMLPage.hidden("csrf", session.csrfToken))\(HTMLPage.hidden("mergeId", mergeId))\
            \(HTMLPage.hidden("contact", contact.id))<button class="unmerge" type="submit">Unmerge</button></form></li>
            """
        }
        let rows = journey.interactions.map { entry in
            let notes: String
            if let text = entry.notes, !text.isEmpty {
                notes = reveal ? text : "(\(text.count) characters; reveal to read)"
            } else {
                notes = ""
            }
            return """
                <tr class="interaction"><td class="channel">\(HTMLPage.escape(entry.channel?.rawValue ?? "-"))</td>\
                <td>\(RFC3339.format(entry.at))</td><td>\(HTMLPage.escape(entry.direction?.rawValue ?? ""))</td>\
                <td>\(HTMLPage.escape(entry.queueId ?? ""))</td><td>\(HTMLPage.escape(entry.agentId ?? ""))</td>\
                <td>\(HTMLPage.escape(entry.wrapUpCode ?? ""))</td><td>\(HTMLPage.escape(entry.status.rawValue))</td>\
                <td>\(entry.durationSeconds.map { "\($0) s" } ?? "")</td>\
                <td>\(HTMLPage.escape(shown(entry.callId)))</td><td>\(HTMLPage.escape(notes))</td></tr>
                """
        }
        let promote =
            contact.type == .curated
            ? ""
            : """
            <form method="post" action="/console/contacts/promote" class="inline">\
            \(HTMLPage.hidden("csrf", session.csrfToken))\(HTMLPage.hidden("contact", contact.id))\
            <button id="promote" type="submit">Promote to curated</button></form>
            """
        let body = """
            \(searchForm("", session))
            \(notice.map { "<p class=\"note\" id=\"notice\">\(HTMLPage.escape($0))</p>" } ?? "")
            <table id="profile">\(profile.joined())</table>
            \(reveal ? "<p class=\"note\">Personal data shown; this view was logged.</p>" : "<p><a id=\"reveal\" href=\"/console/contacts/\(HTMLPage.escape(Self.pathSegment(contact.id)))?reveal=true\">Reveal personal data</a> (logged)</p>")
            \(promote)
            <h2>Merges into this contact</h2>
            <ul id="merges">\(merges.joined())</ul>
            <form method="post" action="/console/contacts/merge">
            \(HTMLPage.hidden("csrf", session.csrfToken))\(HTMLPage.hidden("into", contact.id))
            <label>Merge into this one <input id="absorbed" name="absorbed" placeholder="+…, email, whatsapp:…, CRM:…, contact id"></label>
            <button id="merge" type="submit">Merge</button>
            </form>
            <h2>Journey</h2>
            <p id="interaction-count">\(journey.interactions.count) interactions</p>
            <table id="journey"><tr><th>channel</th><th>when</th><th>direction</th><th>queue</th><th>agent</th>\
            <th>wrap-up</th><th>status</th><th>duration</th><th>interaction</th><th>notes</th></tr>\(rows.joined())</table>
            """
        return Self.page(.ok, title: "Contact", session: session, body: body)
    }

    func changeContact(
        _ change: ContactChange,
        _ form: FormBody,
        _ request: Request,
        _ session: ConsoleSessions.Session
    ) async throws -> Response {
        let contactId = form["contact"] ?? form["into"] ?? ""
        let notice: String
        do {
            switch change {
            case .promote:
                _ = try await contacts.promote(.id(contactId))
                notice = "Promoted to curated."
            case .merge:
                guard let absorbed = ContactReference(parsing: form["absorbed"] ?? "", defaultRegion: defaultRegion)
                else {
                    throw ContactError(
                        .invalidIdentifier,
                        "give the contact to merge in: a number, email, messaging id, CRM:/ERP: id or contact id"
                    )
                }
                let (mergeId, _) = try await contacts.merge(absorbed, into: .id(contactId))
                notice = "Merged (\(mergeId)); unmerge undoes it."
            case .unmerge:
                _ = try await contacts.unmerge(form["mergeId"] ?? "")
                notice = "Unmerged: both contacts are as they were before."
            }
        } catch let error as ContactError {
            return refusal(change, error.message, status: error.code == .notFound ? .notFound : .conflict)
        } catch {
            return refusal(change, "the contacts cannot be changed now (\(error))", status: .serviceUnavailable)
        }
        logger.notice("contact \(change.rawValue) through the console", metadata: [LogKeys.contactId: "\(contactId)"])
        return try await contactPage(id: contactId, request, session, notice: notice)

        func refusal(_ change: ContactChange, _ why: String, status: HTTPResponse.Status) -> Response {
            let refused = "The \(change.rawValue) was refused: \(why)"
            return Self.page(
                status,
                title: "Contact",
                session: session,
                body: """
                    <p class="error" id="change-refused">\(HTMLPage.escape(refused))</p>
                    <p><a href="/console/contacts/\(HTMLPage.escape(Self.pathSegment(contactId)))">Back to the contact</a></p>
                    """
            )
        }
    }

    enum ContactChange: String {
        case promote, merge, unmerge
    }

    /// A contact id as one path segment.
    static func pathSegment(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/")))
            ?? id
    }
}
