/* What the files of sandbox/ share and nothing else may use: the one fork primitive every
 * child of secrets-run is started with, and the layers the step's process applies to itself.
 * Private to sandbox/ (and its unit tests); the rest of the program sees only sandbox.h. */
#pragma once

#include <signal.h>

#include "sandbox.h"

/* ---- the one fork primitive ----
 * pid 1, the step, the guardian and the exec backend's provider are all started here, so
 * the hygiene each child needs (fds, environment, signals, parent death, the secrets in our
 * memory) is written once and cannot be weaker in one of them. */

#define SPAWN_MAX_FDS 256

/* spawn_process() returns -(SPAWN_BEFORE_EXEC_FAILED | errno) when the before_exec hook
 * failed (the step's narrowing: a sandbox layer), not the exec: errnos are below it. */
#define SPAWN_BEFORE_EXEC_FAILED 0x10000
static inline bool spawn_failed_before_exec(int r) {
        return r < 0 && (-r & SPAWN_BEFORE_EXEC_FAILED);
}
static inline int spawn_errno(int r) {
        return -r & ~SPAWN_BEFORE_EXEC_FAILED;
}

struct spawn_fd {
        int fd;        /* ours; it stays open in the parent */
        int target;    /* its number in the child */
};

enum spawn_group {
        SPAWN_GROUP_KEEP,      /* our process group */
        SPAWN_GROUP_NEW,       /* a group of its own (pgid = pid): kill(-pid) reaches what it starts */
        SPAWN_SESSION_NEW,     /* setsid(): a new session and group, no controlling terminal */
};

struct spawn_spec {
        /* What the child does: execs argv (argv[0] looked up in the $PATH of envp, as
         * execvpe would), or, with argv NULL, calls run(userdata) and exits with what it
         * returns. */
        char *const *argv;
        int (*run)(void *userdata);
        void *userdata;
        /* Exactly the child's environment (NULL: none). A child that does not exec first
         * erases what it inherited, the block /proc/PID/environ shows included. */
        char *const *envp;
        /* The only fds open in the child, each at its target number; everything else we
         * hold is closed. At most SPAWN_MAX_FDS, targets below SPAWN_MAX_FDS. */
        const struct spawn_fd *fds;
        size_t n_fds;
        enum spawn_group group;
        bool controlling_tty;      /* with SPAWN_SESSION_NEW: fd 0, a terminal, becomes its own */
        int pdeathsig;             /* sent to the child when we die; 0: none (it must outlive us) */
        /* secret_wipe_all() first thing: a child that does not exec keeps a copy of our
         * memory, and must not hold the values unless it needs them */
        bool wipe_secrets;
        /* Every disposition is reset to the default; these signals stay blocked (NULL:
         * none), from the child's first instruction on. */
        const sigset_t *blocked;
        unsigned long clone_flags; /* CLONE_NEW* for a new set of namespaces; 0: fork() */
        const char *name;          /* a child that does not exec: its comm (PR_SET_NAME) */
        /* Last before exec, after everything above: narrows the child further (capabilities,
         * seccomp). A -errno fails the spawn like a failed exec. */
        int (*before_exec)(void *userdata);
};

/* Starts a child as s describes. Returns 0 (its pid in *ret_pid) once it has exec'd, or
 * (with run) once its setup is done and run has been called. -errno if the fork or clone,
 * the child's setup or its exec failed; no child remains then (it has been reaped). */
int spawn_process(const struct spawn_spec *s, pid_t *ret_pid);

/* ---- layers the step's process applies to itself, right before exec ---- */

int caps_drop(bool root_keeps_default);
/* The output guard's filter, with a listener sent over sock (or the errno why not; never a
 * failure of the step). After no_new_privs, before the deny filter. */
int guard_install(int sock);

struct sock_filter;
struct seccomp_program {
        struct sock_filter *filter;
        unsigned short len;
};
int seccomp_build(bool allow_ptrace, struct seccomp_program *ret);
int seccomp_load_program(const struct seccomp_program *p);
void seccomp_program_done(struct seccomp_program *p);
const char *seccomp_syscall_name(int nr);

/* Overwrites and removes every file under dir_fd (a secrets directory, or the private tmpfs
 * mounted on it). */
void secrets_dir_wipe(int dir_fd);

/* Inside the step's mount namespace: /proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus,
 * /proc/fs and /sys read-only (with their submounts), /proc/kcore, /proc/keys and the like
 * masked. On failure, what failed in what (a path). */
int kernel_views_protect(char *what, size_t what_size);

/* Whether we hold cap in our effective set now (true when that cannot be told). */
bool caps_effective_has(int cap);
