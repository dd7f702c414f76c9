/* The output guard's policy: which files the step wrote, kept as it writes them (a file about
 * to be removed or replaced is scanned first, while it still exists), scanned after it, and
 * where it connected. The kernel side, which shows us each call, is sandbox/guard.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "output.h"
#include "redact.h"
#include "run.h"

/* Past this many distinct files the guard stops recording (its memory stays bounded) and
 * the run scans the working directory's changed files as well, as without a guard. */
#define GUARD_MAX_FILES 200000

/* A leak found in a file as it was about to go: reported with the others after the step
 * (reports are the main thread's). */
struct early_leak {
        struct redact_leak leak;      /* its member points to the copy below */
        char *where;
        char *member;                 /* an archive member's name outlives its scan only here */
        char *writer;                 /* the program that wrote the file */
};

struct output_guard {
        struct guard *guard;
        const struct redactor *redactor;
        char *cwd;                     /* the run's: reports name files under it relatively */
        const char *secrets_dir;       /* its files are the values, not leaks */
        json_t *written;               /* path → the program that wrote it first */
        json_t *connects;              /* destination+program → {address, port, program, count} */
        struct guard_reads *reads;     /* until the thread takes it */
        bool reads_watched, reads_exact;
        json_t *read;                  /* secret file name → the program that opened it first (or null) */
        struct early_leak *early;
        size_t n_early;
        bool full;                     /* GUARD_MAX_FILES reached */
        uint64_t calls;
};

static bool under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
                n--;
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The kernel's views, devices and our own directory: never the step's output. /dev/shm is
 * a tmpfs of ordinary files, which outlive the step until the machine restarts. */
static bool excluded(const struct output_guard *g, const char *path) {
        return under(path, "/proc") || under(path, "/sys") || (under(path, "/dev") && !under(path, "/dev/shm")) ||
               (g->secrets_dir && under(path, g->secrets_dir));
}

/* How a report names a file: relative to the run's working directory when under it. */
static char *display_path(const struct output_guard *g, const char *path) {
        if (g->cwd && under(path, g->cwd) && !streq(g->cwd, "/") && path[strlen(g->cwd)] == '/')
                return strdup(path + strlen(g->cwd) + 1);
        return strdup(path);
}

/* writer NULL: the calling program (asked for only now: most writes are to a file seen). */
static void record_written(struct output_guard *g, const char *path, const struct guard_event *e, const char *writer) {
        if (excluded(g, path) || json_object_get(g->written, path))
                return;
        if (json_object_size(g->written) >= GUARD_MAX_FILES) {
                g->full = true;
                return;
        }
        (void) json_object_set_new(g->written, path, json_string(writer ? writer : guard_event_program(e)));
}

struct early_ctx {
        struct output_guard *g;
        const char *where;
        const char *writer;
};

static void early_leak(void *userdata, const struct redact_leak *leak) {
        struct early_ctx *c = userdata;
        struct output_guard *g = c->g;
        if (g->n_early >= GUARD_MAX_FILES) {
                g->full = true;   /* a step making and removing leaking files forever: memory stays bounded */
                return;
        }
        struct early_leak *e = realloc(g->early, (g->n_early + 1) * sizeof(*e));
        char *where = strdup(c->where), *member = leak->member ? strdup(leak->member) : NULL;
        char *writer = c->writer ? strdup(c->writer) : NULL;
        if (!e || !where || (leak->member && !member)) {
                free(where);
                free(member);
                free(writer);
                if (e)
                        g->early = e;
                return;
        }
        g->early = e;
        g->early[g->n_early] = (struct early_leak) { .leak = *leak, .where = where, .member = member,
                                                     .writer = writer };
        g->early[g->n_early++].leak.member = member;
}

/* A written file about to be unlinked or replaced: scanned now, the caller waiting. */
static void scan_before_it_goes(struct output_guard *g, const char *path) {
        json_t *writer = json_object_get(g->written, path);
        if (!writer)
                return;
        _cleanup_free_ char *where = display_path(g, path);
        struct early_ctx c = { g, where ? where : path, json_string_value(writer) };
        struct redact_sink sink = { .leak = early_leak, .userdata = &c };
        (void) scan_file_to(g->redactor, path, &sink);
        (void) json_object_del(g->written, path);
}

