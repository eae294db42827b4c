import TapioModel

/// Applying events to per-subject state: cheap, no detectors here (they run per batch).
extension CorrelationEngine {
    @inline(__always)
    mutating func apply(_ e: AttributedEvent, now: UInt64) {
        switch e.event {
        case .node(let n):
            // Exec and fork change nothing the detectors read: they must not make a subject (every short-lived host
            // process would be kept for the quiet period — the agent's memory grew with them on a busy node).
            switch n.kind {
            case .processExec:
                // The program this pid ran before is gone: its subject (under the old name) can get no more events.
                endProcessSubjects(pid: n.pid, at: n.timestampNanos == 0 ? now : n.timestampNanos, except: n.comm)
                return
            case .processFork: return
            default: break
            }
            let subject = e.subject ?? (n.cgroupID != 0 ? .localCgroup(id: n.cgroupID, path: "")
                                                         : .localProcess(pid: n.pid, comm: n.comm))
            guard let i = slot(for: subject, now: now) else { return }
            if let c = e.context { states[i].apply(c) }
            applyNode(n, at: i, now: now)
        case .cluster(let c):
            applyCluster(c, context: e.context, now: now)
        }
    }

    @inline(__always)
    private mutating func applyNode(_ n: NodeEvent, at i: Int, now: UInt64) {
        let t = n.timestampNanos == 0 ? now : n.timestampNanos
        if t > states[i].lastSeen { states[i].lastSeen = t }
        switch n.kind {
        case .cgroupMemory(let m):
            if !states[i].hasCgroupSeries {
                // Until the cgroup poller reaches a new container (when a pod change or its 30-s period brings a walk), the series is made of
                // per-process samples: one process at a time (a shell, then its short-lived `sleep` child). On a real
                // node their alternation read as reclaim drops in two buckets — a GC sawtooth with too few peaks to
                // fit — and the container's leak got no prediction before its kill. The cgroup's total replaces them.
                states[i].memory.reset()
                states[i].history.reset()
                states[i].forgetCurveReadings()
                states[i].hasCgroupSeries = true
            }
            if let l = m.limitBytes { states[i].noteLimit(l) }
            addMemory(i, t: t, value: m.workingSetBytes, repeats: m.unchangedBefore)
        case .memorySample(let m):
            if !states[i].hasCgroupSeries { addMemory(i, t: t, value: m.rssBytes) }
        case .oomKill(let k):
            let rss = k.anonRSSBytes.adding(saturating: k.fileRSSBytes).adding(saturating: k.shmemRSSBytes)
            states[i].lastKernelOOM = KernelExit(at: t, pid: k.victimPID, comm: n.comm, exitCode: 137, signal: 9,
                                                 oom: true, rssBytes: rss)
            if rss > states[i].peakWorkingSet { states[i].peakWorkingSet = rss }
            // Pod status may have reported this very kill already (it can arrive first): count it once.
            let statusSaw = states[i].oomKilledByStatus && absDiff(states[i].lastCountedOOMFinishedAt, t) <= 60_000_000_000
            let recent = states[i].oomIncidents.last.map { absDiff($0, t) <= 1_000_000_000 } ?? false
            if !statusSaw && !recent { states[i].oomIncidents.append(t) }
            states[i].history.markOOM(at: t)
            fulfilOOMPrediction(i, now: now)
            markDirty(i)
        case .processExit(let x):
            let oom = x.signal == 9 && (states[i].lastKernelOOM.map { absDiff($0.at, t) <= 5_000_000_000 } ?? false)
            states[i].lastExit = KernelExit(at: t, pid: n.pid, comm: n.comm, exitCode: x.exitCode, signal: x.signal,
                                            oom: oom, rssBytes: x.peakRSSBytes)
            if case .localProcess = states[i].subject { endProcessSubjects(pid: n.pid, at: t, except: nil) }
        case .tcp(let tcp):
            addNet(i, t: t, tcp)
        case .processExec, .processFork:
            break
        }
    }

    /// Marks the bare-process subjects of `pid` ended, but the one named `except` (a program that exec'd keeps its
    /// new name's subject).
    private mutating func endProcessSubjects(pid: Int32, at t: UInt64, except comm: String?) {
        guard let subjects = processSubjects[pid] else { return }
        for s in subjects {
            guard let i = index[s] else { continue }
            if case .localProcess(_, let c) = s, c == comm { continue }
            end(i, at: t)
        }
    }

