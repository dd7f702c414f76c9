/* The artifact scan: which files to look at after the step (policy) and scanning them with
 * the run's matcher; leaks go to the reports of output.c. */
#include <dirent.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "agent.h"
#include "run.h"
#include "output.h"
#include "redact.h"

#define WALK_MAX_DEPTH 64

struct file_ctx {
        const char *path;
};

static void file_leak(void *userdata, const struct redact_leak *leak) {
        const struct file_ctx *c = userdata;
        report_leak(leak, c->path);
}

/* A limit reached or a damaged archive: the scan goes on with what it could read. */
static void file_warning(void *userdata, const char *member, const char *message) {
        const struct file_ctx *c = userdata;
        log_warning("scan: %s%s%s: %s", c->path, member ? "!" : "", member ? member : "", message);
}

/* The kernel's own file systems hold no artifact, and reading their files can block or have
 * effects: a walk from / (a step run at the root, a chroot) does not go into them. */
static bool kernel_fs(int fd) {
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return false;
        switch ((unsigned long) sf.f_type) {
        case PROC_SUPER_MAGIC:
        case SYSFS_MAGIC:
        case DEVPTS_SUPER_MAGIC:
        case CGROUP_SUPER_MAGIC:
        case CGROUP2_SUPER_MAGIC:
        case DEBUGFS_MAGIC:
        case TRACEFS_MAGIC:
        case SECURITYFS_MAGIC:
        case BPF_FS_MAGIC:
        case PSTOREFS_MAGIC:
        case EFIVARFS_MAGIC:
                return true;
        default:
                return false;
        }
}

/* Opens name for scanning: 0 and the fd for a regular file of an ordinary file system, 1 for
 * anything else, -errno. A walk does not follow symlinks (their targets are scanned by their
 * own names, or are not artifacts); a path named by the user, or written to by the step,
 * is followed. */
static int open_for_scan(int dir_fd, const char *name, bool follow, int *ret_fd, struct stat *ret_st) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
        if (fd < 0)
                return errno == ELOOP && !follow ? 1 : -errno;
        if (fstat(fd, ret_st) < 0)
                return -errno;
        if (!S_ISREG(ret_st->st_mode) || kernel_fs(fd))
                return 1;   /* fifos, devices, /proc: nothing a step leaves as an artifact */
        (void) fd_set_nonblock(fd, false);
        *ret_fd = steal_fd(&fd);
        return 0;
}

/* Up to the size the file had when its scan began: a file something keeps appending to (a
 * daemon's log, a trace of this very scan) would otherwise never end. Compressed files and
 * archives are looked into, within redact's limits; what could not be is warned about with
 * ctx's name (NULL ctx: on the guard's thread, which does not print). */
static int scan_open_file(const struct redactor *r, struct redact_scanner *sc, int fd, const struct stat *st,
                          struct file_ctx *ctx, const struct redact_sink *sink) {
        struct redact_scan_options o = { .name = ctx ? ctx->path : NULL, .warning = ctx ? file_warning : NULL,
                                         .userdata = ctx };
        return sc ? redact_scanner_scan(sc, fd, (uint64_t) st->st_size, &o, sink)
                  : redact_scan_file(r, fd, (uint64_t) st->st_size, &o, sink);
}

int scan_file_to(const struct redactor *r, const char *path, const struct redact_sink *sink) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int k = open_for_scan(AT_FDCWD, path, true, &fd, &st);
        return k != 0 ? (k > 0 ? 0 : k) : scan_open_file(r, NULL, fd, &st, NULL, sink);
}

/* ---- a scan of many files, each once ---- */

static char *file_key(const struct stat *st) {
        return strdup_printf("%llx:%llx", (unsigned long long) st->st_dev, (unsigned long long) st->st_ino);
}

static bool seen_before(struct artifact_scan *s, const struct stat *st, bool mark) {
        _cleanup_free_ char *key = file_key(st);
        if (!key)
                return false;
        if (json_object_get(s->seen, key))
                return true;
        if (mark)
                (void) json_object_set_new(s->seen, key, json_true());
        return false;
}

int artifact_scan_init(struct artifact_scan *s, const struct redactor *r, char *const *own) {
        *s = (struct artifact_scan) { .r = r, .seen = json_object() };
        if (!s->seen)
                return -ENOMEM;
        int k = redact_scanner_new(r, &s->scanner);
        if (k < 0)
                return k;
        /* our own files (the audit log, stores, key directory) change during every run and
         * hold no step output: scanning them would re-read a growing log each time */
        for (char *const *p = own; p && *p; p++) {
                struct stat st;
                if (stat(*p, &st) == 0)
                        (void) seen_before(s, &st, true);
        }
        return 0;
}

void artifact_scan_done(struct artifact_scan *s) {
        json_decref(s->seen);
        s->seen = NULL;
        s->scanner = redact_scanner_free(s->scanner);
}

static int scan_once_at(struct artifact_scan *s, int dir_fd, const char *name, bool follow, const char *display) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int k = open_for_scan(dir_fd, name, follow, &fd, &st);
        if (k != 0 || seen_before(s, &st, true))
                return k > 0 ? 0 : k;
        struct file_ctx c = { display };
        struct redact_sink sink = { .leak = file_leak, .userdata = &c };
        if ((k = scan_open_file(s->r, s->scanner, fd, &st, &c, &sink)) > 0)
                s->leaks += (uint64_t) k;
        return k;
}

