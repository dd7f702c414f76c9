/* The artifact scan: which files to look at after the step (policy) and scanning them with
 * the run's matcher; leaks go to the reports of output.c. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "agent.h"
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

static int scan_file_at(const struct redactor *r, int dir_fd, const char *name, const char *display) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return 0;   /* fifos, devices: nothing a step leaves as an artifact */
        (void) fd_set_nonblock(fd, false);
        struct file_ctx c = { display };
        struct redact_sink sink = { .leak = file_leak, .userdata = &c };
        /* compressed files and archives are looked into, within redact's limits */
        struct redact_scan_options o = { .name = display, .warning = file_warning, .userdata = &c };
        /* up to the size the file had when its scan began: a file something keeps appending
         * to (a daemon's log, a trace of this very scan) would otherwise never end */
        return redact_scan_file(r, fd, (uint64_t) st.st_size, &o, &sink);
}

/* Which files of a walk are scanned, and how many leaks were found. */
struct file_id {
        dev_t dev;
        ino_t ino;
};

struct walk {
        const struct redactor *r;
        char *const *globs;              /* NULL: every file */
        const struct timespec *since;
        const struct file_id *skip;      /* secrets-run's own files and directories */
        size_t n_skip;
        int leaks;
        int error;
};

static bool skipped(const struct walk *w, const struct stat *st) {
        for (size_t i = 0; i < w->n_skip; i++)
                if (w->skip[i].dev == st->st_dev && w->skip[i].ino == st->st_ino)
                        return true;
        return false;
}

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
                if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || skipped(w, &st))
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
                int k = scan_file_at(w->r, dir_fd, e->d_name, path);
                if (k < 0) {
                        log_warning("cannot scan %s: %s", path, strerror(-k));
                        continue;
                }
                w->leaks += k;
        }
        closedir(d);
}

int scan_artifacts(const struct redactor *r, char *const *globs, const struct timespec *since, char *const *own) {
        if (!globs || !*globs)
                return 0;
        _cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0)
                return -errno;
        /* our own files (the audit log, stores, key directory) change during every run and
         * hold no step output: scanning them would re-read a growing log each time */
        struct file_id skip[64];
        size_t n_skip = 0;
        for (char *const *p = own; p && *p && n_skip < ELEMENTSOF(skip); p++) {
                struct stat st;
                if (stat(*p, &st) == 0)
                        skip[n_skip++] = (struct file_id) { st.st_dev, st.st_ino };
        }
        struct walk w = { .r = r, .globs = globs, .since = since, .skip = skip, .n_skip = n_skip };
        walk_dir(&w, cwd, "", 0);
        return w.error < 0 ? w.error : w.leaks;
}

int scan_paths(const struct redactor *r, char *const *paths) {
        int leaks = 0;
        for (char *const *p = paths; p && *p; p++) {
                struct stat st;
                if (stat(*p, &st) < 0) {
                        log_error("scan: %s: %s", *p, strerror(errno));
                        return -errno;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int fd = open(*p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0)
                                return -errno;
                        struct walk w = { .r = r };
                        walk_dir(&w, fd, *p, 0);
                        leaks += w.leaks;
                        continue;
                }
                int k = scan_file_at(r, AT_FDCWD, *p, *p);
                if (k < 0) {
                        log_error("scan: %s: %s", *p, strerror(-k));
                        return k;
                }
                leaks += k;
        }
        return leaks;
}
