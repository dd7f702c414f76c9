/* The Hyperscan side of bench/redact.sh: a pipe filter standing where
 * `secrets-run redact --secret-file F...` stands, over the same pattern set.
 *
 *   hs_filter [--secret-file] FILE...  < IN > OUT
 *
 * Each FILE's bytes minus one trailing newline (as --secret-file reads them) are expanded by
 * redact_forms(value, len, 8, ...), the very forms and min_len `secrets-run redact` compiles,
 * and every form goes into one Hyperscan literal database (hs_compile_lit_multi, streaming
 * mode: a filter sees a stream, so matches across reads must be found, as redact finds them).
 * The flexible whitespace pattern (FORM_WHITESPACE) is taken as the literal of its bytes:
 * Hyperscan is given literals only, so it does strictly less work than redact's matcher
 * there, and it has none of redact's terminal/wrap views either.
 *
 * Output: the input with every matched range masked in place, each byte replaced by '*' (the
 * length is kept, unlike redact's named masks, which is a little less work). A match's start
 * is its end minus its literal's length (exact for literals, so no HS_FLAG_SOM_LEFTMOST is
 * needed), and bytes are held back until no later match can cover them: the last
 * (longest pattern - 1) bytes of what has been read, the same hold-back redact has. stdin is
 * read 64 KiB at a time (redact asks for 1 MiB, but a pipe holds 64 KiB: the same reads).
 *
 * On stderr, one line: "hs_filter: patterns=N read_ms=... forms_ms=... compile_ms=... total_ms=...
 * matches=M masked=R bytes=B" (read: the files; forms: redact_forms; compile: the database and
 * its scratch; total: forms + compile, as redact_bench counts its own; matches:
 * every pattern match Hyperscan reported; masked: the merged runs of overlapping or adjacent
 * matches, what redact reports one leak each for). Exit status 0, or 2 on an error.
 *
 * The values (bench-generated fakes) and their forms live in secure buffers (sodium_malloc,
 * wiped on free); the compiled database is Hyperscan's own memory, as redact's tables are
 * its own. */
#include <fcntl.h>
#include <hs.h>
#include <sodium.h>
#include <time.h>

#include "redact.h"

#define MIN_LEN 8               /* what `secrets-run redact --secret-file` uses */
#define READ_SIZE (64 * 1024)
#define MAX_VALUE (1024 * 1024) /* as --secret-file */

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* ---- the pattern set: every form's bytes in one secure buffer ---- */

struct patterns {
        struct secret *bytes;   /* all forms, back to back */
        size_t *offset, *len;
        size_t n, allocated, max_len;
};

static int collect_form(void *userdata, enum redact_form form, const unsigned char *p, size_t n, bool flex) {
        struct patterns *ps = userdata;
        if (ps->n == ps->allocated) {
                size_t a = ps->allocated ? 2 * ps->allocated : 1024;
                size_t *o = realloc(ps->offset, a * sizeof(*o));
                if (!o)
                        return -ENOMEM;
                ps->offset = o;
                size_t *l = realloc(ps->len, a * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                ps->len = l;
                ps->allocated = a;
        }
        ps->offset[ps->n] = secret_len(ps->bytes);
        int k = secret_append(ps->bytes, p, n);
        if (k < 0)
                return k;
        ps->len[ps->n++] = n;
        if (n > ps->max_len)
                ps->max_len = n;
        return 0;
}

static int add_file(struct patterns *ps, const char *path, uint64_t *forms_ns) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "hs_filter: %s: %s\n", path, strerror(errno));
                return -errno;
        }
        _cleanup_secret_ struct secret *v = NULL;
        int k = secret_new(256, &v);
        if (k < 0)
                return k;
        if ((k = secret_read_fd(v, fd, MAX_VALUE)) < 0) {
                fprintf(stderr, "hs_filter: %s: %s\n", path, strerror(-k));
                return k;
        }
        secret_chomp(v);
        if (secret_len(v) < MIN_LEN) {
                fprintf(stderr, "hs_filter: %s: the value is shorter than %d bytes\n", path, MIN_LEN);
                return -EINVAL;
        }
        uint64_t t0 = now_ns();
        k = redact_forms(secret_data(v), secret_len(v), MIN_LEN, collect_form, ps);
        *forms_ns += now_ns() - t0;
        return k;
}

