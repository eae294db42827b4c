import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What every child Tapio spawns needs so that it holds nothing of Tapio's: an exec credential plugin here, the
/// test support's processes too.
public enum ChildProcessSetup {
    /// Adds "close every descriptor from 3 up" to `actions`: API connections (SwiftNIO opens and accepts them without
    /// close-on-exec), listening sockets, pipes of other children. A child living on would otherwise keep a peer's
    /// connection open after Tapio closed it. glibc ≥ 2.34 has the action; Swift's Glibc module does not declare it,
    /// hence the lookup (without it, nothing is added).
    public static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
        }
    }

    /// A pipe whose ends close on exec, so no other child spawned meanwhile holds them (`pipe2` is not in Swift's
    /// Glibc module; the window before `fcntl` is only another thread's spawn in between). False: errno says why.
    public static func closeOnExecPipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return true
    }
}
