/* syscall_probe: calls each syscall of the sandbox's deny list (DESIGN §7.6) once, directly
 * through syscall(2), and prints one line "name errno" per call (errno 0: it succeeded).
 *
 * The arguments are chosen so that, were the call allowed, it would fail harmlessly (a bad
 * magic, an invalid command or flag, a path that does not exist, fd -1) or do nothing (unshare
 * with no flags, a read-only adjtimex): the probe must be safe to run outside any sandbox, as
 * root. Where possible the kernel's own answer for those arguments differs from the errno the
 * filter returns, so a run without the filter (the control) tells the two apart.
 *
 *   syscall_probe            every denied call
 *   syscall_probe ptrace     ptrace and process_vm_readv on the probe's own child
 *                            (allowed with --allow-ptrace, EPERM otherwise)
 *
 * Built by the integration tests with `cc -O1 -o probe syscall_probe.c`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define NOPATH "/nonexistent-secrets-run-probe"

static void report(const char *name, long r) {
        printf("%s %d\n", name, r < 0 ? errno : 0);
        fflush(stdout);
}

/* Raw clone (fork-like: no CLONE_VM, the child gets a copy of our stack). A child that
 * exists at all leaves at once. Prints what the parent saw. */
static void probe_clone(const char *name, unsigned long flags) {
        errno = 0;
        long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid == 0)
                syscall(SYS_exit_group, 0);
        int e = pid < 0 ? errno : 0;
        if (pid > 0)
                (void) waitpid((pid_t) pid, NULL, 0);
        printf("%s %d\n", name, e);
        fflush(stdout);
}

static int all_denied(void) {
        struct timespec ts = { 0, 0 };
        struct timex tx;
        int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd < 0) {
                perror("/dev/null");
                return 1;
        }

        /* debugging another process: EPERM unless --allow-ptrace. Allowed, each of these
         * fails with another errno: pid 1 is not our tracee (ESRCH); zero iovecs copy
         * nothing (0); pidfd -1 (EBADF). */
        errno = 0;
        report("ptrace", syscall(SYS_ptrace, PTRACE_PEEKDATA, 1, NULL, NULL));
        report("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0));
        report("process_vm_writev", syscall(SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 0));
#ifdef SYS_pidfd_getfd
        report("pidfd_getfd", syscall(SYS_pidfd_getfd, -1, 0, 0));
#endif

        /* EPERM */
        report("bpf", syscall(SYS_bpf, -1, NULL, 0));                          /* EINVAL */
        report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));   /* EFAULT */
        /* user-mode-only (needs no privilege) plus an undefined flag: EINVAL */
        report("userfaultfd", syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */ | 0x10));
        report("keyctl", syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0));              /* EOPNOTSUPP */
        report("add_key", syscall(SYS_add_key, NULL, NULL, NULL, 0, 0));        /* EFAULT */
        report("request_key", syscall(SYS_request_key, NULL, NULL, NULL, 0));   /* EFAULT */
        report("unshare", syscall(SYS_unshare, 0));                            /* does nothing: 0 */
        report("setns", syscall(SYS_setns, -1, 0));                             /* EBADF */
        report("mount", syscall(SYS_mount, NOPATH "-src", NOPATH, "tmpfs", 0, NULL));  /* ENOENT */
        report("umount2", syscall(SYS_umount2, NOPATH, 0));                     /* ENOENT */
        report("pivot_root", syscall(SYS_pivot_root, NOPATH "-new", NOPATH "-old"));
        report("chroot", syscall(SYS_chroot, NOPATH));                          /* ENOENT */
        /* undefined flags: EINVAL (the privilege check may come first: EPERM) */
        report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0x7ff00000UL));
#ifdef SYS_kexec_file_load
        report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0x7ff00000UL));
#endif
        report("init_module", syscall(SYS_init_module, NULL, 0, NULL));
        report("finit_module", syscall(SYS_finit_module, -1, "", 0));           /* EBADF */
        report("delete_module", syscall(SYS_delete_module, "secrets_run_no_such_module", O_NONBLOCK));
        report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));                   /* bad magic: EINVAL */
        report("swapon", syscall(SYS_swapon, NOPATH, 0));
        report("swapoff", syscall(SYS_swapoff, NOPATH));
        report("settimeofday", syscall(SYS_settimeofday, NULL, NULL));         /* sets nothing */
        report("clock_settime", syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts));   /* EINVAL */
        memset(&tx, 0, sizeof tx);                                              /* modes 0: reads */
        report("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_MONOTONIC, &tx));
        memset(&tx, 0, sizeof tx);
        report("adjtimex", syscall(SYS_adjtimex, &tx));                          /* read-only */
#ifdef SYS_stime
        report("stime", syscall(SYS_stime, NULL));
#endif
#ifdef SYS_iopl
        report("iopl", syscall(SYS_iopl, 4));                                   /* level > 3: EINVAL */
#endif
#ifdef SYS_ioperm
        report("ioperm", syscall(SYS_ioperm, 0x10000UL, 1UL, 0));                /* past the bitmap: EINVAL */
#endif
        report("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
        report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, NOPATH, NULL, NULL, 0));
