/* Unit tests for the encrypted store: round trip, tampering with any byte, header versions,
 * version retention, binary values. Keys and values are random, made at test time. */
#include <sodium.h>

#include "backends.h"
#include "tap.h"

static struct secret *random_key(void) {
        unsigned char raw[STORE_KEY_BYTES];
        randombytes_buf(raw, sizeof raw);
        struct secret *k = NULL;
        (void) secret_from_bytes(raw, sizeof raw, &k);
        sodium_memzero(raw, sizeof raw);
        return k;
}

static bool value_is(const struct store *s, const char *name, uint64_t version, const void *p, size_t n) {
        _cleanup_secret_ struct secret *v = NULL;
        if (store_get(s, name, version, &v, NULL) < 0)
                return false;
        return secret_len(v) == n && memcmp(secret_data(v), p, n) == 0;
}

/* A store with two names, one with three versions, encoded with key. */
static void sample(const struct secret *key, unsigned char **ret, size_t *ret_size,
                   unsigned char a[32], unsigned char b[40]) {
        _cleanup_store_ struct store *s = NULL;
        CHECK_EQ_INT(store_new(&s), 0);
        randombytes_buf(a, 32);
        randombytes_buf(b, 40);
        CHECK_EQ_INT(store_set(s, "API_TOKEN", a, 10, 1000, NULL), 0);
        CHECK_EQ_INT(store_set(s, "API_TOKEN", a, 20, 2000, NULL), 0);
        CHECK_EQ_INT(store_set(s, "API_TOKEN", a, 32, 3000, NULL), 0);
        CHECK_EQ_INT(store_set(s, "DB_PASSWORD", b, 40, 4000, NULL), 0);
        CHECK_EQ_INT(store_encode(s, key, ret, ret_size), 0);
}

TEST(round_trip) {
        _cleanup_secret_ struct secret *key = random_key();
        unsigned char a[32], b[40];
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size = 0;
        sample(key, &buf, &size, a, b);
        CHECK(memcmp(buf, "SRSTORE\0\1\0\0\0\0\0\0\0", 16) == 0);

        _cleanup_store_ struct store *s = NULL;
        _cleanup_free_ char *why = NULL;
        CHECK_EQ_INT(store_decode(buf, size, key, &s, &why), 0);
        if (!s)
                return;
        CHECK_EQ_INT(store_count(s), 2);
        CHECK_EQ_STR(store_name_at(s, 0), "API_TOKEN");
        CHECK_EQ_STR(store_name_at(s, 1), "DB_PASSWORD");
        CHECK(value_is(s, "API_TOKEN", 0, a, 32));
        CHECK(value_is(s, "API_TOKEN", 1, a, 10));
        CHECK(value_is(s, "API_TOKEN", 2, a, 20));
        CHECK(value_is(s, "DB_PASSWORD", 0, b, 40));
        struct store_version_info h[STORE_KEEP_VERSIONS];
        CHECK_EQ_INT(store_history(s, "API_TOKEN", h), 3);
        CHECK_EQ_INT(h[0].version, 1); CHECK_EQ_INT(h[0].created, 1000);
        CHECK_EQ_INT(h[2].version, 3); CHECK_EQ_INT(h[2].created, 3000);
        CHECK_EQ_INT(store_get(s, "NOPE", 0, NULL, NULL), -ENOENT);
        CHECK_EQ_INT(store_get(s, "API_TOKEN", 9, NULL, NULL), -ESRCH);

        /* a fresh nonce on every write: the same content encrypts differently */
        _cleanup_free_ unsigned char *again = NULL;
        size_t again_size = 0;
        CHECK_EQ_INT(store_encode(s, key, &again, &again_size), 0);
        CHECK_EQ_INT(again_size, size);
        CHECK(memcmp(buf + 16, again + 16, 24) != 0);

        /* an empty store round-trips too */
        _cleanup_store_ struct store *empty = NULL, *back = NULL;
        _cleanup_free_ unsigned char *ebuf = NULL;
        size_t esize = 0;
        CHECK_EQ_INT(store_new(&empty), 0);
        CHECK_EQ_INT(store_encode(empty, key, &ebuf, &esize), 0);
        CHECK_EQ_INT(store_decode(ebuf, esize, key, &back, NULL), 0);
        CHECK(back && store_count(back) == 0);
}

