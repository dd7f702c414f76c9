/* Unit tests for redact/forms.c: every encoded form of a secret value, checked against exact
 * strings and, for base64 and printf %q, against libsodium and bash. Values are obvious fakes
 * and no check prints a value. */
#include <sodium.h>
#include <fcntl.h>
#include <sys/wait.h>

#include "common.h"
#include "redact.h"
#include "tap.h"

/* ---- collecting what redact_forms emits ---- */

struct emitted {
        enum redact_form form;
        unsigned char *bytes;
        size_t len;
        bool flex;
};

struct collected {
        struct emitted *items;
        size_t n;
        int calls, stop_after, stop_with;
};

static int collect(void *userdata, enum redact_form form, const unsigned char *p, size_t n,
                   bool flex) {
        struct collected *c = userdata;
        c->calls++;
        if (c->stop_after > 0 && c->calls >= c->stop_after)
                return c->stop_with;
        struct emitted *l = reallocarray(c->items, c->n + 1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        c->items = l;
        l[c->n] = (struct emitted) { .form = form, .bytes = malloc(n ? n : 1), .len = n, .flex = flex };
        if (!l[c->n].bytes)
                return -ENOMEM;
        memcpy(l[c->n].bytes, p, n);
        c->n++;
        return 0;
}

static void collected_done(struct collected *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->items[i].bytes);
        free(c->items);
        *c = (struct collected) {};
}

static int forms_of(const void *value, size_t len, size_t min_len, struct collected *c) {
        *c = (struct collected) {};
        return redact_forms(value, len, min_len, collect, c);
}

static bool has_bytes(const struct collected *c, enum redact_form form, const void *p, size_t n) {
        for (size_t i = 0; i < c->n; i++)
                if (c->items[i].form == form && c->items[i].len == n &&
                    memcmp(c->items[i].bytes, p, n) == 0)
                        return true;
        return false;
}

static bool has(const struct collected *c, enum redact_form form, const char *s) {
        return has_bytes(c, form, s, strlen(s));
}

static size_t count(const struct collected *c, enum redact_form form) {
        size_t k = 0;
        for (size_t i = 0; i < c->n; i++)
                k += c->items[i].form == form;
        return k;
}

/* No two emitted forms are the same bytes with the same flex flag, none is empty or shorter
 * than min_len, and only FORM_WHITESPACE is flexible. */
static bool well_formed(const struct collected *c, size_t min_len) {
        for (size_t i = 0; i < c->n; i++) {
                const struct emitted *a = &c->items[i];
                if (a->len == 0 || a->len < min_len || a->flex != (a->form == FORM_WHITESPACE))
                        return false;
                if (a->form == FORM_PARTIAL || a->form >= _FORM_MAX)
                        return false;
                for (size_t j = i + 1; j < c->n; j++) {
                        const struct emitted *b = &c->items[j];
                        if (a->len == b->len && a->flex == b->flex && memcmp(a->bytes, b->bytes, a->len) == 0)
                                return false;
                }
        }
        return true;
}

static bool memmem_found(const void *hay, size_t hn, const void *needle, size_t nn) {
        return memmem(hay, hn, needle, nn) != NULL;
}

#define FAKE_SIMPLE "correct-horse-battery"
#define FAKE_SPECIAL "p@ss w0rd'\"<&>"
static const unsigned char fake_binary[] = { 'f', 'a', 'k', 'e', 0x00, 0xff, 'x', '\n', 0x80, 0x01 };

/* ---- tests ---- */

TEST(form_names) {
        static const char *const expected[_FORM_MAX] = {
                "raw", "trimmed", "line", "whitespace", "base64", "base64url",
                "hex", "HEX", "percent", "percent-lower", "percent-plus", "json", "shell", "xml",
                "python", "escaped", "yaml", "quote-doubled", "unescaped", "base64(base64)",
                "base64(json)", "percent(base64)", "json(json)", "partial",
        };
        for (int f = 0; f < _FORM_MAX; f++)
                CHECK(streq(redact_form_name(f), expected[f]));
        CHECK(streq(redact_form_name(_FORM_MAX), "unknown"));
        CHECK(streq(redact_form_name((enum redact_form) -1), "unknown"));
}

TEST(raw_and_trimmed) {
        struct collected c;
        const char *v = "  " FAKE_SIMPLE "\t\r\n";
        CHECK_EQ_INT(forms_of(v, strlen(v), 1, &c), 0);
        CHECK(well_formed(&c, 1));
        CHECK(c.items[0].form == FORM_RAW);
        CHECK(has(&c, FORM_RAW, v));
        CHECK(has(&c, FORM_TRIMMED, FAKE_SIMPLE));
        /* the only line trims to the same bytes: already emitted as "trimmed" */
        CHECK(has(&c, FORM_LINE, "  " FAKE_SIMPLE "\t"));
        CHECK_EQ_INT(count(&c, FORM_LINE), 1);
        CHECK_EQ_INT(count(&c, FORM_WHITESPACE), 0);   /* no newline inside the trimmed value */
        collected_done(&c);

        CHECK_EQ_INT(forms_of(FAKE_SIMPLE, strlen(FAKE_SIMPLE), 1, &c), 0);
        CHECK_EQ_INT(count(&c, FORM_RAW), 1);
        CHECK_EQ_INT(count(&c, FORM_TRIMMED), 0);
        CHECK_EQ_INT(count(&c, FORM_LINE), 0);
        collected_done(&c);
}

