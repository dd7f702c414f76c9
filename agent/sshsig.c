/* OpenSSH's signature format (PROTOCOL.sshsig), keys (RFC 4253 wire encoding, PROTOCOL.key's
 * openssh-key-v1 private keys) and allowed_signers files (ssh-keygen(1)), read and written
 * here so approvals verify in-process: Ed25519 with libsodium; other key types are told apart
 * and refused by name. */
#include <ctype.h>
#include <fcntl.h>
#include <sodium.h>
#include <strings.h>
#include <time.h>

#include "approval.h"

#define SSHSIG_MAGIC "SSHSIG"
#define SSHSIG_VERSION 1
#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
#define KEY_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define KEY_END "-----END OPENSSH PRIVATE KEY-----"
#define KEY_MAGIC "openssh-key-v1"   /* followed by a NUL */
#define ARMOR_COLUMNS 70             /* what ssh-keygen writes */
#define KEY_FILE_MAX (64 * 1024)
#define SIGNERS_FILE_MAX (1024 * 1024)

/* ---- the wire format: uint32 big-endian, string = uint32 length + bytes ---- */

struct wire {
        const unsigned char *p;
        size_t n;
};

static bool wire_u32(struct wire *w, uint32_t *ret) {
        if (w->n < 4)
                return false;
        *ret = (uint32_t) w->p[0] << 24 | (uint32_t) w->p[1] << 16 | (uint32_t) w->p[2] << 8 | w->p[3];
        w->p += 4;
        w->n -= 4;
        return true;
}

static bool wire_string(struct wire *w, struct wire *ret) {
        uint32_t len;
        if (!wire_u32(w, &len) || len > w->n)
                return false;
        *ret = (struct wire) { w->p, len };
        w->p += len;
        w->n -= len;
        return true;
}

static bool wire_is(const struct wire *w, const char *s) {
        return w->n == strlen(s) && memcmp(w->p, s, w->n) == 0;
}

struct buf {
        unsigned char *p;
        size_t n, allocated;
        bool oom;
};

