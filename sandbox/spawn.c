/* Starting the step, in the order of DESIGN §7: namespaces (user when not root, mount, pid,
 * ipc, uts, net when asked), a pid-1 reaper inside that mounts a fresh /proc and a private
 * tmpfs on $SECRETS_DIR, delivers, wipes its copy of the secrets and forks the step; the
 * step gets a new session, only its fds, reduced capabilities, no_new_privs, and seccomp
 * last. Without namespaces (--sandbox off, or auto where they are refused) the step is a
 * plain child, and a guardian process stands in for the pid namespace's teardown. Each of
 * these processes is started by spawn_process() (process.c). */
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

#include "sandbox-private.h"

#define DELIVERY_MAX_FDS 240   /* they travel to pid 1 in one SCM_RIGHTS message */
#define SECRETS_FS_SIZE "16m"

const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
const size_t n_forwarded_signals = ELEMENTSOF(forwarded_signals);

static const char *const layer_names[_LAYER_MAX] = {
        [LAYER_USER] = "user", [LAYER_MOUNT] = "mount", [LAYER_PID] = "pid", [LAYER_IPC] = "ipc",
        [LAYER_UTS] = "uts", [LAYER_NET] = "net", [LAYER_PROC] = "proc", [LAYER_SECRETS_FS] = "secrets-tmpfs", [LAYER_HIDE] = "hidden-paths",
        [LAYER_CAPS] = "caps", [LAYER_SECCOMP] = "seccomp", [LAYER_GUARD] = "output-guard",
};

const char *sandbox_layer_name(enum sandbox_layer l) {
        return (unsigned) l < _LAYER_MAX ? layer_names[l] : "?";
}

void sandbox_status_format(const struct sandbox_status *s, char *buf, size_t size) {
        size_t off = 0;
        for (int pass = 0; pass < 2; pass++) {
                unsigned set = pass == 0 ? s->active : s->missing;
                int w = snprintf(buf + off, size - off, "%s%s: ", pass ? "; " : "", pass ? "missing" : "active");
                if (w < 0 || (size_t) w >= size - off)
                        return;
                off += (size_t) w;
                bool first = true;
                for (int l = 0; l < _LAYER_MAX; l++)
                        if (set & (1u << l)) {
                                w = snprintf(buf + off, size - off, "%s%s", first ? "" : ",", layer_names[l]);
                                if (w < 0 || (size_t) w >= size - off)
                                        return;
                                off += (size_t) w;
                                first = false;
                        }
                if (first) {
                        w = snprintf(buf + off, size - off, "none");
                        if (w < 0 || (size_t) w >= size - off)
                                return;
                        off += (size_t) w;
                }
        }
        if (s->missing && s->why[0])
                snprintf(buf + off, size - off, " (%s)", s->why);
}

static void status_missing(struct sandbox_status *s, enum sandbox_layer l, const char *fmt, ...) _printf_(3, 4);
static void status_missing(struct sandbox_status *s, enum sandbox_layer l, const char *fmt, ...) {
        s->missing |= 1u << l;
        s->active &= ~(1u << l);
        if (!s->why[0]) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(s->why, sizeof s->why, fmt, ap);
                va_end(ap);
        }
}

void sandbox_status_guard(struct sandbox_status *s, int err) {
        if (err == 0)
                s->active |= 1u << LAYER_GUARD;
        else
                status_missing(s, LAYER_GUARD, "output guard: %s; scanning the working directory's changed files "
                               "instead", guard_unavailable_why(err));
}

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

static bool seccomp_available(void) {
        return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
}

/* ---- the step's own process ---- */

struct step {
        char *const *argv;
        char *const *envp;
        int stdin_fd;         /* what the caller handed us as input (ignored with a pty) */
        int out_fd, err_fd;   /* pipes; with a pty, out_fd is its slave and err_fd -1 */
        bool pty;
        const int *fds;       /* delivery: become 3, 4, ... */
        size_t n_fds;
        bool sandboxed;       /* caps, no_new_privs, seccomp (what was found available) */
        const struct seccomp_program *seccomp;   /* compiled ahead; NULL: none */
        bool root_keeps_caps;
        int guard_sock;       /* -1, or where the output guard's listener goes */
};

/* Where the step's process has the guard's socket until it sends the listener. */
static int guard_sock_target(const struct step *st) {
        return 3 + (int) st->n_fds;
}

/* The step's privilege sequence, the last thing its process does before exec. */
static int step_narrow(void *userdata) {
        const struct step *st = userdata;
        int r;
        if (!st->sandboxed) {
                if (st->guard_sock >= 0)
                        (void) close(guard_sock_target(st));   /* nothing to watch with: unused */
                return 0;
        }
        /* capabilities before no_new_privs and seccomp: capset needs no filter rule */
        if ((r = caps_drop(st->root_keeps_caps)) < 0)
                return r;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        /* the guard's filter needs no_new_privs; it watches, so it goes before the one that
         * refuses (whose errno wins over a notification whatever the order) */
        if (st->guard_sock >= 0) {
                (void) guard_install(guard_sock_target(st));
                (void) close(guard_sock_target(st));
        }
        /* seccomp last: nothing after it but execve */
        return st->seccomp ? seccomp_load_program(st->seccomp) : 0;
}

/* Starts the step from the supervisor (plain) or the sandbox's pid 1: a new session (no
 * controlling terminal but its pty, its own process group for signals), fds 0-2 and the
 * delivery fds at 3, 4, ... and nothing else, death with its parent, narrowed last. 0 once
 * it has exec'd; -errno if it could not (no child remains). */