/* A PEM-like fake built at test time: header, body lines of 64 characters, footer, CRLF. */
TEST(lines_and_whitespace) {
        char body[3][65];
        for (int l = 0; l < 3; l++) {
                for (int i = 0; i < 64; i++)
                        body[l][i] = "FAKEfake0123456789"[(i + l * 7) % 18];
                body[l][64] = 0;
        }
        body[2][20] = 0;   /* a short last line */
        _cleanup_free_ char *pem = strdup_printf(
                "-----BEGIN FAKE TEST KEY-----\r\n%s\r\n  %s\n%s\r\n-----END FAKE TEST KEY-----\n",
                body[0], body[1], body[2]);
        _cleanup_free_ char *flat = strdup_printf(
                "-----BEGIN FAKE TEST KEY----- %s %s %s -----END FAKE TEST KEY-----",
                body[0], body[1], body[2]);
        _cleanup_free_ char *indented = strdup_printf("  %s", body[1]);
        struct collected c;

        CHECK_EQ_INT(forms_of(pem, strlen(pem), 8, &c), 0);
        CHECK(well_formed(&c, 8));
        CHECK(has(&c, FORM_LINE, "-----BEGIN FAKE TEST KEY-----"));   /* \r dropped */
        CHECK(has(&c, FORM_LINE, body[0]));
        CHECK(has(&c, FORM_LINE, indented));
        CHECK(has(&c, FORM_LINE, body[1]));                          /* the line trimmed */
        CHECK(has(&c, FORM_LINE, body[2]));
        CHECK(has(&c, FORM_LINE, "-----END FAKE TEST KEY-----"));
        CHECK_EQ_INT(count(&c, FORM_LINE), 6);
        CHECK_EQ_INT(count(&c, FORM_WHITESPACE), 1);
        CHECK(has(&c, FORM_WHITESPACE, flat));
        CHECK(has_bytes(&c, FORM_TRIMMED, pem, strlen(pem) - 1));
        collected_done(&c);

        /* min_len drops short lines */
        const char *two = "abc\nlong-enough-line";
        CHECK_EQ_INT(forms_of(two, strlen(two), 5, &c), 0);
        CHECK(!has(&c, FORM_LINE, "abc"));
        CHECK(has(&c, FORM_LINE, "long-enough-line"));
        CHECK(has(&c, FORM_WHITESPACE, "abc long-enough-line"));
        collected_done(&c);
}

static void random_bytes(unsigned char *p, size_t n) {
        randombytes_buf(p, n);
}

static char *sodium_b64(const unsigned char *p, size_t n, int variant) {
        size_t cap = sodium_base64_ENCODED_LEN(n, variant);
        char *out = malloc(cap);
        if (out)
                sodium_bin2base64(out, cap, p, n, variant);
        return out;
}

/* For each alignment a: the padded tail of base64(prefix + value) after the characters that
 * depend on the prefix, that tail without padding, and its core (characters made only of value
 * bits) are emitted; the core also appears inside base64(prefix + value + suffix). Every base64
 * form emitted is one of these. */
static void check_base64(const unsigned char *v, size_t n, size_t min_len) {
        static const size_t skip_for[3] = { 0, 2, 3 };
        static const struct {
                int variant;
                enum redact_form form;
        } alphabets[] = {
                { sodium_base64_VARIANT_ORIGINAL, FORM_BASE64 },
                { sodium_base64_VARIANT_URLSAFE, FORM_BASE64URL },
        };
        struct collected c;
        size_t expected_found = 0;

        CHECK_EQ_INT(forms_of(v, n, min_len, &c), 0);
        CHECK(well_formed(&c, min_len));
        for (size_t k = 0; k < ELEMENTSOF(alphabets); k++)
                for (size_t a = 0; a < 3; a++) {
                        unsigned char buf[64 + 8];
                        size_t skip = skip_for[a];
                        random_bytes(buf, a);
                        memcpy(buf + a, v, n);
                        _cleanup_free_ char *enc = sodium_b64(buf, a + n, alphabets[k].variant);
                        size_t enc_len = strlen(enc), core = (a + n) * 8 / 6 - skip;
                        size_t unpadded = ((a + n) * 8 + 5) / 6 - skip;
                        const char *tail = enc + skip;
                        CHECK_EQ_INT(strlen(tail), enc_len - skip);

                        const char *cands[3] = { tail, tail, tail };
                        size_t lens[3] = { core, unpadded, enc_len - skip };
                        for (int i = 0; i < 3; i++) {
                                if (lens[i] < min_len || lens[i] == 0)
                                        continue;
                                /* emitted under this alphabet's name, or deduplicated into the
                                 * standard one when no character differs */
                                bool found = has_bytes(&c, alphabets[k].form, cands[i], lens[i]) ||
                                             has_bytes(&c, FORM_BASE64, cands[i], lens[i]);
                                CHECK(found);
                        }
                        /* the core is there whatever bytes follow */
                        for (size_t extra = 1; extra <= 3; extra++) {
                                random_bytes(buf + a + n, extra);
                                _cleanup_free_ char *longer = sodium_b64(buf, a + n + extra,
                                                                         alphabets[k].variant);
                                CHECK(memmem_found(longer, strlen(longer), tail, core));
                        }
                        sodium_memzero(buf, sizeof(buf));
                }
        /* nothing else is called base64 */
        for (size_t i = 0; i < c.n; i++) {
                if (c.items[i].form != FORM_BASE64 && c.items[i].form != FORM_BASE64URL)
                        continue;
                bool known = false;
                for (size_t k = 0; k < ELEMENTSOF(alphabets) && !known; k++)
                        for (size_t a = 0; a < 3 && !known; a++) {
                                unsigned char buf[64 + 2] = { 0 };
                                memcpy(buf + a, v, n);
                                _cleanup_free_ char *enc = sodium_b64(buf, a + n, alphabets[k].variant);
                                size_t skip = skip_for[a], total = strlen(enc) - skip;
                                size_t lens[3] = { (a + n) * 8 / 6 - skip,
                                                   ((a + n) * 8 + 5) / 6 - skip, total };
                                for (int j = 0; j < 3; j++)
                                        if (lens[j] == c.items[i].len &&
                                            memcmp(enc + skip, c.items[i].bytes, lens[j]) == 0)
                                                known = true;
                        }
                CHECK(known);
                expected_found++;
        }
        CHECK(expected_found > 0 || n < 3);
        collected_done(&c);
}

