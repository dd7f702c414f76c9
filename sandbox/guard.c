/* The output guard's kernel side: a seccomp filter that sends the step's opens for writing,
 * renames, unlinks and connects to a listener in the supervisor, and the thread that reads
 * each call's arguments out of the calling process and lets the call continue.
 *
 * Observation only. The kernel's documentation of seccomp user notification says it cannot
 * implement a security policy: the path we read from the process's memory can be changed by
 * another of its threads before the kernel reads it again, so a hostile step can write where
 * we did not look. What the guard is for is the accident (a token echoed into ~/.npmrc or
 * $GITHUB_OUTPUT), and an accident does not race us. So it never refuses a call. */
#include <assert.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <dirent.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/param.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/uio.h>

#include "sandbox-private.h"

#if defined(__x86_64__)
#define GUARD_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define GUARD_ARCH AUDIT_ARCH_AARCH64
#endif

/* Linux 6.6; Debian 12's headers predate it */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

/* an open that can change a file's bytes; O_APPEND alone needs one of the first two */
#define WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

/* the low 32 bits of argument i (the flags of open(2) are an int) */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LOW(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t))
#else
#define ARG_LOW(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t) + sizeof(uint32_t))
#endif

#ifdef GUARD_ARCH
/* Calls sent to the listener whatever their arguments. */
static const int notified_always[] = {
#ifdef __NR_creat
        __NR_creat,
#endif
#ifdef __NR_rename
        __NR_rename,
#endif
#ifdef __NR_unlink
        __NR_unlink,
#endif
        __NR_openat2, __NR_renameat, __NR_renameat2, __NR_unlinkat, __NR_connect,
};

#define MAX_GUARD_INSNS 40

/* BPF_STMT with every field named, for -Wmissing-field-initializers */
#define STMT(code_, k_) { .code = (code_), .jt = 0, .jf = 0, .k = (k_) }

/* The filter, written out by hand: a dozen comparisons, where libseccomp would cost a
 * compile on every run. Layout: the arch and number checks, one jump per notified call,
 * ALLOW, the two flag tests (openat's flags are its third argument, open's its second),
 * NOTIFY, ALLOW. */
static size_t guard_program(struct sock_filter *code) {
        size_t n = 0, n_always = ELEMENTSOF(notified_always);
#ifdef __NR_open
        bool has_open = true;
#else
        bool has_open = false;
#endif
        /* label positions, known from the counts */
        size_t checks = 3 + 1 + has_open + n_always;   /* up to and including the last JEQ */
        size_t allow_mid = checks, openat_flags = allow_mid + 1, open_flags = openat_flags + 2;
        size_t notify = open_flags + (has_open ? 2 : 0), allow = notify + 1;
#define JUMP_TO(label) ((uint8_t) ((label) - (n + 1)))
        code[n] = (struct sock_filter) STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
        n++;
        code[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, GUARD_ARCH, 0, JUMP_TO(allow));
        n++;
        code[n] = (struct sock_filter) STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        n++;
        code[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, JUMP_TO(openat_flags), 0);
        n++;
#ifdef __NR_open
        code[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, JUMP_TO(open_flags), 0);
        n++;
#endif
        for (size_t i = 0; i < n_always; i++, n++)
                code[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t) notified_always[i],
                                                       JUMP_TO(notify), 0);
        code[n] = (struct sock_filter) STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        n++;
        code[n] = (struct sock_filter) STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(2));
        n++;
        code[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, WRITE_FLAGS, JUMP_TO(notify), JUMP_TO(allow));
        n++;
#ifdef __NR_open
        code[n] = (struct sock_filter) STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(1));
        n++;
        code[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, WRITE_FLAGS, JUMP_TO(notify), JUMP_TO(allow));
        n++;
#endif
        code[n] = (struct sock_filter) STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
        n++;
        code[n] = (struct sock_filter) STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        n++;
#undef JUMP_TO
        assert(n == allow + 1 && n <= MAX_GUARD_INSNS);
        return n;
}
#endif

/* ---- in the step, before its own deny filter ---- */

