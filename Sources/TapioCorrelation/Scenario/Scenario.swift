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
    public var events: [(at: UInt64, event: AttributedEvent)]
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

/// Runs scenarios through the engine at full speed on their virtual time.
public enum ScenarioReplay {
    /// Parses and replays a scenario file. With `config` nil the header's settings apply; a given `config` (e.g.
    /// from a TapioPolicy) wins over the header.
    public static func run(fileURL: URL, config: CorrelationConfig? = nil) throws -> [InsightUpdate] {
        let text = try String(contentsOf: fileURL, encoding: .utf8)
        return try run(text: text, config: config)
    }

    /// Replays scenario text (JSON lines).
    public static func run(text: String, config: CorrelationConfig? = nil) throws -> [InsightUpdate] {
        try run(lines: text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init), config: config)
    }

    public static func run(lines: [String], config: CorrelationConfig? = nil) throws -> [InsightUpdate] {
        let scenario = try parse(lines: lines)
        return run(scenario, config: config)
    }

    /// Replays a parsed scenario: ticks the engine once per virtual second between events, feeds each event at its
    /// time, and keeps ticking until the scenario's end so resolutions show.
    public static func run(_ scenario: Scenario, config: CorrelationConfig? = nil) -> [InsightUpdate] {
        var engine = CorrelationEngine(config: config ?? scenario.config)
        var out: [InsightUpdate] = []
        let second: UInt64 = 1_000_000_000
        var clock = scenario.startNanos
        for (at, e) in scenario.events {
            while clock &+ second <= at {
                clock &+= second
                engine.tick(now: clock, into: &out)
            }
            if at > clock { clock = at }
            engine.ingest(e, now: at, into: &out)
        }
        while clock &+ second <= scenario.endNanos {
            clock &+= second
            engine.tick(now: clock, into: &out)
        }
        engine.flush(now: clock, into: &out)
        return out
    }

    /// Parses scenario lines (blank lines and lines starting with `//` or `#` are ignored).
    public static func parse(lines: [String]) throws -> Scenario {
        var parser = ScenarioParser()
        for (n, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("//") || line.hasPrefix("#") { continue }
            try parser.consume(line, number: n + 1)
        }
        return try parser.finish(lastLine: lines.count)
    }
}