TEST(base64_alignments) {
        check_base64((const unsigned char *) FAKE_SIMPLE, strlen(FAKE_SIMPLE), 1);
        check_base64((const unsigned char *) FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1);
        check_base64(fake_binary, sizeof(fake_binary), 1);
        check_base64(fake_binary, sizeof(fake_binary), 8);
        /* every length mod 3 and bytes that differ between the alphabets (0xfb 0xff -> +/ -_) */
        unsigned char v[16];
        for (size_t n = 1; n <= sizeof(v); n++) {
                for (size_t i = 0; i < n; i++)
                        v[i] = (unsigned char) (i % 2 ? 0xff : 0xfb);
                check_base64(v, n, 1);
        }

        struct collected c;
        CHECK_EQ_INT(forms_of(FAKE_SIMPLE, strlen(FAKE_SIMPLE), 1, &c), 0);
        CHECK(has(&c, FORM_BASE64, "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5"));   /* what `base64` prints */
        CHECK_EQ_INT(count(&c, FORM_BASE64URL), 0);   /* same characters: deduplicated */
        collected_done(&c);

        /* "fake?" -> ZmFrZT8= ; the partial character is '8' and the core stops before it */
        CHECK_EQ_INT(forms_of("fake?", 5, 1, &c), 0);
        CHECK(has(&c, FORM_BASE64, "ZmFrZT8="));
        CHECK(has(&c, FORM_BASE64, "ZmFrZT8"));
        CHECK(has(&c, FORM_BASE64, "ZmFrZT"));
        collected_done(&c);
}

TEST(hex) {
        struct collected c;
        CHECK_EQ_INT(forms_of("a b/c", 5, 1, &c), 0);
        CHECK(has(&c, FORM_HEX_LOWER, "6120622f63"));
        CHECK(has(&c, FORM_HEX_UPPER, "6120622F63"));
        collected_done(&c);

        CHECK_EQ_INT(forms_of(fake_binary, sizeof(fake_binary), 1, &c), 0);
        CHECK(has(&c, FORM_HEX_LOWER, "66616b6500ff780a8001"));
        CHECK(has(&c, FORM_HEX_UPPER, "66616B6500FF780A8001"));
        collected_done(&c);

        /* only decimal digits: both cases are the same string, the first name wins */
        CHECK_EQ_INT(forms_of("12345", 5, 1, &c), 0);
        CHECK(has(&c, FORM_HEX_LOWER, "3132333435"));
        CHECK_EQ_INT(count(&c, FORM_HEX_UPPER), 0);
        collected_done(&c);
}

TEST(percent) {
        struct collected c;
        CHECK_EQ_INT(forms_of("a b/c", 5, 1, &c), 0);
        CHECK(has(&c, FORM_PERCENT_UPPER, "a%20b%2Fc"));
        CHECK(has(&c, FORM_PERCENT_LOWER, "a%20b%2fc"));
        CHECK(has(&c, FORM_PERCENT_PLUS, "a+b%2Fc"));
        CHECK(has(&c, FORM_PERCENT_PLUS, "a+b%2fc"));
        CHECK(has(&c, FORM_PERCENT_UPPER, "a%20b/c"));   /* Python quote(), '/' safe */
        collected_done(&c);

        CHECK_EQ_INT(forms_of(FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1, &c), 0);
        CHECK(has(&c, FORM_PERCENT_UPPER, "p%40ss%20w0rd%27%22%3C%26%3E"));
        CHECK(has(&c, FORM_PERCENT_LOWER, "p%40ss%20w0rd%27%22%3c%26%3e"));
        CHECK(has(&c, FORM_PERCENT_PLUS, "p%40ss+w0rd%27%22%3C%26%3E"));
        CHECK(has(&c, FORM_PERCENT_UPPER, "p%40ss%20w0rd'%22%3C%26%3E"));   /* encodeURIComponent */
        collected_done(&c);

        /* unreserved bytes stay; '~' too, except in WHATWG form encoding; '*' the other way */
        const char *v = "fake~key*1";
        CHECK_EQ_INT(forms_of(v, strlen(v), 1, &c), 0);
        CHECK(has(&c, FORM_PERCENT_UPPER, "fake~key%2A1"));
        CHECK(has(&c, FORM_PERCENT_LOWER, "fake~key%2a1"));
        CHECK(has(&c, FORM_PERCENT_UPPER, "fake~key*1") == false);   /* that is the raw form */
        CHECK(has(&c, FORM_PERCENT_PLUS, "fake%7Ekey*1"));
        collected_done(&c);

        CHECK_EQ_INT(forms_of(fake_binary, sizeof(fake_binary), 1, &c), 0);
        CHECK(has(&c, FORM_PERCENT_UPPER, "fake%00%FFx%0A%80%01"));
        CHECK(has(&c, FORM_PERCENT_LOWER, "fake%00%ffx%0a%80%01"));
        collected_done(&c);
}

