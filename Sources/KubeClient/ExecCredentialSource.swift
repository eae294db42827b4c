import Dispatch
import Foundation
import NIOSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The credential of an exec credential plugin, as client-go keeps it: the plugin runs when a request needs one and
/// none is held, when the held one's `expirationTimestamp` has passed, and when the server refused it (401).
/// Requests that need a credential at once wait for one run, not one each; a waiting request that is cancelled stops
/// waiting at once (the run goes on for the others, bounded by the plugin's timeout, and is killed when nobody waits).
final class ExecCredentialSource: Sendable {
    private struct State {
        /// The credential requests get (its certificate made into a TLS configuration once, not per request), and
        /// when it expires.
        var held: (credential: Authentication, expires: Date?)?
        var running = false
        var waiters: [UInt64: CheckedContinuation<Authentication, any Error>] = [:]
        /// Waiters cancelled before they were registered (the cancellation handler can run first).
        var cancelled: Set<UInt64> = []
        var nextWaiter: UInt64 = 0
        var runs = 0
        /// The running plugin while it may be killed (see ``ExecCredentialRun/run(started:reaping:)``), and whether
        /// it has a process group of its own.
        var pid: pid_t?
        var ownGroup = false
        /// The run was stopped because nobody waited any more: a request that joined it since gets a new run, not
        /// the killed one's failure.
        var abandoned = false
    }
    private let state = Mutex(State())
    private let run: ExecCredentialRun
    private let now: @Sendable () -> Date
    /// The client's own TLS configuration (trust roots, verification), which a plugin's certificate is added to.
    private let baseTLS: TLSConfiguration

    init(plugin: ExecCredentialPlugin, cluster: KubeConfig, tls: TLSConfiguration,
         now: @escaping @Sendable () -> Date = Date.init) {
        run = ExecCredentialRun(plugin: plugin, cluster: cluster)
        baseTLS = tls
        self.now = now
    }

    /// How many times the plugin has been started.
    var runs: Int { state.withLock { $0.runs } }

    /// The credential to send: the held one while it has not expired, else a fresh one from the plugin.
    func credential() async throws -> Authentication {
        let id = state.withLock { s -> UInt64 in
            s.nextWaiter &+= 1
            return s.nextWaiter
        }
        // A cancellation that came after the answer leaves no trace.
        defer { state.withLock { _ = $0.cancelled.remove(id) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Authentication, any Error>) in
                enum Next { case done(Result<Authentication, any Error>), wait, start }
                let next: Next = state.withLock { s in
                    if s.cancelled.remove(id) != nil || Task.isCancelled { return .done(.failure(CancellationError())) }
                    if let held = s.held, held.expires.map({ now() < $0 }) ?? true { return .done(.success(held.credential)) }
                    s.waiters[id] = c
                    if s.running { return .wait }
                    s.running = true
                    s.runs += 1
                    return .start
                }
                switch next {
                case .done(let result): c.resume(with: result)
                case .wait: break
                case .start: start()
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Authentication, any Error>? in
                guard let w = s.waiters.removeValue(forKey: id) else {
                    s.cancelled.insert(id)
                    return nil
                }
                // The last one waiting gave up (a shutdown, a caller's deadline): the plugin is stopped rather than
                // left to run on after Tapio, up to its timeout — now, or as soon as it has a pid. Under the lock, so
                // the pid is not yet reaped.
                if s.waiters.isEmpty && s.running {
                    s.abandoned = true
                    if let pid = s.pid { Self.kill(pid, group: s.ownGroup) }
                }
                return w
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Starts a run on a Dispatch thread (it blocks: spawn, poll, wait). On Linux that is the pool Swift's tasks run
    /// on too, but its monitor adds a thread for each one blocked in the kernel: more slow plugins at once than the
    /// machine has cores still leave tasks running (checked on 6 December: three plugins on two cores, each waiting for
    /// a file that a task wrote once all three had started, finished at once).
    private func start() {
        let run = self.run
        DispatchQueue.global().async {
            self.finished(Result(catching: { () throws(KubeError) in
                try run.run(started: { pid, ownGroup in
                    self.state.withLock { s in
                        s.pid = pid
                        s.ownGroup = ownGroup
                        if s.abandoned { Self.kill(pid, group: ownGroup) }
                    }
                }, reaping: { self.state.withLock { $0.pid = nil } })
            }))
        }
    }

    private static func kill(_ pid: pid_t, group: Bool) {
        if group { _ = Glibc.kill(-pid, SIGKILL) }
        _ = Glibc.kill(pid, SIGKILL)
    }

    private func finished(_ result: Result<ExecCredentialRun.Credential, KubeError>) {
        let (waiters, again, answer) = state.withLock { s -> ([CheckedContinuation<Authentication, any Error>], Bool, Result<Authentication, any Error>) in
            let answer = result.map { c in
                let issued = issue(c, run: s.runs)
                s.held = (issued, c.expires)
                return issued
            }.mapError { $0 as any Error }
            // Killed for nobody, but someone came since: they get a run of their own.
            if s.abandoned && !s.waiters.isEmpty, case .failure = result {
                s.abandoned = false
                s.runs += 1
                return ([], true, answer)
            }
            s.running = false
            s.abandoned = false
            defer { s.waiters = [:] }
            return (Array(s.waiters.values), false, answer)
        }
        if again {
            start()
            return
        }
        for w in waiters { w.resume(with: answer) }
    }

    /// What requests send of `credential`: its token, and its certificate and key added to the client's TLS
    /// configuration (a request with another TLS configuration gets connections of its own).
    private func issue(_ credential: ExecCredentialRun.Credential, run: Int) -> Authentication {
        var tls: TLSConfiguration?
        if let certificate = credential.certificate {
            var t = baseTLS
            t.certificateChain = certificate.chain.map { .certificate($0) }
            t.privateKey = .privateKey(certificate.key)
            tls = t
        }
        return Authentication(token: credential.token, tls: tls, execRun: run)
    }

    /// The server refused the credential of run `run` (401): it is dropped, so the next request runs the plugin
    /// again — unless a newer one has already replaced it.
    func refused(run: Int) {
        state.withLock { s in
            if s.held?.credential.execRun == run { s.held = nil }
        }
    }
}
