/* The one fork primitive: every child of secrets-run (the sandbox's pid 1, the step, the
 * guardian, an exec backend's provider) is started by spawn_process(), and gets exactly the
 * fds, environment and signal state it is described with, and nothing else of ours. */
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sandbox-private.h"

extern char **environ;

static char *empty_environment[] = { NULL };

/* Tells the parent why the child's setup failed and exits: spawn_process() returns -e (with
 * SPAWN_BEFORE_EXEC_FAILED set when the caller's hook failed). */
_noreturn_ static void child_fail(int status_fd, int e) {
        if (write(status_fd, &e, sizeof e) < 0) {
                /* the parent sees EOF and then the exit status */
        }
        _exit(127);
}

/* Closes every fd from first up. */
static int close_from(int first) {
        if (syscall(SYS_close_range, (unsigned) first, ~0U, 0U) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        /* before Linux 5.9: one close per possible number */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        for (rlim_t fd = (rlim_t) first; fd < rl.rlim_cur; fd++)
                (void) close((int) fd);
        return 0;
}

/* Puts each fd at its target and closes everything else but the status pipe, which moves
 * to just above the targets (still close-on-exec, so an exec closes it and the parent reads
 * EOF). */
static int arrange_fds(const struct spawn_fd *fds, size_t n, int *status_fd) {
        int top = -1;
        bool keep[SPAWN_MAX_FDS] = {};
        for (size_t i = 0; i < n; i++) {
                if (fds[i].target > top)
                        top = fds[i].target;
                keep[fds[i].target] = true;
        }
        int status_at = top + 1;
        /* first every source (and the status pipe) above every target, so that no dup2
         * below clobbers a source still to be moved */
        int moved[SPAWN_MAX_FDS];
        for (size_t i = 0; i < n; i++)
                if ((moved[i] = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, status_at + 1)) < 0)
                        return -errno;
        int s = fcntl(*status_fd, F_DUPFD_CLOEXEC, status_at + 1);
        if (s < 0)
                return -errno;
        for (size_t i = 0; i < n; i++)
                if (dup2(moved[i], fds[i].target) < 0)   /* dup2 clears close-on-exec */
                        return -errno;
        if (dup3(s, status_at, O_CLOEXEC) < 0)
                return -errno;
        *status_fd = status_at;
        for (int fd = 0; fd <= top; fd++)
                if (!keep[fd])
                        (void) close(fd);   /* EBADF for what was not open */
        return close_from(status_at + 1);
}

/* Where the kernel finds what /proc/PID/environ shows: [env_start, env_end) of our memory,
 * fields 50 and 51 of /proc/self/stat (after the command name, which may hold anything). */
static int environ_block(unsigned long *ret_start, unsigned long *ret_end) {
        char buf[4096];
        int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n;
        do
                n = read(fd, buf, sizeof buf - 1);
        while (n < 0 && errno == EINTR);
        int e = errno;
        (void) close(fd);
        if (n < 0)
                return -e;
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (!p)
                return -EINVAL;
        unsigned long start = 0, end = 0;
        p++;
        /* the first field after the name is the 3rd; each is one space-separated word */
        for (int field = 3; field <= 51; field++) {
                while (*p == ' ')
                        p++;
                if (!*p || *p == '\n')
                        return -EINVAL;   /* a kernel older than 3.5 has no such fields */
                if (field == 50)
                        start = strtoul(p, NULL, 10);
                else if (field == 51)
                        end = strtoul(p, NULL, 10);
                p += strcspn(p, " \n");
        }
        if (end < start)
                return -EINVAL;
        *ret_start = start;
        *ret_end = end;
        return 0;
}

/* For a child that does not exec: the environment it inherited is a copy of ours, which
 * holds every value the env backend reads and the backends' credentials until the
 * supervisor scrubs its own. Every string environ points to is zeroed (setenv's live on the
 * heap), and so is the block the kernel shows, which also keeps what unsetenv() only
 * unlinked from environ. */
static int environ_erase(void) {
        for (char **v = environ; v && *v; v++)
                explicit_bzero(*v, strlen(*v));
        unsigned long start, end;
        int r = environ_block(&start, &end);
        if (r < 0)
                return r;
        if (end > start)
                explicit_bzero((void *) start, end - start);
        return 0;
}