TEST(json) {
        struct collected c;
        CHECK_EQ_INT(forms_of(FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1, &c), 0);
        CHECK(has(&c, FORM_JSON, "p@ss w0rd'\\\"<&>"));
        CHECK(has(&c, FORM_JSON, "p@ss w0rd'\\\"\\u003c\\u0026\\u003e"));   /* Go */
        collected_done(&c);

        const char *v = "fa\\ke/\n\r\t\b\f\x01\x1f\x7f\"";
        CHECK_EQ_INT(forms_of(v, strlen(v), 1, &c), 0);
        CHECK(has(&c, FORM_JSON, "fa\\\\ke/\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\\\""));
        CHECK(has(&c, FORM_JSON, "fa\\\\ke\\/\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\\\""));  /* PHP */
        CHECK(has(&c, FORM_JSON, "fa\\\\ke/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\\\""));  /* JS, Go */
        collected_done(&c);

        /* bytes >= 0x80 as they are; Python's default ensure_ascii gives \u escapes and
         * surrogate pairs, and cannot encode invalid UTF-8 at all */
        const char *u = "fak\xc3\xa9-\xf0\x9f\x98\x80";
        CHECK_EQ_INT(forms_of(u, strlen(u), 1, &c), 0);
        CHECK_EQ_INT(count(&c, FORM_JSON), 1);
        CHECK(has(&c, FORM_JSON, "fak\\u00e9-\\ud83d\\ude00"));
        collected_done(&c);

        /* Go also escapes the JavaScript line terminators U+2028 and U+2029 (and nothing
         * else that is not ASCII); PHP escapes all of it and '/' */
        const char *js = "fak\xc3\xa9\xe2\x80\xa8\xe2\x80\xa9/";
        CHECK_EQ_INT(forms_of(js, strlen(js), 1, &c), 0);
        CHECK(has(&c, FORM_JSON, "fak\xc3\xa9\\u2028\\u2029/"));
        CHECK(has(&c, FORM_JSON, "fak\\u00e9\\u2028\\u2029/"));
        CHECK(has(&c, FORM_JSON, "fak\\u00e9\\u2028\\u2029\\/"));
        collected_done(&c);

        CHECK_EQ_INT(forms_of(fake_binary, sizeof(fake_binary), 1, &c), 0);
        static const char json_binary[] = "fake\\u0000\xffx\\n\x80\\u0001";
        CHECK(has_bytes(&c, FORM_JSON, json_binary, sizeof(json_binary) - 1));
        CHECK_EQ_INT(count(&c, FORM_JSON), 1);
        collected_done(&c);
}

TEST(shell_expected) {
        struct collected c;
        CHECK_EQ_INT(forms_of(FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1, &c), 0);
        CHECK(has(&c, FORM_SHELL, "p@ss w0rd'\\''\"<&>"));       /* set -x, ${v@Q} */
        CHECK(has(&c, FORM_SHELL, "p@ss w0rd'\"'\"'\"<&>"));     /* shlex.quote */
        CHECK(has(&c, FORM_SHELL, "p@ss\\ w0rd\\'\\\"\\<\\&\\>"));  /* printf %q */
        CHECK_EQ_INT(count(&c, FORM_SHELL), 3);
        collected_done(&c);

        const char *v = "~fake#x=~y,z:~w!*";
        CHECK_EQ_INT(forms_of(v, strlen(v), 1, &c), 0);
        CHECK(has(&c, FORM_SHELL, "\\~fake#x=\\~y\\,z:\\~w\\!\\*"));
        collected_done(&c);

        const char *ctl = "a\nb\tc\x01" "d\x7f" "e\x1b" "f\\g'h\x80i\xc3\xa9j k\"l";
        CHECK_EQ_INT(forms_of(ctl, strlen(ctl), 1, &c), 0);
        CHECK(has(&c, FORM_SHELL, "a\\nb\\tc\\001d\\177e\\Ef\\\\g\\'h\\200i\xc3\xa9j k\"l"));
        CHECK(has(&c, FORM_SHELL, "a\\nb\\tc\\001d\\177e\\Ef\\\\g\\'h\\200i\\303\\251j k\"l"));
        collected_done(&c);

        /* U+2029 is not printable for bash: $'...' in every locale, so one form */
        const char *sep = "fake\xe2\x80\xa9 x";
        CHECK_EQ_INT(forms_of(sep, strlen(sep), 1, &c), 0);
        CHECK(has(&c, FORM_SHELL, "fake\\342\\200\\251 x"));
        CHECK_EQ_INT(count(&c, FORM_SHELL), 1);
        collected_done(&c);

        /* bash cannot hold a NUL: no %q form; no quote: no single-quote form */
        CHECK_EQ_INT(forms_of(fake_binary, sizeof(fake_binary), 1, &c), 0);
        CHECK_EQ_INT(count(&c, FORM_SHELL), 0);
        collected_done(&c);
}

