import Foundation
import TapioModel

/// A scenario replay that streams: bytes (or lines) in, insight updates out as they happen. Memory is the engine's
/// bounded state plus one line, whatever the scenario's length.
///
/// Virtual time jumps. Between two events, and from the last one to the scenario's end, the engine is ticked only
/// at the instants its timed work falls due (``CorrelationEngine/nextTimedWork(notAfter:)``: batch timeouts,
/// re-checks and resolutions of active insights, clean-ups), so an idle stretch costs what happens in it, not its
/// length. Once only re-statements of unchanging conditions are left (``CorrelationEngine/settledAt``), or after
/// ``maxTimedWorkPerStretch`` ticks, the rest of the stretch is skipped: one tick at its end brings the engine up
/// to date.
///
///     var replay = ScenarioReplayer()
///     try bytes.withUnsafeBufferPointer { try replay.feed($0) { print($0) } }
///     let scenario = try replay.finish { print($0) }
public struct ScenarioReplayer {
    /// Timed-work ticks run in one idle stretch before the rest of it is skipped: enough for every re-check until
    /// the engine settles with windows up to about a day and a half at the default 30 s re-check.
    public static let maxTimedWorkPerStretch = 10_000

    private let override: CorrelationConfig?
    private var parser = ScenarioParser()
    private var splitter = ScenarioLineSplitter()
    private var engine = CorrelationEngine()
    private var started = false
    private var clock: UInt64 = 0
    private var out: [InsightUpdate] = []
    private var lastLine = 0

    /// Ticks run for timed work so far (an idle stretch costs ticks only where work falls due).
    public private(set) var timedWorkTicks: UInt64 = 0
    /// Events fed to the engine so far.
    public private(set) var events: UInt64 = 0

    /// With `config` nil the header's settings apply; a given `config` (e.g. from a TapioPolicy) wins.
    public init(config: CorrelationConfig? = nil) { override = config }

    // MARK: Input

    /// Feeds the next bytes of the scenario, split anywhere.
    public mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>, emit: (InsightUpdate) throws -> Void) throws {
        // The splitter is moved out while it calls back into `self`, so the two never overlap.
        var lines = ScenarioLineSplitter()
        swap(&lines, &splitter)
        defer { swap(&lines, &splitter) }
        try lines.feed(bytes) { try consume(line: $0, number: $1, emit: emit) }
    }

    /// One line of the scenario (without its line break), as bytes; `number` is 1-based.
    public mutating func consume(
        line bytes: UnsafeBufferPointer<UInt8>, number: Int,
        emit: (InsightUpdate) throws -> Void
    ) throws {
        var bytes = bytes
        // A byte-order mark, as some editors write at the start of a file, is not part of the header.
        if number == 1, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            bytes = UnsafeBufferPointer(rebasing: bytes[3...])
        }
        // Decoding repairs what is not UTF-8; comparing tells whether it had to. (`String(validating:)` took the
        // standard library's slow generic path here.)
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.utf8.elementsEqual(bytes) else {
            throw ScenarioError(line: number, field: nil, message: "not valid UTF-8")
        }
        try consume(line: text, number: number, emit: emit)
    }

    /// One line of the scenario (blank lines and lines starting with `//` or `#` are skipped).
    public mutating func consume(line raw: String, number: Int, emit: (InsightUpdate) throws -> Void) throws {
        lastLine = max(lastLine, number)
        let line = Self.trimmed(raw)
        if line.isEmpty || line.hasPrefix("//") || line.hasPrefix("#") { return }
        if let e = try parser.consume(line, number: number) {
            try replay(e.event, at: e.at, emit: emit)
        } else if !started, let header = parser.header {
            start(header)
        }
    }

    /// Ends the input: runs the clock on to the scenario's end (so resolutions show) and flushes the engine.
    /// Returns the header with the scenario's end; its events are not kept.
    @discardableResult
    public mutating func finish(emit: (InsightUpdate) throws -> Void) throws -> Scenario {
        var lines = ScenarioLineSplitter()
        swap(&lines, &splitter)
        defer { swap(&lines, &splitter) }
        try lines.finish { try consume(line: $0, number: $1, emit: emit) }
        lastLine = max(lastLine, lines.linesRead)
        let scenario = try parser.finish(lastLine: lastLine)
        try end(at: scenario.endNanos, emit: emit)
        return scenario
    }

    /// The line without surrounding spaces and tabs (the whitespace JSON allows within a line), found on its
    /// UTF-8 bytes: Foundation's `trimmingCharacters` goes through UTF-16 and cost over a quarter of a replay's
    /// time.
    static func trimmed(_ s: String) -> Substring {
        let u = s.utf8
        guard let first = u.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
              let last = u.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })
        else { return "" }
        // Both ends fall on ASCII bytes or the string's ends, so they are character boundaries.
        return s[first..<u.index(after: last)]
    }

    // MARK: Virtual time

    /// Starts the engine with the header's settings (unless overridden); `t = 0` is the header's start.
    mutating func start(_ header: Scenario) {
        let config = override ?? header.config
        engine = CorrelationEngine(config: config)
        parser.podCapacity = config.maxSubjects
        clock = header.startNanos
        started = true
    }

    /// Runs timed work due up to `at`, then feeds the event at `at`.
    mutating func replay(_ event: AttributedEvent, at: UInt64, emit: (InsightUpdate) throws -> Void) throws {
        try advance(to: at, emit: emit)
        engine.ingest(event, now: at, into: &out)
        events &+= 1
        try drain(emit)
    }

    /// Runs the clock to `end` and flushes the engine.
    mutating func end(at end: UInt64, emit: (InsightUpdate) throws -> Void) throws {
        try advance(to: max(end, clock), emit: emit)
        engine.flush(now: clock, into: &out)
        try drain(emit)
    }

    /// Ticks the engine at each instant its timed work falls due up to `target`, then sets the clock there.
    private mutating func advance(to target: UInt64, emit: (InsightUpdate) throws -> Void) throws {
        var ticks = 0
        while let due = engine.nextTimedWork(notAfter: target) {
            var at = max(due, clock)
            // Nothing but re-statements left, or the stretch's budget spent: skip to its end.
            if at < target, at > engine.settledAt || ticks >= Self.maxTimedWorkPerStretch { at = target }
            clock = at
            engine.tick(now: at, into: &out)
            ticks += 1
            timedWorkTicks &+= 1
            try drain(emit)
            if at == target { break }
        }
        clock = max(clock, target)
    }

    private mutating func drain(_ emit: (InsightUpdate) throws -> Void) throws {
        guard !out.isEmpty else { return }
        defer { out.removeAll(keepingCapacity: true) }
        for u in out { try emit(u) }
    }
}
