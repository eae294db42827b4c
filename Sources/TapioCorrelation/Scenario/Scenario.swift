import Foundation
import TapioModel

/// A parsed scenario: the header and the events in time order, each with the subject and context the node-side
/// attributor would have attached. See Tests/Scenarios/FORMAT.md for the file format (version 1).
public struct Scenario: Sendable {
    public static let formatVersion = 1

    public var name: String
    public var description: String
    /// Nanoseconds since the Unix epoch of `t = 0`.
    public var startNanos: UInt64
    /// Replay continues (ticking) until this instant, at least until the last event.
    public var endNanos: UInt64
    /// The header's engine settings applied over the defaults.
    public var config: CorrelationConfig
    /// Insight types the scenario says must fire (empty: it must stay silent), from the header's `expect`.
    public var expectedTypes: [InsightType]
    /// The header's `truth`, for a labelled scenario of the prediction-quality corpus (nil: not labelled).
    public var truth: Truth?
    public var events: [(at: UInt64, event: AttributedEvent)]
}

extension Scenario {
    /// What really happened to a labelled scenario's container: the instant of its OOM kill, or none ever.
    public struct Truth: Sendable, Hashable {
        /// Nanoseconds since the Unix epoch of the kill; nil when the container is never OOM-killed.
        public var oomAt: UInt64?
        /// The kind of series (linear, accelerating, periodic, …), for grouping the score.
        public var shape: String
        /// How far after its start a labelled scenario may be scored (its kill, or its end): 30 days, 259,200
        /// forecasts of 10 s. The corpus's longest is three hours.
        public static let maxScoredNanos: UInt64 = 30 * 86_400 * 1_000_000_000
        public init(oomAt: UInt64?, shape: String) {
            self.oomAt = oomAt
            self.shape = shape
        }
    }
}

/// A scenario file that cannot be read, with the line (1-based) and the field at fault.
public struct ScenarioError: Error, CustomStringConvertible, Sendable, Hashable {
    public var line: Int
    public var field: String?
    public var message: String
    public init(line: Int, field: String?, message: String) {
        self.line = line
        self.field = field
        self.message = message
    }
    public var description: String {
        "line \(line)" + (field.map { ": field \"\($0)\"" } ?? "") + ": " + message
    }
}

/// Runs scenarios through the engine at full speed on their virtual time, collecting the updates (for tests and
/// small files; ``ScenarioReplayer`` streams).
public enum ScenarioReplay {
    /// Parses and replays a scenario file. With `config` nil the header's settings apply; a given `config` (e.g.
    /// from a TapioPolicy) wins over the header.
    public static func run(fileURL: URL, config: CorrelationConfig? = nil) throws -> [InsightUpdate] {
        let file = try FileHandle(forReadingFrom: fileURL)
        defer { try? file.close() }
        var replay = ScenarioReplayer(config: config)
        var out: [InsightUpdate] = []
        while let chunk = try file.read(upToCount: 1 << 16), !chunk.isEmpty {
            try chunk.withUnsafeBytes { raw in
                try replay.feed(raw.bindMemory(to: UInt8.self)) { out.append($0) }
            }
        }
        try replay.finish { out.append($0) }
        return out
    }

    /// Replays scenario text (JSON lines).
    public static func run(text: String, config: CorrelationConfig? = nil) throws -> [InsightUpdate] {
        var replay = ScenarioReplayer(config: config)
        var out: [InsightUpdate] = []
        try Array(text.utf8).withUnsafeBufferPointer { try replay.feed($0) { out.append($0) } }
        try replay.finish { out.append($0) }
        return out
    }

    public static func run(lines: [String], config: CorrelationConfig? = nil) throws -> [InsightUpdate] {
        var replay = ScenarioReplayer(config: config)
        var out: [InsightUpdate] = []
        for (n, line) in lines.enumerated() { try replay.consume(line: line, number: n + 1) { out.append($0) } }
        try replay.finish { out.append($0) }
        return out
    }

    /// Replays a parsed scenario, as ``ScenarioReplayer`` does while it reads one.
    public static func run(_ scenario: Scenario, config: CorrelationConfig? = nil) -> [InsightUpdate] {
        var replay = ScenarioReplayer(config: config)
        var out: [InsightUpdate] = []
        replay.start(scenario)
        // Collecting into an array cannot fail.
        for (at, e) in scenario.events { try? replay.replay(e, at: at) { out.append($0) } }
        try? replay.end(at: scenario.endNanos) { out.append($0) }
        return out
    }

    /// Parses scenario lines (blank lines and lines starting with `//` or `#` are ignored) into one `Scenario`
    /// with all its events.
    public static func parse(lines: [String]) throws -> Scenario {
        var parser = ScenarioParser()
        var events: [(at: UInt64, event: AttributedEvent)] = []
        for (n, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("//") || line.hasPrefix("#") { continue }
            if let e = try parser.consume(line, number: n + 1) { events.append(e) }
        }
        var s = try parser.finish(lastLine: lines.count)
        s.events = events
        return s
    }
}
