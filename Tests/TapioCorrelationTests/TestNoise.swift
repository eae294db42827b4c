/// Seeded noise for the detector tests: xorshift uniforms, and approximately normal deviates from them. The same
/// seed gives the same draws on every platform, so a count of readings over many draws is reproducible.
struct TestNoise {
    /// Nonzero (xorshift stays at zero).
    var state: UInt64

    /// Uniform in [0, 1).
    mutating func next() -> Double {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Double(state % 1_000_000) / 1_000_000
    }

    /// Approximately normal (sum of 12 uniforms).
    mutating func gauss() -> Double { (0..<12).reduce(0.0) { a, _ in a + next() } - 6 }
}
