/* The supervisor hardens itself before it fetches any secret: it cannot be dumped or
 * ptrace-attached by its own uid, drops no core, holds no inherited fd, and cannot gain
 * privileges through exec. */
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "sandbox.h"

int supervisor_harden(void) {
        /* not dumpable: no core file, no ptrace attach or /proc/PID/mem by the same uid */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        /* belt and braces for the case where dumpable is turned back on by a setuid exec */
        struct rlimit no_core = { 0, 0 };
        if (setrlimit(RLIMIT_CORE, &no_core) < 0)
                return -errno;
        /* fds a CI runner or shell leaked to us must not reach the step (or hold our pipes) */
        if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0 && errno != ENOSYS)
                return -errno;
        /* an inherited SIG_IGN for SIGCHLD would make the kernel reap our child for us */
        if (signal(SIGCHLD, SIG_DFL) == SIG_ERR)
                return -errno;
        /* we report EPIPE on our own output instead of dying silently mid-stream */
        if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
                return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}