static int step_start(const struct step *st, pid_t *ret_pid) {
        if (st->n_fds > DELIVERY_MAX_FDS)
                return -EMFILE;
        _cleanup_close_ int null_fd = -1;
        int in = st->pty ? st->out_fd : st->stdin_fd;
        /* a sandboxed step gets no terminal: not ours to read keystrokes from. Piped or file
         * input is data the caller handed it, and passes through. */
        if (!st->pty && (fcntl(in, F_GETFD) < 0 || (st->sandboxed && isatty(in)))) {
                if ((null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
                        return -errno;
                in = null_fd;
        }
        struct spawn_fd fds[4 + DELIVERY_MAX_FDS] = {
                { in, STDIN_FILENO }, { st->out_fd, STDOUT_FILENO },
                { st->pty ? st->out_fd : st->err_fd, STDERR_FILENO },
        };
        for (size_t i = 0; i < st->n_fds; i++)
                fds[3 + i] = (struct spawn_fd) { st->fds[i], 3 + (int) i };
        size_t n_fds = 3 + st->n_fds;
        if (st->guard_sock >= 0)
                fds[n_fds++] = (struct spawn_fd) { st->guard_sock, guard_sock_target(st) };
        struct spawn_spec s = {
                .argv = st->argv, .envp = st->envp, .fds = fds, .n_fds = n_fds,
                .group = SPAWN_SESSION_NEW,
                .controlling_tty = st->pty,
                /* with its parent (the supervisor, or the sandbox's pid 1) goes the step */
                .pdeathsig = SIGKILL,
                .before_exec = step_narrow, .userdata = (void *) st,
        };
        return spawn_process(&s, ret_pid);
}

/* ---- messages between the supervisor and the sandbox's pid 1 ----
 * A SOCK_SEQPACKET socketpair: each message is one struct msg, with fds riding along as
 * SCM_RIGHTS. */

#define MSG_MAX_FDS 250

enum msg_kind {
        MSG_LAYER_MISSING,    /* pid 1 → supervisor: value = layer, text = why */
        MSG_FATAL,            /* value = errno, text = what failed */
        MSG_READY,            /* fds: [secrets dir] */
        MSG_START,            /* supervisor → pid 1: fds: [spec memfd, stdout, stderr or none, guard
                                 socket if value, delivery...] */
        MSG_EXEC_FAILED,      /* value = errno */
        MSG_STARTED,
        MSG_EXIT,             /* value = the step's wait status */
};

struct msg {
        int kind;
        int value;
        char text[200];
};

static int msg_send(int sock, enum msg_kind kind, int value, const int *fds, size_t n_fds, const char *fmt, ...)
        _printf_(6, 7);
static int msg_send(int sock, enum msg_kind kind, int value, const int *fds, size_t n_fds, const char *fmt, ...) {
        struct msg m = { .kind = kind, .value = value };
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(m.text, sizeof m.text, fmt, ap);
                va_end(ap);
        }
        if (n_fds > MSG_MAX_FDS)
                return -E2BIG;
        struct iovec iov = { &m, sizeof m };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (n_fds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        ssize_t n;
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : 0;
}

/* Receives one message; its fds (close-on-exec) go to fds[], their number to *n_fds. */
static int msg_recv(int sock, struct msg *m, int *fds, size_t *n_fds, int flags) {
        struct iovec iov = { m, sizeof *m };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
        } control;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        ssize_t n;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n != (ssize_t) sizeof *m)
                return -EPIPE;   /* the other side is gone */
        m->text[sizeof m->text - 1] = '\0';
        size_t got = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int in[MSG_MAX_FDS];
                        memcpy(in, CMSG_DATA(c), (k < MSG_MAX_FDS ? k : MSG_MAX_FDS) * sizeof(int));
                        for (size_t i = 0; i < k && i < MSG_MAX_FDS; i++) {
                                if (fds && got < MSG_MAX_FDS)
                                        fds[got++] = in[i];
                                else
                                        safe_close(in[i]);   /* unexpected: not ours to keep */
                        }
                }
        if (n_fds)
                *n_fds = got;
        return 0;
}

/* The command's argv and envp travel to pid 1 in a memfd: "argc envc pty\0" then the strings. */
static int spec_write(const struct spawn_config *c) {
        _cleanup_close_ int fd = memfd_create("secrets-run-spec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        char head[64];
        int n = snprintf(head, sizeof head, "%zu %zu %d", strv_length(c->argv), strv_length(c->envp), c->pty ? 1 : 0);
        int r = write_all(fd, head, (size_t) n + 1);
        for (char *const *v = c->argv; r >= 0 && v && *v; v++)
                r = write_all(fd, *v, strlen(*v) + 1);
        for (char *const *v = c->envp; r >= 0 && v && *v; v++)
                r = write_all(fd, *v, strlen(*v) + 1);
        if (r < 0)
                return r;
        /* env deliveries are in it: nobody changes it in transit; pid 1 empties it once read */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW) < 0 || lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return steal_fd(&fd);
}

