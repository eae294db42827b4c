import Foundation
import TapioAgent
import TapioCorrelation
import TapioModel
import TapioSinks

/// `tapio replay FILE`: a scenario through the engine at full speed, each insight update as one JSON line.
///
/// Streams: the input is read in 64 KiB chunks and each update is written as it comes (output is flushed before
/// every read, so a pipe sees updates while its writer is still going). Memory does not grow with the file.
struct ReplayRunner {
    let command: ReplayCommand

    func run() throws {
        let file = command.file ?? "-"
        var config: CorrelationConfig?
        if let p = command.policy {
            config = EffectiveConfig.merge([try PolicyFile.load(p)]).correlation
            // A scenario may span nodes: group systemic failures by image and namespace too, as the engine's default.
            config?.clusterHealthByNodeOnly = false
        }
        let fd: Int32
        if file == "-" {
            fd = STDIN_FILENO
        } else {
            fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw ExitMessage("\(file): cannot open it: \(String(cString: strerror(errno)))")
            }
        }
        defer { if fd != STDIN_FILENO { close(fd) } }
        var output = OutputBuffer()
        var replay = ScenarioReplayer(config: config)
        let emit: (InsightUpdate) throws -> Void = { output.append(JSONLines.encode($0, replay: true)) }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        do {
            while true {
                output.flush()
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ExitMessage("\(file): cannot read it: \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                try chunk.withUnsafeBufferPointer {
                    try replay.feed(UnsafeBufferPointer(rebasing: $0[..<n]), emit: emit)
                }
            }
            try replay.finish(emit: emit)
        } catch let e as ScenarioError {
            output.flush()
            throw ExitMessage("\(file): \(e)")
        }
        output.flush()
    }
}

/// Standard output, written in large pieces.
private struct OutputBuffer {
    private var bytes: [UInt8] = []

    mutating func append(_ line: String) {
        bytes.append(contentsOf: line.utf8)
        bytes.append(0x0A)
        if bytes.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        StandardStream.output.write(bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}
