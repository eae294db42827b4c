import Foundation
import NIOSSL
#if canImport(Glibc)
import Glibc
#endif

/// One run of an exec credential plugin: spawned with `KUBERNETES_EXEC_INFO`, its output read up to a bound and
/// decoded, the process killed when it outlives the plugin's timeout. Blocking: ``ExecCredentialSource`` runs it on a
/// Dispatch thread, never on an event loop.
struct ExecCredentialRun {
    /// What a run produced: a token, a client certificate and its key, or both (as client-go takes them), and, when
    /// the plugin said, when they expire.
    struct Credential: Sendable, Equatable {
        var token: String?
        var certificate: ClientCertificate?
        var expires: Date?
    }

    /// A client certificate (with the chain after it, if any) and its private key, parsed and checked to belong
    /// together.
    struct ClientCertificate: Sendable, Equatable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
    }

    /// An ExecCredential is a token or a certificate and key: a megabyte is far beyond either.
    static let outputLimit = BoundedFile.credentialLimit
    /// The end of the plugin's standard error kept for the error message when it does not have the terminal.
    static let stderrKept = 4096

    let plugin: ExecCredentialPlugin
    let cluster: KubeConfig

    /// Whether this run hands the plugin the terminal's input: its mode allows it and standard input is one.
    var interactive: Bool { plugin.interactiveMode != .never && (plugin.terminal ?? (isatty(0) == 1)) }
    /// Whether the plugin writes to our standard error, as client-go lets it: when that is a terminal, a person sees
    /// its prompts and device-code instructions (kubelogin prints them with `interactiveMode: Never` too).
    /// Otherwise — a service, a log collector — its end is kept for the error message instead.
    var sharesStderr: Bool { interactive || (plugin.terminal ?? (isatty(2) == 1)) }

    func fail(_ message: String) -> KubeError {
        .credentials("\(cluster.source.isEmpty ? "" : cluster.source + ": ")\(plugin.field): \(message)")
    }

    /// `KUBERNETES_EXEC_INFO`: the ExecCredential the plugin reads its request from.
    func execInfo(interactive: Bool) -> String {
        var spec: [String: Any] = ["interactive": interactive]
        if plugin.provideClusterInfo {
            var c: [String: Any] = ["server": cluster.server.absoluteString]
            if let ca = cluster.certificateAuthorityPEM { c["certificate-authority-data"] = Data(ca).base64EncodedString() }
            if cluster.insecureSkipTLSVerify { c["insecure-skip-tls-verify"] = true }
            // As written, as client-go passes it on — unless the name checked was changed since it was read.
            let written = cluster.tlsServerNameAsWritten.flatMap { w in
                (try? ServerURL.tlsServerName(w, server: cluster.server)) == cluster.tlsServerName ? w : nil
            }
            if let name = written ?? cluster.tlsServerName { c["tls-server-name"] = name }
            if case .url(let proxy) = cluster.proxy { c["proxy-url"] = proxy }
            // The cluster's `extensions[name=client.authentication.k8s.io/exec]`: per-cluster settings for the plugin,
            // the reason provideClusterInfo exists.
            if let config = cluster.execExtension, let value = try? JSONSerialization.jsonObject(with: config, options: [.fragmentsAllowed]) {
                c["config"] = value
            }
            spec["cluster"] = c
        }
        let object: [String: Any] = ["apiVersion": plugin.apiVersion, "kind": "ExecCredential", "spec": spec]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Runs the plugin. `started` gets its pid once it runs, and whether it leads a process group of its own (it
    /// does without the terminal); `reaping` is called before the pid can be reaped (after which it may name another
    /// process): between the two, killing the pid (and its group) stops this run.
    func run(started: (_ pid: pid_t, _ ownGroup: Bool) -> Void = { _, _ in }, reaping: () -> Void = {}) throws(KubeError) -> Credential {
        if plugin.interactiveMode == .always && !interactive {
            throw fail("interactiveMode is Always, but standard input is not a terminal for \(plugin.command) to ask on")
        }
        let interactive = self.interactive, sharesStderr = self.sharesStderr
        // Close-on-exec, so no other process Tapio starts meanwhile holds them open (and delays the end of output).
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        guard ChildProcessSetup.closeOnExecPipe(&out) else { throw fail("cannot make a pipe: \(String(cString: strerror(errno)))") }
        defer { if out[0] >= 0 { close(out[0]) } }
        if !sharesStderr {
            guard ChildProcessSetup.closeOnExecPipe(&err) else {
                close(out[1])
                throw fail("cannot make a pipe: \(String(cString: strerror(errno)))")
            }
        }
        defer { if err[0] >= 0 { close(err[0]) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        // With the terminal, its input stays the plugin's to ask on; without, the plugin reads nothing.
        if !interactive { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        if !sharesStderr { posix_spawn_file_actions_adddup2(&actions, err[1], 2) }
        // Nothing else of Tapio's is the plugin's to hold: API connections, the metrics socket.
        ChildProcessSetup.closeInheritedDescriptors(&actions)

        var environment = ProcessInfo.processInfo.environment
        for (name, value) in plugin.env { environment[name] = value }
        environment["KUBERNETES_EXEC_INFO"] = execInfo(interactive: interactive)
        let argv = [plugin.command] + plugin.args
        let cargs = argv.map { strdup($0) } + [nil]
        let cenv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cargs.forEach { free($0) }
            cenv.forEach { free($0) }
        }
        // The run is on a Dispatch thread, which blocks every signal, and Tapio ignores some (its signal handling):
        // the plugin would inherit both, and Ctrl-C, a `timeout` or `read -t` in a script would not work in it. It
        // starts with nothing blocked and every signal at its default, as a child of Go's client does.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
        // Without the terminal the plugin gets a process group of its own, so a timeout kills what it started too
        // (a `sleep` in a script would otherwise outlive it). With the terminal it stays in ours: a background group
        // reading the terminal is stopped by the kernel.
        if !interactive {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var pid: pid_t = 0
        let rc = cargs.withUnsafeBufferPointer { a in
            cenv.withUnsafeBufferPointer { e in
                posix_spawnp(&pid, plugin.command, &actions, &attributes, UnsafeMutablePointer(mutating: a.baseAddress!),
                             UnsafeMutablePointer(mutating: e.baseAddress!))
            }
        }
        close(out[1])
        if err[1] >= 0 { close(err[1]) }
        guard rc == 0 else {
            if rc == ENOENT {
                throw fail("\(plugin.command): command not found" + (plugin.installHint.map { "\n\($0)" } ?? ""))
            }
            throw fail("cannot run \(plugin.command): \(String(cString: strerror(rc)))")
        }

        let timeout = interactive ? max(plugin.timeout, .seconds(600)) : plugin.timeout
        started(pid, !interactive)
        let (stdout, stderr, outcome) = collect(stdout: out[0], stderr: err[0], pid: pid, group: !interactive, timeout: timeout,
                                                reaping: reaping)
        let said = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let tail = said.isEmpty ? "" : ": \(said)"
        switch outcome {
        case .timedOut:
            throw fail("\(plugin.command) did not finish within \(KubeClient.describe(timeout)); killed\(tail)")
        case .tooMuch:
            throw fail("\(plugin.command) printed more than \(Self.outputLimit) bytes; killed")
        case .exited(let status) where status != 0:
            throw fail("\(plugin.command) exited with status \(status)\(tail)")
        case .signalled(let signal):
            throw fail("\(plugin.command) was killed by signal \(signal)\(tail)")
        case .readFailed(let code):
            throw fail("reading \(plugin.command)'s output failed: \(String(cString: strerror(code))); killed")
        case .lost(let code):
            throw fail("\(plugin.command)'s exit could not be waited for: \(String(cString: strerror(code)))")
        case .exited:
            return try decode(stdout)
        }
    }

    enum Outcome { case exited(Int32), signalled(Int32), timedOut, tooMuch, readFailed(Int32), lost(Int32) }

    /// Reads both pipes until they close (or the deadline, or the output bound), then reaps the process — by the
    /// same deadline: a plugin that closed its output and went on running is killed too.
    func collect(stdout: Int32, stderr: Int32, pid: pid_t, group: Bool, timeout: Duration,
                 reaping: () -> Void) -> ([UInt8], [UInt8], Outcome) {
        var output: [UInt8] = [], errors: [UInt8] = []
        var open = [stdout] + (stderr >= 0 ? [stderr] : [])
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 16384)
        var stopped: Outcome?
        func millisecondsLeft() -> Int32? {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            return Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
        }
        while !open.isEmpty {
            guard let ms = millisecondsLeft() else {
                stopped = .timedOut
                break
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), ms)
            if n < 0 {
                if errno == EINTR { continue }
                stopped = .readFailed(errno)
                break
            }
            for f in fds where f.revents != 0 {
                let got = buffer.withUnsafeMutableBytes { read(f.fd, $0.baseAddress, $0.count) }
                if got < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if got <= 0 {
                    open.removeAll { $0 == f.fd }
                    continue
                }
                if f.fd == stdout {
                    output += buffer[0..<got]
                    if output.count > Self.outputLimit { stopped = .tooMuch }
                } else {
                    errors += buffer[0..<got]
                    if errors.count > 2 * Self.stderrKept { errors.removeFirst(errors.count - Self.stderrKept) }
                }
            }
            if stopped != nil { break }
        }
        var status: Int32 = 0
        if stopped == nil {
            // Output closed: wait for the exit until the deadline, without reaping (WNOWAIT), so the pid stays this
            // process's — and killable by a cancellation — until `reaping`.
            while true {
                var info = siginfo_t()
                let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
                if r < 0 && errno == EINTR { continue }
                if r < 0 { break }
                if info._sifields._sigchld.si_pid == pid { break }
                guard millisecondsLeft() != nil else {
                    stopped = .timedOut
                    break
                }
                usleep(10_000)
            }
        }
        if stopped != nil {
            // Its group, and the process itself should it have left the group.
            if group { kill(-pid, SIGKILL) }
            kill(pid, SIGKILL)
        }
        reaping()
        var reaped: pid_t
        repeat { reaped = waitpid(pid, &status, 0) } while reaped < 0 && errno == EINTR
        if reaped < 0 && stopped == nil { stopped = .lost(errno) }
        if errors.count > Self.stderrKept { errors.removeFirst(errors.count - Self.stderrKept) }
        if let stopped { return (output, errors, stopped) }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
        let signal = status & 0x7f
        return (output, errors, signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal))
    }

    /// The credential in the plugin's output: an ExecCredential of the configured version with a token, a client
    /// certificate and key, or both.
    func decode(_ output: [UInt8]) throws(KubeError) -> Credential {
        guard let object = try? JSONSerialization.jsonObject(with: Data(output)) as? [String: Any] else {
            let start = String(decoding: output.prefix(80), as: UTF8.self)
            throw fail("\(plugin.command) did not print an ExecCredential (JSON)" + (start.isEmpty ? ": it printed nothing" : ": \(start)"))
        }
        guard object["kind"] as? String == "ExecCredential" else {
            throw fail("\(plugin.command) printed kind \(String(describing: object["kind"] ?? "nothing").prefix(40)), not ExecCredential")
        }
        guard object["apiVersion"] as? String == plugin.apiVersion else {
            throw fail("\(plugin.command) answered in \(String(describing: object["apiVersion"] ?? "no apiVersion").prefix(60)), not the \(plugin.apiVersion) it was asked for")
        }
        guard let status = object["status"] as? [String: Any] else { throw fail("\(plugin.command)'s ExecCredential has no status") }
        func text(_ field: String) throws(KubeError) -> String? {
            guard let value = status[field], !(value is NSNull) else { return nil }
            guard let string = value as? String else { throw fail("\(plugin.command)'s status.\(field) is not a string") }
            return string.isEmpty ? nil : string
        }
        let token = try text("token")
        let certificatePEM = try text("clientCertificateData")
        let keyPEM = try text("clientKeyData")
        if token == nil && certificatePEM == nil && keyPEM == nil {
            throw fail("\(plugin.command)'s ExecCredential has neither status.token nor status.clientCertificateData and clientKeyData")
        }
        if let token, let why = BearerToken.problem(token) {
            throw fail("\(plugin.command)'s status.token \(why)")
        }
        var certificate: ClientCertificate?
        switch (certificatePEM, keyPEM) {
        case (nil, nil): break
        case (_, nil): throw fail("\(plugin.command) gave status.clientCertificateData without status.clientKeyData")
        case (nil, _): throw fail("\(plugin.command) gave status.clientKeyData without status.clientCertificateData")
        case (let c?, let k?):
            guard let chain = PEM.certificates(Array(c.utf8)) else {
                throw fail("\(plugin.command)'s status.clientCertificateData is not a PEM certificate")
            }
            guard let key = PEM.privateKey(Array(k.utf8)) else {
                throw fail("\(plugin.command)'s status.clientKeyData is not a PEM private key")
            }
            guard PEM.belongTogether(chain, key) else {
                throw fail("\(plugin.command)'s status.clientKeyData is not the key of the certificate in status.clientCertificateData")
            }
            certificate = ClientCertificate(chain: chain, key: key)
        }
        var expires: Date?
        if let text = status["expirationTimestamp"] as? String {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            expires = f.date(from: text)
            if expires == nil {
                f.formatOptions = [.withInternetDateTime]
                expires = f.date(from: text)
            }
            guard expires != nil else {
                throw fail("\(plugin.command)'s status.expirationTimestamp \"\(text.prefix(40))\" is not an RFC 3339 time")
            }
        }
        return Credential(token: token, certificate: certificate, expires: expires)
    }
}