/* Reads a spec into one buffer; argv and envp point into it. */
static int spec_read(int fd, char **ret_buf, size_t *ret_size, char ***ret_argv, char ***ret_envp, bool *ret_pty) {
        /* one buffer of the memfd's size: a buffer grown by realloc would leave copies of
         * the env deliveries behind that nobody wipes */
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size <= 0 || st.st_size > (off_t) (64 * 1024 * 1024))
                return -EINVAL;
        size_t size = 0, cap = (size_t) st.st_size;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        while (size < cap) {
                ssize_t n = read(fd, buf + size, cap - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        explicit_bzero(buf, size);
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        /* read: the memfd's pages go now, not when the last fd to it closes */
        if (ftruncate(fd, 0) < 0) {
                /* sealed against it: the pages go when the last fd closes, soon after */
        }
        if (!buf)
                return -EINVAL;
        buf[size] = '\0';
        size_t argc, envc;
        int pty;
        if (sscanf(buf, "%zu %zu %d", &argc, &envc, &pty) != 3 || argc == 0)
                return -EINVAL;
        char **argv = calloc(argc + 1, sizeof(char *)), **envp = calloc(envc + 1, sizeof(char *));
        if (!argv || !envp) {
                free(argv), free(envp);
                return -ENOMEM;
        }
        char *p = buf + strlen(buf) + 1, *end = buf + size;
        for (size_t i = 0; i < argc + envc; i++) {
                if (p >= end) {
                        free(argv), free(envp);
                        return -EINVAL;
                }
                if (i < argc)
                        argv[i] = p;
                else
                        envp[i - argc] = p;
                p += strlen(p) + 1;
        }
        *ret_buf = steal_pointer(&buf);
        *ret_size = size;
        *ret_argv = argv;
        *ret_envp = envp;
        *ret_pty = pty;
        return 0;
}

/* ---- the pid-1 reaper ---- */

static int loopback_up(void) {
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -errno;
        struct ifreq ifr = {};
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static int write_file(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return write_all(fd, text, strlen(text));
}

/* Our uid and gid map to themselves. A process may write its own single-id map; setgroups
 * must be denied first. It holds no secret yet (it was created before any was fetched), so
 * being dumpable for these writes (so /proc/self is ours to write) exposes nothing. */
static int map_own_ids(uid_t uid, gid_t gid) {
        char map[64];
        int r;
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
                return -errno;
        if ((r = write_file("/proc/self/setgroups", "deny")) < 0 && r != -ENOENT)
                goto out;
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned) uid, (unsigned) uid);
        if ((r = write_file("/proc/self/uid_map", map)) < 0)
                goto out;
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned) gid, (unsigned) gid);
        r = write_file("/proc/self/gid_map", map);
out:
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 && r == 0)
                r = -errno;
        return r;
}

/* Where pid 1 has its socket to the supervisor: above its stdin, stdout and stderr. */
#define INIT_SOCK_FD 3

struct init_args {
        const struct sandbox_options *o;
        int sock;
        uid_t uid;
        gid_t gid;
        bool user_ns;
        bool seccomp;
};

#define INIT_FAIL(a, err, ...) do { msg_send((a)->sock, MSG_FATAL, (err), NULL, 0, __VA_ARGS__); _exit(125); } while (0)

/* What pid 1 keeps blocked from its first instruction and reads from a signalfd: the
 * signals it forwards, and SIGCHLD. (A pid namespace's init is not sent a signal it has no
 * handler for unless it is blocked, so one that arrived unblocked would be lost.) */
static void init_signals(sigset_t *ret) {
        sigemptyset(ret);
        for (size_t i = 0; i < n_forwarded_signals; i++)
                sigaddset(ret, forwarded_signals[i]);
        sigaddset(ret, SIGCHLD);
}

/* pid 1 of the new pid namespace, started by spawn_process() with its stdin, stdout, stderr
 * and the socket, an empty environment, no secret, init_signals() blocked, in a session of
 * its own and killed with the supervisor. When it exits, the kernel kills every process left
 * in the namespace: the step's daemons die with the step. */