    /// Marks subject `i` ended (``SubjectState/endedAt``): forgotten at the next re-check unless seen again.
    private mutating func end(_ i: Int, at t: UInt64) {
        states[i].endedAt = max(t, states[i].lastSeen)
        timedWorkCache = nil  // its quiet period just became shorter
    }

    @inline(__always)
    private mutating func addMemory(_ i: Int, t: UInt64, value: UInt64, repeats: UInt32 = 0) {
        if value > states[i].peakWorkingSet { states[i].peakWorkingSet = value }
        states[i].history.add(at: t, value: value)
        if states[i].memory.add(at: t, value: value, bucketNanos: bucketNanos, windowNanos: windowNanos, repeats: repeats) {
            markDirty(i, memory: true)
        }
    }

    private mutating func addNet(_ i: Int, t: UInt64, _ tcp: NodeEvent.TCPEvent) {
        let b = Int64(t / bucketNanos)
        if states[i].net.last?.index != b { states[i].net.append(NetBucket(index: b)) }
        let k = states[i].net.count - 1
        switch tcp.kind {
        case .connectFailed: states[i].net[k].refused &+= 1
        case .resetSent, .resetReceived: states[i].net[k].resets &+= 1
        case .retransmit: states[i].net[k].retransmits &+= 1
        case .socketError: states[i].net[k].errors &+= 1
        }
        if let r = states[i].remotes.firstIndex(where: { $0.address == tcp.destinationAddress && $0.port == tcp.destinationPort }) {
            states[i].remotes[r].count &+= 1
            states[i].remotes[r].lastAt = t
        } else if states[i].remotes.count < 8 {
            states[i].remotes.append(RemoteCount(address: tcp.destinationAddress, port: tcp.destinationPort, count: 1, lastAt: t))
        } else if let r = states[i].remotes.indices.min(by: { states[i].remotes[$0].count < states[i].remotes[$1].count }) {
            // Space-saving: the newcomer inherits the smallest count, so frequent remotes are never pushed out.
            states[i].remotes[r] = RemoteCount(address: tcp.destinationAddress, port: tcp.destinationPort,
                                               count: states[i].remotes[r].count &+ 1, lastAt: t)
        }
        if tcp.kind != .retransmit || states[i].net[k].retransmits % 10 == 0 { markDirty(i) }
    }

    // MARK: Cluster events

    private mutating func applyCluster(_ c: ClusterEvent, context: SubjectContext?, now: UInt64) {
        let t = c.timestampNanos == 0 ? now : c.timestampNanos
        switch c.kind {
        case .podUpdated(let info):
            podUpdated(info, t: t, now: now)
        case .podDeleted(let pod):
            podDeleted(pod, now: now)
        case .containerRestarted(let ct):
            guard let i = slot(for: .podContainer(ct.pod, container: ct.container), now: now) else { return }
            touch(i, t)
            if let ctx = context { states[i].apply(ctx) }
            restartAndTerminations(i, count: ct.restartCount, force: true, [ct.termination], t: t, now: now)
            markDirty(i)
        case .crashLoopBackOff(let ct):
            guard let i = slot(for: .podContainer(ct.pod, container: ct.container), now: now) else { return }
            touch(i, t)
            if let ctx = context { states[i].apply(ctx) }
            restartAndTerminations(i, count: ct.restartCount, force: false, [ct.termination], t: t, now: now)
            states[i].waitingReason = "CrashLoopBackOff"
            if states[i].crashLoopSince == nil { states[i].crashLoopSince = t }
            markDirty(i)
        case .probeFailed(let pod, let container, let probe, let message):
            var targets: [Subject] = []
            if let c = container {
                targets = [.podContainer(pod, container: c)]
            } else {
                targets = (podSubjects[pod.uid] ?? []).filter { if case .podContainer = $0 { true } else { false } }
                if targets.isEmpty { targets = [.pod(pod)] }
            }
            for s in targets {
                guard let i = slot(for: s, now: now) else { continue }
                touch(i, t)
                if states[i].probeFailures.count >= 64 { states[i].probeFailures.removeFirst() }
                states[i].probeFailures.append(t)
                states[i].lastProbe = probe
                states[i].lastProbeMessage = message
                markDirty(i)
            }
        case .evicted(let pod, _):
            var node: String?
            for s in podSubjects[pod.uid] ?? [] where node == nil {
                if let k = index[s] { node = states[k].node }
            }
            guard let n = node, let i = slot(for: .node(n), now: now) else { return }
            touch(i, t)
            if states[i].evictions.count >= 64 { states[i].evictions.removeFirst() }
            states[i].evictions.append((t, pod))
            markDirty(i)
        case .nodeCondition(let node, let condition, let status, let reason, let message):
            guard let i = slot(for: .node(node), now: now) else { return }
            touch(i, t)
            let since = states[i].conditions[condition].flatMap { $0.status == status ? $0.since : nil } ?? t
            states[i].conditions[condition] = NodeConditionState(status: status, since: since, reason: reason,
                                                                 message: message)
            markDirty(i)
        }
    }

