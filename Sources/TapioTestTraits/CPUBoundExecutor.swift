import Dispatch

/// A task executor on threads of its own, for tests that compute for seconds without awaiting (a corpus replayed,
/// thousands of noise draws). Swift Testing runs tests on the cooperative pool, which is as wide as the machine: in a
/// parallel run two such tests on a 2-core machine hold every thread of it, and the tests waiting on a socket or a
/// timer meanwhile find no thread to resume on and time out. Run here (``CPUBound``, a suite's `.cpuBound` trait),
/// they share the cores with the pool instead of holding it. They run side by side on Dispatch's global queue, whose
/// threads are not the pool's and are at most one a core, so that one does not wait for all the others (its time
/// limit runs while it waits). Not on a queue of its own: a queue made with a label starts a thread for every job
/// waiting, and a dozen computing tests left the pool's two threads a sixth of the machine — requests to the
/// emulator then passed their 30-s deadline.
public final class CPUBoundExecutor: TaskExecutor {
    public static let shared = CPUBoundExecutor()
    private let queue = DispatchQueue.global()

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