static int init_main(void *userdata) {
        const struct init_args *a = userdata;
        const struct sandbox_options *o = a->o;
        bool strict = o->level == SANDBOX_LEVEL_STRICT;
        int r;
        if (a->user_ns && (r = map_own_ids(a->uid, a->gid)) < 0)
                INIT_FAIL(a, -r, "writing the user namespace's id maps");

        /* nothing we mount may propagate back to the host */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                INIT_FAIL(a, errno, "making the mount namespace private");
        /* $SECRETS_DIR: a tmpfs that exists only in this namespace; the host's directory
         * stays empty */
        /* noswap (Linux 6.4+): the files never reach swap either; older kernels refuse the
         * option (EINVAL) and get the tmpfs without it */
        r = mount("secrets-run", o->secrets_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=0700,noswap,size=" SECRETS_FS_SIZE);
        if (r < 0 && errno == EINVAL)
                r = mount("secrets-run", o->secrets_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "mode=0700,size=" SECRETS_FS_SIZE);
        if (r < 0) {
                if (strict || o->secrets_dir_on_disk)
                        INIT_FAIL(a, errno, "mounting a tmpfs on %s", o->secrets_dir);
                msg_send(a->sock, MSG_LAYER_MISSING, LAYER_SECRETS_FS, NULL, 0,
                         "mounting a tmpfs on the secrets directory: %s", strerror(errno));
        }
        /* a /proc that shows only this pid namespace: the supervisor is not in it */
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
                if (strict)
                        INIT_FAIL(a, errno, "mounting /proc (a container that masks parts of /proc refuses this)");
                msg_send(a->sock, MSG_LAYER_MISSING, LAYER_PROC, NULL, 0, "mounting /proc: %s", strerror(errno));
        }
        /* a root step owns the kernel's files: read-only views and masks (kernel_views.c);
         * for another uid they are not writable anyway */
        char what[160];
        if (a->uid == 0 && (r = kernel_views_protect(what, sizeof what)) < 0) {
                if (strict)
                        INIT_FAIL(a, -r, "%s", what);
                msg_send(a->sock, MSG_LAYER_MISSING, LAYER_PROC, NULL, 0, "%s: %s", what, strerror(-r));
        }
        if (o->network_off && (r = loopback_up()) < 0)
                INIT_FAIL(a, -r, "bringing up the loopback interface");
        for (char *const *h = o->hide; h && *h; h++) {
                struct stat st;
                if (stat(*h, &st) < 0)
                        continue;   /* nothing there, nothing to hide */
                r = S_ISDIR(st.st_mode)
                        ? mount("secrets-run-hidden", *h, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                "size=4k,mode=0500")
                        : mount("/dev/null", *h, NULL, MS_BIND, NULL);
                if (r < 0) {
                        if (strict)
                                INIT_FAIL(a, errno, "covering %s", *h);
                        msg_send(a->sock, MSG_LAYER_MISSING, LAYER_HIDE, NULL, 0, "covering %s: %s", *h, strerror(errno));
                        break;
                }
        }

        /* compiled now, while the supervisor fetches: the step only loads it */
        struct seccomp_program filter = {};
        if (a->seccomp && (r = seccomp_build(o->allow_ptrace, &filter)) < 0)
                INIT_FAIL(a, -r, "compiling the seccomp filter");

        int dir_fd = open(o->secrets_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                INIT_FAIL(a, errno, "opening %s", o->secrets_dir);
        msg_send(a->sock, MSG_READY, 0, &dir_fd, 1, NULL);
        safe_close(dir_fd);

        /* the supervisor writes the files through that fd, then says what to run */
        struct msg m;
        int fds[MSG_MAX_FDS];
        size_t n_fds = 0;
        if (msg_recv(a->sock, &m, fds, &n_fds, 0) < 0 || m.kind != MSG_START || n_fds < 2)
                _exit(125);   /* the run was called off */
        char *spec = NULL;
        size_t spec_size = 0;
        char **argv = NULL, **envp = NULL;
        bool pty = false;
        if ((r = spec_read(fds[0], &spec, &spec_size, &argv, &envp, &pty)) < 0)
                INIT_FAIL(a, -r, "reading the command");
        safe_close(fds[0]);
        size_t guard_at = pty ? 2 : 3, first_delivery = guard_at + (m.value ? 1 : 0);
        if (n_fds < first_delivery)
                INIT_FAIL(a, EINVAL, "the start message");
        struct step st = {
                .argv = argv, .envp = envp, .stdin_fd = STDIN_FILENO, .out_fd = fds[1],
                .err_fd = pty ? -1 : fds[2], .pty = pty, .guard_sock = m.value ? fds[guard_at] : -1,
                .fds = fds + first_delivery, .n_fds = n_fds - first_delivery,
                .sandboxed = true, .seccomp = a->seccomp ? &filter : NULL,
                /* root keeps Docker's default capabilities, none at all in strict mode */
                .root_keeps_caps = a->uid == 0 && !strict,
        };

        sigset_t set;
        init_signals(&set);
        int sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
        if (sig_fd < 0)
                INIT_FAIL(a, errno, "signalfd");

        pid_t step;
        r = step_start(&st, &step);
        /* the step holds its ends now: EOF on the output pipes must mean the step's are shut */
        for (size_t i = 1; i < n_fds; i++)
                safe_close(fds[i]);
        free(argv);
        free(envp);
        explicit_bzero(spec, spec_size);   /* env deliveries were in it */
        free(spec);
        if (spawn_failed_before_exec(r)) {
                /* a layer, not the command: the supervisor says which and exits 125 */
                msg_send(a->sock, MSG_FATAL, spawn_errno(r), NULL, 0, "narrowing the step (capabilities, "
                         "no_new_privs, seccomp)");
                _exit(125);
        }
        if (r < 0) {
                msg_send(a->sock, MSG_EXEC_FAILED, -r, NULL, 0, NULL);
                _exit(0);
        }
        msg_send(a->sock, MSG_STARTED, 0, NULL, 0, NULL);

        /* reap everything (orphans are ours as pid 1); forward signals to the step's group */
        for (;;) {
                struct signalfd_siginfo si;
                ssize_t n = read(sig_fd, &si, sizeof si);
                if (n != (ssize_t) sizeof si)
                        continue;
                if ((int) si.ssi_signo != SIGCHLD) {
                        (void) kill(-step, (int) si.ssi_signo);
                        continue;
                }
                int wstatus;
                pid_t w;
                while ((w = waitpid(-1, &wstatus, WNOHANG)) > 0)
                        if (w == step) {
                                msg_send(a->sock, MSG_EXIT, wstatus, NULL, 0, NULL);
                                _exit(0);
                        }
        }
}

/* ---- the supervisor's side ---- */

/* Whether / is a mount point of this process's view: in a chroot into a plain directory it is
 * not (mountinfo lists no mount at "/"), and mount propagation cannot be changed there. */
static bool root_is_a_mount(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return true;   /* cannot tell: no claim */
        char line[4096];
        while (fgets(line, sizeof line, f)) {
                char point[8];
                if (sscanf(line, "%*s %*s %*s %*s %7s", point) == 1 && streq(point, "/"))
                        return true;
        }
        return false;
}

/* What this host does that explains a layer failing after the namespaces were created, and
 * the fix: Ubuntu 23.10+ (and GitHub's ubuntu-24.04 runners) let an unprivileged process
 * create a user namespace but give it no capabilities inside (AppArmor), a chroot cannot
 * change mount propagation, a container may refuse mounts. NULL if nothing is recognised. */
static const char *host_cause(int err) {
        char v[8] = "";
        _cleanup_close_ int fd = open("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && read(fd, v, sizeof v - 1) > 0 && v[0] == '1' && geteuid() != 0)
                return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): "
                       "install the secrets-run AppArmor profile (/etc/apparmor.d/secrets-run, in the Debian package) "
                       "or set the sysctl to 0";
        if (!root_is_a_mount())
                return "this is a chroot: its / is no mount point, so mounts cannot be made private in it (run in a "
                       "container or on the host)";
        if (err == EACCES)
                return "a security module refuses mounts in new namespaces (on Ubuntu 23.10+ AppArmor's "
                       "kernel.apparmor_restrict_unprivileged_userns: install the secrets-run AppArmor profile)";
        return NULL;
}

static const char *namespaces_hint(int e) {
        bool root = geteuid() == 0;
        if (e == EPERM && !root && !root_is_a_mount())
                return "not permitted: this is a chroot, where the kernel refuses new user namespaces (run in a "
                       "container or on the host)";
        switch (e) {
        case ENOSPC:
        case EUSERS:
                return "the limit of user namespaces is reached (sysctl user.max_user_namespaces)";
        case EPERM:
                /* creating namespaces as root takes CAP_SYS_ADMIN */
                if (root && !caps_effective_has(CAP_SYS_ADMIN))
                        return "not permitted: root without CAP_SYS_ADMIN (docker run --cap-drop=ALL, a restricted "
                               "Kubernetes pod, an enclosing strict run) cannot create namespaces";
                return root ? "not permitted (a container's seccomp profile or an enclosing sandbox refuses namespace flags)"
                            : "not permitted (unprivileged user namespaces are off: sysctl kernel.unprivileged_userns_clone, "
                              "kernel.apparmor_restrict_unprivileged_userns; or a seccomp profile refuses them)";
        case EINVAL:
                return "this kernel lacks a namespace type";
        default:
                return strerror(e);
        }
}

struct spawn_pipes {
        int out[2], err[2];   /* with a pty: out = master, slave; err unused */
};

static void pipes_close(struct spawn_pipes *p) {
        for (int i = 0; i < 2; i++) {
                p->out[i] = safe_close(p->out[i]);
                p->err[i] = safe_close(p->err[i]);
        }
}

static int pipes_open(const struct spawn_config *c, struct spawn_pipes *p) {
        *p = (struct spawn_pipes) { { -1, -1 }, { -1, -1 } };
        if (c->pty) {
                if (openpty(&p->out[0], &p->out[1], NULL, NULL, NULL) < 0)
                        return -errno;
                (void) fd_set_cloexec(p->out[0], true);
                (void) fd_set_cloexec(p->out[1], true);
                return 0;
        }
        if (c->merge_output) {
                /* one pipe for both: the step's writes stay in the order it made them */
                if (pipe2(p->out, O_CLOEXEC) < 0 || (p->err[1] = fcntl(p->out[1], F_DUPFD_CLOEXEC, 3)) < 0) {
                        int e = -errno;
                        pipes_close(p);
                        return e;
                }
                return 0;
        }
        if (pipe2(p->out, O_CLOEXEC) < 0 || pipe2(p->err, O_CLOEXEC) < 0) {
                int e = -errno;
                pipes_close(p);
                return e;
        }
        return 0;
}

/* The guardian: a small process that outlives a supervisor killed with SIGKILL just long
 * enough to kill the step's whole process group (plain mode only: in a pid namespace the
 * kernel does this). Its stdin is the read end of a pipe whose write end the supervisor
 * holds: EOF without a byte means the supervisor died. */
static int guardian_main(void *userdata) {
        const pid_t *pgid = userdata;
        char byte;
        ssize_t n;
        do
                n = read(STDIN_FILENO, &byte, 1);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                (void) kill(-*pgid, SIGKILL);
        return 0;
}

static int spawn_guardian(pid_t pgid, pid_t *ret_pid, int *ret_fd) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        /* the forwarded signals stay blocked, so a Ctrl-C to our process group does not take
         * it down while the step still runs */
        sigset_t blocked;
        sigemptyset(&blocked);
        for (size_t i = 0; i < n_forwarded_signals; i++)
                sigaddset(&blocked, forwarded_signals[i]);
        const struct spawn_fd fds[] = { { p[0], STDIN_FILENO } };
        struct spawn_spec s = {
                .run = guardian_main, .userdata = &pgid,
                /* nothing of the supervisor's stays open there, the step's pipes least of all */
                .fds = fds, .n_fds = ELEMENTSOF(fds),
                /* forked after the fetch: our memory holds every value, its copy must not */
                .wipe_secrets = true,
                .blocked = &blocked,
                .name = "secrets-run-grd",
                /* no parent-death signal: outliving us is its job */
        };
        pid_t pid;
        int r = spawn_process(&s, &pid);
        safe_close(p[0]);
        if (r < 0) {
                safe_close(p[1]);
                return r;
        }
        *ret_pid = pid;
        *ret_fd = p[1];
        return 0;
}

