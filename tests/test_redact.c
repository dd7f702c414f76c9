/* Unit tests for the streaming matcher: a differential test against the naive reference
 * over random secrets, inputs and chunkings, plus the cases named in DESIGN §5. */
#include <sodium.h>
#include <sys/mman.h>

#include "redact.h"
#include "redact_reference.h"
#include "tap.h"

struct buf {
        unsigned char *p;
        size_t n, cap;
        size_t leak_offsets[4096];
        uint64_t leak_lines[4096], leak_cols[4096];
        bool leak_member_set;     /* the matcher never names a member */
        const char *leak_names[4096];
        enum redact_form leak_forms[4096];
        size_t n_leaks;
};

static int buf_write(void *userdata, const void *p, size_t n) {
        struct buf *b = userdata;
        if (b->n + n > b->cap) {
                b->cap = (b->n + n) * 2 + 64;
                b->p = realloc(b->p, b->cap);
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
        return 0;
}

static void buf_leak(void *userdata, const struct redact_leak *l) {
        struct buf *b = userdata;
        if (b->n_leaks < 4096) {
                b->leak_offsets[b->n_leaks] = (size_t) l->offset;
                b->leak_lines[b->n_leaks] = l->line;
                b->leak_cols[b->n_leaks] = l->col;
                b->leak_names[b->n_leaks] = l->name;
                b->leak_forms[b->n_leaks] = l->form;
        }
        if (l->member)
                b->leak_member_set = true;
        b->n_leaks++;
}

/* The position of text[offset], counted the slow way: 1-based line, and 1-based column in
 * bytes since the last '\n' before it. */
static void position_of(const unsigned char *text, size_t offset, uint64_t *ret_line, uint64_t *ret_col) {
        uint64_t line = 1;
        size_t line_start = 0;
        for (size_t i = 0; i < offset; i++)
                if (text[i] == '\n')
                        line++, line_start = i + 1;
        *ret_line = line;
        *ret_col = offset - line_start + 1;
}

/* Every leak of b is at the line and column its offset has in text. */
static bool positions_agree(const struct buf *b, const unsigned char *text, bool verbose) {
        for (size_t i = 0; i < b->n_leaks && i < 4096; i++) {
                uint64_t line, col;
                position_of(text, b->leak_offsets[i], &line, &col);
                if (b->leak_lines[i] != line || b->leak_cols[i] != col) {
                        if (verbose)
                                printf("# leak %zu at offset %zu: got %llu:%llu, want %llu:%llu\n", i, b->leak_offsets[i],
                                       (unsigned long long) b->leak_lines[i], (unsigned long long) b->leak_cols[i],
                                       (unsigned long long) line, (unsigned long long) col);
                        return false;
                }
        }
        if (b->leak_member_set && verbose)
                printf("# a leak named a member\n");
        return !b->leak_member_set;
}

/* Feeds text in chunks whose sizes come from `sizes` (cycled; 0 = everything at once). */
static int stream_all(const struct redactor *r, const unsigned char *text, size_t n, const size_t *sizes,
                      size_t n_sizes, struct buf *out) {
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        int k = redact_stream_new(r, &s);
        if (k < 0)
                return k;
        struct redact_sink sink = { buf_write, buf_leak, out };
        size_t pos = 0, i = 0;
        while (pos < n) {
                size_t take = n_sizes ? sizes[i++ % n_sizes] : n;
                if (take == 0 || take > n - pos)
                        take = n - pos;
                if ((k = redact_stream_feed(s, text + pos, take, &sink)) < 0)
                        return k;
                pos += take;
        }
        return redact_stream_finish(s, &sink);
}

/* Runs one case through both implementations; returns true if they agree. */
static bool differential(char **names, unsigned char **values, size_t *lens, size_t n_secrets, size_t min_len,
                         const unsigned char *text, size_t n, const size_t *sizes, size_t n_sizes, bool verbose) {
        _cleanup_redactor_ struct redactor *r = NULL;
        struct ref_set ref = { .min_len = min_len };
        if (redactor_new(min_len, "[REDACTED:{name}]", &r) < 0)
                return false;
        for (size_t i = 0; i < n_secrets; i++) {
                char mask[64];
                snprintf(mask, sizeof mask, "[REDACTED:%s]", names[i]);
                if (redactor_add(r, names[i], values[i], lens[i]) < 0)
                        return false;
                ref_set_add(&ref, names[i], mask, values[i], lens[i]);
        }
        if (redactor_compile(r) < 0)
                return false;
        struct buf got = {};
        bool ok = stream_all(r, text, n, sizes, n_sizes, &got) == 0;
        size_t want_len, want_n_leaks;
        struct ref_leak *want_leaks;
        unsigned char *want = ref_redact(&ref, text, n, &want_len, &want_leaks, &want_n_leaks);
        if (!ok || got.n != want_len || memcmp(got.p, want, want_len) != 0) {
                if (verbose)
                        printf("# output differs: got %zu bytes, want %zu\n", got.n, want_len);
                if (verbose) {
                        /* where, never what: the bytes are the generated values' forms, and
                         * REDACT_TEST_SEED reproduces them under a debugger */
                        size_t d = 0;
                        while (d < got.n && d < want_len && got.p[d] == want[d])
                                d++;
                        printf("# first difference at byte %zu; chunk sizes:", d);
                        for (size_t i = 0; i < n_sizes; i++)
                                printf(" %zu", sizes[i]);
                        printf("\n");
                }
                ok = false;
        } else if (got.n_leaks != want_n_leaks) {
                if (verbose)
                        printf("# leak count differs: got %zu, want %zu\n", got.n_leaks, want_n_leaks);
                ok = false;
        } else
                for (size_t i = 0; i < want_n_leaks && i < 4096; i++)
                        if (got.leak_offsets[i] != want_leaks[i].offset || got.leak_forms[i] != want_leaks[i].form ||
                            strcmp(got.leak_names[i], ref.names[want_leaks[i].secret]) != 0) {
                                if (verbose)
                                        printf("# leak %zu differs: offset %zu/%zu form %s/%s\n", i, got.leak_offsets[i],
                                               want_leaks[i].offset, redact_form_name(got.leak_forms[i]),
                                               redact_form_name(want_leaks[i].form));
                                ok = false;
                                break;
                        }
        if (ok && !positions_agree(&got, text, verbose))
                ok = false;
        free(got.p);
        free(want);
        free(want_leaks);
        ref_set_done(&ref);
        return ok;
}

/* A seeded generator, so a failing case can be replayed with REDACT_TEST_SEED. */
static uint64_t rng_state;

static uint32_t rnd(uint32_t n) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t) ((rng_state * 0x2545F4914F6CDD1DULL) >> 32) % n;
}

