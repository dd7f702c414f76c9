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
        char *key_file;   /* the manifest's, else the default; NULL: none ($HOME is unknown) */
};

static void store_target_done(struct store_target *t) {
        free(t->path);
        free(t->key_file);
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
                if (manifest_file(m, b->path ? b->path : STORE_DEFAULT_PATH, &ret->path) < 0 ||
                    manifest_file(m, b->key_file, &ret->key_file) < 0)
                        return -ENOMEM;
                return 0;
        }
        return manifest_file(m, STORE_DEFAULT_PATH, &ret->path);
}

static int fail(const char *what, int k, const char *why) {
        log_error("%s: %s", what, why ? why : strerror(-k));
        return 1;
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
        if (k == -ENOENT && !t->key_file)
                log_error("store: %s (%s)", why ? why : strerror(-k), NO_DEFAULT_KEY_FILE);
        else if (k < 0)
                fail("store", k, why);
        return k < 0 ? 1 : 0;
}

static int cmd_init(const struct store_target *t) {
        _cleanup_free_ char *why = NULL;
        _cleanup_secret_ struct secret *key = NULL;
        _cleanup_free_ char *created_key = NULL;
        int k;
        if (!store_key_in_environment()) {
                const char *kf = t->key_file;
                if (!kf)
                        return fail("store init: no place for the key file", -ENOENT, "$HOME is unknown");
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

/* The key, then the store decrypted with it (for commands that only read); 1 on failure,
 * said on stderr. */
static int open_store(const struct store_target *t, struct store **ret) {
        _cleanup_secret_ struct secret *key = NULL;
        _cleanup_free_ char *why = NULL;
        if (load_key(t, &key) != 0)
                return 1;
        int k = store_load(t->path, key, ret, &why);
        return k < 0 ? fail("store", k, why) : 0;
}

static int cmd_read(const struct store_target *t, const char *sub, const char *name, enum output_format format) {
        _cleanup_store_ struct store *s = NULL;
        if (open_store(t, &s) != 0)
                return 1;
        char when[64];
        int k;

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
                        format_timestamp(h[nv - 1].created, when, sizeof when);
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
                        format_timestamp(h[i].created, when, sizeof when);
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

/* ---- export / import: the whole store as JSON, for migration and backup ----
 *
 * {"format": "secrets-run-store", "version": 1, "exported": TIME,
 *  "secrets": {"NAME": [{"version": N, "created": TIME, "value": TEXT | "value_base64": B64}, ...]}}
 *
 * TIME is RFC 3339 UTC. Values that are UTF-8 without NUL bytes are kept as text (so the
 * document can be read and edited), anything else as base64. Every string holding a value is
 * allocated by jansson, whose allocator wipes memory on free. */

#define EXPORT_FORMAT "secrets-run-store"
#define EXPORT_VERSION 1
#define EXPORT_MAX_BYTES ((size_t) 256 << 20)
#define IMPORT_MAX_VERSION ((json_int_t) 1 << 53)   /* exact in every JSON reader */
#define IMPORT_MAX_SKEW 300                          /* seconds a clock may be ahead of ours */

/* A scratch buffer for encoding a value: wiped before it is freed. */
struct scratch {
        char *p;
        size_t size;
};
static void scratch_done(struct scratch *s) {
        if (s->p)
                sodium_memzero(s->p, s->size);
        free(s->p);
}

static json_t *value_json(const struct secret *v) {
        json_t *text = secret_has_nul(v) ? NULL : json_stringn((const char *) secret_data(v), secret_len(v));
        if (text)
                return json_pack("{s:o}", "value", text);
        size_t size = sodium_base64_ENCODED_LEN(secret_len(v), sodium_base64_VARIANT_ORIGINAL);
        _cleanup_(scratch_done) struct scratch b64 = { malloc(size), size };
        if (!b64.p)
                return NULL;
        sodium_bin2base64(b64.p, size, secret_data(v), secret_len(v), sodium_base64_VARIANT_ORIGINAL);
        return json_pack("{s:s}", "value_base64", b64.p);
}

static int cmd_export(const struct store_target *t, const char *file) {
        if (!file && isatty(STDOUT_FILENO)) {
                log_error("store export: the document holds every value; not writing it to a terminal "
                          "[name a FILE (created mode 0600) or redirect stdout]");
                return 1;
        }
        _cleanup_store_ struct store *s = NULL;
        if (open_store(t, &s) != 0)
                return 1;
        int k;
        char when[64];
        format_timestamp((int64_t) time(NULL), when, sizeof when);
        json_t *doc = json_pack("{s:s, s:i, s:s, s:{}}", "format", EXPORT_FORMAT, "version", EXPORT_VERSION,
                                "exported", when, "secrets");
        if (!doc)
                return fail("store export", -ENOMEM, NULL);
        json_t *secrets = json_object_get(doc, "secrets");
        size_t n_versions = 0;
        k = 0;
        for (size_t i = 0; k >= 0 && i < store_count(s); i++) {
                const char *name = store_name_at(s, i);
                struct store_version_info h[STORE_KEEP_VERSIONS];
                size_t nv = store_history(s, name, h);
                json_t *arr = json_array();
                for (size_t j = 0; arr && k >= 0 && j < nv; j++) {
                        _cleanup_secret_ struct secret *v = NULL;
                        if ((k = store_get(s, name, h[j].version, &v, NULL)) < 0)
                                break;
                        json_t *entry = value_json(v);
                        format_timestamp(h[j].created, when, sizeof when);
                        if (!entry || json_object_set_new(entry, "version", json_integer((json_int_t) h[j].version)) < 0 ||
                            json_object_set_new(entry, "created", json_string(when)) < 0 ||
                            json_array_append_new(arr, entry) < 0)
                                k = -ENOMEM;
                        n_versions++;
                }
                if (!arr || json_object_set_new(secrets, name, arr) < 0)
                        k = -ENOMEM;
        }
        /* the text goes back to jansson's allocator, which wipes it */
        _cleanup_(json_text_freep) char *text = k >= 0 ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(doc);
        if (!text)
                return fail("store export", k < 0 ? k : -ENOMEM, NULL);
        _cleanup_close_ int fd = -1;
        if (file && (fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
                k = -errno;
                if (k == -EEXIST) {
                        log_error("store export: %s exists; not overwriting it", file);
                        return 1;
                }
                return fail("store export: cannot create the file", k, NULL);
        }
        size_t len = strlen(text);
        k = write_all(file ? fd : STDOUT_FILENO, text, len);
        if (k >= 0)
                k = write_all(file ? fd : STDOUT_FILENO, "\n", 1);
        if (k >= 0 && file && fsync(fd) < 0)
                k = -errno;
        if (k < 0)
                return fail("store export: cannot write", k, NULL);
        log_notice("exported %zu secret%s (%zu version%s) from %s%s%s", store_count(s), store_count(s) == 1 ? "" : "s",
                   n_versions, n_versions == 1 ? "" : "s", t->path, file ? " to " : "", file ? file : "");
        return 0;
}

/* Checks the whole document before anything is written: one bad entry imports nothing. */
static int import_check(json_t *doc, const char *src) {
        const char *format = json_string_value(json_object_get(doc, "format"));
        json_t *secrets = json_object_get(doc, "secrets");
        if (!json_is_object(doc) || !format || !streq(format, EXPORT_FORMAT) || !json_is_object(secrets)) {
                log_error("store import: %s is not a secrets-run store export (no \"format\": \"%s\" with \"secrets\")",
                          src, EXPORT_FORMAT);
                return -EINVAL;
        }
        json_int_t version = json_integer_value(json_object_get(doc, "version"));
        if (version != EXPORT_VERSION) {
                log_error("store import: %s has document version %lld; this secrets-run reads version %d",
                          src, (long long) version, EXPORT_VERSION);
                return -EINVAL;
        }
        const char *name;
        json_t *arr;
        json_object_foreach(secrets, name, arr) {
                if (!is_identifier(name)) {
                        log_error("store import: '%s' is not a valid name [letters, digits and _, not starting with a digit]", name);
                        return -EINVAL;
                }
                if (!json_is_array(arr) || json_array_size(arr) == 0) {
                        log_error("store import: %s: expected a non-empty list of versions", name);
                        return -EINVAL;
                }
                json_int_t last = 0;
                size_t i;
                json_t *e;
                json_array_foreach(arr, i, e) {
                        json_int_t v = json_integer_value(json_object_get(e, "version"));
                        int64_t created, now = (int64_t) time(NULL);
                        json_t *text = json_object_get(e, "value"), *b64 = json_object_get(e, "value_base64");
                        if (!json_is_integer(json_object_get(e, "version")) || v <= last || v > IMPORT_MAX_VERSION) {
                                log_error("store import: %s: entry %zu: 'version' must be an integer above the previous one (at most %lld)",
                                          name, i + 1, (long long) IMPORT_MAX_VERSION);
                                return -EINVAL;
                        }
                        if (parse_timestamp(json_string_value(json_object_get(e, "created")), &created) < 0) {
                                log_error("store import: %s version %lld: 'created' must be a time like 2026-01-02T03:04:05Z",
                                          name, (long long) v);
                                return -EINVAL;
                        }
                        /* creation times drive the rotation gate: one in the future would keep
                         * a secret young forever, one before 1970 would read as "unknown" */
                        if (created <= 0 || created > now + IMPORT_MAX_SKEW) {
                                log_error("store import: %s version %lld: 'created' is %s; it must lie between 1970 and now",
                                          name, (long long) v, created <= 0 ? "before 1970" : "in the future");
                                return -EINVAL;
                        }
                        if (!!text == !!b64 || !(json_is_string(text) || json_is_string(b64))) {
                                log_error("store import: %s version %lld: give exactly one of 'value' and 'value_base64', as a string",
                                          name, (long long) v);
                                return -EINVAL;
                        }
                        last = v;
                }
        }
        return 0;
}

static int entry_value(json_t *e, struct secret **ret) {
        json_t *text = json_object_get(e, "value");
        if (text)
                return secret_from_bytes(json_string_value(text), json_string_length(text), ret);
        const char *b64 = json_string_value(json_object_get(e, "value_base64"));
        size_t len = strlen(b64), n = 0;
        _cleanup_(scratch_done) struct scratch bin = { malloc(len + 1), len + 1 };
        if (!bin.p)
                return -ENOMEM;
        if (sodium_base642bin((unsigned char *) bin.p, bin.size, b64, len, " \n", &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) < 0)
                return -EBADMSG;
        return secret_from_bytes(bin.p, n, ret);
}

static int cmd_import(const struct store_target *t, const char *file, bool replace) {
        _cleanup_secret_ struct secret *key = NULL, *input = NULL;
        _cleanup_free_ char *why = NULL;
        const char *src = file ? file : "stdin";
        if (!file && isatty(STDIN_FILENO)) {
                log_error("store import: give a FILE or the document on stdin");
                return 1;
        }
        if (load_key(t, &key) != 0)
                return 1;
        _cleanup_close_ int fd = file ? open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY) : -1;
        if (file && fd < 0)
                return fail("store import: cannot open the file", -errno, NULL);
        int k = secret_new(64 * 1024, &input);
        if (k >= 0)
                k = secret_read_fd(input, file ? fd : STDIN_FILENO, EXPORT_MAX_BYTES);
        if (k < 0)
                return fail("store import: cannot read the document", k, NULL);
        json_error_t err;
        json_t *doc = json_loadb((const char *) secret_data(input), secret_len(input), JSON_REJECT_DUPLICATES, &err);
        int line = err.line, column = err.column;
        /* its text may quote the document (a duplicate key's name, a bad token): not kept */
        sodium_memzero(&err, sizeof err);
        if (!doc) {
                /* where it stopped, not what it read; a duplicate key is refused rather than
                 * letting the last one win silently */
                log_error("store import: %s is not valid JSON, or repeats a key (line %d, column %d)", src, line,
                          column);
                return 1;
        }
        int status = 1;
        _cleanup_close_ int lock = -1;
        _cleanup_store_ struct store *s = NULL;
        if (import_check(doc, src) < 0)
                goto out;
        if ((k = store_lock(t->path, &lock, &why)) < 0 || (k = store_load(t->path, key, &s, &why)) < 0) {
                fail("store import", k, why);
                goto out;
        }
        json_t *secrets = json_object_get(doc, "secrets"), *arr;
        const char *name;
        size_t n_names = 0, n_versions = 0, n_replaced = 0;
        json_object_foreach(secrets, name, arr) {
                struct store_version_info h[STORE_KEEP_VERSIONS];
                if (store_history(s, name, h) > 0) {
                        if (!replace) {
                                log_error("store import: %s is already in %s; nothing imported [--replace takes the document's history instead]",
                                          name, t->path);
                                goto out;
                        }
                        n_replaced++;
                }
        }
        json_object_foreach(secrets, name, arr) {
                (void) store_remove(s, name);
                size_t i;
                json_t *e;
                json_array_foreach(arr, i, e) {
                        _cleanup_secret_ struct secret *v = NULL;
                        int64_t created = 0;
                        (void) parse_timestamp(json_string_value(json_object_get(e, "created")), &created);
                        if ((k = entry_value(e, &v)) >= 0)
                                k = store_put_version(s, name, (uint64_t) json_integer_value(json_object_get(e, "version")),
                                                      created, secret_data(v), secret_len(v));
                        if (k < 0) {
                                log_error("store import: %s version %lld: %s; nothing imported", name,
                                          (long long) json_integer_value(json_object_get(e, "version")),
                                          k == -EBADMSG ? "'value_base64' is not valid base64" :
                                          k == -ENODATA ? "the value is empty" :
                                          k == -EFBIG ? "the value is larger than 1 MiB" : strerror(-k));
                                goto out;
                        }
                        n_versions++;
                }
                if (json_array_size(arr) > STORE_KEEP_VERSIONS)
                        log_warning("store import: %s has %zu versions; the store keeps the last %d", name,
                                    json_array_size(arr), STORE_KEEP_VERSIONS);
                n_names++;
        }
        if ((k = store_save(t->path, s, key, &why)) < 0) {
                fail("store import", k, why);
                goto out;
        }
        log_notice("imported %zu secret%s (%zu version%s) into %s%s", n_names, n_names == 1 ? "" : "s", n_versions,
                   n_versions == 1 ? "" : "s", t->path,
                   n_replaced ? " (replacing the history of those already there)" : "");
        status = 0;
out:
        json_decref(doc);
        return status;
}

/* import --dotenv FILE: each KEY=value of a .env file becomes a secret of the store; names
 * already there are refused (nothing imported) unless --replace, which adds a version. */
static int cmd_import_dotenv(const struct store_target *t, const char *file, bool replace) {
        _cleanup_secret_ struct secret *key = NULL;
        _cleanup_free_ char *why = NULL;
        struct dotenv_pair *pairs = NULL;
        size_t n = 0, n_new = 0, n_replaced = 0;
        int status = 1, k;
        if ((k = dotenv_load(file, &pairs, &n, &why)) < 0)
                return fail("store import --dotenv", k, why);
        _cleanup_close_ int lock = -1;
        _cleanup_store_ struct store *s = NULL;
        if (load_key(t, &key) != 0)
                goto out;
        if ((k = store_lock(t->path, &lock, &why)) < 0 || (k = store_load(t->path, key, &s, &why)) < 0) {
                fail("store import --dotenv", k, why);
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                struct store_version_info h[STORE_KEEP_VERSIONS];
                if (!is_identifier(pairs[i].key)) {
                        log_error("store import --dotenv: %s: '%s' is not a valid secret name; nothing imported "
                                  "[letters, digits and _, not starting with a digit]", file, pairs[i].key);
                        goto out;
                }
                if (secret_len(pairs[i].value) == 0) {
                        log_error("store import --dotenv: %s: %s is empty; nothing imported", file, pairs[i].key);
                        goto out;
                }
                if (store_history(s, pairs[i].key, h) > 0 && !replace) {
                        log_error("store import --dotenv: %s is already in %s; nothing imported [--replace adds the "
                                  ".env's value as its new version]", pairs[i].key, t->path);
                        goto out;
                }
        }
        for (size_t i = 0; i < n; i++) {
                bool later = false;   /* a key defined twice: its last line wins, as in compose */
                for (size_t j = i + 1; j < n && !later; j++)
                        later = streq(pairs[i].key, pairs[j].key);
                if (later)
                        continue;
                struct store_version_info h[STORE_KEEP_VERSIONS];
                bool existed = store_history(s, pairs[i].key, h) > 0;
                if ((k = store_set(s, pairs[i].key, secret_data(pairs[i].value), secret_len(pairs[i].value),
                                   (int64_t) time(NULL), NULL)) < 0) {
                        log_error("store import --dotenv: %s: %s; nothing imported", pairs[i].key,
                                  k == -EFBIG ? "the value is larger than 1 MiB" : strerror(-k));
                        goto out;
                }
                existed ? n_replaced++ : n_new++;
        }
        if ((k = store_save(t->path, s, key, &why)) < 0) {
                fail("store import --dotenv", k, why);
                goto out;
        }
        log_notice("imported %zu secret%s from %s into %s (%zu new, %zu as a new version) [%s still holds the "
                   "values: remove it once runs read them from the store]", n_new + n_replaced,
                   n_new + n_replaced == 1 ? "" : "s", file, t->path, n_new, n_replaced, file);
        status = 0;
out:
        dotenv_pairs_free(pairs, n);
        return status;
}

int command_store(const struct options *o) {
        static const struct {
                const char *name;
                bool takes_name;
        } subs[] = {
                { "init", false }, { "set", true }, { "get", true }, { "list", false },
                { "rm", true }, { "history", true }, { "rollback", true },
                { "export", false }, { "import", false },
        };
        const char *sub = o->args ? o->args[0] : NULL;
        if (!sub) {
                log_error("store: which one? init, set NAME, get NAME, list, rm NAME, history NAME, rollback NAME [--to N], export [FILE], import [FILE] [--replace]");
                return 1;
        }
        size_t i;
        for (i = 0; i < ELEMENTSOF(subs); i++)
                if (streq(sub, subs[i].name))
                        break;
        if (i == ELEMENTSOF(subs)) {
                log_error("store: unknown sub-command '%s' [init, set, get, list, rm, history, rollback, export, import]", sub);
                return 1;
        }
        size_t want = subs[i].takes_name ? 2 : 1;
        bool file_arg = streq(sub, "export") || streq(sub, "import");   /* an optional FILE */
        if (strv_length(o->args) != want && !(file_arg && strv_length(o->args) == 2)) {
                log_error("store %s: %s", sub, strv_length(o->args) < want ? "needs a NAME" : "too many arguments");
                return 1;
        }
        if (o->store_to && !streq(sub, "rollback")) {
                log_error("store %s: --to applies to rollback only", sub);
                return 1;
        }
        if (o->dotenv && (!streq(sub, "import") || o->args[1])) {
                log_error("store %s: --dotenv FILE applies to import, instead of a FILE", sub);
                return 1;
        }
        if (o->replace && !streq(sub, "import")) {
                log_error("store %s: --replace applies to import only", sub);
                return 1;
        }
        const char *name = subs[i].takes_name ? o->args[1] : NULL;

        _cleanup_(store_target_done) struct store_target t = {};
        int k = find_target(o, &t);
        /* the key file, when the manifest names none, is where secrets-run keeps its keys */
        if (k >= 0 && !t.key_file && (k = store_key_default_path(&t.key_file)) == -ENOENT)
                k = 0;
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
        if (streq(sub, "export"))
                return cmd_export(&t, o->args[1]);
        if (streq(sub, "import") && o->dotenv)
                return cmd_import_dotenv(&t, o->dotenv, o->replace);
        if (streq(sub, "import"))
                return cmd_import(&t, o->args[1], o->replace);
        return cmd_read(&t, sub, name, o->format);
}
