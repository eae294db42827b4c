import Foundation

/// A failure reading a kubeconfig: names the file and the field at fault, e.g.
/// `/home/me/.kube/config: users[name=alice].user.client-certificate-data: not valid base64`.
public struct KubeConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var field: String
    public var message: String
    public init(file: String, field: String, message: String) {
        self.file = file; self.field = field; self.message = message
    }
    public var description: String { "\(file): \(field.isEmpty ? "" : field + ": ")\(message)" }
}

/// How to reach and authenticate to one API server: what a kubeconfig context or the in-cluster environment says.
public struct KubeConfig: Sendable {
    /// Base URL of the API server, e.g. `https://10.0.0.1:6443`.
    public var server: URL
    /// PEM bytes of the CA bundle to trust; nil → system roots.
    public var certificateAuthorityPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    /// A fixed bearer token.
    public var token: String?
    /// A file holding the bearer token; re-read when it changes (service-account token rotation).
    public var tokenFile: String?
    /// A command that prints a token or a client certificate (a kubeconfig user's `exec`), used when neither a token nor a client
    /// certificate is given.
    public var exec: ExecCredentialPlugin?
    /// The cluster's `extensions[name=client.authentication.k8s.io/exec].extension` as JSON: settings for the
    /// plugin, sent to it in `KUBERNETES_EXEC_INFO` when it asks for cluster info.
    public var execExtension: Data?
    /// PEM bytes of the client certificate and its key (mutual TLS).
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// The namespace of the context (or the service account's); `default` when unset.
    public var namespace: String
    /// How requests reach the server: the cluster's `proxy-url`, else the environment's proxy (client-go's default).
    public var proxy: ProxySetting = .environment
    /// The name the server's certificate is checked against and sent in TLS's server name indication, when it is not
    /// the host in `server` (the cluster's `tls-server-name`: an API server reached by address, or through a tunnel,
    /// whose certificate names it otherwise). Requests still go to `server`'s host and port. Lower case.
    public var tlsServerName: String?
    /// The cluster's `tls-server-name` as the kubeconfig wrote it (nil when empty or absent), for exec plugins told
    /// the cluster's info: client-go passes it on as written, also when it only repeats the server's host.
    public var tlsServerNameAsWritten: String?
    /// Where this configuration came from, for messages.
    public var source: String

    public init(server: URL, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
                token: String? = nil, tokenFile: String? = nil, clientCertificatePEM: [UInt8]? = nil,
                clientKeyPEM: [UInt8]? = nil, namespace: String = "default", source: String = "") {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.token = token
        self.tokenFile = tokenFile
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.namespace = namespace
        self.source = source
    }

    /// Reads a kubeconfig file and resolves `context` (default: `current-context`). Relative file paths inside it are
    /// resolved against the kubeconfig's directory, as kubectl does.
    public static func load(path: String, context: String? = nil) throws -> KubeConfig {
        let data: Data
        do { data = try BoundedFile.read(path, limit: BoundedFile.textLimit) } catch {
            throw KubeConfigError(file: path, field: "", message: error.description)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KubeConfigError(file: path, field: "", message: "not UTF-8 text")
        }
        return try parse(yaml: text, file: path, context: context)
    }

    /// Parses kubeconfig text; `file` is used in errors and to resolve relative paths.
    public static func parse(yaml: String, file: String, context: String? = nil) throws -> KubeConfig {
        try parse(MergedFiles(documents: [(file, try document(yaml: yaml, file: file, allowEmpty: false))]), context: context)
    }

    /// Reads several kubeconfig files and merges them as kubectl merges a `KUBECONFIG` list: a file that does not
    /// exist is skipped; of clusters, users and contexts with the same name the first file's wins, and so does the
    /// first `current-context` set. Each entry's relative paths are resolved against its own file's directory, and
    /// an error names the file the faulty entry came from.
    public static func load(paths: [String], context: String? = nil) throws -> KubeConfig {
        var documents: [(String, [String: Any])] = []
        var seen = Set<String>()
        for path in paths where !path.isEmpty && seen.insert(path).inserted {
            let data: Data
            do { data = try BoundedFile.read(path, limit: BoundedFile.textLimit) } catch {
                if case .cannotRead(_, let reason) = error, reason == "no such file" { continue }
                throw KubeConfigError(file: path, field: "", message: error.description)
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw KubeConfigError(file: path, field: "", message: "not UTF-8 text")
            }
            documents.append((path, try document(yaml: text, file: path, allowEmpty: true)))
        }
        guard !documents.isEmpty else {
            throw KubeConfigError(file: paths.joined(separator: ":"), field: "", message: "none of these files exists")
        }
        return try parse(MergedFiles(documents: documents), context: context)
    }