static int send_listener(int sock, int err, int listener) {
        struct iovec iov = { &err, sizeof err };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (listener >= 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof control.buf;
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &listener, sizeof(int));
        }
        ssize_t n;
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : 0;
}

int guard_install(int sock) {
        int listener = -1, err = EOPNOTSUPP;
#ifdef GUARD_ARCH
        struct sock_filter code[MAX_GUARD_INSNS];
        struct sock_fprog prog = { .len = (unsigned short) guard_program(code), .filter = code };
        /* a non-fatal signal to a process waiting on us does not restart its call over and
         * over (Linux 5.19); older kernels refuse the flag and get the plain filter */
        listener = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                 SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
        if (listener < 0 && errno == EINVAL)
                listener = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        err = listener < 0 ? errno : 0;
#endif
        /* the guard is not a wall: without it the step still runs, and the supervisor says why */
        (void) send_listener(sock, err, listener);
        safe_close(listener);
        return 0;
}

const char *guard_unavailable_why(int err) {
        switch (err) {
        case EBUSY:
                return "an enclosing supervisor (an outer secrets-run) already watches this process; its guard covers the step";
        case EOPNOTSUPP:
                return "not built for this architecture";
        case EINVAL:
        case ENOSYS:
                return "this kernel has no seccomp user notification (Linux 5.0)";
        case EACCES:
        case EPERM:
                return "seccomp filters are refused here";
        default:
                return strerror(err);
        }
}

/* ---- the first open of each secret file ----
 * With fanotify permission events where we may (CAP_SYS_ADMIN): the opener waits until we
 * have read its name, so even a `cat` that is gone a millisecond later is named. Without,
 * inotify: which file was opened is certain, which program best effort (the one holding it
 * open when we look). Set up before the step starts, so no open comes before the watch. */
struct guard_reads {
        int fd;
        bool fanotify;
        int dir_fd;
        size_t n;
        char **names;
        ino_t *inos;
        int *wds;                /* inotify: each file's watch */
        bool *seen;
};

static struct guard_reads *guard_reads_free(struct guard_reads *w) {
        if (!w)
                return NULL;
        safe_close(w->fd);
        safe_close(w->dir_fd);
        for (size_t i = 0; i < w->n; i++)
                free(w->names[i]);
        free(w->names);
        free(w->inos);
        free(w->wds);
        free(w->seen);
        free(w);
        return NULL;
}

void guard_reads_freep(struct guard_reads **w) {
        *w = guard_reads_free(*w);
}

static int reads_mark(struct guard_reads *w, size_t i) {
        if (w->fanotify)
                return fanotify_mark(w->fd, FAN_MARK_ADD, FAN_OPEN_PERM, w->dir_fd, w->names[i]) < 0 ? -errno : 0;
        char path[64 + NAME_MAX];
        snprintf(path, sizeof path, "/proc/self/fd/%d/%s", w->dir_fd, w->names[i]);
        w->wds[i] = inotify_add_watch(w->fd, path, IN_OPEN | IN_ONESHOT);
        return w->wds[i] < 0 ? -errno : 0;
}