/* ---- the filter ---- */

struct filter {
        const size_t *len;         /* each pattern's length, by id */
        unsigned char *window;     /* bytes held + the read: stream offsets base.. */
        uint64_t base;
        uint64_t run_from, run_to; /* the current merged run of matches, [from, to) */
        bool in_run;
        uint64_t (*closed)[2];     /* runs that ended during this read, masked after its scan */
        size_t n_closed, allocated;
        bool oom;
        uint64_t matches, masked;
};

static void mask(struct filter *f, uint64_t from, uint64_t to) {
        if (from < f->base)
                from = f->base;   /* a run reaching back into bytes already written: not here, as
                                   * a match starts at most hold bytes before the read */
        if (to > from)
                memset(f->window + (from - f->base), '*', (size_t) (to - from));
}

/* Matches arrive in order of their end; a start may lie before the current run's start
 * (a longer pattern ending later), which widens the run (and if it reaches back into a run
 * already closed, the two are masked as one all the same, counted as two). */
static int on_match(unsigned id, unsigned long long from_ignored, unsigned long long to, unsigned flags, void *ctx) {
        struct filter *f = ctx;
        uint64_t from = to - f->len[id];
        f->matches++;
        if (f->in_run && from <= f->run_to) {
                if (from < f->run_from)
                        f->run_from = from;
                if (to > f->run_to)
                        f->run_to = to;
                return 0;
        }
        if (f->in_run) {
                if (f->n_closed == f->allocated) {
                        size_t a = f->allocated ? 2 * f->allocated : 256;
                        uint64_t(*c)[2] = realloc(f->closed, a * sizeof(*c));
                        if (!c) {
                                f->oom = true;
                                return 1;   /* stops the scan */
                        }
                        f->closed = c;
                        f->allocated = a;
                }
                f->closed[f->n_closed][0] = f->run_from;
                f->closed[f->n_closed++][1] = f->run_to;
        }
        f->in_run = true;
        f->masked++;
        f->run_from = from;
        f->run_to = to;
        return 0;
}

static int filter_stdin(const hs_database_t *db, hs_scratch_t *scratch, struct filter *f, size_t hold) {
        hs_stream_t *stream = NULL;
        if (hs_open_stream(db, 0, &stream) != HS_SUCCESS)
                return -ENOMEM;
        size_t held = 0;
        int k = 0;
        for (;;) {
                ssize_t n = read(STDIN_FILENO, f->window + held, READ_SIZE);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        k = -errno;
                        break;
                }
                /* matches found in this read: collected as runs, masked once the scan is done
                 * (Hyperscan may still look at the bytes a callback would change) */
                uint64_t end = f->base + held + (size_t) n;
                hs_error_t e;
                if (n == 0)
                        e = hs_close_stream(stream, scratch, on_match, f), stream = NULL;
                else
                        e = hs_scan_stream(stream, (const char *) f->window + held, (unsigned) n, 0, scratch, on_match,
                                           f);
                if (e != HS_SUCCESS) {
                        k = f->oom ? -ENOMEM : -EIO;
                        break;
                }
                /* the closed runs, and the open one so far: it may grow in the next read and is
                 * masked again then (idempotent) */
                for (size_t i = 0; i < f->n_closed; i++)
                        mask(f, f->closed[i][0], f->closed[i][1]);
                f->n_closed = 0;
                if (f->in_run)
                        mask(f, f->run_from, f->run_to);
                size_t have = held + (size_t) n;
                size_t keep = n == 0 ? 0 : have < hold ? have : hold;
                if ((k = write_all(STDOUT_FILENO, f->window, have - keep)) < 0)
                        break;
                memmove(f->window, f->window + (have - keep), keep);
                f->base = end - keep;
                held = keep;
                if (n == 0)
                        break;
        }
        if (stream)
                (void) hs_close_stream(stream, scratch, NULL, NULL);
        return k;
}

