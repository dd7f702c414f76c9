/* The audit log (DESIGN §9): hash-chained, optionally signed JSON Lines appended under a lock,
 * its verification, and the signing key pair. Records carry names and metadata, never a value. */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <sodium.h>

#include "agent.h"
#include "output.h"

#define HASH_BYTES crypto_generichash_BYTES          /* 32: BLAKE2b-256 */
#define HASH_HEX (HASH_BYTES * 2)
#define SIG_HEX (crypto_sign_BYTES * 2)
#define TAIL_CHUNK 4096
#define KEY_FILE_MAX 1024

/* `,"sig":"` + 128 hex + `"}`: the signature is always the record's last member, so the
 * signed bytes are the line minus this suffix, plus the closing brace. */
#define SIG_PREFIX ",\"sig\":\""
#define SIG_SUFFIX_LEN (sizeof(SIG_PREFIX) - 1 + SIG_HEX + 2)

struct audit {
        char *path;
        char run_id[17];
        uint64_t seq;
        struct secret *key;   /* Ed25519 secret key (64 bytes), or NULL: unsigned records */
        json_t *queue;        /* records appended but not yet written: [ts, event, fields] */
};

const char *audit_path(const struct audit *a) {
        return a->path;
}

const char *audit_run_id(const struct audit *a) {
        return a->run_id;
}

const char *audit_strerror(int k) {
        switch (k) {
        case -EBADMSG: return "its last line is an incomplete record [check it with 'secrets-run audit verify']";
        case -EKEYREJECTED: return "the signing key ($SECRETS_RUN_AUDIT_KEY) is not an Ed25519 secret key file from 'secrets-run audit keygen'";
        case -EPERM: return "the signing key file ($SECRETS_RUN_AUDIT_KEY) is readable by others: it must be mode 0600";
        default: return strerror(-k);
        }
}

/* ---- location ---- */