/* Runs argv with value in the environment as FORMS_TEST_VALUE (never printed here) in locale
 * and returns what it wrote to stdout and stderr, without one trailing newline; NULL if the
 * program is not available or failed. */
static char *shell_output(const char *const argv[], const char *value, const char *locale) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return NULL;
        pid_t pid = fork();
        if (pid < 0)
                return NULL;
        if (pid == 0) {
                dup2(p[1], 1);
                dup2(p[1], 2);
                setenv("FORMS_TEST_VALUE", value, 1);
                setenv("LC_ALL", locale, 1);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        close(p[1]);
        char buf[1024];
        size_t n = 0;
        ssize_t k;
        while (n < sizeof(buf) - 1 && (k = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t) k;
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return NULL;
        if (n > 0 && buf[n - 1] == '\n')
                n--;
        buf[n] = 0;
        return strdup(buf);
}

/* bash's printf %q of value in locale, without the $'...' wrapper. */
static char *bash_printf_q(const char *value, const char *locale) {
        static const char *const argv[] = { "bash", "-c", "printf %q \"$FORMS_TEST_VALUE\"", NULL };
        char *q = shell_output(argv, value, locale);
        size_t n = q ? strlen(q) : 0;
        if (n >= 3 && q[0] == '$' && q[1] == '\'' && q[n - 1] == '\'') {
                q[n - 1] = 0;
                memmove(q, q + 2, n - 2);
        }
        return q;
}

TEST(shell_matches_bash) {
        static const char *const values[] = {
                FAKE_SPECIAL,
                "~fake#x=~y,z:~w!*?[]{}()^$`|;<>\\ %+@-_./",
                "#fake-a:b=c~d",
                "a\nb\tc\x01" "d\x7f" "e\x1b" "f\\g'h\x80i\xc3\xa9j k\"l",
                "\a\b\f\v\r#~",
                "fak\xc3\xa9 \xe2\x80\x8b x",          /* printable in UTF-8 locales */
                "fake\xef\xbf\xbf\xe2\x80\xa8\xc2\x85",  /* not printable */
                "fake\xff\xfe",
                "fake\xe2\x80\xa9 x",
        };
        static const char *const locales[] = { "C", "C.UTF-8" };
        bool ran = false;

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                struct collected c;
                CHECK_EQ_INT(forms_of(values[i], strlen(values[i]), 1, &c), 0);
                for (size_t l = 0; l < ELEMENTSOF(locales); l++) {
                        _cleanup_free_ char *q = bash_printf_q(values[i], locales[l]);
                        if (!q)
                                continue;
                        ran = true;
                        /* an unescaped printout is the raw form, anything else a shell form */
                        bool found = has(&c, FORM_SHELL, q) || streq(q, values[i]);
                        if (!found)
                                printf("# value %zu, locale %s: bash's %%q not emitted\n", i, locales[l]);
                        CHECK(found);
                }
                collected_done(&c);
        }
        if (!ran)
                printf("# bash not found: cross-check skipped\n");
}

/* Any emitted form, whatever its name, is exactly s (a tool's output may equal a form that
 * deduplication filed under an earlier name). */
static bool has_any(const struct collected *c, const char *s) {
        for (size_t i = 0; i < c->n; i++)
                if (c->items[i].len == strlen(s) && memcmp(c->items[i].bytes, s, c->items[i].len) == 0)
                        return true;
        return false;
}

/* Some raw or shell form occurs in text. */
static bool shell_form_in(const struct collected *c, const char *text) {
        for (size_t i = 0; i < c->n; i++)
                if ((c->items[i].form == FORM_RAW || c->items[i].form == FORM_SHELL) &&
                    memmem_found(text, strlen(text), c->items[i].bytes, c->items[i].len))
                        return true;
        return false;
}

static const char *const quoting_values[] = {
        FAKE_SPECIAL,
        "'lead and trail'",
        "fake''double'''triple",
        "it's\\a \"path\" $HOME `x`",
        "tab\there'and\nnewline",
        "esc\x1b[1mbold'\x7f" "del",
        "caf\xc3\xa9 'na\xc3\xafve' \\x",
        "fake\xe2\x80\xa9'sep",
};