/* One random case of a differential test, fed in random chunk sizes (up to max_chunk, or
 * 4, or at once); says which case failed, never what it held. */
static bool random_chunks_agree(size_t c, char **names, unsigned char **values, size_t *lens, size_t n_secrets,
                                size_t min_len, const unsigned char *text, size_t n, uint32_t max_chunk, bool verbose) {
        size_t sizes[8], n_sizes = rnd(9);
        for (size_t i = 0; i < n_sizes; i++)
                sizes[i] = 1 + rnd(rnd(2) ? 4 : max_chunk);
        bool ok = differential(names, values, lens, n_secrets, min_len, text, n, sizes, n_sizes, verbose);
        if (!ok)
                printf("# case %zu failed (min_len %zu, %zu secrets, %zu bytes, %zu chunk sizes)\n", c, min_len,
                       n_secrets, n, n_sizes);
        return ok;
}

/* Random cases from a tiny alphabet so that borders, overlaps and nesting are common. */
TEST(differential_random) {
        static const char *alphabets[] = { "ab", "abc", "ab \n", "aB+/=%\"'<&\\\n \t" };
        size_t failures = 0, cases = 3000;
        for (size_t c = 0; c < cases && failures < 3; c++) {
                const char *alpha = alphabets[rnd(ELEMENTSOF(alphabets))];
                size_t alen = strlen(alpha);
                size_t min_len = 3 + rnd(8);
                size_t n_secrets = 1 + rnd(4);
                char *names[4];
                unsigned char *values[4];
                size_t lens[4];
                for (size_t i = 0; i < n_secrets; i++) {
                        names[i] = strdup_printf("S%zu", i);
                        lens[i] = min_len + rnd(12);
                        values[i] = malloc(lens[i]);
                        for (size_t j = 0; j < lens[i]; j++)
                                values[i][j] = (unsigned char) alpha[rnd((uint32_t) alen)];
                        if (rnd(4) == 0 && i > 0 && lens[i - 1] > 2) {
                                /* nested: a piece of the previous secret */
                                size_t from = rnd((uint32_t) (lens[i - 1] - 1));
                                size_t l = lens[i - 1] - from;
                                if (l >= min_len) {
                                        unsigned char *v = realloc(values[i], l);
                                        if (v) {
                                                values[i] = v;
                                                lens[i] = l;
                                                memcpy(values[i], values[i - 1] + from, l);
                                        }
                                }
                        }
                }
                /* text: alphabet noise with whole and partial secrets planted */
                size_t n = 0, cap = 2048;
                unsigned char *text = malloc(cap + 64);
                while (n < 200 + rnd(400)) {
                        uint32_t what = rnd(6);
                        size_t si = rnd((uint32_t) n_secrets);
                        if (what == 0 || what == 1) {
                                memcpy(text + n, values[si], lens[si]);
                                n += lens[si];
                        } else if (what == 2) {
                                size_t l = 1 + rnd((uint32_t) lens[si]);
                                memcpy(text + n, values[si], l);
                                n += l;
                        } else
                                for (size_t j = 0, l = 1 + rnd(8); j < l; j++)
                                        text[n++] = (unsigned char) alpha[rnd((uint32_t) alen)];
                }
                if (rnd(3) == 0) {
                        /* end on a prefix of a secret: the partial-leak rule */
                        size_t si = rnd((uint32_t) n_secrets), l = 1 + rnd((uint32_t) lens[si]);
                        memcpy(text + n, values[si], l);
                        n += l;
                }
                if (!random_chunks_agree(c, names, values, lens, n_secrets, min_len, text, n, 64, failures == 0))
                        failures++;
                for (size_t i = 0; i < n_secrets; i++) {
                        free(names[i]);
                        free(values[i]);
                }
                free(text);
        }
        CHECK_EQ_INT(failures, 0);
}

