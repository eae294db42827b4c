import Foundation

// tapio-bench: runs named benchmarks (`tapio-bench NAME…`, none = all; `--list` names them) and prints one JSON
// object per line on stdout — {"benchmark": …, "metric": …, "value": …, "unit": …} — and a table on stderr.
// Benchmarks are never part of `swift test`. Each area registers its benchmarks in its own file
// (Kube*.swift, BPF*.swift, Node*.swift, Correlation*.swift, Agent*.swift); build with `-c release` for real numbers.

let registry: [Benchmark] = kubeBenchmarks + bpfBenchmarks + nodeBenchmarks + correlationBenchmarks + climbCurveBenchmarks + oomWarningBenchmarks
    + agentBenchmarks + soakBenchmarks + policyBenchmarks + scaleBenchmarks
    + operatorBenchmarks

await BenchmarkRunner.main(registry: registry, arguments: Array(CommandLine.arguments.dropFirst()))
