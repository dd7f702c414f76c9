/* Everything that touches the OS around the step: the per-run secrets directory, sealed
 * memfds, spawning the command with a clean fd table, and signal/exit plumbing.
 * Knows nothing of manifests. (What only sandbox/ uses is in sandbox-private.h.) */
#pragma once

#include <sys/types.h>

#include "common.h"

/* ---- supervisor hardening (before any secret is fetched) ---- */
int supervisor_harden(void);

/* ---- the per-run secrets directory ----
 * A 0700 directory under a per-user 0700 base on a tmpfs ($XDG_RUNTIME_DIR or /dev/shm).
 * A lock file beside it (run-X.lock) is flock'ed for the run's lifetime, so a later start
 * can tell a crashed run's leftovers (lock free) from a live run's (lock held) and sweep only
 * the former, also from inside a run's mount namespace (a nested run), where the directory's
 * path is a private tmpfs. */
struct secrets_dir;
int secrets_dir_sweep(void);   /* returns the number of stale directories removed */
/* 1 when the shared base could not be trusted (someone else's, or open to others) and the
 * run has a fresh base of its own instead; secrets_dir_refused_base() names the refused one. */
int secrets_dir_create(struct secrets_dir **ret);
const char *secrets_dir_refused_base(const struct secrets_dir *d);
/* The host has no memory file system (no /dev/shm, $XDG_RUNTIME_DIR not a tmpfs): the
 * directory is on disk, good only as the mount point of a private tmpfs. */
bool secrets_dir_on_disk(const struct secrets_dir *d);
const char *secrets_dir_path(const struct secrets_dir *d);
int secrets_dir_fd(const struct secrets_dir *d);
struct secrets_dir *secrets_dir_remove(struct secrets_dir *d);  /* wipe, unlink, rmdir */
static inline void secrets_dir_removep(struct secrets_dir **d) { secrets_dir_remove(*d); }
#define _cleanup_secrets_dir_ _cleanup_(secrets_dir_removep)

/* A sealed (write, shrink, grow, seal) close-on-exec memfd holding value, offset 0. */
int memfd_sealed(const char *name, const struct secret *value);

/* ---- spawning the step ---- */

enum sandbox_level { SANDBOX_LEVEL_AUTO, SANDBOX_LEVEL_STRICT, SANDBOX_LEVEL_OFF };

enum sandbox_layer {
        LAYER_USER,        /* user namespace (non-root callers only) */
        LAYER_MOUNT,
        LAYER_PID,
        LAYER_IPC,
        LAYER_UTS,
        LAYER_NET,         /* only with --network off */
        LAYER_PROC,        /* a fresh /proc of the pid namespace */
        LAYER_SECRETS_FS,  /* $SECRETS_DIR as a tmpfs only the run sees */
        LAYER_HIDE,        /* the store's key and file covered (only when there are some) */
        LAYER_CAPS,
        LAYER_SECCOMP,
        LAYER_GUARD,       /* the output guard (observation: strict does not need it) */
        _LAYER_MAX,
};
const char *sandbox_layer_name(enum sandbox_layer l);

struct sandbox_status {
        unsigned active;          /* 1 << layer */
        unsigned missing;         /* wanted but unavailable */
        char why[320];            /* why the first missing layer is missing */
};
/* "active: mount,pid,...; missing: user (why)" */
void sandbox_status_format(const struct sandbox_status *s, char *buf, size_t size);

/* What the sandbox is: chosen before any secret exists, since its pid 1 is created first and
 * must never hold a copy of one. */
struct sandbox_options {
        enum sandbox_level level;
        bool network_off;
        bool allow_ptrace;
        const char *secrets_dir;      /* the run's directory on the host (empty) */
        bool secrets_dir_on_disk;     /* then files go only into the private tmpfs, or nowhere */
        /* Paths the step must not reach though its uid could (the store's key and file):
         * inside the mount namespace a directory is covered by an empty read-only tmpfs,
         * a file by /dev/null. Paths that do not exist are skipped. */
        char *const *hide;
};

/* What runs in it. */
struct spawn_config {
        char *const *argv;            /* argv[0] is looked up in $PATH like execvp */
        char *const *envp;
        const int *fds;               /* become fds 3, 4, ... in the child, in order */
        size_t n_fds;
        bool pty;                     /* a pseudo-terminal for stdin/stdout/stderr */
        bool merge_output;            /* one pipe for stdout and stderr (they are one file) */
        bool guard;                   /* the output guard's filter on the step (child.guard_fd) */
};

struct sandbox;
struct child;
/* Sets up the layers (namespaces, the pid-1 reaper, the private tmpfs and /proc) and says
 * which are active in *status. -ENOTSUP with status->why when strict mode cannot have one. */
int sandbox_create(const struct sandbox_options *o, struct sandbox **ret, struct sandbox_status *status);
/* Waits until the sandbox's pid 1 has its mounts (it works on them meanwhile, so the caller
 * can fetch in parallel); completes *status. -ENOTSUP with status->why if setup failed. */
int sandbox_ready(struct sandbox *sb, struct sandbox_status *status);
/* Where the step's secret files are written (after sandbox_ready): the private tmpfs, or the
 * host directory. */
int sandbox_dir_fd(const struct sandbox *sb);
/* Starts the command. Returns 0 once it has been exec'ed; -ENOENT/-EACCES/... if exec
 * failed (no child remains); -ENOTSUP with status->why for a sandbox setup failure. */
int sandbox_spawn(struct sandbox *sb, const struct spawn_config *c, struct child *ret, struct sandbox_status *status);
struct sandbox *sandbox_free(struct sandbox *sb);
static inline void sandbox_freep(struct sandbox **sb) { sandbox_free(*sb); }
#define _cleanup_sandbox_ _cleanup_(sandbox_freep)

