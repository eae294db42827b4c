import Foundation
import Logging
import Synchronization
@testable import TapioAgent
import TapioSinks
import Testing

/// The agent gives back the pages of code only its start-up ran (`ProcessFilePages`, `StartupPageRelease`). Tried on
/// a file of this test's own, mapped the way a program's code is (read-only, private): releasing the whole test
/// process would slow every test after it.
@Suite(.timeLimit(.minutes(2)))
struct StartupPagesTests {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// A directory on a disk filesystem, spelled as /proc/self/maps spells it (symbolic links resolved): the temporary
    /// directory, unless it is tmpfs (Fedora, Debian trixie), else the current one (the package, when testing).
    static func diskDirectory() -> String {
        for candidate in [FileManager.default.temporaryDirectory.path, FileManager.default.currentDirectoryPath] {
            guard let resolved = realpath(candidate, nil) else { continue }
            let real = String(cString: resolved)
            free(resolved)
            if filesystemType(of: real) != "tmpfs" { return real }
        }
        return FileManager.default.currentDirectoryPath
    }

    /// The type of the filesystem `path` is on: the longest mount point of /proc/self/mounts that contains it.
    static func filesystemType(of path: String) -> String? {
        guard let mounts = FileHandle(forReadingAtPath: "/proc/self/mounts")?.readDataToEndOfFile() else { return nil }
        var best: (point: String, type: String)?
        for line in String(decoding: mounts, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 3 else { continue }
            let point = String(f[1])
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            if inside, point.count > (best?.point.count ?? -1) { best = (point, String(f[2])) }
        }
        return best?.type
    }

    /// A file of `pages` pages on disk (not tmpfs: its pages would be shmem), written and synced — clean pages, which
    /// reclaim may drop — then mapped read-only and private, like a program's text.
    final class MappedFile {
        let path: String
        let base: UnsafeMutableRawPointer
        let length: Int
        /// Whether this object wrote the file (and removes it), or maps another's.
        let owner: Bool
        init(pages: Int, writable: Bool = false, sharing other: MappedFile? = nil) throws {
            path = other?.path ?? StartupPagesTests.diskDirectory() + "/tapio-pages-" + UUID().uuidString
            length = pages * StartupPagesTests.pageSize
            owner = other == nil
            if owner { try Data(repeating: 0x5a, count: length).write(to: URL(fileURLWithPath: path)) }
            let fd = open(path, writable ? O_RDWR : O_RDONLY)
            guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
            defer { close(fd) }
            _ = fsync(fd)
            let p = mmap(nil, length, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
            base = p
        }
        /// Reads a byte of every page (or of `page` only): the kernel maps it in.
        func touch(page: Int? = nil) -> UInt64 {
            var sum: UInt64 = 0
            for i in page.map({ [$0] }) ?? Array(0..<length / StartupPagesTests.pageSize) {
                sum &+= UInt64(base.load(fromByteOffset: i * StartupPagesTests.pageSize, as: UInt8.self))
            }
            return sum
        }
        /// Pages of the file in the page cache (mincore), mapped or not.
        func cachedPages() -> Int {
            var vec = [UInt8](repeating: 0, count: length / StartupPagesTests.pageSize)
            guard mincore(base, length, &vec) == 0 else { return -1 }
            return vec.reduce(0) { $0 + Int($1 & 1) }
        }
        /// This mapping's resident KiB (its `Rss:` in /proc/self/smaps).
        func residentKiB() -> Int? {
            // Read to the end (a /proc file says it has size 0).
            guard let data = FileHandle(forReadingAtPath: "/proc/self/smaps")?.readDataToEndOfFile() else { return nil }
            let text = String(decoding: data, as: UTF8.self)
            let start = String(UInt(bitPattern: base), radix: 16) + "-"
            var inside = false
            for line in text.split(separator: "\n") {
                if line.first?.isHexDigit == true, line.contains("-") && line.contains(" ") && !line.hasPrefix("Anon") {
                    inside = line.hasPrefix(start) && line.hasSuffix(" " + path)
                } else if inside, line.hasPrefix("Rss:") {
                    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
                }
            }
            return nil
        }
        deinit {
            munmap(base, length)
            if owner { unlink(path) }
        }
    }

