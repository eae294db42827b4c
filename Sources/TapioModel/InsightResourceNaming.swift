/// Deterministic Insight object names: one object per (type, subject), the same in every process and run.
///
///     InsightNaming.name(type: .oomPrediction, subject: ResourceRef(kind: "Pod", namespace: "shop", name: "cart-7d9f", container: "app"))
///     // "oomprediction-pod-cart-7d9f-app-3f2a9c0b1d4e5f60"
///
/// The readable prefix is lower-cased and reduced to DNS-1123 characters and truncated; the 16-hex-digit suffix is
/// FNV-1a 64 of the full identity (type, kind, namespace, name, container — not the uid, so a recreated pod of
/// the same name updates the same Insight), so truncation or character folding cannot make two subjects collide
/// in practice. Swift's `Hasher` is seeded per process and would not be stable.
public enum InsightNaming {
    /// Longest readable prefix; keeps names short enough for kubectl columns and far below the 253 limit.
    static let maxPrefix = 100

    /// A DNS-1123 subdomain name (≤ 253 characters, `[a-z0-9]([-a-z0-9.]*[a-z0-9])?`).
    public static func name(type: InsightType, subject: ResourceRef) -> String {
        let identity = [type.rawValue, subject.kind, subject.namespace ?? "", subject.name, subject.container ?? ""]
            .joined(separator: "\u{0}")
        let hash = fnv1a64(identity)
        var parts = [type.rawValue, subject.kind, subject.name]
        if let c = subject.container, !c.isEmpty { parts.append(c) }
        var prefix = sanitize(parts.joined(separator: "-"))
        if prefix.count > maxPrefix { prefix = String(prefix.prefix(maxPrefix)) }
        while prefix.hasSuffix("-") || prefix.hasSuffix(".") { prefix.removeLast() }
        let hex = String(hash, radix: 16)
        let suffix = String(repeating: "0", count: 16 - hex.count) + hex
        return prefix.isEmpty ? "insight-\(suffix)" : "\(prefix)-\(suffix)"
    }

    /// FNV-1a, 64-bit, over the UTF-8 bytes.
    public static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    /// Lower-cases and replaces anything outside `[a-z0-9-]` with `-`, collapsing runs and trimming the ends.
    static func sanitize(_ s: String) -> String {
        var out = ""
        for u in s.lowercased().unicodeScalars {
            let ok = (u >= "a" && u <= "z") || (u >= "0" && u <= "9")
            if ok {
                out.unicodeScalars.append(u)
            } else if !out.isEmpty && !out.hasSuffix("-") {
                out += "-"
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out
    }
}
