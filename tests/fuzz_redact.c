/* libFuzzer target for the streaming matcher: the input decides 1-4 secrets, a text (noise,
 * whole and partial secrets, encoded forms with terminal sequences and line breaks between
 * their characters) and a chunking; the output and the leak list must
 * equal those of the naive reference redactor, or the case is printed and abort() is called.
 * Built and run by tests/fuzz.sh. */
#include "redact.h"
#include "redact_reference.h"

#define MAX_SECRETS 4
#define MAX_SIZES 8
#define MAX_TEXT 8192
#define MAX_LEAKS 4096

/* Reads the fuzz input a byte at a time; zeros once it is used up, so every input is a case. */
struct input {
        const uint8_t *p;
        size_t n;
};

static uint8_t next_byte(struct input *in) {
        if (in->n == 0)
                return 0;
        in->n--;
        return *in->p++;
}

static size_t pick(struct input *in, size_t n) {
        return n ? next_byte(in) % n : 0;
}

/* What tools put between a value's characters (the terminal and wrap views), whole and cut
 * short, so that sequences at chunk borders and ones that never end are common. */
static const char *const decorations[] = {
        "\033[31m", "\033[m", "\033[01;31m\033[K", "\033]8;;http://x/\033\\", "\033]0;t\a", "\033(B",
        "\0337", "\r", "\n", "\r\n", "\n    ", "\n\t", "\033[", "\033]8;", "\033", "\n\n",
};

/* Small alphabets make borders, overlaps and nesting likely; the last entry is every byte. */
static const char *const alphabets[] = { "ab", "abc", "ab \n", "aB+/=%\"'<&\\\n \t", NULL };

static unsigned char from_alphabet(struct input *in, const char *alphabet) {
        uint8_t b = next_byte(in);
        return alphabet ? (unsigned char) alphabet[b % strlen(alphabet)] : b;
}

struct out {
        unsigned char *p;
        size_t n, cap;
        uint64_t offsets[MAX_LEAKS], lines[MAX_LEAKS], cols[MAX_LEAKS];
        const char *names[MAX_LEAKS];
        enum redact_form forms[MAX_LEAKS];
        size_t n_leaks;
};

static int out_write(void *userdata, const void *p, size_t n) {
        struct out *o = userdata;
        if (o->n + n > o->cap) {
                o->cap = (o->n + n) * 2 + 64;
                o->p = realloc(o->p, o->cap);
                if (!o->p)
                        abort();
        }
        memcpy(o->p + o->n, p, n);
        o->n += n;
        return 0;
}

static void out_leak(void *userdata, const struct redact_leak *l) {
        struct out *o = userdata;
        if (o->n_leaks < MAX_LEAKS) {
                o->offsets[o->n_leaks] = l->offset;
                o->lines[o->n_leaks] = l->line;
                o->cols[o->n_leaks] = l->col;
                o->names[o->n_leaks] = l->name;
                o->forms[o->n_leaks] = l->form;
        }
        o->n_leaks++;
}

struct fuzz_case {
        size_t min_len, n_secrets;
        char names[MAX_SECRETS][4];
        unsigned char values[MAX_SECRETS][32];
        size_t lens[MAX_SECRETS];
        unsigned char text[MAX_TEXT];
        size_t n;
        size_t sizes[MAX_SIZES], n_sizes;
};

static void dump_bytes(const char *label, const unsigned char *p, size_t n) {
        fprintf(stderr, "%s (%zu bytes): \"", label, n);
        for (size_t i = 0; i < n; i++)
                if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
                        fputc(p[i], stderr);
                else
                        fprintf(stderr, "\\x%02x", p[i]);
        fprintf(stderr, "\"\n");
}

static void dump_case(const struct fuzz_case *c) {
        fprintf(stderr, "min_len %zu\n", c->min_len);
        for (size_t i = 0; i < c->n_secrets; i++)
                dump_bytes(c->names[i], c->values[i], c->lens[i]);
        dump_bytes("text", c->text, c->n);
        fprintf(stderr, "chunk sizes (cycled, 0 = all):");
        for (size_t i = 0; i < c->n_sizes; i++)
                fprintf(stderr, " %zu", c->sizes[i]);
        fputs(c->n_sizes ? "\n" : " none (one feed)\n", stderr);
}

