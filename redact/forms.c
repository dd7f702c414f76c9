/* The encoded forms of a secret value that the matcher looks for (DESIGN §5): raw, trimmed,
 * lines, whitespace-flexible, base64 at every alignment, hex, percent, JSON, shell, XML,
 * language string literals, quote doubling, escapes resolved, and encodings of encodings.
 * See docs/redaction-forms.md for what each form is and why. */
#include <sodium.h>

#include "redact.h"

static const char *const form_names[_FORM_MAX] = {
        [FORM_RAW] = "raw",
        [FORM_TRIMMED] = "trimmed",
        [FORM_LINE] = "line",
        [FORM_WHITESPACE] = "whitespace",
        [FORM_BASE64] = "base64",
        [FORM_BASE64URL] = "base64url",
        [FORM_HEX_LOWER] = "hex",
        [FORM_HEX_UPPER] = "HEX",
        [FORM_PERCENT_UPPER] = "percent",
        [FORM_PERCENT_LOWER] = "percent-lower",
        [FORM_PERCENT_PLUS] = "percent-plus",
        [FORM_JSON] = "json",
        [FORM_SHELL] = "shell",
        [FORM_XML] = "xml",
        [FORM_PYTHON] = "python",
        [FORM_ESCAPED] = "escaped",
        [FORM_YAML] = "yaml",
        [FORM_QUOTE_DOUBLED] = "quote-doubled",
        [FORM_UNESCAPED] = "unescaped",
        [FORM_BASE64_BASE64] = "base64(base64)",
        [FORM_BASE64_JSON] = "base64(json)",
        [FORM_PERCENT_BASE64] = "percent(base64)",
        [FORM_JSON_JSON] = "json(json)",
        [FORM_PARTIAL] = "partial",
};

const char *redact_form_name(enum redact_form f) {
        if ((unsigned) f >= _FORM_MAX || !form_names[f])
                return "unknown";
        return form_names[f];
}

/* ---- emitting with deduplication ----
 * Every emitted form is kept (in secure memory) until the end of the call, so a later form
 * with the same bytes is recognised and skipped: the first form wins. The flex flag is part
 * of the identity, because a flexible pattern matches more than the same literal bytes. */

struct seen_form {
        struct secret *bytes;
        bool flex;
};

struct forms_ctx {
        size_t min_len;
        redact_emit_fn emit;
        void *userdata;
        struct seen_form *seen;
        size_t n_seen, cap_seen;
};

static void forms_ctx_done(struct forms_ctx *c) {
        for (size_t i = 0; i < c->n_seen; i++)
                secret_free(c->seen[i].bytes);
        free(c->seen);
        c->seen = NULL;
        c->n_seen = c->cap_seen = 0;
}

static bool forms_ctx_has(const struct forms_ctx *c, const unsigned char *p, size_t n, bool flex) {
        for (size_t i = 0; i < c->n_seen; i++) {
                const struct secret *s = c->seen[i].bytes;
                if (c->seen[i].flex == flex && secret_len(s) == n && memcmp(secret_data(s), p, n) == 0)
                        return true;
        }
        return false;
}

/* Offers the first n bytes of *form; takes ownership of *form (it is kept for deduplication
 * or freed). Returns 0 or a negative errno / emit's negative return. */
static int offer_owned(struct forms_ctx *c, enum redact_form kind, struct secret **form, size_t n,
                       bool flex) {
        _cleanup_secret_ struct secret *s = steal_pointer(form);
        int r;

        secret_truncate(s, n);
        if (n == 0 || n < c->min_len || forms_ctx_has(c, secret_data(s), n, flex))
                return 0;

        if (c->n_seen == c->cap_seen) {
                size_t cap = c->cap_seen ? c->cap_seen * 2 : 32;
                struct seen_form *l = reallocarray(c->seen, cap, sizeof(*l));
                if (!l)
                        return -ENOMEM;
                c->seen = l;
                c->cap_seen = cap;
        }
        c->seen[c->n_seen++] = (struct seen_form) { .bytes = s, .flex = flex };
        const struct secret *kept = steal_pointer(&s);

        r = c->emit(c->userdata, kind, secret_data(kept), n, flex);
        return r < 0 ? r : 0;
}

static int offer(struct forms_ctx *c, enum redact_form kind, const unsigned char *p, size_t n,
                 bool flex) {
        struct secret *s = NULL;
        int r;

        if (n == 0 || n < c->min_len || forms_ctx_has(c, p, n, flex))
                return 0;
        r = secret_from_bytes(p, n, &s);
        if (r < 0)
                return r;
        return offer_owned(c, kind, &s, n, flex);
}

static int offer_whole(struct forms_ctx *c, enum redact_form kind, struct secret **form) {
        return offer_owned(c, kind, form, secret_len(*form), false);
}

/* ---- building blocks ---- */