    static func document(yaml: String, file: String, allowEmpty: Bool) throws -> [String: Any] {
        let root = try KubeConfigYAML.load(yaml, file: file)
        guard let doc = root as? [String: Any] else {
            // An empty file in a list merges as nothing, as kubectl reads it; alone it configures nothing.
            if root == nil && allowEmpty { return [:] }
            throw KubeConfigError(file: file, field: "", message: "not a kubeconfig (expected a mapping)")
        }
        return doc
    }

    /// One or more kubeconfig documents, in `KUBECONFIG` order, read as one.
    struct MergedFiles {
        var documents: [(file: String, doc: [String: Any])]
        /// The file errors about the whole name, and the source of the configuration.
        var first: String { documents.first?.file ?? "" }
        var label: String { documents.count == 1 ? first : documents.map(\.file).joined(separator: ":") }

        /// The first document's entry of `list` named `name`, and its file; a list that is not a list, or an entry
        /// that is not a mapping, is an error in the file that has it (naming the entry: one bad entry is not the whole
        /// list being wrong).
        func entry(_ list: String, _ name: String) throws -> (item: [String: Any], file: String)? {
            for (file, doc) in documents {
                guard let value = doc[list], !(value is NSNull) else { continue }
                guard let elements = value as? [Any] else {
                    throw KubeConfigError(file: file, field: list, message: "not a list")
                }
                var items: [[String: Any]] = []
                for (i, element) in elements.enumerated() {
                    guard let item = element as? [String: Any] else {
                        throw KubeConfigError(file: file, field: "\(list)[\(i)]", message: "not a mapping")
                    }
                    items.append(item)
                }
                if let item = items.first(where: { ($0["name"] as? String) == name }) { return (item, file) }
            }
            return nil
        }

        /// The first `current-context` set.
        var currentContext: (name: String, file: String)? {
            for (file, doc) in documents {
                if let c = doc["current-context"] as? String, !c.isEmpty { return (c, file) }
            }
            return nil
        }
    }