struct child {
        pid_t pid;                    /* the step (plain) or the sandbox's pid 1 (namespaces) */
        bool init;                    /* pid is our pid-1 reaper, which reports the status */
        int stdout_fd, stderr_fd;     /* read ends, non-blocking, close-on-exec */
        bool merged;                  /* stdout_fd carries stderr too; stderr_fd is -1 */
        int report_fd;                /* from the pid-1 reaper (its socket) */
        pid_t guardian_pid;           /* plain mode: kills the group if the supervisor dies */
        int guardian_fd;
        int pty_fd;                   /* with a pty: its master (stdout_fd reads a dup of it,
                                         stderr_fd is -1, and our stdin is copied here) */
        int guard_fd;                 /* with config.guard: where the step sent its listener */
};
#define CHILD_NULL ((struct child) { .pid = -1, .stdout_fd = -1, .stderr_fd = -1, .report_fd = -1, \
                                     .guardian_fd = -1, .pty_fd = -1, .guard_fd = -1 })

/* Forwards a signal to the step's process group. */
void child_signal(struct child *c, int sig);
/* Kills the step and everything it started. */
void child_kill(struct child *c);
/* 1 and the step's wait status once it has ended, 0 while it runs. */
int child_reap(struct child *c, int *ret_wstatus);
/* After the step is over: stands the guardian down, reaps helpers, closes fds. */
void child_release(struct child *c);

/* With a pty: puts our terminal (if stdin is one) in raw mode so keys reach the step as
 * typed, and copies our window size to the pty. Restored by pty_restore. */
int pty_prepare(int pty_fd);
void pty_restore(void);
void pty_resize(int pty_fd);   /* on SIGWINCH */

/* Writes a 0400 file name into dir_fd. */
int secret_file_write(int dir_fd, const char *name, const struct secret *value);

/* ---- the output guard ----
 * What the step does to files and to the network, seen as it happens through seccomp user
 * notification: each open for writing, rename, unlink and connect of the step and its
 * descendants is shown to a callback on the guard's own thread while the call waits, then
 * continues as it was. Observation, never refusal (guard.c says why). */
enum guard_event_kind {
        GUARD_WRITE,       /* path opened for writing, created or truncated */
        GUARD_RENAME,      /* path renamed to target (what target was is gone after it) */
        GUARD_REMOVE,      /* path about to be unlinked */
        GUARD_CONNECT,     /* a connect() to addr */
        GUARD_READ,        /* the first open of the secret file path (a name in the directory) */
};
struct sockaddr;
struct guard_event {
        enum guard_event_kind kind;
        pid_t pid;                    /* the calling thread, as the supervisor sees it */
        const char *comm;             /* GUARD_READ: its program's name, NULL if it cannot be told;
                                         the others: guard_event_program() */
        char *comm_buf;               /* guard_event_program()'s, read on first use */
        size_t comm_size;
        const char *path;             /* absolute and lexically normal, as the step sees it */
        const char *target;
        bool exchange;                /* RENAME_EXCHANGE: both names keep a file */
        bool noreplace;               /* RENAME_NOREPLACE: target is not replaced */
        const struct sockaddr *addr;
        unsigned addr_len;
};
/* The calling program's name, read only when asked (most calls name a file already seen). */
const char *guard_event_program(const struct guard_event *e);
/* Called on the guard's thread, the caller waiting: the file is still there to be read. */
typedef void (*guard_event_fn)(void *userdata, const struct guard_event *e);
struct guard;
/* The first open of each file names[] in dir_fd ($SECRETS_DIR), watched from before the step
 * starts: exactly who (fanotify, with CAP_SYS_ADMIN) or best effort (inotify). */
struct guard_reads;
int guard_reads_new(int dir_fd, char *const *names, struct guard_reads **ret);
void guard_reads_freep(struct guard_reads **w);
bool guard_reads_exact(const struct guard_reads *w);
/* Takes the listener the step sent over child.guard_fd, and reads (may be NULL; taken), and
 * starts the thread. *ret_listener_err: 0, or the errno why there is no listener (then only
 * the reads are watched; guard_unavailable_why() says it). -errno: nothing to watch. */
int guard_start(int sock, struct guard_reads *reads, guard_event_fn fn, void *userdata, struct guard **ret,
                int *ret_listener_err);
const char *guard_unavailable_why(int err);
/* After the step is over: joins the thread; returns how many calls it saw. */
uint64_t guard_stop(struct guard *g);
/* The guard's line in the status: 0 active, else missing for guard_unavailable_why(err). */
void sandbox_status_guard(struct sandbox_status *s, int err);
/* Whether the guard's filter can be had here (for doctor): 0, or -errno for
 * guard_unavailable_why(). */
int guard_probe(void);

/* ---- commands secrets-run itself runs, outside the sandbox ----
 * An exec backend's provider: argv[0] looked up in envp's $PATH, stdin /dev/null, stdout on
 * out_fd, stderr on err_fd and no other fd open, exactly envp, a process group of its own
 * (so kill(-pid) stops what it started), killed when we die, every signal at its default.
 * Returns 0 once it has exec'd; -errno if it could not be (no child remains). */
int spawn_helper(char *const *argv, char *const *envp, int out_fd, int err_fd, pid_t *ret_pid);

/* Signals the step forwards to the command's process group. */
extern const int forwarded_signals[];
extern const size_t n_forwarded_signals;
/* Blocks the forwarded signals and SIGCHLD and returns a signalfd for them. */
int signals_block_to_fd(void);

/* Exit status for a waitpid() status: code, or 128+N for a signal. */
int exit_status_from_wait(int wstatus);
