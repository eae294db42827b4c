@testable import TapioBPF
import Testing

/// The CPU list the memory sampler opens one perf event per CPU from (`/sys/devices/system/cpu/online`).
@Suite(.timeLimit(.minutes(1))) struct CPUListTests {
    @Test(arguments: [
        ("0-3,5\n", [0, 1, 2, 3, 5]), ("0", [0]), ("0-1", [0, 1]), ("", []),
        // Found by the trap audit of issue 16: a reversed or enormous range trapped or allocated without bound.
        ("5-3", []), ("0-999999999999", []), ("99999999999999999999", []), ("0-2,x,7", [0, 1, 2, 7]),
    ])
    func kernelCPUListsParseAndHostileOnesAreSkipped(text: String, cpus: [Int]) {
        #expect(BPFProbes.parseCPUList(text) == cpus)
    }
}
