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
        bool credential;       /* a backend's, not a value the command fetched */
        bool adopted;          /* in the run's redactor, which masks it for us */
};

/* Messages come from the main thread and the renewal thread: one lock for all of it. Two
 * compiled sets mask a text, one after the other: the run's own (its values, compiled once
 * for the step's output) and ours, of whatever that one does not hold (credentials, values
 * added later); ours is built when a text needs it after something was added. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct masked *masked;
static size_t n_masked;
static const struct redactor *run_redactor;
static struct redact_stream *run_stream;
static struct redactor *own;
static struct redact_stream *own_stream;
static bool own_stale;

int output_mask_add_as(const char *name, const void *p, size_t n, bool credential) {
        /* a value shorter than 8 is here because policy.min_secret_length let it run: it is
         * masked in our words as in the step's output; a credential that short is not */
        if (n == 0 || (credential && n < MASK_MIN_LEN))
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
        struct masked m = { .name = strdup(name), .credential = credential };
        if (!m.name || (k = secret_from_bytes(p, n, &m.value)) < 0) {
                free(m.name);
                k = k < 0 ? k : -ENOMEM;
                goto out;
        }
        masked[n_masked++] = m;
        own_stale = true;
out:
        pthread_mutex_unlock(&lock);
        return k;
}

int output_mask_add(const char *name, const void *p, size_t n) {
        return output_mask_add_as(name, p, n, false);
}

void output_mask_adopt(const struct redactor *r) {
        pthread_mutex_lock(&lock);
        run_stream = redact_stream_free(run_stream);
        run_redactor = r && redact_stream_new(r, &run_stream) >= 0 ? r : NULL;
        /* the values held now are the run's: its redactor was compiled over exactly them */
        for (size_t i = 0; i < n_masked; i++)
                masked[i].adopted = run_redactor && !masked[i].credential;
        own_stale = true;
        pthread_mutex_unlock(&lock);
}

/* Ours, over what the run's redactor does not hold; NULL (and 0) when that is nothing. */
static int own_compile(void) {
        if (!own_stale)
                return 0;
        own_stream = redact_stream_free(own_stream);
        own = redactor_free(own);
        _cleanup_redactor_ struct redactor *r = NULL;
        size_t min_len = MASK_MIN_LEN;
        for (size_t i = 0; i < n_masked; i++)
                if (!masked[i].adopted && secret_len(masked[i].value) < min_len)
                        min_len = secret_len(masked[i].value);
        int k = redactor_new(min_len, NULL, &r);
        size_t n = 0;
        for (size_t i = 0; k >= 0 && i < n_masked; i++)
                if (!masked[i].adopted) {
                        k = redactor_add(r, masked[i].name, secret_data(masked[i].value), secret_len(masked[i].value));
                        n++;
                }
        if (k < 0 || n == 0) {
                own_stale = k < 0;
                return k;
        }
        if ((k = redactor_compile(r)) < 0 || (k = redact_stream_new(r, &own_stream)) < 0)
                return k;
        own = steal_pointer(&r);
        own_stale = false;
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

/* One pass of text through s: the masked text in *o if anything was masked (1), else 0. */
static int mask_pass(struct redact_stream *s, const char *text, size_t len, struct mask_out *o) {
        if (!s)
                return 0;
        struct redact_sink sink = { .write = mask_write, .userdata = o };
        redact_stream_reset(s);
        int k = redact_stream_feed(s, text, len, &sink);
        if (k >= 0)
                k = redact_stream_finish(s, &sink);
        if (k < 0 || redact_stream_leak_count(s) == 0) {
                free(o->buf);
                *o = (struct mask_out) {};
                return k < 0 ? k : 0;
        }
        return 1;
}

/* What a text becomes when it cannot be masked (no memory for the matcher): nothing of it. */
#define WITHHELD "[a message was withheld: it could not be masked]"

char *output_mask(const char *text, size_t len, size_t *ret_len) {
        pthread_mutex_lock(&lock);
        struct mask_out first = {}, second = {};
        int k = n_masked > 0 ? own_compile() : 0;
        if (k >= 0 && (k = mask_pass(own_stream, text, len, &first)) > 0) {
                text = first.buf;
                len = first.len;
        }
        int k2 = k >= 0 ? mask_pass(run_stream, text, len, &second) : k;
        pthread_mutex_unlock(&lock);
        struct mask_out *result = k2 > 0 ? &second : k > 0 ? &first : NULL;
        if (result != &first)
                free(first.buf);
        if (k < 0 || k2 < 0) {
                /* fail closed: a text we could not look at may hold anything */
                free(second.buf);
                if (ret_len)
                        *ret_len = strlen(WITHHELD);
                return strdup(WITHHELD);
        }
        if (!result)
                return NULL;
        if (ret_len)
                *ret_len = result->len;
        return result->buf;
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
        run_stream = redact_stream_free(run_stream);
        run_redactor = NULL;
        own_stream = redact_stream_free(own_stream);
        own = redactor_free(own);
        own_stale = false;
        pthread_mutex_unlock(&lock);
}
