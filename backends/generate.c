/* The generate backend: a fresh random value per run from libsodium's CSPRNG, written
 * straight into a secure buffer. */
#include <sodium.h>

#include "backend-private.h"

static const char *charset_chars(enum generate_charset c) {
        switch (c) {
        case GENERATE_HEX:       return "0123456789abcdef";
        case GENERATE_BASE64URL: return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        case GENERATE_ASCII:     return "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
        case GENERATE_ALNUM:
        default:                 return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        }
}

static int generate_fetch(struct backend *b, const struct secret_ref *ref,
                          struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why) {
        if (ref->generate_length == 0 || ref->generate_length > 4096)
                return backend_fail(ret_why, -EINVAL, "secret %s: generated length must be 1..4096",
                                    ref->secret_name);
        const char *chars = charset_chars(ref->generate_charset);
        uint32_t n = (uint32_t) strlen(chars);
        /* uniform without modulo bias: random bytes at or above the largest multiple of n
         * below 256 are drawn again; bytes come in batches (one system call each) and the
         * batch is wiped after use */
        const unsigned limit = 256 - 256 % n;
        _cleanup_secret_ struct secret *s = NULL;
        int r = secret_new(ref->generate_length, &s);
        if (r < 0)
                return r;
        unsigned char batch[256];
        size_t used = sizeof batch;
        while (r >= 0 && secret_len(s) < ref->generate_length) {
                if (used == sizeof batch) {
                        randombytes_buf(batch, sizeof batch);
                        used = 0;
                }
                unsigned char byte = batch[used++];
                if (byte < limit)
                        r = secret_append(s, &chars[byte % n], 1);
        }
        sodium_memzero(batch, sizeof batch);
        if (r < 0)
                return r;
        *ret_value = steal_pointer(&s);
        return 0;
}

const struct backend_ops generate_backend_ops = {
        .fetch = generate_fetch,
};
