import Foundation
import Synchronization
import TapioAgent
import TapioCorrelation
import TapioModel
import TapioNode
import TapioSinks
import TapioTestSupport
import Testing

/// Every node event is `app` of pod shop/api-0 (Deployment api).
struct FixedAttribution: Attributor {
    static let pod = PodRef(namespace: "shop", name: "api-0", uid: "u-api-0")
    func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?) {
        (.podContainer(Self.pod, container: "app"), SubjectContext(owner: OwnerRef(kind: "Deployment", name: "api"), node: "n1"))
    }
    func observe(_ event: ClusterEvent) {}
}

/// The agent's state file (`--state-file`): the engine's memory beyond its window, kept across restarts.
@Suite(.timeLimit(.minutes(2)))
struct EngineMemoryFileTests {
    /// A directory of the test's own, removed after it.
    final class Scratch {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-state-test-\(UUID().uuidString)")
        func path(_ name: String) -> String { url.appendingPathComponent(name).path }
        deinit { try? FileManager.default.removeItem(at: url) }
    }

    /// An engine's memory with `pods` pod containers' histories, taken at `at` seconds past a fixed start.
    static func memory(pods: Int, at seconds: UInt64 = 600) -> EngineMemory {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        let t0: UInt64 = 1_795_000_000 * 1_000_000_000
        for k in stride(from: 0, through: seconds, by: 10) {
            let t = t0 + k * 1_000_000_000
            for p in 0..<pods {
                engine.ingest(.node(NodeEvent(timestampNanos: t, pid: 1, cgroupID: 7, comm: "app",
                                              kind: .cgroupMemory(.init(usageBytes: 300 << 20, workingSetBytes: 300 << 20, limitBytes: 1 << 30))),
                                    subject: .podContainer(PodRef(namespace: "shop", name: "api-\(p)", uid: "u-\(p)"), container: "app"),
                                    context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: "api"), node: "n1")),
                              now: t, into: &out)
            }
        }
        return engine.memory(now: t0 + seconds * 1_000_000_000)
    }

    @Test func writtenWholeAndReadBackAtTheNextStart() async throws {
        let dir = Scratch()
        // Neither the directory nor the file exists yet: a first start.
        let path = dir.path("var/lib/tapio/engine-memory")
        do {  // (the first agent ends here, and its lock with it)
            let first = EngineMemoryFile(path: path, logger: .init(label: "test"))
            #expect(await first.load() == nil)
            #expect(first.stats.readOutcome == "none")
            first.writeNow(Self.memory(pods: 3))
            #expect(first.stats.writesSucceeded == 1 && first.stats.writesFailed == 0 && first.stats.lastWriteBytes > 0)
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(attributes[.posixPermissions] ?? "none")")
            #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        }
        let next = EngineMemoryFile(path: path, logger: .init(label: "test"))
        let back = try #require(await next.load())
        #expect(back.containerCount == 3 && next.stats.readOutcome == "restored")
    }

    @Test func aFileThatCannotBeReadBackIsMovedAsideNotLost() async throws {
        let dir = Scratch()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        let path = dir.path("engine-memory")
        var bytes = Array(EngineMemoryCodec.encode(Self.memory(pods: 2)).dropLast(100))
        bytes.append(contentsOf: [1, 2, 3])
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await file.load() == nil)
        #expect(file.stats.readOutcome == "invalid")
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + ".invalid")) == Data(bytes), "the bad file was not kept as it was")
        // The next write goes on as before, leaving the bad one for a person to look at.
        file.writeNow(Self.memory(pods: 1))
        #expect(try EngineMemoryCodec.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).containerCount == 1)
        #expect(FileManager.default.fileExists(atPath: path + ".invalid"))
    }

    @Test func aPathThatCannotBeWrittenIsCountedNotFatal() async throws {
        let dir = Scratch()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        // The state file's "directory" is a regular file.
        try Data("x".utf8).write(to: dir.url.appendingPathComponent("plain"))
        let file = EngineMemoryFile(path: dir.path("plain/engine-memory"), logger: .init(label: "test"))
        #expect(await file.load() == nil)
        #expect(file.stats.readOutcome == "unreadable")
        file.writeNow(Self.memory(pods: 1))
        file.writeNow(Self.memory(pods: 1))
        #expect(file.stats.writesFailed == 2 && file.stats.writesSucceeded == 0)
    }

    /// A FIFO at the state file's path (or at its lock's) held the agent's start for good: open(2) of a FIFO waits
    /// for a writer. Now it is refused unread, the lock is done without, and the agent starts.
    @Test func aFIFOAtThePathDoesNotHoldTheStart() async throws {
        let dir = Scratch()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        let path = dir.path("engine-memory")
        #expect(mkfifo(path, 0o600) == 0 && mkfifo(path + ".lock", 0o600) == 0)
        let file = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await file.load() == nil)
        #expect(file.stats.readOutcome == "unreadable")
        // Written over (the rename replaces the FIFO), without the lock.
        file.writeNow(Self.memory(pods: 1))
        #expect(file.stats.writesSucceeded == 1, "\(file.stats)")
        #expect(try Self.containers(in: path) == 1)
    }

    /// The last checkpoint at shutdown is the one left, whatever the writer was doing with the one before.
    @Test(arguments: 1...20)
    func theShutdownsSnapshotIsTheOneLeft(_ round: Int) throws {
        let dir = Scratch()
        let path = dir.path("engine-memory")
        let file = EngineMemoryFile(path: path, logger: .init(label: "test"))
        let running = Self.memory(pods: 1, at: 600), last = Self.memory(pods: 2, at: 610)
        file.submit(running)
        file.writeNow(last)
        #expect(try EngineMemoryCodec.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).containerCount == 2)
        let s = file.stats
        // Either the running one was written first, or it was dropped as superseded: never after the last.
        #expect(s.writesSucceeded + s.writesSuperseded == 2 && s.writesSucceeded >= 1, "\(s)")
    }

    @Test func aFileLargerThanAnyWrittenIsMovedAsideUnread() async throws {
        let dir = Scratch()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        let path = dir.path("engine-memory")
        let bytes = EngineMemoryCodec.encode(Self.memory(pods: 3))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            let fits = EngineMemoryFile(path: path, maxBytes: bytes.count, logger: .init(label: "test"))
            #expect(await fits.load()?.containerCount == 3)
        }
        let small = EngineMemoryFile(path: path, maxBytes: bytes.count - 1, logger: .init(label: "test"))
        #expect(await small.load() == nil)
        #expect(small.stats.readOutcome == "invalid")
        #expect(FileManager.default.fileExists(atPath: path + ".invalid") && !FileManager.default.fileExists(atPath: path))
    }

    /// A relative path is taken from the working directory (not changed here: tests run in parallel in one
    /// process), reaching the scratch directory through as many `..` as the working directory is deep.
    @Test func aRelativePathIsMadeFromTheWorkingDirectory() async throws {
        let dir = Scratch()
        let cwd = FileManager.default.currentDirectoryPath
        let up = String(repeating: "../", count: cwd.split(separator: "/").count)
        let relative = up + String(dir.path("state/sub/engine-memory").drop { $0 == "/" })
        #expect(!relative.hasPrefix("/"))
        let file = EngineMemoryFile(path: relative, logger: .init(label: "test"))
        #expect(await file.load() == nil && file.stats.readOutcome == "none")
        #expect(FileManager.default.fileExists(atPath: dir.path("state/sub")), "the directories were not made")
        file.writeNow(Self.memory(pods: 1))
        #expect(file.stats.writesSucceeded == 1)
        #expect(FileManager.default.fileExists(atPath: dir.path("state/sub/engine-memory")))
    }

    /// Two agents that keep running on one file (a second install sharing the hostPath, an agent run by hand beside
    /// the DaemonSet's): the second reads and writes nothing while it runs — each would otherwise rename its
    /// snapshots over the other's — even once the first is gone (it would write a memory that never held the file's
    /// over it); the next agent to start reads the file the first left.
    @Test func aSecondAgentOnTheSameFileLeavesItAlone() async throws {
        let dir = Scratch()
        let path = dir.path("engine-memory")
        var first: EngineMemoryFile? = await Self.firstAgent(on: path, writing: 3)
        let second = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await second.load(lockWait: .milliseconds(300)) == nil, "the second agent read a file the first one holds")
        #expect(second.stats.readOutcome == "locked" && !second.stats.waitingForLock)
        second.writeNow(Self.memory(pods: 1))
        second.submit(Self.memory(pods: 1))
        second.writeNow(Self.memory(pods: 1))  // (after the submitted one: the queue is serial)
        #expect(second.stats.writesLocked >= 2 && second.stats.writesSucceeded == 0, "\(second.stats)")
        #expect(try Self.containers(in: path) == 3, "the second agent wrote over the first's file")
        // The first keeps writing as before.
        first?.writeNow(Self.memory(pods: 4))
        #expect(first?.stats.writesSucceeded == 2)
        first = nil  // the first agent ends
        second.writeNow(Self.memory(pods: 2))
        #expect(second.stats.writesSucceeded == 0, "\(second.stats)")
        #expect(try Self.containers(in: path) == 4, "the second agent wrote over the file once the first was gone")
        // The next to start has it.
        let third = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await third.load(lockWait: .milliseconds(300))?.containerCount == 4 && third.stats.readOutcome == "restored")
    }

    /// A replacement started while its predecessor stops (the DaemonSet deleted and made again, or `maxSurge`) waits
    /// for the predecessor's lock, and starts from its last snapshot, written as it stopped.
    @Test func aReplacementWaitsForItsPredecessorsLastSnapshot() async throws {
        let dir = Scratch()
        let path = dir.path("engine-memory")
        var old: EngineMemoryFile? = await Self.firstAgent(on: path, writing: 1)
        let (replacement, loading) = await Self.replacementWaiting(on: path)
        // The predecessor's shutdown: its last snapshot, then its process (and its lock) ends.
        old?.writeNow(Self.memory(pods: 5))
        old = nil
        let memory = await loading.value
        #expect(memory?.containerCount == 5, "the replacement did not read its predecessor's last snapshot")
        #expect(replacement.stats.readOutcome == "restored" && !replacement.stats.waitingForLock)
        replacement.writeNow(Self.memory(pods: 2))
        #expect(replacement.stats.writesSucceeded == 1 && replacement.stats.writesLocked == 0)
    }

    /// Stopped while it waits (a rollout overtakes the pod): it neither read the file nor writes its own near-empty
    /// memory over its predecessor's at shutdown, and does not call that another agent's lock.
    @Test func anAgentStoppedWhileItWaitsLeavesTheFileAlone() async throws {
        let dir = Scratch()
        let path = dir.path("engine-memory")
        let old = await Self.firstAgent(on: path, writing: 3)
        let (replacement, loading) = await Self.replacementWaiting(on: path)
        loading.cancel()
        #expect(await loading.value == nil)
        #expect(replacement.stats.readOutcome == "" && !replacement.stats.waitingForLock, "\(replacement.stats)")
        replacement.writeNow(Self.memory(pods: 1))  // its shutdown
        #expect(replacement.stats.writesSucceeded == 0 && replacement.stats.writesLocked == 1)
        #expect(try Self.containers(in: path) == 3)
        withExtendedLifetime(old) {}
    }

    /// A write before start-up has read the file (not what the agent does, but the type allows it) is not a verdict:
    /// refused while another holds the lock, and the load that follows still waits for it and reads the file.
    @Test func aWriteBeforeTheLoadIsNotAVerdict() async throws {
        let dir = Scratch()
        let path = dir.path("engine-memory")
        var first: EngineMemoryFile? = await Self.firstAgent(on: path, writing: 3)
        let early = EngineMemoryFile(path: path, logger: .init(label: "test"))
        early.writeNow(Self.memory(pods: 1))
        #expect(early.stats.writesLocked == 1 && early.stats.writesSucceeded == 0)
        first = nil
        #expect(await early.load(lockWait: .seconds(30))?.containerCount == 3 && early.stats.readOutcome == "restored")
        early.writeNow(Self.memory(pods: 2))
        #expect(early.stats.writesSucceeded == 1, "\(early.stats)")
        #expect(try Self.containers(in: path) == 2)
    }

    /// The lock is another process's too (flock's lock is the open file's, and the kernel drops it when the process
    /// ends): a `flock` process holding `<path>.lock` keeps the agent off the file.
    @Test(.enabled(if: Self.flockTool != nil, "no flock(1) on this machine (util-linux): the lock across processes is not tried"))
    func aLockHeldByAnotherProcessIsRespected() async throws {
        let dir = Scratch()
        try FileManager.default.createDirectory(at: dir.url, withIntermediateDirectories: true)
        let path = dir.path("engine-memory")
        try Data(EngineMemoryCodec.encode(Self.memory(pods: 2))).write(to: URL(fileURLWithPath: path))
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: try #require(Self.flockTool))
        // Holds the lock while it reads its standard input; closing that ends it.
        holder.arguments = ["--exclusive", path + ".lock", "sh", "-c", "echo held; read -r line"]
        let input = Pipe(), output = Pipe()
        holder.standardInput = input
        holder.standardOutput = output
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        let said = String(decoding: output.fileHandleForReading.readData(ofLength: 5), as: UTF8.self)
        #expect(said == "held\n")
        let file = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await file.load(lockWait: .milliseconds(300)) == nil && file.stats.readOutcome == "locked")
        file.writeNow(Self.memory(pods: 1))
        #expect(file.stats.writesLocked == 1 && file.stats.writesSucceeded == 0)
        #expect(try Self.containers(in: path) == 2)
        try input.fileHandleForWriting.close()
        holder.waitUntilExit()
        let next = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await next.load(lockWait: .milliseconds(300))?.containerCount == 2)
    }

    /// The lock file removed with its directory while the agent runs: the next write makes both again and locks the
    /// new lock file, so that an agent started after that is kept off.
    @Test func aLockFileRemovedWithItsDirectoryIsTakenAgain() async throws {
        let dir = Scratch()
        let path = dir.path("state/engine-memory")
        let file = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await file.load() == nil)
        file.writeNow(Self.memory(pods: 1))
        try FileManager.default.removeItem(atPath: dir.path("state"))
        file.writeNow(Self.memory(pods: 3))
        #expect(file.stats.writesSucceeded == 2, "\(file.stats)")
        #expect(FileManager.default.fileExists(atPath: path + ".lock"))
        let other = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await other.load(lockWait: .milliseconds(300)) == nil && other.stats.readOutcome == "locked",
                "a second agent took the remade file: the first one's lock was left on the removed lock file")
    }

    /// The first agent on `path` (no file yet): started, holding the lock, with a snapshot of `pods` containers
    /// written.
    static func firstAgent(on path: String, writing pods: Int) async -> EngineMemoryFile {
        let first = EngineMemoryFile(path: path, logger: .init(label: "test"))
        #expect(await first.load() == nil && first.stats.readOutcome == "none")
        first.writeNow(Self.memory(pods: pods))
        #expect(first.stats.writesSucceeded == 1, "\(first.stats)")
        return first
    }

    /// An agent started on `path` whose lock another holds: its start-up, once it is waiting for the lock.
    static func replacementWaiting(on path: String) async -> (EngineMemoryFile, Task<EngineMemory?, Never>) {
        let replacement = EngineMemoryFile(path: path, logger: .init(label: "test"))
        let loading = Task { await replacement.load(lockWait: .seconds(100)) }
        let waiting = await eventually(timeout: .seconds(60)) { replacement.stats.waitingForLock ? true : nil }
        #expect(waiting == true, "the replacement did not wait for the lock: \(replacement.stats)")
        return (replacement, loading)
    }

    static let flockTool = ["/usr/bin/flock", "/bin/flock"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func containers(in path: String) throws -> Int {
        try EngineMemoryCodec.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).containerCount
    }

    /// The pipeline writes its engine's memory while it runs and when it stops, and the next pipeline (the restarted
    /// agent's) starts from it.
    @Test func thePipelineWritesItsMemoryAndTheNextOneStartsFromIt() async throws {
        let dir = Scratch()
        let path = dir.path("engine-memory")
        do {  // (the first agent ends here, and its lock with it)
            let file = EngineMemoryFile(path: path, logger: .init(label: "test"))
            let source = ScriptedSource()
            let pipeline = Pipeline(config: CorrelationConfig(), sources: [source], attributor: FixedAttribution(), sinks: [],
                                    memoryFile: file, checkpointEvery: .seconds(1))
            let run = Task { await pipeline.run() }
            let t = MonotonicClock.wallNanos()
            for k in 0..<5 {
                source.push(NodeEvent(timestampNanos: t + UInt64(k) * 1_000_000, pid: 1, cgroupID: 7, comm: "app",
                                      kind: .cgroupMemory(.init(usageBytes: 300 << 20, workingSetBytes: 300 << 20, limitBytes: 1 << 30))))
            }
            let checkpointed = await eventually(timeout: .seconds(60)) { file.stats.writesSucceeded >= 1 ? true : nil }
            run.cancel()
            await run.value
            #expect(checkpointed == true, "no checkpoint written while running")
            #expect(file.stats.readOutcome == "none")
        }
        let written = try EngineMemoryCodec.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(written.containerCount == 1)

        let again = EngineMemoryFile(path: path, logger: .init(label: "test"))
        let next = Pipeline(config: CorrelationConfig(), sources: [ScriptedSource()], attributor: FixedAttribution(), sinks: [],
                            memoryFile: again)
        let rerun = Task { await next.run() }
        let restored = await eventually(timeout: .seconds(60)) { again.stats.restoredContainers == 1 ? true : nil }
        rerun.cancel()
        await rerun.value
        #expect(restored == true, "read back: \(again.stats)")
        #expect(again.stats.readOutcome == "restored")
    }
}