    @inline(__always) private mutating func touch(_ i: Int, _ t: UInt64) {
        if t > states[i].lastSeen { states[i].lastSeen = t }
    }

    private mutating func podUpdated(_ info: PodInfo, t: UInt64, now: UInt64) {
        // A container seen before the kubelet reported its id was a runtime container: from now on its events name
        // the pod's container, so that subject has ended.
        for c in info.containers {
            guard let id = c.containerID, let i = index[.localContainer(id: ContainerID.normalized(id))] else { continue }
            if !states[i].hasEnded { end(i, at: now) }
        }
        for c in info.containers {
            guard let i = slot(for: .podContainer(info.pod, container: c.name), now: now) else { return }
            touch(i, t)
            let before = (states[i].waitingReason, states[i].restartCount, states[i].memoryLimit)
            states[i].node = info.node
            states[i].image = c.image
            if let o = info.owner { states[i].owner = o }
            if let r = c.memoryRequestBytes { states[i].memoryRequest = r }
            if let l = c.memoryLimitBytes { states[i].noteLimit(l) }
            restartAndTerminations(i, count: c.restartCount, force: false, [c.lastTermination, c.currentTermination], t: t, now: now)
            states[i].waitingReason = c.waitingReason
            if c.waitingReason == "CrashLoopBackOff" {
                if states[i].crashLoopSince == nil { states[i].crashLoopSince = t }
            } else {
                states[i].crashLoopSince = nil
            }
            if let o = info.owner {
                let key = "\(info.pod.namespace)/\(o.kind)/\(o.name)/\(c.name)"
                // Bounded like the subjects: past the cap a new owner's images are not tracked (its crash loops
                // just cannot be blamed on a rollout).
                let known = ownerImages[key] != nil
                if known || ownerImages.count < max(1, config.maxSubjects) {
                    noteImage(key: key, image: c.image, at: t)
                }
            }
            if before != (states[i].waitingReason, states[i].restartCount, states[i].memoryLimit) { markDirty(i) }
        }
    }

    private mutating func noteImage(key: String, image: String, at t: UInt64) {
        var e = ownerImages[key] ?? OwnerImages(images: [], lastSeen: t)
        if !e.images.contains(image) {
            if e.images.count >= 4 { e.images.removeFirst() }
            e.images.append(image)
        }
        e.lastSeen = t
        ownerImages[key] = e
        timedWorkCache = nil  // its expiry may now come sooner than the cached next due instant
    }

    /// A deleted pod's insights resolve now and its state goes; late node events about it are ignored for a window.
    private mutating func podDeleted(_ pod: PodRef, now: UInt64) {
        tombstones[pod.uid] = now
        tombstoneOrder.append((pod.uid, now))
        // Bounded like the subjects: past the cap the oldest tombstone goes (a very late event about that pod may
        // then recreate a subject, which is forgotten again once quiet).
        while tombstoneOrder.count > max(1, config.maxSubjects), let t = tombstoneOrder.popFirst() {
            if tombstones[t.uid] == t.at { tombstones[t.uid] = nil }
        }
        timedWorkCache = nil
        for s in podSubjects[pod.uid] ?? [] {
            guard let i = index[s] else { continue }
            var out: [InsightUpdate] = []
            for a in states[i].active { resolved(a, now: now, into: &out) }
            pending.append(contentsOf: out)
            remove(i)
            stats.forgottenSubjects &+= 1
        }
        podSubjects[pod.uid] = nil
    }