/* What tools put between a value's characters (the match modes), whole and cut short, so
 * that sequences at chunk borders and ones that never end are common. */
static const char *const decorations[] = {
        "\033[31m", "\033[m", "\033[01;31m\033[K", "\033[m\033[K", "\033]8;;http://x/\033\\", "\033]0;t\a",
        "\033(B", "\0337", "\r", "\n", "\r\n", "\n    ", "\n\t", "\033[", "\033]8;", "\033", "\033[3", "\n\n",
};

/* Random texts of encoded forms with line breaks and terminal sequences between their
 * characters: the streaming views against the reference's, at random chunkings. */
TEST(differential_modes) {
        static const char *alphabets[] = { "aB", "aB+/=", "ab\033[m\r\n", "0123456789abcdef" };
        size_t failures = 0, cases = 2000;
        for (size_t c = 0; c < cases && failures < 3; c++) {
                const char *alpha = alphabets[rnd(ELEMENTSOF(alphabets))];
                size_t alen = strlen(alpha), min_len = 4 + rnd(8), n_secrets = 1 + rnd(3);
                char *names[3];
                unsigned char *values[3];
                size_t lens[3];
                struct ref_forms forms[3] = {};
                for (size_t i = 0; i < n_secrets; i++) {
                        names[i] = strdup_printf("S%zu", i);
                        lens[i] = min_len + rnd(24);
                        values[i] = malloc(lens[i]);
                        for (size_t j = 0; j < lens[i]; j++)
                                values[i][j] = (unsigned char) alpha[rnd((uint32_t) alen)];
                        ref_forms_of(values[i], lens[i], min_len, &forms[i]);
                }
                size_t n = 0, cap = 8192;
                unsigned char *text = malloc(cap + 512);
                while (n < 300 + rnd(1500)) {
                        uint32_t what = rnd(5);
                        size_t si = rnd((uint32_t) n_secrets);
                        const struct ref_forms *f = &forms[si];
                        if (what <= 2 && f->count > 0) {
                                /* a form (or its start), decorated between characters */
                                size_t fi = rnd((uint32_t) f->count), l = f->n[fi];
                                if (l > 200)
                                        l = 200;
                                if (rnd(5) == 0)
                                        l = 1 + rnd((uint32_t) l);
                                /* sometimes wrapped as base64 prints it (a break every `width`
                                 * characters, LF or CRLF), sometimes after a lone ESC */
                                size_t width = rnd(3) == 0 ? 16 + rnd(24) : 0;
                                bool crlf = rnd(2);
                                if (rnd(8) == 0)
                                        text[n++] = 0x1b;
                                for (size_t j = 0; j < l; j++) {
                                        if (width && j > 0 && j % width == 0) {
                                                if (crlf)
                                                        text[n++] = '\r';
                                                text[n++] = '\n';
                                        }
                                        text[n++] = f->p[fi][j];
                                        if (!width && rnd(6) == 0) {
                                                const char *d = decorations[rnd(ELEMENTSOF(decorations))];
                                                memcpy(text + n, d, strlen(d));
                                                n += strlen(d);
                                        }
                                }
                        } else if (what == 3) {
                                /* a run of encoding characters: a wrapped line's worth */
                                for (size_t j = 0, l = 1 + rnd(24); j < l; j++)
                                        text[n++] = (unsigned char) "aB+/=09"[rnd(7)];
                                if (rnd(2))
                                        text[n++] = '\r';   /* CRLF, as base64 | unix2dos prints */
                                text[n++] = '\n';
                        } else
                                for (size_t j = 0, l = 1 + rnd(8); j < l; j++)
                                        text[n++] = (unsigned char) alpha[rnd((uint32_t) alen)];
                }
                if (rnd(3) == 0) {
                        const char *d = decorations[rnd(ELEMENTSOF(decorations))];
                        memcpy(text + n, d, strlen(d));
                        n += strlen(d);
                }
                if (!random_chunks_agree(c, names, values, lens, n_secrets, min_len, text, n, 300, failures == 0))
                        failures++;
                for (size_t i = 0; i < n_secrets; i++) {
                        free(names[i]);
                        free(values[i]);
                        ref_forms_done(&forms[i]);
                }
                free(text);
        }
        CHECK_EQ_INT(failures, 0);
}

