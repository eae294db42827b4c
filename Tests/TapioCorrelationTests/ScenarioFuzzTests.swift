import Foundation
import TapioTestSupport
import Testing
import TapioTestTraits

@testable import TapioCorrelation

/// Mutation fuzzing of the scenario parser and replay (DESIGN §6, rung 6), from the real scenarios in
/// Tests/Scenarios. The suite runs a fixed seed and a bounded number of cases; `TAPIO_FUZZ_CASES=20000 swift test
/// --filter ScenarioFuzz` runs longer (`TAPIO_FUZZ_SEED=N` explores other inputs). The properties: nothing traps,
/// nothing hangs (the suite's time limit, and virtual-time work bounded per idle stretch), and every failure is a
/// `ScenarioError` naming a line of the input.
@Suite("Scenario fuzzing", .cpuBound, .timeLimit(.minutes(20)))
struct ScenarioFuzzTests {
    static let corpus: [[String]] = Scenarios.all.compactMap { name in
        (try? String(contentsOf: Scenarios.directory.appendingPathComponent(name + ".jsonl"), encoding: .utf8))?
            .split(separator: "\n").map(String.init)
    }

    /// Fields whose values are numbers, times or sizes somewhere in the format.
    static let numericFields = [
        "t", "duration", "start", "workingSet", "usage", "limit", "request", "anon", "rss",
        "file", "shmem", "totalVM", "peakRSS", "pid", "child", "exitCode", "signal", "errno",
        "cgroupId", "restarts", "finishedAt", "at",
    ]

    /// A hostile value as JSON text: a bare number (not always valid JSON, on purpose) or a quoted string.
    static func hostileValue(_ fuzz: inout Fuzz) -> String {
        switch fuzz.int(0...2) {
        case 0: fuzz.pick(Fuzz.hostileNumbers.filter { !$0.isEmpty })
        case 1: "\"" + fuzz.pick(Fuzz.hostileDurations).prefix(200) + "\""
        default: "\"" + fuzz.pick(Fuzz.hostileQuantities).prefix(200) + "\""
        }
    }

    /// Appends `"key": value` to a JSON object line (a key already present is then given twice).
    static func with(_ line: String, _ key: String, _ value: String) -> String {
        guard let close = line.lastIndex(of: "}") else { return line }
        return line[..<close] + ", \"\(key)\": \(value)}"
    }

    /// A mutant of a real scenario: its numbers, its fields, its config, its lines or its bytes.
    static func mutant(_ fuzz: inout Fuzz) -> [UInt8] {
        var lines = fuzz.pick(corpus)
        if fuzz.chance(0.85) { lines = Array(lines.prefix(fuzz.int(1...60))) }  // most cases stay cheap
        let any = { (fuzz: inout Fuzz) in fuzz.int(0...(lines.count - 1)) }
        switch fuzz.int(0...5) {
        case 0:
            lines = lines.map { fuzz.replaceNumbers(in: $0, probability: 0.05) }
        case 1:
            for _ in 0..<fuzz.int(1...3) {
                let i = any(&fuzz)
                lines[i] = with(lines[i], fuzz.pick(numericFields), hostileValue(&fuzz))
            }
        case 2:
            var settings: [String] = []
            for _ in 0..<fuzz.int(1...4) {
                settings.append("\"\(fuzz.pick(ScenarioConfig.fields + ["unknown"]))\": \(hostileValue(&fuzz))")
            }
            lines[0] = with(lines[0], "config", "{" + settings.joined(separator: ", ") + "}")
        case 3:
            for _ in 0..<fuzz.int(1...4) {
                let i = any(&fuzz)
                let j = any(&fuzz)
                switch fuzz.int(0...3) {
                case 0: lines.remove(at: i)
                case 1: lines.insert(lines[i], at: j)
                case 2: lines.swapAt(i, j)
                default: lines.insert(fuzz.pick(Fuzz.hostileStrings), at: i)
                }
                if lines.isEmpty { lines = [""] }
            }
        case 4:
            let i = any(&fuzz)
            let mutated = fuzz.mutateBytes(Array(lines[i].utf8))
            return Array(lines[..<i].joined(separator: "\n").utf8) + [0x0A] + mutated + [0x0A]
                + Array(lines[(i + 1)...].joined(separator: "\n").utf8)
        default:
            return fuzz.mutateBytes(Array(lines.joined(separator: fuzz.pick(["\n", "\r\n", "\r"])).utf8))
        }
        return Array(lines.joined(separator: fuzz.pick(["\n", "\r\n", "\r"])).utf8)
    }

    /// Feeds `bytes` in chunks of random sizes.
    static func replay(_ bytes: [UInt8], _ fuzz: inout Fuzz, into out: inout [InsightUpdate]) throws -> ScenarioReplayer
    {
        var replay = ScenarioReplayer()
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + fuzz.int(1...4096))
            try bytes[i..<end].withUnsafeBufferPointer { try replay.feed($0) { out.append($0) } }
            i = end
        }
        try replay.finish { out.append($0) }
        return replay
    }

    @Test("mutated scenarios never trap or hang, and every error names a line of the input")
    func mutatedScenarios() {
        var fuzz = Fuzz(seed: 16)
        let perStretch = UInt64(ScenarioReplayer.maxTimedWorkPerStretch) + 1
        let cases = Fuzz.cases(default: 400)
        var replayed = 0
        var fieldErrors = 0
        for i in 0..<cases {
            let input = Self.mutant(&fuzz)
            let lineCount = input.reduce(1) { $0 + ($1 == 0x0A || $1 == 0x0D ? 1 : 0) }
            var out: [InsightUpdate] = []
            do {
                let replay = try Self.replay(input, &fuzz, into: &out)
                // Virtual time costs work only where it falls due: at most one budget per idle stretch.
                #expect(
                    replay.timedWorkTicks <= (replay.events + 1) * perStretch, "case \(i) (\(fuzz.seedDescription))")
                replayed += 1
            } catch let e as ScenarioError {
                #expect((1...lineCount).contains(e.line), "case \(i) (\(fuzz.seedDescription)): \(e)")
                if e.field != nil { fieldErrors += 1 }
            } catch {
                Issue.record("case \(i) (\(fuzz.seedDescription)): not a ScenarioError: \(error)")
            }
        }
        // The mutants reach both ends: whole replays, and the parser's field conversions (not only JSON syntax).
        #expect(replayed * 10 >= cases && fieldErrors * 10 >= cases, "\(replayed) replayed, \(fieldErrors) field errors")
    }

    @Test("however the bytes are split and the lines end, a replay gives the same updates")
    func splitAnywhere() throws {
        var fuzz = Fuzz(seed: 1616)
        for i in 0..<max(1, Fuzz.cases(default: 200) / 10) {
            let lines = Array(fuzz.pick(Self.corpus).prefix(fuzz.int(1...200)))
            var whole: [InsightUpdate] = []
            var whole1 = Fuzz(seed: 0)
            _ = try Self.replay(Array(lines.joined(separator: "\n").utf8), &whole1, into: &whole)
            let ending = fuzz.pick(["\r\n", "\r", "\n"])
            var split: [InsightUpdate] = []
            _ = try Self.replay(Array(lines.joined(separator: ending).utf8), &fuzz, into: &split)
            #expect(split == whole, "case \(i) (\(fuzz.seedDescription)), ending \(ending.debugDescription)")
        }
    }
}
