/* Starting the step: a new session with stdout/stderr on pipes, only fds 0-2 and the
 * delivery fds open, default signal state, death with the supervisor; and the signal and
 * exit-status plumbing the supervisor loop needs. */
#include <fcntl.h>
#include <linux/close_range.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sandbox.h"

#define SPAWN_MAX_FDS 1024

const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
const size_t n_forwarded_signals = ELEMENTSOF(forwarded_signals);

int signals_block_to_fd(void) {
        sigset_t set;
        sigemptyset(&set);
        for (size_t i = 0; i < n_forwarded_signals; i++)
                sigaddset(&set, forwarded_signals[i]);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, SIGWINCH);   /* resizes the step's pty, if it has one */
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return -errno;
        int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

int exit_status_from_wait(int wstatus) {
        if (WIFEXITED(wstatus))
                return WEXITSTATUS(wstatus);
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        return 125;
}

static void reset_signals(void) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < _NSIG; sig++)
                (void) sigaction(sig, &dfl, NULL);   /* fails harmlessly for KILL/STOP */
        sigset_t none;
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Between fork and exec. Every failure reports errno over status_fd and exits: the parent
 * turns it into 126/127 or a setup error. */
_noreturn_ static void child_exec(const struct spawn_config *c, pid_t parent, int out_fd, int err_fd,
                                  int pty_slave, int status_fd) {
        int e;
        /* die with the supervisor, and notice if it already died before we got here */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                goto fail;
        reset_signals();
        /* a new session: no controlling terminal, and our own process group for signals */
        if (setsid() < 0)
                goto fail;
        if (pty_slave >= 0) {
                /* the pty becomes the controlling terminal: isatty(), colours, job control */
                if (ioctl(pty_slave, TIOCSCTTY, 0) < 0 || dup2(pty_slave, STDIN_FILENO) < 0 ||
                    dup2(pty_slave, STDOUT_FILENO) < 0 || dup2(pty_slave, STDERR_FILENO) < 0)
                        goto fail;
        } else if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
                goto fail;
        /* delivery fds go to 3, 4, ...: first above every target, so no dup2 clobbers a
         * source that is still to be moved */
        int first_free = 3 + (int) c->n_fds;
        int moved[SPAWN_MAX_FDS];
        for (size_t i = 0; i < c->n_fds; i++)
                if ((moved[i] = fcntl(c->fds[i], F_DUPFD_CLOEXEC, first_free + 1)) < 0)
                        goto fail;
        if (status_fd < first_free) {
                /* keep the status pipe out of the way, too */
                int s = fcntl(status_fd, F_DUPFD_CLOEXEC, first_free + 1);
                if (s < 0)
                        goto fail;
                status_fd = s;
        }
        for (size_t i = 0; i < c->n_fds; i++)
                if (dup2(moved[i], 3 + (int) i) < 0)   /* dup2 clears close-on-exec */
                        goto fail;
        /* whatever else is open closes at exec (the status pipe included) */
        if (syscall(SYS_close_range, (unsigned) first_free, ~0U, CLOSE_RANGE_CLOEXEC) < 0 && errno != ENOSYS)
                goto fail;
        execvpe(c->argv[0], c->argv, c->envp);
fail:
        e = errno;
        if (write(status_fd, &e, sizeof e) < 0) {
                /* the parent sees exit 127 without a reason */
        }
        _exit(127);
}

/* The guardian: a small process that outlives a supervisor killed with SIGKILL just long
 * enough to kill the step's whole process group. The step's own pdeathsig covers only the
 * step; what it started would otherwise run on with its secrets. The supervisor holds the
 * pipe's write end: EOF without a byte means it died. (In a pid namespace the kernel does
 * this for us; the guardian is what covers runs without one.) */