int guard_reads_new(int dir_fd, char *const *names, struct guard_reads **ret) {
        size_t n = 0;
        while (names && names[n])
                n++;
        if (n == 0)
                return 0;
        struct guard_reads *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (struct guard_reads) { .fd = -1, .dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3),
                                    .names = calloc(n, sizeof(char *)), .inos = calloc(n, sizeof(ino_t)),
                                    .wds = calloc(n, sizeof(int)), .seen = calloc(n, sizeof(bool)) };
        int r = -ENOMEM;
        if (w->dir_fd < 0 || !w->names || !w->inos || !w->wds || !w->seen)
                goto fail;
        w->fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
        w->fanotify = w->fd >= 0;
        if (w->fd < 0 && (w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0) {
                r = -errno;
                goto fail;
        }
        for (; w->n < n; w->n++) {
                struct stat st;
                if (!(w->names[w->n] = strdup(names[w->n])))
                        goto fail;
                if (fstatat(dir_fd, names[w->n], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = -errno;
                        w->n++;
                        goto fail;
                }
                w->inos[w->n] = st.st_ino;
                if ((r = reads_mark(w, w->n)) < 0) {
                        w->n++;
                        goto fail;
                }
        }
        *ret = w;
        return 0;
fail:
        guard_reads_free(w);
        return r;
}

bool guard_reads_exact(const struct guard_reads *w) {
        return w && w->fanotify;
}

/* Which program holds the file with inode ino open, looked for among every process we can
 * see (inotify does not say who opened it). */
static bool find_holder(dev_t dev, ino_t ino, pid_t *ret_pid) {
        _cleanup_closedir_ DIR *proc = opendir("/proc");
        struct dirent *e;
        while (proc && (e = readdir(proc))) {
                pid_t pid = (pid_t) atoi(e->d_name);
                if (pid <= 0 || pid == getpid())
                        continue;
                char fds[64];
                snprintf(fds, sizeof fds, "/proc/%d/fd", (int) pid);
                _cleanup_closedir_ DIR *d = opendir(fds);
                struct dirent *f;
                while (d && (f = readdir(d))) {
                        struct stat st;
                        if (f->d_name[0] != '.' && fstatat(dirfd(d), f->d_name, &st, 0) == 0 &&
                            st.st_dev == dev && st.st_ino == ino) {
                                *ret_pid = pid;
                                return true;
                        }
                }
        }
        return false;
}

/* ---- the supervisor's side ---- */

/* What one notified call names, read while its caller waits. */
struct call {
        char path[PATH_MAX], target[PATH_MAX];
        struct sockaddr_storage addr;
        char comm[32];
};


struct guard {
        pthread_t thread;
        int listener;           /* -1: no listener (only the reads are watched) */
        struct guard_reads *reads;
        int stop_fd;            /* an eventfd: the step is over */
        guard_event_fn fn;
        void *userdata;
        struct seccomp_notif_sizes sizes;
        uint64_t notifications;
        struct call call;       /* the thread's one notification at a time */
};

/* Reads a NUL-terminated string at addr in pid's memory, a page at a time (the string may
 * end just before an unmapped page). */
static int read_string(pid_t pid, uint64_t addr, char *buf, size_t size) {
        size_t done = 0;
        while (done + 1 < size) {
                size_t page_left = 4096 - (size_t) ((addr + done) & 4095);
                size_t want = MIN(page_left, size - 1 - done);
                struct iovec local = { buf + done, want };
                struct iovec remote = { (void *) (uintptr_t) (addr + done), want };
                ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
                if (n <= 0)
                        return n < 0 ? -errno : -EFAULT;
                char *nul = memchr(buf + done, '\0', (size_t) n);
                if (nul)
                        return 0;
                done += (size_t) n;
        }
        return -ENAMETOOLONG;
}

static int read_link(pid_t pid, const char *what, char *buf, size_t size) {
        char link[64];
        snprintf(link, sizeof link, "/proc/%d/%s", (int) pid, what);
        ssize_t n = readlink(link, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return buf[0] == '/' ? 0 : -ENOENT;   /* "pipe:[…]", "anon_inode:…": no path */
}

/* Lexically: "a/./b//c/../d" → "a/b/d", in place, for an absolute path. */
static void normalize(char *path) {
        char *out = path;
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                const char *end = strchrnul(p, '/');
                size_t len = (size_t) (end - p);
                if (len == 0 || (len == 1 && p[0] == '.')) {
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        while (out > path && *--out != '/')
                                ;
                } else {
                        *out++ = '/';
                        memmove(out, p, len);
                        out += len;
                }
                p = end;
        }
        if (out == path)
                *out++ = '/';
        *out = '\0';
}

/* The absolute path, as the step sees it, of `name` relative to dirfd in pid. */
static int resolve_at(pid_t pid, int dirfd, uint64_t name_addr, char *out, size_t size) {
        char name[PATH_MAX];
        int r = read_string(pid, name_addr, name, sizeof name);
        if (r < 0)
                return r;
        if (name[0] == '/')
                snprintf(out, size, "%s", name);
        else {
                char fdname[32], base[PATH_MAX];
                if (dirfd == AT_FDCWD)
                        snprintf(fdname, sizeof fdname, "cwd");
                else
                        snprintf(fdname, sizeof fdname, "fd/%d", dirfd);
                if ((r = read_link(pid, fdname, base, sizeof base)) < 0)
                        return r;
                if ((size_t) snprintf(out, size, "%s/%s", base, name) >= size)
                        return -ENAMETOOLONG;
        }
        normalize(out);
        return 0;
}

static void read_comm(pid_t pid, char *buf, size_t size);

const char *guard_event_program(const struct guard_event *e) {
        if (e->comm)
                return e->comm;
        /* the caller waits on us: /proc/PID/comm is still its */
        if (!e->comm_buf[0])
                read_comm(e->pid, e->comm_buf, e->comm_size);
        return e->comm_buf;
}

static void read_comm(pid_t pid, char *buf, size_t size) {
        char p[48];
        snprintf(p, sizeof p, "/proc/%d/comm", (int) pid);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
        if (n <= 0) {
                snprintf(buf, size, "?");
                return;
        }
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
}

/* 0: an event in *e; 1: the call is not one the guard records (an openat2 that only
 * reads, rmdir); -errno: its arguments could not be read (the call fails by itself). */
static int read_call(const struct seccomp_notif *req, struct call *c, struct guard_event *e) {
        pid_t pid = (pid_t) req->pid;
        const __u64 *a = req->data.args;
        int nr = req->data.nr, r;
        c->comm[0] = '\0';
        *e = (struct guard_event) { .pid = pid, .path = c->path, .comm_buf = c->comm, .comm_size = sizeof c->comm };
#ifdef __NR_open
        if (nr == __NR_open)
                return e->kind = GUARD_WRITE, resolve_at(pid, AT_FDCWD, a[0], c->path, sizeof c->path);
#endif
#ifdef __NR_creat
        if (nr == __NR_creat)
                return e->kind = GUARD_WRITE, resolve_at(pid, AT_FDCWD, a[0], c->path, sizeof c->path);
#endif
#ifdef __NR_rename
        if (nr == __NR_rename) {
                e->kind = GUARD_RENAME, e->target = c->target;
                if ((r = resolve_at(pid, AT_FDCWD, a[0], c->path, sizeof c->path)) < 0)
                        return r;
                return resolve_at(pid, AT_FDCWD, a[1], c->target, sizeof c->target);
        }
#endif
#ifdef __NR_unlink
        if (nr == __NR_unlink)
                return e->kind = GUARD_REMOVE, resolve_at(pid, AT_FDCWD, a[0], c->path, sizeof c->path);
#endif
        if (nr == __NR_openat)
                return e->kind = GUARD_WRITE, resolve_at(pid, (int) a[0], a[1], c->path, sizeof c->path);
        if (nr == __NR_openat2) {
                struct open_how how = {};
                struct iovec local = { &how, sizeof how.flags }, remote = { (void *) (uintptr_t) a[2], sizeof how.flags };
                if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t) sizeof how.flags)
                        return -EFAULT;
                if (!(how.flags & WRITE_FLAGS))
                        return 1;
                return e->kind = GUARD_WRITE, resolve_at(pid, (int) a[0], a[1], c->path, sizeof c->path);
        }
        if (nr == __NR_renameat || nr == __NR_renameat2) {
                e->kind = GUARD_RENAME, e->target = c->target;
                e->exchange = nr == __NR_renameat2 && (a[4] & RENAME_EXCHANGE);
                e->noreplace = nr == __NR_renameat2 && (a[4] & RENAME_NOREPLACE);
                if ((r = resolve_at(pid, (int) a[0], a[1], c->path, sizeof c->path)) < 0)
                        return r;
                return resolve_at(pid, (int) a[2], a[3], c->target, sizeof c->target);
        }
        if (nr == __NR_unlinkat) {
                if (a[2] & AT_REMOVEDIR)
                        return 1;   /* a directory is empty when it goes: nothing to scan */
                return e->kind = GUARD_REMOVE, resolve_at(pid, (int) a[0], a[1], c->path, sizeof c->path);
        }
        if (nr == __NR_connect) {
                socklen_t len = (socklen_t) MIN(a[2], sizeof c->addr);
                struct iovec local = { &c->addr, len }, remote = { (void *) (uintptr_t) a[1], len };
                if (len < sizeof(sa_family_t) || process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t) len)
                        return -EFAULT;
                e->kind = GUARD_CONNECT, e->path = NULL, e->addr = (const struct sockaddr *) &c->addr, e->addr_len = len;
                return 0;
        }
        return 1;
}