static bool one_case(const char *secret, const char *text, size_t min_len, size_t chunk, const char *want) {
        char *names[] = { (char *) "S" };
        unsigned char *values[] = { (unsigned char *) secret };
        size_t lens[] = { strlen(secret) };
        size_t sizes[] = { chunk };
        if (!differential(names, values, lens, 1, min_len, (const unsigned char *) text, strlen(text), sizes,
                          chunk ? 1 : 0, true))
                return false;
        if (!want)
                return true;
        _cleanup_redactor_ struct redactor *r = NULL;
        redactor_new(min_len, "[REDACTED:{name}]", &r);
        redactor_add(r, "S", (const unsigned char *) secret, strlen(secret));
        redactor_compile(r);
        struct buf got = {};
        stream_all(r, (const unsigned char *) text, strlen(text), sizes, chunk ? 1 : 0, &got);
        bool ok = got.n == strlen(want) && memcmp(got.p, want, got.n) == 0;
        if (!ok)
                printf("# got '%.*s', want '%s'\n", (int) got.n, got.p, want);
        free(got.p);
        return ok;
}

/* Test-only values below are synthetic patterns, not credentials. */
TEST(borders_and_overlaps) {
        for (size_t chunk = 0; chunk <= 3; chunk++) {
                CHECK(one_case("abcabcabd", "xxabcabcabcabdyy", 4, chunk, "xxabc[REDACTED:S]yy"));
                CHECK(one_case("aaaaaaab", "aaaaaaaaaaaaab!", 4, chunk, "aaaaaa[REDACTED:S]!"));
                CHECK(one_case("aaaaaaaa", "baaaaaaaaaaab", 4, chunk, "b[REDACTED:S]b"));   /* overlaps merge */
                CHECK(one_case("abababab", "abababababab", 4, chunk, "[REDACTED:S]"));
        }
}

TEST(partial_at_end) {
        /* a held prefix of >= min_len bytes at end of stream is masked and counted */
        CHECK(one_case("0123456789abcdef", "log: 0123456789", 8, 1, "log: [REDACTED:S]"));
        /* a shorter one is passed through */
        CHECK(one_case("0123456789abcdef", "log: 0123", 8, 1, "log: 0123"));
        /* min_len counts the prefix's characters in the view, not the sequences it skipped:
         * an 'f' and a colour reset, or an OSC, are not 8 characters of the value */
        for (size_t chunk = 0; chunk <= 3; chunk++) {
                CHECK(one_case("fake-AbCdEf0123XyZ", "ls: \033[01;34mconf\033[0m\033[K", 8, chunk,
                               "ls: \033[01;34mconf\033[0m\033[K"));
                CHECK(one_case("fake-AbCdEf0123XyZ", "see ref\033]8;;\033\\", 8, chunk, "see ref\033]8;;\033\\"));
                CHECK(one_case("fake-AbCdEf0123XyZ", "see fake-A\033[1mbCd", 8, chunk, "see [REDACTED:S]"));
        }
}

TEST(secret_containing_mask_text) {
        CHECK(one_case("[REDACTED:S]x", "a [REDACTED:S]x b", 4, 1, "a [REDACTED:S] b"));
}

TEST(binary_passes_through) {
        _cleanup_redactor_ struct redactor *r = NULL;
        CHECK_EQ_INT(redactor_new(8, NULL, &r), 0);
        unsigned char v[24];
        randombytes_buf(v, sizeof v);
        CHECK(redactor_add(r, "K", v, sizeof v) > 0);
        CHECK_EQ_INT(redactor_compile(r), 0);
        size_t n = 1 << 20;
        unsigned char *text = malloc(n);
        randombytes_buf(text, n);
        for (size_t i = 0; i < n; i += 4096)
                text[i] = 0;   /* NUL bytes */
        struct buf got = {};
        size_t sizes[] = { 1, 7, 4096, 65536 };
        CHECK_EQ_INT(stream_all(r, text, n, sizes, 4, &got), 0);
        CHECK_EQ_INT(got.n, n);
        CHECK(got.n == n && memcmp(got.p, text, n) == 0);
        CHECK_EQ_INT(got.n_leaks, 0);
        free(got.p);
        free(text);
}

TEST(too_short_value_refused) {
        _cleanup_redactor_ struct redactor *r = NULL;
        CHECK_EQ_INT(redactor_new(8, NULL, &r), 0);
        CHECK_EQ_INT(redactor_add(r, "X", (const unsigned char *) "short", 5), 0);
}

