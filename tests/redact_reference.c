/* The naive reference redactor (see redact_reference.h). Written for obviousness, not speed. */
#include "redact_reference.h"

static bool ws(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

struct add_ctx {
        struct ref_set *set;
        size_t secret;
};

static int collect(void *userdata, enum redact_form form, const unsigned char *p, size_t n, bool flex) {
        struct add_ctx *c = userdata;
        struct ref_set *set = c->set;
        if (n < set->min_len)
                return 0;
        if (flex) {
                /* the whitespace form needs one token long enough to anchor on */
                size_t longest = 0, cur = 0;
                for (size_t i = 0; i < n; i++) {
                        cur = p[i] == ' ' ? 0 : cur + 1;
                        if (cur > longest)
                                longest = cur;
                }
                if (longest < REF_FLEX_MIN_ANCHOR)
                        return 0;
        }
        for (size_t i = 0; i < set->n; i++)
                if (set->p[i].len == n && set->p[i].flex == flex && memcmp(set->p[i].bytes, p, n) == 0)
                        return 0;   /* the first one added wins */
        set->p = realloc(set->p, (set->n + 1) * sizeof(*set->p));
        unsigned char *b = malloc(n);
        memcpy(b, p, n);
        set->p[set->n++] = (struct ref_pattern) { b, n, c->secret, form, flex };
        return 0;
}

int ref_set_add(struct ref_set *set, const char *name, const char *mask, const unsigned char *value, size_t len) {
        if (len < set->min_len)
                return 0;
        set->names = realloc(set->names, (set->n_secrets + 1) * sizeof(char *));
        set->masks = realloc(set->masks, (set->n_secrets + 1) * sizeof(char *));
        set->names[set->n_secrets] = strdup(name);
        set->masks[set->n_secrets] = strdup(mask);
        struct add_ctx c = { set, set->n_secrets++ };
        return redact_forms(value, len, set->min_len, collect, &c);
}

/* 0: no match; -1: text ended while it could still match; else the matched length. */
static long flex_match(const struct ref_pattern *p, const unsigned char *t, size_t n) {
        size_t ti = 0;
        for (size_t i = 0; i < p->len; i++) {
                if (p->bytes[i] != ' ') {
                        if (ti == n)
                                return -1;
                        if (t[ti] != p->bytes[i])
                                return 0;
                        ti++;
                        continue;
                }
                size_t run = 0;
                while (ti < n && ws(t[ti])) {
                        ti++;
                        run++;
                }
                if (run > REF_FLEX_MAX_RUN)
                        return 0;
                if (ti == n)
                        return -1;
                if (run == 0)
                        return 0;
        }
        return (long) ti;
}

struct interval {
        size_t start, end, pattern;
        enum redact_form form;
};

/* ---- the match modes, from the page's rules ---- */

static bool wraps(enum redact_form f) {
        return f == FORM_BASE64 || f == FORM_BASE64URL || f == FORM_HEX_LOWER || f == FORM_HEX_UPPER ||
               f == FORM_BASE64_BASE64 || f == FORM_BASE64_JSON;
}

static bool wrap_char(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("+/=-_", c);
}

static bool in(unsigned char c, unsigned char lo, unsigned char hi) {
        return c >= lo && c <= hi;
}

/* The length of the terminal sequence at t[i] (all of it in t), or 0. */
static size_t terminal_len(const unsigned char *t, size_t n, size_t i) {
        if (t[i] == '\r')
                return i + 1 < n && t[i + 1] != '\n';
        if (t[i] != 0x1b || i + 1 >= n)
                return 0;
        size_t j;
        unsigned char c = t[i + 1];
        if (c == '[') {
                for (j = i + 2; j < n && in(t[j], 0x30, 0x3f); j++)
                        ;
                for (; j < n && in(t[j], 0x20, 0x2f); j++)
                        ;
                return j < n && in(t[j], 0x40, 0x7e) && j + 1 - i <= REF_CSI_MAX ? j + 1 - i : 0;
        }
        if (c == ']') {
                for (j = i + 2; j < n && t[j] != 0x07 && t[j] != 0x1b && t[j] >= 0x20 && t[j] != 0x7f; j++)
                        ;
                if (j < n && t[j] == 0x07 && j + 1 - i <= REF_OSC_MAX)
                        return j + 1 - i;
                if (j + 1 < n && t[j] == 0x1b && t[j + 1] == '\\' && j + 2 - i <= REF_OSC_MAX)
                        return j + 2 - i;
                return 0;
        }
        if (in(c, 0x20, 0x2f)) {
                for (j = i + 1; j < n && in(t[j], 0x20, 0x2f); j++)
                        ;
                return j < n && in(t[j], 0x30, 0x7e) && j + 1 - i <= REF_NF_MAX ? j + 1 - i : 0;
        }
        return in(c, 0x30, 0x7e) ? 2 : 0;
}

/* skip[i]: byte i is not in the view. Terminal sequences are read from the start of the
 * text on; a line break is skipped when 16 encoding characters end the line before it and,
 * after at most 16 blanks, the next begins with 16 or is nothing but encoding characters. */
static void view_skips(const unsigned char *t, size_t n, bool wrap, bool *skip) {
        memset(skip, 0, n);
        for (size_t i = 0; i < n; i++) {
                if (!wrap) {
                        size_t l = terminal_len(t, n, i);
                        if (l > 0) {
                                memset(skip + i, 1, l);
                                i += l - 1;
                        }
                        continue;
                }
                if (t[i] != '\n')
                        continue;
                size_t b = i > 0 && t[i - 1] == '\r' ? i - 1 : i, run = 0, blanks = 0;
                while (run < b && wrap_char(t[b - run - 1]))
                        run++;
                while (i + 1 + blanks < n && (t[i + 1 + blanks] == ' ' || t[i + 1 + blanks] == '\t'))
                        blanks++;
                size_t j = i + 1 + blanks, next = 0;
                while (j + next < n && next < REF_WRAP_RUN && wrap_char(t[j + next]))
                        next++;
                bool goes_on = next >= REF_WRAP_RUN ||
                               (next > 0 && (j + next == n || t[j + next] == '\n' || t[j + next] == '\r'));
                if (run >= REF_WRAP_RUN && blanks <= REF_WRAP_INDENT && goes_on)
                        memset(skip + b, 1, j - b);
        }
}

struct ref_view {
        unsigned char *text;
        size_t *orig, n;
        size_t *at;               /* at[i]: the view index of stream byte i, or SIZE_MAX */
};

static void view_make(const unsigned char *t, size_t n, bool wrap, struct ref_view *v) {
        bool *skip = malloc(n + 1);
        view_skips(t, n, wrap, skip);
        v->text = malloc(n + 1);
        v->orig = malloc((n + 1) * sizeof(size_t));
        v->at = malloc((n + 1) * sizeof(size_t));
        v->n = 0;
        for (size_t i = 0; i < n; i++) {
                v->at[i] = skip[i] ? SIZE_MAX : v->n;
                if (!skip[i]) {
                        v->text[v->n] = t[i];
                        v->orig[v->n++] = i;
                }
        }
        free(skip);
}

static void view_done(struct ref_view *v) {
        free(v->text);
        free(v->orig);
        free(v->at);
}

static bool view_searches(const struct ref_pattern *p, bool wrap) {
        return !p->flex && (!wrap || wraps(p->form));
}

static int interval_cmp(const void *a, const void *b) {
        const struct interval *x = a, *y = b;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        if (x->end != y->end)
                return x->end > y->end ? -1 : 1;
        return x->pattern < y->pattern ? -1 : x->pattern > y->pattern;
}

unsigned char *ref_redact(const struct ref_set *set, const unsigned char *text, size_t n, size_t *ret_len,
                          struct ref_leak **ret_leaks, size_t *ret_n_leaks) {
        struct interval *iv = NULL;
        size_t n_iv = 0;
        struct ref_view views[2];
        size_t span = 0;
        for (size_t j = 0; j < set->n; j++)
                if (!set->p[j].flex && 2 * set->p[j].len + REF_VIEW_SLACK > span)
                        span = 2 * set->p[j].len + REF_VIEW_SLACK;
        for (size_t w = 0; w < 2; w++)
                view_make(text, n, w == 1, &views[w]);
        /* in a view: a match spanning at most twice its length and the slack */
        for (size_t w = 0; w < 2; w++)
                for (size_t j = 0; j < set->n; j++) {
                        const struct ref_pattern *p = &set->p[j];
                        const struct ref_view *v = &views[w];
                        if (!view_searches(p, w == 1))
                                continue;
                        for (size_t s = 0; s + p->len <= v->n; s++) {
                                if (memcmp(v->text + s, p->bytes, p->len) != 0)
                                        continue;
                                size_t start = v->orig[s], end = v->orig[s + p->len - 1] + 1;
                                if (end - start > 2 * p->len + REF_VIEW_SLACK)
                                        continue;
                                iv = realloc(iv, (n_iv + 1) * sizeof(*iv));
                                iv[n_iv++] = (struct interval) { start, end, j, p->form };
                        }
                }
        for (size_t j = 0; j < set->n; j++) {
                const struct ref_pattern *p = &set->p[j];
                for (size_t s = 0; s < n; s++) {
                        long len = 0;
                        if (p->flex)
                                len = flex_match(p, text + s, n - s);
                        else if (p->len <= n - s && memcmp(text + s, p->bytes, p->len) == 0)
                                len = (long) p->len;
                        if (len > 0) {
                                iv = realloc(iv, (n_iv + 1) * sizeof(*iv));
                                iv[n_iv++] = (struct interval) { s, s + (size_t) len, j, p->form };
                        }
                }
        }
        /* end of stream: the longest tail that is a proper prefix of a pattern */
        for (size_t k = 0; k < n; k++) {
                size_t found = SIZE_MAX, found_len = n - k;   /* in the text it was found in */
                for (size_t j = 0; j < set->n && found == SIZE_MAX; j++) {
                        const struct ref_pattern *p = &set->p[j];
                        if (p->flex ? flex_match(p, text + k, n - k) == -1
                                    : p->len > n - k && memcmp(p->bytes, text + k, n - k) == 0)
                                found = j;
                        /* or the view's text from k on, within a view match's span */
                        for (size_t w = 0; w < 2 && found == SIZE_MAX && n - k <= span; w++) {
                                const struct ref_view *v = &views[w];
                                size_t vi = v->at[k];
                                if (vi != SIZE_MAX && view_searches(p, w == 1) && p->len > v->n - vi &&
                                    memcmp(p->bytes, v->text + vi, v->n - vi) == 0) {
                                        found = j;
                                        found_len = v->n - vi;
                                }
                        }
                }
                if (found != SIZE_MAX) {
                        /* min_len counts the prefix's own characters, not skipped text */
                        if (found_len >= set->min_len) {
                                iv = realloc(iv, (n_iv + 1) * sizeof(*iv));
                                iv[n_iv++] = (struct interval) { k, n, found, FORM_PARTIAL };
                        }
                        break;
                }
        }
        if (n_iv > 1)
                qsort(iv, n_iv, sizeof(*iv), interval_cmp);

        size_t cap = n + 64, len = 0;
        unsigned char *out = malloc(cap);
        struct ref_leak *leaks = NULL;
        size_t n_leaks = 0, pos = 0;
        for (size_t i = 0; i < n_iv;) {
                size_t start = iv[i].start, end = iv[i].end;
                size_t secret = set->p[iv[i].pattern].secret;
                leaks = realloc(leaks, (n_leaks + 1) * sizeof(*leaks));
                leaks[n_leaks++] = (struct ref_leak) { secret, iv[i].form, start };
                for (i++; i < n_iv && iv[i].start < end; i++)
                        if (iv[i].end > end)
                                end = iv[i].end;
                const char *mask = set->masks[secret];
                size_t need = len + (start - pos) + strlen(mask);
                if (need > cap) {
                        cap = need * 2;
                        out = realloc(out, cap);
                }
                memcpy(out + len, text + pos, start - pos);
                len += start - pos;
                memcpy(out + len, mask, strlen(mask));
                len += strlen(mask);
                pos = end;
        }
        if (len + (n - pos) > cap)
                out = realloc(out, len + (n - pos) + 1);
        memcpy(out + len, text + pos, n - pos);
        len += n - pos;
        free(iv);
        for (size_t w = 0; w < 2; w++)
                view_done(&views[w]);
        *ret_len = len;
        *ret_leaks = leaks;
        *ret_n_leaks = n_leaks;
        return out;
}

void ref_set_done(struct ref_set *set) {
        for (size_t i = 0; i < set->n; i++)
                free(set->p[i].bytes);
        free(set->p);
        for (size_t i = 0; i < set->n_secrets; i++) {
                free(set->names[i]);
                free(set->masks[i]);
        }
        free(set->names);
        free(set->masks);
        *set = (struct ref_set) {};
}

static int forms_collect(void *userdata, enum redact_form form, const unsigned char *p, size_t n, bool flex) {
        struct ref_forms *f = userdata;
        if (f->count == REF_FORMS_MAX)
                return 0;
        f->p[f->count] = malloc(n ? n : 1);
        if (!f->p[f->count])
                abort();
        memcpy(f->p[f->count], p, n);
        f->n[f->count] = n;
        f->flex[f->count++] = flex;
        return 0;
}

void ref_forms_of(const unsigned char *value, size_t len, size_t min_len, struct ref_forms *f) {
        *f = (struct ref_forms) {};
        if (redact_forms(value, len, min_len, forms_collect, f) < 0)
                abort();
}

void ref_forms_done(struct ref_forms *f) {
        for (size_t i = 0; i < f->count; i++)
                free(f->p[i]);
        f->count = 0;
}