int artifact_scan_path(struct artifact_scan *s, const char *path, const char *display) {
        return scan_once_at(s, AT_FDCWD, path, true, display);
}

struct masking {
        int out;
        const char *display;
};

static int masking_write(void *userdata, const void *p, size_t n) {
        return write_all(((struct masking *) userdata)->out, p, n);
}

static void masking_leak(void *userdata, const struct redact_leak *leak) {
        report_leak(leak, ((struct masking *) userdata)->display);
}

/* The file through the redactor into a memfd; then, if anything was masked, the masked text
 * back over the file. Returns the leaks. */
static int mask_fd(const struct redactor *r, int fd, const char *display) {
        _cleanup_close_ int out = memfd_create("masked", MFD_CLOEXEC);
        if (out < 0)
                return -errno;
        _cleanup_redact_stream_ struct redact_stream *rs = NULL;
        int k = redact_stream_new(r, &rs);
        if (k < 0)
                return k;
        struct masking m = { out, display };
        struct redact_sink sink = { masking_write, masking_leak, &m };
        unsigned char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
                k = redact_stream_feed(rs, buf, (size_t) n, &sink);
                explicit_bzero(buf, (size_t) n);
                if (k < 0)
                        return k;
        }
        if (n < 0)
                return -errno;
        if ((k = redact_stream_finish(rs, &sink)) < 0)
                return k;
        uint64_t leaks = redact_stream_leak_count(rs);
        if (leaks == 0)
                return 0;
        /* in place, not a new file renamed over it: the runner may hold it open */
        if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 || lseek(out, 0, SEEK_SET) < 0)
                return -errno;
        while ((n = read(out, buf, sizeof buf)) > 0)
                if ((k = write_all(fd, buf, (size_t) n)) < 0)
                        return k;
        return n < 0 ? -errno : leaks > INT32_MAX ? INT32_MAX : (int) leaks;
}

int artifact_mask_in_place(struct artifact_scan *s, const char *path) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || seen_before(s, &st, true))
                return 0;
        (void) fd_set_nonblock(fd, false);
        int k = mask_fd(s->r, fd, path);
        if (k > 0)
                s->leaks += (uint64_t) k;
        return k;
}

/* Which files of a walk are scanned. */
struct walk {
        struct artifact_scan *scan;
        char *const *globs;              /* NULL: every file */
        const struct timespec *since;
};

static bool selected(const struct walk *w, const char *rel, const struct stat *st) {
        if (!w->globs)
                return true;
        for (char *const *g = w->globs; *g; g++) {
                if (streq(*g, "changed")) {
                        if (st->st_mtim.tv_sec > w->since->tv_sec ||
                            (st->st_mtim.tv_sec == w->since->tv_sec && st->st_mtim.tv_nsec >= w->since->tv_nsec))
                                return true;
                } else if (glob_match(*g, rel))
                        return true;
        }
        return false;
}

static void walk_dir(struct walk *w, int dir_fd, const char *rel, unsigned depth) {
        if (depth > WALK_MAX_DEPTH)
                return;
        DIR *d = opendir_dup(dir_fd);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                _cleanup_free_ char *path = *rel ? strdup_printf("%s/%s", rel, e->d_name) : strdup(e->d_name);
                if (!path)
                        break;
                struct stat st;
                if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || seen_before(w->scan, &st, false))
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        if (w->globs && streq(e->d_name, ".git"))
                                continue;   /* the repository's own objects are not artifacts */
                        _cleanup_close_ int sub = openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0 && !kernel_fs(sub))
                                walk_dir(w, sub, path, depth + 1);
                        continue;
                }
                if (!S_ISREG(st.st_mode) || !selected(w, path, &st))
                        continue;
                int k = scan_once_at(w->scan, dir_fd, e->d_name, false, path);
                if (k < 0)
                        log_warning("cannot scan %s: %s", path, strerror(-k));
        }
        closedir(d);
}

int artifact_scan_globs(struct artifact_scan *s, char *const *globs, const struct timespec *since) {
        if (!globs || !*globs)
                return 0;
        _cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0)
                return -errno;
        struct walk w = { .scan = s, .globs = globs, .since = since };
        walk_dir(&w, cwd, "", 0);
        return 0;
}

int scan_paths(const struct redactor *r, char *const *paths) {
        struct artifact_scan s;
        int k = artifact_scan_init(&s, r, NULL);
        if (k < 0)
                return k;
        for (char *const *p = paths; p && *p; p++) {
                struct stat st;
                if (stat(*p, &st) < 0) {
                        k = -errno;
                        log_error("scan: %s: %s", *p, strerror(errno));
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int fd = open(*p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0) {
                                k = -errno;
                                break;
                        }
                        struct walk w = { .scan = &s };
                        walk_dir(&w, fd, *p, 0);
                        continue;
                }
                if ((k = artifact_scan_path(&s, *p, *p)) < 0) {
                        log_error("scan: %s: %s", *p, strerror(-k));
                        break;
                }
        }
        uint64_t leaks = s.leaks;
        artifact_scan_done(&s);
        return k < 0 ? k : leaks > INT32_MAX ? INT32_MAX : (int) leaks;
}