static void buf_add(struct buf *b, const void *p, size_t n) {
        if (b->oom)
                return;
        if (b->n + n > b->allocated) {
                size_t a = b->allocated ? b->allocated : 256;
                while (a < b->n + n)
                        a *= 2;
                unsigned char *t = realloc(b->p, a);
                if (!t) {
                        b->oom = true;
                        return;
                }
                b->p = t;
                b->allocated = a;
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
}

static void buf_u32(struct buf *b, uint32_t v) {
        unsigned char x[4] = { v >> 24, v >> 16, v >> 8, v };
        buf_add(b, x, 4);
}

static void buf_string(struct buf *b, const void *p, size_t n) {
        buf_u32(b, (uint32_t) n);
        buf_add(b, p, n);
}

/* ---- keys ---- */

void ssh_key_done(struct ssh_key *k) {
        if (!k)
                return;
        free(k->blob);
        *k = (struct ssh_key) {};
}

bool ssh_key_equal(const struct ssh_key *a, const struct ssh_key *b) {
        return a->blob_len == b->blob_len && a->blob && b->blob && memcmp(a->blob, b->blob, a->blob_len) == 0;
}

/* A key from its wire encoding: the type, and for Ed25519 the 32-byte point. */
static int key_from_blob(const unsigned char *p, size_t n, struct ssh_key *ret, const char **ret_why) {
        struct wire w = { p, n }, type, pk;
        if (!wire_string(&w, &type) || type.n == 0 || type.n >= sizeof ret->type) {
                *ret_why = "the key is malformed";
                return -EINVAL;
        }
        struct ssh_key k = {};
        memcpy(k.type, type.p, type.n);
        if (memchr(k.type, '\0', type.n)) {
                *ret_why = "the key is malformed";
                return -EINVAL;
        }
        if (streq(k.type, "ssh-ed25519")) {
                if (!wire_string(&w, &pk) || pk.n != 32 || w.n != 0) {
                        *ret_why = "the Ed25519 key is malformed";
                        return -EINVAL;
                }
                memcpy(k.pk, pk.p, 32);
                k.ed25519 = true;
        }
        if (!(k.blob = malloc(n)))
                return -ENOMEM;
        memcpy(k.blob, p, n);
        k.blob_len = n;
        *ret = k;
        return 0;
}

const char *ssh_key_fingerprint(const struct ssh_key *k, char *buf, size_t size) {
        unsigned char h[crypto_hash_sha256_BYTES];
        char b64[sodium_base64_ENCODED_LEN(sizeof h, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
        crypto_hash_sha256(h, k->blob, k->blob_len);
        sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
        snprintf(buf, size, "SHA256:%s", b64);
        return buf;
}

/* Base64 (whitespace ignored) into a malloc'd buffer. */
static int base64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_n) {
        size_t max = len / 4 * 3 + 3;
        _cleanup_free_ unsigned char *out = malloc(max ? max : 1);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        const char *end = NULL;
        if (sodium_base642bin(out, max, s, len, " \t\r\n", &n, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            (end && end != s + len))
                return -EINVAL;
        *ret = steal_pointer(&out);
        *ret_n = n;
        return 0;
}

static char *base64_encode(const unsigned char *p, size_t n) {
        size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
        char *s = malloc(len);
        if (s)
                sodium_bin2base64(s, len, p, n, sodium_base64_VARIANT_ORIGINAL);
        return s;
}

/* A public key in its text form, TYPE BASE64, starting at s; *ret_end after the base64. */
static int public_key_words(const char *s, struct ssh_key *ret, const char **ret_end, const char **ret_why) {
        s += strspn(s, " \t");
        size_t type_len = strcspn(s, " \t\r\n");
        const char *b64 = s + type_len;
        b64 += strspn(b64, " \t");
        size_t b64_len = strcspn(b64, " \t\r\n");
        if (type_len == 0 || b64_len == 0) {
                *ret_why = "expected a key type and a base64 key";
                return -EINVAL;
        }
        _cleanup_free_ unsigned char *blob = NULL;
        size_t n;
        int k = base64_decode(b64, b64_len, &blob, &n);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                *ret_why = "the key is not valid base64";
                return k;
        }
        struct ssh_key key;
        if ((k = key_from_blob(blob, n, &key, ret_why)) < 0)
                return k;
        if (strlen(key.type) != type_len || strncmp(key.type, s, type_len) != 0) {
                ssh_key_done(&key);
                *ret_why = "the key's type does not match the type written before it";
                return -EINVAL;
        }
        *ret = key;
        if (ret_end)
                *ret_end = b64 + b64_len;
        return 0;
}

int ssh_public_key_parse(const char *line, struct ssh_key *ret, const char **ret_why) {
        return public_key_words(line, ret, NULL, ret_why);
}

char *ssh_public_key_format(const struct ssh_key *k) {
        _cleanup_free_ char *b64 = base64_encode(k->blob, k->blob_len);
        return b64 ? strdup_printf("%s %s", k->type, b64) : NULL;
}

/* The private section of an unencrypted openssh-key-v1 file (PROTOCOL.key): two equal check
 * words, then per key its type, public and private parts and a comment. The secret key is
 * copied into secure memory; everything else read here is public. */
static int private_section(struct wire *w, const struct ssh_key *pub, struct secret **ret_sk, const char **ret_why) {
        uint32_t check1, check2;
        struct wire type, pk, sk;
        if (!wire_u32(w, &check1) || !wire_u32(w, &check2) || check1 != check2 || !wire_string(w, &type)) {
                *ret_why = "the private key is malformed";
                return -EINVAL;
        }
        if (!wire_is(&type, "ssh-ed25519")) {
                *ret_why = "only Ed25519 keys can sign here (ssh-keygen -t ed25519)";
                return -EPROTONOSUPPORT;
        }
        if (!wire_string(w, &pk) || pk.n != 32 || !wire_string(w, &sk) || sk.n != 64 ||
            memcmp(pk.p, pub->pk, 32) != 0 || memcmp(sk.p + 32, pk.p, 32) != 0) {
                *ret_why = "the private key is malformed";
                return -EINVAL;
        }
        return secret_from_bytes(sk.p, 64, ret_sk);
}

/* The armored body between begin and end of text (all in secure memory), decoded into secure
 * memory a chunk at a time. */
static int decode_private_armor(const struct secret *text, struct secret **ret, const char **ret_why) {
        const char *t = (const char *) secret_data(text);
        size_t n = secret_len(text);
        const char *begin = memmem(t, n, KEY_BEGIN, strlen(KEY_BEGIN));
        const char *end = begin ? memmem(begin, n - (size_t) (begin - t), KEY_END, strlen(KEY_END)) : NULL;
        if (!begin || !end) {
                *ret_why = "not an OpenSSH private key or public key";
                return -EINVAL;
        }
        _cleanup_secret_ struct secret *out = NULL;
        int k = secret_new(n, &out);
        if (k < 0)
                return k;
        char chunk[64];
        unsigned char bin[48];
        size_t used = 0;
        k = 0;
        for (const char *p = begin + strlen(KEY_BEGIN); p <= end && k == 0; p++) {
                if (p < end && isspace((unsigned char) *p))
                        continue;
                if (p < end)
                        chunk[used++] = *p;
                if (used == sizeof chunk || (p == end && used > 0)) {
                        size_t got = 0;
                        if (sodium_base642bin(bin, sizeof bin, chunk, used, NULL, &got, NULL,
                                              sodium_base64_VARIANT_ORIGINAL) != 0)
                                k = -EINVAL;
                        else
                                k = secret_append(out, bin, got);
                        used = 0;
                }
        }
        sodium_memzero(chunk, sizeof chunk);
        sodium_memzero(bin, sizeof bin);
        if (k == -EINVAL)
                *ret_why = "the private key is not valid base64";
        if (k < 0)
                return k;
        *ret = steal_pointer(&out);
        return 0;
}

static int private_key_parse(const struct secret *text, struct ssh_key *ret_pub, struct secret **ret_sk,
                             const char **ret_why) {
        _cleanup_secret_ struct secret *bin = NULL;
        int k = decode_private_armor(text, &bin, ret_why);
        if (k < 0)
                return k;
        struct wire w = { secret_data(bin), secret_len(bin) }, cipher, kdf, kdfopts, pub, priv;
        uint32_t n_keys;
        size_t magic = strlen(KEY_MAGIC) + 1;
        if (w.n < magic || memcmp(w.p, KEY_MAGIC, magic) != 0) {
                *ret_why = "not an openssh-key-v1 private key";
                return -EINVAL;
        }
        w.p += magic;
        w.n -= magic;
        if (!wire_string(&w, &cipher) || !wire_string(&w, &kdf) || !wire_string(&w, &kdfopts) ||
            !wire_u32(&w, &n_keys) || n_keys != 1 || !wire_string(&w, &pub) || !wire_string(&w, &priv)) {
                *ret_why = "the private key is malformed (or holds more than one key)";
                return -EINVAL;
        }
        struct ssh_key key;
        if ((k = key_from_blob(pub.p, pub.n, &key, ret_why)) < 0)
                return k;
        if (!ret_sk) {   /* the public key is readable even when the private part is encrypted */
                *ret_pub = key;
                return 0;
        }
        if (!wire_is(&cipher, "none")) {
                ssh_key_done(&key);
                *ret_why = "the key is protected by a passphrase, which secrets-run does not read: sign with "
                           "ssh-keygen (the key in ssh-agent) and --print-payload, see docs/approvals.md";
                return -EPROTONOSUPPORT;
        }
        if (!key.ed25519) {
                ssh_key_done(&key);
                *ret_why = "only Ed25519 keys can sign here (ssh-keygen -t ed25519)";
                return -EPROTONOSUPPORT;
        }
        if ((k = private_section(&priv, &key, ret_sk, ret_why)) < 0) {
                ssh_key_done(&key);
                return k;
        }
        *ret_pub = key;
        return 0;
}

int ssh_key_load(const char *path, struct ssh_key *ret_pub, struct secret **ret_sk, const char **ret_why) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                *ret_why = NULL;
                return -errno;
        }
        _cleanup_secret_ struct secret *text = NULL;
        int k = secret_new(4096, &text);
        if (k < 0 || (k = secret_read_fd(text, fd, KEY_FILE_MAX)) < 0) {
                *ret_why = k == -EFBIG ? "the file is too large for a key" : NULL;
                return k;
        }
        if (ret_sk)
                *ret_sk = NULL;
        const char *t = (const char *) secret_data(text);
        size_t n = secret_len(text);
        if (!memmem(t, n, KEY_BEGIN, strlen(KEY_BEGIN))) {
                /* a public key line: nothing secret in it */
                _cleanup_free_ char *line = strndup(t, n);
                if (!line)
                        return -ENOMEM;
                return ssh_public_key_parse(line, ret_pub, ret_why);
        }
        return private_key_parse(text, ret_pub, ret_sk, ret_why);
}