static int spawn_guardian(pid_t pgid, pid_t *ret_pid, int *ret_fd) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int e = -errno;
                safe_close(p[0]), safe_close(p[1]);
                return e;
        }
        if (pid == 0) {
                /* nothing of the supervisor's stays open here, the step's pipes least of all;
                 * the forwarded signals stay blocked, so a Ctrl-C does not take us down */
                int fd = p[0];
                if (fd > 0)
                        (void) syscall(SYS_close_range, 0U, (unsigned) fd - 1, 0U);
                (void) syscall(SYS_close_range, (unsigned) fd + 1, ~0U, 0U);
                (void) prctl(PR_SET_NAME, "secrets-run-grd");
                char byte;
                ssize_t n;
                do
                        n = read(fd, &byte, 1);
                while (n < 0 && errno == EINTR);
                if (n <= 0)
                        (void) kill(-pgid, SIGKILL);
                _exit(0);
        }
        safe_close(p[0]);
        *ret_pid = pid;
        *ret_fd = p[1];
        return 0;
}

void child_release(struct child *c) {
        if (c->guardian_fd >= 0) {
                if (write(c->guardian_fd, "", 1) < 0) {
                        /* it is gone already; nothing to stand down */
                }
                c->guardian_fd = safe_close(c->guardian_fd);
        }
        if (c->guardian_pid > 0) {
                (void) waitpid(c->guardian_pid, NULL, 0);
                c->guardian_pid = 0;
        }
        c->stdout_fd = safe_close(c->stdout_fd);
        c->stderr_fd = safe_close(c->stderr_fd);
        c->pty_fd = safe_close(c->pty_fd);
}

int spawn_command(const struct spawn_config *c, struct child *ret) {
        if (c->n_fds > SPAWN_MAX_FDS)
                return -EMFILE;
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, status[2] = { -1, -1 };
        int r = 0;
        if (c->pty) {
                if (openpty(&out[0], &out[1], NULL, NULL, NULL) < 0)
                        return -errno;
                (void) fd_set_cloexec(out[0], true);
                (void) fd_set_cloexec(out[1], true);
        } else if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
                r = -errno;
        if (r == 0 && pipe2(status, O_CLOEXEC) < 0)
                r = -errno;
        if (r < 0) {
                safe_close(out[0]), safe_close(out[1]), safe_close(err[0]), safe_close(err[1]);
                return r;
        }
        _cleanup_close_ int out_r = out[0], err_r = err[0], status_r = status[0];
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                int e = -errno;
                safe_close(out[1]), safe_close(err[1]), safe_close(status[1]);
                return e;
        }
        if (pid == 0)
                child_exec(c, parent, out[1], err[1], c->pty ? out[1] : -1, status[1]);
        safe_close(out[1]), safe_close(err[1]), safe_close(status[1]);

        int child_errno = 0;
        ssize_t n;
        do
                n = read(status_r, &child_errno, sizeof child_errno);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t) sizeof child_errno) {
                (void) waitpid(pid, NULL, 0);
                return -(child_errno ? child_errno : EIO);
        }
        int pty_fd = -1;
        if (c->pty && (pty_fd = fcntl(out_r, F_DUPFD_CLOEXEC, 3)) < 0) {
                r = -errno;
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        (void) fd_set_nonblock(out_r, true);
        if (err_r >= 0)
                (void) fd_set_nonblock(err_r, true);
        pid_t guardian_pid = 0;
        int guardian_fd = -1;
        r = spawn_guardian(pid, &guardian_pid, &guardian_fd);
        if (r < 0) {
                safe_close(pty_fd);
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        *ret = (struct child) {
                .pid = pid, .stdout_fd = steal_fd(&out_r), .stderr_fd = steal_fd(&err_r),
                .guardian_pid = guardian_pid, .guardian_fd = guardian_fd, .pty_fd = pty_fd,
        };
        return 0;
}

/* ---- the terminal around a pty ---- */

static struct termios saved_termios;
static bool termios_saved;

void pty_resize(int pty_fd) {
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
                (void) ioctl(pty_fd, TIOCSWINSZ, &ws);
}

int pty_prepare(int pty_fd) {
        pty_resize(pty_fd);
        if (!isatty(STDIN_FILENO))
                return 0;
        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return -errno;
        struct termios raw = saved_termios;
        cfmakeraw(&raw);
        /* keys, Ctrl-C included, go to the step's terminal, whose line discipline acts on them */
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
                return -errno;
        termios_saved = true;
        return 0;
}

void pty_restore(void) {
        if (termios_saved) {
                (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
                termios_saved = false;
        }
}