TEST(literals) {
        struct collected c;
        /* both quotes: repr() escapes ', C literals both, '' and "" doubling */
        CHECK_EQ_INT(forms_of(FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1, &c), 0);
        CHECK(has(&c, FORM_PYTHON, "p@ss w0rd\\'\"<&>"));
        CHECK(has(&c, FORM_ESCAPED, "p@ss w0rd\\'\\\"<&>"));
        CHECK(has(&c, FORM_JSON, "p@ss w0rd'\\\"<&>"));       /* Go, Java, YAML: the JSON bytes */
        CHECK(has(&c, FORM_QUOTE_DOUBLED, "p@ss w0rd''\"<&>"));
        CHECK(has(&c, FORM_QUOTE_DOUBLED, "p@ss w0rd'\"\"<&>"));
        collected_done(&c);

        /* control characters: each language's own escape */
        const char *ctl = "k\x1b[1m\tq'z";
        CHECK_EQ_INT(forms_of(ctl, strlen(ctl), 1, &c), 0);
        CHECK(has(&c, FORM_PYTHON, "k\\x1b[1m\\tq'z"));      /* repr: "..." since ' and no " */
        CHECK(has(&c, FORM_ESCAPED, "k\\x1B[1m\\tq'z"));     /* Node util.inspect */
        CHECK(has(&c, FORM_ESCAPED, "k\\u{1b}[1m\\tq'z"));   /* Rust {:?} */
        CHECK(has(&c, FORM_ESCAPED, "k\\u001B[1m\\tq'z"));   /* Java escapeJava */
        CHECK(has(&c, FORM_ESCAPED, "k\\x1b[1m\\tq\\'z"));   /* C, both quotes */
        CHECK(has(&c, FORM_ESCAPED, "k\x1b[1m\tq\\'z"));      /* PHP var_export */
        CHECK(has(&c, FORM_YAML, "k\\e[1m\\tq'z"));
        collected_done(&c);

        /* non-ASCII: a str keeps it, bytes and PyYAML escape it; not UTF-8: no str repr */
        const char *cafe = "caf\xc3\xa9'\\";
        CHECK_EQ_INT(forms_of(cafe, strlen(cafe), 1, &c), 0);
        CHECK(has(&c, FORM_PYTHON, "caf\\xc3\\xa9'\\\\"));
        CHECK(has(&c, FORM_ESCAPED, "caf\\u00E9'\\\\"));
        CHECK(has(&c, FORM_YAML, "caf\\xE9'\\\\"));
        collected_done(&c);
        CHECK_EQ_INT(forms_of(fake_binary, sizeof(fake_binary), 1, &c), 0);
        CHECK(has(&c, FORM_PYTHON, "fake\\x00\\xffx\\n\\x80\\x01"));   /* repr(bytes) only */
        CHECK_EQ_INT(count(&c, FORM_PYTHON), 1);
        collected_done(&c);

        /* nothing to escape: nothing new */
        CHECK_EQ_INT(forms_of(FAKE_SIMPLE, strlen(FAKE_SIMPLE), 1, &c), 0);
        CHECK_EQ_INT(count(&c, FORM_PYTHON) + count(&c, FORM_ESCAPED) + count(&c, FORM_YAML) +
                     count(&c, FORM_QUOTE_DOUBLED) + count(&c, FORM_UNESCAPED), 0);
        collected_done(&c);
}

TEST(unescaped) {
        struct collected c;
        const char *v = "abc\\def\\\\g\\tq";
        CHECK_EQ_INT(forms_of(v, strlen(v), 1, &c), 0);
        CHECK(has(&c, FORM_UNESCAPED, "abcdef\\gtq"));         /* an unquoted shell word */
        CHECK(has(&c, FORM_UNESCAPED, "abc\\def\\g\tq"));      /* dash's echo, printf %b */
        CHECK_EQ_INT(count(&c, FORM_UNESCAPED), 2);
        collected_done(&c);
}

TEST(shell_dialects) {
        struct collected c;
        const char *v = "'ab''cd'";
        CHECK_EQ_INT(forms_of(v, strlen(v), 1, &c), 0);
        CHECK(has(&c, FORM_SHELL, "\\''ab'\\'''\\''cd'\\'"));          /* bash */
        CHECK(has(&c, FORM_SHELL, "\"'\"'ab'\"'\"''\"'\"'cd'\"'\""));  /* shlex.quote */
        CHECK(has(&c, FORM_SHELL, "\"'\"'ab'\"''\"'cd'\"'\""));        /* busybox */
        CHECK(has(&c, FORM_SHELL, "\\''ab'\\'\\''cd'\\'"));            /* zsh */
        collected_done(&c);

        const char *z = "it's\tb\\s\"q\r\x01";
        CHECK_EQ_INT(forms_of(z, strlen(z), 1, &c), 0);
        CHECK(has(&c, FORM_SHELL, "it\\'s\\tb\\\\s\"q\\C-M\\C-A"));   /* zsh's $'...' */
        collected_done(&c);
}

/* Every shell's set -x prints one of the forms: bash, zsh, busybox ash, dash. */
TEST(shell_dialects_match) {
        static const char script[] = "PS4='+ '; set -x; : \"$FORMS_TEST_VALUE\"";
        static const char *const shells[][4] = {
                { "bash", "-c", script, NULL },
                { "zsh", "-fc", script, NULL },
                { "busybox", "sh", "-c", script },
                { "dash", "-c", script, NULL },
        };
        size_t ran = 0;
        for (size_t i = 0; i < ELEMENTSOF(quoting_values); i++) {
                struct collected c;
                CHECK_EQ_INT(forms_of(quoting_values[i], strlen(quoting_values[i]), 1, &c), 0);
                for (size_t k = 0; k < ELEMENTSOF(shells); k++) {
                        const char *argv[5] = { shells[k][0], shells[k][1], shells[k][2], shells[k][3], NULL };
                        _cleanup_free_ char *out = shell_output(argv, quoting_values[i], "C.UTF-8");
                        if (!out || strncmp(out, "+ : ", 4) != 0)
                                continue;
                        ran++;
                        bool found = shell_form_in(&c, out + 4);
                        if (!found)
                                printf("# value %zu: %s's set -x not matched\n", i, shells[k][0]);
                        CHECK(found);
                }
                collected_done(&c);
        }
        printf("# %zu shell traces compared\n", ran);
        CHECK(ran >= ELEMENTSOF(quoting_values));   /* bash at least: it is a build dependency */
}

