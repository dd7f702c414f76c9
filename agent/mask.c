/* One masker for everything secrets-run itself writes: messages on stderr, its stdout (JSON,
 * annotations, tables), the step summary and audit fields. It holds every value the command
 * fetched and every credential a backend read or obtained, in all the forms the step's
 * output is matched for, so a store or provider that quotes one in an error cannot put it in
 * a log. Nothing it masks counts as a leak of the step: the words are ours. */
#include <pthread.h>
#include <sodium.h>

#include "output.h"
#include "redact.h"

/* Shorter credentials cannot be masked without masking ordinary words (as for secrets,
 * DESIGN §5's min_secret_length default). */
#define MASK_MIN_LEN 8

struct masked {
        char *name;
        struct secret *value;
};

/* Messages come from the main thread and the renewal thread: one lock for the set. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct masked *masked;
static size_t n_masked;
static struct redactor *compiled;   /* NULL: to be built before the next use */

int output_mask_add(const char *name, const void *p, size_t n) {
        if (n < MASK_MIN_LEN)
                return 0;
        int k = 0;
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < n_masked; i++)
                if (secret_len(masked[i].value) == n && sodium_memcmp(secret_data(masked[i].value), p, n) == 0)
                        goto out;   /* the same bytes under another name mask the same */
        struct masked *t = realloc(masked, (n_masked + 1) * sizeof(*t));
        if (!t) {
                k = -ENOMEM;
                goto out;
        }
        masked = t;
        struct masked m = { .name = strdup(name) };
        if (!m.name || (k = secret_from_bytes(p, n, &m.value)) < 0) {
                free(m.name);
                k = k < 0 ? k : -ENOMEM;
                goto out;
        }
        masked[n_masked++] = m;
        compiled = redactor_free(compiled);
out:
        pthread_mutex_unlock(&lock);
        return k;
}

static int mask_compile(void) {
        if (compiled)
                return 0;
        _cleanup_redactor_ struct redactor *r = NULL;
        int k = redactor_new(MASK_MIN_LEN, NULL, &r);
        for (size_t i = 0; k >= 0 && i < n_masked; i++)
                k = redactor_add(r, masked[i].name, secret_data(masked[i].value), secret_len(masked[i].value));
        if (k >= 0)
                k = redactor_compile(r);
        if (k < 0)
                return k;
        compiled = steal_pointer(&r);
        return 0;
}

struct mask_out {
        char *buf;
        size_t len, size;
};

static int mask_write(void *userdata, const void *p, size_t n) {
        struct mask_out *o = userdata;
        if (o->len + n + 1 > o->size) {
                size_t size = (o->len + n + 1) * 2;
                char *t = realloc(o->buf, size);
                if (!t)
                        return -ENOMEM;
                o->buf = t;
                o->size = size;
        }
        memcpy(o->buf + o->len, p, n);
        o->len += n;
        o->buf[o->len] = '\0';
        return 0;
}

char *output_mask(const char *text, size_t len, size_t *ret_len) {
        char *result = NULL;
        pthread_mutex_lock(&lock);
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        struct mask_out o = {};
        struct redact_sink sink = { .write = mask_write, .userdata = &o };
        if (n_masked == 0 || mask_compile() < 0 || redact_stream_new(compiled, &s) < 0 ||
            redact_stream_feed(s, text, len, &sink) < 0 || redact_stream_finish(s, &sink) < 0 ||
            redact_stream_leak_count(s) == 0)
                goto out;
        if (ret_len)
                *ret_len = o.len;
        result = steal_pointer(&o.buf);
out:
        free(o.buf);
        pthread_mutex_unlock(&lock);
        return result;
}

char *output_mask_string(const char *text) {
        return output_mask(text, strlen(text), NULL);
}

void output_mask_done(void) {
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < n_masked; i++) {
                free(masked[i].name);
                secret_free(masked[i].value);
        }
        free(masked);
        masked = NULL;
        n_masked = 0;
        compiled = redactor_free(compiled);
        pthread_mutex_unlock(&lock);
}