int audit_log_path(const struct options *o, const struct manifest *m, char **ret) {
        char *p = NULL;
        const char *env = getenv("SECRETS_RUN_AUDIT_LOG");
        const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        if (o->audit_log && *o->audit_log)
                p = strdup(o->audit_log);
        else if (m && m->policy.audit_log && *m->policy.audit_log)
                (void) manifest_file(m, m->policy.audit_log, &p);   /* p stays NULL on -ENOMEM */
        else if (env && *env)
                p = strdup(env);
        else if (state && *state == '/')
                p = strdup_printf("%s/secrets-run/audit.jsonl", state);
        else if (home && *home == '/')
                p = strdup_printf("%s/.local/state/secrets-run/audit.jsonl", home);
        else
                return -ENOENT;
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int audit_open_for(const struct options *o, const struct manifest *m, struct audit **ret) {
        _cleanup_free_ char *path = NULL;
        int k = audit_log_path(o, m, &path);
        if (k < 0) {
                log_error("audit log: no location: %s [pass --audit-log PATH to run, or set policy.audit_log, "
                          "$SECRETS_RUN_AUDIT_LOG or $HOME]", strerror(-k));
                return k;
        }
        if ((k = audit_open(path, getenv("SECRETS_RUN_AUDIT_KEY"), ret)) < 0) {
                /* the default place (a read-only HOME, a container's) is not the user's choice:
                 * say where else it can go */
                const char *env = getenv("SECRETS_RUN_AUDIT_LOG");
                bool chosen = (o->audit_log && *o->audit_log) || (m && m->policy.audit_log && *m->policy.audit_log) ||
                              (env && *env);
                log_error("audit log %s: %s%s", path, audit_strerror(k),
                          chosen ? "" : " [the default location: pass --audit-log PATH, or set policy.audit_log or "
                                        "$SECRETS_RUN_AUDIT_LOG]");
        }
        return k;
}

/* Creates the missing directories above path, each 0700. */
static int mkdir_parents(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        for (char *s = strchr(copy + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(copy, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

/* ---- keys ---- */

static int write_new_file(const char *path, mode_t mode, const char *text, size_t n) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        int k = write_all(fd, text, n);
        if (k >= 0 && fsync(fd) < 0)
                k = -errno;
        if (k < 0)
                (void) unlink(path);
        return k;
}

int audit_keygen(const char *secret_path, const char *public_path) {
        unsigned char pk[crypto_sign_PUBLICKEYBYTES];
        unsigned char *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
        char *sk_hex = sodium_malloc(crypto_sign_SECRETKEYBYTES * 2 + 2);
        char pk_hex[crypto_sign_PUBLICKEYBYTES * 2 + 2];
        int k = -ENOMEM;
        if (!sk || !sk_hex)
                goto out_free;
        crypto_sign_keypair(pk, sk);
        sodium_bin2hex(sk_hex, crypto_sign_SECRETKEYBYTES * 2 + 1, sk, crypto_sign_SECRETKEYBYTES);
        strcat(sk_hex, "\n");
        sodium_bin2hex(pk_hex, sizeof pk_hex - 1, pk, sizeof pk);
        strcat(pk_hex, "\n");
        if ((k = mkdir_parents(secret_path)) < 0 || (k = mkdir_parents(public_path)) < 0)
                goto out_free;
        if ((k = write_new_file(secret_path, 0600, sk_hex, strlen(sk_hex))) < 0)
                goto out_free;
        if ((k = write_new_file(public_path, 0644, pk_hex, strlen(pk_hex))) < 0)
                (void) unlink(secret_path);
out_free:
        sodium_free(sk);    /* wipes */
        sodium_free(sk_hex);
        return k;
}

/* Reads a hex key file of exactly n bytes; the secret one only if no one else can read it. */
static int read_key_file(const char *path, size_t n, bool secret_key, struct secret **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EKEYREJECTED;
        if (secret_key && (st.st_mode & 077))
                return -EPERM;
        _cleanup_secret_ struct secret *text = NULL, *key = NULL;
        int k;
        if ((k = secret_new(KEY_FILE_MAX, &text)) < 0 || (k = secret_read_fd(text, fd, KEY_FILE_MAX)) < 0)
                return k == -EFBIG ? -EKEYREJECTED : k;
        secret_chomp(text);
        if (secret_len(text) != n * 2)
                return -EKEYREJECTED;
        if ((k = secret_new(n, &key)) < 0)
                return k;
        const char *hex = (const char *) secret_data(text);
        for (size_t i = 0; i < n; i++) {
                unsigned char b;
                size_t got = 0;
                if (sodium_hex2bin(&b, 1, hex + 2 * i, 2, NULL, &got, NULL) < 0 || got != 1)
                        return -EKEYREJECTED;
                k = secret_append(key, &b, 1);
                sodium_memzero(&b, 1);
                if (k < 0)
                        return k;
        }
        *ret = steal_pointer(&key);
        return 0;
}

int audit_read_public_key(const char *path, unsigned char ret[AUDIT_PUBLIC_KEY_BYTES]) {
        _cleanup_secret_ struct secret *key = NULL;
        int k = read_key_file(path, crypto_sign_PUBLICKEYBYTES, false, &key);
        if (k < 0)
                return k;
        memcpy(ret, secret_data(key), crypto_sign_PUBLICKEYBYTES);
        return 0;
}

/* ---- writing ---- */

int audit_open(const char *path, const char *key_path, struct audit **ret) {
        _cleanup_(audit_freep) struct audit *a = calloc(1, sizeof(*a));
        if (!a || !(a->path = strdup(path)))
                return -ENOMEM;
        unsigned char id[8];
        randombytes_buf(id, sizeof id);
        sodium_bin2hex(a->run_id, sizeof a->run_id, id, sizeof id);
        int k;
        if ((k = mkdir_parents(path)) < 0)
                return k;
        /* fail now, before the step, if the log cannot be written */
        _cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (key_path && *key_path && (k = read_key_file(key_path, crypto_sign_SECRETKEYBYTES, true, &a->key)) < 0)
                return k;
        *ret = steal_pointer(&a);
        return 0;
}

struct audit *audit_free(struct audit *a) {
        if (a) {
                json_decref(a->queue);
                secret_free(a->key);
                free(a->path);
                free(a);
        }
        return NULL;
}

/* BLAKE2b-256 of the file's last line (with its newline), found by reading back from the end
 * in chunks; all zeros for an empty file. -EBADMSG if the file does not end in a newline. */
static int last_line_hash(int fd, unsigned char ret[HASH_BYTES]) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        off_t size = st.st_size;
        if (size == 0) {
                memset(ret, 0, HASH_BYTES);
                return 0;
        }
        char buf[TAIL_CHUNK];
        char last;
        if (pread(fd, &last, 1, size - 1) != 1)
                return errno ? -errno : -EIO;
        if (last != '\n')
                return -EBADMSG;
        off_t start = 0, end = size - 1;   /* look for the newline before the final one */
        while (end > 0) {
                off_t from = end > TAIL_CHUNK ? end - TAIL_CHUNK : 0;
                ssize_t n = pread(fd, buf, (size_t) (end - from), from);
                if (n != end - from)
                        return n < 0 ? -errno : -EIO;
                char *nl = memrchr(buf, '\n', (size_t) n);
                if (nl) {
                        start = from + (nl - buf) + 1;
                        break;
                }
                end = from;
        }
        crypto_generichash_state h;
        crypto_generichash_init(&h, NULL, 0, HASH_BYTES);
        for (off_t at = start; at < size;) {
                size_t want = size - at > TAIL_CHUNK ? TAIL_CHUNK : (size_t) (size - at);
                ssize_t n = pread(fd, buf, want, at);
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                crypto_generichash_update(&h, (const unsigned char *) buf, (size_t) n);
                at += n;
        }
        crypto_generichash_final(&h, ret, HASH_BYTES);
        return 0;
}

static void format_now(char *buf, size_t size) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* The line for a record: compact JSON with `sig` last when signing, and a newline. */
static int serialize(const struct audit *a, json_t *record, char **ret, size_t *ret_len) {
        _cleanup_(json_text_freep) char *body = json_dumps(record, JSON_COMPACT);
        if (!body)
                return -ENOMEM;
        size_t len = strlen(body);
        if (!a->key) {
                char *line = strdup_printf("%s\n", body);
                if (!line)
                        return -ENOMEM;
                *ret = line;
                *ret_len = len + 1;
                return 0;
        }
        unsigned char sig[crypto_sign_BYTES];
        char sig_hex[SIG_HEX + 1];
        crypto_sign_detached(sig, NULL, (const unsigned char *) body, len, secret_data(a->key));
        sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
        body[len - 1] = '\0';   /* drop the closing brace: sig goes in as the last member */
        char *line = strdup_printf("%s" SIG_PREFIX "%s\"}\n", body, sig_hex);
        if (!line)
                return -ENOMEM;
        *ret = line;
        *ret_len = strlen(line);
        return 0;
}

static void mask_strings(json_t *v);

/* item masked: a new string to put in its place, or NULL to leave it (masked inside, or
 * nothing to mask). */
static json_t *masked_item(json_t *item) {
        if (!json_is_string(item)) {
                mask_strings(item);
                return NULL;
        }
        _cleanup_free_ char *masked = output_mask(json_string_value(item), json_string_length(item), NULL);
        return masked ? json_string(masked) : NULL;
}

/* Every string in v (objects and arrays too) through the masker: a reason a backend gave, a
 * path a step chose, cannot carry a value or credential into the log. */
static void mask_strings(json_t *v) {
        const char *key;
        json_t *item, *masked;
        size_t i;
        if (json_is_object(v)) {
                json_object_foreach(v, key, item)
                        if ((masked = masked_item(item)))
                                json_object_set_new(v, key, masked);
        } else if (json_is_array(v))
                json_array_foreach(v, i, item)
                        if ((masked = masked_item(item)))
                                json_array_set_new(v, i, masked);
}

int audit_append(struct audit *a, const char *event, json_t *fields) {
        /* the time is the event's, not the write's */
        char ts[40];
        format_now(ts, sizeof ts);
        if (!a->queue && !(a->queue = json_array())) {
                json_decref(fields);
                return -ENOMEM;
        }
        json_t *entry = json_pack("[s, s, o]", ts, event, fields);   /* takes ownership of fields */
        if (!entry || json_array_append_new(a->queue, entry) < 0)
                return -ENOMEM;
        return 0;
}

/* Writes the queued records as one append under the lock, with one fsync: a run's records
 * before its step starts cost one disk flush, not one each. Each record's prev is the hash
 * of the line before it, the file's last line for the first. */
int audit_flush(struct audit *a) {
        if (!a->queue || json_array_size(a->queue) == 0)
                return 0;
        _cleanup_close_ int fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        /* one writer at a time: the prev we read stays the line before ours */
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return -errno;
        unsigned char prev[HASH_BYTES];
        char prev_hex[HASH_HEX + 1];
        _cleanup_free_ char *batch = NULL;
        size_t batch_len = 0;
        struct stat st;
        int k = 0;
        if ((k = last_line_hash(fd, prev)) < 0 || fstat(fd, &st) < 0) {
                k = k < 0 ? k : -errno;
                goto out_unlock;
        }
        size_t i;
        json_t *entry;
        json_array_foreach(a->queue, i, entry) {
                sodium_bin2hex(prev_hex, sizeof prev_hex, prev, sizeof prev);
                json_t *record = json_pack("{s:s, s:s, s:I, s:s}", "ts", json_string_value(json_array_get(entry, 0)),
                                           "run", a->run_id, "seq", (json_int_t) (a->seq + i + 1), "event",
                                           json_string_value(json_array_get(entry, 1)));
                if (!record) {
                        k = -ENOMEM;
                        goto out_unlock;
                }
                const char *key;
                json_t *value;
                /* masked as it goes to disk: once for a batch, against every value held by then */
                mask_strings(json_array_get(entry, 2));
                json_object_foreach(json_array_get(entry, 2), key, value)
                        if (json_object_set(record, key, value) < 0)
                                k = -ENOMEM;
                _cleanup_free_ char *line = NULL;
                size_t len = 0;
                if (k == 0 && json_object_set_new(record, "prev", json_string(prev_hex)) < 0)
                        k = -ENOMEM;
                if (k == 0)
                        k = serialize(a, record, &line, &len);
                json_decref(record);
                if (k < 0)
                        goto out_unlock;
                char *t = realloc(batch, batch_len + len);
                if (!t) {
                        k = -ENOMEM;
                        goto out_unlock;
                }
                batch = t;
                memcpy(batch + batch_len, line, len);
                batch_len += len;
                crypto_generichash(prev, sizeof prev, (const unsigned char *) line, len, NULL, 0);
        }
        /* one write, so a reader never sees half a record; undo a short one */
        ssize_t n = write(fd, batch, batch_len);
        if (n != (ssize_t) batch_len) {
                k = n < 0 ? -errno : -ENOSPC;
                if (n > 0 && ftruncate(fd, st.st_size) < 0)
                        log_warning("audit log %s: cannot undo a partial record: %s", a->path, strerror(errno));
                goto out_unlock;
        }
        if (fsync(fd) < 0) {
                k = -errno;
                goto out_unlock;
        }
        a->seq += json_array_size(a->queue);
        json_array_clear(a->queue);
out_unlock:
        (void) flock(fd, LOCK_UN);
        return k;
}

/* ---- verification ---- */

struct line {
        const char *p;
        size_t len;            /* with the newline, if there is one */
        unsigned char hash[HASH_BYTES];
};

struct run_seq {
        char *run;
        int64_t seq;
};

static void verdict_bad(struct audit_verdict *v, size_t line, const char *fmt, ...) _printf_(3, 4);
static void verdict_bad(struct audit_verdict *v, size_t line, const char *fmt, ...) {
        va_list ap;
        v->intact = false;
        v->first_bad_line = line;
        va_start(ap, fmt);
        vsnprintf(v->reason, sizeof v->reason, fmt, ap);
        va_end(ap);
}

static bool is_hex(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static bool signature_ok(const struct line *l, const char *sig, const unsigned char *public_key) {
        size_t n = l->len - 1;   /* without the newline */
        if (n < SIG_SUFFIX_LEN + 2 || !is_hex(sig, SIG_HEX))
                return false;
        const char *suffix = l->p + n - SIG_SUFFIX_LEN;
        if (memcmp(suffix, SIG_PREFIX, sizeof(SIG_PREFIX) - 1) != 0 ||
            memcmp(suffix + sizeof(SIG_PREFIX) - 1, sig, SIG_HEX) != 0 || memcmp(l->p + n - 2, "\"}", 2) != 0)
                return false;   /* sig is not the last member as written */
        size_t signed_len = n - SIG_SUFFIX_LEN + 1;
        _cleanup_free_ char *signed_bytes = malloc(signed_len);
        unsigned char raw[crypto_sign_BYTES];
        if (!signed_bytes || sodium_hex2bin(raw, sizeof raw, sig, SIG_HEX, NULL, NULL, NULL) < 0)
                return false;
        memcpy(signed_bytes, l->p, signed_len - 1);
        signed_bytes[signed_len - 1] = '}';
        return crypto_sign_verify_detached(raw, (const unsigned char *) signed_bytes, signed_len, public_key) == 0;
}

/* Why line i's prev does not match the line before it, and which line to blame. */
static void explain_broken_link(const struct line *lines, size_t n_lines, size_t i, const char *prev_hex,
                                const char *run, int64_t seq, const char *prev_run, int64_t prev_seq,
                                struct audit_verdict *v) {
        unsigned char prev[HASH_BYTES];
        static const unsigned char zeros[HASH_BYTES];
        (void) sodium_hex2bin(prev, sizeof prev, prev_hex, HASH_HEX, NULL, NULL, NULL);
        for (size_t j = i + 1; j < n_lines; j++)
                if (memcmp(lines[j].hash, prev, HASH_BYTES) == 0) {
                        verdict_bad(v, i + 1, "reordered: this record follows line %zu, which comes after it", j + 1);
                        return;
                }
        if (i == 0) {
                verdict_bad(v, 1, "prev of the first line is not zeros: records before it were deleted");
                return;
        }
        if (memcmp(prev, zeros, HASH_BYTES) == 0) {
                verdict_bad(v, i + 1, "prev is zeros, as for a file's first record: lines before it were inserted");
                return;
        }
        for (size_t j = 0; j + 1 < i; j++)
                if (memcmp(lines[j].hash, prev, HASH_BYTES) == 0) {
                        verdict_bad(v, i + 1, "reordered or deleted: this record follows line %zu, not line %zu",
                                    j + 1, i);
                        return;
                }
        if (prev_run && streq(prev_run, run) && seq == prev_seq + 1) {
                verdict_bad(v, i, "edited: its hash no longer matches the prev recorded by line %zu", i + 1);
                return;
        }
        if (prev_run && streq(prev_run, run) && seq > prev_seq + 1) {
                verdict_bad(v, i + 1, "deleted: %lld record(s) of run %s are missing before this line",
                            (long long) (seq - prev_seq - 1), run);
                return;
        }
        verdict_bad(v, i + 1, "prev does not match line %zu: line %zu was edited, or records before this line were deleted",
                    i, i);
}

static int verify_lines(const struct line *lines, size_t n_lines, const unsigned char *public_key,
                        struct audit_verdict *v) {
        struct run_seq *runs = NULL;
        size_t n_runs = 0;
        _cleanup_free_ char *prev_run = NULL;
        int64_t prev_seq = 0;
        int k = 0;
        for (size_t i = 0; i < n_lines && v->intact; i++) {
                const struct line *l = &lines[i];
                if (l->len == 0 || l->p[l->len - 1] != '\n') {
                        verdict_bad(v, i + 1, "truncated mid-line: the last line has no newline");
                        break;
                }
                json_t *rec = json_loadb(l->p, l->len - 1, JSON_REJECT_DUPLICATES, NULL);
                const char *ts = NULL, *run = NULL, *event = NULL, *prev = NULL, *sig = NULL;
                json_int_t seq = 0;
                if (!json_is_object(rec)) {
                        verdict_bad(v, i + 1, "not a JSON record: edited or truncated");
                        json_decref(rec);
                        break;
                }
                if (json_unpack(rec, "{s:s, s:s, s:I, s:s, s:s, s?:s}", "ts", &ts, "run", &run, "seq", &seq,
                                "event", &event, "prev", &prev, "sig", &sig) < 0 ||
                    seq < 1 || !is_hex(prev, HASH_HEX)) {
                        verdict_bad(v, i + 1, "a required member (ts, run, seq, event, prev) is missing or malformed: edited");
                } else if (public_key && !sig) {
                        verdict_bad(v, i + 1, "no signature, and a public key was given: unsigned or stripped record");
                } else if (public_key && !signature_ok(l, sig, public_key)) {
                        verdict_bad(v, i + 1, "bad signature: the record was edited or signed with another key");
                } else {
                        unsigned char want[HASH_BYTES] = {};
                        char want_hex[HASH_HEX + 1];
                        if (i > 0)
                                memcpy(want, lines[i - 1].hash, HASH_BYTES);
                        sodium_bin2hex(want_hex, sizeof want_hex, want, sizeof want);
                        if (!streq(prev, want_hex))
                                explain_broken_link(lines, n_lines, i, prev, run, seq, prev_run, prev_seq, v);
                }
                if (v->intact) {
                        struct run_seq *rs = NULL;
                        for (size_t j = 0; j < n_runs; j++)
                                if (streq(runs[j].run, run))
                                        rs = &runs[j];
                        if (rs && seq <= rs->seq)
                                verdict_bad(v, i + 1, "reordered: seq %lld of run %s comes after seq %lld",
                                            (long long) seq, run, (long long) rs->seq);
                        else if (rs && seq != rs->seq + 1)
                                verdict_bad(v, i + 1, "deleted: seq of run %s jumps from %lld to %lld", run,
                                            (long long) rs->seq, (long long) seq);
                        else if (rs)
                                rs->seq = seq;
                        else {
                                struct run_seq *grown = realloc(runs, (n_runs + 1) * sizeof(*runs));
                                char *copy = strdup(run);
                                if (!grown || !copy) {
                                        free(copy);
                                        if (grown)
                                                runs = grown;
                                        k = -ENOMEM;
                                        json_decref(rec);
                                        break;
                                }
                                runs = grown;
                                runs[n_runs++] = (struct run_seq) { copy, seq };
                        }
                }
                if (v->intact) {
                        free(prev_run);
                        prev_run = strdup(run);
                        prev_seq = seq;
                        if (!prev_run)
                                k = -ENOMEM;
                }
                json_decref(rec);
                if (k < 0)
                        break;
        }
        for (size_t j = 0; j < n_runs; j++)
                free(runs[j].run);
        free(runs);
        return k;
}

int audit_verify_buffer(const char *p, size_t size, const unsigned char *public_key, struct audit_verdict *ret) {
        struct audit_verdict v = { .intact = true };
        size_t n_lines = 0;
        for (size_t at = 0; at < size;) {
                const char *nl = memchr(p + at, '\n', size - at);
                at = nl ? (size_t) (nl - p) + 1 : size;
                n_lines++;
        }
        _cleanup_free_ struct line *lines = calloc(n_lines ? n_lines : 1, sizeof(*lines));
        if (!lines)
                return -ENOMEM;
        size_t i = 0;
        for (size_t at = 0; at < size; i++) {
                const char *nl = memchr(p + at, '\n', size - at);
                size_t end = nl ? (size_t) (nl - p) + 1 : size;
                lines[i].p = p + at;
                lines[i].len = end - at;
                crypto_generichash(lines[i].hash, HASH_BYTES, (const unsigned char *) lines[i].p, lines[i].len, NULL, 0);
                at = end;
        }
        v.records = n_lines;
        int k = verify_lines(lines, n_lines, public_key, &v);
        if (k < 0)
                return k;
        *ret = v;
        return 0;
}

int audit_verify_file(const char *path, const unsigned char *public_key, struct audit_verdict *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size == 0)
                return audit_verify_buffer("", 0, public_key, ret);
        void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        int k = audit_verify_buffer(p, (size_t) st.st_size, public_key, ret);
        munmap(p, (size_t) st.st_size);
        return k;
}

/* ---- the `audit` command ---- */

static int default_key_paths(char **ret_secret, char **ret_public) {
        _cleanup_free_ char *secret = NULL;
        int k = config_path("audit.key", &secret);
        if (k < 0 || (k = config_path("audit.pub", ret_public)) < 0)
                return k;
        *ret_secret = steal_pointer(&secret);
        return 0;
}

static int command_audit_keygen(const struct options *o) {
        _cleanup_free_ char *secret_path = NULL, *public_path = NULL;
        size_t n = strv_length(o->args);
        if (n > 3) {
                log_error("audit keygen: unexpected argument '%s' [usage: secrets-run audit keygen [SECRET_KEY [PUBLIC_KEY]]]",
                          o->args[3]);
                return 2;
        }
        int k = 0;
        if (n >= 2) {
                secret_path = strdup(o->args[1]);
                public_path = n == 3 ? strdup(o->args[2]) : strdup_printf("%s.pub", o->args[1]);
                if (!secret_path || !public_path)
                        k = -ENOMEM;
        } else
                k = default_key_paths(&secret_path, &public_path);
        if (k < 0) {
                log_error("audit keygen: no key path: %s [pass SECRET_KEY or set $XDG_CONFIG_HOME]", strerror(-k));
                return 2;
        }
        if ((k = audit_keygen(secret_path, public_path)) < 0) {
                log_error("audit keygen: %s / %s: %s%s", secret_path, public_path, strerror(-k),
                          k == -EEXIST ? " [keys are never overwritten: remove them first or pass other paths]" : "");
                return 2;
        }
        if (o->format == FORMAT_JSON) {
                json_t *doc = json_pack("{s:s, s:s}", "secret_key", secret_path, "public_key", public_path);
                json_dumpf(doc, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
                json_decref(doc);
        } else
                printf("secret key: %s (sign with SECRETS_RUN_AUDIT_KEY=%s)\npublic key: %s (verify with --public-key)\n",
                       secret_path, secret_path, public_path);
        return 0;
}

static int command_audit_verify(const struct options *o) {
        if (strv_length(o->args) != 2) {
                log_error("audit verify: %s [usage: secrets-run audit verify FILE [--public-key F]]",
                          strv_length(o->args) < 2 ? "no FILE given" : "more than one FILE given");
                return 2;
        }
        const char *path = o->args[1];
        unsigned char pk[AUDIT_PUBLIC_KEY_BYTES];
        int k;
        if (o->public_key && (k = audit_read_public_key(o->public_key, pk)) < 0) {
                log_error("--public-key %s: %s", o->public_key,
                          k == -EKEYREJECTED ? "not a public key file from 'secrets-run audit keygen'" : strerror(-k));
                return 2;
        }
        struct audit_verdict v;
        if ((k = audit_verify_file(path, o->public_key ? pk : NULL, &v)) < 0) {
                log_error("audit verify: %s: %s", path, k == -EINVAL ? "not a regular file" : strerror(-k));
                return 2;
        }
        if (o->format == FORMAT_JSON) {
                json_t *doc = json_pack("{s:b, s:I}", "intact", v.intact, "records", (json_int_t) v.records);
                json_object_set_new(doc, "first_bad_line", v.intact ? json_null() : json_integer((json_int_t) v.first_bad_line));
                json_object_set_new(doc, "reason", v.intact ? json_null() : json_string(v.reason));
                json_dumpf(doc, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
                json_decref(doc);
        } else if (v.intact)
                printf("%zu record%s, intact%s\n", v.records, v.records == 1 ? "" : "s",
                       o->public_key ? ", every signature valid" : "");
        else
                printf("%s:%zu: tampered: %s\n", path, v.first_bad_line, v.reason);
        return v.intact ? 0 : 1;
}

int command_audit(const struct options *o) {
        const char *sub = o->args ? o->args[0] : NULL;
        if (sub && streq(sub, "verify"))
                return command_audit_verify(o);
        if (sub && streq(sub, "keygen")) {
                if (o->public_key) {
                        log_error("audit keygen: --public-key applies to 'audit verify'");
                        return 2;
                }
                return command_audit_keygen(o);
        }
        log_error("audit: %s [usage: secrets-run audit verify FILE [--public-key F] | audit keygen [SECRET_KEY [PUBLIC_KEY]]]",
                  sub ? "unknown sub-command" : "no sub-command given");
        return 2;
}
