import Dispatch

/// A task executor with one thread of its own, for tests that compute for seconds without awaiting (a corpus replayed,
/// thousands of noise draws). Swift Testing runs tests on the cooperative pool, which is as wide as the machine: in a
/// parallel run two such tests on a 2-core machine hold every thread of it, and the tests waiting on a socket or a
/// timer meanwhile find no thread to resume on and time out. Run here (``CPUBound``, a suite's `.cpuBound` trait), they
/// take turns on this thread and leave the pool to the rest.
public final class CPUBoundExecutor: TaskExecutor {
    public static let shared = CPUBoundExecutor()
    private let queue = DispatchQueue(label: "tapio.tests.cpu-bound")

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