static void finish_child(struct child *ret, struct spawn_pipes *p, pid_t pid) {
        (void) fd_set_nonblock(p->out[0], true);
        if (p->err[0] >= 0)
                (void) fd_set_nonblock(p->err[0], true);
        ret->pid = pid;
        ret->stdout_fd = steal_fd(&p->out[0]);
        ret->stderr_fd = steal_fd(&p->err[0]);
}

struct sandbox {
        struct sandbox_options o;
        char *secrets_dir;
        bool namespaces;      /* else: the step is our plain child */
        bool seccomp;
        pid_t init_pid;
        int sock;
        int dir_fd;
};

struct sandbox *sandbox_free(struct sandbox *sb) {
        if (!sb)
                return NULL;
        if (sb->init_pid > 0) {
                /* never started (dry run, or the run was called off): take it all down */
                (void) kill(sb->init_pid, SIGKILL);
                (void) waitpid(sb->init_pid, NULL, 0);
        }
        safe_close(sb->sock);
        /* the private tmpfs goes with its namespace, and its pages are not zeroed when it
         * does: the delivered files are overwritten first (the host directory is wiped by
         * secrets_dir_remove) */
        if (sb->namespaces && sb->dir_fd >= 0)
                secrets_dir_wipe(sb->dir_fd);
        safe_close(sb->dir_fd);
        free(sb->secrets_dir);
        free(sb);
        return NULL;
}

