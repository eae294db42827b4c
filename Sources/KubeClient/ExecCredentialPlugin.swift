import Foundation

/// A kubeconfig user's `exec` section: a command that prints a credential (client.authentication.k8s.io
/// `ExecCredential`), as cloud clusters use — `aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`. Tapio
/// runs it as kubectl does and sends the token, or the client certificate, it prints until that expires or the server
/// refuses it (``ExecCredentialSource``).
public struct ExecCredentialPlugin: Sendable, Equatable {
    /// The `ExecCredential` versions Tapio speaks (`v1alpha1` was removed from Kubernetes in 1.24).
    public static let apiVersions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]

    public enum InteractiveMode: String, Sendable, Equatable, CaseIterable {
        /// The plugin never gets the terminal.
        case never = "Never"
        /// The plugin gets the terminal when there is one (standard input is a terminal).
        case ifAvailable = "IfAvailable"
        /// The plugin needs the terminal: without one, the credential cannot be had.
        case always = "Always"
    }

    /// The command: a name looked up in `PATH`, an absolute path, or a path with a `/` relative to the kubeconfig's
    /// directory (already resolved here).
    public var command: String
    public var args: [String]
    /// Added to (or replacing in) Tapio's own environment.
    public var env: [(name: String, value: String)]
    public var apiVersion: String
    public var interactiveMode: InteractiveMode
    /// Whether `KUBERNETES_EXEC_INFO` carries the cluster (server, CA) for the plugin.
    public var provideClusterInfo: Bool
    /// Printed when the command is not found.
    public var installHint: String?
    /// The kubeconfig field this came from, for messages (`users[name=alice].user.exec`).
    public var field: String
    /// The longest a run may take before it is killed (not a kubeconfig field: a plugin that hangs would otherwise
    /// hold every request behind it). A minute; a run given the terminal, where a person may be typing, gets at
    /// least ten.
    public var timeout: Duration
    /// Whether the plugin may have the terminal (standard input when its mode allows, and standard error): nil
    /// decides by whether they are terminals; false keeps them from it (not a kubeconfig field: for tests).
    public var terminal: Bool?

    public init(command: String, args: [String] = [], env: [(name: String, value: String)] = [],
                apiVersion: String = "client.authentication.k8s.io/v1", interactiveMode: InteractiveMode = .never,
                provideClusterInfo: Bool = false, installHint: String? = nil, field: String = "exec",
                timeout: Duration = .seconds(60)) {
        self.command = command
        self.args = args
        self.env = env
        self.apiVersion = apiVersion
        self.interactiveMode = interactiveMode
        self.provideClusterInfo = provideClusterInfo
        self.installHint = installHint
        self.field = field
        self.timeout = timeout
    }

    public static func == (a: ExecCredentialPlugin, b: ExecCredentialPlugin) -> Bool {
        a.command == b.command && a.args == b.args && a.env.map(\.name) == b.env.map(\.name)
            && a.env.map(\.value) == b.env.map(\.value) && a.apiVersion == b.apiVersion
            && a.interactiveMode == b.interactiveMode && a.provideClusterInfo == b.provideClusterInfo
            && a.installHint == b.installHint && a.field == b.field && a.timeout == b.timeout && a.terminal == b.terminal
    }

    /// Reads `exec` of a kubeconfig user, checking each field as kubectl does; errors name the field.
    static func parse(_ section: Any, field: String, baseDirectory: URL,
                      fail: (String, String) -> KubeConfigError) throws -> ExecCredentialPlugin {
        guard let s = section as? [String: Any] else { throw fail(field, "not a mapping") }
        func string(_ key: String) throws -> String? {
            switch s[key] {
            case nil, is NSNull: return nil
            case let v as String: return v
            default: throw fail("\(field).\(key)", "not a string")
            }
        }
        guard let command = try string("command"), !command.isEmpty else { throw fail("\(field).command", "missing") }
        guard let apiVersion = try string("apiVersion"), !apiVersion.isEmpty else {
            throw fail("\(field).apiVersion", "missing; one of \(apiVersions.joined(separator: ", "))")
        }
        guard apiVersions.contains(apiVersion) else {
            throw fail("\(field).apiVersion", "\"\(apiVersion.prefix(80))\" is not supported; one of \(apiVersions.joined(separator: ", "))")
        }
        var args: [String] = []
        switch s["args"] {
        case nil, is NSNull: break
        case let list as [Any]:
            for (i, a) in list.enumerated() {
                guard let text = a as? String else { throw fail("\(field).args[\(i)]", "not a string") }
                args.append(text)
            }
        default: throw fail("\(field).args", "not a list")
        }
        var env: [(name: String, value: String)] = []
        switch s["env"] {
        case nil, is NSNull: break
        case let list as [Any]:
            for (i, e) in list.enumerated() {
                guard let entry = e as? [String: Any] else { throw fail("\(field).env[\(i)]", "not a mapping") }
                guard let name = entry["name"] as? String, !name.isEmpty, !name.contains("=") else {
                    throw fail("\(field).env[\(i)].name", "missing, or not a variable name")
                }
                guard let value = entry["value"] as? String else { throw fail("\(field).env[\(i)].value", "missing or not a string") }
                env.append((name, value))
            }
        default: throw fail("\(field).env", "not a list")
        }
        let mode: InteractiveMode
        if let m = try string("interactiveMode"), !m.isEmpty {
            guard let parsed = InteractiveMode(rawValue: m) else {
                throw fail("\(field).interactiveMode", "\"\(m.prefix(40))\" is not one of Never, IfAvailable, Always")
            }
            mode = parsed
        } else if apiVersion.hasSuffix("/v1") {
            // client-go requires it from v1 on; v1beta1 defaulted to IfAvailable.
            throw fail("\(field).interactiveMode", "missing; one of Never, IfAvailable, Always (required by \(apiVersion))")
        } else {
            mode = .ifAvailable
        }
        let provide: Bool
        switch s["provideClusterInfo"] {
        case nil, is NSNull: provide = false
        case let b as Bool: provide = b
        default: throw fail("\(field).provideClusterInfo", "not a boolean")
        }
        // As client-go: a command with a path separator is relative to the kubeconfig, a bare name is found in PATH.
        let resolved = command.contains("/") && !command.hasPrefix("/")
            ? baseDirectory.appendingPathComponent(command).standardizedFileURL.path : command
        return ExecCredentialPlugin(command: resolved, args: args, env: env, apiVersion: apiVersion, interactiveMode: mode,
                                    provideClusterInfo: provide, installHint: try string("installHint"), field: field)
    }
}
