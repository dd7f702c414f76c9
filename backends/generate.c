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
        _cleanup_secret_ struct secret *s = NULL;
        int r = secret_new(ref->generate_length, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ref->generate_length; i++) {
                /* uniform: no modulo bias */
                char c = chars[randombytes_uniform(n)];
                r = secret_append(s, &c, 1);
                if (r < 0)
                        return r;
        }
        *ret_value = steal_pointer(&s);
        return 0;
}

const struct backend_ops generate_backend_ops = {
        .fetch = generate_fetch,
};
