/* The pattern set and the streaming matcher.
 *
 * Finding: every pattern registers the 8-byte grams at its first STEP offsets in a bitmap
 * and an exact gram table; the scan looks only at every STEP-th input position, so any
 * occurrence of a pattern of length >= STEP + GRAM - 1 has exactly one sampled position
 * whose gram sits at a registered offset. A bitmap hit is looked up exactly and each
 * candidate verified with memcmp. Cost per input byte: one load, multiply and bit test
 * per STEP bytes.
 *
 * Holding back: at the end of each feed, the longest tail that is a proper prefix of some
 * pattern (found through a prefix bitmap and binary search over the sorted patterns) is
 * held; everything before it is decided and passed on.
 *
 * Views: some text a tool prints between a value's characters is not the value's and must
 * not stop a match — terminal sequences (a colour inside a grep match, a progress line's
 * lone \r) for every literal pattern, and line breaks inside wrapped encodings (base64 -w,
 * xxd -p, PEM bodies) for the encoded forms. Each view is the stream with its skippable
 * sequences removed: they are parsed incrementally, in stream order, into a list of skips;
 * around them the text is copied without them and searched with the same indexes, and a
 * match found there is mapped back to the stream bytes it covers, skips inside included.
 * Text without skips costs the parse only (memchr). See docs/redaction-forms.md "Match
 * modes" for the exact rules. */
#include <sodium.h>

#include "redact.h"

#define GRAM_MAX 8
#define STEP_MAX 12
/* Patterns (flex: anchors) this long are sampled every STEP_MAX bytes with 8-byte grams;
 * shorter ones go to a second index with 4-byte grams and a step their length allows, so
 * one short secret does not slow the scan for all the others. */
#define LONG_PATTERN_MIN (GRAM_MAX + STEP_MAX - 1)
#define SHORT_GRAM 4
#define CHUNK (64 * 1024)   /* a pipe read's worth; the window is this plus two matches */
#define FLEX_MAX_RUN 16           /* whitespace bytes one ' ' of a flex pattern may stand for */
#define PREFIX_BITS 20
/* Views. A match in a view may span at most 2 * len + VIEW_SLACK stream bytes, skips
 * included; a terminal sequence is at most CSI_MAX or OSC_MAX bytes long; a line break is
 * skipped when the line before ends in WRAP_RUN encoding characters and the next, after at
 * most WRAP_INDENT blanks, goes on with the block (wrap_skip). */
#define VIEW_SLACK 64
#define CSI_MAX 64
#define OSC_MAX 512
#define NF_MAX 8
#define WRAP_RUN 16
#define WRAP_INDENT 16

struct pattern {
        uint32_t offset;          /* into the arena */
        uint32_t len;
        uint32_t secret;
        uint8_t form;
        bool flex;
        bool duplicate;           /* same bytes as an earlier pattern: not searched */
        bool wrap;                /* an encoding tools wrap: searched in the wrap view too */
        /* flex only: the anchor token (the longest), whose grams are registered */
        uint32_t anchor_off, anchor_len;
        uint32_t max_text;        /* longest text a match can span */
};

struct gram_slot {
        uint64_t gram;
        uint32_t head;            /* first entry + 1; 0 = empty slot */
        uint32_t pad;
};

struct gram_entry {
        uint32_t pattern;
        uint32_t offset;          /* of the gram within the pattern (flex: within the anchor) */
        uint32_t next;            /* next entry + 1 */
};

/* Finding candidates: grams at STEP-spaced offsets, a bitmap to reject most positions with
 * one load, an exact table for the rest. */
struct gram_index {
        unsigned gram, step;
        uint64_t gram_mask;
        uint64_t *bitmap;
        unsigned bitmap_shift;
        struct gram_slot *slots;  /* sodium memory: grams are secret bytes */
        size_t slot_mask;
        struct gram_entry *entries;
        size_t n_entries;
};

struct redactor {
        size_t min_len;
        char *mask_template;
        char **names;
        char **masks;             /* rendered mask per secret */
        size_t n_secrets;
        struct secret *arena;     /* all pattern bytes */
        struct pattern *patterns;
        size_t n_patterns;

        bool compiled;
        size_t max_text;          /* longest text any match spans */
        struct gram_index index[2];   /* long patterns, short patterns */
        size_t n_index;
        unsigned max_step;
        uint32_t *sorted;         /* literal patterns by bytes, for the prefix test */
        size_t n_sorted;
        uint64_t *prefix_bitmap;  /* hashed prefixes of length 1..4 of literal patterns */
        uint32_t *flex;           /* indexes of flex patterns */
        size_t n_flex;
        size_t view_span;         /* longest text a match in a view spans */
        size_t longest_literal;
};

static inline const unsigned char *pattern_bytes(const struct redactor *r, const struct pattern *p) {
        return secret_data(r->arena) + p->offset;
}

static inline bool is_ws(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static inline uint64_t load64(const unsigned char *p) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
}

static inline uint64_t mix(uint64_t x) {
        return x * 0x9E3779B97F4A7C15ULL;
}

/* ---- building ---- */