/* Without namespaces the step's files go into the host directory: never one on disk. */
static int plain_mode_possible(const struct sandbox *sb, struct sandbox_status *st, const char *why) {
        if (!sb->o.secrets_dir_on_disk)
                return 0;
        /* the reason the namespaces are missing, after this one, as far as it fits */
        int n = snprintf(st->why, sizeof st->why, "no memory file system for the secrets on this host (no /dev/shm "
                         "tmpfs, $XDG_RUNTIME_DIR unset or not a tmpfs) and no mount namespace to make one");
        if (why && n > 0 && (size_t) n + 3 < sizeof st->why)
                snprintf(st->why + n, sizeof st->why - (size_t) n, ": %.*s", (int) (sizeof st->why - (size_t) n - 3), why);
        return -ENOTSUP;
}

/* The layers that need pid 1's namespaces, as missing for why. */
static void namespace_layers_missing(const struct sandbox *sb, struct sandbox_status *st, const char *why) {
        for (int l = LAYER_USER; l <= LAYER_HIDE; l++)
                if ((l != LAYER_USER || geteuid() != 0) && l != LAYER_NET &&
                    (l != LAYER_HIDE || (sb->o.hide && *sb->o.hide)))
                        status_missing(st, (enum sandbox_layer) l, "%s", why);
}

/* pid 1 could not build its namespaces (a mount refused, the id maps not writable): in auto
 * the run goes on as a plain child, with nothing half-built kept; strict and --network off
 * refuse. The reason names the host's cause when it is recognised. */