    static func parse(_ files: MergedFiles, context: String?) throws -> KubeConfig {
        func named(_ list: String, _ name: String, _ inner: String) throws -> (body: [String: Any], file: String) {
            guard let (item, file) = try files.entry(list, name) else {
                let hasList = files.documents.contains { $0.doc[list] != nil }
                throw KubeConfigError(file: files.label, field: list, message: hasList ? "no entry named \"\(name)\"" : "missing or not a list")
            }
            guard let body = item[inner] as? [String: Any] else {
                throw KubeConfigError(file: file, field: "\(list)[name=\(name)].\(inner)", message: "missing or not a mapping")
            }
            return (body, file)
        }
        let contextName: String
        if let context { contextName = context } else {
            guard let c = files.currentContext else {
                throw KubeConfigError(file: files.label, field: "current-context", message: "not set and no context was given")
            }
            contextName = c.name
        }
        let (ctx, ctxFile) = try named("contexts", contextName, "context")
        let ctxField = "contexts[name=\(contextName)].context"
        guard let clusterName = ctx["cluster"] as? String else {
            throw KubeConfigError(file: ctxFile, field: ctxField + ".cluster", message: "missing")
        }
        let (cluster, clusterFile) = try named("clusters", clusterName, "cluster")
        // Errors about the cluster name its file, and its relative paths are its file's.
        var file = clusterFile
        var baseDir = URL(fileURLWithPath: clusterFile).deletingLastPathComponent()
        func fail(_ field: String, _ message: String) -> KubeConfigError {
            KubeConfigError(file: file, field: field, message: message)
        }
        let clField = "clusters[name=\(clusterName)].cluster"
        guard let serverText = cluster["server"] as? String, !serverText.isEmpty else {
            throw fail(clField + ".server", "missing")
        }
        if let why = ServerURL.problem(serverText) { throw fail(clField + ".server", why) }
        guard let server = URL(string: ServerURL.normalized(serverText)) else {
            throw fail(clField + ".server", "not an http(s) URL: \(serverText)")
        }
        var cfg = KubeConfig(server: server, source: files.label)
        cfg.namespace = (ctx["namespace"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        // kubectl refuses a quoted "true" here; reading it as false would turn TLS checks on or off by accident.
        switch cluster["insecure-skip-tls-verify"] {
        case nil, is NSNull: cfg.insecureSkipTLSVerify = false
        case let b as Bool: cfg.insecureSkipTLSVerify = b
        case let other?: throw fail(clField + ".insecure-skip-tls-verify", "not a boolean: \(String(describing: other).prefix(64))")
        }

        func dataOrFile(_ section: [String: Any], _ prefix: String, dataKey: String, fileKey: String) throws -> [UInt8]? {
            if let b64 = section[dataKey] {
                guard let s = b64 as? String, let d = Data(base64Encoded: s, options: .ignoreUnknownCharacters),
                      !d.isEmpty else {
                    throw fail("\(prefix).\(dataKey)", "not valid base64")
                }
                return Array(d)
            }
            if let p = section[fileKey] {
                guard let path = p as? String else { throw fail("\(prefix).\(fileKey)", "not a string") }
                let resolved = path.hasPrefix("/") ? path : baseDir.appendingPathComponent(path).path
                do { return Array(try BoundedFile.read(resolved, limit: BoundedFile.credentialLimit)) } catch {
                    throw fail("\(prefix).\(fileKey)", error.description)
                }
            }
            return nil
        }
        /// The PEM check happens here, where the field is known, rather than when the client builds its TLS setup.
        func pem(_ section: [String: Any], _ prefix: String, dataKey: String, fileKey: String, key: Bool = false) throws -> [UInt8]? {
            guard let bytes = try dataOrFile(section, prefix, dataKey: dataKey, fileKey: fileKey) else { return nil }
            let field = "\(prefix).\(section[dataKey] != nil ? dataKey : fileKey)"
            if key {
                guard PEM.privateKey(bytes) != nil else { throw fail(field, "not a PEM private key") }
            } else {
                guard PEM.certificates(bytes) != nil else { throw fail(field, "not a PEM certificate") }
            }
            return bytes
        }
        cfg.certificateAuthorityPEM = try pem(cluster, clField, dataKey: "certificate-authority-data",
                                              fileKey: "certificate-authority")
        // A TLS name other than the server's host (an API server reached by address, or through a tunnel): the
        // certificate is checked against it, as client-go does. One that is no name is refused here, naming the field.
        switch cluster["tls-server-name"] {
        case nil, is NSNull: break
        case let name as String where !name.isEmpty:
            do { cfg.tlsServerName = try ServerURL.tlsServerName(name, server: server) } catch {
                throw fail(clField + ".tls-server-name", error.message)
            }
            cfg.tlsServerNameAsWritten = name
        case is String: break
        default: throw fail(clField + ".tls-server-name", "not a string")
        }
        switch cluster["proxy-url"] {
        case nil, is NSNull: break
        case let text as String where !text.isEmpty:
            if case .failure(let why) = ProxyEndpoint.parse(text) { throw fail(clField + ".proxy-url", why.description) }
            cfg.proxy = .url(text)
        case is String: break
        default: throw fail(clField + ".proxy-url", "not a string")
        }
        if let extensions = cluster["extensions"] as? [Any] {
            for case let e as [String: Any] in extensions where e["name"] as? String == "client.authentication.k8s.io/exec" {
                if let value = e["extension"], JSONSerialization.isValidJSONObject([value]) {
                    cfg.execExtension = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys])
                }
            }
        }
        if let userName = ctx["user"] as? String, !userName.isEmpty {
            let (user, userFile) = try named("users", userName, "user")
            file = userFile
            baseDir = URL(fileURLWithPath: userFile).deletingLastPathComponent()
            let uField = "users[name=\(userName)].user"
            if let t = user["token"] {
                guard let s = t as? String else { throw fail(uField + ".token", "not a string") }
                if let why = BearerToken.problem(s) { throw fail(uField + ".token", why) }
                cfg.token = s
            }
            switch user["tokenFile"] {
            case nil, is NSNull: break
            case let tf as String where !tf.isEmpty:
                let path = tf.hasPrefix("/") ? tf : baseDir.appendingPathComponent(tf).path
                // Read once here so that a file missing, unreadable or holding no usable token is named now, not found
                // by requests that would go out without a token. Requests read it again (`TokenSource`): it rotates.
                let data: Data
                do { data = try BoundedFile.read(path, limit: BoundedFile.credentialLimit) } catch {
                    throw fail(uField + ".tokenFile", error.description)
                }
                guard let text = String(data: data, encoding: .utf8) else { throw fail(uField + ".tokenFile", "\(path) is not UTF-8 text") }
                if let why = BearerToken.problem(BearerToken.fromFile(text)) { throw fail(uField + ".tokenFile", "\(path) \(why)") }
                cfg.tokenFile = path
            case is String: break
            default: throw fail(uField + ".tokenFile", "not a string")
            }
            cfg.clientCertificatePEM = try pem(user, uField, dataKey: "client-certificate-data", fileKey: "client-certificate")
            cfg.clientKeyPEM = try pem(user, uField, dataKey: "client-key-data", fileKey: "client-key", key: true)
            if (cfg.clientCertificatePEM == nil) != (cfg.clientKeyPEM == nil) {
                throw fail(uField + (cfg.clientKeyPEM == nil ? ".client-key-data" : ".client-certificate-data"),
                           "a client certificate needs both a certificate and a key")
            }
            if let cert = cfg.clientCertificatePEM.flatMap(PEM.certificates), let key = cfg.clientKeyPEM.flatMap(PEM.privateKey),
               !PEM.belongTogether(cert, key) {
                throw fail(uField + (user["client-key-data"] != nil ? ".client-key-data" : ".client-key"),
                           "not the key of the client certificate")
            }
            // As kubectl: a token or a certificate in the kubeconfig is used as it is; the plugin only without them.
            if let exec = user["exec"], !(exec is NSNull), cfg.token == nil, cfg.tokenFile == nil, cfg.clientCertificatePEM == nil {
                cfg.exec = try ExecCredentialPlugin.parse(exec, field: uField + ".exec", baseDirectory: baseDir, fail: fail)
            }
            // Ways to authenticate Tapio does not have: a user with nothing else would send every request anonymously,
            // and the server's 401s or 403s would not say why. Beside a credential Tapio uses they are left alone
            // (old kubeconfigs carry a password next to a client certificate), as kubectl then uses that credential too.
            // (An empty token is never sent.)
            if (cfg.token ?? "").isEmpty && cfg.tokenFile == nil && cfg.clientCertificatePEM == nil && cfg.exec == nil {
                if let provider = user["auth-provider"], !(provider is NSNull) {
                    let name = ((provider as? [String: Any])?["name"] as? String).map { " (\($0.prefix(64)))" } ?? ""
                    throw fail(uField + ".auth-provider", "auth providers\(name) are not supported: use an exec credential "
                               + "plugin instead, e.g. kubelogin for OIDC or gke-gcloud-auth-plugin for GKE")
                }
                for key in ["username", "password"] {
                    guard let value = user[key], !(value is NSNull), (value as? String)?.isEmpty != true else { continue }
                    throw fail(uField + "." + key, "basic authentication (username and password) is not supported: Kubernetes "
                               + "removed it in v1.19; use a token, a client certificate or an exec credential plugin")
                }
            }
        }
        return cfg
    }