static void handle(struct guard *g, struct seccomp_notif *req, struct seccomp_notif_resp *resp) {
        struct call *c = &g->call;
        struct guard_event e;
        int r = read_call(req, c, &e);
        /* the pid we read from is still the caller, waiting on us: what we read is its */
        if (r == 0 && ioctl(g->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) == 0) {
                g->fn(g->userdata, &e);
        }
        memset(resp, 0, g->sizes.seccomp_notif_resp);
        resp->id = req->id;
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        /* ENOENT: the caller was interrupted (a signal) or died; nothing waits any more */
        (void) ioctl(g->listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
        g->notifications++;
}

static void report_read(struct guard *g, size_t i, pid_t pid) {
        struct guard_reads *w = g->reads;
        if (w->seen[i])
                return;
        w->seen[i] = true;
        char comm[32] = "";
        if (pid > 0)
                read_comm(pid, comm, sizeof comm);
        struct guard_event e = { .kind = GUARD_READ, .pid = pid, .comm = pid > 0 ? comm : NULL, .path = w->names[i] };
        g->fn(g->userdata, &e);
}

static void fanotify_ready(struct guard *g) {
        struct guard_reads *w = g->reads;
        char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
        ssize_t len;
        while ((len = read(w->fd, buf, sizeof buf)) > 0) {
                struct fanotify_event_metadata *m = (void *) buf;
                for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
                        if (m->fd < 0)
                                continue;   /* the queue overflowed: nothing waits on it */
                        struct stat st;
                        size_t i = w->n;
                        if (fstat(m->fd, &st) == 0)
                                for (i = 0; i < w->n && w->inos[i] != st.st_ino; i++)
                                        ;
                        /* the opener waits for this answer: its name first, then let it go */
                        if (i < w->n && m->pid != getpid())
                                report_read(g, i, m->pid);
                        struct fanotify_response ok = { .fd = m->fd, .response = FAN_ALLOW };
                        (void) !write(w->fd, &ok, sizeof ok);
                        close(m->fd);
                        /* the first open is the one on record: later ones cost nothing */
                        if (i < w->n)
                                (void) fanotify_mark(w->fd, FAN_MARK_REMOVE, FAN_OPEN_PERM, w->dir_fd, w->names[i]);
                }
        }
}