    @Test func releasingAFilesMappingUnmapsItsPagesAndDropsThemFromThePageCache() throws {
        let file = try MappedFile(pages: 1024)
        _ = file.touch()
        let before = try #require(file.residentKiB(), "the mapping is not in /proc/self/smaps")
        #expect(before == 1024 * Self.pageSize / 1024, "every page touched is resident")
        let released = ProcessFilePages.release(randomAccess: true, onlyFile: file.path)
        #expect(released.errno == 0, "madvise or fadvise failed: errno \(released.errno)")
        #expect(released.mappings == 1)
        #expect(released.residentBefore == UInt64(before) * 1024)
        let after = try #require(file.residentKiB())
        let cached = file.cachedPages()
        print("[pages] mapping resident \(before) KiB -> \(after) KiB; \(cached) of 1024 pages still cached")
        // A page still in another CPU's LRU batch cannot be taken (a batch holds 15): all but a handful go.
        #expect(after * 8 <= before, "the released mapping still has \(after) of \(before) KiB resident")
        #expect(cached >= 0 && cached <= 1024 / 8, "\(cached) of the file's 1024 pages are still in the page cache")
        // Advised random-access: a page needed again is read alone, not with a readahead window around it (with
        // this machine's read_ahead_kb, the whole file).
        _ = file.touch(page: 512)
        let read = file.cachedPages() - cached
        print("[pages] one page read again: \(read) pages read, \(try #require(file.residentKiB())) KiB resident")
        #expect(read >= 0 && read <= 4, "reading one page brought \(read) pages into the page cache")
    }

    /// Pages another mapping shares are not paged out (the kernel's rule: on the operator's node, the operator maps the
    /// same image's binary): the program's own mapping is unmapped all the same. (The kernel's other refusal, a file
    /// the process neither owns nor may write, takes the same path; a root test cannot show it.)
    @Test func aMappingWhosePagesAnotherMappingSharesIsUnmappedAllTheSame() throws {
        let file = try MappedFile(pages: 256)
        // The other mapping: writable (so not one the release advises), only read (so its pages are the file's).
        let other = try MappedFile(pages: 256, writable: true, sharing: file)
        _ = other.touch()
        _ = file.touch()
        let before = try #require(file.residentKiB(), "the mapping is not in /proc/self/smaps")
        #expect(before == 256 * Self.pageSize / 1024, "every page touched is resident")
        let released = ProcessFilePages.release(randomAccess: true, onlyFile: file.path)
        #expect(released.errno == 0, "madvise or fadvise failed: errno \(released.errno)")
        #expect(released.mappings == 1, "only the read-only mapping is advised")
        let after = try #require(file.residentKiB())
        // Printed, not asserted: whether the kernel's page-out takes pages two mappings of one process share is the
        // kernel's rule, not the release's (6.18 refuses); what the release owes is its own mapping's pages.
        let otherAfter = other.residentKiB() ?? -1
        print("[pages] shared: released mapping \(before) KiB -> \(after) KiB; the other mapping \(otherAfter) KiB, \(file.cachedPages()) of 256 pages cached")
        #expect(after * 8 <= before, "the released mapping still has \(after) of \(before) KiB resident")
        // Read again, a page comes back from the page cache as it was.
        #expect(file.touch(page: 7) == 0x5a)
    }

