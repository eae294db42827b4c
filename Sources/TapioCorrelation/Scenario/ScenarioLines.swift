/// Splits a byte stream into lines as the bytes arrive, holding at most one line.
///
/// `\n`, `\r\n` and a lone `\r` each end a line (files written on Windows and old Macs read the same; JSON cannot
/// hold a raw CR inside a line, so nothing is lost). A line longer than ``maxLineBytes`` is an error naming it,
/// raised as soon as the limit is passed — a line that never ends is not buffered.
public struct ScenarioLineSplitter: Sendable {
    /// The longest line a scenario may have: 1 MiB, far above any event (a pod with many containers is a few KB).
    public static let maxLineBytes = 1 << 20

    private var pending: [UInt8] = []
    /// The previous chunk ended in `\r`: a `\n` starting this one belongs to it.
    private var afterCR = false
    /// The number of the line being collected (1-based).
    public private(set) var lineNumber = 1

    public init() {}

    /// Feeds the next bytes; `line` gets each complete line (without its terminator) and its number.
    public mutating func feed(
        _ chunk: UnsafeBufferPointer<UInt8>,
        line: (UnsafeBufferPointer<UInt8>, Int) throws -> Void
    ) throws {
        var i = 0
        let n = chunk.count
        if afterCR, n > 0 {
            afterCR = false
            if chunk[0] == 0x0A { i = 1 }
        }
        while i < n {
            var j = i
            while j < n, chunk[j] != 0x0A, chunk[j] != 0x0D { j += 1 }
            let piece = UnsafeBufferPointer(rebasing: chunk[i..<j])
            guard pending.count + piece.count <= Self.maxLineBytes else { throw tooLong() }
            if j == n {
                pending.append(contentsOf: piece)
                return
            }
            if pending.isEmpty {
                try line(piece, lineNumber)
            } else {
                pending.append(contentsOf: piece)
                try pending.withUnsafeBufferPointer { try line($0, lineNumber) }
                pending.removeAll(keepingCapacity: true)
            }
            lineNumber += 1
            if chunk[j] == 0x0D {
                if j + 1 == n {
                    afterCR = true
                } else if chunk[j + 1] == 0x0A {
                    j += 1
                }
            }
            i = j + 1
        }
    }

    /// Hands over the last line if the input did not end with a line break.
    public mutating func finish(line: (UnsafeBufferPointer<UInt8>, Int) throws -> Void) throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBufferPointer { try line($0, lineNumber) }
        pending = []
        lineNumber += 1
    }

    /// Lines seen so far, the last one included once it ended.
    public var linesRead: Int { pending.isEmpty ? lineNumber - 1 : lineNumber }

    private func tooLong() -> ScenarioError {
        ScenarioError(
            line: lineNumber, field: nil,
            message: "longer than \(Self.maxLineBytes) bytes (1 MiB), the longest line a scenario may have")
    }
}