    /// The in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's token (re-read when
    /// the kubelet rotates it), CA and namespace under `serviceAccountDirectory`.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount")
        throws -> KubeConfig {
        let source = "in-cluster"
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw KubeConfigError(file: source, field: "KUBERNETES_SERVICE_HOST", message: "not set")
        }
        guard let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw KubeConfigError(file: source, field: "KUBERNETES_SERVICE_PORT", message: "not set")
        }
        guard port.utf8.count <= 5, port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let portNumber = Int(port),
              (1...65535).contains(portNumber) else {
            throw KubeConfigError(file: source, field: "KUBERNETES_SERVICE_PORT", message: "not a port (1–65535): \(port.prefix(32))")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        guard ServerURL.problem("https://\(hostPart):\(port)") == nil, let url = URL(string: "https://\(hostPart):\(port)") else {
            throw KubeConfigError(file: source, field: "KUBERNETES_SERVICE_HOST", message: "not a host: \(host.prefix(256))")
        }
        let tokenPath = serviceAccountDirectory + "/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw KubeConfigError(file: tokenPath, field: "", message: "cannot read service account token")
        }
        let caPath = serviceAccountDirectory + "/ca.crt"
        let ca: Data
        do { ca = try BoundedFile.read(caPath, limit: BoundedFile.credentialLimit) } catch {
            throw KubeConfigError(file: caPath, field: "", message: "cannot read service account CA: \(error)")
        }
        guard PEM.certificates(Array(ca)) != nil else {
            throw KubeConfigError(file: caPath, field: "", message: "not a PEM certificate")
        }
        let ns = (try? BoundedFile.read(serviceAccountDirectory + "/namespace", limit: 4096))
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        return KubeConfig(server: url, certificateAuthorityPEM: Array(ca), tokenFile: tokenPath,
                          namespace: ns.flatMap { $0.isEmpty ? nil : $0 } ?? "default", source: source)
    }

    /// `$KUBECONFIG` (its files merged, as kubectl merges them), else `~/.kube/config`, else in-cluster.
    public static func fromEnvironment(context: String? = nil,
                                       environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KubeConfig {
        if let k = environment["KUBECONFIG"] {
            let paths = k.split(separator: ":").map(String.init).filter { !$0.isEmpty }
            if paths.count == 1 { return try load(path: paths[0], context: context) }
            if !paths.isEmpty { return try load(paths: paths, context: context) }
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let path = home + "/.kube/config"
        if FileManager.default.fileExists(atPath: path) { return try load(path: path, context: context) }
        return try inCluster(environment: environment)
    }
}