    /// A mapping with a page written (copy-on-write: anonymous, like relocated data) would go to swap, not back to
    /// its file: left alone, even once it is read-only again; so is one still writable.
    @Test func mappingsWithAnonymousPagesAndWritableOnesAreLeftAlone() throws {
        let relocated = try MappedFile(pages: 16, writable: true)
        _ = relocated.touch()
        relocated.base.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
        #expect(ProcessFilePages.release(randomAccess: true, onlyFile: relocated.path).mappings == 0, "a writable mapping")
        #expect(mprotect(relocated.base, relocated.length, PROT_READ) == 0)
        let released = ProcessFilePages.release(randomAccess: true, onlyFile: relocated.path)
        #expect(released.mappings == 0, "a read-only mapping holding an anonymous page")
        #expect(relocated.residentKiB() == 16 * Self.pageSize / 1024)
    }

    @Test func theAgentsReleaseWaitsForStartUpThenReleasesOnce() async throws {
        let started = Mutex(false), calls = Mutex(0), checks = Mutex(0)
        let release = StartupPageRelease(delay: .milliseconds(10), isStarted: {
            checks.withLock { $0 += 1 }
            return started.withLock { $0 }
        },
                                         logger: Logger(label: "test"),
                                         release: { calls.withLock { $0 += 1 }; return .init(mappings: 3, residentBefore: 1 << 20, errno: 0) })
        let task = Task { await release.run() }
        // Not started: it keeps asking, and releases nothing (two of its 1-s polls).
        while checks.withLock({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(calls.withLock { $0 } == 0, "released before start-up")
        started.withLock { $0 = true }
        await task.value
        #expect(calls.withLock { $0 } == 1)
    }

    /// An operator replica that becomes the leader during the delay lists everything again: what it is then
    /// running is start-up too, so the release waits for it to be started again.
    @Test func aReleaseWaitsAgainWhenNoLongerStartedAfterTheDelay() async {
        // Asked in turn: started; after the delay, not (became leader); not; started; after the delay, started.
        let answers = [true, false, false, true, true]
        let checks = Mutex(0), releasedAt = Mutex<Int?>(nil)
        let release = StartupPageRelease(delay: .milliseconds(10), isStarted: {
            checks.withLock { n in
                defer { n += 1 }
                return n < answers.count ? answers[n] : true
            }
        }, logger: Logger(label: "test"), release: {
            releasedAt.withLock { $0 = checks.withLock { $0 } }
            return .init(mappings: 1, residentBefore: 0, errno: 0)
        })
        await release.run()
        #expect(releasedAt.withLock { $0 } == answers.count, "released after \(String(describing: releasedAt.withLock { $0 })) checks")
    }

    @Test func aCancelledReleaseDoesNothing() async {
        let calls = Mutex(0)
        let release = StartupPageRelease(delay: .zero, isStarted: { false }, logger: Logger(label: "test"),
                                         release: { calls.withLock { $0 += 1 }; return .init(mappings: 0, residentBefore: 0, errno: 0) })
        let task = Task { await release.run() }
        task.cancel()
        await task.value
        #expect(calls.withLock { $0 } == 0)
    }

    @Test func residentMemoryIsReadFromStatus() throws {
        let status = "Name:\ttapio\nVmRSS:\t   28564 kB\nRssAnon:\t    6160 kB\nRssFile:\t   22400 kB\nRssShmem:\t       4 kB\n"
        #expect(Resident.parse(status: status) == Resident(anonymous: 6160 * 1024, file: 22400 * 1024, shmem: 4096))
        #expect(Resident.parse(status: "RssAnon:\t1 kB\nRssFile:\t2 kB\n") == nil, "RssShmem missing")
        #expect(Resident.parse(status: "RssAnon:\t99999999999999999999 kB\nRssFile:\t2 kB\nRssShmem:\t0 kB\n") == nil, "does not fit")
        #expect(Resident.parse(status: "RssAnon:\t18014398509481984 kB\nRssFile:\t2 kB\nRssShmem:\t0 kB\n") == nil, "overflows in bytes")
        let mine = try #require(Resident.current(), "no Rss lines in /proc/self/status")
        #expect(mine.anonymous > 0 && mine.file > 0)
        let text = String(decoding: TapioMetrics().render(), as: UTF8.self)
        #expect(text.contains(#"tapio_process_resident_bytes{kind="file"}"#), "\(text)")
    }
}
