/* Everything that touches the OS around the step: the per-run secrets directory, sealed
 * memfds, spawning the command with a clean fd table, and signal/exit plumbing.
 * Knows nothing of manifests. */
#pragma once

#include <sys/types.h>

#include "common.h"

/* ---- supervisor hardening (before any secret is fetched) ---- */
int supervisor_harden(void);

/* ---- the per-run secrets directory ----
 * A 0700 directory under a per-user 0700 base on a tmpfs ($XDG_RUNTIME_DIR or /dev/shm).
 * It is flock'ed for the run's lifetime, so a later start can tell a crashed run's
 * leftovers (lock free) from a live run's (lock held) and sweep only the former. */
struct secrets_dir;
int secrets_dir_sweep(void);   /* returns the number of stale directories removed */
int secrets_dir_create(struct secrets_dir **ret);
const char *secrets_dir_path(const struct secrets_dir *d);
/* Writes a 0400 file; name must be a plain file name. */
int secrets_dir_add(struct secrets_dir *d, const char *name, const struct secret *value);
struct secrets_dir *secrets_dir_remove(struct secrets_dir *d);  /* wipe, unlink, rmdir */
static inline void secrets_dir_removep(struct secrets_dir **d) { secrets_dir_remove(*d); }
#define _cleanup_secrets_dir_ _cleanup_(secrets_dir_removep)

/* A sealed (write, shrink, grow, seal) close-on-exec memfd holding value, offset 0. */
int memfd_sealed(const char *name, const struct secret *value);

/* ---- spawning the step ---- */
struct spawn_config {
        char *const *argv;            /* argv[0] is looked up in $PATH like execvp */
        char *const *envp;
        const int *fds;               /* become fds 3, 4, ... in the child, in order */
        size_t n_fds;
        bool pty;                     /* a pseudo-terminal for stdin/stdout/stderr */
};

struct child {
        pid_t pid;                    /* also its process group and session id */
        int stdout_fd, stderr_fd;     /* read ends, non-blocking, close-on-exec */
        pid_t guardian_pid;           /* kills the group if the supervisor dies */
        int guardian_fd;
        int pty_fd;                   /* with a pty: its master (stdout_fd reads a dup of it,
                                         stderr_fd is -1, and our stdin is copied here) */
};

/* With a pty: puts our terminal (if stdin is one) in raw mode so keys reach the step as
 * typed, and copies our window size to the pty. Restored by pty_restore. */
int pty_prepare(int pty_fd);
void pty_restore(void);
void pty_resize(int pty_fd);   /* on SIGWINCH */

/* Forks the command in a new session with stdout/stderr on pipes and stdin inherited (or
 * all three on a pty that becomes its controlling terminal).
 * Returns 0 once the command has been exec'ed; if exec failed, returns -errno of the
 * failure (-ENOENT: not found, others: cannot execute) and no child remains. */
int spawn_command(const struct spawn_config *c, struct child *ret);
/* After the step is over and its group killed: stands the guardian down and reaps it. */
void child_release(struct child *c);

/* Signals the step forwards to the command's process group. */
extern const int forwarded_signals[];
extern const size_t n_forwarded_signals;
/* Blocks the forwarded signals and SIGCHLD and returns a signalfd for them. */
int signals_block_to_fd(void);

/* Exit status for a waitpid() status: code, or 128+N for a signal. */
int exit_status_from_wait(int wstatus);
