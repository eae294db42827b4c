import Foundation
import KubeClient
import TapioKube
import TapioModel

/// Loads a TapioPolicy manifest (YAML or JSON) for `--policy`: refused with every problem listed (file, line,
/// column, field path), accepted with its warnings (unknown fields, settings that do nothing) printed on stderr.
enum PolicyFile {
    static func load(_ path: String) throws -> TapioPolicy {
        let data: Data
        do { data = try BoundedFile.read(path, limit: BoundedFile.textLimit) } catch {
            throw ExitMessage("--policy \(path): \(error)")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            let bytes = [UInt8](data)
            let offset = Self.firstInvalidUTF8(bytes)
            let line = bytes[..<offset].reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            throw ExitMessage("--policy \(path):\(line): not UTF-8 text (byte \(offset) starts no valid UTF-8 sequence)")
        }
        let loaded: PolicyManifest.Loaded
        do { loaded = try PolicyManifest.load(text: text, file: path) } catch {
            throw ExitMessage("--policy \(path) is not valid:\n" + error.problems.map { "  " + $0 }.joined(separator: "\n"))
        }
        for w in loaded.warnings { StandardStream.error.write(w + "\n") }
        return loaded.policy
    }

    /// The offset of the first byte that starts no valid UTF-8 sequence (for the message; overlong forms are left to
    /// the standard library's check, which already failed).
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let n = b < 0x80 ? 1 : (0xC2...0xDF).contains(b) ? 2 : (0xE0...0xEF).contains(b) ? 3 : (0xF0...0xF4).contains(b) ? 4 : 0
            if n == 0 || i + n > bytes.count { return i }
            for j in 1..<n where bytes[i + j] & 0xC0 != 0x80 { return i }
            i += n
        }
        return bytes.count
    }
}
