import CTapioBPF
import Foundation
import Glibc
import Testing
import TapioModel
@testable import TapioBPF

/// The real programs on this machine's kernel, against real processes, cgroups and sockets. Serialized:
/// each test loads its own copy of the probes and reads global kernel activity.
@Suite("BPF probes on the running kernel", .serialized, .enabled(if: canLoadBPF, "\(kernelSkipReason ?? "")"), .timeLimit(.minutes(5)))
struct KernelProbeTests {
    /// The product's configuration with the reader polling every 100 ms: these tests look at short windows ("no
    /// record until asked", "one exit, not two") that the product's 1-s poll would make pass without looking.
    static func configuration(settings: BPFSettings, ringBufferBytes: Int = 1 << 20, queueCapacity: Int = 16_384,
                              overflowPolicy: BoundedQueue<TapioEvent>.OverflowPolicy = .dropOldest) -> BPFConfiguration {
        BPFConfiguration(settings: settings, ringBufferBytes: ringBufferBytes, queueCapacity: queueCapacity,
                         overflowPolicy: overflowPolicy, pollIntervalMilliseconds: 100)
    }

    @Test("an OOM kill in a kubelet-shaped memory cgroup is reported for the victim, after its rising RSS",
          .enabled(if: KubeletCgroup.available,
                   "no memory controller: neither /sys/fs/cgroup/memory (v1) nor memory in /sys/fs/cgroup (v2)"))
    func oomKillIsAttributedToTheVictim() async throws {
        let probes = try BPFProbes(configuration: Self.configuration(settings: BPFSettings(enabled: .all)))
        defer { probes.close() }
        let cgroup = try KubeletCgroup.create(limitBytes: 64 << 20)
        defer { cgroup.remove() }

        // Held on stdin until it is inside the cgroup, then allocates and touches 4 MiB every 50 ms.
        let child = try python("""
            import sys, time
            sys.stdin.readline()
            chunks = []
            while True:
                b = bytearray(4 << 20)
                for i in range(0, len(b), 4096):
                    b[i] = 1
                chunks.append(b)
                time.sleep(0.05)
            """)
        try cgroup.add(pid: child.pid)
        child.release()
        let status = await child.exited()
        let events = await collect(from: probes, timeout: 30) { seen in
            seen.contains { $0.pid == child.pid && $0.exit != nil }
        }

        #expect(status.reason == .uncaughtSignal && status.status == SIGKILL, "the child was OOM killed")
        let leafInode = cgroup.leafInode
        // Samples from before the move (python starting up) carry the parent cgroup; the leak happens inside.
        let samples = events.filter { $0.pid == child.pid && $0.cgroupID == leafInode }.compactMap(\.memory)
        #expect(samples.count >= 3, "rising RSS samples of the leaking pid in its container's cgroup")
        let firstRSS = samples.first?.rssBytes ?? 0
        let peakRSS = samples.map(\.rssBytes).max() ?? 0
        #expect(peakRSS > firstRSS + (16 << 20), "RSS rose by more than 16 MiB: first \(firstRSS), peak \(peakRSS)")

        let kill = try #require(events.first { $0.oom != nil && $0.pid == child.pid }, "an OOM event for the victim")
        #expect(kill.oom?.victimPID == child.pid)
        #expect(kill.cgroupID == leafInode, "the victim's memory cgroup is the container's leaf directory")
        #expect(kill.comm == "python3")
        #expect((kill.oom?.anonRSSBytes ?? 0) > (32 << 20), "the RSS breakdown shows the anonymous memory")
        let resolved = try #require(cgroup.path(ofCgroupID: kill.cgroupID))
        #expect(resolved.hasSuffix("/pod\(cgroup.podUID)/\(cgroup.containerID)"), "resolves to the pod and container")

        let exit = try #require(events.first { $0.pid == child.pid && $0.exit != nil }?.exit, "the victim's exit")
        #expect(exit.signal == SIGKILL)
        #expect(exit.peakRSSBytes >= peakRSS)
    }