/* ---- every family of forms, split at every byte ---- */

/* A growing byte string (test data only: generated values and their forms). */
struct text {
        unsigned char p[4096];
        size_t n;
};

static void text_add(struct text *t, const void *p, size_t n) {
        if (t->n + n <= sizeof(t->p)) {
                memcpy(t->p + t->n, p, n);
                t->n += n;
        }
}

static void text_str(struct text *t, const char *s) {
        text_add(t, s, strlen(s));
}

struct first_form {
        enum redact_form want;
        unsigned char p[1024];
        size_t n;
};

static int first_of_kind(void *userdata, enum redact_form form, const unsigned char *p, size_t n, bool flex) {
        struct first_form *f = userdata;
        if (form == f->want && f->n == 0 && n <= sizeof(f->p)) {
                memcpy(f->p, p, n);
                f->n = n;
        }
        return 0;
}

static void random_alnum(char *p, size_t n) {
        static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for (size_t i = 0; i < n; i++)
                p[i] = alnum[rnd(sizeof(alnum) - 1)];
        p[n] = 0;
}

/* Streams text split in two at every offset, then a byte at a time, and compares each output
 * with want and with the reference; each run must report the leak in `form` first. */
static bool every_boundary(const char *what, const char *value, const struct text *in, const struct text *want,
                           enum redact_form form) {
        _cleanup_redactor_ struct redactor *r = NULL;
        bool ok = redactor_new(8, "[REDACTED:{name}]", &r) == 0 &&
                  redactor_add(r, "S", (const unsigned char *) value, strlen(value)) > 0 && redactor_compile(r) == 0;
        for (size_t split = 0; ok && split <= in->n + 1; split++) {
                size_t sizes[2] = { split <= in->n ? split : 1, in->n };
                struct buf got = {};
                ok = stream_all(r, in->p, in->n, sizes, 2, &got) == 0 && got.n == want->n &&
                     memcmp(got.p, want->p, want->n) == 0 && got.n_leaks >= 1 && got.leak_forms[0] == form;
                if (!ok)
                        printf("# %s: split at %zu: %zu bytes out (want %zu), %zu leaks, first %s (want %s)\n", what,
                               split, got.n, want->n, got.n_leaks, got.n_leaks ? redact_form_name(got.leak_forms[0]) : "-",
                               redact_form_name(form));
                free(got.p);
        }
        char *names[] = { (char *) "S" };
        unsigned char *values[] = { (unsigned char *) value };
        size_t lens[] = { strlen(value) }, one[] = { 1 };
        if (ok && !differential(names, values, lens, 1, 8, in->p, in->n, one, 1, true)) {
                printf("# %s: differs from the reference\n", what);
                ok = false;
        }
        return ok;
}

/* "pre " FORM " post": the first form of `kind` of value, planted where a tool prints it. */
static bool planted_family(const char *what, const char *value, enum redact_form kind) {
        struct first_form f = { .want = kind };
        redact_forms((const unsigned char *) value, strlen(value), 8, first_of_kind, &f);
        if (f.n == 0) {
                printf("# %s: value has no %s form\n", what, redact_form_name(kind));
                return false;
        }
        struct text in = {}, want = {};
        text_str(&in, "pre ");
        text_add(&in, f.p, f.n);
        text_str(&in, " post\n");
        text_str(&want, "pre [REDACTED:S] post\n");
        return every_boundary(what, value, &in, &want, kind);
}

/* A JSON document holding the value at offset `at`, base64'd and wrapped at `width` columns
 * (base64, base64 -w 64) or hex-dumped 60 a line (xxd -p): the value's characters cross a line
 * break at an arbitrary column. */
static bool wrapped_family(const char *what, const char *value, size_t at, size_t width, bool hex) {
        char doc[512];
        snprintf(doc, sizeof doc, "{\"user\": \"ci\", \"pad\": \"%.*s\", \"token\": \"%s\", \"n\": 1}", (int) at,
                 "................................................................", value);
        size_t vstart = strstr(doc, value) - doc, vend = vstart + strlen(value), dn = strlen(doc);
        char enc[2048];
        size_t en, first, last;   /* the characters that depend on the value alone */
        if (hex) {
                for (size_t i = 0; i < dn; i++)
                        snprintf(enc + 2 * i, 3, "%02x", (unsigned char) doc[i]);
                en = 2 * dn, first = 2 * vstart, last = 2 * vend;
        } else {
                sodium_bin2base64(enc, sizeof enc, (const unsigned char *) doc, dn, sodium_base64_VARIANT_ORIGINAL);
                en = strlen(enc), first = (vstart * 8 + 5) / 6, last = vend * 8 / 6;
                /* the character mixing the value's last 4 bits with the 2 top bits of the '"'
                 * after it (00) is the one the value would end with: that form matches too */
                if (vend * 8 % 6 == 4)
                        last++;
        }
        struct text in = {}, want = {};
        for (size_t i = 0; i < en; i++) {
                if (i > 0 && i % width == 0) {
                        text_str(&in, "\n");
                        if (i <= first || i >= last)     /* not inside the match */
                                text_str(&want, "\n");
                }
                text_add(&in, enc + i, 1);
                if (i == first)
                        text_str(&want, "[REDACTED:S]");
                if (i < first || i >= last)
                        text_add(&want, enc + i, 1);
        }
        text_str(&in, "\n");
        text_str(&want, "\n");
        return every_boundary(what, value, &in, &want, hex ? FORM_HEX_LOWER : FORM_BASE64);
}