/* Python's repr() of the str and the bytes, PyYAML's double-quoted scalar and Node's
 * util.inspect are each one of the forms, quotes stripped. */
TEST(literals_match_tools) {
        static const struct {
                const char *argv[4];
                size_t open;    /* bytes before the literal's text: the quote, b' */
        } tools[] = {
                { { "python3", "-c", "import os; print(repr(os.environ['FORMS_TEST_VALUE']))" }, 1 },
                { { "python3", "-c", "import os; print(repr(os.environb[b'FORMS_TEST_VALUE']))" }, 2 },
                { { "python3", "-c", "import os, yaml; print(yaml.dump(os.environ['FORMS_TEST_VALUE'], "
                                     "default_style='\"', width=100000), end='')" }, 1 },
                { { "node", "-e", "console.log(require('util').inspect(process.env.FORMS_TEST_VALUE))" }, 1 },
        };
        size_t ran = 0;
        for (size_t i = 0; i < ELEMENTSOF(quoting_values); i++) {
                struct collected c;
                CHECK_EQ_INT(forms_of(quoting_values[i], strlen(quoting_values[i]), 1, &c), 0);
                for (size_t k = 0; k < ELEMENTSOF(tools); k++) {
                        const char *argv[4] = { tools[k].argv[0], tools[k].argv[1], tools[k].argv[2], NULL };
                        if (streq(argv[0], "python3"))
                                argv[0] = "/usr/bin/python3";   /* the one with PyYAML */
                        _cleanup_free_ char *out = shell_output(argv, quoting_values[i], "C.UTF-8");
                        size_t n = out ? strlen(out) : 0;
                        if (n < tools[k].open + 1)
                                continue;
                        ran++;
                        out[n - 1] = 0;
                        bool found = has_any(&c, out + tools[k].open) || streq(out + tools[k].open, quoting_values[i]);
                        if (!found)
                                printf("# value %zu: tool %zu's literal not emitted\n", i, k);
                        CHECK(found);
                }
                collected_done(&c);
        }
        printf("# %zu literals compared\n", ran);
        CHECK(ran >= 2 * ELEMENTSOF(quoting_values));
}

TEST(nested) {
        struct collected c;
        /* .dockerconfigjson: base64 of JSON holding base64("ci:" + value) */
        const char *v = "fake-registry-pw";
        CHECK_EQ_INT(forms_of(v, strlen(v), 8, &c), 0);
        _cleanup_free_ char *inner_text = strdup_printf("ci:%s", v);
        _cleanup_free_ char *inner = sodium_b64((const unsigned char *) inner_text, strlen(inner_text), sodium_base64_VARIANT_ORIGINAL);
        _cleanup_free_ char *doc = strdup_printf("{\"auths\":{\"r.example\":{\"auth\":\"%s\"}}}", inner);
        _cleanup_free_ char *outer = sodium_b64((const unsigned char *) doc, strlen(doc), sodium_base64_VARIANT_ORIGINAL);
        bool found = false;
        for (size_t i = 0; i < c.n; i++)
                if (c.items[i].form == FORM_BASE64_BASE64 &&
                    memmem_found(outer, strlen(outer), c.items[i].bytes, c.items[i].len))
                        found = true;
        CHECK(found);
        CHECK_EQ_INT(count(&c, FORM_BASE64_JSON), 0);     /* nothing to JSON-escape */
        CHECK_EQ_INT(count(&c, FORM_JSON_JSON), 0);
        collected_done(&c);

        /* a JSON string escaped twice; base64 of the JSON escape */
        const char *q = "fake\"pw\\x";
        CHECK_EQ_INT(forms_of(q, strlen(q), 8, &c), 0);
        CHECK(has(&c, FORM_JSON_JSON, "fake\\\\\\\"pw\\\\\\\\x"));
        _cleanup_free_ char *bj = sodium_b64((const unsigned char *) "fake\\\"pw\\\\x", 12, sodium_base64_VARIANT_ORIGINAL);
        found = false;
        for (size_t i = 0; i < c.n; i++)
                if (c.items[i].form == FORM_BASE64_JSON && c.items[i].len >= 12 &&
                    memmem_found(bj, strlen(bj), c.items[i].bytes, c.items[i].len))
                        found = true;
        CHECK(found);
        collected_done(&c);

        /* percent-encoding of base64: "fake?" is ZmFrZT8= */
        CHECK_EQ_INT(forms_of("fake?>", 6, 8, &c), 0);
        CHECK(has(&c, FORM_PERCENT_BASE64, "ZmFrZT8%2B"));
        collected_done(&c);
        /* only the core, which a value inside a longer text leaves: no padding to encode */
        CHECK_EQ_INT(forms_of("fake?", 5, 8, &c), 0);
        CHECK(!has(&c, FORM_PERCENT_BASE64, "ZmFrZT8%3D"));
        collected_done(&c);
}