    @Test("exit codes and the signals that killed real child processes are reported for their pids")
    func exitCodesAndSignals() async throws {
        let probes = try BPFProbes(configuration: Self.configuration(settings: BPFSettings(enabled: .process)))
        defer { probes.close() }
        let exits3 = try Child.start("/bin/sh", ["-c", "exit 3"])
        let killed = try Child.start("/bin/sleep", ["30"])
        // The test runner may block or ignore SIGTERM, and children inherit both: this one restores the
        // default and unblocks it first, and says when it has.
        let terminated = try python("""
            import signal, sys, time
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
            sys.stdout.write("ready\\n"); sys.stdout.flush()
            time.sleep(30)
            """, output: true)
        _ = terminated.readLine()
        usleep(100_000)
        kill(killed.pid, SIGKILL)
        kill(terminated.pid, SIGTERM)
        _ = await exits3.exited(); _ = await killed.exited(); _ = await terminated.exited()
        let pids: Set<Int32> = [exits3.pid, killed.pid, terminated.pid]
        let events = await collect(from: probes, timeout: 30) { seen in
            Set(seen.filter { $0.exit != nil }.map(\.pid)).isSuperset(of: pids)
        }
        func exit(of pid: Int32) -> NodeEvent.ProcessExit? { events.first { $0.pid == pid && $0.exit != nil }?.exit }
        #expect(exit(of: exits3.pid)?.exitCode == 3)
        #expect(exit(of: exits3.pid)?.signal == 0)
        #expect(exit(of: killed.pid)?.signal == SIGKILL)
        #expect(exit(of: terminated.pid)?.signal == SIGTERM)
        #expect(events.filter { pids.contains($0.pid) && $0.exit != nil }.count == 3, "one exit per process")
        #expect(events.contains { $0.pid == killed.pid && $0.isExec && $0.comm == "sleep" })
        #expect(events.contains {
            if case .processFork(let child) = $0.kind { return child == exits3.pid } else { return false }
        })
    }

    @Test("a multi-threaded process is reported once, when its last thread exits, with its exit code")
    func multiThreadedExitIsReportedOnce() async throws {
        let probes = try BPFProbes(configuration: Self.configuration(settings: BPFSettings(enabled: .process)))
        defer { probes.close() }
        let child = try python("""
            import os, threading, time
            threads = [threading.Thread(target=time.sleep, args=(0.05,)) for _ in range(4)]
            for t in threads: t.start()
            for t in threads: t.join()
            # Threads busy on other CPUs when exit_group() kills them: their exits race the caller's (on two
            # CPUs each can see signal->live at 0; one report is kept).
            def spin():
                while True: pass
            for _ in range(8): threading.Thread(target=spin, daemon=True).start()
            time.sleep(0.05)
            os._exit(5)
            """)
        _ = await child.exited()
        let events = await collect(from: probes, timeout: 30) { seen in seen.contains { $0.pid == child.pid && $0.exit != nil } }
        try await Task.sleep(for: .milliseconds(300))
        let exits = (events + (await collect(from: probes, timeout: 0.3))).filter { $0.pid == child.pid && $0.exit != nil }
        #expect(exits.count == 1, "threads that end earlier, and the ones killed by the exit, are not processes")
        #expect(exits.first?.exit?.exitCode == 5)
        #expect(exits.first?.exit?.signal == 0)
    }

    @Test("a refused connection on loopback is a failed connect with ECONNREFUSED for the connecting pid")
    func refusedConnection() async throws {
        let probes = try BPFProbes(configuration: Self.configuration(settings: BPFSettings(enabled: .network)))
        defer { probes.close() }
        let port = closedLoopbackPort()
        let child = try python("""
            import socket, sys
            sys.stdin.readline()
            try:
                socket.create_connection(("127.0.0.1", \(port)), timeout=5)
            except OSError:
                pass
            """)
        child.release()
        _ = await child.exited()
        let events = await collect(from: probes, timeout: 30) { seen in
            seen.contains { $0.pid == child.pid && $0.tcp?.kind == .connectFailed }
        }
        let failed = try #require(events.first { $0.tcp?.kind == .connectFailed && $0.tcp?.destinationPort == port })
        #expect(failed.pid == child.pid)
        #expect(failed.comm == "python3")
        #expect(failed.tcp?.errno == ECONNREFUSED)
        #expect(failed.tcp?.destinationAddress == "127.0.0.1")
        #expect(events.contains { $0.pid == child.pid && $0.tcp?.kind == .resetReceived && $0.tcp?.destinationPort == port })
        let counted = probes.tcpCounts().first { $0.pid == child.pid && $0.kind == .connectFailed }
        #expect(counted?.count == 1, "the kernel counted the failed connect for that pid")
        #expect(counted?.cgroupID == failed.cgroupID)
    }

    @Test("a server closing with SO_LINGER 0 sends a reset seen for its pid, and the client receives it")
    func resetOnLoopback() async throws {
        let probes = try BPFProbes(configuration: Self.configuration(settings: BPFSettings(enabled: .network)))
        defer { probes.close() }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var addr = loopback(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(listener, $0, len) == 0 && listen(listener, 4) == 0 && getsockname(listener, $0, &len) == 0 } })
        let port = UInt16(bigEndian: addr.sin_port)
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var server = loopback(port: port)
        try #require(withUnsafePointer(to: &server) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0)
        let accepted = accept(listener, nil, nil)
        try #require(accepted >= 0)
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(accepted, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(accepted)
        let me = getpid()
        let events = await collect(from: probes, timeout: 30) { seen in
            seen.contains { $0.tcp?.kind == .resetSent && $0.tcp?.sourcePort == port }
                && seen.contains { $0.tcp?.kind == .resetReceived && $0.tcp?.destinationPort == port }
        }
        let sent = try #require(events.first { $0.tcp?.kind == .resetSent && $0.tcp?.sourcePort == port })
        #expect(sent.pid == me)
        #expect(sent.tcp?.sourceAddress == "127.0.0.1")
        let received = try #require(events.first { $0.tcp?.kind == .resetReceived && $0.tcp?.destinationPort == port })
        #expect(received.pid == me, "the client socket was connected by this process")
    }

    @Test("changing the sampling rate, the divisor and switching probes off take effect without reloading")
    func liveReconfiguration() async throws {
        var settings = BPFSettings(enabled: [.memorySampler, .process], samplingHz: 10)
        let probes = try BPFProbes(configuration: Self.configuration(settings: settings))
        defer { probes.close() }
        // A spinner is on a CPU all the time, so it gets (almost) every perf sample of its CPU.
        let spinner = try python("import sys\nsys.stdin.readline()\nwhile True: pass")
        spinner.release()
        defer { kill(spinner.pid, SIGKILL); _ = spinner.wait() }
        /// The spinner's samples the kernel took within `seconds` from now — by the kernel's own timestamps, so a
        /// sample taken under the previous settings and delivered late (a loaded machine delays the reader) does not
        /// count, and one taken in the window and delivered after it does.
        func samples(for seconds: Double) async -> Int {
            drain(probes)
            let since = UInt64(Date().timeIntervalSince1970 * 1e9) + 20_000_000
            let until = since + UInt64(seconds * 1e9)
            let events = await collect(from: probes, timeout: seconds + 1)
            return events.filter { $0.pid == spinner.pid && $0.memory != nil && (since..<until).contains($0.timestampNanos) }.count
        }
        let slow = await samples(for: 1.5)
        settings.samplingHz = 199
        try probes.apply(settings)
        let fast = await samples(for: 1.5)
        #expect(fast > 4 * max(slow, 1), "199 Hz gives many more samples than 10 Hz: \(fast) vs \(slow)")

        let sampledOutBefore = probes.kernelStats().sampledOut
        settings.sampleDivisor = 10
        try probes.apply(settings)
        let divided = await samples(for: 1.5)
        #expect(divided * 3 < fast, "a divisor of 10 keeps far fewer: \(divided) vs \(fast)")
        #expect(probes.kernelStats().sampledOut > sampledOutBefore, "the kernel counts what it skipped")

        settings.enabled.remove(.memorySampler)
        try probes.apply(settings)
        #expect(await samples(for: 1.0) == 0, "the sampler is off")

        // Off through the config map only: the process programs stay attached.
        settings.enabled.remove(.process)
        try probes.apply(settings)
        let quiet = try Child.start("/bin/true", [])
        _ = await quiet.exited()
        let offEvents = await collect(from: probes, timeout: 0.5)
        #expect(!offEvents.contains { $0.pid == quiet.pid }, "no process events while the probe is off")
        settings.enabled.insert(.process)
        try probes.apply(settings)
        let loud = try Child.start("/bin/true", [])
        _ = await loud.exited()
        let onEvents = await collect(from: probes, timeout: 30) { seen in seen.contains { $0.pid == loud.pid && $0.exit != nil } }
        #expect(onEvents.contains { $0.pid == loud.pid && $0.exit != nil }, "switched back on, exits are reported")
    }

    @Test("an optional program that fails to load is reported down while the other probes come up")
    func failingOptionalProgramLeavesOthersUp() async throws {
        var configuration = Self.configuration(settings: BPFSettings(enabled: .process))
        configuration.extraPrograms = ["tapio_selftest_invalid"]
        let probes = try BPFProbes(configuration: configuration)
        defer { probes.close() }
        let status = probes.probeStatus
        let broken = try #require(status.first { $0.program == "tapio_selftest_invalid" })
        guard case .down(let why) = broken.state else {
            Issue.record("the invalid program was reported up")
            return
        }
        #expect(why.hasPrefix("load tapio_selftest_invalid: E"), "names the program and errno: \(why)")
        #expect(status.filter { $0.program != "tapio_selftest_invalid" }.allSatisfy { $0.state == .up },
                "\(status)")
        if case .degraded(let reason) = probes.health().state {
            #expect(reason.contains("tapio_selftest_invalid"))
        } else {
            Issue.record("health should be degraded, is \(probes.health().state)")
        }
        let child = try Child.start("/bin/sh", ["-c", "exit 7"])
        _ = await child.exited()
        let events = await collect(from: probes, timeout: 30) { seen in seen.contains { $0.pid == child.pid && $0.exit != nil } }
        #expect(events.first { $0.pid == child.pid && $0.exit != nil }?.exit?.exitCode == 7)
    }

    @Test("a memory snapshot reports a sleeping process that neither the sampler nor rss_stat would")
    func snapshotCoversSleepingProcesses() async throws {
        let probes = try BPFProbes(configuration: Self.configuration(settings: BPFSettings(enabled: .memorySnapshot)))
        defer { probes.close() }
        let sleeper = try python("""
            import sys, time
            b = bytearray(48 << 20)
            for i in range(0, len(b), 4096):
                b[i] = 1
            sys.stdout.write("ready\\n"); sys.stdout.flush()
            time.sleep(30)
            """, output: true)
        defer { kill(sleeper.pid, SIGKILL); _ = sleeper.wait() }
        _ = sleeper.readLine()
        try await Task.sleep(for: .milliseconds(200))
        drain(probes)
        #expect(await collect(from: probes, timeout: 0.5).filter { $0.pid == sleeper.pid }.isEmpty,
                "no record of the sleeper until asked")
        try probes.snapshotMemory()
        let events = await collect(from: probes, timeout: 30) { seen in seen.contains { $0.pid == sleeper.pid } }
        let sample = try #require(events.first { $0.pid == sleeper.pid }?.memory)
        #expect(sample.rssAnonBytes >= 48 << 20, "its 48 MiB of touched memory: \(sample.rssAnonBytes)")
        #expect(events.filter { $0.memory != nil }.count > 5, "every process is in the snapshot")
    }

    @Test("a full ring buffer and a full hand-off queue both count what they lose")
    func lossIsCounted() throws {
        var configuration = Self.configuration(settings: BPFSettings(enabled: []), ringBufferBytes: 4096,
                                             queueCapacity: 8, overflowPolicy: .dropOldest)
        configuration.extraPrograms = ["tapio_bench_fill"]
        configuration.startsReader = false
        let probes = try BPFProbes(configuration: configuration)
        defer { probes.close() }
        // 4 KiB holds 51 records of 72 + 8 bytes; the producer stops at the first failed reservation.
        #expect(probes.benchFill(count: 200))
        let stats = probes.kernelStats()
        #expect(stats.ringBufferDrops == 1, "the reservation that failed is counted in the kernel")
        let read = probes.drainOnce()
        #expect(read == 4096 / (MemoryLayout<tapio_memory_event>.size + 8))
        #expect(probes.health().shed == UInt64(read - 8), "the queue kept the newest 8 and counted the rest")
        #expect(probes.events().takeBatch(max: 100)?.count == 8)
    }

    @Test("close() ends the event sequence and releases the probes; health says stopped")
    func closeUnblocksTheConsumer() async throws {
        let probes = try BPFProbes(configuration: Self.configuration(settings: BPFSettings(enabled: .process)))
        let consumer = Task { () -> Int in
            var n = 0
            for await _ in probes.events() { n += 1 }
            return n
        }
        try await Task.sleep(for: .milliseconds(200))
        probes.close()
        _ = await consumer.value // returns only because close() finished the queue
        #expect(probes.health().state == .stopped)
        #expect(throws: BPFError.closed) { try probes.apply(BPFSettings()) }
    }
}

@Suite("BPF without privileges", .timeLimit(.minutes(5)))
struct UnprivilegedTests {
    @Test("without the privileges BPF needs, loading fails with a typed error naming what is missing",
          .enabled(if: !canLoadBPF, "running with BPF privileges: the kernel suite covers loading"))
    func unavailableIsTyped() {
        #expect(throws: BPFError.self) { _ = try BPFProbes() }
        do {
            _ = try BPFProbes()
        } catch .unavailable(let availability) {
            #expect(!availability.missing.isEmpty)
            #expect(availability.summary.contains("CAP_BPF") || availability.summary.contains("BTF"))
        } catch {
            Issue.record("expected .unavailable, got \(error)")
        }
    }
}
