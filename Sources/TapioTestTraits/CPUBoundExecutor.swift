import Foundation

/// A task executor on threads of its own, for tests that compute for seconds without awaiting (a corpus replayed,
/// thousands of noise draws).
///
/// Why threads of its own: on Linux, Swift's global executor *is* Dispatch's default global queue (a task and a
/// `DispatchQueue.global()` block run on the same `com.apple.root.default-qos` threads), and that pool is about as
/// wide as the machine — two threads here, a few more only while some are blocked. In a parallel run the computing
/// suites held every one of them for ~30 s at the start, and tests waiting on a timer found no thread to resume on: a
/// controller's 20-ms requeue not run in 20 s, a leader that could not renew its 1-s lease. (An earlier version of
/// this executor ran on `DispatchQueue.global()` — the same pool, so it changed nothing.) On these threads the
/// computing tests share the cores with the pool through the kernel's scheduler instead of holding it.
///
/// One thread a core, served first come first served: the computing suites add up to about a minute of CPU, so a
/// test waits at most that long for its turn (its time limit runs meanwhile; theirs are 2 minutes or more).
public final class CPUBoundExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = CPUBoundExecutor(threads: max(1, ProcessInfo.processInfo.activeProcessorCount))

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0

    init(threads: Int) {
        for i in 0..<threads {
            let thread = Thread { [unowned self] in self.serve() }
            thread.name = "tapio-cpu-\(i)"
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            // Compact once the served prefix is half the array, so the queue does not grow without end.
            if head * 2 >= jobs.count { jobs.removeFirst(head); head = 0 }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
