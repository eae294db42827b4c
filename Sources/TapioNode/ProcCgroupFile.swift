/// Which cgroup hierarchy a path belongs to.
public enum CgroupVersion: String, Sendable, Hashable {
    /// A legacy hierarchy (the `memory` one).
    case v1
    /// The unified hierarchy (`0::/…`).
    case v2
}

/// A process's memory cgroup as `/proc/<pid>/cgroup` names it.
public struct ProcCgroupEntry: Sendable, Hashable {
    public var version: CgroupVersion
    /// Relative to the hierarchy's root, starting with `/`.
    public var path: String
    public init(version: CgroupVersion, path: String) {
        self.version = version
        self.path = path
    }
}

public enum ProcCgroupFile {
    /// The memory cgroup in the contents of `/proc/<pid>/cgroup`: the v1 line whose controllers include `memory`
    /// when there is one (hybrid hosts), else the v2 `0::` line. Nil when neither is present.
    public static func memoryCgroup(in contents: String) -> ProcCgroupEntry? {
        var unified: Substring? = nil
        for line in contents.split(separator: "\n") {
            // `hierarchy-id:controller-list:path`; the path itself may contain ':'.
            guard let first = line.firstIndex(of: ":") else { continue }
            let rest = line[line.index(after: first)...]
            guard let second = rest.firstIndex(of: ":") else { continue }
            let controllers = rest[..<second]
            let path = Substring(rest[rest.index(after: second)...])
            if controllers.isEmpty {
                if line[..<first] == "0" { unified = path }
            } else if controllers.split(separator: ",").contains("memory") {
                return ProcCgroupEntry(version: .v1, path: String(path))
            }
        }
        return unified.map { ProcCgroupEntry(version: .v2, path: String($0)) }
    }

    /// The same as ``memoryCgroup(in:)`` over raw bytes, without building intermediate strings (the uncached
    /// lookup's path).
    public static func memoryCgroup(bytes: UnsafeBufferPointer<UInt8>) -> ProcCgroupEntry? {
        let colon = UInt8(ascii: ":"), newline = UInt8(ascii: "\n"), comma = UInt8(ascii: ",")
        let memory = Array("memory".utf8)
        var unified: Range<Int>? = nil
        var lineStart = 0
        let end = bytes.count
        while lineStart < end {
            var lineEnd = lineStart
            while lineEnd < end, bytes[lineEnd] != newline { lineEnd += 1 }
            defer { lineStart = lineEnd + 1 }
            var first = lineStart
            while first < lineEnd, bytes[first] != colon { first += 1 }
            guard first < lineEnd else { continue }
            var second = first + 1
            while second < lineEnd, bytes[second] != colon { second += 1 }
            guard second < lineEnd else { continue }
            let pathRange = (second + 1)..<lineEnd
            if second == first + 1 {
                if first == lineStart + 1, bytes[lineStart] == UInt8(ascii: "0") { unified = pathRange }
                continue
            }
            // Look for the exact token `memory` in the comma-separated controller list.
            var tokenStart = first + 1
            while tokenStart < second {
                var tokenEnd = tokenStart
                while tokenEnd < second, bytes[tokenEnd] != comma { tokenEnd += 1 }
                if tokenEnd - tokenStart == memory.count,
                   (0..<memory.count).allSatisfy({ bytes[tokenStart + $0] == memory[$0] }) {
                    return ProcCgroupEntry(version: .v1, path: String(decoding: UnsafeBufferPointer(rebasing: bytes[pathRange]), as: UTF8.self))
                }
                tokenStart = tokenEnd + 1
            }
        }
        return unified.map { ProcCgroupEntry(version: .v2, path: String(decoding: UnsafeBufferPointer(rebasing: bytes[$0]), as: UTF8.self)) }
    }

    /// Reads `/proc/<pid>/cgroup` (under `procRoot`) and returns the memory cgroup; nil when the process is gone.
    static func read(pid: Int32, procRoot: String) -> ProcCgroupEntry? {
        let path = procRoot + "/" + String(pid) + "/cgroup"
        switch FileIO.withBytes(path, { memoryCgroup(bytes: $0) }) {
        case .success(let entry): return entry
        case .failure: return nil
        case nil:
            guard case .success(let text) = FileIO.read(path, limit: 1 << 20) else { return nil }
            return memoryCgroup(in: text)
        }
    }
}