int main(int argc, char **argv) {
        if (secret_init() < 0)
                return 2;
        if (hs_valid_platform() != HS_SUCCESS) {
                fprintf(stderr, "hs_filter: this CPU lacks what Hyperscan needs (SSSE3)\n");
                return 2;
        }
        struct patterns ps = {};
        if (secret_new(64 * 1024, &ps.bytes) < 0)
                return 2;
        uint64_t t0 = now_ns(), forms_ns = 0;
        int files = 0;
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--secret-file"))
                        continue;
                if (add_file(&ps, argv[i], &forms_ns) < 0)
                        return 2;
                files++;
        }
        if (files == 0 || ps.n == 0) {
                fprintf(stderr, "usage: hs_filter [--secret-file] FILE...  < IN > OUT\n");
                return 2;
        }
        uint64_t t1 = now_ns();

        const char **exprs = calloc(ps.n, sizeof(*exprs));
        unsigned *ids = calloc(ps.n, sizeof(*ids));
        unsigned *flags = calloc(ps.n, sizeof(*flags));   /* 0: exact literal, no SOM (see the top) */
        if (!exprs || !ids || !flags)
                return 2;
        for (size_t i = 0; i < ps.n; i++) {
                exprs[i] = (const char *) secret_data(ps.bytes) + ps.offset[i];
                ids[i] = (unsigned) i;
        }
        hs_database_t *db = NULL;
        hs_compile_error_t *err = NULL;
        if (hs_compile_lit_multi(exprs, flags, ids, ps.len, (unsigned) ps.n, HS_MODE_STREAM, NULL, &db, &err) !=
            HS_SUCCESS) {
                /* the message names a pattern by index, never its bytes */
                fprintf(stderr, "hs_filter: compile failed: %s\n", err ? err->message : "?");
                hs_free_compile_error(err);
                return 2;
        }
        hs_scratch_t *scratch = NULL;
        if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
                fprintf(stderr, "hs_filter: cannot allocate scratch\n");
                return 2;
        }
        uint64_t t2 = now_ns();
        /* the pattern bytes are in the database now; the copies for the compiler go */
        free(exprs);
        free(ids);
        free(flags);
        free(ps.offset);
        secret_free(steal_pointer(&ps.bytes));

        size_t hold = ps.max_len - 1;
        struct filter f = { .len = ps.len };
        f.window = malloc(hold + READ_SIZE);
        if (!f.window)
                return 2;
        int k = filter_stdin(db, scratch, &f, hold);
        if (k < 0)
                fprintf(stderr, "hs_filter: %s\n", strerror(-k));
        fprintf(stderr,
                "hs_filter: patterns=%zu read_ms=%.2f forms_ms=%.2f compile_ms=%.2f total_ms=%.2f matches=%llu "
                "masked=%llu bytes=%llu\n",
                ps.n, (double) (t1 - t0 - forms_ns) / 1e6, (double) forms_ns / 1e6, (double) (t2 - t1) / 1e6,
                (double) (forms_ns + t2 - t1) / 1e6,
                (unsigned long long) f.matches, (unsigned long long) f.masked,
                (unsigned long long) (f.base));
        /* the window held text with masked values only; it is wiped all the same */
        sodium_memzero(f.window, hold + READ_SIZE);
        free(f.window);
        free(f.closed);
        free(ps.len);
        hs_free_scratch(scratch);
        hs_free_database(db);
        return k < 0 ? 2 : 0;
}