static void inotify_ready(struct guard *g) {
        struct guard_reads *w = g->reads;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t len;
        while ((len = read(w->fd, buf, sizeof buf)) > 0)
                for (char *p = buf; p < buf + len; p += sizeof(struct inotify_event) + ((struct inotify_event *) p)->len) {
                        const struct inotify_event *ev = (const void *) p;
                        if (!(ev->mask & IN_OPEN))
                                continue;
                        for (size_t i = 0; i < w->n; i++)
                                if (w->wds[i] == ev->wd) {
                                        struct stat st;
                                        pid_t pid = 0;
                                        if (fstatat(w->dir_fd, w->names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
                                                (void) find_holder(st.st_dev, st.st_ino, &pid);
                                        report_read(g, i, pid);
                                }
                }
}

static void *guard_main(void *userdata) {
        struct guard *g = userdata;
        _cleanup_free_ struct seccomp_notif *req = calloc(1, MAX(g->sizes.seccomp_notif, sizeof *req));
        _cleanup_free_ struct seccomp_notif_resp *resp = calloc(1, MAX(g->sizes.seccomp_notif_resp, sizeof *resp));
        if (!req || !resp)
                return NULL;   /* the listener closes at guard_stop: the step's calls go on */
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);   /* signals are the main thread's */
        /* a negative fd is left out by poll(): the listener or the reads may be missing */
        struct pollfd p[3] = { { g->stop_fd, POLLIN, 0 }, { g->listener, POLLIN, 0 },
                               { g->reads ? g->reads->fd : -1, POLLIN, 0 } };
        for (;;) {
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents)
                        break;
                if (p[2].revents & POLLIN)
                        (g->reads->fanotify ? fanotify_ready : inotify_ready)(g);
                if (p[1].revents & POLLIN) {
                        memset(req, 0, g->sizes.seccomp_notif);   /* the kernel insists */
                        if (ioctl(g->listener, SECCOMP_IOCTL_NOTIF_RECV, req) == 0)
                                handle(g, req, resp);
                } else if (p[1].revents & (POLLHUP | POLLERR))
                        p[1].fd = -1;   /* every process under the filter is gone */
        }
        return NULL;
}