/* ---- signatures ---- */

/* What the key signs: MAGIC, namespace, reserved, hash algorithm, H(message). */
static int signed_data(const char *ns, const struct wire *reserved, const char *hash_alg, const void *message,
                       size_t size, struct buf *ret) {
        unsigned char h[crypto_hash_sha512_BYTES];
        size_t h_len;
        if (streq(hash_alg, "sha512")) {
                crypto_hash_sha512(h, message, size);
                h_len = crypto_hash_sha512_BYTES;
        } else if (streq(hash_alg, "sha256")) {
                crypto_hash_sha256(h, message, size);
                h_len = crypto_hash_sha256_BYTES;
        } else
                return -EBADMSG;
        buf_add(ret, SSHSIG_MAGIC, strlen(SSHSIG_MAGIC));
        buf_string(ret, ns, strlen(ns));
        buf_string(ret, reserved->p, reserved->n);
        buf_string(ret, hash_alg, strlen(hash_alg));
        buf_string(ret, h, h_len);
        return ret->oom ? -ENOMEM : 0;
}

int sshsig_sign(const struct secret *sk, const struct ssh_key *pub, const void *message, size_t size,
                const char *ns, char **ret_armored) {
        if (!pub->ed25519 || secret_len(sk) != crypto_sign_SECRETKEYBYTES)
                return -EPROTONOSUPPORT;
        struct buf data = {}, sig = {}, blob = {};
        struct wire none = { (const unsigned char *) "", 0 };
        unsigned char s[crypto_sign_BYTES];
        int k = signed_data(ns, &none, "sha512", message, size, &data);
        if (k >= 0 && crypto_sign_detached(s, NULL, data.p, data.n, secret_data(sk)) != 0)
                k = -EINVAL;
        if (k >= 0) {
                buf_string(&sig, "ssh-ed25519", 11);
                buf_string(&sig, s, sizeof s);
                buf_add(&blob, SSHSIG_MAGIC, strlen(SSHSIG_MAGIC));
                buf_u32(&blob, SSHSIG_VERSION);
                buf_string(&blob, pub->blob, pub->blob_len);
                buf_string(&blob, ns, strlen(ns));
                buf_string(&blob, "", 0);
                buf_string(&blob, "sha512", 6);
                buf_string(&blob, sig.p, sig.n);
                k = sig.oom || blob.oom ? -ENOMEM : 0;
        }
        _cleanup_free_ char *b64 = k >= 0 ? base64_encode(blob.p, blob.n) : NULL;
        free(data.p), free(sig.p), free(blob.p);
        if (k < 0)
                return k;
        if (!b64)
                return -ENOMEM;
        struct buf out = {};
        buf_add(&out, ARMOR_BEGIN "\n", strlen(ARMOR_BEGIN) + 1);
        for (size_t i = 0, n = strlen(b64); i < n; i += ARMOR_COLUMNS) {
                buf_add(&out, b64 + i, n - i < ARMOR_COLUMNS ? n - i : ARMOR_COLUMNS);
                buf_add(&out, "\n", 1);
        }
        buf_add(&out, ARMOR_END "\n", strlen(ARMOR_END) + 2);   /* the NUL too */
        if (out.oom)
                return free(out.p), -ENOMEM;
        *ret_armored = (char *) out.p;
        return 0;
}

