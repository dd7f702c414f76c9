/* `secrets-run store SUB`: the embedded encrypted store from the command line. Values come in
 * on stdin only and go out on stdout only for `get`; list and history never show one. */
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>

#include "agent.h"
#include "backends.h"

struct store_target {
        char *path;
        char *key_file;   /* NULL: $SECRETS_RUN_STORE_KEY or the default key file */
};

static void store_target_done(struct store_target *t) {
        free(t->path);
        free(t->key_file);
}

static char *resolve(const char *dir, const char *p) {
        if (p[0] == '/' || !dir)
                return strdup(p);
        return strdup_printf("%s/%s", dir, p);
}

/* --store PATH, else the manifest's first file backend (relative to the manifest's
 * directory), else .secrets-run/store. */
static int find_target(const struct options *o, struct store_target *ret) {
        if (o->store_path) {
                ret->path = strdup(o->store_path);
                return ret->path ? 0 : -ENOMEM;
        }
        _cleanup_free_ char *mpath = NULL;
        int k = manifest_discover(o->manifest, &mpath);
        if (k == -ENOENT && !o->manifest) {
                ret->path = strdup(STORE_DEFAULT_PATH);
                return ret->path ? 0 : -ENOMEM;
        }
        _cleanup_manifest_ struct manifest *m = NULL;
        if ((k = load_manifest(o, false, &m)) < 0)
                return k;
        for (size_t i = 0; i < m->n_backends; i++) {
                const struct mf_backend *b = &m->backends[i];
                if (b->type != BACKEND_FILE)
                        continue;
                ret->path = resolve(m->dir, b->path ? b->path : STORE_DEFAULT_PATH);
                if (b->key_file && !(ret->key_file = resolve(m->dir, b->key_file)))
                        return -ENOMEM;
                return ret->path ? 0 : -ENOMEM;
        }
        ret->path = resolve(m->dir, STORE_DEFAULT_PATH);
        return ret->path ? 0 : -ENOMEM;
}

static int fail(const char *what, int k, const char *why) {
        log_error("%s: %s", what, why ? why : strerror(-k));
        return 1;
}

static void format_time(int64_t t, char *buf, size_t size) {
        struct tm tm;
        time_t tt = (time_t) t;
        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "%" PRId64, t);
}

/* One line from the terminal with echo off, without its newline. */
static int read_hidden_line(int fd, const char *prompt, struct secret **ret) {
        struct termios old, quiet;
        if (tcgetattr(fd, &old) < 0)
                return -errno;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        /* echo off (and typeahead dropped) before the prompt shows, so whatever is typed
         * after it is neither echoed nor discarded */
        if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
                return -errno;
        fputs(prompt, stderr);
        fflush(stderr);
        _cleanup_secret_ struct secret *s = NULL;
        int r = secret_new(64, &s);
        while (r >= 0) {
                unsigned char c;
                ssize_t n = read(fd, &c, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = -errno;
                else if (n == 0 || c == '\n')
                        break;
                else if (secret_len(s) >= STORE_MAX_VALUE)
                        r = -EFBIG;
                else
                        r = secret_append(s, &c, 1);
        }
        (void) tcsetattr(fd, TCSANOW, &old);
        fputs("\n", stderr);
        if (r < 0)
                return r;
        *ret = steal_pointer(&s);
        return 0;
}

/* The value for `set`: from a terminal, asked twice without echo; from a pipe or file, the
 * bytes minus one trailing newline (as --secret-file and the exec backend read values). */
static int read_value(struct secret **ret) {
        _cleanup_secret_ struct secret *v = NULL;
        int r;
        if (isatty(STDIN_FILENO)) {
                _cleanup_secret_ struct secret *again = NULL;
                if ((r = read_hidden_line(STDIN_FILENO, "Value: ", &v)) < 0 ||
                    (r = read_hidden_line(STDIN_FILENO, "Again: ", &again)) < 0)
                        return fail("store set: cannot read the value from the terminal", r, NULL), r;
                if (secret_len(v) != secret_len(again) ||
                    sodium_memcmp(secret_data(v), secret_data(again), secret_len(v)) != 0) {
                        log_error("store set: the two entries differ; nothing stored");
                        return -EINVAL;
                }
        } else {
                if ((r = secret_new(4096, &v)) < 0)
                        return r;
                r = secret_read_fd(v, STDIN_FILENO, STORE_MAX_VALUE + 1);
                if (r == -EFBIG) {
                        log_error("store set: the value on stdin is larger than %d bytes", STORE_MAX_VALUE);
                        return r;
                }
                if (r < 0)
                        return fail("store set: cannot read stdin", r, NULL), r;
                secret_chomp(v);
        }
        if (secret_len(v) == 0) {
                log_error("store set: the value is empty [pipe the value on stdin: 'secrets-run store set NAME < FILE']");
                return -ENODATA;
        }
        if (secret_len(v) > STORE_MAX_VALUE) {
                log_error("store set: the value is larger than %d bytes", STORE_MAX_VALUE);
                return -EFBIG;
        }
        *ret = steal_pointer(&v);
        return 0;
}

static int load_key(const struct store_target *t, struct secret **ret) {
        _cleanup_free_ char *why = NULL;
        int k = store_key_load(t->key_file, ret, &why);
        return k < 0 ? fail("store", k, why) : 0;
}

static int cmd_init(const struct store_target *t) {
        _cleanup_free_ char *why = NULL;
        _cleanup_secret_ struct secret *key = NULL;
        _cleanup_free_ char *created_key = NULL;
        int k;
        if (!getenv("SECRETS_RUN_STORE_KEY")) {
                _cleanup_free_ char *def = NULL;
                const char *kf = t->key_file;
                if (!kf) {
                        if ((k = store_key_default_path(&def)) < 0)
                                return fail("store init: no place for the key file", k, "$HOME is unknown");
                        kf = def;
                }
                struct stat st;
                if (lstat(kf, &st) < 0 && errno == ENOENT) {
                        if ((k = store_key_create(kf, &key, &why)) < 0)
                                return fail("store init", k, why);
                        created_key = strdup(kf);
                }
        }
        if (!key && load_key(t, &key) != 0)
                return 1;

        /* the store's directory is private to the user, like the key's */
        _cleanup_free_ char *dir = strdup(t->path);
        if (!dir)
                return 1;
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {
                        if (p)
                                *p = '\0';
                        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                                return fail("store init: cannot create the store's directory", -errno, NULL);
                        if (!p)
                                break;
                        *p = '/';
                }
        }
        _cleanup_close_ int lock = -1;
        if ((k = store_lock(t->path, &lock, &why)) < 0)
                return fail("store init", k, why);
        struct stat st;
        if (lstat(t->path, &st) == 0) {
                log_error("store init: %s already exists; not overwriting it", t->path);
                return 1;
        }
        _cleanup_store_ struct store *s = NULL;
        if ((k = store_new(&s)) < 0 || (k = store_save(t->path, s, key, &why)) < 0)
                return fail("store init", k, why);
        if (created_key)
                log_notice("created key file %s (mode 0600): keep it safe; without it the store cannot be read",
                           created_key);
        log_notice("created store %s", t->path);
        return 0;
}