/* The listener (or why there is none) the step sent before it exec'd: already queued. */
static int receive_listener(int sock, int *ret_fd) {
        int err = 0;
        struct iovec iov = { &err, sizeof err };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n != (ssize_t) sizeof err)
                return n < 0 ? -errno : -EPIPE;
        int fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (err) {
                safe_close(fd);
                return -err;
        }
        if (fd < 0)
                return -EPIPE;
        *ret_fd = fd;
        return 0;
}

int guard_start(int sock, struct guard_reads *reads, guard_event_fn fn, void *userdata, struct guard **ret,
                int *ret_listener_err) {
        _cleanup_(guard_reads_freep) struct guard_reads *w = reads;
        _cleanup_close_ int listener = -1;
        int listener_err = -receive_listener(sock, &listener), r;
        if (listener_err && !w)
                return -listener_err;
        struct guard *g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        *g = (struct guard) { .listener = -1, .stop_fd = -1, .fn = fn, .userdata = userdata };
        if (listener >= 0 && syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &g->sizes) < 0) {
                r = -errno;
                goto fail;
        }
        if ((g->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
                r = -errno;
                goto fail;
        }
        /* each call waits for our answer and we for the next call: a synchronous exchange, which
         * the kernel can hand over on one CPU instead of two wake-ups (Linux 6.6; older kernels
         * refuse the ioctl and keep the ordinary wake-ups) */
        if (listener >= 0)
                (void) ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
        g->listener = steal_fd(&listener);
        g->reads = steal_pointer(&w);
        /* its own thread, so relaying output never delays an open, and an open never waits
         * for the output loop */
        if ((r = -pthread_create(&g->thread, NULL, guard_main, g)) < 0)
                goto fail;
        *ret = g;
        *ret_listener_err = listener_err;
        return 0;
fail:
        safe_close(g->stop_fd);
        safe_close(g->listener);
        guard_reads_free(g->reads);
        free(g);
        return r;
}

uint64_t guard_stop(struct guard *g) {
        if (!g)
                return 0;
        uint64_t one = 1;
        (void) !write(g->stop_fd, &one, sizeof one);
        pthread_join(g->thread, NULL);
        /* a process the step left behind now gets ENOSYS for the calls we watched, and opens
         * its secret files without waiting for us */
        safe_close(g->listener);
        safe_close(g->stop_fd);
        guard_reads_free(g->reads);
        uint64_t n = g->notifications;
        free(g);
        return n;
}

/* In a child of its own: whether the guard's filter can be installed here (a kernel without
 * user notification, or an enclosing listener, refuses it). */
static int probe_main(void *userdata) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return errno;
#ifdef GUARD_ARCH
        struct sock_filter code[MAX_GUARD_INSNS];
        struct sock_fprog prog = { .len = (unsigned short) guard_program(code), .filter = code };
        int fd = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        return fd < 0 ? errno : 0;
#else
        return EOPNOTSUPP;
#endif
}

int guard_probe(void) {
        struct spawn_spec s = { .run = probe_main, .pdeathsig = SIGKILL, .wipe_secrets = true, .name = "guard-probe" };
        pid_t pid;
        int r = spawn_process(&s, &pid), wstatus;
        if (r < 0)
                return r;
        if (waitpid(pid, &wstatus, 0) < 0)
                return -errno;
        return WIFEXITED(wstatus) ? -WEXITSTATUS(wstatus) : -ECHILD;
}