TEST(families_at_every_boundary) {
        char a[9], b[5], c[4], d[5], e[5], value[64];
        random_alnum(a, 8), random_alnum(b, 4), random_alnum(c, 3), random_alnum(d, 4), random_alnum(e, 4);
        /* quotes, a backslash, a tab and a non-ASCII letter: every literal family applies */
        snprintf(value, sizeof value, "%s'%s\"%s\\%s\t%s\xc3\xa9", a, b, c, d, e);
        CHECK(planted_family("python repr", value, FORM_PYTHON));
        CHECK(planted_family("C-family escapes", value, FORM_ESCAPED));
        CHECK(planted_family("YAML double-quoted", value, FORM_YAML));
        CHECK(planted_family("quote doubling", value, FORM_QUOTE_DOUBLED));
        CHECK(planted_family("escapes resolved", value, FORM_UNESCAPED));
        CHECK(planted_family("shell (zsh $'...')", value, FORM_SHELL));
        CHECK(planted_family("base64(json)", value, FORM_BASE64_JSON));
        CHECK(planted_family("json(json)", value, FORM_JSON_JSON));

        char plain[33];
        random_alnum(plain, 32);
        CHECK(planted_family("base64(base64)", plain, FORM_BASE64_BASE64));
        /* a value whose base64 has '+' or '/', so its percent-encoding is a form of its own */
        char pct[40];
        do {
                random_alnum(a, 8), random_alnum(b, 4);
                snprintf(pct, sizeof pct, "%s?>~%s>?%s", a, b, a);
                struct first_form f = { .want = FORM_PERCENT_BASE64 };
                redact_forms((const unsigned char *) pct, strlen(pct), 8, first_of_kind, &f);
                if (f.n > 0)
                        break;
        } while (true);
        CHECK(planted_family("percent(base64)", pct, FORM_PERCENT_BASE64));

        /* busybox ash's set -x: the run of quotes inside double quotes */
        char bb[32];
        snprintf(bb, sizeof bb, "%s''%s", a, b);
        struct text in = {}, want = {};
        text_str(&in, "+ : '"), text_str(&in, a), text_str(&in, "'\"''\"'"), text_str(&in, b), text_str(&in, "'\n");
        text_str(&want, "+ : '[REDACTED:S]'\n");
        CHECK(every_boundary("busybox set -x", bb, &in, &want, FORM_SHELL));

        /* terminal decoration: grep --color=always inside the value, a progress line's \r */
        in = (struct text) {}, want = (struct text) {};
        text_str(&in, "match: "), text_add(&in, plain, 5), text_str(&in, "\033[01;31m\033[K"), text_add(&in, plain + 5, 9);
        text_str(&in, "\033[m\033[K"), text_add(&in, plain + 14, 18), text_str(&in, "\n");
        text_str(&want, "match: [REDACTED:S]\n");
        CHECK(every_boundary("grep --color", plain, &in, &want, FORM_RAW));
        in = (struct text) {}, want = (struct text) {};
        text_add(&in, plain, 11), text_str(&in, "\r"), text_add(&in, plain + 11, 21), text_str(&in, " 100%\n");
        text_str(&want, "[REDACTED:S] 100%\n");
        CHECK(every_boundary("progress \\r", plain, &in, &want, FORM_RAW));

        /* CRLF-wrapped base64 right after a two-byte ESC sequence: the terminal view eats the
         * encoding's first character, so only the wrap view can hold it across a read that
         * ends on the '\r' (it once passed unmasked, and at the end wrote a negative size) */
        char b64[64];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *) plain, 32, sodium_base64_VARIANT_ORIGINAL);
        in = (struct text) {}, want = (struct text) {};
        text_str(&in, "\033"), text_add(&in, b64, 24), text_str(&in, "\r\n"), text_str(&in, b64 + 24);
        text_str(&in, "\r\nend\r\n");
        text_str(&want, "\033[REDACTED:S]\r\nend\r\n");
        CHECK(every_boundary("ESC, then CRLF-wrapped base64", plain, &in, &want, FORM_BASE64));

        /* wrapped encodings at every column the value can start in */
        for (size_t at = 0; at < 6; at++) {
                CHECK(wrapped_family("base64 of JSON, 76 columns", plain, at * 13, 76, false));
                CHECK(wrapped_family("base64 -w 64", plain, at * 11, 64, false));
                CHECK(wrapped_family("xxd -p", plain, at * 7, 60, true));
        }
}