/* The blob inside the armor: the header at the start, the footer after a newline. */
static int armor_decode(const char *a, size_t n, unsigned char **ret, size_t *ret_n) {
        size_t begin = strlen(ARMOR_BEGIN);
        if (n < begin || memcmp(a, ARMOR_BEGIN, begin) != 0)
                return -EBADMSG;
        const char *body = a + begin, *end = memmem(body, n - begin, "\n" ARMOR_END, strlen(ARMOR_END) + 1);
        if (!end)
                return -EBADMSG;
        int k = base64_decode(body, (size_t) (end - body), ret, ret_n);
        return k == -EINVAL ? -EBADMSG : k;
}

int sshsig_verify(const char *armored, size_t armored_len, const void *message, size_t size, const char *ns,
                  struct ssh_key *ret_key, const char **ret_why) {
        _cleanup_free_ unsigned char *blob = NULL;
        size_t n;
        *ret_why = "the signature is not an armored SSH signature";
        int k = armor_decode(armored, armored_len, &blob, &n);
        if (k < 0)
                return k;
        struct wire w = { blob, n }, pub, sig_ns, reserved, hash, sig, sig_type, sig_bytes;
        uint32_t version;
        *ret_why = "the signature is malformed";
        if (w.n < 6 || memcmp(w.p, SSHSIG_MAGIC, 6) != 0)
                return -EBADMSG;
        w.p += 6;
        w.n -= 6;
        if (!wire_u32(&w, &version) || !wire_string(&w, &pub) || !wire_string(&w, &sig_ns) ||
            !wire_string(&w, &reserved) || !wire_string(&w, &hash) || !wire_string(&w, &sig) || w.n != 0)
                return -EBADMSG;
        if (version != SSHSIG_VERSION) {
                *ret_why = "the signature's version is not 1";
                return -EBADMSG;
        }
        if (!wire_is(&sig_ns, ns)) {
                *ret_why = "the signature was made for another namespace (ssh-keygen -Y sign -n " APPROVAL_NAMESPACE ")";
                return -EBADMSG;
        }
        struct ssh_key key;
        const char *why;
        if ((k = key_from_blob(pub.p, pub.n, &key, &why)) < 0) {
                *ret_why = why;
                return k == -ENOMEM ? k : -EBADMSG;
        }
        if (!key.ed25519) {
                ssh_key_done(&key);
                *ret_why = "only Ed25519 signatures are verified (the signing key is another type: use an Ed25519 key)";
                return -EPROTONOSUPPORT;
        }
        if (!wire_string(&sig, &sig_type) || !wire_is(&sig_type, "ssh-ed25519") || !wire_string(&sig, &sig_bytes) ||
            sig_bytes.n != crypto_sign_BYTES || sig.n != 0) {
                ssh_key_done(&key);
                return -EBADMSG;
        }
        _cleanup_free_ char *alg = strndup((const char *) hash.p, hash.n);
        struct buf data = {};
        k = alg ? signed_data(ns, &reserved, alg, message, size, &data) : -ENOMEM;
        if (k == -EBADMSG)
                *ret_why = "the signature's hash algorithm is neither sha256 nor sha512";
        else if (k >= 0 && crypto_sign_verify_detached(sig_bytes.p, data.p, data.n, key.pk) != 0) {
                *ret_why = "the signature does not verify: the signed text or the signature was changed";
                k = -EKEYREJECTED;
        }
        free(data.p);
        if (k < 0) {
                ssh_key_done(&key);
                return k;
        }
        *ret_why = NULL;
        *ret_key = key;
        return 0;
}