/* Lock, load, change, save: the shape of every write. */
enum store_change { CHANGE_SET, CHANGE_REMOVE, CHANGE_ROLLBACK };

static int cmd_change(const struct store_target *t, enum store_change what, const char *name,
                      uint64_t to) {
        _cleanup_secret_ struct secret *key = NULL, *value = NULL;
        _cleanup_free_ char *why = NULL;
        int k;
        if (what == CHANGE_SET && !is_identifier(name)) {
                log_error("store set: '%s' is not a valid name [letters, digits and _, not starting with a digit]", name);
                return 1;
        }
        if (load_key(t, &key) != 0)
                return 1;
        /* read the value before taking the lock: a slow terminal must not block other writers */
        if (what == CHANGE_SET && read_value(&value) < 0)
                return 1;
        _cleanup_close_ int lock = -1;
        if ((k = store_lock(t->path, &lock, &why)) < 0)
                return fail("store", k, why);
        _cleanup_store_ struct store *s = NULL;
        if ((k = store_load(t->path, key, &s, &why)) < 0)
                return fail("store", k, why);
        uint64_t version = 0;
        switch (what) {
        case CHANGE_SET:
                k = store_set(s, name, secret_data(value), secret_len(value), (int64_t) time(NULL), &version);
                break;
        case CHANGE_REMOVE:
                k = store_remove(s, name);
                break;
        case CHANGE_ROLLBACK:
                k = store_rollback(s, name, to, (int64_t) time(NULL), &version);
                break;
        default:
                k = -EINVAL;
        }
        if (k == -ENOENT) {
                log_error("store: no '%s' in store %s", name, t->path);
                return 1;
        }
        if (k == -ESRCH) {
                if (to)
                        log_error("store rollback: '%s' has no version %" PRIu64 " in store %s (the last %d are kept) [see 'secrets-run store history %s']",
                                  name, to, t->path, STORE_KEEP_VERSIONS, name);
                else
                        log_error("store rollback: '%s' has only one version in store %s", name, t->path);
                return 1;
        }
        if (k < 0)
                return fail("store", k, NULL);
        if ((k = store_save(t->path, s, key, &why)) < 0)
                return fail("store", k, why);
        if (what == CHANGE_REMOVE)
                log_notice("removed %s from %s", name, t->path);
        else
                log_notice("%s: version %" PRIu64 " stored in %s", name, version, t->path);
        return 0;
}

