import Foundation
import KubeEmulator

// tapio-emulator: the in-repo API server emulator the tests use, on its own, so a person can follow the README's
// walkthrough with kubectl and `tapio agent`/`tapio operator` without a cluster. Not a Kubernetes: it serves the
// built-in kinds Tapio uses and the CRDs in crds/, strictly, on 127.0.0.1 only, and forgets everything on exit.

let usage = """
    usage: tapio-emulator [--kubeconfig PATH] [--plain-http]
      Starts the API server emulator on a free loopback port, writes a kubeconfig for it to PATH
      (default ./tapio-emulator.kubeconfig), and serves until SIGINT or SIGTERM.
      --plain-http   serve HTTP instead of HTTPS (a throwaway CA is made with openssl otherwise; its
                     certificate holds 127.0.0.1 and localhost, and a client sending another TLS server
                     name gets one for kube-emulator.invalid alone)

    """

var kubeconfig = "tapio-emulator.kubeconfig"
var tls = true
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let a = args.removeFirst()
    switch a {
    case "--kubeconfig":
        guard !args.isEmpty else { FileHandle.standardError.write(Data("--kubeconfig needs a path\n".utf8)); exit(64) }
        kubeconfig = args.removeFirst()
    case "--plain-http": tls = false
    case "-h", "--help": print(usage, terminator: ""); exit(0)
    default:
        FileHandle.standardError.write(Data("unknown argument \(a)\n\(usage)".utf8))
        exit(64)
    }
}

let emulator: KubeEmulator
do {
    emulator = try await KubeEmulator.start(tls: tls)
    let text = try String(contentsOfFile: emulator.kubeconfigPath, encoding: .utf8)
    try text.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
} catch {
    FileHandle.standardError.write(Data("tapio-emulator: \(error)\n".utf8))
    exit(1)
}
let path = URL(fileURLWithPath: kubeconfig).standardizedFileURL.path
print("serving \(emulator.baseURL); kubeconfig written to \(path)")
print("export KUBECONFIG=\(path)")

// Stop on SIGINT/SIGTERM: the signals are turned into dispatch sources so the server shuts down cleanly. Both
// sources are kept for as long as the stream is: a source released is cancelled, and its signal, ignored so that the
// source gets it, then does nothing (Ctrl-C did not stop the emulator while one `onTermination` kept only the last).
let stop = AsyncStream<Int32> { continuation in
    let sources = [SIGINT, SIGTERM].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .main)
        source.setEventHandler { continuation.yield(sig) }
        source.resume()
        return source
    }
    nonisolated(unsafe) let keep = sources
    continuation.onTermination = { _ in keep.forEach { $0.cancel() } }
}
for await sig in stop {
    print("signal \(sig): stopping")
    break
}
await emulator.stop()
try? FileManager.default.removeItem(atPath: kubeconfig)
