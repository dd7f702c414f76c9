/* The embedded encrypted store: its file format (header + XChaCha20-Poly1305 payload), the
 * key, and atomic durable replacement under a lock. Values live only in secure buffers. */
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "backend-private.h"

#define STORE_MAGIC "SRSTORE\0"
#define STORE_MAGIC_LEN 8
#define STORE_FORMAT 1
#define STORE_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define STORE_HEADER_LEN (STORE_MAGIC_LEN + 4 + 4 + STORE_NONCE_LEN)
#define STORE_MAX_FILE ((size_t) 1 << 30)

struct store_version {
        uint64_t version;
        int64_t created;
        struct secret *value;
};

struct store_entry {
        char *name;
        size_t n_versions;
        struct store_version versions[STORE_KEEP_VERSIONS];   /* oldest first */
};

struct store {
        struct store_entry *entries;   /* sorted by name */
        size_t n, capacity;
};

/* ---- little-endian fields ---- */

static void put_le(unsigned char *p, uint64_t v, unsigned bytes) {
        for (unsigned i = 0; i < bytes; i++)
                p[i] = (unsigned char) (v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, unsigned bytes) {
        uint64_t v = 0;
        for (unsigned i = 0; i < bytes; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

/* ---- the in-memory store ---- */

int store_new(struct store **ret) {
        struct store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static void entry_done(struct store_entry *e) {
        free(e->name);
        for (size_t i = 0; i < e->n_versions; i++)
                secret_free(e->versions[i].value);
        *e = (struct store_entry) {};
}

struct store *store_free(struct store *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                entry_done(&s->entries[i]);
        free(s->entries);
        free(s);
        return NULL;
}

size_t store_count(const struct store *s) {
        return s->n;
}

const char *store_name_at(const struct store *s, size_t i) {
        return i < s->n ? s->entries[i].name : NULL;
}

/* Index of name, or where it would be inserted (with *ret_found false). */
static size_t entry_index(const struct store *s, const char *name, bool *ret_found) {
        size_t lo = 0, hi = s->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(s->entries[mid].name, name);
                if (c == 0) {
                        *ret_found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = false;
        return lo;
}

static struct store_entry *entry_find(const struct store *s, const char *name) {
        bool found;
        size_t i = entry_index(s, name, &found);
        return found ? &s->entries[i] : NULL;
}

static int entry_insert(struct store *s, size_t at, char *name /* takes ownership */,
                        struct store_entry **ret) {
        if (s->n == s->capacity) {
                size_t cap = s->capacity ? s->capacity * 2 : 16;
                struct store_entry *e = reallocarray(s->entries, cap, sizeof(*e));
                if (!e) {
                        free(name);
                        return -ENOMEM;
                }
                s->entries = e;
                s->capacity = cap;
        }
        memmove(&s->entries[at + 1], &s->entries[at], (s->n - at) * sizeof(*s->entries));
        s->entries[at] = (struct store_entry) { .name = name };
        s->n++;
        *ret = &s->entries[at];
        return 0;
}

/* Appends a version, dropping the oldest past the limit; takes ownership of value. */
static void entry_push(struct store_entry *e, uint64_t version, int64_t created, struct secret *value) {
        if (e->n_versions == STORE_KEEP_VERSIONS) {
                secret_free(e->versions[0].value);
                memmove(&e->versions[0], &e->versions[1], (STORE_KEEP_VERSIONS - 1) * sizeof(e->versions[0]));
                e->n_versions--;
        }
        e->versions[e->n_versions++] = (struct store_version) { version, created, value };
}

size_t store_history(const struct store *s, const char *name,
                     struct store_version_info ret[STORE_KEEP_VERSIONS]) {
        const struct store_entry *e = entry_find(s, name);
        if (!e)
                return 0;
        for (size_t i = 0; i < e->n_versions; i++)
                ret[i] = (struct store_version_info) { e->versions[i].version, e->versions[i].created };
        return e->n_versions;
}

static const struct store_version *version_find(const struct store_entry *e, uint64_t version) {
        if (e->n_versions == 0)
                return NULL;
        if (version == 0)
                return &e->versions[e->n_versions - 1];
        for (size_t i = 0; i < e->n_versions; i++)
                if (e->versions[i].version == version)
                        return &e->versions[i];
        return NULL;
}

int store_get(const struct store *s, const char *name, uint64_t version,
              struct secret **ret_value, struct store_version_info *ret_info) {
        const struct store_entry *e = entry_find(s, name);
        if (!e)
                return -ENOENT;
        const struct store_version *v = version_find(e, version);
        if (!v)
                return -ESRCH;
        if (ret_value) {
                int r = secret_from_bytes(secret_data(v->value), secret_len(v->value), ret_value);
                if (r < 0)
                        return r;
        }
        if (ret_info)
                *ret_info = (struct store_version_info) { v->version, v->created };
        return 0;
}

int store_set(struct store *s, const char *name, const void *value, size_t size, int64_t created,
              uint64_t *ret_version) {
        if (!is_identifier(name) || strlen(name) > UINT16_MAX)
                return -EINVAL;
        if (size == 0)
                return -ENODATA;
        if (size > STORE_MAX_VALUE)
                return -EFBIG;
        _cleanup_secret_ struct secret *copy = NULL;
        int r = secret_from_bytes(value, size, &copy);
        if (r < 0)
                return r;
        bool found;
        size_t at = entry_index(s, name, &found);
        struct store_entry *e;
        if (found)
                e = &s->entries[at];
        else {
                char *n = strdup(name);
                if (!n)
                        return -ENOMEM;
                if ((r = entry_insert(s, at, n, &e)) < 0)
                        return r;
        }
        uint64_t version = e->n_versions ? e->versions[e->n_versions - 1].version + 1 : 1;
        if (version > INT64_MAX)
                return -EOVERFLOW;   /* numbers stay exact as JSON and as signed 64-bit */
        entry_push(e, version, created, steal_pointer(&copy));
        if (ret_version)
                *ret_version = version;
        return 0;
}

int store_put_version(struct store *s, const char *name, uint64_t version, int64_t created,
                      const void *value, size_t size) {
        if (!is_identifier(name) || strlen(name) > UINT16_MAX || version == 0)
                return -EINVAL;
        if (size == 0)
                return -ENODATA;
        if (size > STORE_MAX_VALUE)
                return -EFBIG;
        bool found;
        size_t at = entry_index(s, name, &found);
        struct store_entry *e = found ? &s->entries[at] : NULL;
        if (e && e->n_versions && e->versions[e->n_versions - 1].version >= version)
                return -ERANGE;
        _cleanup_secret_ struct secret *copy = NULL;
        int r = secret_from_bytes(value, size, &copy);
        if (r < 0)
                return r;
        if (!e) {
                char *n = strdup(name);
                if (!n)
                        return -ENOMEM;
                if ((r = entry_insert(s, at, n, &e)) < 0)
                        return r;
        }
        entry_push(e, version, created, steal_pointer(&copy));
        return 0;
}

int store_rollback(struct store *s, const char *name, uint64_t to, int64_t created, uint64_t *ret_version) {
        const struct store_entry *e = entry_find(s, name);
        if (!e)
                return -ENOENT;
        const struct store_version *v;
        if (to == 0)
                v = e->n_versions >= 2 ? &e->versions[e->n_versions - 2] : NULL;
        else
                v = version_find(e, to);
        if (!v)
                return -ESRCH;
        /* copy first: store_set may drop the oldest version, which could be v */
        _cleanup_secret_ struct secret *value = NULL;
        int r = secret_from_bytes(secret_data(v->value), secret_len(v->value), &value);
        if (r < 0)
                return r;
        return store_set(s, name, secret_data(value), secret_len(value), created, ret_version);
}

int store_remove(struct store *s, const char *name) {
        bool found;
        size_t at = entry_index(s, name, &found);
        if (!found)
                return -ENOENT;
        entry_done(&s->entries[at]);
        memmove(&s->entries[at], &s->entries[at + 1], (s->n - at - 1) * sizeof(*s->entries));
        s->n--;
        return 0;
}

/* ---- file format ---- */

static const char *const corrupted = "store file is truncated or corrupted";

/* The payload: u32 count, then per secret u16 name length, name, u32 versions, per version
 * u64 version, i64 created, u32 value length, value. */
static size_t payload_size(const struct store *s) {
        size_t n = 4;
        for (size_t i = 0; i < s->n; i++) {
                const struct store_entry *e = &s->entries[i];
                n += 2 + strlen(e->name) + 4;
                for (size_t j = 0; j < e->n_versions; j++)
                        n += 8 + 8 + 4 + secret_len(e->versions[j].value);
        }
        return n;
}

int store_encode(const struct store *s, const struct secret *key, unsigned char **ret, size_t *ret_size) {
        if (secret_len(key) != STORE_KEY_BYTES)
                return -EINVAL;
        size_t plain_len = payload_size(s);
        if (plain_len > STORE_MAX_FILE)
                return -EFBIG;
        /* the plaintext exists only in locked, guarded memory, wiped by sodium_free */
        unsigned char *plain = sodium_malloc(plain_len);
        if (!plain)
                return -ENOMEM;
        unsigned char *p = plain;
        put_le(p, s->n, 4), p += 4;
        for (size_t i = 0; i < s->n; i++) {
                const struct store_entry *e = &s->entries[i];
                size_t nl = strlen(e->name);
                put_le(p, nl, 2), p += 2;
                memcpy(p, e->name, nl), p += nl;
                put_le(p, e->n_versions, 4), p += 4;
                for (size_t j = 0; j < e->n_versions; j++) {
                        const struct store_version *v = &e->versions[j];
                        put_le(p, v->version, 8), p += 8;
                        put_le(p, (uint64_t) v->created, 8), p += 8;
                        put_le(p, secret_len(v->value), 4), p += 4;
                        memcpy(p, secret_data(v->value), secret_len(v->value)), p += secret_len(v->value);
                }
        }
        size_t size = STORE_HEADER_LEN + plain_len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
        unsigned char *out = malloc(size);
        if (!out) {
                sodium_free(plain);
                return -ENOMEM;
        }
        memcpy(out, STORE_MAGIC, STORE_MAGIC_LEN);
        put_le(out + STORE_MAGIC_LEN, STORE_FORMAT, 4);
        put_le(out + STORE_MAGIC_LEN + 4, 0, 4);
        unsigned char *nonce = out + STORE_MAGIC_LEN + 8;
        randombytes_buf(nonce, STORE_NONCE_LEN);   /* fresh on every write */
        unsigned long long clen;
        crypto_aead_xchacha20poly1305_ietf_encrypt(out + STORE_HEADER_LEN, &clen, plain, plain_len,
                                                   out, STORE_HEADER_LEN, NULL, nonce, secret_data(key));
        sodium_free(plain);
        *ret = out;
        *ret_size = size;
        return 0;
}

struct reader {
        const unsigned char *p, *end;
};

static bool take(struct reader *r, size_t n, const unsigned char **ret) {
        if ((size_t) (r->end - r->p) < n)
                return false;
        *ret = r->p;
        r->p += n;
        return true;
}

static bool take_le(struct reader *r, unsigned bytes, uint64_t *ret) {
        const unsigned char *p;
        if (!take(r, bytes, &p))
                return false;
        *ret = get_le(p, bytes);
        return true;
}

static int parse_payload(const unsigned char *plain, size_t len, struct store *s) {
        struct reader r = { plain, plain + len };
        uint64_t count, nl, nv, version, created, vl;
        const unsigned char *p;
        if (!take_le(&r, 4, &count))
                return -EBADMSG;
        for (uint64_t i = 0; i < count; i++) {
                if (!take_le(&r, 2, &nl) || !take(&r, nl, &p))
                        return -EBADMSG;
                char *name = strndup((const char *) p, nl);
                if (!name)
                        return -ENOMEM;
                bool found;
                size_t at = entry_index(s, name, &found);
                /* names are identifiers, unique, and written in order */
                if (!is_identifier(name) || found || at != s->n) {
                        free(name);
                        return -EBADMSG;
                }
                struct store_entry *e;
                int k = entry_insert(s, at, name, &e);
                if (k < 0)
                        return k;
                if (!take_le(&r, 4, &nv) || nv == 0 || nv > STORE_KEEP_VERSIONS)
                        return -EBADMSG;
                for (uint64_t j = 0; j < nv; j++) {
                        if (!take_le(&r, 8, &version) || !take_le(&r, 8, &created) || !take_le(&r, 4, &vl) ||
                            vl == 0 || vl > STORE_MAX_VALUE || !take(&r, vl, &p))
                                return -EBADMSG;
                        if (e->n_versions > 0 && version <= e->versions[e->n_versions - 1].version)
                                return -EBADMSG;
                        struct secret *value;
                        if ((k = secret_from_bytes(p, vl, &value)) < 0)
                                return k;
                        entry_push(e, version, (int64_t) created, value);
                }
        }
        return r.p == r.end ? 0 : -EBADMSG;
}

int store_decode(const unsigned char *buf, size_t size, const struct secret *key,
                 struct store **ret, char **ret_why) {
        size_t magic_cmp = size < STORE_MAGIC_LEN ? size : STORE_MAGIC_LEN;
        if (memcmp(buf, STORE_MAGIC, magic_cmp) != 0 || size == 0)
                return backend_fail(ret_why, -EBADMSG, "not a secrets-run store");
        if (size < STORE_HEADER_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES + 4)
                return backend_fail(ret_why, -EBADMSG, "%s", corrupted);
        uint64_t format = get_le(buf + STORE_MAGIC_LEN, 4);
        if (format > STORE_FORMAT)
                return backend_fail(ret_why, -EPROTONOSUPPORT,
                                    "store format %" PRIu64 " is newer than this secrets-run reads (format %d)",
                                    format, STORE_FORMAT);
        if (format == 0 || get_le(buf + STORE_MAGIC_LEN + 4, 4) != 0)
                return backend_fail(ret_why, -EBADMSG, "%s", corrupted);
        if (secret_len(key) != STORE_KEY_BYTES)
                return backend_fail(ret_why, -EINVAL, "the store key is not %d bytes", STORE_KEY_BYTES);

        size_t plain_len = size - STORE_HEADER_LEN - crypto_aead_xchacha20poly1305_ietf_ABYTES;
        unsigned char *plain = sodium_malloc(plain_len);
        if (!plain)
                return -ENOMEM;
        unsigned long long mlen;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, buf + STORE_HEADER_LEN,
                                                       size - STORE_HEADER_LEN, buf, STORE_HEADER_LEN,
                                                       buf + STORE_MAGIC_LEN + 8, secret_data(key)) != 0) {
                sodium_free(plain);
                return backend_fail(ret_why, -EKEYREJECTED, "cannot decrypt store (wrong key?)");
        }
        struct store *s = NULL;
        int r = store_new(&s);
        if (r >= 0)
                r = parse_payload(plain, (size_t) mlen, s);
        sodium_free(plain);
        if (r < 0) {
                store_free(s);
                return r == -EBADMSG ? backend_fail(ret_why, r, "%s", corrupted) : r;
        }
        *ret = s;
        return 0;
}

int store_load(const char *path, const struct secret *key, struct store **ret, char **ret_why) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r = read_file_bounded(path, STORE_MAX_FILE, &buf, &size);
        if (r == -ENOENT)
                return backend_fail(ret_why, r, "store %s does not exist [create it with 'secrets-run store init']",
                                    path);
        if (r < 0)
                return backend_fail(ret_why, r, "cannot read store %s: %s", path, strerror(-r));
        _cleanup_free_ char *why = NULL;
        r = store_decode((const unsigned char *) buf, size, key, ret, &why);
        if (r < 0)
                return backend_fail(ret_why, r, "%s: %s", path, why ? why : strerror(-r));
        return 0;
}

/* ---- the key ---- */

bool store_key_in_environment(void) {
        return getenv(STORE_KEY_ENV) != NULL;
}

static int key_from_base64(const char *text, size_t len, struct secret **ret) {
        unsigned char *raw = sodium_malloc(STORE_KEY_BYTES + 1);
        if (!raw)
                return -ENOMEM;
        size_t n = 0;
        const char *end;
        int r = sodium_base642bin(raw, STORE_KEY_BYTES + 1, text, len, " \t\r\n", &n, &end,
                                  sodium_base64_VARIANT_ORIGINAL);
        if (r == 0 && (end != text + len || n != STORE_KEY_BYTES))
                r = -1;
        if (r == 0)
                r = secret_from_bytes(raw, n, ret);
        else
                r = -EINVAL;
        sodium_free(raw);
        return r;
}

int store_key_load(const char *key_file, struct secret **ret_key, char **ret_why) {
        const char *env = getenv(STORE_KEY_ENV);
        if (env) {
                if (key_from_base64(env, strlen(env), ret_key) < 0)
                        return backend_fail(ret_why, -EINVAL,
                                            "$SECRETS_RUN_STORE_KEY is not the base64 of %d bytes", STORE_KEY_BYTES);
                return 0;
        }
        if (!key_file)
                return backend_fail(ret_why, -ENOENT, "no store key: $SECRETS_RUN_STORE_KEY is unset and there is no key file to read");
        _cleanup_close_ int fd = open(key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0) {
                int r = -errno;
                if (r == -ENOENT)
                        return backend_fail(ret_why, r,
                                            "no store key: $SECRETS_RUN_STORE_KEY is unset and key file %s does not exist [run 'secrets-run store init']",
                                            key_file);
                return backend_fail(ret_why, r, "cannot open key file %s: %s", key_file, strerror(-r));
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return backend_fail(ret_why, -EINVAL, "key file %s is not a regular file", key_file);
        if (st.st_uid != geteuid())
                return backend_fail(ret_why, -EPERM, "key file %s is not owned by you (uid %u)", key_file,
                                    (unsigned) st.st_uid);
        if (st.st_mode & 077)
                return backend_fail(ret_why, -EPERM, "key file %s is readable by others (mode %04o); chmod 600 it",
                                    key_file, (unsigned) (st.st_mode & 07777));
        _cleanup_secret_ struct secret *text = NULL;
        int r = secret_new(128, &text);
        if (r < 0)
                return r;
        if ((r = secret_read_fd(text, fd, 1024)) < 0)
                return backend_fail(ret_why, r, "cannot read key file %s: %s", key_file, strerror(-r));
        if (key_from_base64((const char *) secret_data(text), secret_len(text), ret_key) < 0)
                return backend_fail(ret_why, -EINVAL, "key file %s does not hold the base64 of %d bytes",
                                    key_file, STORE_KEY_BYTES);
        return 0;
}

/* mkdir -p with mode for the directories it creates. */
static int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *slash = '/';
        }
        return 0;
}

int store_key_create(const char *path, struct secret **ret_key, char **ret_why) {
        int r = mkdir_parents(path, 0700);
        if (r < 0)
                return backend_fail(ret_why, r, "cannot create the directory of key file %s: %s", path, strerror(-r));
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                return backend_fail(ret_why, r, "cannot create key file %s: %s", path, strerror(-r));
        }
        unsigned char *raw = sodium_malloc(STORE_KEY_BYTES);
        char *text = sodium_malloc(sodium_base64_ENCODED_LEN(STORE_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL) + 1);
        _cleanup_secret_ struct secret *key = NULL;
        r = raw && text ? 0 : -ENOMEM;
        if (r >= 0) {
                randombytes_buf(raw, STORE_KEY_BYTES);
                sodium_bin2base64(text, sodium_base64_ENCODED_LEN(STORE_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL),
                                  raw, STORE_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
                strcat(text, "\n");
                r = secret_from_bytes(raw, STORE_KEY_BYTES, &key);
        }
        if (r >= 0 && (r = write_all(fd, text, strlen(text))) >= 0 && fsync(fd) < 0)
                r = -errno;
        sodium_free(raw);
        sodium_free(text);
        if (r < 0) {
                (void) unlink(path);
                return backend_fail(ret_why, r, "cannot write key file %s: %s", path, strerror(-r));
        }
        *ret_key = steal_pointer(&key);
        return 0;
}

/* ---- durable replacement ---- */

int store_lock(const char *path, int *ret_fd, char **ret_why) {
        _cleanup_free_ char *lock = strdup_printf("%s.lock", path);
        if (!lock)
                return -ENOMEM;
        _cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                int r = -errno;
                return backend_fail(ret_why, r, "cannot open lock file %s: %s", lock, strerror(-r));
        }
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int r = -errno;
                        return backend_fail(ret_why, r, "cannot lock %s: %s", lock, strerror(-r));
                }
        *ret_fd = steal_fd(&fd);
        return 0;
}

