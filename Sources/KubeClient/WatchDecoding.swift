import Foundation

/// Splits the bytes of a watch response into lines (one JSON event each), holding at most `maxLineBytes` of an
/// unfinished line. Chunks arrive at arbitrary boundaries; each byte is searched for a newline once, and consumed
/// lines are dropped from the front in bulk, so a stream costs linear time and bounded memory whatever its shape.
public struct WatchLineSplitter: Sendable {
    public let maxLineBytes: Int
    private var buffer: [UInt8] = []
    /// First byte of the line not yet returned.
    private var start = 0
    /// Bytes before this index (from `start`) are known to hold no newline.
    private var scanned = 0

    public init(maxLineBytes: Int) { self.maxLineBytes = max(1, maxLineBytes) }

    /// Bytes held for lines not yet returned.
    public var pendingBytes: Int { buffer.count - start }

    /// Adds received bytes.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        // Drop what was consumed once it is at least half the buffer: amortised O(1) per byte.
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            scanned -= start
            start = 0
        }
        // Grow geometrically, but never beyond what the limit can need: an endless line then costs the limit and
        // one chunk, not the doubled capacity an array would otherwise reach.
        let needed = buffer.count + bytes.underestimatedCount
        if needed > buffer.capacity {
            buffer.reserveCapacity(max(needed, min(buffer.capacity * 2, maxLineBytes + bytes.underestimatedCount + 1)))
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete line without its newline (and without a trailing `\r`), skipping blank lines; nil when no
    /// complete line is buffered. Throws `.responseTooLarge` for a line longer than `maxLineBytes`, complete or not:
    /// the caller must drop the connection.
    public mutating func nextLine() throws(KubeError) -> ArraySlice<UInt8>? {
        while true {
            guard let nl = buffer[Swift.max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = buffer.count
                if buffer.count - start > maxLineBytes { throw tooLong() }
                return nil
            }
            var line = buffer[start..<nl]
            start = nl + 1
            scanned = start
            if line.count > maxLineBytes { throw tooLong() }
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) { continue }
            return line
        }
    }

    /// At the end of the stream: the unterminated last line, if it holds anything but blanks.
    public mutating func finish() throws(KubeError) -> ArraySlice<UInt8>? {
        if let line = try nextLine() { return line }
        let rest = buffer[start...]
        start = buffer.count
        scanned = start
        if rest.count > maxLineBytes { throw tooLong() }
        return rest.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) ? nil : rest
    }

    private func tooLong() -> KubeError {
        .responseTooLarge(limit: maxLineBytes, message: "a watch event line exceeded \(ResponseLimits.describe(maxLineBytes))")
    }
}

private struct EnvelopeType: Decodable { var type: String }
private struct Envelope<T: Decodable>: Decodable { var object: T }
private struct BookmarkObject: Decodable { var metadata: ListMeta }

extension WatchEvent {
    /// Decodes one line of a watch stream (`{"type": …, "object": …}`). Every failure is a `KubeError.decoding`.
    public static func decode(line: some Collection<UInt8>) throws(KubeError) -> WatchEvent<K> {
        let data = Data(line)
        let d = KubeClient.decoder
        do {
            let t = try d.decode(EnvelopeType.self, from: data).type
            switch t {
            case "ADDED", "MODIFIED", "DELETED":
                let object: K
                do { object = try d.decode(Envelope<K>.self, from: data).object } catch {
                    // The line is a watch event; only its object is not a K. Skip it, not the stream.
                    guard let identity = try? d.decode(Envelope<UndecodableObject.Identity>.self, from: data).object else { throw error }
                    return .undecodable(type: t, UndecodableObject(identity: identity, error: error))
                }
                return t == "ADDED" ? .added(object) : t == "MODIFIED" ? .modified(object) : .deleted(object)
            case "BOOKMARK":
                return .bookmark(resourceVersion: try d.decode(Envelope<BookmarkObject>.self, from: data).object.metadata.resourceVersion ?? "")
            case "ERROR":
                return .error(KubeError.from(status: try d.decode(Envelope<KubeStatus>.self, from: data).object))
            default:
                throw KubeError.decoding(type: "WatchEvent<\(K.kind)>", message: "unknown event type \(t.prefix(64))")
            }
        } catch let e as KubeError {
            throw e
        } catch {
            throw KubeError.decoding(type: "WatchEvent<\(K.kind)>", message: "\(String(describing: error).prefix(512))")
        }
    }
}
