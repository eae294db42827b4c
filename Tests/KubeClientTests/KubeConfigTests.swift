import Foundation
@testable import KubeClient
import TapioTestSupport
import Testing

@Suite("Kubeconfig parsing")
struct KubeConfigTests {
    static let good = """
    apiVersion: v1
    kind: Config
    current-context: one
    clusters:
    - name: c1
      cluster:
        server: https://10.0.0.1:6443
        insecure-skip-tls-verify: true
    contexts:
    - name: one
      context: {cluster: c1, user: u1, namespace: team-a}
    - name: two
      context: {cluster: c1, user: u2}
    users:
    - name: u1
      user: {token: abc}
    - name: u2
      user: {tokenFile: tok}
    """

    @Test(.timeLimit(.minutes(2))) func theCurrentContextSuppliesServerTokenAndNamespace() throws {
        let c = try KubeConfig.parse(yaml: Self.good, file: "/tmp/kc")
        #expect(c.server.absoluteString == "https://10.0.0.1:6443")
        #expect(c.token == "abc")
        #expect(c.namespace == "team-a")
        #expect(c.insecureSkipTLSVerify)
    }

    @Test(.timeLimit(.minutes(2))) func anExplicitContextWinsAndRelativeTokenFilesResolveAgainstTheKubeconfigDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-kc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "from-file\n".write(to: dir.appendingPathComponent("tok"), atomically: true, encoding: .utf8)
        let c = try KubeConfig.parse(yaml: Self.good, file: dir.appendingPathComponent("kc").path, context: "two")
        #expect(c.tokenFile == dir.appendingPathComponent("tok").path)
        #expect(c.namespace == "default")
    }

    @Test(.timeLimit(.minutes(2))) func aMissingServerIsReportedWithFileAndField() throws {
        let yaml = Self.good.replacingOccurrences(of: "    server: https://10.0.0.1:6443\n", with: "")
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: yaml, file: "/tmp/bad") }
        #expect(e.file == "/tmp/bad")
        #expect(e.field == "clusters[name=c1].cluster.server")
        #expect(e.description.hasPrefix("/tmp/bad: clusters[name=c1].cluster.server"))
    }

    @Test(.timeLimit(.minutes(2))) func invalidBase64CertificateDataNamesTheField() throws {
        let yaml = Self.good.replacingOccurrences(of: "insecure-skip-tls-verify: true", with: "certificate-authority-data: '%%%not base64'")
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: yaml, file: "/tmp/bad") }
        #expect(e.field == "clusters[name=c1].cluster.certificate-authority-data")
    }

    @Test(.timeLimit(.minutes(2))) func anUnknownContextIsReported() throws {
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: Self.good, file: "/tmp/kc", context: "nope") }
        #expect(e.field == "contexts")
        #expect(e.message.contains("nope"))
    }

    @Test(.timeLimit(.minutes(2))) func inClusterConfigNeedsTheServiceEnvironment() throws {
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.inCluster(environment: [:]) }
        #expect(e.field == "KUBERNETES_SERVICE_HOST")
    }
}

/// Hostile values in a kubeconfig: every one is an error naming its field, never a trap or a hang (issue 16).
@Suite("Kubeconfig regressions")
struct KubeConfigRegressionTests {
    static func replacing(_ old: String, _ new: String) -> String { KubeConfigTests.good.replacingOccurrences(of: old, with: new) }

