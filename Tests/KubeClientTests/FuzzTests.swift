import Foundation
import KubeClient
import TapioTestSupport
import Testing
import TapioTestTraits

/// Mutation fuzzing of the parsers of what a kubeconfig or an API server hands the client (DESIGN §6, rung 6).
/// A fixed seed and a bounded number of cases run in the suite; `TAPIO_FUZZ_CASES=200000` runs longer and
/// `TAPIO_FUZZ_SEED=N` explores other inputs. Properties: no trap, no hang (each case is timed), bounded memory
/// (the splitter never holds more than its limit and one chunk), and every failure a `KubeConfigError` or
/// `KubeError` that says where.
@Suite("Fuzzing the client's parsers", .cpuBound, .timeLimit(.minutes(ProcessInfo.processInfo.environment["TAPIO_FUZZ_CASES"] == nil ? 10 : 24 * 60)))
struct ClientFuzzTests {
    static let pem = """
        -----BEGIN CERTIFICATE-----
        MIIBfTCCASOgAwIBAgIUXk3bLzj6m4eNXc6YbJmQ3Lh0s7QwCgYIKoZIzj0EAwIw
        FDESMBAGA1UEAwwJdGFwaW8tdGVzdDAeFw0yNTAxMDEwMDAwMDBaFw0yNTAxMDIw
        -----END CERTIFICATE-----
        """

    static let kubeconfigs: [String] = [
        KubeConfigTests.good,
        """
        apiVersion: v1
        kind: Config
        current-context: prod
        preferences: {}
        clusters:
        - name: prod
          cluster:
            server: https://[fd00::1]:443/base/path
            certificate-authority-data: \(Data(pem.utf8).base64EncodedString())
            tls-server-name: kubernetes
        contexts:
        - name: prod
          context: {cluster: prod, user: admin, namespace: kube-system}
        users:
        - name: admin
          user:
            client-certificate-data: \(Data(pem.utf8).base64EncodedString())
            client-key-data: \(Data("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8).base64EncodedString())
        """,
        """
        {"apiVersion": "v1", "kind": "Config", "current-context": "c",
         "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:8080", "insecure-skip-tls-verify": false}}],
         "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
         "users": [{"name": "u", "user": {"exec": {"command": "aws", "args": ["eks", "get-token"]}}}]}
        """,
        """
        {"apiVersion": "v1", "kind": "Config", "current-context": "c",
         "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
         "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
         "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/token",
           "args": ["--cluster", "k"], "env": [{"name": "REGION", "value": "eu-1"}], "interactiveMode": "IfAvailable",
           "provideClusterInfo": true, "installHint": "brew install token"}}}]}
        """,
    ]

    /// YAML- and kubeconfig-level messages carry no field; every other failure must name one.
    static func namesItsField(_ e: KubeConfigError) -> Bool {
        !e.message.isEmpty && !e.file.isEmpty
            && (!e.field.isEmpty || e.message.hasPrefix("not valid YAML") || e.message.hasPrefix("not a kubeconfig")
                || e.message.hasPrefix("the document expands"))
    }

