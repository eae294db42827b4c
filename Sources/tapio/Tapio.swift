import ArgumentParser

/// The `tapio` command: one binary for the node agent, the operator, the live terminal view and replays.
@main
struct Tapio: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tapio",
        abstract: "Correlates what the Linux kernel sees with what Kubernetes says, per pod, and predicts what breaks next.",
        discussion: """
            Start with `tapio sniff` on any Linux machine: it watches the local processes and cgroups, and the \
            cluster too when a kubeconfig or in-cluster configuration is usable.
            """,
        version: TapioVersion.string,
        subcommands: [SniffCommand.self, AgentCommand.self, OperatorCommand.self, ReplayCommand.self, VersionCommand.self]
    )
}
