/// Which links a relink may replace.
public enum RelinkRule: Sendable, Hashable {
    /// Only the phase-1 `PHONE:` id, or no link: a CRM answer never overwrites an agent's switch.
    case phoneLinkOnly
    /// Any link: a validated switch wins over whatever was there.
    case anyLink
}