static int cmd_read(const struct store_target *t, const char *sub, const char *name, enum output_format format) {
        _cleanup_secret_ struct secret *key = NULL;
        _cleanup_free_ char *why = NULL;
        if (load_key(t, &key) != 0)
                return 1;
        _cleanup_store_ struct store *s = NULL;
        int k = store_load(t->path, key, &s, &why);
        if (k < 0)
                return fail("store", k, why);
        char when[64];

        if (streq(sub, "get")) {
                _cleanup_secret_ struct secret *value = NULL;
                k = store_get(s, name, 0, &value, NULL);
                if (k == -ENOENT) {
                        log_error("store get: no '%s' in store %s", name, t->path);
                        return 1;
                }
                if (k < 0 || (k = write_all(STDOUT_FILENO, secret_data(value), secret_len(value))) < 0)
                        return fail("store get", k, NULL);
                return 0;
        }

        struct store_version_info h[STORE_KEEP_VERSIONS];
        json_t *out = format == FORMAT_JSON ? json_array() : NULL;
        if (streq(sub, "list")) {
                if (format == FORMAT_TEXT && store_count(s) > 0)
                        printf("%-32s %8s %8s  %s\n", "NAME", "VERSIONS", "LATEST", "CREATED");
                for (size_t i = 0; i < store_count(s); i++) {
                        const char *n = store_name_at(s, i);
                        size_t nv = store_history(s, n, h);
                        format_time(h[nv - 1].created, when, sizeof when);
                        if (out)
                                json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:s, s:I}", "name", n,
                                                                     "versions", (json_int_t) nv,
                                                                     "latest", (json_int_t) h[nv - 1].version,
                                                                     "created", when,
                                                                     "created_unix", (json_int_t) h[nv - 1].created));
                        else
                                printf("%-32s %8zu %8" PRIu64 "  %s\n", n, nv, h[nv - 1].version, when);
                }
        } else {   /* history, newest first */
                size_t nv = store_history(s, name, h);
                if (nv == 0) {
                        json_decref(out);
                        log_error("store history: no '%s' in store %s", name, t->path);
                        return 1;
                }
                if (format == FORMAT_TEXT)
                        printf("%8s  %s\n", "VERSION", "CREATED");
                for (size_t i = nv; i-- > 0;) {
                        format_time(h[i].created, when, sizeof when);
                        if (out)
                                json_array_append_new(out, json_pack("{s:I, s:s, s:I}", "version", (json_int_t) h[i].version,
                                                                     "created", when, "created_unix", (json_int_t) h[i].created));
                        else
                                printf("%8" PRIu64 "  %s\n", h[i].version, when);
                }
        }
        if (out) {
                json_dumpf(out, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
                json_decref(out);
        }
        return fflush(stdout) == 0 ? 0 : 1;
}

int command_store(const struct options *o) {
        static const struct {
                const char *name;
                bool takes_name;
        } subs[] = {
                { "init", false }, { "set", true }, { "get", true }, { "list", false },
                { "rm", true }, { "history", true }, { "rollback", true },
        };
        const char *sub = o->args ? o->args[0] : NULL;
        if (!sub) {
                log_error("store: which one? init, set NAME, get NAME, list, rm NAME, history NAME, rollback NAME [--to N]");
                return 1;
        }
        size_t i;
        for (i = 0; i < ELEMENTSOF(subs); i++)
                if (streq(sub, subs[i].name))
                        break;
        if (i == ELEMENTSOF(subs)) {
                if (streq(sub, "export") || streq(sub, "import"))
                        log_error("store %s is not available in this version of secrets-run yet", sub);
                else
                        log_error("store: unknown sub-command '%s' [init, set, get, list, rm, history, rollback]", sub);
                return 1;
        }
        size_t want = subs[i].takes_name ? 2 : 1;
        if (strv_length(o->args) != want) {
                log_error("store %s: %s", sub, strv_length(o->args) < want ? "needs a NAME" : "too many arguments");
                return 1;
        }
        if (o->store_to && !streq(sub, "rollback")) {
                log_error("store %s: --to applies to rollback only", sub);
                return 1;
        }
        const char *name = subs[i].takes_name ? o->args[1] : NULL;

        _cleanup_(store_target_done) struct store_target t = {};
        int k = find_target(o, &t);
        if (k == -ENOMEM)
                log_error("store: out of memory");
        if (k < 0)
                return 1;

        if (streq(sub, "init"))
                return cmd_init(&t);
        if (streq(sub, "set"))
                return cmd_change(&t, CHANGE_SET, name, 0);
        if (streq(sub, "rm"))
                return cmd_change(&t, CHANGE_REMOVE, name, 0);
        if (streq(sub, "rollback"))
                return cmd_change(&t, CHANGE_ROLLBACK, name, o->store_to);
        return cmd_read(&t, sub, name, o->format);
}