static bool is_space(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool is_alnum(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

/* One secret-derived byte, by value: secret_push stores it without taking its address, so
 * no stack slot holds a copy to wipe. */
static int put_byte(struct secret *s, unsigned char c) {
        return secret_push(s, c);
}

static int put_str(struct secret *s, const char *text) {
        return secret_append(s, text, strlen(text));
}

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

/* prefix + two (or four, for \u escapes) hex digits of c */
static int put_escape_hex(struct secret *s, const char *prefix, unsigned c, unsigned digits,
                          bool upper) {
        const char *hex = upper ? hex_upper : hex_lower;
        char buf[16];
        size_t k = strlen(prefix);
        int r;

        memcpy(buf, prefix, k);
        for (unsigned i = digits; i > 0; i--)
                buf[k++] = hex[(c >> (4 * (i - 1))) & 0xf];
        r = secret_append(s, buf, k);
        sodium_memzero(buf, sizeof(buf));
        sodium_memzero(&c, sizeof(c));
        return r;
}

static int put_escape_octal(struct secret *s, unsigned char c) {
        char buf[4] = { '\\', (char) ('0' + (c >> 6)), (char) ('0' + ((c >> 3) & 7)),
                        (char) ('0' + (c & 7)) };
        int r = secret_append(s, buf, sizeof(buf));
        sodium_memzero(buf, sizeof(buf));
        sodium_memzero(&c, sizeof(c));
        return r;
}

/* Length of the well-formed UTF-8 sequence at p (1-4), its code point in *ret_cp; 0 if the
 * bytes are not one (overlong, surrogate, past U+10FFFF, truncated, stray continuation). */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *ret_cp) {
        uint32_t cp, min;
        size_t k;

        if (p[0] < 0x80) {
                *ret_cp = p[0];
                return 1;
        } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                k = 2, cp = p[0] & 0x1f, min = 0x80;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                k = 3, cp = p[0] & 0x0f, min = 0x800;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                k = 4, cp = p[0] & 0x07, min = 0x10000;
        } else
                return 0;
        if (n < k)
                return 0;
        for (size_t i = 1; i < k; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return k;
}

/* Whether glibc's UTF-8 locales call a non-ASCII code point printable (iswprint), which
 * decides how bash quotes it. Approximation without Unicode tables: C1 controls, the line and
 * paragraph separators and noncharacters are not; unassigned code points are taken as printable. */
static bool utf8_printable(uint32_t cp) {
        if (cp < 0xa0)
                return false;
        if (cp == 0x2028 || cp == 0x2029)
                return false;
        if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
                return false;
        return true;
}

/* ---- 1-4: raw, trimmed, lines, whitespace-flexible ---- */

static void trim_range(const unsigned char *p, size_t n, size_t *ret_start, size_t *ret_len) {
        size_t a = 0, b = n;
        while (a < b && is_space(p[a]))
                a++;
        while (b > a && is_space(p[b - 1]))
                b--;
        *ret_start = a;
        *ret_len = b - a;
}

static int emit_lines(struct forms_ctx *c, const unsigned char *v, size_t len) {
        if (!memchr(v, '\n', len))
                return 0;
        for (size_t start = 0; start <= len;) {
                const unsigned char *nl = memchr(v + start, '\n', len - start);
                size_t end = nl ? (size_t) (nl - v) : len, n = end - start, ts, tn;
                int r;

                if (n > 0 && v[start + n - 1] == '\r')
                        n--;
                r = offer(c, FORM_LINE, v + start, n, false);
                if (r < 0)
                        return r;
                trim_range(v + start, n, &ts, &tn);
                r = offer(c, FORM_LINE, v + start + ts, tn, false);
                if (r < 0)
                        return r;
                if (!nl)
                        break;
                start = end + 1;
        }
        return 0;
}

static int emit_whitespace(struct forms_ctx *c, const unsigned char *v, size_t len) {
        _cleanup_secret_ struct secret *s = NULL;
        size_t ts, tn;
        int r;

        trim_range(v, len, &ts, &tn);
        if (!memchr(v + ts, '\n', tn))
                return 0;
        r = secret_new(tn, &s);
        if (r < 0)
                return r;
        for (size_t i = ts; i < ts + tn; i++) {
                if (!is_space(v[i]))
                        r = put_byte(s, v[i]);
                else if (!is_space(v[i - 1]))   /* i > ts: the trimmed range starts non-space */
                        r = put_byte(s, ' ');
                if (r < 0)
                        return r;
        }
        return offer_owned(c, FORM_WHITESPACE, &s, secret_len(s), true);
}

/* ---- 5-6: base64 ---- */

static const char b64_standard[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_urlsafe[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Padded encoding of p, n; ret gets 4 * ceil(n / 3) characters. */
static int base64_encode(const unsigned char *p, size_t n, const char *alphabet,
                         struct secret **ret) {
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        r = secret_new((n + 2) / 3 * 4 + 1, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i += 3) {
                uint32_t group = (uint32_t) p[i] << 16;
                if (i + 1 < n)
                        group |= (uint32_t) p[i + 1] << 8;
                if (i + 2 < n)
                        group |= p[i + 2];
                r = put_byte(s, (unsigned char) alphabet[(group >> 18) & 63]);
                if (r >= 0)
                        r = put_byte(s, (unsigned char) alphabet[(group >> 12) & 63]);
                if (r >= 0)
                        r = put_byte(s, i + 1 < n ? (unsigned char) alphabet[(group >> 6) & 63] : '=');
                if (r >= 0)
                        r = put_byte(s, i + 2 < n ? (unsigned char) alphabet[group & 63] : '=');
                sodium_memzero(&group, sizeof(group));
        }
        if (r < 0)
                return r;
        *ret = steal_pointer(&s);
        return 0;
}

/* The value preceded by `align` unknown bytes inside a longer stream. Encoding zero bytes in
 * their place, the first ceil(8 * align / 6) characters depend on the unknown bytes and are
 * dropped; characters whose 6 bits all come from the value are the core; if the value ends
 * mid-character, one more character mixes its last bits with whatever follows. */
struct b64_slices {
        struct secret *enc;     /* the whole encoding, unknown bytes included */
        size_t skip, core_end, partial_end, padded_end;
};

static void b64_slices_done(struct b64_slices *b) {
        secret_free(b->enc);
        b->enc = NULL;
}

static int base64_slices(const unsigned char *v, size_t len, size_t align, const char *alphabet,
                         struct b64_slices *ret) {
        static const size_t skip_for_align[3] = { 0, 2, 3 };
        static const unsigned char zeros[2] = { 0, 0 };
        _cleanup_secret_ struct secret *shifted = NULL;
        int r;

        r = secret_new(align + len, &shifted);
        if (r >= 0)
                r = secret_append(shifted, zeros, align);
        if (r >= 0)
                r = secret_append(shifted, v, len);
        if (r >= 0)
                r = base64_encode(secret_data(shifted), secret_len(shifted), alphabet, &ret->enc);
        if (r < 0)
                return r;
        size_t bits = secret_len(shifted) * 8;
        ret->skip = skip_for_align[align];
        ret->core_end = bits / 6;
        ret->partial_end = (bits + 5) / 6;
        ret->padded_end = secret_len(ret->enc);
        return 0;
}

/* The core of v's encoding at one alignment, as a secret of its own (empty if none). */
static int base64_core(const unsigned char *v, size_t len, size_t align, const char *alphabet,
                       struct secret **ret) {
        _cleanup_(b64_slices_done) struct b64_slices b = {};
        int r = base64_slices(v, len, align, alphabet, &b);
        if (r < 0)
                return r;
        size_t n = b.core_end > b.skip ? b.core_end - b.skip : 0;
        return secret_from_bytes(secret_data(b.enc) + b.skip, n, ret);
}

static int emit_base64_aligned(struct forms_ctx *c, const unsigned char *v, size_t len, size_t align,
                               const char *alphabet, enum redact_form kind) {
        _cleanup_(b64_slices_done) struct b64_slices b = {};
        int r = base64_slices(v, len, align, alphabet, &b);
        if (r < 0)
                return r;
        if (b.padded_end <= b.skip)
                return 0;

        const unsigned char *e = secret_data(b.enc);
        /* core: the value followed by more data */
        if (b.core_end > b.skip) {
                r = offer(c, kind, e + b.skip, b.core_end - b.skip, false);
                if (r < 0)
                        return r;
        }
        /* the stream ends with the value: last partial character, then padding */
        r = offer(c, kind, e + b.skip, b.partial_end - b.skip, false);
        if (r < 0)
                return r;
        return offer(c, kind, e + b.skip, b.padded_end - b.skip, false);
}

static int emit_base64(struct forms_ctx *c, const unsigned char *v, size_t len) {
        static const struct {
                const char *alphabet;
                enum redact_form kind;
        } alphabets[] = {
                { b64_standard, FORM_BASE64 },
                { b64_urlsafe, FORM_BASE64URL },
        };
        for (size_t k = 0; k < ELEMENTSOF(alphabets); k++)
                for (size_t align = 0; align < 3; align++) {
                        int r = emit_base64_aligned(c, v, len, align, alphabets[k].alphabet,
                                                    alphabets[k].kind);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* ---- 7-8: hex and percent ---- */

static int emit_hex(struct forms_ctx *c, const unsigned char *v, size_t len, bool upper) {
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        r = secret_new(len * 2, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len && r >= 0; i++)
                r = put_escape_hex(s, "", v[i], 2, upper);
        if (r < 0)
                return r;
        return offer_whole(c, upper ? FORM_HEX_UPPER : FORM_HEX_LOWER, &s);
}

/* Percent-encoding that leaves letters, digits and the bytes in `safe` as they are. */
static int emit_percent(struct forms_ctx *c, enum redact_form kind, const unsigned char *v,
                        size_t len, const char *safe, bool upper, bool plus) {
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        r = secret_new(len * 3, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len && r >= 0; i++) {
                if (is_alnum(v[i]) || (v[i] != 0 && strchr(safe, v[i])))
                        r = put_byte(s, v[i]);
                else if (plus && v[i] == ' ')
                        r = put_byte(s, '+');
                else
                        r = put_escape_hex(s, "%", v[i], 2, upper);
        }
        if (r < 0)
                return r;
        return offer_whole(c, kind, &s);
}

static int emit_percents(struct forms_ctx *c, const unsigned char *v, size_t len) {
        static const char rfc3986[] = "-._~";
        static const struct {
                enum redact_form kind;
                const char *safe;
                bool upper, plus;
        } variants[] = {
                { FORM_PERCENT_UPPER, rfc3986, true, false },
                { FORM_PERCENT_LOWER, rfc3986, false, false },
                { FORM_PERCENT_PLUS, rfc3986, true, true },    /* Python quote_plus */
                { FORM_PERCENT_PLUS, rfc3986, false, true },
                { FORM_PERCENT_UPPER, "-._~!'()*", true, false },  /* JS encodeURIComponent */
                { FORM_PERCENT_UPPER, "-._~/", true, false },      /* Python quote(), safe='/' */
                { FORM_PERCENT_PLUS, "*-._", true, true },         /* WHATWG form-urlencoded */
        };
        for (size_t k = 0; k < ELEMENTSOF(variants); k++) {
                int r = emit_percent(c, variants[k].kind, v, len, variants[k].safe,
                                     variants[k].upper, variants[k].plus);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- 9: JSON ---- */

enum json_flags {
        JSON_ESCAPE_SLASH = 1 << 0,   /* PHP json_encode: \/ */
        JSON_RAW_DEL = 1 << 1,        /* JS, Go, Python ensure_ascii=False leave 0x7f as is */
        JSON_HTML_SAFE = 1 << 2,      /* Go encoding/json: < > & U+2028 U+2029 as \u00XX */
        JSON_ASCII_ONLY = 1 << 3,     /* Python json.dumps default: non-ASCII as \uXXXX */
};

static int json_put_unicode(struct secret *s, uint32_t cp) {
        if (cp < 0x10000)
                return put_escape_hex(s, "\\u", cp, 4, false);
        /* beyond the BMP: a UTF-16 surrogate pair */
        uint32_t x = cp - 0x10000;
        int r = put_escape_hex(s, "\\u", 0xd800 | (x >> 10), 4, false);
        if (r >= 0)
                r = put_escape_hex(s, "\\u", 0xdc00 | (x & 0x3ff), 4, false);
        sodium_memzero(&x, sizeof(x));
        sodium_memzero(&cp, sizeof(cp));
        return r;
}

/* The JSON string escape of v under flags into *ret: 1, or 0 when the value cannot be one
 * (a Python str must be UTF-8), or a negative errno. */
static int json_encode(const unsigned char *v, size_t len, unsigned flags, struct secret **ret) {
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        r = secret_new(len * 2, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len && r >= 0;) {
                unsigned char b = v[i];
                uint32_t cp = 0;
                size_t k;

                if (b >= 0x80) {
                        k = utf8_decode(v + i, len - i, &cp);
                        if (k == 0) {
                                /* Python cannot have decoded this value to str at all */
                                if (flags & JSON_ASCII_ONLY)
                                        return 0;
                                r = put_byte(s, b);
                                i++;
                        } else if ((flags & JSON_ASCII_ONLY) ||
                                   ((flags & JSON_HTML_SAFE) && (cp == 0x2028 || cp == 0x2029))) {
                                r = json_put_unicode(s, cp);
                                i += k;
                        } else {
                                r = secret_append(s, v + i, k);
                                i += k;
                        }
                        sodium_memzero(&cp, sizeof(cp));
                        continue;
                }
                switch (b) {
                case '"':  r = put_str(s, "\\\""); break;
                case '\\': r = put_str(s, "\\\\"); break;
                case '\n': r = put_str(s, "\\n"); break;
                case '\r': r = put_str(s, "\\r"); break;
                case '\t': r = put_str(s, "\\t"); break;
                case '\b': r = put_str(s, "\\b"); break;
                case '\f': r = put_str(s, "\\f"); break;
                case '/':
                        r = put_str(s, (flags & JSON_ESCAPE_SLASH) ? "\\/" : "/");
                        break;
                case '<': case '>': case '&':
                        if (flags & JSON_HTML_SAFE)
                                r = put_escape_hex(s, "\\u", b, 4, false);
                        else
                                r = put_byte(s, b);
                        break;
                default:
                        if (b < 0x20 || (b == 0x7f && !(flags & JSON_RAW_DEL)))
                                r = put_escape_hex(s, "\\u", b, 4, false);
                        else
                                r = put_byte(s, b);
                        break;
                }
                sodium_memzero(&b, sizeof(b));
                i++;
        }
        if (r < 0)
                return r;
        *ret = steal_pointer(&s);
        return 1;
}

static int emit_json(struct forms_ctx *c, const unsigned char *v, size_t len, unsigned flags) {
        _cleanup_secret_ struct secret *s = NULL;
        int r = json_encode(v, len, flags, &s);
        if (r <= 0)
                return r;
        return offer_whole(c, FORM_JSON, &s);
}

static int emit_jsons(struct forms_ctx *c, const unsigned char *v, size_t len) {
        static const unsigned variants[] = {
                0,
                JSON_ESCAPE_SLASH,
                JSON_RAW_DEL,
                JSON_RAW_DEL | JSON_HTML_SAFE,
                JSON_ASCII_ONLY,
                JSON_ASCII_ONLY | JSON_ESCAPE_SLASH,   /* PHP json_encode default */
        };
        for (size_t k = 0; k < ELEMENTSOF(variants); k++) {
                int r = emit_json(c, v, len, variants[k]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- 10: shell ---- */

/* The value inside single quotes as a shell's set -x (or a quoting library) prints it: a run
 * of quotes closes the quote, is written outside it, and the quote reopens after it. Each
 * dialect writes the run its own way. At the value's start and end the close or the reopen is
 * left out of the pattern: zsh and busybox write none there, bash writes an empty '' around. */
enum quote_run {
        RUN_BASH,       /* '\'' for each quote (bash, ${v@Q}) */
        RUN_SHLEX,      /* '"'"' for each quote (Python's shlex.quote) */
        RUN_BUSYBOX,    /* '"''"' for the run (busybox ash, Alpine's sh) */
        RUN_ZSH,        /* '\'\'' for the run */
};

static int shell_put_run(struct secret *s, enum quote_run style, size_t k) {
        static const char *const each[] = { [RUN_BASH] = "\\'", [RUN_SHLEX] = "\"'\"", [RUN_ZSH] = "\\'" };
        int r = 0;
        if (style == RUN_BUSYBOX) {
                r = put_str(s, "\"");
                for (size_t j = 0; j < k && r >= 0; j++)
                        r = put_str(s, "'");
                return r < 0 ? r : put_str(s, "\"");
        }
        for (size_t j = 0; j < k && r >= 0; j++) {
                if (j > 0 && style != RUN_ZSH)
                        r = put_str(s, "''");
                if (r >= 0)
                        r = put_str(s, each[style]);
        }
        return r;
}

static int emit_shell_single(struct forms_ctx *c, const unsigned char *v, size_t len, enum quote_run style) {
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        if (!memchr(v, '\'', len))
                return 0;
        r = secret_new(len + 16, &s);
        for (size_t i = 0; i < len && r >= 0;) {
                if (v[i] != '\'') {
                        r = put_byte(s, v[i++]);
                        continue;
                }
                size_t k = 0;
                while (i + k < len && v[i + k] == '\'')
                        k++;
                if (i > 0)
                        r = put_str(s, "'");
                if (r >= 0)
                        r = shell_put_run(s, style, k);
                i += k;
                if (r >= 0 && i < len)
                        r = put_str(s, "'");
        }
        if (r < 0)
                return r;
        return offer_whole(c, FORM_SHELL, &s);
}

/* zsh's set -x of a value with a control character or an unprintable code point: $'...',
 * with \t and \n, \C-X for the other controls (\C-? for DEL), \uXXXX for a code point,
 * \M- before a byte >= 0x80 that is not UTF-8 text. */
static int emit_shell_zsh_dollar(struct forms_ctx *c, const unsigned char *v, size_t len) {
        _cleanup_secret_ struct secret *s = NULL;
        bool needed = false;
        uint32_t cp;
        int r;

        for (size_t i = 0; i < len && !needed; i++) {
                size_t k = v[i] >= 0x80 ? utf8_decode(v + i, len - i, &cp) : 0;
                needed = is_control(v[i]) || (k > 0 && !utf8_printable(cp));
        }
        if (!needed || memchr(v, 0, len))
                return 0;
        r = secret_new(len * 2, &s);
        for (size_t i = 0; i < len && r >= 0;) {
                unsigned char b = v[i];
                size_t k = b >= 0x80 ? utf8_decode(v + i, len - i, &cp) : 1;
                if (b >= 0x80 && k > 0) {
                        if (utf8_printable(cp))
                                r = secret_append(s, v + i, k);
                        else
                                r = put_escape_hex(s, cp < 0x10000 ? "\\u" : "\\U", cp, cp < 0x10000 ? 4 : 8, false);
                        i += k;
                        continue;
                }
                if (b >= 0x80) {
                        r = put_str(s, "\\M-");
                        b &= 0x7f;
                }
                if (r >= 0) {
                        if (b == '\t' || b == '\n')
                                r = put_str(s, b == '\t' ? "\\t" : "\\n");
                        else if (is_control(b)) {
                                r = put_str(s, "\\C-");
                                if (r >= 0)
                                        r = put_byte(s, b == 0x7f ? '?' : (unsigned char) (b + 0x40));
                        } else {
                                if (b == '\\' || b == '\'')
                                        r = put_byte(s, '\\');
                                if (r >= 0)
                                        r = put_byte(s, b);
                        }
                }
                sodium_memzero(&b, sizeof(b));
                i++;
        }
        sodium_memzero(&cp, sizeof(cp));
        if (r < 0)
                return r;
        return offer_whole(c, FORM_SHELL, &s);
}

/* Bytes bash's printf %q backslash-escapes in a printable word. '~' and '#' are handled apart:
 * they only matter where tilde expansion or a comment could start. */
static bool shell_needs_backslash(const unsigned char *v, size_t i) {
        switch (v[i]) {
        case ' ': case '\'': case '"': case '\\': case '|': case '&': case ';':
        case '(': case ')': case '<': case '>': case '!': case '{': case '}':
        case '*': case '[': case '?': case ']': case '^': case '$': case '`': case ',':
                return true;
        case '~':
                return i == 0 || v[i - 1] == '=' || v[i - 1] == ':';
        case '#':
                return i == 0;
        default:
                return false;
        }
}

/* printf %q / ${var@Q} as bash prints them. If every character is printable in the locale,
 * %q backslash-escapes shell syntax; otherwise it switches to $'...' and we emit what is between
 * the quotes. `utf8_locale` chooses between a UTF-8 locale (printable multibyte characters stay
 * as they are) and the C locale (every byte >= 0x80 is \NNN). */
static int emit_shell_q(struct forms_ctx *c, const unsigned char *v, size_t len, bool utf8_locale) {
        _cleanup_secret_ struct secret *s = NULL;
        bool printable = true;
        uint32_t cp;
        int r;

        /* a bash variable ends at the first NUL: bash never prints one */
        if (memchr(v, 0, len))
                return 0;

        for (size_t i = 0; i < len && printable;) {
                if (v[i] < 0x80) {
                        printable = !is_control(v[i]);
                        i++;
                        continue;
                }
                size_t k = utf8_locale ? utf8_decode(v + i, len - i, &cp) : 0;
                printable = k > 0 && utf8_printable(cp);
                i += k;
        }
        sodium_memzero(&cp, sizeof(cp));

        r = secret_new(len * 2, &s);
        if (r < 0)
                return r;

        for (size_t i = 0; i < len && r >= 0;) {
                unsigned char b = v[i];

                if (printable) {
                        if (b < 0x80 && shell_needs_backslash(v, i))
                                r = put_byte(s, '\\');
                        if (r >= 0)
                                r = put_byte(s, b);
                        i++;
                } else if (b >= 0x80) {
                        size_t k = utf8_locale ? utf8_decode(v + i, len - i, &cp) : 0;
                        if (k > 0 && utf8_printable(cp)) {
                                r = secret_append(s, v + i, k);
                                i += k;
                        } else {
                                r = put_escape_octal(s, b);
                                i++;
                        }
                        sodium_memzero(&cp, sizeof(cp));
                } else {
                        switch (b) {
                        case '\a': r = put_str(s, "\\a"); break;
                        case '\b': r = put_str(s, "\\b"); break;
                        case 0x1b: r = put_str(s, "\\E"); break;
                        case '\f': r = put_str(s, "\\f"); break;
                        case '\n': r = put_str(s, "\\n"); break;
                        case '\r': r = put_str(s, "\\r"); break;
                        case '\t': r = put_str(s, "\\t"); break;
                        case '\v': r = put_str(s, "\\v"); break;
                        case '\\': r = put_str(s, "\\\\"); break;
                        case '\'': r = put_str(s, "\\'"); break;
                        default:
                                r = is_control(b) ? put_escape_octal(s, b) : put_byte(s, b);
                                break;
                        }
                        i++;
                }
                sodium_memzero(&b, sizeof(b));
        }
        if (r < 0)
                return r;
        return offer_whole(c, FORM_SHELL, &s);
}

static int emit_shells(struct forms_ctx *c, const unsigned char *v, size_t len) {
        int r;

        r = emit_shell_single(c, v, len, RUN_BASH);
        if (r >= 0)
                r = emit_shell_single(c, v, len, RUN_SHLEX);
        if (r >= 0)
                r = emit_shell_single(c, v, len, RUN_BUSYBOX);
        if (r >= 0)
                r = emit_shell_single(c, v, len, RUN_ZSH);
        if (r >= 0)
                r = emit_shell_zsh_dollar(c, v, len);
        if (r >= 0)
                r = emit_shell_q(c, v, len, true);
        if (r >= 0)
                r = emit_shell_q(c, v, len, false);
        return r;
}

/* ---- 11: XML / HTML ---- */

static int emit_xml(struct forms_ctx *c, const unsigned char *v, size_t len, const char *quot,
                    const char *apos) {
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        r = secret_new(len * 2, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len && r >= 0; i++) {
                switch (v[i]) {
                case '&': r = put_str(s, "&amp;"); break;
                case '<': r = put_str(s, "&lt;"); break;
                case '>': r = put_str(s, "&gt;"); break;
                case '"': r = put_str(s, quot ? quot : "\""); break;
                case '\'': r = put_str(s, apos ? apos : "'"); break;
                default: r = put_byte(s, v[i]); break;
                }
        }
        if (r < 0)
                return r;
        return offer_whole(c, FORM_XML, &s);
}

static int emit_xmls(struct forms_ctx *c, const unsigned char *v, size_t len) {
        static const struct {
                const char *quot, *apos;
        } variants[] = {
                { "&quot;", "&#39;" },    /* Python html.escape, PHP htmlspecialchars */
                { "&quot;", "&apos;" },   /* XML serializers */
                { "&quot;", "&#x27;" },
                { "&#34;", "&#39;" },     /* Go html.EscapeString, html/template */
                { NULL, NULL },           /* text content only: xml.sax.saxutils.escape */
        };
        for (size_t k = 0; k < ELEMENTSOF(variants); k++) {
                int r = emit_xml(c, v, len, variants[k].quot, variants[k].apos);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- 12-14: language string literals (Python, C-family, YAML) ----
 * What a language's repr, %q or debug print shows between the quotes. One escaper with the
 * choices in which they differ: which quotes are escaped (or the quote the language picks
 * for this value), the named escapes, how other control characters and non-ASCII are shown. */

enum quote_rule {
        QUOTE_DOUBLE,   /* \" escaped: C, Go %q, Rust {:?}, Java, YAML "..." */
        QUOTE_SINGLE,   /* \' escaped: PHP var_export, Node's util.inspect default */
        QUOTE_BOTH,     /* both escaped: C code generators, Rust b"..." */
        QUOTE_PYTHON,   /* repr(): '...' unless the value has ' and no ", then "..." */
        QUOTE_NODE,     /* util.inspect: '...', "..." if the value has ' and no ", else `...` */
};

enum ctl_style {
        CTL_RAW,        /* left as they are (PHP single quotes) */
        CTL_X,          /* \x1b */
        CTL_X_UPPER,    /* \x1B (Node, YAML) */
        CTL_U4_UPPER,   /* \u001B (Java escapeJava) */
        CTL_RUST,       /* \u{1b} */
};

enum high_style {
        HIGH_UTF8,      /* printable UTF-8 as it is, any other byte as \xNN */
        HIGH_STR,       /* the same, but a value that is not UTF-8 cannot be a str at all */
        HIGH_BYTES,     /* every byte >= 0x80 as \xNN (Python bytes) */
        HIGH_U4_UPPER,  /* every code point >= 0x7f as \uXXXX (Java escapeJava) */
        HIGH_YAML,      /* PyYAML: \xXX below U+0100, \uXXXX, \UXXXXXXXX */
};

struct literal_style {
        enum redact_form form;
        enum quote_rule quotes;
        const char *named;      /* control characters with a letter escape, of "0abtnvfre" */
        enum ctl_style ctl;
        enum high_style high;
};

static const struct literal_style literal_styles[] = {
        { FORM_PYTHON, QUOTE_PYTHON, "tnr", CTL_X, HIGH_STR },          /* repr(str) */
        { FORM_PYTHON, QUOTE_PYTHON, "tnr", CTL_X, HIGH_BYTES },        /* repr(bytes) */
        { FORM_ESCAPED, QUOTE_DOUBLE, "abtnvfr", CTL_X, HIGH_UTF8 },    /* Go %q, C */
        { FORM_ESCAPED, QUOTE_DOUBLE, "0tnr", CTL_RUST, HIGH_STR },     /* Rust {:?} */
        { FORM_ESCAPED, QUOTE_DOUBLE, "btnfr", CTL_U4_UPPER, HIGH_U4_UPPER }, /* Java */
        { FORM_ESCAPED, QUOTE_NODE, "btnfr", CTL_X_UPPER, HIGH_UTF8 },  /* Node util.inspect */
        { FORM_ESCAPED, QUOTE_SINGLE, "", CTL_RAW, HIGH_UTF8 },         /* PHP var_export */
        { FORM_ESCAPED, QUOTE_BOTH, "abtnvfr", CTL_X, HIGH_BYTES },     /* C literals, b"..." */
        { FORM_YAML, QUOTE_DOUBLE, "0abtnvfre", CTL_X_UPPER, HIGH_YAML }, /* PyYAML default */
        { FORM_YAML, QUOTE_DOUBLE, "0abtnvfre", CTL_X_UPPER, HIGH_UTF8 }, /* allow_unicode, Go yaml */
};

/* Which quote characters the style escapes for this value. */
static void literal_quotes(enum quote_rule rule, const unsigned char *v, size_t len, bool *ret_dq,
                           bool *ret_sq, bool *ret_bt) {
        bool has_sq = memchr(v, '\'', len), has_dq = memchr(v, '"', len);
        *ret_dq = *ret_sq = *ret_bt = false;
        switch (rule) {
        case QUOTE_DOUBLE: *ret_dq = true; break;
        case QUOTE_SINGLE: *ret_sq = true; break;
        case QUOTE_BOTH: *ret_dq = *ret_sq = true; break;
        case QUOTE_PYTHON:
                if (!(has_sq && !has_dq))
                        *ret_sq = true;
                break;
        case QUOTE_NODE:
                if (!has_sq)
                        *ret_sq = true;
                else if (!has_dq)
                        *ret_dq = true;
                else if (memchr(v, '`', len))
                        *ret_sq = true;
                else
                        *ret_bt = true;
                break;
        default:
                break;
        }
}

static int literal_put_control(struct secret *s, const struct literal_style *st, unsigned char b) {
        static const char letters[] = "0abtnvfre";
        static const unsigned char codes[] = { 0, '\a', '\b', '\t', '\n', '\v', '\f', '\r', 0x1b };
        for (size_t k = 0; k < sizeof(codes); k++)
                if (codes[k] == b && strchr(st->named, letters[k])) {
                        char esc[2] = { '\\', letters[k] };
                        return secret_append(s, esc, 2);
                }
        switch (st->ctl) {
        case CTL_RAW: return put_byte(s, b);
        case CTL_X: return put_escape_hex(s, "\\x", b, 2, false);
        case CTL_X_UPPER: return put_escape_hex(s, "\\x", b, 2, true);
        case CTL_U4_UPPER: return put_escape_hex(s, "\\u", b, 4, true);
        case CTL_RUST: {
                int r = put_escape_hex(s, "\\u{", b, b < 0x10 ? 1 : 2, false);
                return r < 0 ? r : put_str(s, "}");
        }
        default:
                return -EINVAL;
        }
}

/* A code point >= 0x80 of a str: as it is if printable, else escaped as Python and Go do. */
static int literal_put_code_point(struct secret *s, const struct literal_style *st, const unsigned char *p,
                                  size_t k, uint32_t cp) {
        bool printable = utf8_printable(cp) && cp != 0xa0 && cp != 0xad;
        if (st->high == HIGH_U4_UPPER) {
                if (cp < 0x10000)
                        return put_escape_hex(s, "\\u", cp, 4, true);
                /* beyond the BMP: a UTF-16 surrogate pair, as Java's strings hold it */
                int r = put_escape_hex(s, "\\u", 0xd800 | ((cp - 0x10000) >> 10), 4, true);
                return r < 0 ? r : put_escape_hex(s, "\\u", 0xdc00 | ((cp - 0x10000) & 0x3ff), 4, true);
        }
        if (st->high == HIGH_YAML) {
                /* YAML's own names for the separators it must not print raw */
                static const struct { uint32_t cp; const char *esc; } names[] = {
                        { 0x85, "\\N" }, { 0xa0, "\\_" }, { 0x2028, "\\L" }, { 0x2029, "\\P" },
                };
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (names[i].cp == cp)
                                return put_str(s, names[i].esc);
        }
        if (st->high == HIGH_YAML || !printable) {
                bool upper = st->high == HIGH_YAML;
                if (cp < 0x100)
                        return put_escape_hex(s, "\\x", cp, 2, upper);
                if (cp < 0x10000)
                        return put_escape_hex(s, "\\u", cp, 4, upper);
                return put_escape_hex(s, "\\U", cp, 8, upper);
        }
        return secret_append(s, p, k);
}

static int emit_literal(struct forms_ctx *c, const struct literal_style *st, const unsigned char *v, size_t len) {
        _cleanup_secret_ struct secret *s = NULL;
        bool dq, sq, bt;
        int r;

        literal_quotes(st->quotes, v, len, &dq, &sq, &bt);
        r = secret_new(len * 2, &s);
        for (size_t i = 0; i < len && r >= 0;) {
                unsigned char b = v[i];
                uint32_t cp = 0;
                size_t k = b >= 0x80 && st->high != HIGH_BYTES ? utf8_decode(v + i, len - i, &cp) : 1;

                if (b >= 0x80 && k == 0 && st->high == HIGH_STR)
                        return 0;
                if (b == '\\' || (b == '"' && dq) || (b == '\'' && sq) || (b == '`' && bt)) {
                        r = put_byte(s, '\\');
                        if (r >= 0)
                                r = put_byte(s, b);
                } else if (b < 0x20 || (b == 0x7f && st->ctl != CTL_RAW))
                        r = literal_put_control(s, st, b);
                else if (b <= 0x7f)
                        r = put_byte(s, b);
                else if (st->high == HIGH_BYTES || k == 0)
                        r = put_escape_hex(s, "\\x", b, 2, st->ctl == CTL_X_UPPER);
                else
                        r = literal_put_code_point(s, st, v + i, k, cp);
                i += k ? k : 1;
                sodium_memzero(&b, sizeof(b));
                sodium_memzero(&cp, sizeof(cp));
        }
        if (r < 0)
                return r;
        return offer_whole(c, st->form, &s);
}

/* In the table's order: python, then escaped, then yaml, which decides a duplicate's name. */
static int emit_literals(struct forms_ctx *c, const unsigned char *v, size_t len) {
        for (size_t k = 0; k < ELEMENTSOF(literal_styles); k++) {
                int r = emit_literal(c, &literal_styles[k], v, len);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- 15: quote doubling ---- */

static int emit_quote_doubled(struct forms_ctx *c, const unsigned char *v, size_t len, unsigned char quote) {
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        if (!memchr(v, quote, len))
                return 0;
        r = secret_new(len * 2, &s);
        for (size_t i = 0; i < len && r >= 0; i++) {
                r = put_byte(s, v[i]);
                if (r >= 0 && v[i] == quote)
                        r = put_byte(s, quote);
        }
        if (r < 0)
                return r;
        return offer_whole(c, FORM_QUOTE_DOUBLED, &s);
}

/* ---- 16: backslash escapes resolved ----
 * An unquoted shell word drops each backslash and keeps the byte after it (`abc\def` is
 * printed `abcdef`); echo in dash, echo -e and printf %b also turn \n, \t and the other
 * letters into control characters, and leave an unknown escape as it is. */
static int emit_unescaped(struct forms_ctx *c, const unsigned char *v, size_t len, bool echo) {
        static const char letters[] = "abfnrtv\\";
        static const unsigned char codes[] = { '\a', '\b', '\f', '\n', '\r', '\t', '\v', '\\' };
        _cleanup_secret_ struct secret *s = NULL;
        int r;

        if (!memchr(v, '\\', len))
                return 0;
        r = secret_new(len, &s);
        for (size_t i = 0; i < len && r >= 0; i++) {
                const char *l;
                if (v[i] != '\\')
                        r = put_byte(s, v[i]);
                else if (!echo) {
                        if (i + 1 == len)
                                break;          /* a trailing backslash continues the line */
                        r = put_byte(s, v[++i]);
                } else if (i + 1 < len && v[i + 1] != 0 && (l = strchr(letters, v[i + 1]))) {
                        r = put_byte(s, codes[l - letters]);
                        i++;
                } else
                        r = put_byte(s, '\\');    /* not an escape echo knows: kept */
        }
        if (r < 0)
                return r;
        return offer_whole(c, FORM_UNESCAPED, &s);
}

/* ---- 17-20: encodings of an encoding, to depth 2 ----
 * A Kubernetes .dockerconfigjson is base64 of JSON whose auth is base64 of user:password; a
 * token is base64'd and then put in a URL; a JSON document is embedded as a string in
 * another. Each inner form is taken where it can sit inside a longer text (the base64 core
 * at each alignment, the JSON escape), and encoded again the same way. */

static int emit_base64_of(struct forms_ctx *c, const struct secret *inner, enum redact_form kind) {
        for (size_t align = 0; align < 3; align++) {
                _cleanup_secret_ struct secret *outer = NULL;
                int r = base64_core(secret_data(inner), secret_len(inner), align, b64_standard, &outer);
                if (r >= 0)
                        r = offer_whole(c, kind, &outer);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int emit_nested(struct forms_ctx *c, const unsigned char *v, size_t len) {
        _cleanup_secret_ struct secret *json = NULL, *json2 = NULL;
        int r;

        for (size_t align = 0; align < 3; align++) {
                _cleanup_secret_ struct secret *inner = NULL;
                r = base64_core(v, len, align, b64_standard, &inner);
                if (r >= 0)
                        r = emit_base64_of(c, inner, FORM_BASE64_BASE64);
                /* RFC 3986 (encodeURIComponent escapes '/' too) and Python's quote(), which keeps it */
                if (r >= 0)
                        r = emit_percent(c, FORM_PERCENT_BASE64, secret_data(inner), secret_len(inner),
                                         "-._~", true, false);
                if (r >= 0)
                        r = emit_percent(c, FORM_PERCENT_BASE64, secret_data(inner), secret_len(inner),
                                         "-._~/", true, false);
                if (r < 0)
                        return r;
        }

        r = json_encode(v, len, 0, &json);
        if (r <= 0 || (secret_len(json) == len && memcmp(secret_data(json), v, len) == 0))
                return r < 0 ? r : 0;     /* nothing to escape: the nested forms are the ones above */
        r = emit_base64_of(c, json, FORM_BASE64_JSON);
        if (r < 0)
                return r;
        r = json_encode(secret_data(json), secret_len(json), 0, &json2);
        if (r <= 0)
                return r;
        return offer_whole(c, FORM_JSON_JSON, &json2);
}

/* ---- all forms, in the order that decides which name a duplicate keeps ---- */

int redact_forms(const unsigned char *value, size_t len, size_t min_len, redact_emit_fn emit,
                 void *userdata) {
        _cleanup_(forms_ctx_done) struct forms_ctx c = {
                .min_len = min_len,
                .emit = emit,
                .userdata = userdata,
        };
        size_t ts, tn;
        int r;

        if (!emit || (!value && len > 0))
                return -EINVAL;
        if (len == 0)
                return 0;

        r = offer(&c, FORM_RAW, value, len, false);
        if (r < 0)
                return r;
        trim_range(value, len, &ts, &tn);
        r = offer(&c, FORM_TRIMMED, value + ts, tn, false);
        if (r < 0)
                return r;
        r = emit_lines(&c, value, len);
        if (r < 0)
                return r;
        r = emit_whitespace(&c, value, len);
        if (r < 0)
                return r;
        r = emit_base64(&c, value, len);
        if (r < 0)
                return r;
        r = emit_hex(&c, value, len, false);
        if (r < 0)
                return r;
        r = emit_hex(&c, value, len, true);
        if (r < 0)
                return r;
        r = emit_percents(&c, value, len);
        if (r < 0)
                return r;
        r = emit_jsons(&c, value, len);
        if (r < 0)
                return r;
        r = emit_shells(&c, value, len);
        if (r < 0)
                return r;
        r = emit_xmls(&c, value, len);
        if (r < 0)
                return r;
        r = emit_literals(&c, value, len);
        if (r < 0)
                return r;
        r = emit_quote_doubled(&c, value, len, '\'');
        if (r < 0)
                return r;
        r = emit_quote_doubled(&c, value, len, '"');
        if (r < 0)
                return r;
        r = emit_unescaped(&c, value, len, false);
        if (r < 0)
                return r;
        r = emit_unescaped(&c, value, len, true);
        if (r < 0)
                return r;
        return emit_nested(&c, value, len);
}