/* Derives a case from the input, in the spirit of test_redact.c's random cases. */
static void derive(struct input *in, struct fuzz_case *c) {
        c->min_len = 3 + pick(in, 8);
        c->n_secrets = 1 + pick(in, MAX_SECRETS);
        const char *alphabet = alphabets[pick(in, ELEMENTSOF(alphabets))];
        for (size_t i = 0; i < c->n_secrets; i++) {
                snprintf(c->names[i], sizeof c->names[i], "S%zu", i);
                c->lens[i] = c->min_len + pick(in, 12);
                for (size_t j = 0; j < c->lens[i]; j++)
                        c->values[i][j] = from_alphabet(in, alphabet);
                if (i > 0 && pick(in, 4) == 0) {
                        /* nested: the tail of the previous secret */
                        size_t from = pick(in, c->lens[i - 1]);
                        size_t l = c->lens[i - 1] - from;
                        if (l >= c->min_len) {
                                c->lens[i] = l;
                                memcpy(c->values[i], c->values[i - 1] + from, l);
                        }
                }
        }
        c->n_sizes = pick(in, MAX_SIZES + 1);
        for (size_t i = 0; i < c->n_sizes; i++)
                c->sizes[i] = 1 + pick(in, pick(in, 2) ? 4 : 64);

        struct ref_forms forms[MAX_SECRETS] = {};
        for (size_t i = 0; i < c->n_secrets; i++)
                ref_forms_of(c->values[i], c->lens[i], c->min_len, &forms[i]);
        /* the rest of the input is a list of text pieces */
        while (in->n > 0 && c->n < MAX_TEXT - 512) {
                size_t what = pick(in, 8), si = pick(in, c->n_secrets);
                const struct ref_forms *f = &forms[si];
                if (what <= 1) {                       /* the value */
                        memcpy(c->text + c->n, c->values[si], c->lens[si]);
                        c->n += c->lens[si];
                } else if (what == 2) {                /* a prefix of it */
                        size_t l = 1 + pick(in, c->lens[si]);
                        memcpy(c->text + c->n, c->values[si], l);
                        c->n += l;
                } else if (what == 3 && f->count > 0) { /* a form, or a prefix of one */
                        size_t fi = pick(in, f->count), l = f->n[fi];
                        if (l > 256)
                                l = 256;
                        if (pick(in, 4) == 0)
                                l = 1 + pick(in, l);
                        /* sometimes wrapped every `width` characters (LF or CRLF), sometimes
                         * after a lone ESC, which takes the next character as its own */
                        size_t width = pick(in, 3) == 0 ? 16 + pick(in, 24) : 0;
                        bool crlf = pick(in, 2);
                        if (pick(in, 8) == 0)
                                c->text[c->n++] = 0x1b;
                        for (size_t j = 0; j < l && c->n + 32 < MAX_TEXT; j++) {
                                if (width && j > 0 && j % width == 0) {
                                        if (crlf)
                                                c->text[c->n++] = '\r';
                                        c->text[c->n++] = '\n';
                                }
                                unsigned char b = f->p[fi][j];
                                if (f->flex[fi] && b == ' ') {
                                        /* a flexible space: a run of whitespace, sometimes too long */
                                        static const char ws[] = " \t\n\r\v\f";
                                        size_t run = 1 + pick(in, pick(in, 8) == 0 ? 20 : 3);
                                        for (size_t r = 0; r < run; r++)
                                                c->text[c->n++] = (unsigned char) ws[pick(in, 6)];
                                } else
                                        c->text[c->n++] = b;
                                if (pick(in, 8) == 0) {
                                        const char *d = decorations[pick(in, ELEMENTSOF(decorations))];
                                        memcpy(c->text + c->n, d, strlen(d));
                                        c->n += strlen(d);
                                }
                        }
                } else if (what == 4) {                /* a wrapped line's worth of encoding characters */
                        for (size_t j = 0, l = 1 + pick(in, 24); j < l; j++)
                                c->text[c->n++] = (unsigned char) "aB+/=09"[pick(in, 7)];
                        if (pick(in, 2))
                                c->text[c->n++] = '\r';
                        c->text[c->n++] = '\n';
                } else                                 /* noise */
                        for (size_t j = 0, l = 1 + pick(in, 8); j < l; j++)
                                c->text[c->n++] = from_alphabet(in, alphabet);
        }
        for (size_t i = 0; i < c->n_secrets; i++)
                ref_forms_done(&forms[i]);
}

