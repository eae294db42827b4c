import Foundation
import Testing

@testable import TapioCorrelation

/// Scenario files as bytes: line endings, encodings, lines that never end, input split anywhere.
@Suite("Scenario text handling", .timeLimit(.minutes(2)))
struct ScenarioTextTests {
    static let lines = [
        #"{"tapioScenario": 1, "duration": 30}"#,
        #"{"t": 0, "type": "pod", "pod": "d/a", "containers": [{"name": "app", "limit": "256Mi"}]}"#,
        #"{"t": 1, "type": "oomKill", "pod": "d/a", "container": "app", "pid": 7, "anon": "250Mi"}"#,
    ]

    func replay(_ bytes: [UInt8], chunk: Int = 1 << 16) throws -> [InsightUpdate] {
        var replay = ScenarioReplayer()
        var out: [InsightUpdate] = []
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + chunk)
            try bytes[i..<end].withUnsafeBufferPointer { try replay.feed($0) { out.append($0) } }
            i = end
        }
        try replay.finish { out.append($0) }
        return out
    }

    func error(_ bytes: [UInt8]) -> ScenarioError? {
        do {
            _ = try replay(bytes)
            return nil
        } catch {
            return error as? ScenarioError
        }
    }

    @Test(
        "LF, CRLF, lone CR and a byte-order mark read the same, however the bytes are split",
        arguments: ["\n", "\r\n", "\r"], [false, true])
    func lineEndings(ending: String, bom: Bool) throws {
        let expected = try replay(Array((Self.lines.joined(separator: "\n") + "\n").utf8))
        #expect(expected.contains { $0.identity.type == .oomKilled })
        let text = Self.lines.joined(separator: ending) + ending
        let bytes = (bom ? [0xEF, 0xBB, 0xBF] : []) + Array(text.utf8)
        for chunk in [1, 2, 3, 7, 1 << 16] {
            #expect(
                try replay(bytes, chunk: chunk) == expected, "ending \(ending.debugDescription), chunks of \(chunk)")
        }
    }

    @Test("a CRLF file gets its errors on the right line")
    func crlfLineNumbers() {
        let text = Self.lines.joined(separator: "\r\n") + "\r\n\r\n" + #"{"t": 2, "type": "teleport"}"# + "\r\n"
        #expect(error(Array(text.utf8))?.line == 5)
    }

    @Test("invalid UTF-8 is an error naming its line")
    func invalidUTF8() {
        var bytes = Array((Self.lines[0] + "\n" + Self.lines[1] + "\n").utf8)
        bytes += Array(#"{"t": 2, "type": "exec", "pid": 1, "comm": ""#.utf8) + [0xC3, 0x28] + Array("\"}\n".utf8)
        #expect(error(bytes)?.description == "line 3: not valid UTF-8")
    }

    @Test("a line longer than 1 MiB is refused as soon as it passes the limit, without reading the rest")
    func overlongLine() throws {
        var replay = ScenarioReplayer()
        let header = Array((Self.lines[0] + "\n").utf8)
        try header.withUnsafeBufferPointer { try replay.feed($0) { _ in } }
        let chunk = [UInt8](repeating: 0x20, count: 1 << 16)
        var fed = 0
        var thrown: ScenarioError?
        // An endless line: stop feeding at 4 MiB; the error must have come long before.
        while fed < 4 << 20, thrown == nil {
            do {
                try chunk.withUnsafeBufferPointer { try replay.feed($0) { _ in } }
                fed += chunk.count
            } catch {
                thrown = error as? ScenarioError
            }
        }
        let e = try #require(thrown)
        #expect(fed <= ScenarioLineSplitter.maxLineBytes)
        #expect(e.description == "line 2: longer than 1048576 bytes (1 MiB), the longest line a scenario may have")
    }

    @Test("a line of exactly 1 MiB is still read")
    func longestLine() throws {
        let event = #"{"t": 1, "type": "exec", "pid": 1, "comm": "x"}"#
        let padded = event + String(repeating: " ", count: ScenarioLineSplitter.maxLineBytes - event.utf8.count)
        #expect(throws: Never.self) { try replay(Array((Self.lines[0] + "\n" + padded + "\n").utf8)) }
    }

    @Test("a file without a final line break still has its last line read")
    func noFinalLineBreak() throws {
        let updates = try replay(Array(Self.lines.joined(separator: "\n").utf8))
        #expect(updates.contains { $0.identity.type == .oomKilled })
    }
}