/* ---- positions: line and column of each leak ---- */

/* One secret (or two, the second may be NULL) over text fed in pieces of `chunk` bytes
 * (0: at once); the leaks in got. */
static void positions_run(const char *secret, const char *secret2, const unsigned char *text, size_t n,
                          size_t chunk, struct buf *got) {
        _cleanup_redactor_ struct redactor *r = NULL;
        *got = (struct buf) {};
        CHECK_EQ_INT(redactor_new(8, NULL, &r), 0);
        CHECK(redactor_add(r, "S", (const unsigned char *) secret, strlen(secret)) > 0);
        if (secret2)
                CHECK(redactor_add(r, "T", (const unsigned char *) secret2, strlen(secret2)) > 0);
        CHECK_EQ_INT(redactor_compile(r), 0);
        size_t sizes[] = { chunk };
        CHECK_EQ_INT(stream_all(r, text, n, sizes, chunk ? 1 : 0, got), 0);
}

#define CHECK_POS(b, i, want_line, want_col)                    \
        do {                                                    \
                CHECK((b)->n_leaks > (i));                      \
                CHECK_EQ_INT((b)->leak_lines[i], want_line);    \
                CHECK_EQ_INT((b)->leak_cols[i], want_col);      \
        } while (0)

static const size_t position_chunks[] = { 0, 1, 2, 3, 7, 64, 4096 };

TEST(position_line_and_column) {
        const char *text = "first line\nsecond line\n    password = 'Xq7-Lm2p-Rt9w-Zk4v'\n";
        for (size_t c = 0; c < ELEMENTSOF(position_chunks); c++) {
                struct buf got;
                positions_run("Xq7-Lm2p-Rt9w-Zk4v", NULL, (const unsigned char *) text, strlen(text),
                              position_chunks[c], &got);
                CHECK_EQ_INT(got.n_leaks, 1);
                CHECK_POS(&got, 0, 3, 17);
                free(got.p);
        }
}

/* CR is a byte of the line like any other: CRLF lines end at the '\n', a progress bar's bare
 * '\r' does not start a line. */
TEST(position_crlf) {
        const char *text = "a\r\nbb\r\nccc=Xq7-Lm2p-Rt9w-Zk4v\r\n10%\r100%\rXq7-Lm2p-Rt9w-Zk4v\r\n";
        for (size_t c = 0; c < ELEMENTSOF(position_chunks); c++) {
                struct buf got;
                positions_run("Xq7-Lm2p-Rt9w-Zk4v", NULL, (const unsigned char *) text, strlen(text),
                              position_chunks[c], &got);
                CHECK_EQ_INT(got.n_leaks, 2);
                CHECK_POS(&got, 0, 3, 5);
                CHECK_POS(&got, 1, 4, 10);
                free(got.p);
        }
}

/* A value with a newline: the position of its first byte, and the newline inside the mask
 * still counts for what follows. */
TEST(position_value_with_newline) {
        const char *text = "x\nkey: line-one-Aq3z\nline-two-Bw8y\nthen: line-one-Aq3z\nline-two-Bw8y\nlast Xq7-Lm2p-Rt9w-Zk4v";
        for (size_t c = 0; c < ELEMENTSOF(position_chunks); c++) {
                struct buf got;
                positions_run("line-one-Aq3z\nline-two-Bw8y", "Xq7-Lm2p-Rt9w-Zk4v", (const unsigned char *) text,
                              strlen(text), position_chunks[c], &got);
                CHECK_EQ_INT(got.n_leaks, 3);
                CHECK_POS(&got, 0, 2, 6);
                CHECK_POS(&got, 1, 4, 7);
                CHECK_POS(&got, 2, 6, 6);
                free(got.p);
        }
}

/* A held prefix masked at the end of the stream is placed like any leak. */
TEST(position_partial) {
        const char *text = "a\nb\nlog: Xq7-Lm2p-Rt9";
        struct buf got;
        positions_run("Xq7-Lm2p-Rt9w-Zk4v", NULL, (const unsigned char *) text, strlen(text), 1, &got);
        CHECK_EQ_INT(got.n_leaks, 1);
        CHECK_POS(&got, 0, 3, 6);
        free(got.p);
}

/* Text of many lines, far longer than the window, with runs of empty lines (thousands of
 * newlines in a row) and long lines, in every piece size: each leak where its offset is. */