TEST(every_byte_is_authenticated) {
        _cleanup_secret_ struct secret *key = random_key();
        unsigned char a[32], b[40];
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size = 0;
        sample(key, &buf, &size, a, b);
        size_t accepted = 0;
        for (size_t i = 0; i < size; i++) {
                for (unsigned bit = 1; bit < 256; bit <<= 1) {
                        buf[i] ^= (unsigned char) bit;
                        struct store *s = NULL;
                        _cleanup_free_ char *why = NULL;
                        if (store_decode(buf, size, key, &s, &why) >= 0) {
                                accepted++;
                                store_free(s);
                        } else if (!why)
                                accepted++;   /* every refusal must say why */
                        buf[i] ^= (unsigned char) bit;
                }
        }
        CHECK_EQ_INT(accepted, 0);
        /* and every truncation */
        for (size_t n = 0; n < size; n++) {
                struct store *s = NULL;
                _cleanup_free_ char *why = NULL;
                CHECK(store_decode(buf, n, key, &s, &why) < 0);
                store_free(s);
        }
}

TEST(errors) {
        _cleanup_secret_ struct secret *key = random_key(), *other = random_key();
        unsigned char a[32], b[40];
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size = 0;
        sample(key, &buf, &size, a, b);
        struct store *s = NULL;
        {
                _cleanup_free_ char *why = NULL;
                CHECK(store_decode(buf, size, other, &s, &why) < 0);
                CHECK_EQ_STR(why, "cannot decrypt store (wrong key?)");
        }
        {
                _cleanup_free_ char *why = NULL;
                CHECK(store_decode(buf, 30, key, &s, &why) < 0);
                CHECK_EQ_STR(why, "store file is truncated or corrupted");
        }
        {
                _cleanup_free_ char *why = NULL;
                buf[0] = 'X';
                CHECK(store_decode(buf, size, key, &s, &why) < 0);
                CHECK_EQ_STR(why, "not a secrets-run store");
                buf[0] = 'S';
        }
        {
                _cleanup_free_ char *why = NULL;
                buf[8] = 2;   /* format 2: newer than this code */
                CHECK_EQ_INT(store_decode(buf, size, key, &s, &why), -EPROTONOSUPPORT);
                CHECK(why && startswith(why, "store format 2 is newer than this secrets-run reads"));
                buf[8] = 1;
        }
        {
                _cleanup_free_ char *why = NULL;
                buf[8] = 0;
                CHECK(store_decode(buf, size, key, &s, &why) < 0);
                CHECK_EQ_STR(why, "store file is truncated or corrupted");
                buf[8] = 1;
        }
        {
                _cleanup_free_ char *why = NULL;
                buf[12] = 1;   /* unknown flags */
                CHECK(store_decode(buf, size, key, &s, &why) < 0);
                CHECK_EQ_STR(why, "store file is truncated or corrupted");
                buf[12] = 0;
        }
        CHECK(s == NULL);
        CHECK_EQ_INT(store_decode(buf, size, key, &s, NULL), 0);
        store_free(s);
}

TEST(keeps_last_ten_versions) {
        _cleanup_store_ struct store *s = NULL;
        CHECK_EQ_INT(store_new(&s), 0);
        for (unsigned i = 1; i <= 25; i++) {
                unsigned char v[8];
                memset(v, (int) i, sizeof v);
                uint64_t version = 0;
                CHECK_EQ_INT(store_set(s, "ROTATED", v, sizeof v, (int64_t) i, &version), 0);
                CHECK_EQ_INT(version, i);
        }
        struct store_version_info h[STORE_KEEP_VERSIONS];
        CHECK_EQ_INT(store_history(s, "ROTATED", h), 10);
        for (unsigned i = 0; i < 10; i++)
                CHECK_EQ_INT(h[i].version, 16 + i);
        CHECK_EQ_INT(store_get(s, "ROTATED", 15, NULL, NULL), -ESRCH);

        /* rollback: version 20's value becomes version 26 */
        uint64_t version = 0;
        CHECK_EQ_INT(store_rollback(s, "ROTATED", 20, 99, &version), 0);
        CHECK_EQ_INT(version, 26);
        unsigned char want[8];
        memset(want, 20, sizeof want);
        CHECK(value_is(s, "ROTATED", 0, want, sizeof want));
        /* default: the one before the latest (25) */
        CHECK_EQ_INT(store_rollback(s, "ROTATED", 0, 100, &version), 0);
        memset(want, 25, sizeof want);
        CHECK(value_is(s, "ROTATED", 0, want, sizeof want));
        CHECK_EQ_INT(store_rollback(s, "ROTATED", 3, 100, NULL), -ESRCH);
        CHECK_EQ_INT(store_remove(s, "ROTATED"), 0);
        CHECK_EQ_INT(store_remove(s, "ROTATED"), -ENOENT);
        CHECK_EQ_INT(store_count(s), 0);
}