static int setup_failed(struct sandbox *sb, struct sandbox_status *st, const char *what, int err) {
        const char *cause = host_cause(err);
        char why[256];   /* room for the prefix below in st->why */
        snprintf(why, sizeof why, "%s%s%s", what, cause ? "; " : "", cause ? cause : "");
        if (sb->o.level == SANDBOX_LEVEL_STRICT || sb->o.network_off) {
                snprintf(st->why, sizeof st->why, "%s%s", sb->o.network_off && sb->o.level != SANDBOX_LEVEL_STRICT ?
                         "--network off needs a network namespace: " : "", why);
                return -ENOTSUP;
        }
        if (plain_mode_possible(sb, st, why) < 0)
                return -ENOTSUP;
        if (sb->init_pid > 0) {
                (void) kill(sb->init_pid, SIGKILL);
                (void) waitpid(sb->init_pid, NULL, 0);
                sb->init_pid = 0;
        }
        sb->sock = safe_close(sb->sock);
        sb->namespaces = false;
        st->active &= ~((1u << LAYER_NET) | (1u << LAYER_USER));
        namespace_layers_missing(sb, st, why);
        sb->dir_fd = open(sb->o.secrets_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return sb->dir_fd < 0 ? -errno : 0;
}

int sandbox_ready(struct sandbox *sb, struct sandbox_status *st) {
        if (!sb->namespaces || sb->dir_fd >= 0)
                return 0;
        /* the layers it could not have, or why it gave up */
        for (;;) {
                struct msg m;
                int fds[MSG_MAX_FDS];
                size_t n_fds = 0;
                int r = msg_recv(sb->sock, &m, fds, &n_fds, 0);
                if (r < 0)
                        return setup_failed(sb, st, "the sandbox's pid 1 exited during setup", 0);
                char what[sizeof m.text + 64];
                switch (m.kind) {
                case MSG_LAYER_MISSING:
                        status_missing(st, (enum sandbox_layer) m.value, "%s", m.text);
                        break;
                case MSG_FATAL:
                        snprintf(what, sizeof what, "%s: %s", m.text, strerror(m.value));
                        return setup_failed(sb, st, what, m.value);
                case MSG_READY:
                        if (n_fds != 1)
                                return -EPROTO;
                        sb->dir_fd = fds[0];
                        return 0;
                default:
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        return -EPROTO;
                }
        }
}

int sandbox_dir_fd(const struct sandbox *sb) {
        return sb->dir_fd;
}

/* Clones pid 1 into new namespaces. Returns -errno (with *ret_refused) if the kernel
 * refused them; nothing was started then. */
static int create_namespaces(struct sandbox *sb, struct sandbox_status *st, bool *ret_refused) {
        bool root = geteuid() == 0;
        unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
        if (!root)
                flags |= CLONE_NEWUSER;   /* the uid maps to itself */
        if (sb->o.network_off)
                flags |= CLONE_NEWNET;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* pid 1 keeps our stdin (the step's, unless it is a terminal), stdout and stderr;
         * one we do not have is /dev/null there, so no later fd of pid 1 takes its number */
        _cleanup_close_ int null_fd = -1;
        struct spawn_fd fds[] = { { STDIN_FILENO, STDIN_FILENO }, { STDOUT_FILENO, STDOUT_FILENO },
                                  { STDERR_FILENO, STDERR_FILENO }, { sv[1], INIT_SOCK_FD } };
        for (int i = 0; i < 3; i++)
                if (fcntl(i, F_GETFD) < 0) {
                        if (null_fd < 0 && (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
                                int e = -errno;
                                safe_close(sv[0]), safe_close(sv[1]);
                                return e;
                        }
                        fds[i].fd = null_fd;
                }
        struct init_args a = {
                .o = &sb->o, .sock = INIT_SOCK_FD, .uid = geteuid(), .gid = getegid(), .user_ns = !root,
                .seccomp = sb->seccomp,
        };
        sigset_t blocked;
        init_signals(&blocked);
        struct spawn_spec s = {
                .run = init_main, .userdata = &a,
                .clone_flags = flags,
                .fds = fds, .n_fds = ELEMENTSOF(fds),
                /* nothing of our environment: it holds the values the env backend reads and the
                 * backends' credentials until we scrub ours, after the fetch. The step's
                 * environment comes with MSG_START. */
                .envp = NULL,
                /* created before any secret is fetched, so this wipes nothing today; it keeps
                 * pid 1 clean should that order ever change */
                .wipe_secrets = true,
                /* out of the supervisor's session and process group: a terminal's Ctrl-C
                 * reaches the step once, forwarded by the supervisor, not a second time
                 * through us */
                .group = SPAWN_SESSION_NEW,
                /* outlive the supervisor by nothing: with us goes the whole namespace */
                .pdeathsig = SIGKILL,
                .blocked = &blocked,
                .name = "secrets-run-init",
        };
        pid_t pid;
        int r = spawn_process(&s, &pid);
        safe_close(sv[1]);
        if (r < 0) {
                safe_close(sv[0]);
                *ret_refused = true;
                return r;
        }
        sb->init_pid = pid;
        sb->sock = sv[0];
        st->active |= (1u << LAYER_MOUNT) | (1u << LAYER_PID) | (1u << LAYER_IPC) | (1u << LAYER_UTS) |
                      (1u << LAYER_PROC) | (1u << LAYER_SECRETS_FS);
        if (!root)
                st->active |= 1u << LAYER_USER;
        if (sb->o.network_off)
                st->active |= 1u << LAYER_NET;
        if (sb->o.hide && *sb->o.hide)
                st->active |= 1u << LAYER_HIDE;

        /* pid 1 sets up its mounts while we go on fetching: sandbox_ready() waits for it */
        return 0;
}

int sandbox_create(const struct sandbox_options *o, struct sandbox **ret, struct sandbox_status *st) {
        *st = (struct sandbox_status) {};
        struct sandbox *sb = calloc(1, sizeof(*sb));
        if (!sb)
                return -ENOMEM;
        sb->o = *o;
        sb->sock = sb->dir_fd = -1;
        if (!(sb->secrets_dir = strdup(o->secrets_dir)))
                return sandbox_free(sb), -ENOMEM;
        sb->o.secrets_dir = sb->secrets_dir;

        int r = 0;
        if (o->level != SANDBOX_LEVEL_OFF) {
                sb->seccomp = seccomp_available();
                st->active |= 1u << LAYER_CAPS;
                if (sb->seccomp)
                        st->active |= 1u << LAYER_SECCOMP;
                else if (o->level == SANDBOX_LEVEL_STRICT) {
                        snprintf(st->why, sizeof st->why, "seccomp: this kernel does not support it (CONFIG_SECCOMP_FILTER)");
                        r = -ENOTSUP;
                } else
                        status_missing(st, LAYER_SECCOMP, "this kernel has no seccomp filter support");
                bool refused = false;
                if (r == 0)
                        r = create_namespaces(sb, st, &refused);
                if (refused) {
                        char why[256];
                        snprintf(why, sizeof why, "cannot create namespaces: %s", namespaces_hint(-r));
                        if (o->level == SANDBOX_LEVEL_STRICT || o->network_off) {
                                snprintf(st->why, sizeof st->why, "%s%s", o->network_off && o->level != SANDBOX_LEVEL_STRICT ?
                                         "--network off needs a network namespace: " : "", why);
                                r = -ENOTSUP;
                        } else {
                                namespace_layers_missing(sb, st, why);
                                r = plain_mode_possible(sb, st, why);   /* auto: the step runs as our plain child */
                        }
                } else if (r == 0)
                        sb->namespaces = true;
        } else
                r = plain_mode_possible(sb, st, "--sandbox off");
        if (r < 0)
                return sandbox_free(sb), r;
        if (!sb->namespaces) {
                sb->dir_fd = open(o->secrets_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sb->dir_fd < 0)
                        return r = -errno, sandbox_free(sb), r;
        }
        *ret = sb;
        return 0;
}

/* Without namespaces: the step is our child. */
static int spawn_plain(struct sandbox *sb, const struct spawn_config *c, struct child *ret,
                       struct sandbox_status *status) {
        struct spawn_pipes p;
        int r = pipes_open(c, &p);
        if (r < 0)
                return r;
        int pty_fd = -1;
        if (c->pty && (pty_fd = fcntl(p.out[0], F_DUPFD_CLOEXEC, 3)) < 0) {
                r = -errno;
                pipes_close(&p);
                return r;
        }
        bool sandboxed = sb->o.level != SANDBOX_LEVEL_OFF;
        struct seccomp_program filter = {};
        if (sandboxed && sb->seccomp && (r = seccomp_build(sb->o.allow_ptrace, &filter)) < 0) {
                pipes_close(&p), safe_close(pty_fd);
                return r;
        }
        int guard[2] = { -1, -1 };
        if (c->guard && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, guard) < 0) {
                r = -errno;
                seccomp_program_done(&filter);
                pipes_close(&p), safe_close(pty_fd);
                return r;
        }
        struct step st = {
                .argv = c->argv, .envp = c->envp, .stdin_fd = STDIN_FILENO, .out_fd = p.out[1],
                .err_fd = c->pty ? -1 : p.err[1], .pty = c->pty, .fds = c->fds, .n_fds = c->n_fds,
                .sandboxed = sandboxed, .seccomp = sandboxed && sb->seccomp ? &filter : NULL,
                .root_keeps_caps = geteuid() == 0 && sb->o.level != SANDBOX_LEVEL_STRICT,
                .guard_sock = guard[1],
        };
        pid_t pid;
        r = step_start(&st, &pid);
        seccomp_program_done(&filter);
        safe_close(guard[1]);
        p.out[1] = safe_close(p.out[1]);
        p.err[1] = safe_close(p.err[1]);
        if (spawn_failed_before_exec(r)) {
                snprintf(status->why, sizeof status->why, "narrowing the step (capabilities, no_new_privs, seccomp): %s",
                         strerror(spawn_errno(r)));
                r = -ENOTSUP;
        }
        if (r < 0) {
                pipes_close(&p), safe_close(pty_fd), safe_close(guard[0]);
                return r;
        }
        pid_t guardian_pid = 0;
        int guardian_fd = -1;
        if ((r = spawn_guardian(pid, &guardian_pid, &guardian_fd)) < 0) {
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                pipes_close(&p), safe_close(pty_fd), safe_close(guard[0]);
                return r;
        }
        *ret = CHILD_NULL;
        finish_child(ret, &p, pid);
        ret->merged = c->merge_output && !c->pty;
        ret->guardian_pid = guardian_pid;
        ret->guardian_fd = guardian_fd;
        ret->pty_fd = pty_fd;
        ret->guard_fd = guard[0];
        return 0;
}

int sandbox_spawn(struct sandbox *sb, const struct spawn_config *c, struct child *ret, struct sandbox_status *st) {
        if (c->n_fds > DELIVERY_MAX_FDS)
                return -EMFILE;
        if (!sb->namespaces)
                return spawn_plain(sb, c, ret, st);

        struct spawn_pipes p;
        int r = pipes_open(c, &p);
        if (r < 0)
                return r;
        _cleanup_close_ int spec = spec_write(c);
        if (spec < 0) {
                pipes_close(&p);
                return spec;
        }
        _cleanup_close_ int guard_ours = -1;
        int guard_theirs = -1;
        if (c->guard) {
                int pair[2];
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                        r = -errno;
                        pipes_close(&p);
                        return r;
                }
                guard_ours = pair[0], guard_theirs = pair[1];
        }
        int fds[MSG_MAX_FDS];
        size_t n = 0;
        fds[n++] = spec;
        fds[n++] = p.out[1];
        if (!c->pty)
                fds[n++] = p.err[1];
        if (guard_theirs >= 0)
                fds[n++] = guard_theirs;
        for (size_t i = 0; i < c->n_fds; i++)
                fds[n++] = c->fds[i];
        r = msg_send(sb->sock, MSG_START, guard_theirs >= 0, fds, n, NULL);
        /* pid 1 has its own copies now: EOF on our read ends must mean the step's side is shut */
        p.out[1] = safe_close(p.out[1]);
        p.err[1] = safe_close(p.err[1]);
        safe_close(guard_theirs);
        if (r < 0) {
                pipes_close(&p);
                return r;
        }
        struct msg m;
        for (;;) {
                r = msg_recv(sb->sock, &m, NULL, NULL, 0);
                if (r < 0) {
                        snprintf(st->why, sizeof st->why, "the sandbox's pid 1 exited before starting the command");
                        pipes_close(&p);
                        return -ENOTSUP;
                }
                if (m.kind == MSG_STARTED)
                        break;
                pipes_close(&p);
                if (m.kind == MSG_EXEC_FAILED) {
                        (void) waitpid(sb->init_pid, NULL, 0);
                        sb->init_pid = 0;
                        return -m.value;
                }
                snprintf(st->why, sizeof st->why, "%s: %s", m.text, strerror(m.value));
                return -ENOTSUP;
        }
        int pty_fd = -1;
        if (c->pty && (pty_fd = fcntl(p.out[0], F_DUPFD_CLOEXEC, 3)) < 0) {
                r = -errno;
                pipes_close(&p);
                return r;
        }
        *ret = CHILD_NULL;
        finish_child(ret, &p, sb->init_pid);
        ret->merged = c->merge_output && !c->pty;
        ret->init = true;
        ret->report_fd = steal_fd(&sb->sock);
        ret->pty_fd = pty_fd;
        ret->guard_fd = steal_fd(&guard_ours);
        sb->init_pid = 0;   /* the child owns it now */
        return 0;
}

/* ---- the running child ---- */

void child_signal(struct child *c, int sig) {
        if (c->pid <= 0)
                return;
        if (c->init) {
                (void) kill(c->pid, sig);   /* pid 1 passes it on to the step's group */
                return;
        }
        if (kill(-c->pid, sig) < 0 && errno == ESRCH)
                (void) kill(c->pid, sig);
}

void child_kill(struct child *c) {
        if (c->pid <= 0)
                return;
        /* for pid 1 this is the whole namespace */
        (void) kill(c->init ? c->pid : -c->pid, SIGKILL);
}

int child_reap(struct child *c, int *ret_wstatus) {
        int wstatus;
        pid_t w = waitpid(c->pid, &wstatus, WNOHANG);
        if (w != c->pid)
                return 0;
        if (c->init) {
                /* pid 1 reported the step's status before it exited; if it did not (it was
                 * killed), its own status stands */
                struct msg m;
                while (msg_recv(c->report_fd, &m, NULL, NULL, MSG_DONTWAIT) == 0)
                        if (m.kind == MSG_EXIT)
                                wstatus = m.value;
        }
        c->pid = -1;
        *ret_wstatus = wstatus;
        return 1;
}

void child_release(struct child *c) {
        c->guard_fd = safe_close(c->guard_fd);
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
        c->report_fd = safe_close(c->report_fd);
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