    @Test func kubeconfigParsingNeverTrapsOrHangsAndEveryErrorNamesItsField() throws {
        var fuzz = Fuzz(seed: 1601)
        let clock = ContinuousClock()
        for i in 0..<Fuzz.cases(default: 3_000) {
            let base = fuzz.pick(Self.kubeconfigs)
            let text: String = switch fuzz.int(0...3) {
            case 0: fuzz.mutate(base)
            case 1: fuzz.replaceNumbers(in: base, probability: 0.5)
            case 2: base.replacingOccurrences(of: fuzz.pick(["6443", "443", "8080", "10.0.0.1", "abc", "c1", "one", "u1"]),
                                              with: fuzz.pick(Fuzz.hostileNumbers + Fuzz.hostileStrings))
            default: fuzz.mutate(fuzz.replaceNumbers(in: base))
            }
            let start = clock.now
            do {
                let config = try KubeConfig.parse(yaml: text, file: "/tmp/fuzz.kubeconfig", context: fuzz.chance(0.2) ? "two" : nil)
                // What parses must be usable: a valid port and a scheme the client speaks.
                #expect(["http", "https"].contains(config.server.scheme ?? ""), "case \(i) (\(fuzz.seedDescription)): \(config.server)")
                if let port = config.server.port { #expect((1...65535).contains(port), "case \(i): port \(port)") }
            } catch let e as KubeConfigError {
                #expect(Self.namesItsField(e), "case \(i) (\(fuzz.seedDescription)): \(e)")
            } catch {
                Issue.record("case \(i) (\(fuzz.seedDescription)): not a KubeConfigError: \(error)")
            }
            #expect(clock.now - start < .seconds(5), "case \(i) (\(fuzz.seedDescription)) took \(clock.now - start)")
        }
    }

    @Test func inClusterSettingsNeverTrap() {
        var fuzz = Fuzz(seed: 1602)
        for i in 0..<Fuzz.cases(default: 2_000) {
            let host = fuzz.chance(0.5) ? fuzz.mutate("10.96.0.1") : fuzz.pick(Fuzz.hostileStrings + Fuzz.hostileNumbers)
            let port = fuzz.chance(0.5) ? fuzz.mutate("443") : fuzz.pick(Fuzz.hostileNumbers)
            do {
                _ = try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port],
                                             serviceAccountDirectory: "/nonexistent")
                Issue.record("case \(i): no service account, yet a configuration")
            } catch let e as KubeConfigError {
                #expect(!e.message.isEmpty)
            } catch {
                Issue.record("case \(i) (\(fuzz.seedDescription)): not a KubeConfigError: \(error)")
            }
        }
    }

    static let watchStream = """
        {"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop","uid":"u-1","resourceVersion":"12","labels":{"app":"web"},"creationTimestamp":"2025-01-01T00:00:00Z"},"spec":{"nodeName":"n1","containers":[{"name":"app","image":"nginx","resources":{"limits":{"memory":"256Mi"}}}]},"status":{"phase":"Running","containerStatuses":[{"name":"app","ready":true,"restartCount":3,"image":"nginx","imageID":"","containerID":"containerd://abc","lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled"}}}]}}}
        {"type":"MODIFIED","object":{"metadata":{"name":"web-1","namespace":"shop","resourceVersion":"13","generation":2},"spec":{"holderIdentity":"a","leaseDurationSeconds":15,"leaseTransitions":2147483647}}}
        {"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"20"}}}
        {"type":"DELETED","object":{"metadata":{"name":"web-1","namespace":"shop","resourceVersion":"21"}}}
        {"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","code":410,"reason":"Expired","message":"too old resource version: 1 (20)","details":{"retryAfterSeconds":9223372036854775807}}}

        """

    @Test func watchStreamDecodingNeverTrapsAndIsIndependentOfChunkBoundaries() throws {
        var fuzz = Fuzz(seed: 1603)
        let limit = 4096
        let clock = ContinuousClock()
        let base = Array(Self.watchStream.utf8)
        for i in 0..<Fuzz.cases(default: 3_000) {
            var bytes = fuzz.chance(0.3) ? Array(fuzz.replaceNumbers(in: Self.watchStream, probability: 0.5).utf8) : base
            bytes = fuzz.mutateBytes(bytes)
            let start = clock.now
            // Reference: everything at once.
            let whole = Self.split(bytes, chunkSizes: { _ in bytes.count + 1 }, limit: limit)
            // The same bytes in random chunks, small or large.
            let maxChunk = fuzz.pick([1, 7, 64, 1500, 65_536])
            var chunkFuzz = Fuzz(seed: UInt64(i))
            var held = 0
            let chunked = Self.split(bytes, chunkSizes: { _ in chunkFuzz.int(1...maxChunk) }, limit: limit) { held = max(held, $0) }
            #expect(held <= limit + maxChunk, "case \(i): the splitter held \(held) bytes")
            switch (whole, chunked) {
            case (.success(let a), .success(let b)):
                #expect(a == b, "case \(i) (\(fuzz.seedDescription)): chunking changed the lines")
                for line in a {
                    Self.decodes(line, as: Pod.self, case: i)
                    Self.decodes(line, as: Lease.self, case: i)
                }
            case (.failure(let a), .failure(let b)):
                guard case .responseTooLarge = a, case .responseTooLarge = b else {
                    Issue.record("case \(i): unexpected errors \(a), \(b)")
                    continue
                }
            default:
                Issue.record("case \(i) (\(fuzz.seedDescription)): whole \(whole) but chunked \(chunked)")
            }
            #expect(clock.now - start < .seconds(5), "case \(i) (\(fuzz.seedDescription)) took \(clock.now - start)")
        }
    }

    /// The lines of `bytes` fed in chunks of `chunkSizes` bytes; `observe` sees the bytes held after each chunk.
    static func split(_ bytes: [UInt8], chunkSizes: (Int) -> Int, limit: Int,
                      observe: (Int) -> Void = { _ in }) -> Result<[[UInt8]], KubeError> {
        var splitter = WatchLineSplitter(maxLineBytes: limit)
        var out: [[UInt8]] = []
        var i = 0
        do throws(KubeError) {
            while i < bytes.count {
                let end = min(bytes.count, i + max(1, chunkSizes(i)))
                splitter.append(bytes[i..<end])
                observe(splitter.pendingBytes)
                i = end
                while let line = try splitter.nextLine() { out.append(Array(line)) }
            }
            if let rest = try splitter.finish() { out.append(Array(rest)) }
        } catch { return .failure(error) }
        return .success(out)
    }

    static func decodes<K: KubeResource>(_ line: [UInt8], as: K.Type, case i: Int) {
        do {
            _ = try WatchEvent<K>.decode(line: line)
        } catch {
            guard case .decoding(let type, let message) = error else {
                Issue.record("case \(i): \(K.kind) line failed with \(error), not a decoding error")
                return
            }
            #expect(type.contains(K.kind) && message.utf8.count <= 600, "case \(i): \(type): \(message.prefix(200))")
        }
    }
}