    /// A restart count and the terminations reported with it, in that order: the restart (if news) starts the memory
    /// over, the terminations count an OOM kill once, and then an active prediction about the old container instance
    /// ends at once instead of standing stale for `resolveAfter` — fulfilled when the restart was an OOM kill,
    /// otherwise settled saying so (the first termination's reason).
    private mutating func restartAndTerminations(_ i: Int, count: Int, force: Bool, _ terms: [Termination?], t: UInt64, now: UInt64) {
        let oomsBefore = states[i].lastCountedOOMFinishedAt
        let restarted = noteRestart(i, count: count, t: t, force: force)
        // From now on the count is the status's (kept across an agent restart: ``EngineMemory``).
        states[i].restartsKnown = true
        // When the agent saw the new container: its memory's drop shows then (its death can be minutes before, under
        // CrashLoopBackOff; the reading looks back to the peak).
        if restarted { states[i].history.markRestart(at: t) }
        for term in terms { termination(term, at: i, now: t) }
        guard restarted, states[i].active.contains(where: { $0.identity.type == .oomPrediction }) else { return }
        let killed = states[i].lastCountedOOMFinishedAt != oomsBefore
            || (states[i].lastKernelOOM.map { absDiff($0.at, t) <= 60_000_000_000 } ?? false)
        if killed { return fulfilOOMPrediction(i, now: now) }
        let why = terms.first.flatMap { $0?.reason }.map { "the container restarted (\($0)), so its memory starts over" }
            ?? "the container restarted, so its memory starts over"
        var out: [InsightUpdate] = []
        settleOOMPrediction(i, because: why, now: now, into: &out)
        pending.append(contentsOf: out)
    }

    /// The predicted kill happened: the prediction is resolved, and the OOMKilled insight takes over.
    private mutating func fulfilOOMPrediction(_ i: Int, now: UInt64) {
        guard let k = states[i].active.firstIndex(where: { $0.identity.type == .oomPrediction }) else { return }
        let fulfilled = states[i].active.remove(at: k)
        timedWorkCache = nil  // with no active insight left, the subject's clean-up may come sooner
        var out: [InsightUpdate] = []
        resolved(fulfilled, now: now, into: &out)
        pending.append(contentsOf: out)
    }

    /// Records a restart when the count went up (or, with `force`, when the event itself reports one); true when
    /// it was news (a new container instance, whose memory starts from scratch).
    private mutating func noteRestart(_ i: Int, count: Int, t: UInt64, force: Bool) -> Bool {
        let known = states[i].restartCount
        guard count > known || (force && count == 0) else { return false }
        let firstSight = known == 0 && states[i].restartTimes.isEmpty && !force && !states[i].restartsTaken
        states[i].restartCount = count
        if firstSight && count > 0 { return false }  // restarts from before Tapio was watching are history, not news
        if states[i].restartTimes.count >= 64 { states[i].restartTimes.removeFirst() }
        states[i].restartTimes.append(t)
        states[i].memory.reset()
        states[i].forgetCurveReadings()
        return true
    }

    /// Counts a pod-status OOM termination once (VPA's isNewOOM / isPreviousOOM): only a `finishedAt` newer than
    /// the last counted one is news, and a kernel kill already counted within a minute is the same incident.
    private mutating func termination(_ term: Termination?, at i: Int, now t: UInt64) {
        guard let term else { return }
        if term.finishedAtNanos >= (states[i].lastTermination?.finishedAtNanos ?? 0) { states[i].lastTermination = term }
        let kernel = states[i].lastKernelOOM
        let isOOM = term.reason == "OOMKilled"
            || (term.exitCode == 137 && kernel.map { absDiff($0.at, term.finishedAtNanos) <= 60_000_000_000 } ?? false)
        guard isOOM, term.finishedAtNanos > states[i].lastCountedOOMFinishedAt else { return }
        states[i].lastCountedOOMFinishedAt = term.finishedAtNanos
        states[i].oomKilledByStatus = true
        // The kill's drop is the kernel's, not a cycle, also when only the pod's status tells of it.
        states[i].history.markOOM(at: term.finishedAtNanos)
        if let l = states[i].effectiveLimit, l > states[i].peakWorkingSet { states[i].peakWorkingSet = l }
        let at = term.finishedAtNanos == 0 ? t : term.finishedAtNanos
        if let k = kernel, absDiff(k.at, at) <= 60_000_000_000 { return }
        states[i].oomIncidents.append(at)
    }
}

@inline(__always) func absDiff(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }
