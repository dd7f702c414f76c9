/* The dotenv backend: KEY=value lines of a local .env file, read with docker compose's rules
 * (docs/manifest.md), for local development that matches CI; the file is checked like the
 * store's key file (yours, not a link, nobody else may read it). Values live in secure buffers. */
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "backend-private.h"

#define DOTENV_MAX_BYTES (1024 * 1024)
#define INTERPOLATION_DEPTH 8

struct dotenv {
        struct dotenv_pair *pairs;
        size_t n;
};

struct parser {
        const char *p, *end;
        unsigned line;
        const char *path;
        struct dotenv *d;
        char **ret_why;
};

void dotenv_pairs_free(struct dotenv_pair *pairs, size_t n) {
        for (size_t i = 0; pairs && i < n; i++) {
                free(pairs[i].key);
                secret_free(pairs[i].value);
        }
        free(pairs);
}

static int syntax(struct parser *ps, const char *what) {
        return backend_fail(ps->ret_why, -EINVAL, "%s:%u: %s", ps->path, ps->line, what);
}

/* The value of NAME for interpolation: the file's own earlier definition, else the
 * environment's; NULL if neither has it. */
static const char *lookup(const struct parser *ps, const char *name, size_t len, size_t *ret_len) {
        for (size_t i = ps->d->n; i > 0; i--) {
                const struct dotenv_pair *e = &ps->d->pairs[i - 1];
                if (strlen(e->key) == len && memcmp(e->key, name, len) == 0) {
                        *ret_len = secret_len(e->value);
                        return (const char *) secret_data(e->value);
                }
        }
        char key[256];
        if (len >= sizeof key)
                return NULL;
        memcpy(key, name, len);
        key[len] = '\0';
        const char *v = getenv(key);
        if (v)
                *ret_len = strlen(v);
        return v;
}

static bool name_start(int c) {
        return isalpha(c) || c == '_';
}

static bool name_char(int c) {
        return isalnum(c) || c == '_';
}

static int expand(struct parser *ps, const char *p, const char *end, struct secret *out, int depth);

/* ${NAME[:-|-|:?|?|:+|+WORD]} at p (just past "${"); *ret_end past its '}'. */
static int expand_braced(struct parser *ps, const char *p, const char *end, struct secret *out, int depth,
                         const char **ret_end) {
        const char *name = p;
        while (p < end && name_char((unsigned char) *p))
                p++;
        size_t name_len = (size_t) (p - name);
        if (name_len == 0 || !name_start((unsigned char) *name))
                return syntax(ps, "'${' must be followed by a variable name");
        bool colon = p < end && *p == ':';
        if (colon)
                p++;
        char op = p < end && strchr("-?+", *p) ? *p++ : '\0';
        if (colon && !op)
                return syntax(ps, "expected :-, :? or :+ after a variable name in ${...}");
        const char *word = p;
        int nest = 1;
        for (; p < end; p++) {
                if (*p == '{' && p > word && p[-1] == '$')
                        nest++;
                else if (*p == '}' && --nest == 0)
                        break;
        }
        if (p >= end)
                return syntax(ps, "unterminated ${...}");
        if (!op && p != word)
                return syntax(ps, "unexpected text after the variable name in ${...}");
        *ret_end = p + 1;
        size_t len = 0;
        const char *v = lookup(ps, name, name_len, &len);
        bool set = v != NULL, usable = set && (!colon || len > 0);
        switch (op) {
        case '-':
                return usable ? secret_append(out, v, len) : expand(ps, word, p, out, depth + 1);
        case '?':
                if (!usable)
                        return backend_fail(ps->ret_why, -EINVAL, "%s:%u: ${%.*s%s?...}: %.*s is %s", ps->path, ps->line,
                                            (int) name_len, name, colon ? ":" : "", (int) name_len, name,
                                            set ? "empty" : "not set");
                return secret_append(out, v, len);
        case '+':
                return usable ? expand(ps, word, p, out, depth + 1) : 0;
        default:
                return set ? secret_append(out, v, len) : 0;
        }
}

/* Copies [p, end) to out with $NAME and ${...} replaced (compose's interpolation). */
static int expand(struct parser *ps, const char *p, const char *end, struct secret *out, int depth) {
        if (depth > INTERPOLATION_DEPTH)
                return syntax(ps, "interpolation nested too deeply");
        while (p < end) {
                const char *dollar = memchr(p, '$', (size_t) (end - p));
                int k = secret_append(out, p, (size_t) ((dollar ? dollar : end) - p));
                if (k < 0 || !dollar)
                        return k;
                p = dollar + 1;
                if (p < end && *p == '{') {
                        if ((k = expand_braced(ps, p + 1, end, out, depth, &p)) < 0)
                                return k;
                } else if (p < end && name_start((unsigned char) *p)) {
                        const char *name = p;
                        while (p < end && name_char((unsigned char) *p))
                                p++;
                        size_t len = 0;
                        const char *v = lookup(ps, name, (size_t) (p - name), &len);
                        if (v && (k = secret_append(out, v, len)) < 0)
                                return k;
                } else if ((k = secret_append(out, "$", 1)) < 0)
                        return k;   /* a '$' that starts no name stays itself */
        }
        return 0;
}

/* A quoted value from just past its opening quote: single quotes literal but for \', double
 * quotes with \n \r \t \\ \" \$ and interpolation; either may span lines. */
static int quoted_value(struct parser *ps, char quote, struct secret *out) {
        _cleanup_secret_ struct secret *raw = NULL;
        int k = secret_new(64, &raw);
        if (k < 0)
                return k;
        for (;;) {
                if (ps->p >= ps->end)
                        return syntax(ps, quote == '"' ? "unterminated double-quoted value" : "unterminated single-quoted value");
                char c = *ps->p++;
                if (c == quote)
                        break;
                if (c == '\n')
                        ps->line++;
                if (c == '\\' && ps->p < ps->end) {
                        char n = *ps->p;
                        const char *esc = quote == '\'' ? (n == '\'' ? "'" : NULL)
                                          : n == 'n' ? "\n" : n == 'r' ? "\r" : n == 't' ? "\t" : n == '\\' ? "\\"
                                          : n == '"' ? "\"" : NULL;
                        if (esc) {
                                ps->p++;
                                k = secret_append(quote == '"' ? raw : out, esc, 1);
                        } else if (quote == '"' && n == '$') {
                                /* kept as a marker byte pair that expand() cannot read as a '$' */
                                ps->p++;
                                k = secret_append(raw, "\\$", 2);
                        } else
                                k = secret_append(quote == '"' ? raw : out, &c, 1);
                } else
                        k = secret_append(quote == '"' ? raw : out, &c, 1);
                if (k < 0)
                        return k;
        }
        if (quote == '\'')
                return 0;
        /* interpolate, one run between escaped dollars at a time */
        const char *p = (const char *) secret_data(raw), *end = p + secret_len(raw);
        while (p < end) {
                const char *esc = memmem(p, (size_t) (end - p), "\\$", 2);
                if ((k = expand(ps, p, esc ? esc : end, out, 0)) < 0)
                        return k;
                if (!esc)
                        break;
                if ((k = secret_append(out, "$", 1)) < 0)
                        return k;
                p = esc + 2;
        }
        return 0;
}

/* An unquoted value: to the end of the line, a '#' after whitespace starting a comment,
 * surrounding whitespace dropped, interpolated. */
static int plain_value(struct parser *ps, struct secret *out) {
        const char *start = ps->p, *stop = ps->p;
        while (stop < ps->end && *stop != '\n' && !(*stop == '#' && stop > start && isblank((unsigned char) stop[-1])))
                stop++;
        const char *last = stop;
        while (last > start && isspace((unsigned char) last[-1]))
                last--;
        ps->p = stop;
        return expand(ps, start, last, out, 0);
}

/* After a value: blanks, then a comment or the end of the line. */
static int line_end(struct parser *ps) {
        while (ps->p < ps->end && isblank((unsigned char) *ps->p))
                ps->p++;
        if (ps->p < ps->end && *ps->p == '#')
                while (ps->p < ps->end && *ps->p != '\n')
                        ps->p++;
        if (ps->p < ps->end && *ps->p != '\n' && *ps->p != '\r')
                return syntax(ps, "unexpected text after the closing quote");
        return 0;
}

static int add_pair(struct parser *ps, const char *key, size_t key_len, struct secret *value) {
        struct dotenv_pair *t = realloc(ps->d->pairs, (ps->d->n + 1) * sizeof(*t));
        if (!t)
                return -ENOMEM;
        ps->d->pairs = t;
        char *k = strndup(key, key_len);
        if (!k)
                return -ENOMEM;
        t[ps->d->n++] = (struct dotenv_pair) { .key = k, .value = value };   /* takes ownership of value */
        return 0;
}

static int parse_line(struct parser *ps) {
        while (ps->p < ps->end && isblank((unsigned char) *ps->p))
                ps->p++;
        if (ps->p >= ps->end || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '#') {
                while (ps->p < ps->end && *ps->p != '\n')
                        ps->p++;
                return 0;
        }
        if ((size_t) (ps->end - ps->p) > 7 && memcmp(ps->p, "export", 6) == 0 && isblank((unsigned char) ps->p[6]))
                for (ps->p += 6; ps->p < ps->end && isblank((unsigned char) *ps->p); ps->p++)
                        ;
        const char *key = ps->p;
        while (ps->p < ps->end && (name_char((unsigned char) *ps->p) || *ps->p == '.' || *ps->p == '-'))
                ps->p++;
        size_t key_len = (size_t) (ps->p - key);
        while (ps->p < ps->end && isblank((unsigned char) *ps->p))
                ps->p++;
        if (key_len == 0 || !name_start((unsigned char) *key) || ps->p >= ps->end || *ps->p != '=')
                return syntax(ps, "expected KEY=value (a KEY of letters, digits, _, . and -)");
        ps->p++;
        while (ps->p < ps->end && isblank((unsigned char) *ps->p))
                ps->p++;
        _cleanup_secret_ struct secret *value = NULL;
        int k = secret_new(64, &value);
        if (k < 0)
                return k;
        if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\'')) {
                char quote = *ps->p++;
                if ((k = quoted_value(ps, quote, value)) < 0 || (k = line_end(ps)) < 0)
                        return k;
        } else if ((k = plain_value(ps, value)) < 0)
                return k;
        if ((k = add_pair(ps, key, key_len, value)) < 0)
                return k;
        value = NULL;
        return 0;
}

static int dotenv_parse(const char *path, const char *text, size_t len, struct dotenv *d, char **ret_why) {
        struct parser ps = { .p = text, .end = text + len, .line = 1, .path = path, .d = d, .ret_why = ret_why };
        while (ps.p < ps.end) {
                int k = parse_line(&ps);
                if (k < 0)
                        return k;
                if (ps.p < ps.end && *ps.p == '\r')
                        ps.p++;
                if (ps.p < ps.end && *ps.p == '\n') {
                        ps.p++;
                        ps.line++;
                }
        }
        return 0;
}

int dotenv_load(const char *path, struct dotenv_pair **ret, size_t *ret_n, char **ret_why) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0) {
                int r = -errno;
                return backend_fail(ret_why, r, "cannot open %s: %s", path, strerror(-r));
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return backend_fail(ret_why, -EINVAL, "%s is not a regular file", path);
        if (st.st_uid != geteuid())
                return backend_fail(ret_why, -EPERM, "%s is not owned by you (uid %u)", path, (unsigned) st.st_uid);
        if (st.st_mode & 077)
                return backend_fail(ret_why, -EPERM, "%s is readable by others (mode %04o); chmod 600 it", path,
                                    (unsigned) (st.st_mode & 07777));
        _cleanup_secret_ struct secret *text = NULL;
        int r = secret_new(st.st_size > 0 ? (size_t) st.st_size : 64, &text);
        if (r < 0)
                return r;
        if ((r = secret_read_fd(text, fd, DOTENV_MAX_BYTES)) < 0)
                return backend_fail(ret_why, r, "cannot read %s: %s", path, strerror(-r));
        struct dotenv d = {};
        r = dotenv_parse(path, (const char *) secret_data(text), secret_len(text), &d, ret_why);
        if (r < 0) {
                dotenv_pairs_free(d.pairs, d.n);
                return r;
        }
        *ret = d.pairs;
        *ret_n = d.n;
        return 0;
}

static int dotenv_open(struct backend *b, char **ret_why) {
        if (!b->path)
                return backend_fail(ret_why, -EINVAL, "backend '%s' (dotenv) has no path", b->name);
        struct dotenv *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        b->data = d;
        int r = dotenv_load(b->path, &d->pairs, &d->n, ret_why);
        if (r < 0)
                return backend_fail(ret_why, r, "backend '%s' (dotenv): %s", b->name, ret_why && *ret_why ? *ret_why : strerror(-r));
        return 0;
}

static int dotenv_fetch(struct backend *b, const struct secret_ref *ref, struct secret **ret_value,
                        struct secret_meta *ret_meta, char **ret_why) {
        const struct dotenv *d = b->data;
        if (ref->field)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (dotenv) has no fields ('#%s')",
                                    ref->secret_name, b->name, ref->field);
        for (size_t i = d->n; i > 0; i--) {   /* the last definition wins, as in compose */
                const struct dotenv_pair *e = &d->pairs[i - 1];
                if (!streq(e->key, ref->path))
                        continue;
                if (secret_len(e->value) == 0)
                        return backend_fail(ret_why, -ENOENT, "secret %s: %s is empty in %s (backend '%s')",
                                            ref->secret_name, ref->path, b->path, b->name);
                return secret_from_bytes(secret_data(e->value), secret_len(e->value), ret_value);
        }
        return backend_fail(ret_why, -ENOENT, "secret %s: %s has no %s= line (backend '%s')", ref->secret_name, b->path,
                            ref->path, b->name);
}

static void dotenv_close(struct backend *b) {
        struct dotenv *d = b->data;
        if (d)
                dotenv_pairs_free(d->pairs, d->n);
        free(d);
        b->data = NULL;
}

const struct backend_ops dotenv_backend_ops = {
        .open = dotenv_open,
        .fetch = dotenv_fetch,
        .close = dotenv_close,
};
