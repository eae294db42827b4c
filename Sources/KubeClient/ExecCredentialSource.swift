import Dispatch
import Foundation
import Synchronization

/// The token of an exec credential plugin, as client-go keeps it: the plugin runs when a request needs a token and
/// none is held, when the held one has expired (10 s early, so a token does not lapse in flight), and when the
/// server refused it (401). Requests that need a token at once wait for one run, not one each.
final class ExecCredentialSource: Sendable {
    /// How long before its `expirationTimestamp` a token is replaced.
    static let expirySkew: TimeInterval = 10

    private struct State {
        var held: ExecCredentialRun.Credential?
        var running: Task<ExecCredentialRun.Credential, any Error>?
        var runs = 0
    }
    private let state = Mutex(State())
    private let run: ExecCredentialRun
    private let now: @Sendable () -> Date

    init(plugin: ExecCredentialPlugin, cluster: KubeConfig, now: @escaping @Sendable () -> Date = Date.init) {
        run = ExecCredentialRun(plugin: plugin, cluster: cluster)
        self.now = now
    }

    /// How many times the plugin has been started.
    var runs: Int { state.withLock { $0.runs } }

    /// A token to send: the held one while it is good, else a fresh one from the plugin.
    func token() async throws -> String {
        enum Next { case held(String), wait(Task<ExecCredentialRun.Credential, any Error>) }
        let next: Next = state.withLock { s in
            if let held = s.held, held.expires.map({ now().addingTimeInterval(Self.expirySkew) < $0 }) ?? true {
                return .held(held.token)
            }
            if let running = s.running { return .wait(running) }
            let run = self.run
            let t = Task<ExecCredentialRun.Credential, any Error> {
                // The run blocks (spawn, poll, wait): on a Dispatch thread, not one of the few that run tasks.
                let result: Result<ExecCredentialRun.Credential, KubeError> = await withCheckedContinuation { c in
                    DispatchQueue.global().async { c.resume(returning: Result(catching: { () throws(KubeError) in try run.run() })) }
                }
                self.finished(result)
                return try result.get()
            }
            s.running = t
            s.runs += 1
            return .wait(t)
        }
        switch next {
        case .held(let token): return token
        case .wait(let task): return try await task.value.token
        }
    }

    private func finished(_ result: Result<ExecCredentialRun.Credential, KubeError>) {
        state.withLock { s in
            s.running = nil
            if case .success(let c) = result { s.held = c }
        }
    }

    /// The server refused `token` (401): it is dropped, so the next request runs the plugin again — unless a newer
    /// token has already replaced it.
    func refused(_ token: String) {
        state.withLock { s in
            if s.held?.token == token { s.held = nil }
        }
    }
}
