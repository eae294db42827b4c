import Foundation
import KubeClient
import TapioTestSupport
import Testing

/// The watch stream's line splitter and event decoder, without a socket.
@Suite("Watch stream decoding", .timeLimit(.minutes(1)))
struct WatchDecodingTests {
    static let stream = """
        {"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"5"}}}
        {"type":"MODIFIED","object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"6"}}}\r

        {"type":"BOOKMARK","object":{"kind":"Lease","metadata":{"resourceVersion":"9"}}}
        {"type":"DELETED","object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"10"}}}
        {"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}}
        """

    /// Every line the splitter returns for `bytes` fed in `chunks`, then the unterminated rest.
    static func lines(_ bytes: [UInt8], chunks: [Int], limit: Int = 1 << 20) throws(KubeError) -> [[UInt8]] {
        var splitter = WatchLineSplitter(maxLineBytes: limit)
        var out: [[UInt8]] = []
        var i = 0
        for size in chunks where i < bytes.count {
            let end = min(bytes.count, i + size)
            splitter.append(bytes[i..<end])
            i = end
            while let line = try splitter.nextLine() { out.append(Array(line)) }
        }
        splitter.append(bytes[i...])
        while let line = try splitter.nextLine() { out.append(Array(line)) }
        if let rest = try splitter.finish() { out.append(Array(rest)) }
        return out
    }

    @Test func linesSplitAtEveryPossibleChunkSizeGiveTheSameEvents() throws {
        let bytes = Array(Self.stream.utf8)
        let whole = try Self.lines(bytes, chunks: [bytes.count])
        #expect(whole.count == 5, "blank lines are skipped, the last line needs no newline")
        for size in 1...64 {
            #expect(try Self.lines(bytes, chunks: Array(repeating: size, count: bytes.count)) == whole, "chunks of \(size)")
        }
        let events = try whole.map { line throws(KubeError) in try WatchEvent<Lease>.decode(line: line) }
        guard case .added(let a) = events[0], case .modified(let m) = events[1], case .bookmark(let rv) = events[2],
              case .deleted = events[3], case .error(let e) = events[4], case .gone = e else {
            Issue.record("unexpected events \(events)")
            return
        }
        #expect(a.metadata.resourceVersion == "5")
        #expect(m.metadata.resourceVersion == "6", "a CRLF line ending decodes too")
        #expect(rv == "9")
    }

    @Test func aLineLongerThanTheLimitFailsBeforeMoreThanTheLimitIsHeld() throws {
        var splitter = WatchLineSplitter(maxLineBytes: 1000)
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 300)
        var thrown: KubeError?
        for _ in 0..<100 {
            splitter.append(chunk)
            #expect(splitter.pendingBytes <= 1000 + chunk.count, "never holds more than the limit and one chunk")
            do { _ = try splitter.nextLine() } catch { thrown = error; break }
        }
        guard case .responseTooLarge(let limit, let message)? = thrown else {
            Issue.record("expected responseTooLarge, got \(String(describing: thrown))")
            return
        }
        #expect(limit == 1000)
        #expect(message.contains("1000 bytes"))
        // A complete line over the limit that arrives in one piece is refused as well.
        var whole = WatchLineSplitter(maxLineBytes: 10)
        whole.append(Array("0123456789ABCDEF\n".utf8))
        #expect(throws: KubeError.self) { _ = try whole.nextLine() }
    }

    @Test func aLongLineArrivingInSmallChunksIsSplitInLinearTime() throws {
        // A 4 MiB line in 256-byte chunks, then 20,000 short lines in 7-byte chunks. Rescanning the held bytes
        // for a newline at every chunk (as before) makes the long line cost 16,384 scans of up to 4 MiB: hours in
        // a debug build, where the suite's time limit stops it.
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 4 << 20) + [10]
        let short = Array(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"1"}}}"#.utf8) + [10]
        var splitter = WatchLineSplitter(maxLineBytes: 8 << 20)
        var lengths: [Int] = []
        func feed(_ bytes: [UInt8], _ size: Int) throws(KubeError) {
            var i = 0
            while i < bytes.count {
                splitter.append(bytes[i..<min(bytes.count, i + size)])
                i += size
                while let line = try splitter.nextLine() { lengths.append(line.count) }
            }
        }
        try feed(long, 256)
        try feed(Array([[UInt8]](repeating: short, count: 20_000).joined()), 7)
        #expect(lengths.first == 4 << 20)
        #expect(lengths.count == 20_001)
        #expect(splitter.pendingBytes == 0)
    }

    @Test func undecodableLinesAreDecodingErrorsNamingTheKind() {
        for text in ["", "{", "[]", #"{"type":"ADDED"}"#, #"{"type":"WHAT","object":{}}"#, #"{"type":7}"#] {
            #expect {
                _ = try WatchEvent<Lease>.decode(line: Array(text.utf8))
            } throws: { e in
                guard case KubeError.decoding(let type, _) = e else { return false }
                return type.contains("Lease")
            }
        }
        // A well-formed event whose object is not a Lease is not a broken line: it is reported and skipped.
        let odd = try? WatchEvent<Lease>.decode(line: Array(#"{"type":"ADDED","object":{"metadata":{"name":"x","resourceVersion":5}}}"#.utf8))
        guard case .undecodable("ADDED", let object) = odd else { Issue.record("got \(String(describing: odd))"); return }
        #expect(object.name == "x" && object.resourceVersion == nil && object.message.contains("resourceVersion"))
    }
}
