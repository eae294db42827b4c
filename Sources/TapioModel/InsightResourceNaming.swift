/// FNV-1a, the stable hash behind Insight names and patch fingerprints. Swift's `Hasher` is seeded per process,
/// so names made with it would differ between the agent, the operator and their next runs.
///
/// The names themselves come from `InsightIdentity.name` (TapioCorrelation): one scheme for every writer.
public enum InsightNaming {
    /// FNV-1a, 64-bit, over the UTF-8 bytes.
    public static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }
}