/* Whether the call succeeds is not known when it is seen: the old name stays recorded (a
 * name that is gone at the end is passed by), the new one is added. */
static void record_rename(struct output_guard *g, const struct guard_event *e) {
        json_t *writer = json_object_get(g->written, e->path);
        _cleanup_free_ char *who = writer ? strdup(json_string_value(writer)) : NULL;
        if (e->exchange)
                /* both names keep a file, each the other's: both are the step's now */
                record_written(g, e->path, e, NULL);
        else if (!e->noreplace)
                scan_before_it_goes(g, e->target);
        record_written(g, e->target, e, who);
}

/* "address port" of a destination, or NULL for one not worth a record (AF_NETLINK). */
static json_t *destination(const struct sockaddr *sa, unsigned len) {
        char addr[INET6_ADDRSTRLEN];
        if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const void *) sa;
                inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
                return json_pack("{s:s, s:i}", "address", addr, "port", ntohs(in->sin_port));
        }
        if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const void *) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
                return json_pack("{s:s, s:i}", "address", addr, "port", ntohs(in6->sin6_port));
        }
        if (sa->sa_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
                const struct sockaddr_un *un = (const void *) sa;
                size_t n = len - offsetof(struct sockaddr_un, sun_path);
                char path[sizeof un->sun_path + 2];
                bool abstract = un->sun_path[0] == '\0';
                /* an abstract name is shown as "@name", as ss(8) does */
                snprintf(path, sizeof path, "%s%.*s", abstract ? "@" : "", (int) (abstract ? n - 1 : strnlen(un->sun_path, n)),
                         un->sun_path + abstract);
                return json_pack("{s:s}", "socket", path);
        }
        return NULL;
}

static void record_connect(struct output_guard *g, const struct guard_event *e) {
        json_t *d = destination(e->addr, e->addr_len);
        if (!d)
                return;
        const char *program = guard_event_program(e);
        (void) json_object_set_new(d, "program", json_string(program));
        json_t *port = json_object_get(d, "port");
        _cleanup_free_ char *key = strdup_printf("%s %s %lld %s", json_string_value(json_object_get(d, "address")) ?: "",
                                                 json_string_value(json_object_get(d, "socket")) ?: "",
                                                 port ? (long long) json_integer_value(port) : -1LL, program);
        json_t *seen = key ? json_object_get(g->connects, key) : NULL;
        if (seen) {
                json_t *count = json_object_get(seen, "count");
                json_integer_set(count, json_integer_value(count) + 1);
                json_decref(d);
                return;
        }
        (void) json_object_set_new(d, "count", json_integer(1));
        if (key && json_object_size(g->connects) < GUARD_MAX_FILES)
                (void) json_object_set_new(g->connects, key, d);
        else
                json_decref(d);
}

/* On the guard's thread; the main thread touches none of this until the thread is joined. */
static void on_event(void *userdata, const struct guard_event *e) {
        struct output_guard *g = userdata;
        switch (e->kind) {
        case GUARD_WRITE:
                record_written(g, e->path, e, NULL);
                break;
        case GUARD_REMOVE:
                scan_before_it_goes(g, e->path);
                break;
        case GUARD_RENAME:
                record_rename(g, e);
                break;
        case GUARD_CONNECT:
                record_connect(g, e);
                break;
        case GUARD_READ:
                (void) json_object_set_new(g->read, e->path, e->comm ? json_string(e->comm) : json_null());
                break;
        default:
                break;
        }
}

static void output_guard_free(struct output_guard *g) {
        if (!g)
                return;
        for (size_t i = 0; i < g->n_early; i++)
                free(g->early[i].where), free(g->early[i].member), free(g->early[i].writer);
        free(g->early);
        json_decref(g->written);
        json_decref(g->connects);
        json_decref(g->read);
        guard_reads_freep(&g->reads);
        free(g->cwd);
        free(g);
}

/* The file-delivered secrets' names in $SECRETS_DIR. */
static char **delivered_files(const struct run *r) {
        char **names = NULL;
        for (size_t i = 0; i < r->n_secrets; i++)
                if (r->secrets[i].def->deliver == DELIVER_FILE && strv_extend(&names, r->secrets[i].def->as) < 0)
                        return strv_free(names);
        return names;
}