static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

/* Writers that were killed leave PATH.tmp.<pid> behind; with the lock held, no other writer
 * is running, so any such file is a leftover. */
static void remove_stale_temps(const char *dir, const char *path) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        _cleanup_free_ char *prefix = strdup_printf("%s.tmp.", base);
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (!prefix || dfd < 0)
                return;
        DIR *d = opendir_dup(dfd);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));)
                if (startswith(de->d_name, prefix))
                        (void) unlinkat(dfd, de->d_name, 0);
        closedir(d);
}

int store_save(const char *path, const struct store *s, const struct secret *key, char **ret_why) {
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size;
        int r = store_encode(s, key, &buf, &size);
        if (r < 0)
                return backend_fail(ret_why, r, "cannot encode store %s: %s", path, strerror(-r));
        _cleanup_free_ char *dir = dir_of(path);
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.%d", path, (int) getpid());
        if (!dir || !tmp)
                return -ENOMEM;
        remove_stale_temps(dir, path);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                return backend_fail(ret_why, r, "cannot create %s: %s", tmp, strerror(-r));
        }
        if ((r = write_all(fd, buf, size)) < 0 || (fsync(fd) < 0 && (r = -errno) < 0)) {
                (void) unlink(tmp);
                return backend_fail(ret_why, r, "cannot write %s: %s", tmp, strerror(-r));
        }
        fd = safe_close(fd);
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return backend_fail(ret_why, r, "cannot replace %s: %s", path, strerror(-r));
        }
        /* the rename is durable only once the directory entry is */
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0) {
                r = -errno;
                return backend_fail(ret_why, r, "cannot sync directory %s: %s", dir, strerror(-r));
        }
        return 0;
}