/* Between fork and exec (or run). Each step's failure goes to the parent over status_fd. */
_noreturn_ static void child_main(const struct spawn_spec *s, int status_fd, pid_t parent) {
        int r;
        if (s->wipe_secrets)
                secret_wipe_all();
        if (s->name)
                (void) prctl(PR_SET_NAME, s->name);
        if (s->pdeathsig) {
                if (prctl(PR_SET_PDEATHSIG, s->pdeathsig) < 0)
                        child_fail(status_fd, errno);
                /* a parent that died before that line never sends it. (In a new pid
                 * namespace the parent is outside, and getppid() is always 0.) */
                if (!(s->clone_flags & CLONE_NEWPID) && getppid() != parent)
                        child_fail(status_fd, ESRCH);
        }
        /* our handlers and ignored signals are not the child's; the mask the parent set
         * around the fork (everything blocked) is replaced only now, so no signal finds a
         * handler of ours in between */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < _NSIG; sig++)
                (void) sigaction(sig, &dfl, NULL);   /* fails harmlessly for KILL, STOP and glibc's own */
        sigset_t mask;
        if (s->blocked)
                mask = *s->blocked;
        else
                sigemptyset(&mask);
        if (sigprocmask(SIG_SETMASK, &mask, NULL) < 0)
                child_fail(status_fd, errno);
        if (s->group == SPAWN_SESSION_NEW && setsid() < 0)
                child_fail(status_fd, errno);
        if (s->group == SPAWN_GROUP_NEW && setpgid(0, 0) < 0)
                child_fail(status_fd, errno);
        if ((r = arrange_fds(s->fds, s->n_fds, &status_fd)) < 0)
                child_fail(status_fd, -r);
        /* the terminal's session is the one setsid() just made: isatty(), colours, job control */
        if (s->controlling_tty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
                child_fail(status_fd, errno);
        char **envp = s->envp ? (char **) s->envp : empty_environment;
        if (!s->argv) {
                if ((r = environ_erase()) < 0)
                        child_fail(status_fd, -r);
                environ = envp;
                (void) close(status_fd);   /* set up: the parent goes on */
                _exit(s->run(s->userdata));
        }
        if (s->before_exec && (r = s->before_exec(s->userdata)) < 0)
                child_fail(status_fd, SPAWN_BEFORE_EXEC_FAILED | -r);
        /* execvpe searches the $PATH of environ: the child's own, not what we were left with */
        environ = envp;
        execvpe(s->argv[0], s->argv, envp);
        child_fail(status_fd, errno);
}

int spawn_process(const struct spawn_spec *s, pid_t *ret_pid) {
        if (s->n_fds > SPAWN_MAX_FDS)
                return -EMFILE;
        for (size_t i = 0; i < s->n_fds; i++)
                if (s->fds[i].target < 0 || s->fds[i].target >= SPAWN_MAX_FDS || s->fds[i].fd < 0)
                        return -EBADF;
        if (!s->argv == !s->run)
                return -EINVAL;
        int status[2];
        if (pipe2(status, O_CLOEXEC) < 0)
                return -errno;
        pid_t parent = getpid();
        sigset_t all, saved;
        sigfillset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, &saved);
        pid_t pid = s->clone_flags ? (pid_t) syscall(SYS_clone, s->clone_flags | SIGCHLD, NULL, NULL, NULL, NULL)
                                   : fork();
        if (pid == 0)
                child_main(s, status[1], parent);
        int e = errno;
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        safe_close(status[1]);
        if (pid < 0) {
                safe_close(status[0]);
                return -e;
        }
        /* EOF: it exec'd, or its run began; an errno: it failed and exits */
        int child_errno = 0;
        ssize_t n;
        do
                n = read(status[0], &child_errno, sizeof child_errno);
        while (n < 0 && errno == EINTR);
        safe_close(status[0]);
        if (n == (ssize_t) sizeof child_errno) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -(child_errno ? child_errno : EIO);
        }
        *ret_pid = pid;
        return 0;
}

int spawn_helper(char *const *argv, char *const *envp, int out_fd, int err_fd, pid_t *ret_pid) {
        _cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
                return -errno;
        const struct spawn_fd fds[] = { { null_fd, STDIN_FILENO }, { out_fd, STDOUT_FILENO }, { err_fd, STDERR_FILENO } };
        /* it execs at once, and exec discards the copy of our memory: nothing to wipe */
        struct spawn_spec s = {
                .argv = argv, .envp = envp, .fds = fds, .n_fds = ELEMENTSOF(fds),
                /* a timeout kills the provider and whatever it started */
                .group = SPAWN_GROUP_NEW,
                .pdeathsig = SIGKILL,
        };
        return spawn_process(&s, ret_pid);
}