int output_guard_prepare(struct run *r) {
        struct output_guard *g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        *g = (struct output_guard) { .redactor = r->redactor, .cwd = getcwd(NULL, 0),
                                     .secrets_dir = secrets_dir_path(r->dir), .written = json_object(),
                                     .connects = json_object(), .read = json_object() };
        r->guard = g;
        if (!g->written || !g->connects || !g->read)
                return -ENOMEM;
        _cleanup_strv_free_ char **files = delivered_files(r);
        int k = guard_reads_new(sandbox_dir_fd(r->sandbox), files, &g->reads);
        if (k < 0)
                log_info("output guard: cannot watch the secret files' reads: %s", strerror(-k));
        g->reads_watched = g->reads;
        g->reads_exact = guard_reads_exact(g->reads);
        return 0;
}

int output_guard_start(struct run *r) {
        struct output_guard *g = r->guard;
        if (!g || r->child.guard_fd < 0)
                return 0;
        int listener_err = 0;
        int k = guard_start(r->child.guard_fd, steal_pointer(&g->reads), on_event, g, &g->guard, &listener_err);
        if (k < 0)
                listener_err = -k, g->reads_watched = false;
        sandbox_status_guard(&r->sandbox_status, listener_err);
        return k < 0 ? k : listener_err ? -listener_err : 1;
}

enum read_state output_guard_read_state(const struct run *r, const char *file, const char **ret_program) {
        const struct output_guard *g = r->guard;
        if (!g || !g->reads_watched)
                return READ_UNKNOWN;
        json_t *who = json_object_get(g->read, file);
        if (!who)
                return READ_NOT;
        *ret_program = json_string_value(who);   /* NULL: it could not be told */
        return READ_BY;
}

void output_guard_stop(struct run *r) {
        if (r->guard && r->guard->guard)
                r->guard->calls = guard_stop(steal_pointer(&r->guard->guard));
}

void output_guard_scan(struct run *r, struct artifact_scan *s) {
        struct output_guard *g = r->guard;
        if (!g)
                return;
        if (g->full)
                log_warning("output guard: the step wrote more than %d files (or removed as many that leaked); the "
                            "ones past that are found by the working directory's changed files only", GUARD_MAX_FILES);
        /* a path's last version is what is reported: one replaced many times over (git
         * writes .git/config through a lock file renamed over it) is one report, not one per
         * version; a version that went is reported when none that stayed leaks */
        json_t *leaked = json_object();
        const char *path;
        json_t *writer;
        json_object_foreach(g->written, path, writer) {
                _cleanup_free_ char *where = display_path(g, path);
                report_writer(where ? where : path, json_string_value(writer));
                int k = artifact_scan_path(s, path, where ? where : path);
                if (k > 0 && where)
                        (void) json_object_set_new(leaked, where, json_true());
                if (k < 0 && k != -ENOENT && k != -ENOTDIR)
                        log_warning("cannot scan %s (written by %s): %s", where ? where : path,
                                    json_string_value(writer), strerror(-k));
        }
        for (size_t i = 0; i < g->n_early; i++)
                if (!json_object_get(leaked, g->early[i].where)) {
                        report_writer(g->early[i].where, g->early[i].writer);
                        report_leak(&g->early[i].leak, g->early[i].where);
                        s->leaks++;
                }
        json_decref(leaked);
}

/* secret.read for each file-delivered secret something opened, a warning for each nothing
 * did, and net.connect per destination and program. */
void output_guard_audit(struct run *r) {
        struct output_guard *g = r->guard;
        if (!g)
                return;
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                const char *program = NULL;
                if (s->deliver != DELIVER_FILE)
                        continue;
                enum read_state st = output_guard_read_state(r, s->as, &program);
                if (st == READ_NOT)
                        log_warning("granted but not read: %s — remove it from this stage to follow least privilege",
                                    s->name);
                else if (st == READ_BY && r->audit)
                        (void) run_audit_event(r, "secret.read", json_pack("{s:s, s:s, s:s?}", "name", s->name,
                                                                           "file", s->as, "program", program));
        }
        const char *key;
        json_t *d;
        if (r->audit)
                json_object_foreach(g->connects, key, d)
                        (void) run_audit_event(r, "net.connect", json_incref(d));
}

void output_guard_done(struct run *r) {
        output_guard_stop(r);
        output_guard_free(steal_pointer(&r->guard));
}