TEST(xml) {
        struct collected c;
        CHECK_EQ_INT(forms_of(FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1, &c), 0);
        CHECK(has(&c, FORM_XML, "p@ss w0rd&#39;&quot;&lt;&amp;&gt;"));
        CHECK(has(&c, FORM_XML, "p@ss w0rd&apos;&quot;&lt;&amp;&gt;"));
        CHECK(has(&c, FORM_XML, "p@ss w0rd&#x27;&quot;&lt;&amp;&gt;"));
        CHECK(has(&c, FORM_XML, "p@ss w0rd&#39;&#34;&lt;&amp;&gt;"));
        CHECK(has(&c, FORM_XML, "p@ss w0rd'\"&lt;&amp;&gt;"));
        CHECK_EQ_INT(count(&c, FORM_XML), 5);
        collected_done(&c);

        /* no quote characters: all the variants are one string */
        CHECK_EQ_INT(forms_of("fake&key", 8, 1, &c), 0);
        CHECK(has(&c, FORM_XML, "fake&amp;key"));
        CHECK_EQ_INT(count(&c, FORM_XML), 1);
        collected_done(&c);
}

TEST(dedup_plain_value) {
        struct collected c;
        const char *v = "correctHorseBattery9";
        CHECK_EQ_INT(forms_of(v, strlen(v), 1, &c), 0);
        CHECK(well_formed(&c, 1));
        CHECK_EQ_INT(count(&c, FORM_RAW), 1);
        CHECK_EQ_INT(count(&c, FORM_TRIMMED), 0);
        CHECK_EQ_INT(count(&c, FORM_LINE), 0);
        CHECK_EQ_INT(count(&c, FORM_WHITESPACE), 0);
        CHECK_EQ_INT(count(&c, FORM_PERCENT_UPPER), 0);
        CHECK_EQ_INT(count(&c, FORM_PERCENT_LOWER), 0);
        CHECK_EQ_INT(count(&c, FORM_PERCENT_PLUS), 0);
        CHECK_EQ_INT(count(&c, FORM_JSON), 0);
        CHECK_EQ_INT(count(&c, FORM_SHELL), 0);
        CHECK_EQ_INT(count(&c, FORM_XML), 0);
        CHECK_EQ_INT(count(&c, FORM_HEX_LOWER), 1);
        CHECK_EQ_INT(count(&c, FORM_HEX_UPPER), 1);
        CHECK(count(&c, FORM_BASE64) >= 3);
        collected_done(&c);

        CHECK_EQ_INT(forms_of(FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1, &c), 0);
        CHECK(well_formed(&c, 1));
        collected_done(&c);
        CHECK_EQ_INT(forms_of(fake_binary, sizeof(fake_binary), 1, &c), 0);
        CHECK(well_formed(&c, 1));
        CHECK(has_bytes(&c, FORM_RAW, fake_binary, sizeof(fake_binary)));
        collected_done(&c);
}

TEST(min_len) {
        struct collected c;
        /* "fake": raw is 4 bytes, hex 8, base64 "ZmFrZQ==" 8 */
        CHECK_EQ_INT(forms_of("fake", 4, 5, &c), 0);
        CHECK(well_formed(&c, 5));
        CHECK_EQ_INT(count(&c, FORM_RAW), 0);
        CHECK(has(&c, FORM_HEX_LOWER, "66616b65"));
        CHECK(has(&c, FORM_BASE64, "ZmFrZQ=="));
        CHECK(has(&c, FORM_BASE64, "ZmFrZQ"));
        CHECK(!has(&c, FORM_BASE64, "ZmFr"));   /* the 4-character core: too short */
        collected_done(&c);

        CHECK_EQ_INT(forms_of("fake", 4, 9, &c), 0);
        CHECK_EQ_INT(c.n, 0);
        collected_done(&c);

        CHECK_EQ_INT(forms_of("", 0, 0, &c), 0);
        CHECK_EQ_INT(c.n, 0);
        collected_done(&c);
}

TEST(emit_error_stops) {
        struct collected c = { .stop_after = 3, .stop_with = -42 };
        CHECK_EQ_INT(redact_forms((const unsigned char *) FAKE_SPECIAL, strlen(FAKE_SPECIAL), 1,
                                  collect, &c), -42);
        CHECK_EQ_INT(c.calls, 3);
        CHECK_EQ_INT(c.n, 2);
        collected_done(&c);

        c = (struct collected) { .stop_after = 1, .stop_with = -ECANCELED };
        CHECK_EQ_INT(redact_forms((const unsigned char *) "fake", 4, 1, collect, &c), -ECANCELED);
        CHECK_EQ_INT(c.calls, 1);
        collected_done(&c);

        CHECK_EQ_INT(redact_forms((const unsigned char *) "fake", 4, 1, NULL, NULL), -EINVAL);
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        RUN(form_names);
        RUN(raw_and_trimmed);
        RUN(lines_and_whitespace);
        RUN(base64_alignments);
        RUN(hex);
        RUN(percent);
        RUN(json);
        RUN(shell_expected);
        RUN(shell_matches_bash);
        RUN(literals);
        RUN(unescaped);
        RUN(shell_dialects);
        RUN(shell_dialects_match);
        RUN(literals_match_tools);
        RUN(nested);
        RUN(xml);
        RUN(dedup_plain_value);
        RUN(min_len);
        RUN(emit_error_stops);
        return tap_finish();
}