/* ---- allowed_signers ---- */

/* ssh's match_pattern(): '*' any run of characters, '?' any one; nothing else is special. */
static bool match_pattern(const char *s, const char *p, size_t plen) {
        const char *star = NULL, *resume = NULL;
        size_t i = 0;
        while (*s) {
                if (i < plen && (p[i] == '?' || p[i] == *s)) {
                        s++;
                        i++;
                } else if (i < plen && p[i] == '*') {
                        star = p + i++;
                        resume = s;
                } else if (star) {
                        i = (size_t) (star - p) + 1;
                        s = ++resume;
                } else
                        return false;
        }
        while (i < plen && p[i] == '*')
                i++;
        return i == plen;
}

int match_pattern_list(const char *s, const char *list) {
        int result = 0;
        for (const char *p = list; *p;) {
                size_t len = strcspn(p, ",");
                bool negated = *p == '!';
                if (match_pattern(s, p + negated, len - negated)) {
                        if (negated)
                                return -1;
                        result = 1;
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        return result;
}

/* A word that may be "quoted", up to unquoted whitespace; the quotes are kept. */
static size_t word_length(const char *s) {
        bool quoted = false;
        size_t i = 0;
        for (; s[i] && (quoted || !isspace((unsigned char) s[i])); i++)
                if (s[i] == '"')
                        quoted = !quoted;
        return i;
}

static char *unquote(const char *s, size_t n) {
        if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
                return strndup(s + 1, n - 2);
        return strndup(s, n);
}

static bool is_key_type(const char *s, size_t n) {
        static const char *const types[] = {
                "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
        };
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (n == strlen(types[i]) && strncmp(s, types[i], n) == 0)
                        return true;
        return n > 20 && memmem(s, n, "-cert-v01@openssh.com", 21) != NULL;
}

/* YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: local time unless Z, as ssh-keygen reads it. */
static int parse_signer_time(const char *s, int64_t *ret) {
        size_t n = strlen(s);
        bool utc = n > 0 && (s[n - 1] == 'Z' || s[n - 1] == 'z');
        if (utc)
                n--;
        if (n != 8 && n != 12 && n != 14)
                return -EINVAL;
        int f[7] = { 0 };
        static const int widths[] = { 4, 2, 2, 2, 2, 2 };
        for (size_t i = 0, at = 0; at < n; at += (size_t) widths[i++])
                for (int j = 0; j < widths[i]; j++) {
                        if (!isdigit((unsigned char) s[at + (size_t) j]))
                                return -EINVAL;
                        f[i] = f[i] * 10 + (s[at + (size_t) j] - '0');
                }
        struct tm tm = { .tm_year = f[0] - 1900, .tm_mon = f[1] - 1, .tm_mday = f[2], .tm_hour = f[3],
                         .tm_min = f[4], .tm_sec = f[5], .tm_isdst = -1 };
        if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
                return -EINVAL;
        time_t t = utc ? timegm(&tm) : mktime(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = (int64_t) t;
        return 0;
}

/* The options field: comma-separated, keywords in any case, values "quoted". */
static int signer_options(const char *s, size_t n, struct allowed_signer *a, const char **ret_why) {
        _cleanup_free_ char *copy = strndup(s, n);
        if (!copy)
                return -ENOMEM;
        for (char *p = copy; *p;) {
                bool quoted = false;
                size_t len = 0;
                for (; p[len] && (quoted || p[len] != ','); len++)
                        if (p[len] == '"')
                                quoted = !quoted;
                char *next = p[len] ? p + len + 1 : p + len;
                p[len] = '\0';
                char *eq = strchr(p, '=');
                _cleanup_free_ char *value = eq ? unquote(eq + 1, strlen(eq + 1)) : NULL;
                if (eq)
                        *eq = '\0';
                if (eq && !value)
                        return -ENOMEM;
                int64_t *when = strcasecmp(p, "valid-after") == 0 ? &a->valid_after :
                                strcasecmp(p, "valid-before") == 0 ? &a->valid_before : NULL;
                if (strcasecmp(p, "cert-authority") == 0 && !eq)
                        a->cert_authority = true;
                else if (strcasecmp(p, "namespaces") == 0 && value) {
                        free(a->namespaces);
                        a->namespaces = steal_pointer(&value);
                } else if (when && value) {
                        if (parse_signer_time(value, when) < 0) {
                                *ret_why = "a valid-after/valid-before time is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]";
                                return -EINVAL;
                        }
                } else {
                        *ret_why = "unknown option (cert-authority, namespaces=, valid-after=, valid-before=)";
                        return -EINVAL;
                }
                p = next;
        }
        return 0;
}

static int signer_line(const char *line, unsigned number, struct allowed_signer *ret, const char **ret_why) {
        struct allowed_signer a = { .line = number };
        const char *p = line + strspn(line, " \t");
        size_t len = word_length(p);
        int k;
        if (!(a.principals = unquote(p, len)))
                return -ENOMEM;
        p += len;
        p += strspn(p, " \t");
        len = word_length(p);
        if (len > 0 && !is_key_type(p, len)) {
                if ((k = signer_options(p, len, &a, ret_why)) < 0)
                        goto fail;
                p += len;
        }
        if (!*a.principals) {
                *ret_why = "no principals";
                k = -EINVAL;
                goto fail;
        }
        if ((k = public_key_words(p, &a.key, NULL, ret_why)) < 0)
                goto fail;
        *ret = a;
        return 0;
fail:
        free(a.principals);
        free(a.namespaces);
        return k;
}

static void signer_done(struct allowed_signer *a) {
        free(a->principals);
        free(a->namespaces);
        ssh_key_done(&a->key);
}

void allowed_signers_done(struct allowed_signers *s) {
        for (size_t i = 0; i < s->n; i++)
                signer_done(&s->items[i]);
        free(s->items);
        free(s->path);
        strv_free(s->problems);
        *s = (struct allowed_signers) {};
}

int allowed_signers_load(const char *path, struct allowed_signers *ret) {
        _cleanup_free_ char *text = NULL;
        *ret = (struct allowed_signers) {};
        int k = read_file_bounded(path, SIGNERS_FILE_MAX, &text, NULL);
        if (k < 0)
                return k;
        struct allowed_signers s = { .path = strdup(path) };
        if (!s.path)
                return -ENOMEM;
        unsigned number = 0;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                number++;
                const char *t = line + strspn(line, " \t\r");
                if (!*t || *t == '#')
                        continue;
                struct allowed_signer *items = realloc(s.items, (s.n + 1) * sizeof(*items));
                if (!items) {
                        allowed_signers_done(&s);
                        return -ENOMEM;
                }
                s.items = items;
                const char *why = "invalid line";
                k = signer_line(line, number, &s.items[s.n], &why);
                if (k == -ENOMEM) {
                        allowed_signers_done(&s);
                        return k;
                }
                if (k == 0) {
                        s.n++;
                        continue;
                }
                char *problem = strdup_printf("%s:%u: %s", path, number, why);
                if (!problem || strv_push(&s.problems, problem) < 0) {
                        allowed_signers_done(&s);
                        return -ENOMEM;
                }
        }
        *ret = s;
        return 0;
}

static bool valid_at(const struct allowed_signer *a, int64_t t) {
        return (!a->valid_after || t >= a->valid_after) && (!a->valid_before || t <= a->valid_before);
}

char *allowed_signers_principals_of(const struct allowed_signers *s, const struct ssh_key *key) {
        char *text = NULL;
        for (size_t i = 0; i < s->n; i++) {
                if (!ssh_key_equal(&s->items[i].key, key))
                        continue;
                char *t = text ? strdup_printf("%s,%s", text, s->items[i].principals) : strdup(s->items[i].principals);
                free(text);
                if (!(text = t))
                        return NULL;
        }
        return text;
}

bool allowed_signers_permit(const struct allowed_signers *s, const struct ssh_key *key, const char *identity,
                            const char *ns, int64_t at, int64_t now, char **ret_why) {
        char fp[64];
        const char *why = NULL;
        ssh_key_fingerprint(key, fp, sizeof fp);
        for (size_t i = 0; i < s->n; i++) {
                const struct allowed_signer *a = &s->items[i];
                if (!ssh_key_equal(&a->key, key) || match_pattern_list(identity, a->principals) != 1)
                        continue;
                if (a->cert_authority)
                        why = "it is listed as a certificate authority, and only plain keys sign approvals";
                else if (a->namespaces && match_pattern_list(ns, a->namespaces) != 1)
                        why = "its namespaces= option does not include " APPROVAL_NAMESPACE;
                else if (!valid_at(a, at))
                        why = "the approval's time is outside the key's valid-after/valid-before";
                else if (!valid_at(a, now))
                        why = "the key is not valid now (valid-after/valid-before)";
                else {
                        *ret_why = NULL;
                        return true;
                }
                *ret_why = strdup_printf("%s:%u lists key %s for '%s', but %s", s->path, a->line, fp, identity, why);
                return false;
        }
        _cleanup_free_ char *others = allowed_signers_principals_of(s, key);
        if (others)
                *ret_why = strdup_printf("it is signed by key %s, which %s lists for '%s', not for '%s'", fp, s->path,
                                         others, identity);
        else
                *ret_why = strdup_printf("it is signed by key %s, which %s does not list", fp, s->path);
        return false;
}
