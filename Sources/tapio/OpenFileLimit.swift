import Glibc
import Logging

/// The soft limit on open files, raised to the hard one.
///
/// The agent keeps two files open per limited cgroup (up to 20,000 cgroups) and one perf event per CPU, and
/// containers often start with a soft limit of 1,024: past it, cgroups would be read only once per walk and whole
/// subtrees skipped. Raising the soft limit up to the hard one needs no privilege (setrlimit(2)).
enum OpenFileLimit {
    static func raise(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let before = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.debug("open files: soft limit raised from \(before) to \(limit.rlim_max)")
        } else {
            logger.warning("open files: the soft limit stays at \(before) (setrlimit: \(String(cString: strerror(errno)))); on a dense node some cgroups may be read less often")
        }
    }
}