    static func error(_ yaml: String, context: String? = nil) throws -> KubeConfigError {
        try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: yaml, file: "/tmp/kc", context: context) }
    }

    /// A self-signed certificate and its key, made with the openssl CLI.
    static func certificateAndKey() async throws -> (cert: String, key: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-kc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try await CommandRunner.run(URL(fileURLWithPath: "/usr/bin/env"), [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=tapio-test", "-keyout", dir.appendingPathComponent("key").path, "-out", dir.appendingPathComponent("cert").path,
        ], timeout: .seconds(30))
        try #require(r.status == 0, "openssl failed: \(r.stderr)")
        return (try String(contentsOf: dir.appendingPathComponent("cert"), encoding: .utf8),
                try String(contentsOf: dir.appendingPathComponent("key"), encoding: .utf8))
    }

    @Test(.timeLimit(.minutes(2))) func aPortOutOfRangeOrTooLongNamesTheServerField() throws {
        for port in ["99999", "65536", "0", "12345678901234567890", "99999999999999999999999999", "-1", "8a", "6443.5"] {
            let e = try Self.error(Self.replacing("https://10.0.0.1:6443", "https://127.0.0.1:\(port)"))
            #expect(e.field == "clusters[name=c1].cluster.server", "port \(port): \(e)")
            #expect(e.message.contains("port") || e.message.contains("URL"), "port \(port): \(e)")
        }
        let ok = try KubeConfig.parse(yaml: Self.replacing("https://10.0.0.1:6443", "https://[::1]:65535"), file: "/tmp/kc")
        #expect(ok.server.port == 65535)
        // Found by the fuzzer: a scheme in mixed case passed the check but not the HTTP client; Go lowercases it.
        let upper = try KubeConfig.parse(yaml: Self.replacing("https://10.0.0.1:6443", "HttPS://10.0.0.1:6443"), file: "/tmp/kc")
        #expect(upper.server.absoluteString == "https://10.0.0.1:6443")
    }

    @Test(.timeLimit(.minutes(2))) func aClientBuiltForAnOutOfRangePortFailsWithAnErrorInsteadOfATrap() throws {
        for text in ["https://127.0.0.1:99999", "https://127.0.0.1:12345678901234567890"] {
            guard let url = URL(string: text) else { continue }  // Foundation may refuse it first, which is fine too
            #expect(throws: KubeError.self, "\(text)") { _ = try KubeClient(config: KubeConfig(server: url)) }
        }
    }

    @Test(.timeLimit(.minutes(2))) func certificatesAndKeysThatAreNotPEMNameTheirField() async throws {
        let junk = Data("not a certificate".utf8).base64EncodedString()
        let fakePEM = Data("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8).base64EncodedString()
        for data in [junk, fakePEM] {
            let e = try Self.error(Self.replacing("insecure-skip-tls-verify: true", "certificate-authority-data: \(data)"))
            #expect(e.description == "/tmp/kc: clusters[name=c1].cluster.certificate-authority-data: not a PEM certificate")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-kc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "junk".write(to: dir.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        let fromFile = try #require(throws: KubeConfigError.self) {
            try KubeConfig.parse(yaml: Self.replacing("insecure-skip-tls-verify: true", "certificate-authority: ca.crt"),
                                 file: dir.appendingPathComponent("kc").path)
        }
        #expect(fromFile.field == "clusters[name=c1].cluster.certificate-authority")
        #expect(fromFile.message == "not a PEM certificate")

        let (cert, key) = try await Self.certificateAndKey()
        let b64 = { (s: String) in Data(s.utf8).base64EncodedString() }
        let good = Self.replacing("user: {token: abc}", "user: {client-certificate-data: \(b64(cert)), client-key-data: \(b64(key))}")
        #expect(try KubeConfig.parse(yaml: good, file: "/tmp/kc").clientKeyPEM != nil)
        let badKey = try Self.error(Self.replacing("user: {token: abc}", "user: {client-certificate-data: \(b64(cert)), client-key-data: \(junk)}"))
        #expect(badKey.description == "/tmp/kc: users[name=u1].user.client-key-data: not a PEM private key")
        let badCert = try Self.error(Self.replacing("user: {token: abc}", "user: {client-certificate-data: \(junk), client-key-data: \(b64(key))}"))
        #expect(badCert.field == "users[name=u1].user.client-certificate-data")
        // Each PEM, but not a pair: named at the key, rather than failing every connection.
        let (_, otherKey) = try await Self.certificateAndKey()
        let mismatched = try Self.error(Self.replacing("user: {token: abc}", "user: {client-certificate-data: \(b64(cert)), client-key-data: \(b64(otherKey))}"))
        #expect(mismatched.description == "/tmp/kc: users[name=u1].user.client-key-data: not the key of the client certificate")
    }

    /// A kubeconfig, or a file it names, that never ends (`/dev/zero`) is refused at a bound, naming the field,
    /// instead of read until memory runs out; a pipe (process substitution) is read as a file.
    @Test(.timeLimit(.minutes(2))) func anEndlessFileIsRefusedAtABound() throws {
        let whole = try #require(throws: KubeConfigError.self) { try KubeConfig.load(path: "/dev/zero") }
        #expect(whole.description == "/dev/zero: /dev/zero is larger than \(BoundedFile.textLimit) bytes, more than such a file can hold",
                "\(whole)")
        let ca = try Self.error(Self.replacing("insecure-skip-tls-verify: true", "certificate-authority: /dev/zero"))
        #expect(ca.field == "clusters[name=c1].cluster.certificate-authority")
        #expect(ca.message == "/dev/zero is larger than \(BoundedFile.credentialLimit) bytes, more than such a file can hold")
        let missing = try Self.error(Self.replacing("insecure-skip-tls-verify: true", "certificate-authority: /nonexistent/ca.crt"))
        #expect(missing.message == "cannot read /nonexistent/ca.crt: no such file")
        #expect(throws: BoundedFile.Failure.cannotRead(path: "/tmp", reason: "a directory, not a file")) {
            try BoundedFile.read("/tmp", limit: 100)
        }

        // Exactly the limit is read; one byte more is refused.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-bounded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("f").path
        try Data(repeating: 7, count: 100_000).write(to: URL(fileURLWithPath: file))
        #expect(try BoundedFile.read(file, limit: 100_000) == Data(repeating: 7, count: 100_000))
        #expect(throws: BoundedFile.Failure.tooLarge(path: file, limit: 99_999)) { try BoundedFile.read(file, limit: 99_999) }

        // A FIFO with a writer: read to its end, as `--kubeconfig <(…)` would be.
        let fifo = dir.appendingPathComponent("pipe").path
        try #require(mkfifo(fifo, 0o600) == 0)
        let writer = Thread {
            if let h = FileHandle(forWritingAtPath: fifo) { h.write(Data(KubeConfigTests.good.utf8)); try? h.close() }
        }
        writer.start()
        #expect(try KubeConfig.load(path: fifo).token == "abc")
    }

    @Test(.timeLimit(.minutes(2))) func anAliasBombIsRefusedQuicklyInsteadOfExpanded() throws {
        // Each line multiplies the one before by ten: fully expanded this is 10⁸ strings.
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...7 { yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let start = ContinuousClock.now
        let e = try Self.error(yaml)
        #expect(e.message.contains("expands to more than"))
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test(.timeLimit(.minutes(2))) func aMappingKeyThatIsNotAStringIsAnErrorNotATrap() throws {
        // Found by the fuzzer: Yams's constructor force-unwraps mapping keys as strings.
        for yaml in ["{[a]: b}", "? [x]\n: y\n", "clusters:\n- {name: c1, {cluster: x}: 1}\n", "a: &m {x: 1}\nb: {<<: [*m, 3]}\n"] {
            let e = try Self.error(yaml)
            #expect(e.message.hasPrefix("not a kubeconfig"), "\(yaml): \(e)")
        }
        // Merge keys still work as kubectl reads them.
        let merged = """
            base: &base {server: "https://10.0.0.2:6443", insecure-skip-tls-verify: true}
            current-context: one
            clusters: [{name: c1, cluster: {<<: *base, server: "https://10.0.0.3:443"}}]
            contexts: [{name: one, context: {cluster: c1}}]
            """
        let c = try KubeConfig.parse(yaml: merged, file: "/tmp/kc")
        #expect(c.server.absoluteString == "https://10.0.0.3:443", "an explicit key wins over the merged one")
        #expect(c.insecureSkipTLSVerify)
    }

    /// Plain scalars are resolved by Tapio, not by Yams's regex rules (which load ICU): YAML 1.1 booleans in any of
    /// their spellings, quoted ones stay strings, and a null is no value.
    @Test(.timeLimit(.minutes(2))) func booleansAndNullsAreReadAsKubectlReadsThem() throws {
        func parse(_ skip: String, namespace: String) throws -> KubeConfig {
            try KubeConfig.parse(yaml: """
                current-context: one
                clusters: [{name: c1, cluster: {server: "https://10.0.0.2:6443", insecure-skip-tls-verify: \(skip)}}]
                contexts: [{name: one, context: {cluster: c1, namespace: \(namespace)}}]
                """, file: "/tmp/kc")
        }
        for word in ["true", "True", "TRUE", "yes", "Yes", "on", "ON"] {
            #expect(try parse(word, namespace: "ns").insecureSkipTLSVerify, "\(word) is true")
        }
        for word in ["false", "False", "no", "NO", "off", "Off"] {
            #expect(try !parse(word, namespace: "ns").insecureSkipTLSVerify, "\(word) is false")
        }
        for null in ["~", "null", "Null", "NULL"] {
            #expect(try parse("false", namespace: null).namespace == "default", "a \(null) namespace is no namespace")
        }
        #expect(try parse("false", namespace: "\"null\"").namespace == "null", "a quoted null is a string")
        #expect(try parse("false", namespace: "yes-please").namespace == "yes-please")
        // A quoted boolean is a string where a boolean belongs: named, not guessed.
        #expect(throws: KubeConfigError.self) { try parse("\"true\"", namespace: "ns") }
    }

    @Test(.timeLimit(.minutes(2))) func nestingBeyondLibyamlsLimitIsAnErrorNotAStackOverflow() throws {
        for deep in [String(repeating: "[", count: 100_000), String(repeating: "- ", count: 50_000) + "x",
                     String(repeating: "{a: ", count: 50_000)] {
            let e = try Self.error(deep)
            #expect(e.field == "")
        }
    }

    /// Yams's constructor turns a YAML 1.1 sexagesimal int (`1:2:3:…`) into an Int by multiplying without a check
    /// and trapped: a kubeconfig's unused `preferences` once crashed `tapio sniff`. Scalars stay text now.
    @Test(.timeLimit(.minutes(2))) func numbersTheKubeconfigNeverUsesAreNotConstructed() throws {
        let yaml = KubeConfigTests.good + """

            preferences: {colors: 1:2:3:4:5:6:7:8:9:10:11:12:13, n: 99999999999999999999999, f: 1e999, d: 2001-13-45}
            extensions: [{name: x, extension: {big: -0x8000000000000000000}}]
            """
        let c = try KubeConfig.parse(yaml: yaml, file: "/tmp/kc")
        #expect(c.server.absoluteString == "https://10.0.0.1:6443")
    }

    @Test(.timeLimit(.minutes(2))) func inClusterPortsAndHostsAreChecked() throws {
        for port in ["99999", "0", "12345678901234567890", "https"] {
            let e = try #require(throws: KubeConfigError.self) {
                try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": port])
            }
            #expect(e.field == "KUBERNETES_SERVICE_PORT")
        }
        let e = try #require(throws: KubeConfigError.self) {
            try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "a b/c", "KUBERNETES_SERVICE_PORT": "443"])
        }
        #expect(e.field == "KUBERNETES_SERVICE_HOST")
    }

    /// `KUBECONFIG=a:b:c` as kubectl reads it: merged, first file wins per name, paths relative to each file.
    @Test(.timeLimit(.minutes(2))) func aKubeconfigListIsMergedAsKubectlMergesIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-kc-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        for sub in ["a", "b"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let a = dir.appendingPathComponent("a/config").path, b = dir.appendingPathComponent("b/config").path
        try "from-a".write(to: dir.appendingPathComponent("a/token"), atomically: true, encoding: .utf8)
        // a: the current context and a user; b: the cluster, a second context, and a user named like a's.
        try """
            current-context: work
            contexts: [{name: work, context: {cluster: eks, user: me}}]
            users: [{name: me, user: {tokenFile: token}}]
            """.write(toFile: a, atomically: true, encoding: .utf8)
        try """
            current-context: other
            clusters: [{name: eks, cluster: {server: "https://eks.example:443", insecure-skip-tls-verify: true}}]
            contexts: [{name: other, context: {cluster: eks, user: me, namespace: ops}}]
            users: [{name: me, user: {token: from-b}}]
            """.write(toFile: b, atomically: true, encoding: .utf8)
        let missing = dir.appendingPathComponent("nope").path
        let merged = try KubeConfig.fromEnvironment(environment: ["KUBECONFIG": "\(a):\(missing):\(b)", "HOME": dir.path])
        #expect(merged.server.absoluteString == "https://eks.example:443")
        #expect(merged.tokenFile == dir.appendingPathComponent("a/token").path, "a's user wins, its path relative to a")
        #expect(merged.token == nil)
        #expect(merged.source == "\(a):\(b)")
        let other = try KubeConfig.load(paths: [a, b], context: "other")
        #expect(other.namespace == "ops")
        // An error names the file of the entry at fault.
        try """
            clusters: [{name: eks, cluster: {server: "https://eks.example:99999"}}]
            """.write(toFile: b, atomically: true, encoding: .utf8)
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.load(paths: [a, b]) }
        #expect(e.file == b && e.field == "clusters[name=eks].cluster.server", "\(e)")
        let none = try #require(throws: KubeConfigError.self) { try KubeConfig.load(paths: [missing]) }
        #expect(none.message == "none of these files exists")
    }

    /// A cluster's tls-server-name other than the server's host is kept for the TLS layer (lower case); one that is
    /// no DNS name, or an IP address other than the host, is refused naming the field.
    @Test(.timeLimit(.minutes(2))) func aTLSServerNameIsReadAndChecked() throws {
        func load(_ name: String) throws -> KubeConfig {
            try KubeConfig.parse(yaml: """
                current-context: c
                clusters: [{name: k, cluster: {server: "https://api.example.com:6443", tls-server-name: \(name)}}]
                contexts: [{name: c, context: {cluster: k}}]
                """, file: "/k")
        }
        let same = try load("API.example.com")
        #expect(same.server.host == "api.example.com" && same.tlsServerName == nil)
        #expect(try load("Kubernetes.Default.svc").tlsServerName == "kubernetes.default.svc")
        #expect(try load("\"\"").tlsServerName == nil)
        // Compared as Go's client compares: a trailing dot, and an address's spelling, aside.
        #expect(try load("api.example.com.").tlsServerName == nil)
        #expect(try load("Kubernetes.Default.svc.").tlsServerName == "kubernetes.default.svc")
        func loadServer(_ server: String, _ name: String) throws -> KubeConfig {
            try KubeConfig.parse(yaml: """
                current-context: c
                clusters: [{name: k, cluster: {server: "\(server)", tls-server-name: "\(name)"}}]
                contexts: [{name: c, context: {cluster: k}}]
                """, file: "/k")
        }
        #expect(try loadServer("https://[fd00::1]:6443", "fd00:0::1").tlsServerName == nil)
        // A name equal to the host is not checked (it loaded before); over http there is no TLS to name.
        #expect(try loadServer("https://my_host:6443", "my_host").tlsServerName == nil)
        #expect(try loadServer("http://10.0.0.1:8080", "api.example.com").tlsServerName == nil)
        for (name, problem) in [("bad_name.example", "is not a DNS name or an IP address"),
                                ("-lead.example", "is not a DNS name or an IP address"),
                                ("a..b", "is not a DNS name or an IP address"),
                                (String(repeating: "a.", count: 130) + "io", "longer than a DNS name can be"),
                                ("10.0.0.1", "is an IP address other than the server's host"),
                                ("[a, b]", "not a string")] {
            let e = try #require(throws: KubeConfigError.self, "\(name)") { try load(name) }
            #expect(e.field == "clusters[name=k].cluster.tls-server-name" && e.message.contains(problem), "\(name): \(e)")
        }
    }

    /// A list entry that is not a mapping is named by its index, not taken for the whole list being no list.
    @Test(.timeLimit(.minutes(2))) func anEntryThatIsNotAMappingIsNamedByItsIndex() throws {
        let clusters = try Self.error("""
            current-context: one
            clusters: [{name: c1, cluster: {server: "https://10.0.0.1:6443"}}, just-a-string]
            contexts: [{name: one, context: {cluster: c1}}]
            """)
        #expect(clusters.field == "clusters[1]" && clusters.message == "not a mapping", "\(clusters)")
        let contexts = try Self.error("""
            current-context: one
            clusters: [{name: c1, cluster: {server: "https://10.0.0.1:6443"}}]
            contexts: [[one], {name: one, context: {cluster: c1}}]
            """)
        #expect(contexts.field == "contexts[0]" && contexts.message == "not a mapping", "\(contexts)")
        let users = try Self.error(Self.replacing("- name: u2\n  user: {tokenFile: tok}", "- 42"))
        #expect(users.field == "users[1]" && users.message == "not a mapping", "\(users)")
    }

    /// A token with a control character would be refused by the HTTP client with an error quoting it whole, into log
    /// lines: refused here naming its field, the kubeconfig's token as written, a token file's after trimming.
    @Test(.timeLimit(.minutes(2))) func aTokenWithAControlCharacterIsRefusedNamingTheFieldWithoutShowingIt() throws {
        for escape in ["\\x01", "\\n", "\\t", "\\x7f", "\\r"] {
            let e = try Self.error(Self.replacing("user: {token: abc}", "user: {token: \"s3cret\(escape)tok\"}"))
            #expect(e.field == "users[name=u1].user.token" && e.message.hasPrefix("contains a control character (byte 7 of 10)"),
                    "\(escape): \(e)")
            #expect(!e.description.contains("s3cret"))
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-kc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let kc = dir.appendingPathComponent("kc").path, tok = dir.appendingPathComponent("tok")
        try "  s3cret\u{1}tok\n".write(to: tok, atomically: true, encoding: .utf8)
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: KubeConfigTests.good, file: kc, context: "two") }
        #expect(e.field == "users[name=u2].user.tokenFile" && e.message.contains("contains a control character"), "\(e)")
        #expect(!e.description.contains("s3cret"))
        // The line break and spaces around a token are no part of it.
        try "  good-token\n".write(to: tok, atomically: true, encoding: .utf8)
        let c = try KubeConfig.parse(yaml: KubeConfigTests.good, file: kc, context: "two")
        #expect(TokenSource(token: nil, file: c.tokenFile).current() == "good-token")
    }

    /// A token file rewritten with a control character (mid-rotation, or broken) is not sent: the last good token is.
    @Test(.timeLimit(.minutes(2))) func aRotatedTokenFileWithAControlCharacterKeepsTheLastGoodToken() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-kc-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tok = dir.appendingPathComponent("tok")
        try "first\n".write(to: tok, atomically: true, encoding: .utf8)
        let source = TokenSource(token: nil, file: tok.path)
        #expect(source.current() == "first")
        // Another size, so it is read again whatever the file system's time resolution.
        try "second\u{0}rotated\n".write(to: tok, atomically: true, encoding: .utf8)
        #expect(source.current() == "first")
        try "third-token\n".write(to: tok, atomically: true, encoding: .utf8)
        #expect(source.current() == "third-token")
    }

    /// Credentials Tapio has no way to use are refused naming the field, rather than every request going out
    /// anonymously; a token file is read when the kubeconfig is.
    @Test(.timeLimit(.minutes(2))) func unsupportedOrMissingCredentialsAreNamedWhenTheKubeconfigIsRead() throws {
        let provider = try Self.error(Self.replacing("user: {token: abc}",
                                                     "user: {auth-provider: {name: oidc, config: {idp-issuer-url: https://id.example}}}"))
        #expect(provider.field == "users[name=u1].user.auth-provider", "\(provider)")
        #expect(provider.message.contains("(oidc) are not supported") && provider.message.contains("kubelogin"), "\(provider)")
        let basic = try Self.error(Self.replacing("user: {token: abc}", "user: {username: admin, password: pw}"))
        #expect(basic.field == "users[name=u1].user.username" && basic.message.contains("v1.19"), "\(basic)")
        let password = try Self.error(Self.replacing("user: {token: abc}", "user: {password: pw}"))
        #expect(password.field == "users[name=u1].user.password", "\(password)")
        // Beside a credential Tapio uses, they are left alone, as kubectl then uses that one too.
        #expect(try KubeConfig.parse(yaml: Self.replacing("user: {token: abc}", "user: {token: abc, username: admin, password: pw}"),
                                     file: "/tmp/kc").token == "abc")
        let missing = try Self.error(Self.replacing("user: {token: abc}", "user: {tokenFile: /nonexistent/token}"))
        #expect(missing.description == "/tmp/kc: users[name=u1].user.tokenFile: cannot read /nonexistent/token: no such file", "\(missing)")
        let notText = try Self.error(Self.replacing("user: {token: abc}", "user: {tokenFile: [a]}"))
        #expect(notText.field == "users[name=u1].user.tokenFile" && notText.message == "not a string", "\(notText)")
    }
}
