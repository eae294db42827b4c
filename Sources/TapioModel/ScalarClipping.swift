extension String {
    /// The string cut to at most `limit` Unicode scalars, ending in "…" when cut.
    ///
    /// The API server's `maxLength` counts code points (runes), not the grapheme clusters Swift's `count` and
    /// `prefix` count: a flag emoji is one Character and two runes, so a message cut by Characters to fit a
    /// `maxLength` can still be refused (422), and with it the whole status write that carried it.
    public func clipped(toScalars limit: Int) -> String {
        let scalars = unicodeScalars
        guard scalars.count > limit else { return self }
        guard limit > 0 else { return "" }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars.prefix(limit - 1))
        out.append("…")
        return String(out)
    }
}
