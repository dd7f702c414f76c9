/* Leak reports and the artifact scan: which files to look at after the step (policy), and
 * what to say about a leak — its secret's name, form and place, never its value. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "agent.h"
#include "redact.h"

#define WALK_MAX_DEPTH 64

static bool under_github_actions(void) {
        const char *v = getenv("GITHUB_ACTIONS");
        return v && streq(v, "true");
}

static bool leaks_are_warnings;
static leak_hook_t leak_hook;
static void *leak_hook_userdata;

void report_leaks_to(leak_hook_t hook, void *userdata) {
        leak_hook = hook;
        leak_hook_userdata = userdata;
}

void report_leaks_as_warnings(bool warn) {
        leaks_are_warnings = warn;
}

/* Reports wait until the step's output is over: written while it runs, they would land in
 * the middle of its stderr lines. */
struct queued {
        char *text;          /* the one-line report */
        char *annotation;    /* GitHub workflow command, or NULL */
        bool warning;
};
static struct queued *queue;
static size_t n_queue;

void flush_leak_reports(void) {
        for (size_t i = 0; i < n_queue; i++) {
                (queue[i].warning ? log_warning : log_error)("%s", queue[i].text);
                if (queue[i].annotation) {
                        /* workflow commands go to stdout */
                        fputs(queue[i].annotation, stdout);
                        fflush(stdout);
                }
                free(queue[i].text);
                free(queue[i].annotation);
        }
        free(queue);
        queue = NULL;
        n_queue = 0;
}

static void enqueue(char *text, char *annotation) {
        struct queued *q = realloc(queue, (n_queue + 1) * sizeof(*q));
        if (!q || !text) {
                free(text);
                free(annotation);
                return;
        }
        queue = q;
        queue[n_queue++] = (struct queued) { text, annotation, leaks_are_warnings };
}

void report_leak(const struct redact_leak *leak, const char *where) {
        bool stream = streq(where, "stdout") || streq(where, "stderr") || streq(where, "stdin");
        char *text = stream ? strdup_printf("leak: %s (%s) on %s at byte %llu", leak->name, redact_form_name(leak->form),
                                            where, (unsigned long long) leak->offset)
                            : strdup_printf("leak: %s:%llu (%s): %s", where, (unsigned long long) leak->offset,
                                            redact_form_name(leak->form), leak->name);
        char *annotation = NULL;
        if (under_github_actions()) {
                /* workflow commands go to stdout; the message has no newline or % to escape */
                const char *level = leaks_are_warnings ? "warning" : "error";
                if (stream)
                        annotation = strdup_printf("::%s title=secret leaked::%s (%s) on %s at byte %llu\n", level,
                                                   leak->name, redact_form_name(leak->form), where,
                                                   (unsigned long long) leak->offset);
                else
                        annotation = strdup_printf("::%s file=%s,title=secret leaked::%s (%s) at byte %llu\n", level,
                                                   where, leak->name, redact_form_name(leak->form),
                                                   (unsigned long long) leak->offset);
        }
        enqueue(text, annotation);
        if (leak_hook)
                leak_hook(leak_hook_userdata, leak, where);
}

struct file_ctx {
        const char *path;
};

static void file_leak(void *userdata, const struct redact_leak *leak) {
        const struct file_ctx *c = userdata;
        report_leak(leak, c->path);
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
        /* up to the size the file had when its scan began: a file something keeps appending
         * to (a daemon's log, a trace of this very scan) would otherwise never end */
        return redact_scan_fd(r, fd, (uint64_t) st.st_size, &sink);
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
                        if (sub >= 0)
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