static int stream_all(const struct redactor *r, const struct fuzz_case *c, struct out *o) {
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        int k = redact_stream_new(r, &s);
        if (k < 0)
                return k;
        struct redact_sink sink = { out_write, out_leak, o };
        size_t pos = 0, i = 0;
        while (pos < c->n) {
                size_t take = c->n_sizes ? c->sizes[i++ % c->n_sizes] : c->n;
                if (take == 0 || take > c->n - pos)
                        take = c->n - pos;
                if ((k = redact_stream_feed(s, c->text + pos, take, &sink)) < 0)
                        return k;
                pos += take;
        }
        return redact_stream_finish(s, &sink);
}

static _noreturn_ void differ(const struct fuzz_case *c, const char *what, const struct out *got,
                              const unsigned char *want, size_t want_len) {
        fprintf(stderr, "fuzz_redact: %s\n", what);
        dump_case(c);
        dump_bytes("expected output", want, want_len);
        dump_bytes("streamed output", got->p, got->n);
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (secret_init() < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct fuzz_case c;
        static struct out got;
        struct input in = { data, size };
        c = (struct fuzz_case) {};
        derive(&in, &c);

        _cleanup_redactor_ struct redactor *r = NULL;
        struct ref_set ref = { .min_len = c.min_len };
        if (redactor_new(c.min_len, "[REDACTED:{name}]", &r) < 0)
                abort();
        for (size_t i = 0; i < c.n_secrets; i++) {
                char mask[64];
                snprintf(mask, sizeof mask, "[REDACTED:%s]", c.names[i]);
                if (redactor_add(r, c.names[i], c.values[i], c.lens[i]) < 0)
                        abort();
                ref_set_add(&ref, c.names[i], mask, c.values[i], c.lens[i]);
        }
        if (redactor_compile(r) < 0)
                abort();

        got = (struct out) {};
        if (stream_all(r, &c, &got) < 0)
                abort();
        size_t want_len, want_n_leaks;
        struct ref_leak *want_leaks;
        unsigned char *want = ref_redact(&ref, c.text, c.n, &want_len, &want_leaks, &want_n_leaks);

        if (got.n != want_len || (want_len > 0 && memcmp(got.p, want, want_len) != 0))
                differ(&c, "output differs", &got, want, want_len);
        if (got.n_leaks != want_n_leaks) {
                fprintf(stderr, "leak count: streamed %zu, expected %zu\n", got.n_leaks, want_n_leaks);
                differ(&c, "leak count differs", &got, want, want_len);
        }
        for (size_t i = 0; i < want_n_leaks && i < MAX_LEAKS; i++)
                if (got.offsets[i] != want_leaks[i].offset || got.forms[i] != want_leaks[i].form ||
                    strcmp(got.names[i], ref.names[want_leaks[i].secret]) != 0) {
                        fprintf(stderr, "leak %zu: streamed %s %s at %llu, expected %s %s at %zu\n", i, got.names[i],
                                redact_form_name(got.forms[i]), (unsigned long long) got.offsets[i],
                                ref.names[want_leaks[i].secret], redact_form_name(want_leaks[i].form),
                                want_leaks[i].offset);
                        differ(&c, "leak list differs", &got, want, want_len);
                }
        /* each leak's line and column: 1-based, the column in bytes since the last '\n' */
        uint64_t line = 1, line_start = 0, pos = 0;
        for (size_t i = 0; i < got.n_leaks && i < MAX_LEAKS; i++) {
                for (; pos < got.offsets[i] && pos < c.n; pos++)
                        if (c.text[pos] == '\n')
                                line++, line_start = pos + 1;
                if (got.lines[i] != line || got.cols[i] != got.offsets[i] - line_start + 1) {
                        fprintf(stderr, "leak %zu at %llu: streamed %llu:%llu, expected %llu:%llu\n", i,
                                (unsigned long long) got.offsets[i], (unsigned long long) got.lines[i],
                                (unsigned long long) got.cols[i], (unsigned long long) line,
                                (unsigned long long) (got.offsets[i] - line_start + 1));
                        differ(&c, "leak position differs", &got, want, want_len);
                }
        }
        free(want);
        free(want_leaks);
        ref_set_done(&ref);
        free(got.p);
        got.p = NULL;
        return 0;
}