int redactor_new(size_t min_len, const char *mask_template, struct redactor **ret) {
        struct redactor *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->min_len = min_len ? min_len : 1;
        r->mask_template = strdup(mask_template ? mask_template : "[REDACTED:{name}]");
        if (!r->mask_template || secret_new(4096, &r->arena) < 0) {
                redactor_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

static char *render_mask(const char *template, const char *name) {
        size_t n = 0;
        for (const char *t = template; *t;)
                if (startswith(t, "{name}")) {
                        n += strlen(name);
                        t += 6;
                } else {
                        n++;
                        t++;
                }
        char *m = malloc(n + 1), *o = m;
        if (!m)
                return NULL;
        for (const char *t = template; *t;)
                if (startswith(t, "{name}")) {
                        o = stpcpy(o, name);
                        t += 6;
                } else
                        *o++ = *t++;
        *o = '\0';
        return m;
}

/* The forms tools print wrapped at a fixed width, whose line breaks the wrap view skips. */
static bool form_wraps(enum redact_form form) {
        switch (form) {
        case FORM_BASE64:
        case FORM_BASE64URL:
        case FORM_HEX_LOWER:
        case FORM_HEX_UPPER:
        case FORM_BASE64_BASE64:
        case FORM_BASE64_JSON:
                return true;
        default:
                return false;
        }
}

struct add_ctx {
        struct redactor *r;
        uint32_t secret;
        int added;
};

static int add_pattern(void *userdata, enum redact_form form, const unsigned char *p, size_t n, bool flex) {
        struct add_ctx *c = userdata;
        struct redactor *r = c->r;
        if (n < r->min_len || n > UINT32_MAX / 2)
                return 0;
        if (secret_len(r->arena) + n > UINT32_MAX)
                return -E2BIG;
        struct pattern *ps = realloc(r->patterns, (r->n_patterns + 1) * sizeof(*ps));
        if (!ps)
                return -ENOMEM;
        r->patterns = ps;
        struct pattern pat = {
                .offset = (uint32_t) secret_len(r->arena), .len = (uint32_t) n,
                .secret = c->secret, .form = (uint8_t) form, .flex = flex, .max_text = (uint32_t) n,
                .wrap = !flex && form_wraps(form),
        };
        if (flex) {
                /* anchor on the longest token; each ' ' may stand for up to FLEX_MAX_RUN bytes */
                size_t best_off = 0, best_len = 0, runs = 0;
                for (size_t i = 0; i < n;) {
                        size_t j = i;
                        while (j < n && p[j] != ' ')
                                j++;
                        if (j - i > best_len)
                                best_off = i, best_len = j - i;
                        if (j < n)
                                runs++;
                        i = j + 1;
                }
                if (best_len < GRAM_MAX)
                        return 0;   /* too little to anchor on; the lines are matched on their own */
                pat.anchor_off = (uint32_t) best_off;
                pat.anchor_len = (uint32_t) best_len;
                pat.max_text = (uint32_t) (n + runs * (FLEX_MAX_RUN - 1));
        }
        int k = secret_append(r->arena, p, n);
        if (k < 0)
                return k;
        r->patterns[r->n_patterns++] = pat;
        c->added++;
        return 0;
}

int redactor_add(struct redactor *r, const char *name, const unsigned char *value, size_t len) {
        if (r->compiled)
                return -EBUSY;
        if (len < r->min_len)
                return 0;
        char **names = realloc(r->names, (r->n_secrets + 1) * sizeof(char *));
        if (!names)
                return -ENOMEM;
        r->names = names;
        char **masks = realloc(r->masks, (r->n_secrets + 1) * sizeof(char *));
        if (!masks)
                return -ENOMEM;
        r->masks = masks;
        r->names[r->n_secrets] = strdup(name);
        r->masks[r->n_secrets] = render_mask(r->mask_template, name);
        if (!r->names[r->n_secrets] || !r->masks[r->n_secrets]) {
                free(r->names[r->n_secrets]);
                free(r->masks[r->n_secrets]);
                return -ENOMEM;
        }
        struct add_ctx c = { .r = r, .secret = (uint32_t) r->n_secrets };
        r->n_secrets++;
        int k = redact_forms(value, len, r->min_len, add_pattern, &c);
        return k < 0 ? k : c.added;
}

static const struct redactor *sort_ctx;

static int pattern_cmp(const void *a, const void *b) {
        const struct pattern *x = &sort_ctx->patterns[*(const uint32_t *) a];
        const struct pattern *y = &sort_ctx->patterns[*(const uint32_t *) b];
        size_t n = x->len < y->len ? x->len : y->len;
        int c = memcmp(pattern_bytes(sort_ctx, x), pattern_bytes(sort_ctx, y), n);
        if (c)
                return c;
        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        /* equal bytes: the earlier pattern first, so it is the one kept */
        return *(const uint32_t *) a < *(const uint32_t *) b ? -1 : 1;
}

static inline uint64_t prefix_hash(const unsigned char *p, size_t n) {
        uint64_t v = n;
        for (size_t i = 0; i < n; i++)
                v = (v << 8) | p[i];
        return mix(v + 0x1234567) >> (64 - PREFIX_BITS);
}

static inline void bit_set(uint64_t *bm, uint64_t i) { bm[i >> 6] |= 1ULL << (i & 63); }
static inline bool bit_test(const uint64_t *bm, uint64_t i) { return bm[i >> 6] & (1ULL << (i & 63)); }

static void add_gram(struct gram_index *x, uint64_t gram, uint32_t pattern, uint32_t offset) {
        bit_set(x->bitmap, mix(gram) >> x->bitmap_shift);
        size_t i = (size_t) (mix(gram) >> 20) & x->slot_mask;
        while (x->slots[i].head && x->slots[i].gram != gram)
                i = (i + 1) & x->slot_mask;
        x->entries[x->n_entries] = (struct gram_entry) { .pattern = pattern, .offset = offset, .next = x->slots[i].head };
        x->slots[i].gram = gram;
        x->slots[i].head = (uint32_t) ++x->n_entries;
}

/* Sizes an index for n_patterns registered at `step` offsets each. */
static int index_init(struct gram_index *x, unsigned gram, unsigned step, size_t n_patterns) {
        x->gram = gram;
        x->step = step;
        x->gram_mask = gram == 8 ? ~0ULL : (1ULL << (8 * gram)) - 1;
        size_t n_grams = n_patterns * step;
        /* 32 bits a gram: one sampled position in 32 goes on to the exact table. More would
         * keep fewer, but the bitmap of 1,000 secrets' forms would outgrow a core's L2 (64 bits
         * a gram: 4 MiB), and a miss there on every sample costs more than the lookups saved */
        unsigned bits = 12;
        while (bits < 25 && (1ULL << bits) < (uint64_t) n_grams * 32)
                bits++;
        x->bitmap_shift = 64 - bits;
        x->bitmap = calloc((1ULL << bits) / 64, sizeof(uint64_t));
        size_t slots = 16;
        while (slots < n_grams * 2)
                slots *= 2;
        x->slot_mask = slots - 1;
        x->slots = sodium_allocarray(slots, sizeof(struct gram_slot));
        x->entries = calloc(n_grams ? n_grams : 1, sizeof(struct gram_entry));
        if (!x->bitmap || !x->slots || !x->entries)
                return -ENOMEM;
        memset(x->slots, 0, slots * sizeof(struct gram_slot));
        return 0;
}

static void index_done(struct gram_index *x) {
        free(x->bitmap);
        sodium_free(x->slots);
        free(x->entries);
}

static size_t key_len(const struct pattern *p) {
        return p->flex ? p->anchor_len : p->len;
}

int redactor_compile(struct redactor *r) {
        if (r->compiled)
                return -EBUSY;
        size_t n_long = 0, n_short = 0, shortest_short = SIZE_MAX;
        for (size_t i = 0; i < r->n_patterns; i++) {
                const struct pattern *p = &r->patterns[i];
                if (p->max_text > r->max_text)
                        r->max_text = p->max_text;
                if (!p->flex && p->len > r->longest_literal)
                        r->longest_literal = p->len;
                if (key_len(p) >= LONG_PATTERN_MIN)
                        n_long++;
                else {
                        n_short++;
                        if (key_len(p) < shortest_short)
                                shortest_short = key_len(p);
                }
        }
        if (r->longest_literal > 0)
                r->view_span = 2 * r->longest_literal + VIEW_SLACK;
        int k = index_init(&r->index[0], GRAM_MAX, STEP_MAX, n_long);
        if (k < 0)
                return k;
        r->n_index = 1;
        r->max_step = STEP_MAX;
        if (n_short > 0) {
                unsigned gram = shortest_short < SHORT_GRAM ? (unsigned) shortest_short : SHORT_GRAM;
                size_t step = shortest_short - gram + 1;
                if ((k = index_init(&r->index[1], gram, (unsigned) (step < STEP_MAX ? step : STEP_MAX), n_short)) < 0)
                        return k;
                r->n_index = 2;
        }
        r->sorted = calloc(r->n_patterns ? r->n_patterns : 1, sizeof(uint32_t));
        r->flex = calloc(r->n_patterns ? r->n_patterns : 1, sizeof(uint32_t));
        r->prefix_bitmap = calloc((1ULL << PREFIX_BITS) / 64, sizeof(uint64_t));
        if (!r->sorted || !r->flex || !r->prefix_bitmap)
                return -ENOMEM;

        for (size_t i = 0; i < r->n_patterns; i++)
                if (r->patterns[i].flex)
                        r->flex[r->n_flex++] = (uint32_t) i;
                else
                        r->sorted[r->n_sorted++] = (uint32_t) i;
        sort_ctx = r;
        qsort(r->sorted, r->n_sorted, sizeof(uint32_t), pattern_cmp);
        sort_ctx = NULL;
        /* the same bytes from two secrets or two forms: keep the first added */
        size_t kept = 0;
        for (size_t i = 0; i < r->n_sorted; i++) {
                struct pattern *p = &r->patterns[r->sorted[i]];
                if (kept > 0) {
                        const struct pattern *q = &r->patterns[r->sorted[kept - 1]];
                        if (q->len == p->len && memcmp(pattern_bytes(r, q), pattern_bytes(r, p), p->len) == 0) {
                                p->duplicate = true;
                                continue;
                        }
                }
                r->sorted[kept++] = r->sorted[i];
        }
        r->n_sorted = kept;
        for (size_t i = 0; i < r->n_flex; i++)
                for (size_t j = 0; j < i; j++) {
                        struct pattern *p = &r->patterns[r->flex[i]];
                        const struct pattern *q = &r->patterns[r->flex[j]];
                        if (!q->duplicate && q->len == p->len &&
                            memcmp(pattern_bytes(r, q), pattern_bytes(r, p), p->len) == 0)
                                p->duplicate = true;
                }

        for (size_t i = 0; i < r->n_patterns; i++) {
                const struct pattern *p = &r->patterns[i];
                if (p->duplicate)
                        continue;
                const unsigned char *b = pattern_bytes(r, p);
                if (p->flex)
                        b += p->anchor_off;
                else
                        for (size_t l = 1; l <= 4 && l < p->len; l++)
                                bit_set(r->prefix_bitmap, prefix_hash(b, l));
                struct gram_index *x = &r->index[key_len(p) >= LONG_PATTERN_MIN ? 0 : 1];
                for (unsigned o = 0; o < x->step; o++) {
                        uint64_t g = 0;
                        memcpy(&g, b + o, x->gram);
                        add_gram(x, g & x->gram_mask, (uint32_t) i, o);
                }
        }
        r->compiled = true;
        return 0;
}

size_t redactor_pattern_count(const struct redactor *r) {
        return r->n_patterns;
}

size_t redactor_max_match_len(const struct redactor *r) {
        return r->max_text > r->view_span ? r->max_text : r->view_span;
}

struct redactor *redactor_free(struct redactor *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_secrets; i++) {
                free(r->names[i]);
                free(r->masks[i]);
        }
        free(r->names);
        free(r->masks);
        free(r->mask_template);
        secret_free(r->arena);
        free(r->patterns);
        for (size_t i = 0; i < 2; i++)
                index_done(&r->index[i]);
        free(r->sorted);
        free(r->prefix_bitmap);
        free(r->flex);
        free(r);
        return NULL;
}

/* ---- streaming ---- */

struct match {
        uint64_t start, end;      /* absolute stream offsets */
        uint32_t pattern;
        uint8_t form;
};

/* One view's parse: the skips found so far (absolute, in order, disjoint; those before the
 * window dropped) and how far the parse has decided. */
enum view_kind { VIEW_TERMINAL, VIEW_WRAP, _VIEW_MAX };

struct skip {
        uint64_t start, end;
};

struct view {
        struct skip *skips;
        size_t n_skips, cap_skips;
        uint64_t frontier;        /* every skip before it is known; at it, one may be pending */
        uint64_t scanned;         /* the view's matches ending at or before it are found */
};

/* A stretch of the stream copied without its skips: buf[i] is stream byte orig(i). */
struct view_text {
        unsigned char *buf;       /* sodium memory, the window's size plus gram slack */
        size_t len;
        struct view_seg {
                size_t vstart;
                uint64_t ostart;
        } *segs;
        size_t n_segs, cap_segs;
};

struct redact_stream {
        const struct redactor *r;
        unsigned char *win;       /* sodium memory: it holds what may be a secret */
        size_t cap;
        uint64_t wstart;          /* stream offset of win[0] */
        size_t wlen;
        uint64_t out_pos;         /* everything before is decided: written or masked */
        bool mask_active;         /* a mask was written for [.., mask_end) */
        uint64_t mask_end;
        struct match *pending;    /* complete matches not yet written, any order */
        size_t n_pending, cap_pending;
        uint64_t leaks;
        /* Positions: the newlines before line_pos are counted lazily, when bytes leave the
         * window (compact) or a leak is reported: each byte once, 64 at a time. */
        uint64_t line_pos;
        uint64_t line;            /* 1 + the newlines before line_pos */
        uint64_t line_start;      /* offset of the byte after the last of them (0: none) */
        struct view views[_VIEW_MAX];
        struct view_text vt;
};

int redact_stream_new(const struct redactor *r, struct redact_stream **ret) {
        if (!r->compiled)
                return -EINVAL;
        struct redact_stream *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->r = r;
        /* room for a chunk, what a match may span before it, and a terminal sequence pending */
        s->cap = CHUNK + 2 * redactor_max_match_len(r) + 2 * STEP_MAX + OSC_MAX + 64;
        s->line = 1;
        *ret = s;
        return 0;
}

/* The window is allocated on the first byte: a step that prints nothing on stderr (most)
 * costs no locked memory for it. */
static int window_alloc(struct redact_stream *s) {
        s->win = sodium_malloc(s->cap + GRAM_MAX);   /* slack: gram loads may read past the end */
        if (!s->win)
                return -ENOMEM;
        memset(s->win, 0, s->cap + GRAM_MAX);
        return 0;
}

struct redact_stream *redact_stream_free(struct redact_stream *s) {
        if (!s)
                return NULL;
        if (s->win)
                sodium_free(s->win);
        if (s->vt.buf)
                sodium_free(s->vt.buf);
        free(s->vt.segs);
        for (size_t v = 0; v < _VIEW_MAX; v++)
                free(s->views[v].skips);
        free(s->pending);
        free(s);
        return NULL;
}

void redact_stream_reset(struct redact_stream *s) {
        if (s->win)
                sodium_memzero(s->win, s->cap + GRAM_MAX);
        s->wstart = s->out_pos = s->mask_end = s->leaks = 0;
        s->wlen = s->n_pending = 0;
        s->mask_active = false;
        s->line_pos = s->line_start = 0;
        s->line = 1;
        for (size_t v = 0; v < _VIEW_MAX; v++) {
                s->views[v].n_skips = 0;
                s->views[v].frontier = s->views[v].scanned = 0;
        }
        if (s->vt.buf)
                sodium_memzero(s->vt.buf, s->cap + GRAM_MAX);
}

uint64_t redact_stream_leak_count(const struct redact_stream *s) {
        return s->leaks;
}

static inline const unsigned char *at(const struct redact_stream *s, uint64_t abs) {
        return s->win + (abs - s->wstart);
}

/* The number of '\n' in p[0..n): 16 bytes compared at once, into byte lanes that are summed
 * before any can wrap. Every byte of a stream passes here once, beside the scan. */
typedef unsigned char bytes16 __attribute__((vector_size(16)));

static uint64_t count_newlines(const unsigned char *p, size_t n) {
        const bytes16 nl = {'\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n'};
        uint64_t c = 0;
        while (n >= 64) {
                /* 4 x 16 bytes a round, up to 4 per lane: 63 rounds cannot wrap a lane */
                size_t rounds = n / 64 < 63 ? n / 64 : 63;
                bytes16 lanes = {};
                for (size_t b = 0; b < rounds; b++, p += 64) {
                        bytes16 v0, v1, v2, v3;
                        memcpy(&v0, p, 16);
                        memcpy(&v1, p + 16, 16);
                        memcpy(&v2, p + 32, 16);
                        memcpy(&v3, p + 48, 16);
                        /* a match is all ones: -1 */
                        lanes -= (bytes16) (v0 == nl) + (bytes16) (v1 == nl) + (bytes16) (v2 == nl) + (bytes16) (v3 == nl);
                }
                n -= rounds * 64;
                for (unsigned i = 0; i < 16; i++)
                        c += lanes[i];
        }
        for (; n > 0; n--)
                c += *p++ == '\n';
        return c;
}

/* Counts the newlines of the window's bytes from line_pos up to `to` (monotonic: leaks are
 * reported in stream order and compaction only drops what is decided). */
static void lines_advance(struct redact_stream *s, uint64_t to) {
        if (to <= s->line_pos)
                return;
        const unsigned char *p = at(s, s->line_pos);
        size_t n = (size_t) (to - s->line_pos);
        const unsigned char *last = memrchr(p, '\n', n);
        if (last) {
                s->line += count_newlines(p, (size_t) (last - p) + 1);
                s->line_start = s->line_pos + (uint64_t) (last - p) + 1;
        }
        s->line_pos = to;
}

/* items with room for one more element past n (*cap of `size` bytes allocated, doubled from
 * 64 when full), or NULL: out of memory, items left as they were. */
static void *grow_one(void *items, size_t n, size_t *cap, size_t size) {
        if (n < *cap)
                return items;
        size_t c = *cap ? *cap * 2 : 64;
        void *p = reallocarray(items, c, size);
        if (p)
                *cap = c;
        return p;
}

static int pending_add(struct redact_stream *s, uint64_t start, uint64_t end, uint32_t pattern, uint8_t form) {
        struct match *m = grow_one(s->pending, s->n_pending, &s->cap_pending, sizeof(*m));
        if (!m)
                return -ENOMEM;
        s->pending = m;
        s->pending[s->n_pending++] = (struct match) { start, end, pattern, form };
        return 0;
}

/* Matches a flex pattern forward from text[0]: returns the text length of a complete match,
 * 0 if text cannot match, and -1 if text ended while it still could (a proper prefix). */
static ssize_t flex_forward(const unsigned char *pat, size_t plen, const unsigned char *text, size_t tlen) {
        size_t t = 0;
        for (size_t i = 0; i < plen; i++) {
                if (pat[i] == ' ') {
                        size_t run = 0;
                        while (t < tlen && is_ws(text[t]) && run <= FLEX_MAX_RUN)
                                t++, run++;
                        if (run > FLEX_MAX_RUN)
                                return 0;
                        if (t == tlen)
                                return -1;
                        if (run == 0)
                                return 0;
                        continue;
                }
                if (t == tlen)
                        return -1;
                if (text[t++] != pat[i])
                        return 0;
        }
        return (ssize_t) t;
}

/* A flex candidate: the anchor token starts at stream offset a. Walks back over the tokens
 * before it; returns the match start, or UINT64_MAX if the text around cannot match. */
static uint64_t flex_start(const struct redact_stream *s, const struct pattern *p, const unsigned char *pat, uint64_t a) {
        uint64_t pos = a;
        size_t i = p->anchor_off;            /* pattern index of the anchor's first byte */
        while (i > 0) {
                /* pattern[i - 1] is the ' ' before this token */
                size_t run = 0;
                while (pos > s->wstart && run <= FLEX_MAX_RUN && is_ws(*at(s, pos - 1)))
                        pos--, run++;
                if (run == 0 || run > FLEX_MAX_RUN)
                        return UINT64_MAX;
                i--;   /* skip the ' ' */
                size_t tok_end = i, tok_start = i;
                while (tok_start > 0 && pat[tok_start - 1] != ' ')
                        tok_start--;
                size_t len = tok_end - tok_start;
                if (pos < s->wstart + len || memcmp(at(s, pos - len), pat + tok_start, len) != 0)
                        return UINT64_MAX;
                pos -= len;
                i = tok_start;
        }
        return pos;
}

/* The first entry (+ 1) of the patterns registered under gram, 0 if none. */
static uint32_t gram_head(const struct gram_index *x, uint64_t gram) {
        size_t k = (size_t) (mix(gram) >> 20) & x->slot_mask;
        while (x->slots[k].head && x->slots[k].gram != gram)
                k = (k + 1) & x->slot_mask;
        return x->slots[k].head;
}

static int verify_candidates(struct redact_stream *s, const struct gram_index *x, uint64_t i, uint64_t gram,
                             uint64_t old_end) {
        const struct redactor *r = s->r;
        uint64_t wend = s->wstart + s->wlen;
        for (uint32_t e = gram_head(x, gram); e; e = x->entries[e - 1].next) {
                const struct gram_entry *en = &x->entries[e - 1];
                const struct pattern *p = &r->patterns[en->pattern];
                const unsigned char *pat = pattern_bytes(r, p);
                if (i < s->wstart + en->offset)
                        continue;
                uint64_t c = i - en->offset;   /* literal: match start; flex: anchor start */
                if (!p->flex) {
                        uint64_t end = c + p->len;
                        if (end > wend || end <= old_end || memcmp(at(s, c), pat, p->len) != 0)
                                continue;
                        int rr = pending_add(s, c, end, en->pattern, p->form);
                        if (rr < 0)
                                return rr;
                        continue;
                }
                if (c + p->anchor_len > wend || memcmp(at(s, c), pat + p->anchor_off, p->anchor_len) != 0)
                        continue;
                uint64_t start = flex_start(s, p, pat, c);
                if (start == UINT64_MAX)
                        continue;
                ssize_t len = flex_forward(pat, p->len, at(s, start), (size_t) (wend - start));
                if (len <= 0 || start + (uint64_t) len <= old_end)
                        continue;
                int rr = pending_add(s, start, start + (uint64_t) len, en->pattern, p->form);
                if (rr < 0)
                        return rr;
        }
        return 0;
}

/* Finds the complete matches that end in the bytes just added (after old_end). */
static int scan_index(struct redact_stream *s, const struct gram_index *x, uint64_t old_end) {
        const struct redactor *r = s->r;
        uint64_t wend = s->wstart + s->wlen;
        uint64_t from = old_end > r->max_text + x->step ? old_end - r->max_text - x->step : 0;
        if (from < s->wstart)
                from = s->wstart;
        from = (from + x->step - 1) / x->step * x->step;   /* sampled offsets are multiples of step */
        if (wend < x->gram)
                return 0;
        const uint64_t last = wend - x->gram;
        const unsigned step = x->step, shift = x->bitmap_shift;
        const uint64_t gmask = x->gram_mask;
        const uint64_t *bitmap = x->bitmap;
        const unsigned char *base = s->win - s->wstart;
        for (uint64_t i = from; i <= last; i += step) {
                uint64_t g = load64(base + i) & gmask;
                uint64_t h = mix(g) >> shift;
                if (__builtin_expect(bit_test(bitmap, h), 0)) {
                        int rr = verify_candidates(s, x, i, g, old_end);
                        if (rr < 0)
                                return rr;
                }
        }
        return 0;
}

static int scan(struct redact_stream *s, uint64_t old_end) {
        for (size_t i = 0; i < s->r->n_index; i++) {
                int k = scan_index(s, &s->r->index[i], old_end);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Which patterns a prefix test considers: all of them (the stream itself), the literal ones
 * (the terminal view), those of wrapped forms (the wrap view). */
enum pattern_filter { PATTERNS_ALL, PATTERNS_LITERAL, PATTERNS_WRAP };

/* Is text a proper prefix of some pattern? Returns that pattern's index (the lowest-index one
 * when want_lowest), or -1. */
static ssize_t proper_prefix_of(const struct redactor *r, const unsigned char *text, size_t m, bool want_lowest,
                                enum pattern_filter filter) {
        ssize_t best = -1;
        if (m < r->max_text && bit_test(r->prefix_bitmap, prefix_hash(text, m < 4 ? m : 4))) {
                /* lower bound among the sorted literal patterns */
                size_t lo = 0, hi = r->n_sorted;
                while (lo < hi) {
                        size_t mid = (lo + hi) / 2;
                        const struct pattern *p = &r->patterns[r->sorted[mid]];
                        size_t n = p->len < m ? p->len : m;
                        int c = memcmp(pattern_bytes(r, p), text, n);
                        if (c < 0 || (c == 0 && p->len < m))
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                for (size_t j = lo; j < r->n_sorted; j++) {
                        const struct pattern *p = &r->patterns[r->sorted[j]];
                        if (p->len < m || memcmp(pattern_bytes(r, p), text, m) != 0)
                                break;
                        if (p->len == m || (filter == PATTERNS_WRAP && !p->wrap))
                                continue;   /* equal: a complete match; or not searched there */
                        if (best < 0 || r->sorted[j] < (size_t) best)
                                best = r->sorted[j];
                        if (!want_lowest)
                                return best;
                }
        }
        for (size_t j = 0; filter == PATTERNS_ALL && j < r->n_flex; j++) {
                uint32_t pi = r->flex[j];
                const struct pattern *p = &r->patterns[pi];
                if (p->duplicate || (best >= 0 && pi > (size_t) best))
                        continue;
                if (flex_forward(pattern_bytes(r, p), p->len, text, m) == -1) {
                        best = pi;
                        if (!want_lowest)
                                return best;
                }
        }
        return best;
}

/* The smallest offset whose tail is a proper prefix of a pattern, or the window end. */
static uint64_t held_from(const struct redact_stream *s, ssize_t *ret_pattern, bool want_lowest) {
        const struct redactor *r = s->r;
        uint64_t wend = s->wstart + s->wlen;
        uint64_t k = wend > r->max_text ? wend - r->max_text + 1 : 0;
        if (k < s->wstart)
                k = s->wstart;
        for (; k < wend; k++) {
                ssize_t p = proper_prefix_of(r, at(s, k), (size_t) (wend - k), want_lowest, PATTERNS_ALL);
                if (p >= 0) {
                        if (ret_pattern)
                                *ret_pattern = p;
                        return k;
                }
        }
        return wend;
}

/* ---- views ---- */

/* The characters of base64, base64url and hex, looked up rather than compared: the wrap
 * view tests WRAP_RUN of them before every line feed of the stream. */
#define W1(c) [c] = 1
#define W10(c) W1(c), W1(c + 1), W1(c + 2), W1(c + 3), W1(c + 4), W1(c + 5), W1(c + 6), W1(c + 7), W1(c + 8), W1(c + 9)
#define W26(c) W10(c), W10(c + 10), W1(c + 20), W1(c + 21), W1(c + 22), W1(c + 23), W1(c + 24), W1(c + 25)
static const unsigned char wrap_chars[256] = {
        W26('A'), W26('a'), W10('0'), W1('+'), W1('/'), W1('='), W1('-'), W1('_'),
};
#undef W26
#undef W10
#undef W1

static inline bool is_wrap_char(unsigned char c) {
        return wrap_chars[c];
}

/* Whether the WRAP_RUN bytes before end are all encoding characters: every byte is looked
 * up, without a branch per byte (most lines end in a word, which fails somewhere). */
static inline bool wrap_run_before(const unsigned char *end) {
        unsigned all = 1;
        for (size_t i = 1; i <= WRAP_RUN; i++)
                all &= wrap_chars[end[-(ptrdiff_t) i]];
        return all;
}

/* What the terminal view skips at p[0] (ESC or '\r'), n bytes being there: its length, 0 if
 * p[0] begins no skip, -1 if the bytes so far may still begin one. ECMA-48's shapes: CSI
 * (ESC [ parameters intermediates final), OSC (ESC ] text, ended by BEL or ESC \), nF (ESC,
 * intermediates, final: charset selection) and the two-byte ones; a '\r' not followed by
 * '\n' is a progress line's rewrite. Nothing longer than its bound, so text is not eaten. */
static ssize_t terminal_skip(const unsigned char *p, size_t n) {
        size_t j;
        if (n < 2)
                return -1;
        if (p[0] == '\r')
                return p[1] != '\n';
        if (p[1] == '[') {
                for (j = 2; j < n && j < CSI_MAX && p[j] >= 0x30 && p[j] <= 0x3f; j++)
                        ;
                for (; j < n && j < CSI_MAX && p[j] >= 0x20 && p[j] <= 0x2f; j++)
                        ;
                if (j >= CSI_MAX)
                        return 0;
                if (j == n)
                        return -1;
                return p[j] >= 0x40 && p[j] <= 0x7e ? (ssize_t) j + 1 : 0;
        }
        if (p[1] == ']') {
                for (j = 2; j < n && j < OSC_MAX; j++) {
                        if (p[j] == 0x07)
                                return (ssize_t) j + 1;
                        if (p[j] == 0x1b) {
                                if (j + 2 > OSC_MAX)
                                        return 0;
                                if (j + 1 == n)
                                        return -1;
                                return p[j + 1] == '\\' ? (ssize_t) j + 2 : 0;
                        }
                        if (p[j] < 0x20 || p[j] == 0x7f)
                                return 0;
                }
                return j >= OSC_MAX ? 0 : -1;
        }
        if (p[1] >= 0x20 && p[1] <= 0x2f) {
                for (j = 1; j < n && j < NF_MAX && p[j] >= 0x20 && p[j] <= 0x2f; j++)
                        ;
                if (j >= NF_MAX)
                        return 0;
                if (j == n)
                        return -1;
                return p[j] >= 0x30 && p[j] <= 0x7e ? (ssize_t) j + 1 : 0;
        }
        return p[1] >= 0x30 && p[1] <= 0x7e ? 2 : 0;
}

/* What the wrap view skips at the line feed nl[0], `before` bytes being there before it and
 * `after` from it on: the skip's length from nl (the line feed and the next line's blanks),
 * *ret_back 1 when a '\r' before it belongs to the break too; 0 if the break is not inside
 * an encoded block, -1 if the bytes so far cannot tell (final: the stream has ended). */
static ssize_t wrap_skip(const unsigned char *nl, size_t before, size_t after, bool final, size_t *ret_back) {
        size_t back = before > 0 && nl[-1] == '\r';
        size_t j = 1;
        if (before < back + WRAP_RUN || !wrap_run_before(nl - back))
                return 0;
        while (j < after && j - 1 <= WRAP_INDENT && (nl[j] == ' ' || nl[j] == '\t'))
                j++;
        if (j - 1 > WRAP_INDENT)
                return 0;
        if (j == after)
                return -1;
        /* the next line goes on with the block: WRAP_RUN encoding characters, or fewer that
         * end the line (a block's last line is short), not a word that merely starts with some
         * (a log line's timestamp) */
        size_t run = 0;
        while (run < WRAP_RUN && j + run < after && is_wrap_char(nl[j + run]))
                run++;
        if (run == 0)
                return 0;
        if (run < WRAP_RUN) {
                if (j + run == after) {
                        if (!final)
                                return -1;
                } else if (nl[j + run] != '\n' && nl[j + run] != '\r')
                        return 0;
        }
        *ret_back = back;
        return (ssize_t) j;
}

static int view_add_skip(struct view *v, uint64_t start, uint64_t end) {
        struct skip *k = grow_one(v->skips, v->n_skips, &v->cap_skips, sizeof(*k));
        if (!k)
                return -ENOMEM;
        v->skips = k;
        v->skips[v->n_skips++] = (struct skip) { start, end };
        return 0;
}

/* The next offset >= from of byte c in the window, or its end. */
static uint64_t find_byte(const struct redact_stream *s, uint64_t from, int c) {
        uint64_t wend = s->wstart + s->wlen;
        const unsigned char *p = from < wend ? memchr(at(s, from), c, (size_t) (wend - from)) : NULL;
        return p ? s->wstart + (uint64_t) (p - s->win) : wend;
}

/* Extends the terminal view's skips over the bytes after its frontier; final: the stream
 * has ended, and what could still have begun a skip does not. */
static int terminal_parse(struct redact_stream *s, bool final) {
        struct view *v = &s->views[VIEW_TERMINAL];
        uint64_t wend = s->wstart + s->wlen, i = v->frontier;
        uint64_t esc = find_byte(s, i, 0x1b), cr = find_byte(s, i, '\r');
        for (;;) {
                uint64_t k = esc < cr ? esc : cr;
                if (k >= wend) {
                        i = wend;
                        break;
                }
                ssize_t len = terminal_skip(at(s, k), (size_t) (wend - k));
                if (len < 0 && !final) {
                        i = k;   /* pending: decided by the bytes to come */
                        break;
                }
                if (len > 0) {
                        int r = view_add_skip(v, k, k + (uint64_t) len);
                        if (r < 0)
                                return r;
                        i = k + (uint64_t) len;
                } else
                        i = k + 1;
                if (esc < i)
                        esc = find_byte(s, i, 0x1b);
                if (cr < i)
                        cr = find_byte(s, i, '\r');
        }
        v->frontier = i;
        return 0;
}

/* The same for the wrap view's line breaks. */
static int wrap_parse(struct redact_stream *s, bool final) {
        struct view *v = &s->views[VIEW_WRAP];
        uint64_t wend = s->wstart + s->wlen, i = v->frontier;
        for (;;) {
                uint64_t k = find_byte(s, i, '\n');
                if (k >= wend) {
                        /* a '\r' at the end may be the first half of a CRLF break: pending,
                         * like a line feed whose next line has not arrived */
                        i = !final && wend > i && *at(s, wend - 1) == '\r' ? wend - 1 : wend;
                        break;
                }
                size_t back = 0;
                ssize_t len = wrap_skip(at(s, k), (size_t) (k - s->wstart), (size_t) (wend - k), final, &back);
                if (len < 0 && !final) {
                        i = k > s->wstart && *at(s, k - 1) == '\r' ? k - 1 : k;
                        break;
                }
                if (len > 0) {
                        int r = view_add_skip(v, k - back, k + (uint64_t) len);
                        if (r < 0)
                                return r;
                        i = k + (uint64_t) len;
                } else
                        i = k + 1;
        }
        v->frontier = i;
        return 0;
}

/* The first skip of v that ends after offset a. */
static size_t view_first_skip(const struct view *v, uint64_t a) {
        size_t lo = 0, hi = v->n_skips;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (v->skips[mid].end <= a)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static int view_text_append(struct redact_stream *s, uint64_t from, uint64_t to) {
        struct view_text *vt = &s->vt;
        struct view_seg *g = grow_one(vt->segs, vt->n_segs, &vt->cap_segs, sizeof(*g));
        if (!g)
                return -ENOMEM;
        vt->segs = g;
        vt->segs[vt->n_segs++] = (struct view_seg) { .vstart = vt->len, .ostart = from };
        memcpy(vt->buf + vt->len, at(s, from), (size_t) (to - from));
        vt->len += (size_t) (to - from);
        return 0;
}

/* Copies the window's bytes [a, b) without v's skips into s->vt. */
static int view_build(struct redact_stream *s, const struct view *v, uint64_t a, uint64_t b) {
        struct view_text *vt = &s->vt;
        if (!vt->buf) {
                vt->buf = sodium_malloc(s->cap + GRAM_MAX);
                if (!vt->buf)
                        return -ENOMEM;
        }
        vt->len = vt->n_segs = 0;
        uint64_t pos = a;
        for (size_t k = view_first_skip(v, a); k < v->n_skips && v->skips[k].start < b; k++) {
                if (v->skips[k].start > pos) {
                        int r = view_text_append(s, pos, v->skips[k].start);
                        if (r < 0)
                                return r;
                }
                if (v->skips[k].end > pos)
                        pos = v->skips[k].end;
        }
        if (pos < b) {
                int r = view_text_append(s, pos, b);
                if (r < 0)
                        return r;
        }
        memset(vt->buf + vt->len, 0, GRAM_MAX);   /* what gram loads read past the end */
        return 0;
}

/* The stream offset of view byte i. */
static uint64_t view_orig(const struct view_text *vt, size_t i) {
        size_t lo = 0, hi = vt->n_segs;
        while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (vt->segs[mid].vstart <= i)
                        lo = mid;
                else
                        hi = mid;
        }
        return vt->segs[lo].ostart + (i - vt->segs[lo].vstart);
}

/* Finds the matches in s->vt that cross a skip and end after min_end. */
static int view_search(struct redact_stream *s, enum view_kind kind, uint64_t min_end) {
        const struct redactor *r = s->r;
        const struct view_text *vt = &s->vt;
        for (size_t xi = 0; xi < r->n_index; xi++) {
                const struct gram_index *x = &r->index[xi];
                for (size_t i = 0; i + x->gram <= vt->len; i += x->step) {
                        uint64_t g = load64(vt->buf + i) & x->gram_mask;
                        if (__builtin_expect(!bit_test(x->bitmap, mix(g) >> x->bitmap_shift), 1))
                                continue;
                        for (uint32_t e = gram_head(x, g); e; e = x->entries[e - 1].next) {
                                const struct gram_entry *en = &x->entries[e - 1];
                                const struct pattern *p = &r->patterns[en->pattern];
                                if (p->flex || (kind == VIEW_WRAP && !p->wrap) || i < en->offset)
                                        continue;
                                size_t c = i - en->offset;
                                if (c + p->len > vt->len || memcmp(vt->buf + c, pattern_bytes(r, p), p->len) != 0)
                                        continue;
                                uint64_t start = view_orig(vt, c), end = view_orig(vt, c + p->len - 1) + 1;
                                /* without a skip inside it is the stream's own match */
                                if (end - start == p->len || end - start > 2 * (uint64_t) p->len + VIEW_SLACK ||
                                    end <= min_end || end <= s->out_pos)
                                        continue;
                                int k = pending_add(s, start, end, en->pattern, p->form);
                                if (k < 0)
                                        return k;
                        }
                }
        }
        return 0;
}

/* Searches the view around the skips it gained since the last call, up to its frontier. */
static int view_scan(struct redact_stream *s, enum view_kind kind) {
        struct view *v = &s->views[kind];
        uint64_t span = s->r->view_span, to = v->frontier;
        uint64_t from = v->scanned > span ? v->scanned - span : 0;
        if (from < s->wstart)
                from = s->wstart;
        size_t k = view_first_skip(v, from);
        while (span > 0 && k < v->n_skips && v->skips[k].start < to) {
                uint64_t a = v->skips[k].start > span ? v->skips[k].start - span : 0;
                uint64_t b = v->skips[k].end + span;
                if (a < from)
                        a = from;
                for (k++; k < v->n_skips && v->skips[k].start < b + span && v->skips[k].start < to; k++)
                        b = v->skips[k].end + span;
                if (b > to)
                        b = to;
                int r = view_build(s, v, a, b);
                if (r < 0)
                        return r;
                r = view_search(s, kind, v->scanned);
                if (r < 0)
                        return r;
        }
        v->scanned = to;
        return 0;
}

/* The smallest offset from which the view's text up to its frontier is a proper prefix of a
 * pattern the view searches (the pattern in *ret_pattern, the lowest-index one when final),
 * or else the frontier: the bytes after it are not parsed yet, so what they join is not
 * known. The stream's own tail is held_from's. */
static uint64_t view_held_from(struct redact_stream *s, enum view_kind kind, bool final, ssize_t *ret_pattern) {
        const struct redactor *r = s->r;
        const struct view *v = &s->views[kind];
        uint64_t wend = s->wstart + s->wlen, f = v->frontier;
        uint64_t a = f > r->view_span ? f - r->view_span : 0;
        if (a < s->wstart)
                a = s->wstart;
        size_t k = view_first_skip(v, a);
        if (r->view_span == 0 || (f == wend && (k == v->n_skips || v->skips[k].start >= f)))
                return wend;   /* no skip in the tail: the stream's own tail */
        if (view_build(s, v, a, f) < 0)
                return a;      /* out of memory: hold rather than guess */
        const struct view_text *vt = &s->vt;
        size_t i = vt->len > r->longest_literal ? vt->len - r->longest_literal : 0;
        for (; i < vt->len; i++) {
                ssize_t p = proper_prefix_of(r, vt->buf + i, vt->len - i, final,
                                             kind == VIEW_TERMINAL ? PATTERNS_LITERAL : PATTERNS_WRAP);
                if (p >= 0) {
                        if (ret_pattern)
                                *ret_pattern = p;
                        return view_orig(vt, i);
                }
        }
        return f;   /* a sequence still open at the frontier may yet be skipped: hold it */
}

/* Parses and searches both views, then returns where the bytes still undecided begin: the
 * smallest of the stream's and the views' held offsets (*ret_pattern: the pattern of that
 * tail, the lowest-index one at equal offsets, when final). */
static int views_advance(struct redact_stream *s, bool final, uint64_t *ret_hold, ssize_t *ret_pattern,
                         int *ret_source) {
        int k = terminal_parse(s, final);
        if (k >= 0)
                k = wrap_parse(s, final);
        for (size_t v = 0; k >= 0 && v < _VIEW_MAX; v++)
                k = view_scan(s, (enum view_kind) v);
        if (k < 0)
                return k;
        ssize_t pattern = -1;
        int source = -1;
        uint64_t hold = held_from(s, &pattern, final);
        for (size_t v = 0; v < _VIEW_MAX; v++) {
                ssize_t vp = -1;
                uint64_t h = view_held_from(s, (enum view_kind) v, final, &vp);
                if (h < hold || (h == hold && vp >= 0 && (pattern < 0 || vp < pattern))) {
                        hold = h;
                        pattern = vp;
                        source = (int) v;
                }
        }
        *ret_hold = hold;
        if (ret_pattern)
                *ret_pattern = pattern;
        if (ret_source)
                *ret_source = source;
        return 0;
}

static int match_cmp(const void *a, const void *b) {
        const struct match *x = a, *y = b;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        if (x->end != y->end)
                return x->end > y->end ? -1 : 1;   /* longest first */
        return x->pattern < y->pattern ? -1 : x->pattern > y->pattern;
}

static int sink_write(const struct redact_sink *sink, const void *p, size_t n) {
        if (n == 0 || !sink || !sink->write)
                return 0;
        return sink->write(sink->userdata, p, n);
}

/* Writes out everything before `hold` that is decided: raw bytes, and one mask per merged
 * run of matches. */
static int emit(struct redact_stream *s, uint64_t hold, const struct redact_sink *sink) {
        const struct redactor *r = s->r;
        if (s->n_pending > 1)
                qsort(s->pending, s->n_pending, sizeof(*s->pending), match_cmp);
        size_t next = 0;
        int k;
        for (;;) {
                if (s->mask_active) {
                        while (next < s->n_pending && s->pending[next].start < s->mask_end) {
                                if (s->pending[next].end > s->mask_end)
                                        s->mask_end = s->pending[next].end;
                                next++;
                        }
                        s->out_pos = s->mask_end;   /* swallowed */
                        if (hold < s->mask_end)
                                break;   /* a prefix begun inside the mask may still extend it */
                        s->mask_active = false;
                }
                if (next < s->n_pending && s->pending[next].start < hold) {
                        struct match *m = &s->pending[next++];
                        /* a match reaching back before what was already written out should
                         * not happen (its prefix was held); if it does, what is left of it is
                         * masked and it is reported, rather than passed as if clean */
                        if (m->start < s->out_pos)
                                m->start = s->out_pos;
                        if ((k = sink_write(sink, at(s, s->out_pos), (size_t) (m->start - s->out_pos))) < 0)
                                return k;
                        uint32_t secret = r->patterns[m->pattern].secret;
                        const char *mask = r->masks[secret];
                        if ((k = sink_write(sink, mask, strlen(mask))) < 0)
                                return k;
                        s->leaks++;
                        lines_advance(s, m->start);
                        if (sink && sink->leak)
                                sink->leak(sink->userdata, &(struct redact_leak) {
                                        .name = r->names[secret], .form = m->form, .offset = m->start,
                                        .line = s->line, .col = m->start - s->line_start + 1 });
                        s->mask_active = true;
                        s->mask_end = m->end;
                        s->out_pos = m->start;
                        continue;
                }
                if (hold > s->out_pos) {
                        if ((k = sink_write(sink, at(s, s->out_pos), (size_t) (hold - s->out_pos))) < 0)
                                return k;
                        s->out_pos = hold;
                }
                break;
        }
        /* keep the matches not yet reached */
        if (next > 0) {
                memmove(s->pending, s->pending + next, (s->n_pending - next) * sizeof(*s->pending));
                s->n_pending -= next;
        }
        return 0;
}

/* Drops window bytes that are written out and too old to be part of a future match. */
static void compact(struct redact_stream *s) {
        const struct redactor *r = s->r;
        uint64_t wend = s->wstart + s->wlen;
        uint64_t keep = wend > r->max_text + r->max_step + GRAM_MAX ? wend - r->max_text - r->max_step - GRAM_MAX : 0;
        if (keep > s->out_pos)
                keep = s->out_pos;
        for (size_t v = 0; v < _VIEW_MAX; v++) {
                /* the next view search starts a span before where the last one ended */
                uint64_t from = s->views[v].scanned > r->view_span ? s->views[v].scanned - r->view_span : 0;
                if (keep > from)
                        keep = from;
        }
        if (keep <= s->wstart)
                return;
        for (size_t v = 0; v < _VIEW_MAX; v++) {
                struct view *w = &s->views[v];
                size_t gone = view_first_skip(w, keep);
                if (gone == 0)
                        continue;   /* also a view with no skips yet (w->skips NULL) */
                memmove(w->skips, w->skips + gone, (w->n_skips - gone) * sizeof(*w->skips));
                w->n_skips -= gone;
        }
        lines_advance(s, keep);
        size_t drop = (size_t) (keep - s->wstart);
        memmove(s->win, s->win + drop, s->wlen - drop);
        s->wlen -= drop;
        s->wstart = keep;
}

int redact_stream_feed(struct redact_stream *s, const void *p, size_t n, const struct redact_sink *sink) {
        const unsigned char *in = p;
        if (n > 0 && !s->win) {
                int k = window_alloc(s);
                if (k < 0)
                        return k;
        }
        while (n > 0) {
                compact(s);
                size_t room = s->cap - s->wlen;
                size_t take = n < room ? n : room;
                if (take > CHUNK)
                        take = CHUNK;
                if (take == 0)
                        return -ENOBUFS;   /* cannot happen: held bytes are bounded by max_text */
                uint64_t old_end = s->wstart + s->wlen;
                memcpy(s->win + s->wlen, in, take);
                s->wlen += take;
                in += take;
                n -= take;
                int k = scan(s, old_end);
                if (k < 0)
                        return k;
                uint64_t hold;
                k = views_advance(s, false, &hold, NULL, NULL);
                if (k < 0)
                        return k;
                k = emit(s, hold, sink);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* The bytes of [a, b) that view `source` keeps (source -1: the stream itself). */
static uint64_t view_length(const struct redact_stream *s, int source, uint64_t a, uint64_t b) {
        uint64_t n = b - a;
        if (source < 0)
                return n;
        const struct view *v = &s->views[source];
        for (size_t k = view_first_skip(v, a); k < v->n_skips && v->skips[k].start < b; k++) {
                uint64_t from = v->skips[k].start > a ? v->skips[k].start : a;
                uint64_t to = v->skips[k].end < b ? v->skips[k].end : b;
                n -= to - from;
        }
        return n;
}

int redact_stream_finish(struct redact_stream *s, const struct redact_sink *sink) {
        if (!s->win)
                return 0;   /* nothing was ever fed */
        ssize_t pattern = -1;
        int source;
        uint64_t wend = s->wstart + s->wlen, k;
        int rv = views_advance(s, true, &k, &pattern, &source);
        if (rv < 0)
                return rv;
        /* min_len counts the prefix's own characters: in a view, not the skipped text */
        if (k < wend && pattern >= 0 && view_length(s, source, k, wend) >= s->r->min_len) {
                int rr = pending_add(s, k, wend, (uint32_t) pattern, FORM_PARTIAL);
                if (rr < 0)
                        return rr;
        }
        int rr = emit(s, wend, sink);
        if (rr < 0)
                return rr;
        s->mask_active = false;
        return 0;
}