TEST(position_long_stream) {
        const char *secret = "Xq7-Lm2p-Rt9w-Zk4v";
        size_t cap = 1 << 20, n = 0;
        unsigned char *text = malloc(cap);
        size_t planted = 0;
        for (unsigned line = 0; n + 40000 < cap; line++) {
                if (line % 997 == 0) {
                        size_t empty = 1 + rnd(10000);   /* a block of newlines */
                        memset(text + n, '\n', empty);
                        n += empty;
                }
                size_t len = line % 1009 == 0 ? 20000 + rnd(10000) : rnd(200);
                for (size_t j = 0; j < len; j++)
                        text[n++] = (unsigned char) ('a' + rnd(26));
                if (rnd(50) == 0) {
                        memcpy(text + n, secret, strlen(secret));
                        n += strlen(secret);
                        planted++;
                }
                text[n++] = rnd(8) == 0 ? '\r' : '\n';
        }
        static const size_t chunks[] = { 0, 1, 4093, 65536, 65536 + 17, 1 << 20 };
        for (size_t c = 0; c < ELEMENTSOF(chunks); c++) {
                struct buf got;
                positions_run(secret, NULL, text, n, chunks[c], &got);
                CHECK_EQ_INT(got.n_leaks, planted);
                CHECK(positions_agree(&got, text, true));
                free(got.p);
        }
        free(text);
}

TEST(position_reset) {
        _cleanup_redactor_ struct redactor *r = NULL;
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        CHECK_EQ_INT(redactor_new(8, NULL, &r), 0);
        CHECK(redactor_add(r, "S", (const unsigned char *) "Xq7-Lm2p-Rt9w-Zk4v", 18) > 0);
        CHECK_EQ_INT(redactor_compile(r), 0);
        CHECK_EQ_INT(redact_stream_new(r, &s), 0);
        struct buf got = {};
        struct redact_sink sink = { buf_write, buf_leak, &got };
        const char *first = "a\nb\nc\nd Xq7-Lm2p-Rt9w-Zk4v", *second = "  Xq7-Lm2p-Rt9w-Zk4v";
        CHECK_EQ_INT(redact_stream_feed(s, first, strlen(first), &sink), 0);
        CHECK_EQ_INT(redact_stream_finish(s, &sink), 0);
        redact_stream_reset(s);
        CHECK_EQ_INT(redact_stream_feed(s, second, strlen(second), &sink), 0);
        CHECK_EQ_INT(redact_stream_finish(s, &sink), 0);
        CHECK_EQ_INT(got.n_leaks, 2);
        CHECK_POS(&got, 0, 4, 3);
        CHECK_POS(&got, 1, 1, 3);
        free(got.p);
}

/* redact_scan_fd reads 1 MiB pieces: a value across the border of two is placed right. */
TEST(position_scan_piece_border) {
        const char *secret = "Xq7-Lm2p-Rt9w-Zk4v";
        size_t n = (1 << 20) + 4096;
        unsigned char *text = malloc(n);
        for (size_t i = 0; i < n; i++)
                text[i] = i % 61 == 60 ? '\n' : 'x';
        size_t at = (1 << 20) - 7;   /* 7 bytes in the first piece, 11 in the second */
        memcpy(text + at, secret, strlen(secret));
        int fd = memfd_create("scan", MFD_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(write(fd, text, n) == (ssize_t) n);
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        _cleanup_redactor_ struct redactor *r = NULL;
        CHECK_EQ_INT(redactor_new(8, NULL, &r), 0);
        CHECK(redactor_add(r, "S", (const unsigned char *) secret, strlen(secret)) > 0);
        CHECK_EQ_INT(redactor_compile(r), 0);
        struct buf got = {};
        struct redact_sink sink = { .leak = buf_leak, .userdata = &got };
        CHECK_EQ_INT(redact_scan_fd(r, fd, UINT64_MAX, &sink), 1);
        uint64_t line, col;
        position_of(text, at, &line, &col);
        CHECK_EQ_INT(got.leak_offsets[0], at);
        CHECK_POS(&got, 0, line, col);
        CHECK_EQ_INT(line, at / 61 + 1);
        close(fd);
        free(text);
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        const char *seed = getenv("REDACT_TEST_SEED");
        rng_state = seed ? strtoull(seed, NULL, 0) : ((uint64_t) randombytes_random() << 32 | randombytes_random());
        if (!rng_state)
                rng_state = 1;
        printf("# REDACT_TEST_SEED=%llu\n", (unsigned long long) rng_state);
        RUN(borders_and_overlaps);
        RUN(partial_at_end);
        RUN(secret_containing_mask_text);
        RUN(binary_passes_through);
        RUN(too_short_value_refused);
        RUN(position_line_and_column);
        RUN(position_crlf);
        RUN(position_value_with_newline);
        RUN(position_partial);
        RUN(position_long_stream);
        RUN(position_reset);
        RUN(position_scan_piece_border);
        RUN(differential_random);
        RUN(differential_modes);
        RUN(families_at_every_boundary);
        return tap_finish();
}
