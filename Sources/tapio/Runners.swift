import ArgumentParser

// Temporary: the runners are wired as their components land (issues 7 and 8).
struct AgentRunner { let command: AgentCommand; func run() async throws { throw ValidationError("agent: not wired yet") } }
struct OperatorRunner { let command: OperatorCommand; func run() async throws { throw ValidationError("operator: not wired yet") } }