TEST(binary_values_and_limits) {
        _cleanup_secret_ struct secret *key = random_key();
        _cleanup_store_ struct store *s = NULL;
        CHECK_EQ_INT(store_new(&s), 0);
        unsigned char v[64];
        randombytes_buf(v, sizeof v);
        v[0] = 0; v[31] = 0; v[63] = 0;
        CHECK_EQ_INT(store_set(s, "BINARY", v, sizeof v, 1, NULL), 0);
        unsigned char *big = malloc(STORE_MAX_VALUE + 1);
        if (big) {
                randombytes_buf(big, STORE_MAX_VALUE + 1);
                CHECK_EQ_INT(store_set(s, "BIG", big, STORE_MAX_VALUE + 1, 1, NULL), -EFBIG);
                CHECK_EQ_INT(store_set(s, "BIG", big, STORE_MAX_VALUE, 1, NULL), 0);
        }
        CHECK_EQ_INT(store_set(s, "EMPTY", v, 0, 1, NULL), -ENODATA);
        CHECK_EQ_INT(store_set(s, "not-a-name", v, 1, 1, NULL), -EINVAL);
        CHECK_EQ_INT(store_set(s, "9LIVES", v, 1, 1, NULL), -EINVAL);
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size = 0;
        CHECK_EQ_INT(store_encode(s, key, &buf, &size), 0);
        _cleanup_store_ struct store *back = NULL;
        CHECK_EQ_INT(store_decode(buf, size, key, &back, NULL), 0);
        if (back) {
                CHECK(value_is(back, "BINARY", 0, v, sizeof v));
                if (big)
                        CHECK(value_is(back, "BIG", 0, big, STORE_MAX_VALUE));
        }
        free(big);
}

/* What import relies on: explicit version numbers and times, increasing only, last 10 kept,
 * surviving an encode/decode round trip; store_set continues from the imported numbering. */
TEST(put_version_restores_history) {
        _cleanup_secret_ struct secret *key = random_key();
        _cleanup_store_ struct store *s = NULL;
        unsigned char v[16];
        randombytes_buf(v, sizeof v);
        CHECK_EQ_INT(store_new(&s), 0);
        CHECK_EQ_INT(store_put_version(s, "A", 5, 500, v, 8), 0);
        CHECK_EQ_INT(store_put_version(s, "A", 5, 600, v, 8), -ERANGE);
        CHECK_EQ_INT(store_put_version(s, "A", 3, 600, v, 8), -ERANGE);
        CHECK_EQ_INT(store_put_version(s, "A", 0, 600, v, 8), -EINVAL);
        CHECK_EQ_INT(store_put_version(s, "bad-name", 1, 600, v, 8), -EINVAL);
        CHECK_EQ_INT(store_put_version(s, "A", 9, 600, v, 0), -ENODATA);
        for (uint64_t n = 9; n < 9 + 12; n++)
                CHECK_EQ_INT(store_put_version(s, "A", n, (int64_t) n * 100, v, 1 + n % 16), 0);
        struct store_version_info h[STORE_KEEP_VERSIONS];
        CHECK_EQ_INT(store_history(s, "A", h), STORE_KEEP_VERSIONS);
        CHECK_EQ_INT(h[0].version, 11);
        CHECK_EQ_INT(h[STORE_KEEP_VERSIONS - 1].version, 20);
        CHECK_EQ_INT(h[STORE_KEEP_VERSIONS - 1].created, 2000);

        _cleanup_free_ unsigned char *buf = NULL;
        size_t size;
        CHECK_EQ_INT(store_encode(s, key, &buf, &size), 0);
        _cleanup_store_ struct store *back = NULL;
        _cleanup_free_ char *why = NULL;
        CHECK_EQ_INT(store_decode(buf, size, key, &back, &why), 0);
        CHECK_EQ_INT(store_history(back, "A", h), STORE_KEEP_VERSIONS);
        CHECK_EQ_INT(h[3].version, 14);
        CHECK_EQ_INT(h[3].created, 1400);
        CHECK(value_is(back, "A", 14, v, 1 + 14 % 16));
        uint64_t next = 0;
        CHECK_EQ_INT(store_set(back, "A", v, 8, 3000, &next), 0);
        CHECK_EQ_INT(next, 21);
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        RUN(round_trip);
        RUN(every_byte_is_authenticated);
        RUN(errors);
        RUN(keeps_last_ten_versions);
        RUN(binary_values_and_limits);
        RUN(put_version_restores_history);
        return tap_finish();
}
