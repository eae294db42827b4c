import Foundation
import Testing
@testable import TapioNode

/// Readers against files written in a temporary directory: formats and edge cases the kernel tests cannot force.
@Suite(.timeLimit(.minutes(2))) struct CgroupMemoryReaderFileTests {
    func directory(_ files: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "tapio-memfiles-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8) }
        return dir
    }

    let v2Files = [
        "memory.current": "104857600\n",
        "memory.max": "max\n",
        "memory.stat": "anon 73400320\nfile 31457280\ninactive_file 20971520\nactive_file 10485760\n",
        "memory.events": "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
        "memory.pressure": "some avg10=1.50 avg60=0.75 avg300=0.10 total=123456\nfull avg10=0.50 avg60=0.25 avg300=0.05 total=65432\n",
    ]

    @Test func v2FilesGiveUsageWorkingSetRSSCacheOOMCountsAndPressureWithMaxMeaningUnlimited() throws {
        let dir = try directory(v2Files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try CgroupMemoryReader(directory: dir, version: .v2).read()
        #expect(s.usageBytes == 104_857_600)
        #expect(s.limitBytes == nil)
        #expect(s.workingSetBytes == 104_857_600 - 20_971_520)
        #expect(s.rssBytes == 73_400_320)
        #expect(s.cacheBytes == 31_457_280)
        #expect(s.oomEvents == 3)
        #expect(s.oomKills == 2)
        #expect(s.failcnt == nil)
        #expect(s.pressure?.someAvg10 == 1.5)
        #expect(s.pressure?.fullTotalMicros == 65432)
    }

    @Test func aV2NumericLimitIsReportedAndWorkingSetClampsAtZero() throws {
        var files = v2Files
        files["memory.max"] = "268435456\n"
        files["memory.current"] = "1000\n"
        files["memory.pressure"] = nil
        let dir = try directory(files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try CgroupMemoryReader(directory: dir, version: .v2).read()
        #expect(s.limitBytes == 268_435_456)
        #expect(s.workingSetBytes == 0)
        #expect(s.pressure == nil)
    }

    @Test func v1HugeLimitMeansUnlimited() throws {
        let dir = try directory([
            "memory.usage_in_bytes": "5000\n", "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.stat": "cache 100\nrss 200\ntotal_cache 300\ntotal_rss 400\ntotal_inactive_file 1000\n",
            "memory.failcnt": "7\n", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try CgroupMemoryReader(directory: dir, version: .v1).read()
        #expect(s.limitBytes == nil)
        #expect(s.workingSetBytes == 4000)
        #expect(s.rssBytes == 400)
        #expect(s.cacheBytes == 300)
        #expect(s.failcnt == 7)
        #expect(s.oomKills == 4)
        #expect(s.underOOM == false)
    }

    @Test func aMissingFileIsATypedErrorNamingIt() throws {
        var files = v2Files
        files["memory.events"] = nil
        let dir = try directory(files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: CgroupReadError.unreadable(file: dir + "/memory.events", errno: Errno(ENOENT))) {
            try CgroupMemoryReader(directory: dir, version: .v2).read()
        }
    }

    @Test func garbageInANumberFileIsAMalformedErrorNamingIt() throws {
        var files = v2Files
        files["memory.current"] = "lots\n"
        let dir = try directory(files)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            _ = try CgroupMemoryReader(directory: dir, version: .v2).read()
            Issue.record("expected an error")
        } catch {
            guard case .malformed(let file, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(file == dir + "/memory.current")
        }
    }

    @Test func thePollersSampleAgreesWithTheFullReadAndSkipsUnlimitedCgroups() throws {
        var limited = v2Files
        limited["memory.max"] = "268435456\n"
        let v1 = [
            "memory.usage_in_bytes": "5000\n", "memory.limit_in_bytes": "67108864\n",
            "memory.stat": "cache 100\nrss 200\ninactive_file 50\ntotal_cache 300\ntotal_rss 400\ntotal_inactive_file 1000\n",
            "memory.failcnt": "7\n", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
        ]
        for (files, version) in [(limited, CgroupVersion.v2), (v1, .v1)] {
            let dir = try directory(files)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let reader = CgroupMemoryReader(directory: dir, version: version)
            let full = try reader.read()
            let sample = try #require(try reader.sample())
            #expect(sample.usageBytes == full.usageBytes)
            #expect(sample.workingSetBytes == full.workingSetBytes, "\(version)")
            #expect(sample.limitBytes == full.limitBytes)
        }
        // Unlimited: nil, after reading the limit alone (the other files may as well be missing).
        for (files, version) in [(["memory.max": "max\n"], CgroupVersion.v2),
                                 (["memory.limit_in_bytes": "9223372036854771712\n"], .v1)] {
            let dir = try directory(files)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            #expect(try CgroupMemoryReader(directory: dir, version: version).sample() == nil)
        }
    }

    @Test func statValueFindsWholeKeysOnly() {
        let text = "inactive_file_x 9\ntotal_inactive_file 1000\ninactive_file 50\n"
        #expect(CgroupMemoryReader.statValue(text, "inactive_file") == 50)
        #expect(CgroupMemoryReader.statValue(text, "total_inactive_file") == 1000)
        #expect(CgroupMemoryReader.statValue(text, "active_file") == nil)
        #expect(CgroupMemoryReader.statValue("inactive_file 18446744073709551616\n", "inactive_file") == nil, "overflow")
    }

    @Test func aRemovedCgroupIsAnErrorNotACrash() {
        let reader = CgroupMemoryReader(directory: "/nonexistent/tapio/\(UUID().uuidString)", version: .v1)
        #expect(throws: CgroupReadError.self) { try reader.read() }
    }
}
