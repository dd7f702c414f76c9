/* Emulates hosts this machine is not, for the sandbox's degradation tests: a seccomp filter
 * (inherited by secrets-run and every process it starts) makes the kernel answer as such a
 * host would, then COMMAND runs under it.
 *
 *   hostemu ubuntu-apparmor COMMAND...   namespaces are created, then mount, umount2 and
 *                                        pivot_root fail with EACCES and bringing an
 *                                        interface up (SIOCSIFFLAGS) with EPERM (Ubuntu 23.10+
 *                                        with kernel.apparmor_restrict_unprivileged_userns=1)
 *   hostemu container COMMAND...         clone/unshare with namespace flags fail with EPERM
 *                                        (a container runtime's default seccomp profile)
 *   hostemu userns-exhausted COMMAND...  a new user namespace fails with ENOSPC
 *                                        (user.max_user_namespaces reached)
 *   hostemu capset-refused COMMAND...    capset fails with EPERM (a security module that
 *                                        refuses capability changes)
 *   hostemu no-user-notif COMMAND...     a seccomp filter asking for a listener fails with
 *                                        EINVAL (a kernel older than 5.0)
 *
 * clone3 answers ENOSYS in every mode, so callers fall back to clone, whose flags a classic
 * filter can see. x86-64 only, like the tests that use it. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP)

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LOAD_ARG0 BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]))
#define ERRNO(e) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (e))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: hostemu ubuntu-apparmor|container|userns-exhausted|capset-refused|no-user-notif COMMAND...\n");
                return 2;
        }
        struct sock_filter ubuntu[] = {
                LOAD_NR,
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1), ERRNO(ENOSYS),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mount, 2, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_umount2, 1, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pivot_root, 0, 1), ERRNO(EACCES),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 3),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIOCSIFFLAGS, 0, 1), ERRNO(EPERM),
                ALLOW,
        };
        struct sock_filter container[] = {
                LOAD_NR,
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1), ERRNO(ENOSYS),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1), ERRNO(EPERM),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
                LOAD_ARG0,
                BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1), ERRNO(EPERM),
                ALLOW,
        };
        struct sock_filter exhausted[] = {
                LOAD_NR,
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1), ERRNO(ENOSYS),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 1, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
                LOAD_ARG0,
                BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1), ERRNO(ENOSPC),
                ALLOW,
        };
        struct sock_filter capset[] = {
                LOAD_NR,
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_capset, 0, 1), ERRNO(EPERM),
                ALLOW,
        };
        struct sock_filter old_kernel[] = {
                LOAD_NR,
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_seccomp, 0, 3),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
                BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, SECCOMP_FILTER_FLAG_NEW_LISTENER, 0, 1), ERRNO(EINVAL),
                ALLOW,
        };
        struct sock_fprog prog;
        if (strcmp(argv[1], "ubuntu-apparmor") == 0)
                prog = (struct sock_fprog) { sizeof ubuntu / sizeof ubuntu[0], ubuntu };
        else if (strcmp(argv[1], "container") == 0)
                prog = (struct sock_fprog) { sizeof container / sizeof container[0], container };
        else if (strcmp(argv[1], "userns-exhausted") == 0)
                prog = (struct sock_fprog) { sizeof exhausted / sizeof exhausted[0], exhausted };
        else if (strcmp(argv[1], "capset-refused") == 0)
                prog = (struct sock_fprog) { sizeof capset / sizeof capset[0], capset };
        else if (strcmp(argv[1], "no-user-notif") == 0)
                prog = (struct sock_fprog) { sizeof old_kernel / sizeof old_kernel[0], old_kernel };
        else {
                fprintf(stderr, "hostemu: unknown host '%s'\n", argv[1]);
                return 2;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
                perror("hostemu: seccomp");
                return 2;
        }
        execvp(argv[2], argv + 2);
        perror("hostemu: exec");
        return 127;
}
