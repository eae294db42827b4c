import Logging

/// Gives back, once the process has started, the pages of its code that only start-up ran (``ProcessFilePages``).
/// The agent and the operator both do (`--release-startup-pages`).
///
/// Measured with `agent.at-rest-100-pods`: of the 43 MiB an idle agent kept resident, 17 were touched over a minute
/// of rest (the kernel's accessed bits); the rest were start-up's code and what readahead and fault-around mapped
/// beside it. The operator's replicas on a real node: 36 and 34 MiB → 26 and 23 MiB ten minutes after.
/// Released once, not periodically: the pages rest uses come straight back (read one by one, being advised
/// random-access) and a second release would only read them again. The cost is that code first run later —
/// the first OOM kill's path, a policy change — waits for its pages to be read from disk, 4 KiB at a time.
public struct StartupPageRelease: Sendable {
    /// How long after start-up (``isStarted``) the pages are released: the first cgroup walks and policy
    /// application are start-up's too.
    let delay: Duration
    let isStarted: @Sendable () -> Bool
    let logger: Logger
    /// What releasing is; the tests' stands in for the real one, which acts on their whole process.
    var release: @Sendable () -> ProcessFilePages.Released = { ProcessFilePages.release(randomAccess: true) }

    public init(delay: Duration, isStarted: @escaping @Sendable () -> Bool, logger: Logger) {
        self.delay = delay
        self.isStarted = isStarted
        self.logger = logger
    }

    /// With a stand-in for the release (tests).
    public init(delay: Duration, isStarted: @escaping @Sendable () -> Bool, logger: Logger,
                release: @escaping @Sendable () -> ProcessFilePages.Released) {
        self.init(delay: delay, isStarted: isStarted, logger: logger)
        self.release = release
    }

    /// Returns after the release, or when cancelled first.
    public func run() async {
        // Started, and still so after the delay: an operator replica that became the leader meanwhile is starting
        // again (listing everything) and is waited for.
        repeat {
            while !isStarted() {
                do { try await Task.sleep(for: .seconds(1)) } catch { return }
            }
            do { try await Task.sleep(for: delay) } catch { return }
        } while !isStarted()
        let before = Resident.current()
        let released = release()
        let after = Resident.current()
        if released.errno != 0 {
            logger.warning("releasing start-up pages: a system call failed (errno \(released.errno): reading /proc/self/smaps, madvise or posix_fadvise); \(released.mappings) mappings released")
        }
        if let before, let after {
            logger.info("released start-up pages of \(released.mappings) mappings: resident files \(mebibytes(before.file)) → \(mebibytes(after.file)) MiB, in all \(mebibytes(before.total)) → \(mebibytes(after.total)) MiB")
        }
    }

    private func mebibytes(_ bytes: UInt64) -> String {
        let tenths = ((bytes >> 10) * 10 + 512) / 1024
        return "\(tenths / 10).\(tenths % 10)"
    }
}
