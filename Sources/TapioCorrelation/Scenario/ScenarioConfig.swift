import TapioModel

/// The header's `config` object: engine settings over the defaults, each checked against the bounds a TapioPolicy
/// has for the same setting, or documented bounds for the replay-only ones (Tests/Scenarios/FORMAT.md).
enum ScenarioConfig {
    /// Every setting a header may give, in the order FORMAT.md lists them.
    static let fields = [
        "batchSize", "batchTimeout", "window", "resolveAfter", "updateInterval", "predictionHorizon",
        "leakThresholdPerHour", "memoryCeiling", "maxSubjects", "clusterHealthMinPods",
        "crashLoopRestarts", "networkFailureThreshold", "minSeverity",
    ]

    static let maxSubjectsRange = 1...1_000_000
    /// A ClusterHealth group keeps at most this many pods, so a larger threshold could never be met.
    static let clusterHealthMinPodsRange = 1...ClusterHealthTracker.maxMembers
    /// A container keeps the times of its last 64 restarts.
    static let crashLoopRestartsRange = 1...64
    static let networkFailureThresholdRange = 1...1_000_000

    static func read(_ f: Fields) throws -> CorrelationConfig {
        for key in f.dict.keys.sorted() where !fields.contains(key) {
            throw f.error(key, "unknown setting; expected one of \(fields.joined(separator: ", "))")
        }
        var c = CorrelationConfig()
        if let x = try f.optInt("batchSize", in: CorrelationSettings.batchSizeRange) { c.batchSize = x }
        if let x = try duration(f, "batchTimeout") { c.batchTimeout = x }
        if let x = try duration(f, "window") { c.window = x }
        if let x = try duration(f, "resolveAfter") { c.resolveAfter = x }
        if let x = try duration(f, "updateInterval") { c.updateInterval = x }
        if let x = try duration(f, "predictionHorizon") { c.predictionHorizon = x }
        if c.batchTimeout > c.window {
            throw f.error(
                "batchTimeout",
                "\(GoDuration.format(c.batchTimeout)) must not exceed window "
                    + "(\(GoDuration.format(c.window))): a batch would outlive the window it feeds")
        }
        if let x = try positiveBytes(f, "leakThresholdPerHour") { c.leakThresholdBytesPerHour = Double(x) }
        if let x = try positiveBytes(f, "memoryCeiling") { c.memoryCeilingBytes = x }
        if let x = try f.optInt("maxSubjects", in: maxSubjectsRange) { c.maxSubjects = x }
        if let x = try f.optInt("clusterHealthMinPods", in: clusterHealthMinPodsRange) { c.clusterHealthMinPods = x }
        if let x = try f.optInt("crashLoopRestarts", in: crashLoopRestartsRange) { c.crashLoopRestarts = x }
        if let x = try f.optInt("networkFailureThreshold", in: networkFailureThresholdRange) {
            c.networkFailureThreshold = x
        }
        if let x = try f.optString("minSeverity") {
            guard let s = Severity(rawValue: x) else {
                throw f.error("minSeverity", "expected Info, Warning or Critical")
            }
            c.minSeverity = s
        }
        return c
    }

    /// A positive duration no longer than Go's (a TapioPolicy's durations have the same bounds).
    private static func duration(_ f: Fields, _ key: String) throws -> Duration? {
        let range = "expected a duration from 1ns to \(GoDuration.format(GoDuration.maximum))"
        guard let ns = try f.optNanos(key, max: UInt64(Int64.max), range: range) else { return nil }
        guard ns > 0 else { throw f.error(key, "must be positive; \(range)") }
        return .nanoseconds(Int64(ns))
    }

    private static func positiveBytes(_ f: Fields, _ key: String) throws -> UInt64? {
        guard let b = try f.optBytes(key) else { return nil }
        guard b > 0 else { throw f.error(key, "must be greater than zero; expected 1 to \(UInt64.max) bytes") }
        return b
    }
}