#ifdef SYS_lookup_dcookie
        report("lookup_dcookie", syscall(SYS_lookup_dcookie, 0ULL, NULL, 0));
#endif
        report("acct", syscall(SYS_acct, NOPATH));                              /* never NULL: that turns it off */
        report("quotactl", syscall(SYS_quotactl, 0x7fff00, NOPATH, 0, NULL));    /* never Q_SYNC */
#ifdef SYS_nfsservctl
        report("nfsservctl", syscall(SYS_nfsservctl, 0, NULL, NULL));
#endif
        /* only without a controlling terminal, where it does nothing */
        int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (tty < 0)
                report("vhangup", syscall(SYS_vhangup));
        else
                close(tty);

        /* clone: namespace flags are EPERM, a plain fork is not */
        probe_clone("clone", 0);
        probe_clone("clone_newuser", CLONE_NEWUSER);
        probe_clone("clone_newns", CLONE_NEWNS);
        probe_clone("clone_newpid", CLONE_NEWPID);
        probe_clone("clone_newnet", CLONE_NEWNET);
        probe_clone("clone_newipc", CLONE_NEWIPC);
        probe_clone("clone_newuts", CLONE_NEWUTS);
        probe_clone("clone_newcgroup", CLONE_NEWCGROUP);

        /* terminal injection, on /dev/null (never a real terminal): ENOTTY if allowed */
        report("ioctl_tiocsti", syscall(SYS_ioctl, nullfd, TIOCSTI, "x"));
        char linux_arg = 0;   /* TIOCLINUX subcommand 0: undefined */
        report("ioctl_tioclinux", syscall(SYS_ioctl, nullfd, TIOCLINUX, &linux_arg));
        report("ioctl_fionread", syscall(SYS_ioctl, nullfd, FIONREAD, &(int){ 0 }));  /* not denied */

        /* ENOSYS */
        report("clone3", syscall(SYS_clone3, NULL, 0));                         /* size 0: EINVAL */
        report("io_uring_setup", syscall(SYS_io_uring_setup, 0, NULL));
        report("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
        report("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
        report("open_tree", syscall(SYS_open_tree, AT_FDCWD, NOPATH, 0));       /* ENOENT */
        report("move_mount", syscall(SYS_move_mount, -1, NOPATH, -1, NOPATH, 0));
        report("fsopen", syscall(SYS_fsopen, NULL, 0));
        report("fsconfig", syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0));
        report("fsmount", syscall(SYS_fsmount, -1, 0, 0));
        report("fspick", syscall(SYS_fspick, -1, NOPATH, 0));
        report("mount_setattr", syscall(SYS_mount_setattr, -1, NULL, 0, NULL, 0));
        report("syscall_451", syscall(451, -1L, 0L, 0L, 0L, 0L, 0L));
        report("syscall_460", syscall(460, -1L, 0L, 0L, 0L, 0L, 0L));
        report("syscall_1000", syscall(1000, 0L, 0L, 0L, 0L, 0L, 0L));
        report("syscall_1023", syscall(1023, 0L, 0L, 0L, 0L, 0L, 0L));
        report("syscall_1024", syscall(1024, 0L, 0L, 0L, 0L, 0L, 0L));   /* past the range: ENOSYS by the kernel */
        close(nullfd);
        return 0;
}

/* A word the child has too (a fork copies it): what the tracer reads back. */
static long marker = 0x5ec7e75;

/* Debugging our own child: attach, read a word, detach; then read it without ptrace. */
static int own_child(void) {
        int sync[2];
        if (pipe(sync) < 0)
                return 1;
        pid_t child = fork();
        if (child < 0)
                return 1;
        if (child == 0) {
                close(sync[0]);
                (void) write(sync[1], "", 1);
                for (;;)
                        pause();
        }
        close(sync[1]);
        char c;
        (void) read(sync[0], &c, 1);
        int e = 0;
        if (syscall(SYS_ptrace, PTRACE_ATTACH, child, NULL, NULL) < 0)
                e = errno;
        else {
                int st;
                (void) waitpid(child, &st, 0);
                errno = 0;
                long word = 0;
                /* the raw syscall stores the word at its 4th argument */
                if (syscall(SYS_ptrace, PTRACE_PEEKDATA, child, &marker, &word) < 0)
                        e = errno;
                else if (word != 0x5ec7e75)
                        e = EIO;
                (void) syscall(SYS_ptrace, PTRACE_DETACH, child, NULL, NULL);
        }
        printf("ptrace_child %d\n", e);

        long value = 0;
        struct iovec local = { &value, sizeof value }, remote = { &marker, sizeof marker };
        long n = syscall(SYS_process_vm_readv, child, &local, 1UL, &remote, 1UL, 0UL);
        printf("process_vm_readv_child %d\n", n < 0 ? errno : (value == 0x5ec7e75 ? 0 : EIO));
        fflush(stdout);
        kill(child, SIGKILL);
        (void) waitpid(child, NULL, 0);
        return 0;
}

int main(int argc, char **argv) {
        if (argc > 1 && strcmp(argv[1], "ptrace") == 0)
                return own_child();
        if (argc > 1) {
                fprintf(stderr, "usage: %s [ptrace]\n", argv[0]);
                return 2;
        }
        return all_denied();
}
