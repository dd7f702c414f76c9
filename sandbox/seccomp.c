/* The step's seccomp filter: default allow, a deny list of what a build step never needs
 * and a sandbox escape or secret theft would (DESIGN §7.6). Loaded last before execve. */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "sandbox-private.h"

/* Syscall numbers past the newest this build's headers know (x86_64: 450) are refused with
 * ENOSYS, so a newer kernel's new interface (the next io_uring) is not allowed by default;
 * programs treat ENOSYS as "old kernel" and fall back. */
#define UNKNOWN_SYSCALLS_FROM 451

struct rule {
        const char *name;
        int errno_;
};

static const struct rule debug_rules[] = {
        { "ptrace", EPERM }, { "process_vm_readv", EPERM }, { "process_vm_writev", EPERM },
        { "pidfd_getfd", EPERM },
};

static const struct rule deny_rules[] = {
        { "bpf", EPERM }, { "perf_event_open", EPERM }, { "userfaultfd", EPERM },
        { "keyctl", EPERM }, { "add_key", EPERM }, { "request_key", EPERM },
        { "unshare", EPERM }, { "setns", EPERM }, { "mount", EPERM }, { "umount2", EPERM },
        { "pivot_root", EPERM }, { "chroot", EPERM },
        { "kexec_load", EPERM }, { "kexec_file_load", EPERM }, { "init_module", EPERM },
        { "finit_module", EPERM }, { "delete_module", EPERM }, { "reboot", EPERM },
        { "swapon", EPERM }, { "swapoff", EPERM },
        { "settimeofday", EPERM }, { "clock_settime", EPERM }, { "clock_adjtime", EPERM },
        { "adjtimex", EPERM }, { "stime", EPERM },
        { "iopl", EPERM }, { "ioperm", EPERM }, { "open_by_handle_at", EPERM },
        { "name_to_handle_at", EPERM }, { "lookup_dcookie", EPERM }, { "acct", EPERM },
        { "quotactl", EPERM }, { "nfsservctl", EPERM }, { "vhangup", EPERM },
        /* ENOSYS: callers fall back (glibc's clone3 to clone, where the flags are checked) */
        { "clone3", ENOSYS },
        { "io_uring_setup", ENOSYS }, { "io_uring_enter", ENOSYS }, { "io_uring_register", ENOSYS },
        { "open_tree", ENOSYS }, { "move_mount", ENOSYS }, { "fsopen", ENOSYS }, { "fsconfig", ENOSYS },
        { "fsmount", ENOSYS }, { "fspick", ENOSYS }, { "mount_setattr", ENOSYS },
};

static const uint64_t namespace_flags[] = {
        CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
        CLONE_NEWCGROUP, CLONE_NEWTIME,
};

static int add_rules(scmp_filter_ctx ctx, const struct rule *rules, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int nr = seccomp_syscall_resolve_name(rules[i].name);
                if (nr == __NR_SCMP_ERROR)
                        continue;   /* not on this architecture */
                int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t) rules[i].errno_), nr, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* libseccomp has no rule for a range of numbers (one rule per number costs milliseconds to
 * compile on every run), so the range is a second, hand-written filter of a few
 * instructions. Stacked filters all run; the most restrictive verdict wins. */
static int install_unknown_filter(void) {
#if defined(__x86_64__)
        struct sock_filter code[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),   /* the other filter kills it */
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                /* x32 numbers carry bit 30: they are the other filter's business too */
                BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 2, 0),
                BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, UNKNOWN_SYSCALLS_FROM, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(code), .filter = code };
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return -errno;
#endif
        return 0;
}

/* Compiles the deny list to a BPF program (in ordinary memory: it holds no secret). Done
 * ahead of time, off the step's critical path; seccomp_load_program loads it. */
int seccomp_build(bool allow_ptrace, struct seccomp_program *ret) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        int r, fd = -1;
        /* a syscall of another architecture (x32, i386 via int 0x80) is killed, not allowed */
        if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
                goto out;
        if ((r = add_rules(ctx, deny_rules, ELEMENTSOF(deny_rules))) < 0)
                goto out;
        if (!allow_ptrace && (r = add_rules(ctx, debug_rules, ELEMENTSOF(debug_rules))) < 0)
                goto out;
        for (size_t i = 0; i < ELEMENTSOF(namespace_flags); i++) {
                uint64_t f = namespace_flags[i];
                if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                          SCMP_A0(SCMP_CMP_MASKED_EQ, f, f))) < 0)
                        goto out;
        }
        /* typing into (TIOCSTI) or poking (TIOCLINUX) a terminal the step might still reach */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI))) < 0 ||
            (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX))) < 0)
                goto out;
        /* libseccomp 2.5 exports to an fd only */
        fd = memfd_create("seccomp", MFD_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        if ((r = seccomp_export_bpf(ctx, fd)) < 0)
                goto out;
        off_t size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size % (off_t) sizeof(struct sock_filter) || size > 65536 * (off_t) sizeof(struct sock_filter)) {
                r = -EINVAL;
                goto out;
        }
        ret->filter = malloc((size_t) size);
        if (!ret->filter) {
                r = -ENOMEM;
                goto out;
        }
        if (pread(fd, ret->filter, (size_t) size, 0) != size) {
                r = -EIO;
                free(ret->filter);
                ret->filter = NULL;
                goto out;
        }
        ret->len = (unsigned short) (size / (off_t) sizeof(struct sock_filter));
        r = 0;
out:
        safe_close(fd);
        seccomp_release(ctx);
        return r;
}

int seccomp_load_program(const struct seccomp_program *p) {
        struct sock_fprog prog = { .len = p->len, .filter = p->filter };
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return -errno;
        return install_unknown_filter();
}

void seccomp_program_done(struct seccomp_program *p) {
        free(p->filter);
        *p = (struct seccomp_program) {};
}

const char *seccomp_syscall_name(int nr) {
        static char buf[32];
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (!name) {
                snprintf(buf, sizeof buf, "syscall %d", nr);
                return buf;
        }
        snprintf(buf, sizeof buf, "%s", name);
        free(name);
        return buf;
}
