/* The manifest loader: secrets.yaml (schema v1) is parsed with libyaml's event API into a small
 * node tree that keeps every position, then validated into struct manifest as SR0xx findings. */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "manifest.h"

#define MAX_DEPTH 64          /* a manifest needs about six levels; deeper is an attack or a mistake */
#define SHOWN_MAX 48          /* longest value echoed in a message */

/* ---- the node tree ---- */

enum node_kind { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING };

struct node {
        enum node_kind kind;
        struct mf_pos pos;
        uint64_t size;            /* nodes in the subtree with aliases expanded; saturates */
        /* scalar */
        char *value;
        size_t length;            /* may differ from strlen(value) if the YAML had "\0" */
        bool plain;               /* plain style and no !!str tag: may be null, bool, int */
        /* sequence: items; mapping: key, value, key, value, ... */
        struct node **items;
        size_t n_items, n_allocated;
};

struct anchor {
        char *name;
        struct node *node;
};

/* Owns every node, so aliases can share nodes without reference counts. Anchors are an
 * open-addressing hash table, so a file of many anchors and many aliases stays linear. */
struct document {
        struct node **nodes;
        size_t n_nodes, n_allocated;
        struct anchor *anchors;   /* n_buckets slots, name NULL when free */
        size_t n_anchors, n_buckets;
        struct node *root;
};

struct loader {
        const char *buf;
        size_t size;
        struct findings *findings;
        unsigned n_invalid;       /* SR0xx findings added by this load */
        bool oom;
};

static _printf_(4, 5) void report(struct loader *l, enum finding_id id, struct mf_pos pos,
                                  const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *msg = NULL;
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0 || findings_add(l->findings, SEVERITY_ERROR, id, pos, "%s", msg) < 0)
                l->oom = true;
        free(msg);
        if (id < 100)
                l->n_invalid++;
}

static void document_done(struct document *d) {
        for (size_t i = 0; i < d->n_nodes; i++) {
                free(d->nodes[i]->value);
                free(d->nodes[i]->items);
                free(d->nodes[i]);
        }
        free(d->nodes);
        for (size_t i = 0; i < d->n_buckets; i++)
                free(d->anchors[i].name);
        free(d->anchors);
        *d = (struct document) {};
}

static struct node *node_new(struct document *d, enum node_kind kind, yaml_mark_t mark) {
        if (d->n_nodes == d->n_allocated) {
                size_t n = d->n_allocated ? d->n_allocated * 2 : 64;
                struct node **t = realloc(d->nodes, n * sizeof(*t));
                if (!t)
                        return NULL;
                d->nodes = t;
                d->n_allocated = n;
        }
        struct node *node = calloc(1, sizeof(*node));
        if (!node)
                return NULL;
        node->kind = kind;
        node->pos = (struct mf_pos) { (unsigned) mark.line + 1, (unsigned) mark.column + 1 };
        node->size = 1;
        d->nodes[d->n_nodes++] = node;
        return node;
}

static int node_append(struct node *parent, struct node *child) {
        if (parent->n_items == parent->n_allocated) {
                size_t n = parent->n_allocated ? parent->n_allocated * 2 : 8;
                struct node **t = realloc(parent->items, n * sizeof(*t));
                if (!t)
                        return -ENOMEM;
                parent->items = t;
                parent->n_allocated = n;
        }
        parent->items[parent->n_items++] = child;
        return 0;
}

static uint64_t size_add(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool node_is_null(const struct node *n) {
        return n->kind == NODE_SCALAR && n->plain &&
               (n->length == 0 || streq(n->value, "~") || streq(n->value, "null") ||
                streq(n->value, "Null") || streq(n->value, "NULL"));
}

static const char *node_kind_name(const struct node *n) {
        switch (n->kind) {
        case NODE_MAPPING:  return "a mapping";
        case NODE_SEQUENCE: return "a sequence";
        case NODE_SCALAR:   return node_is_null(n) ? "null" : "a scalar";
        default:            return "something else";
        }
}

/* A value as it may appear in a message: one line, bounded, control characters replaced.
 * Values in a manifest are names, paths and references, never secret values. */
static const char *shown(const char *s, char buf[static SHOWN_MAX + 4]) {
        size_t i = 0;
        for (; s[i] && i < SHOWN_MAX; i++)
                buf[i] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (s[i]) {
                while (i > 0 && ((unsigned char) s[i] & 0xc0) == 0x80)
                        i--;  /* cut before the character s[i] belongs to, not inside it */
                memcpy(buf + i, "...", 4);
        } else
                buf[i] = '\0';
        return buf;
}

/* Line and column of a byte offset, for libyaml's reader errors, which carry only an offset. */
static struct mf_pos offset_pos(const char *buf, size_t size, size_t offset) {
        struct mf_pos pos = { 1, 1 };
        for (size_t i = 0; i < offset && i < size; i++) {
                if (buf[i] == '\n') {
                        pos.line++;
                        pos.col = 1;
                } else if (((unsigned char) buf[i] & 0xc0) != 0x80)
                        pos.col++;
        }
        return pos;
}

static void report_yaml_error(struct loader *l, const yaml_parser_t *p) {
        if (p->error == YAML_MEMORY_ERROR) {
                l->oom = true;
                return;
        }
        const char *problem = p->problem ? p->problem : "invalid YAML";
        if (p->error == YAML_READER_ERROR) {
                report(l, SR001_SYNTAX, offset_pos(l->buf, l->size, p->problem_offset),
                       "%s (byte 0x%02x)", problem, (unsigned) p->problem_value & 0xff);
                return;
        }
        struct mf_pos pos = { (unsigned) p->problem_mark.line + 1,
                              (unsigned) p->problem_mark.column + 1 };
        if (p->context)
                report(l, SR001_SYNTAX, pos, "%s (%s at line %zu)", problem, p->context,
                       p->context_mark.line + 1);
        else
                report(l, SR001_SYNTAX, pos, "%s", problem);
}

/* Mapping keys must be strings, unique, and not YAML 1.1 merge keys. Offending pairs are
 * reported once here (an aliased mapping is not checked again) and dropped. Keys are
 * compared after sorting, so a mapping of many keys costs n log n, not n². */
struct key_ref {
        const struct node *key;
        size_t index;
};

static int key_ref_cmp(const void *a, const void *b) {
        const struct key_ref *x = a, *y = b;
        int c = strcmp(x->key->value, y->key->value);
        if (c != 0)
                return c;
        return x->index < y->index ? -1 : x->index > y->index;
}

static int mapping_check_keys(struct loader *l, struct node *m) {
        size_t n = m->n_items / 2;
        if (n == 0)
                return 0;
        _cleanup_free_ bool *drop = calloc(n, sizeof(bool));
        _cleanup_free_ struct key_ref *refs = calloc(n, sizeof(*refs));
        if (!drop || !refs)
                return -ENOMEM;
        size_t n_refs = 0;
        for (size_t i = 0; i < n; i++) {
                const struct node *k = m->items[2 * i];
                if (k->kind != NODE_SCALAR) {
                        report(l, SR003_WRONG_TYPE, k->pos, "a key must be a string, got %s",
                               node_kind_name(k));
                        drop[i] = true;
                } else if (k->plain && streq(k->value, "<<")) {
                        report(l, SR004_INVALID_VALUE, k->pos,
                               "merge keys ('<<') are not supported; write the keys out or alias the whole mapping");
                        drop[i] = true;
                } else
                        refs[n_refs++] = (struct key_ref) { k, i };
        }
        qsort(refs, n_refs, sizeof(*refs), key_ref_cmp);
        /* after the sort, equal keys are adjacent and the first occurrence leads its run */
        for (size_t first = 0, i; first < n_refs; first = i)
                for (i = first + 1; i < n_refs && streq(refs[i].key->value, refs[first].key->value); i++) {
                        char b[SHOWN_MAX + 4];
                        report(l, SR005_DUPLICATE_KEY, refs[i].key->pos,
                               "duplicate key '%s' (first at line %u)",
                               shown(refs[i].key->value, b), refs[first].key->pos.line);
                        drop[refs[i].index] = true;
                }
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
                if (!drop[i]) {
                        m->items[w++] = m->items[2 * i];
                        m->items[w++] = m->items[2 * i + 1];
                }
        m->n_items = w;
        return 0;
}

static struct mf_pos mark_pos(yaml_mark_t mark) {
        return (struct mf_pos) { (unsigned) mark.line + 1, (unsigned) mark.column + 1 };
}

/* Handles a node's anchor: registered only once the node is complete, so an alias inside its
 * own anchored node is "unknown" and the tree can never contain a cycle. */
static size_t anchor_hash(const char *s) {
        size_t h = 14695981039346656037u;  /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211u;
        return h;
}

/* The slot of name: where it is, or the free slot where it goes. n_buckets is a power of 2. */
static struct anchor *anchor_slot(const struct document *d, const char *name) {
        size_t i = anchor_hash(name) & (d->n_buckets - 1);
        while (d->anchors[i].name && !streq(d->anchors[i].name, name))
                i = (i + 1) & (d->n_buckets - 1);
        return &d->anchors[i];
}

static int anchor_add(struct document *d, const char *name, struct node *node) {
        if (!name)
                return 0;
        if (2 * (d->n_anchors + 1) > d->n_buckets) {
                struct document grown = { .n_buckets = d->n_buckets ? 2 * d->n_buckets : 16 };
                grown.anchors = calloc(grown.n_buckets, sizeof(struct anchor));
                if (!grown.anchors)
                        return -ENOMEM;
                for (size_t i = 0; i < d->n_buckets; i++)
                        if (d->anchors[i].name)
                                *anchor_slot(&grown, d->anchors[i].name) = d->anchors[i];
                free(d->anchors);
                d->anchors = grown.anchors;
                d->n_buckets = grown.n_buckets;
        }
        struct anchor *a = anchor_slot(d, name);
        if (a->name) {  /* a redefined anchor: the latest wins */
                a->node = node;
                return 0;
        }
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        *a = (struct anchor) { copy, node };
        d->n_anchors++;
        return 0;
}

static struct node *anchor_find(const struct document *d, const char *name) {
        if (d->n_buckets == 0)
                return NULL;
        return anchor_slot(d, name)->node;
}

/* Tags: !!str turns a plain scalar into a string; any other tag is refused rather than guessed. */
static bool tag_acceptable(struct loader *l, const yaml_char_t *tag, yaml_mark_t mark,
                           bool *ret_string) {
        *ret_string = false;
        if (!tag)
                return true;
        if (streq((const char *) tag, YAML_STR_TAG)) {
                *ret_string = true;
                return true;
        }
        char b[SHOWN_MAX + 4];
        report(l, SR004_INVALID_VALUE, mark_pos(mark), "YAML tags are not supported, got '%s'",
               shown((const char *) tag, b));
        return false;
}

struct build_state {
        struct node *stack[MAX_DEPTH];
        char *stack_anchor[MAX_DEPTH];
        size_t depth;
        uint64_t alias_nodes;
        unsigned documents;
};

static int attach(struct document *d, struct build_state *s, struct node *n) {
        if (s->depth == 0) {
                d->root = n;
                return 0;
        }
        struct node *parent = s->stack[s->depth - 1];
        parent->size = size_add(parent->size, n->size);
        return node_append(parent, n);
}

/* Returns 1 to go on, 0 when the stream ended or a fatal finding was reported, -errno. */
static int build_event(struct loader *l, struct document *d, struct build_state *s,
                       const yaml_event_t *e) {
        char b[SHOWN_MAX + 4];
        struct node *n;
        bool string;
        int r;

        switch (e->type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        case YAML_NO_EVENT:
                return 1;
        case YAML_STREAM_END_EVENT:
                return 0;
        case YAML_DOCUMENT_START_EVENT:
                if (++s->documents > 1) {
                        report(l, SR001_SYNTAX, mark_pos(e->start_mark),
                               "a manifest is one YAML document, found a second one");
                        return 0;
                }
                return 1;
        case YAML_ALIAS_EVENT:
                n = anchor_find(d, (const char *) e->data.alias.anchor);
                if (!n) {
                        report(l, SR001_SYNTAX, mark_pos(e->start_mark), "unknown anchor '%s'",
                               shown((const char *) e->data.alias.anchor, b));
                        return 0;
                }
                s->alias_nodes = size_add(s->alias_nodes, n->size);
                if (s->alias_nodes > MANIFEST_MAX_ALIAS_NODES) {
                        report(l, SR001_SYNTAX, mark_pos(e->start_mark),
                               "alias expansion exceeds %d nodes", MANIFEST_MAX_ALIAS_NODES);
                        return 0;
                }
                r = attach(d, s, n);  /* shared, not copied */
                return r < 0 ? r : 1;
        case YAML_SCALAR_EVENT:
                if (!tag_acceptable(l, e->data.scalar.tag, e->start_mark, &string))
                        return 0;
                n = node_new(d, NODE_SCALAR, e->start_mark);
                if (!n)
                        return -ENOMEM;
                n->value = malloc(e->data.scalar.length + 1);
                if (!n->value)
                        return -ENOMEM;
                memcpy(n->value, e->data.scalar.value, e->data.scalar.length);
                n->value[e->data.scalar.length] = '\0';
                n->length = e->data.scalar.length;
                n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !string;
                if (anchor_add(d, (const char *) e->data.scalar.anchor, n) < 0)
                        return -ENOMEM;
                r = attach(d, s, n);
                return r < 0 ? r : 1;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
                bool seq = e->type == YAML_SEQUENCE_START_EVENT;
                const yaml_char_t *tag = seq ? e->data.sequence_start.tag : e->data.mapping_start.tag;
                const yaml_char_t *anchor = seq ? e->data.sequence_start.anchor
                                                : e->data.mapping_start.anchor;
                if (tag && !streq((const char *) tag, seq ? YAML_SEQ_TAG : YAML_MAP_TAG)) {
                        report(l, SR004_INVALID_VALUE, mark_pos(e->start_mark),
                               "YAML tags are not supported, got '%s'", shown((const char *) tag, b));
                        return 0;
                }
                if (s->depth == MAX_DEPTH) {
                        report(l, SR001_SYNTAX, mark_pos(e->start_mark),
                               "nesting is deeper than %d levels", MAX_DEPTH);
                        return 0;
                }
                n = node_new(d, seq ? NODE_SEQUENCE : NODE_MAPPING, e->start_mark);
                if (!n)
                        return -ENOMEM;
                char *a = anchor ? strdup((const char *) anchor) : NULL;
                if (anchor && !a)
                        return -ENOMEM;
                s->stack_anchor[s->depth] = a;
                s->stack[s->depth++] = n;
                return 1;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
                if (s->depth == 0)
                        return 0;  /* libyaml never does this */
                n = s->stack[--s->depth];
                _cleanup_free_ char *a = steal_pointer(&s->stack_anchor[s->depth]);
                if (n->kind == NODE_MAPPING && mapping_check_keys(l, n) < 0)
                        return -ENOMEM;
                if (anchor_add(d, a, n) < 0)
                        return -ENOMEM;
                r = attach(d, s, n);
                return r < 0 ? r : 1;
        }
        default:
                return 1;
        }
}

/* Returns 0 with d->root set (NULL for an empty stream) or -EINVAL after a fatal SR001. */
static int build_document(struct loader *l, struct document *d) {
        yaml_parser_t parser;
        struct build_state s = {};
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) l->buf, l->size);
        for (;;) {
                yaml_event_t e;
                if (!yaml_parser_parse(&parser, &e)) {
                        report_yaml_error(l, &parser);
                        r = l->oom ? -ENOMEM : -EINVAL;
                        break;
                }
                unsigned before = l->n_invalid;
                r = build_event(l, d, &s, &e);
                yaml_event_delete(&e);
                if (r < 0)
                        break;
                if (r == 0) {
                        r = l->n_invalid > before ? -EINVAL : 0;
                        break;
                }
        }
        for (size_t i = 0; i < s.depth; i++)
                free(s.stack_anchor[i]);
        yaml_parser_delete(&parser);
        return r;
}

/* ---- reading values ---- */

static const struct node *mapping_get(const struct node *m, const char *key) {
        for (size_t i = 0; m && m->kind == NODE_MAPPING && i + 1 < m->n_items; i += 2)
                if (streq(m->items[i]->value, key))
                        return m->items[i + 1];
        return NULL;
}

static void report_kind(struct loader *l, const struct node *k, const struct node *v,
                        const char *want) {
        char b[SHOWN_MAX + 4];
        if (node_is_null(v))
                report(l, SR003_WRONG_TYPE, k->pos, "'%s' has no value (expected %s)",
                       shown(k->value, b), want);
        else
                report(l, SR003_WRONG_TYPE, v->pos, "'%s' must be %s, got %s", shown(k->value, b),
                       want, node_kind_name(v));
}

/* A mapping, or null where null stands for an empty mapping. */
static bool want_mapping(struct loader *l, const struct node *k, const struct node *v,
                         bool null_ok) {
        if (v->kind == NODE_MAPPING || (null_ok && node_is_null(v)))
                return true;
        report_kind(l, k, v, "a mapping");
        return false;
}

static bool want_string(struct loader *l, const struct node *k, const struct node *v) {
        if (v->kind == NODE_SCALAR && !node_is_null(v)) {
                if (strlen(v->value) == v->length)
                        return true;
                report(l, SR004_INVALID_VALUE, v->pos, "'%s' must not contain a NUL character",
                       k->value);
                return false;
        }
        report_kind(l, k, v, "a string");
        return false;
}

static void set_string(struct loader *l, char **dst, const char *s) {
        char *copy = strdup(s);
        if (!copy) {
                l->oom = true;
                return;
        }
        free(*dst);
        *dst = copy;
}

static bool get_string(struct loader *l, const struct node *k, const struct node *v, char **dst) {
        if (!want_string(l, k, v))
                return false;
        set_string(l, dst, v->value);
        return true;
}

static bool parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return true;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return true;
                }
        }
        return false;
}

static bool get_bool(struct loader *l, const struct node *k, const struct node *v, bool *dst) {
        char b[SHOWN_MAX + 4];
        if (v->kind != NODE_SCALAR || node_is_null(v)) {
                report_kind(l, k, v, "true or false");
                return false;
        }
        if (!v->plain) {
                report(l, SR003_WRONG_TYPE, v->pos, "'%s' must be true or false, got a quoted string",
                       k->value);
                return false;
        }
        if (!parse_bool(v->value, dst)) {
                report(l, SR004_INVALID_VALUE, v->pos, "'%s' must be true or false, got '%s'",
                       k->value, shown(v->value, b));
                return false;
        }
        return true;
}

/* Plain decimal only: no sign, no 0x, no 1e3, no 1_000. */
static bool get_uint(struct loader *l, const struct node *k, const struct node *v,
                     uint64_t min, uint64_t max, uint64_t *dst) {
        char b[SHOWN_MAX + 4];
        if (v->kind != NODE_SCALAR || node_is_null(v)) {
                report_kind(l, k, v, "an integer");
                return false;
        }
        if (!v->plain) {
                report(l, SR003_WRONG_TYPE, v->pos, "'%s' must be an integer, got a quoted string",
                       k->value);
                return false;
        }
        uint64_t n = 0;
        bool ok = v->length > 0;
        for (const char *p = v->value; ok && *p; p++) {
                if (!isdigit((unsigned char) *p) || n > (UINT64_MAX - 9) / 10)
                        ok = false;
                else
                        n = n * 10 + (uint64_t) (*p - '0');
        }
        if (!ok || n < min || n > max) {
                report(l, SR004_INVALID_VALUE, v->pos,
                       "'%s' must be an integer from %llu to %llu, got '%s'", k->value,
                       (unsigned long long) min, (unsigned long long) max, shown(v->value, b));
                return false;
        }
        *dst = n;
        return true;
}

static bool get_duration(struct loader *l, const struct node *k, const struct node *v,
                         uint64_t *dst) {
        char b[SHOWN_MAX + 4];
        uint64_t secs;
        if (!want_string(l, k, v))
                return false;
        if (parse_duration(v->value, &secs) < 0) {
                report(l, SR004_INVALID_VALUE, v->pos,
                       "'%s' must be a duration like 90s, 15m, 1h, 7d, got '%s'", k->value,
                       shown(v->value, b));
                return false;
        }
        if (secs == 0) {
                report(l, SR004_INVALID_VALUE, v->pos, "'%s' must be longer than 0s", k->value);
                return false;
        }
        *dst = secs;
        return true;
}

/* names[] is in the order of the enum; the message lists them all. */
static bool get_enum(struct loader *l, const struct node *k, const struct node *v,
                     const char *const *names, size_t n_names, int *dst) {
        char b[SHOWN_MAX + 4], list[128] = "";
        if (!want_string(l, k, v))
                return false;
        for (size_t i = 0; i < n_names; i++)
                if (streq(v->value, names[i])) {
                        *dst = (int) i;
                        return true;
                }
        for (size_t i = 0; i < n_names; i++) {
                strncat(list, names[i], sizeof list - strlen(list) - 1);
                if (i + 1 < n_names)
                        strncat(list, ", ", sizeof list - strlen(list) - 1);
        }
        report(l, SR004_INVALID_VALUE, v->pos, "'%s' must be one of %s, got '%s'", k->value,
               list, shown(v->value, b));
        return false;
}

enum strv_flags {
        STRV_SCALAR_OK = 1 << 0,   /* a single string means a one-element list */
        STRV_EMPTY_OK = 1 << 1,    /* [] is allowed and kept as an empty, non-NULL list */
};

static bool get_strv(struct loader *l, const struct node *k, const struct node *v,
                     enum strv_flags flags, char ***dst) {
        _cleanup_strv_free_ char **list = NULL;
        if ((flags & STRV_SCALAR_OK) && v->kind == NODE_SCALAR && !node_is_null(v)) {
                if (!want_string(l, k, v))
                        return false;
                if (strv_extend(&list, v->value) < 0) {
                        l->oom = true;
                        return false;
                }
        } else if (v->kind != NODE_SEQUENCE) {
                report_kind(l, k, v, "a sequence of strings");
                return false;
        } else if (v->n_items == 0) {
                if (!(flags & STRV_EMPTY_OK)) {
                        report(l, SR004_INVALID_VALUE, v->pos,
                               "'%s' must not be empty (leave it out to mean any)", k->value);
                        return false;
                }
                list = calloc(1, sizeof(char *));
                if (!list) {
                        l->oom = true;
                        return false;
                }
        } else {
                bool ok = true;
                for (size_t i = 0; i < v->n_items; i++) {
                        const struct node *item = v->items[i];
                        if (item->kind != NODE_SCALAR || node_is_null(item)) {
                                report(l, SR003_WRONG_TYPE, item->pos,
                                       "items of '%s' must be strings, got %s", k->value,
                                       node_kind_name(item));
                                ok = false;
                        } else if (strlen(item->value) != item->length) {
                                report(l, SR004_INVALID_VALUE, item->pos,
                                       "items of '%s' must not contain a NUL character", k->value);
                                ok = false;
                        } else if (ok && strv_extend(&list, item->value) < 0) {
                                l->oom = true;
                                return false;
                        }
                }
                if (!ok)
                        return false;
        }
        strv_free(*dst);
        *dst = steal_pointer(&list);
        return true;
}

/* Whether key is one of keys[]; if not, reports it, suggesting the closest valid key. */
static bool key_known(struct loader *l, const struct node *k, const char *const *keys,
                      size_t n_keys) {
        char b[SHOWN_MAX + 4];
        const char *best = NULL;
        unsigned best_distance = UINT_MAX;
        for (size_t i = 0; i < n_keys; i++) {
                if (streq(k->value, keys[i]))
                        return true;
                unsigned d = edit_distance(k->value, keys[i]);
                unsigned limit = strlen(keys[i]) <= 4 ? 1 : 2;
                if (d <= limit && d < best_distance) {
                        best = keys[i];
                        best_distance = d;
                }
        }
        if (best)
                report(l, SR002_UNKNOWN_KEY, k->pos, "unknown key '%s' (did you mean '%s'?)",
                       shown(k->value, b), best);
        else
                report(l, SR002_UNKNOWN_KEY, k->pos, "unknown key '%s'", shown(k->value, b));
        return false;
}

static bool name_valid(const char *s, bool first_digit_ok, const char *extra) {
        if (!*s || (!first_digit_ok && (isdigit((unsigned char) *s) || strchr(extra, *s))))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && *s != '_' && !strchr(extra, *s))
                        return false;
        return true;
}

#define FOREACH_PAIR(m, i, k, v)                                                     \
        for (size_t i = 0; (m) && (m)->kind == NODE_MAPPING && i + 1 < (m)->n_items; i += 2) \
                for (const struct node *k = (m)->items[i], *v = (m)->items[i + 1]; k; k = NULL)

/* ---- the schema ---- */

static const char *const backend_type_names[] = {
        [BACKEND_FILE] = "file", [BACKEND_ENV] = "env", [BACKEND_EXEC] = "exec", [BACKEND_VAULT] = "vault",
        [BACKEND_DOTENV] = "dotenv",
};
static const char *const delivery_names[] = {
        [DELIVER_FILE] = "file", [DELIVER_FD] = "fd", [DELIVER_ENV] = "env",
};
static const char *const charset_names[] = {
        [CHARSET_ALNUM] = "alnum", [CHARSET_HEX] = "hex", [CHARSET_BASE64URL] = "base64url",
        [CHARSET_ASCII] = "ascii",
};
static const char *const on_leak_names[] = { [ON_LEAK_FAIL] = "fail", [ON_LEAK_WARN] = "warn" };
static const char *const sandbox_names[] = {
        [SANDBOX_AUTO] = "auto", [SANDBOX_STRICT] = "strict", [SANDBOX_OFF] = "off",
};
const char *delivery_method_name(enum delivery d) {
        return (unsigned) d < ELEMENTSOF(delivery_names) ? delivery_names[d] : "file";
}

const char *charset_name(enum charset c) {
        return (unsigned) c < ELEMENTSOF(charset_names) ? charset_names[c] : "alnum";
}

const char *sandbox_mode_name(enum sandbox_mode m) {
        return (unsigned) m < ELEMENTSOF(sandbox_names) ? sandbox_names[m] : "auto";
}

static const char *const vault_auth_names[] = {
        [VAULT_AUTH_NONE] = "none", [VAULT_AUTH_TOKEN] = "token", [VAULT_AUTH_APPROLE] = "approle",
        [VAULT_AUTH_JWT] = "jwt", [VAULT_AUTH_KUBERNETES] = "kubernetes", [VAULT_AUTH_CERT] = "cert",
};

/* Keys of a backend: common ones, then per type (indexed by enum backend_type). */
static const char *const backend_common_keys[] = { "type", "timeout" };
static const char *const backend_file_keys[] = { "path", "key_file" };
static const char *const backend_exec_keys[] = { "command" };
static const char *const backend_dotenv_keys[] = { "path" };
static const char *const backend_vault_keys[] = {
        "address", "namespace", "ca_cert", "ca_path", "client_cert", "client_key", "insecure", "auth",
};
static const struct { const char *const *keys; size_t n; } backend_type_keys[] = {
        [BACKEND_FILE] = { backend_file_keys, ELEMENTSOF(backend_file_keys) },
        [BACKEND_ENV] = { NULL, 0 },
        [BACKEND_EXEC] = { backend_exec_keys, ELEMENTSOF(backend_exec_keys) },
        [BACKEND_VAULT] = { backend_vault_keys, ELEMENTSOF(backend_vault_keys) },
        [BACKEND_DOTENV] = { backend_dotenv_keys, ELEMENTSOF(backend_dotenv_keys) },
};

static bool in_list(const char *s, const char *const *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(s, l[i]))
                        return true;
        return false;
}

/* Vault auth keys; which method each is valid for (a bit per enum vault_auth). */
#define AUTH_BIT(m) (1u << (m))
static const struct { const char *key; unsigned methods; } vault_auth_keys[] = {
        { "method", ~0u },
        { "mount", AUTH_BIT(VAULT_AUTH_APPROLE) | AUTH_BIT(VAULT_AUTH_JWT) | AUTH_BIT(VAULT_AUTH_KUBERNETES) |
                   AUTH_BIT(VAULT_AUTH_CERT) },
        { "role", AUTH_BIT(VAULT_AUTH_JWT) | AUTH_BIT(VAULT_AUTH_KUBERNETES) },
        { "token_file", AUTH_BIT(VAULT_AUTH_KUBERNETES) },
        { "name", AUTH_BIT(VAULT_AUTH_CERT) },
        { "jwt_env", AUTH_BIT(VAULT_AUTH_JWT) },
        { "audience", AUTH_BIT(VAULT_AUTH_JWT) },
        { "role_id_env", AUTH_BIT(VAULT_AUTH_APPROLE) },
        { "secret_id_env", AUTH_BIT(VAULT_AUTH_APPROLE) },
        { "token_env", AUTH_BIT(VAULT_AUTH_TOKEN) },
};

static void load_vault_auth(struct loader *l, const struct node *key, const struct node *m,
                            struct mf_backend *b) {
        const char *names[ELEMENTSOF(vault_auth_keys)];
        int method = VAULT_AUTH_NONE;

        if (!want_mapping(l, key, m, false))
                return;
        for (size_t i = 0; i < ELEMENTSOF(vault_auth_keys); i++)
                names[i] = vault_auth_keys[i].key;
        const struct node *mk = NULL;
        FOREACH_PAIR(m, i, k, v)
                if (streq(k->value, "method")) {
                        mk = k;
                        if (!get_enum(l, k, v, vault_auth_names + 1, ELEMENTSOF(vault_auth_names) - 1,
                                      &method))
                                method = -1;  /* invalid: don't judge the other keys by it */
                        else
                                method++;
                }
        if (!mk)
                report(l, SR006_MISSING_KEY, key->pos,
                       "'auth' needs 'method' (token, approle, jwt, kubernetes or cert)");
        b->auth = method > 0 ? (enum vault_auth) method : VAULT_AUTH_NONE;
        bool has_role = false;
        FOREACH_PAIR(m, i, k, v)
                has_role = has_role || (streq(k->value, "role") && !node_is_null(v));
        /* Vault's kubernetes login refuses a request without one ("missing role",
         * builtin/credential/kubernetes/path_login.go) */
        if (b->auth == VAULT_AUTH_KUBERNETES && !has_role)
                report(l, SR006_MISSING_KEY, key->pos, "auth method kubernetes needs 'role'");

        FOREACH_PAIR(m, i, k, v) {
                if (!key_known(l, k, names, ELEMENTSOF(names)) || streq(k->value, "method"))
                        continue;
                for (size_t j = 0; j < ELEMENTSOF(vault_auth_keys); j++)
                        if (streq(k->value, vault_auth_keys[j].key) && method > 0 &&
                            !(vault_auth_keys[j].methods & AUTH_BIT(method)))
                                report(l, SR002_UNKNOWN_KEY, k->pos,
                                       "key '%s' is not valid for auth method %s", k->value,
                                       vault_auth_names[method]);
                char **dst = streq(k->value, "mount") ? &b->auth_mount :
                             streq(k->value, "role") ? &b->auth_role :
                             streq(k->value, "jwt_env") ? &b->jwt_env :
                             streq(k->value, "audience") ? &b->audience :
                             streq(k->value, "role_id_env") ? &b->role_id_env :
                             streq(k->value, "secret_id_env") ? &b->secret_id_env :
                             streq(k->value, "token_file") ? &b->auth_token_file :
                             streq(k->value, "name") ? &b->auth_name : &b->token_env;
                get_string(l, k, v, dst);
        }
}

/* An exec backend's command: a program and its arguments. */
static void load_exec_command(struct loader *l, const struct node *k, const struct node *v, struct mf_backend *b) {
        if (v->kind == NODE_SEQUENCE && v->n_items == 0)
                report(l, SR004_INVALID_VALUE, v->pos, "'command' must name a program, e.g. [pass, show]");
        else if (v->kind == NODE_SCALAR && !node_is_null(v))
                report(l, SR003_WRONG_TYPE, v->pos,
                       "'command' must be a sequence of strings, got a scalar (write it as [program, arg, ...])");
        else
                get_strv(l, k, v, 0, &b->command);
}

static void load_backend(struct loader *l, const struct node *name, const struct node *m,
                         struct mf_backend *b) {
        char buf[SHOWN_MAX + 4];
        int type = -1;

        set_string(l, &b->name, name->value);
        b->pos = name->pos;
        b->timeout = 30;
        if (!name_valid(name->value, false, "-"))
                report(l, SR004_INVALID_VALUE, name->pos,
                       "'%s' is not a valid backend name (letters, digits, _, -; not starting with a digit or -)",
                       shown(name->value, buf));
        if (!want_mapping(l, name, m, false))
                return;

        const struct node *type_node = mapping_get(m, "type");
        if (!type_node)
                report(l, SR006_MISSING_KEY, name->pos,
                       "backend '%s' needs 'type' (file, env, exec, vault or dotenv)", shown(name->value, buf));
        else {
                const struct node *tk = NULL;
                FOREACH_PAIR(m, i, k, v)
                        if (v == type_node)
                                tk = k;
                if (!get_enum(l, tk, type_node, backend_type_names, ELEMENTSOF(backend_type_names), &type))
                        type = -1;
        }
        if (type >= 0)
                b->type = (enum backend_type) type;
        if (type == BACKEND_FILE)
                set_string(l, &b->path, ".secrets-run/store");
        if (type == BACKEND_DOTENV)
                set_string(l, &b->path, ".env");

        /* the keys valid here: common + this type's, or every type's when the type is unknown */
        const char *valid[ELEMENTSOF(backend_common_keys) + ELEMENTSOF(backend_file_keys) +
                          ELEMENTSOF(backend_exec_keys) + ELEMENTSOF(backend_vault_keys) +
                          ELEMENTSOF(backend_dotenv_keys)];
        size_t n_valid = 0;
        for (size_t i = 0; i < ELEMENTSOF(backend_common_keys); i++)
                valid[n_valid++] = backend_common_keys[i];
        for (size_t t = 0; t < ELEMENTSOF(backend_type_keys); t++)
                if (type < 0 || (size_t) type == t)
                        for (size_t i = 0; i < backend_type_keys[t].n; i++)
                                valid[n_valid++] = backend_type_keys[t].keys[i];

        const struct node *command_key = NULL;
        FOREACH_PAIR(m, i, k, v) {
                if (streq(k->value, "type"))
                        continue;
                if (!in_list(k->value, valid, n_valid)) {
                        bool other_type = false;
                        for (size_t t = 0; t < ELEMENTSOF(backend_type_keys); t++)
                                if (in_list(k->value, backend_type_keys[t].keys, backend_type_keys[t].n))
                                        other_type = true;
                        if (other_type)
                                report(l, SR002_UNKNOWN_KEY, k->pos,
                                       "key '%s' is not valid for a backend of type %s", k->value,
                                       backend_type_names[type]);
                        else
                                key_known(l, k, valid, n_valid);
                        continue;
                }
                if (streq(k->value, "timeout"))
                        get_duration(l, k, v, &b->timeout);
                else if (streq(k->value, "path"))
                        get_string(l, k, v, &b->path);
                else if (streq(k->value, "key_file"))
                        get_string(l, k, v, &b->key_file);
                else if (streq(k->value, "command")) {
                        command_key = k;
                        load_exec_command(l, k, v, b);
                } else if (streq(k->value, "address")) {
                        b->address_pos = v->pos;
                        get_string(l, k, v, &b->address);
                } else if (streq(k->value, "namespace"))
                        get_string(l, k, v, &b->namespace_);
                else if (streq(k->value, "ca_cert"))
                        get_string(l, k, v, &b->ca_cert);
                else if (streq(k->value, "ca_path"))
                        get_string(l, k, v, &b->ca_path);
                else if (streq(k->value, "client_cert"))
                        get_string(l, k, v, &b->client_cert);
                else if (streq(k->value, "client_key"))
                        get_string(l, k, v, &b->client_key);
                else if (streq(k->value, "insecure")) {
                        b->insecure_pos = v->pos;
                        get_bool(l, k, v, &b->insecure);
                } else if (streq(k->value, "auth"))
                        load_vault_auth(l, k, v, b);
        }
        if (type == BACKEND_EXEC && !command_key)
                report(l, SR006_MISSING_KEY, name->pos, "backend '%s' of type exec needs 'command'",
                       shown(name->value, buf));
}

static void load_backends(struct loader *l, const struct node *key, const struct node *m,
                          struct manifest *man) {
        if (!want_mapping(l, key, m, true) || m->kind != NODE_MAPPING || m->n_items == 0)
                return;
        man->backends = calloc(m->n_items / 2, sizeof(*man->backends));
        if (!man->backends) {
                l->oom = true;
                return;
        }
        FOREACH_PAIR(m, i, k, v)
                load_backend(l, k, v, &man->backends[man->n_backends++]);
}

static void load_environments(struct loader *l, const struct node *key, const struct node *m,
                              struct manifest *man) {
        static const char *const keys[] = { "protected" };
        char b[SHOWN_MAX + 4];

        if (!want_mapping(l, key, m, true) || m->kind != NODE_MAPPING || m->n_items == 0)
                return;
        man->environments = calloc(m->n_items / 2, sizeof(*man->environments));
        if (!man->environments) {
                l->oom = true;
                return;
        }
        FOREACH_PAIR(m, i, name, value) {
                struct mf_environment *e = &man->environments[man->n_environments++];
                set_string(l, &e->name, name->value);
                e->pos = name->pos;
                if (!name_valid(name->value, true, ".-"))
                        report(l, SR004_INVALID_VALUE, name->pos,
                               "'%s' is not a valid environment name (letters, digits, _, ., -)",
                               shown(name->value, b));
                if (!want_mapping(l, name, value, true))
                        continue;
                FOREACH_PAIR(value, j, k, v)
                        if (key_known(l, k, keys, ELEMENTSOF(keys)))
                                get_bool(l, k, v, &e->protected_);
        }
}

/* BACKEND:PATH[?version=N][#FIELD] */
static void parse_reference(struct loader *l, const struct node *v, struct mf_secret *s) {
        char b[SHOWN_MAX + 4];
        const char *ref = v->value, *colon = strchr(ref, ':');

        if (!colon || colon == ref || colon[1] == '\0' || colon[1] == '#' || colon[1] == '?') {
                report(l, SR004_INVALID_VALUE, v->pos,
                       "invalid reference '%s' (expected BACKEND:PATH[#FIELD])", shown(ref, b));
                return;
        }
        const char *path = colon + 1, *hash = strchr(path, '#');
        const char *path_end = hash ? hash : path + strlen(path);
        const char *query = memchr(path, '?', (size_t) (path_end - path));
        if (hash && hash[1] == '\0') {
                report(l, SR004_INVALID_VALUE, v->pos,
                       "invalid reference '%s' (empty field after '#')", shown(ref, b));
                return;
        }
        uint64_t version = 0;
        if (query) {
                const char *p = query + 1;
                bool ok = strncmp(p, "version=", 8) == 0 && p + 8 < path_end;
                for (p += 8; ok && p < path_end; p++)
                        if (!isdigit((unsigned char) *p) || version > (UINT64_MAX - 9) / 10)
                                ok = false;
                        else
                                version = version * 10 + (uint64_t) (*p - '0');
                if (!ok || version == 0) {
                        report(l, SR004_INVALID_VALUE, v->pos,
                               "invalid reference '%s' (expected ?version=N with N a positive integer)",
                               shown(ref, b));
                        return;
                }
                path_end = query;
        }
        if (path_end == path) {
                report(l, SR004_INVALID_VALUE, v->pos,
                       "invalid reference '%s' (expected BACKEND:PATH[#FIELD])", shown(ref, b));
                return;
        }
        s->backend = strndup(ref, (size_t) (colon - ref));
        s->path = strndup(path, (size_t) (path_end - path));
        s->field = hash ? strdup(hash + 1) : NULL;
        if (!s->backend || !s->path || (hash && !s->field))
                l->oom = true;
        s->version = version;
}

static void load_generate(struct loader *l, const struct node *key, const struct node *m,
                          struct mf_secret *s) {
        static const char *const keys[] = { "length", "charset", "store" };
        s->generated = true;
        s->generate_pos = key->pos;
        if (!want_mapping(l, key, m, true))
                return;
        FOREACH_PAIR(m, i, k, v) {
                if (!key_known(l, k, keys, ELEMENTSOF(keys)))
                        continue;
                if (streq(k->value, "length")) {
                        uint64_t n;
                        if (get_uint(l, k, v, 1, 4096, &n))
                                s->gen_length = (size_t) n;
                } else if (streq(k->value, "charset")) {
                        int c;
                        if (get_enum(l, k, v, charset_names, ELEMENTSOF(charset_names), &c))
                                s->gen_charset = (enum charset) c;
                } else
                        get_bool(l, k, v, &s->gen_store);
        }
}

/* params: {NAME: SCALAR, ...}, the body of the request a reference makes (Vault's PKI
 * issue: common_name, ttl, alt_names). Strings, numbers and booleans, as written. */
static void load_params(struct loader *l, const struct node *key, const struct node *m, struct mf_secret *s) {
        char b[SHOWN_MAX + 4];
        s->params_pos = key->pos;
        if (!want_mapping(l, key, m, false))
                return;
        if (m->n_items == 0)
                report(l, SR004_INVALID_VALUE, m->pos, "'params' is empty: name at least one (e.g. common_name)");
        FOREACH_PAIR(m, i, k, v) {
                if (!is_identifier(k->value)) {
                        report(l, SR004_INVALID_VALUE, k->pos, "'%s' is not a valid parameter name (letters, digits, _)",
                               shown(k->value, b));
                        continue;
                }
                if (v->kind != NODE_SCALAR || node_is_null(v)) {
                        report_kind(l, k, v, "a string, number or boolean");
                        continue;
                }
                if (!want_string(l, k, v))
                        continue;
                if (strv_extend(&s->params, k->value) < 0 || strv_extend(&s->params, v->value) < 0)
                        l->oom = true;
        }
}

static void load_when(struct loader *l, const struct node *key, const struct node *m,
                      struct mf_secret *s) {
        static const char *const keys[] = { "branches", "events" };
        s->when_pos = key->pos;
        if (!want_mapping(l, key, m, false))
                return;
        FOREACH_PAIR(m, i, k, v)
                if (key_known(l, k, keys, ELEMENTSOF(keys)))
                        get_strv(l, k, v, STRV_SCALAR_OK,
                                 streq(k->value, "branches") ? &s->when_branches : &s->when_events);
}

static void load_rotation(struct loader *l, const struct node *key, const struct node *m,
                          struct mf_secret *s) {
        static const char *const keys[] = { "max_age", "fail_after" };
        char b1[32], b2[32];
        if (!want_mapping(l, key, m, false))
                return;
        s->has_rotation = true;
        const struct node *fail_after = NULL;
        FOREACH_PAIR(m, i, k, v) {
                if (!key_known(l, k, keys, ELEMENTSOF(keys)))
                        continue;
                if (streq(k->value, "max_age"))
                        get_duration(l, k, v, &s->rotation_max_age);
                else if (get_duration(l, k, v, &s->rotation_fail_after))
                        fail_after = v;
        }
        if (!mapping_get(m, "max_age"))
                report(l, SR006_MISSING_KEY, key->pos, "'rotation' needs 'max_age'");
        else if (fail_after && s->rotation_max_age > 0 &&
                 s->rotation_fail_after < s->rotation_max_age)
                report(l, SR004_INVALID_VALUE, fail_after->pos,
                       "'fail_after' (%s) must not be shorter than 'max_age' (%s)",
                       format_duration(s->rotation_fail_after, b1, sizeof b1),
                       format_duration(s->rotation_max_age, b2, sizeof b2));
}

/* approved_by, with each entry's position: check points at the name whose approval is wrong. */
static void load_approved_by(struct loader *l, const struct node *k, const struct node *v, struct mf_secret *s) {
        s->approved_by_pos = k->pos;
        if (!get_strv(l, k, v, STRV_SCALAR_OK | STRV_EMPTY_OK, &s->approved_by))
                return;
        size_t n = strv_length(s->approved_by);
        free(s->approved_by_item_pos);
        s->approved_by_item_pos = calloc(n ? n : 1, sizeof(struct mf_pos));
        if (!s->approved_by_item_pos) {
                l->oom = true;
                return;
        }
        for (size_t i = 0; i < n; i++)
                s->approved_by_item_pos[i] = v->kind == NODE_SEQUENCE ? v->items[i]->pos : v->pos;
}

static void load_secret(struct loader *l, const struct node *name, const struct node *m,
                        const struct manifest *man, struct mf_secret *s) {
        static const char *const keys[] = {
                "from", "generate", "owner", "description", "environments", "stages", "when",
                "deliver", "as", "rotation", "approved_by", "params",
        };
        char b[SHOWN_MAX + 4];

        set_string(l, &s->name, name->value);
        s->pos = name->pos;
        s->gen_length = 32;
        s->gen_charset = CHARSET_ALNUM;
        s->deliver = DELIVER_FILE;
        set_string(l, &s->as, name->value);
        if (!is_identifier(name->value))
                report(l, SR004_INVALID_VALUE, name->pos,
                       "'%s' is not a valid secret name (letters, digits, _; not starting with a digit)",
                       shown(name->value, b));
        if (!want_mapping(l, name, m, true))
                return;

        const struct node *from = NULL, *from_key = NULL, *generate = NULL;
        FOREACH_PAIR(m, i, k, v) {
                if (!key_known(l, k, keys, ELEMENTSOF(keys)))
                        continue;
                if (streq(k->value, "from")) {
                        from_key = k;
                        s->from_pos = v->pos;
                        if (get_string(l, k, v, &s->from))
                                from = v;
                } else if (streq(k->value, "generate")) {
                        generate = k;
                        load_generate(l, k, v, s);
                } else if (streq(k->value, "owner"))
                        get_string(l, k, v, &s->owner);
                else if (streq(k->value, "description"))
                        get_string(l, k, v, &s->description);
                else if (streq(k->value, "environments")) {
                        s->environments_pos = k->pos;
                        get_strv(l, k, v, STRV_SCALAR_OK, &s->environments);
                } else if (streq(k->value, "stages"))
                        get_strv(l, k, v, STRV_SCALAR_OK, &s->stages);
                else if (streq(k->value, "when"))
                        load_when(l, k, v, s);
                else if (streq(k->value, "deliver")) {
                        int d;
                        s->deliver_pos = v->pos;
                        if (get_enum(l, k, v, delivery_names, ELEMENTSOF(delivery_names), &d))
                                s->deliver = (enum delivery) d;
                } else if (streq(k->value, "as")) {
                        s->as_pos = v->pos;
                        if (want_string(l, k, v)) {
                                if (is_identifier(v->value))
                                        set_string(l, &s->as, v->value);
                                else
                                        report(l, SR004_INVALID_VALUE, v->pos,
                                               "'%s' is not a valid delivery name for 'as' (letters, digits, _; not starting with a digit)",
                                               shown(v->value, b));
                        }
                } else if (streq(k->value, "rotation"))
                        load_rotation(l, k, v, s);
                else if (streq(k->value, "params"))
                        load_params(l, k, v, s);
                else
                        load_approved_by(l, k, v, s);
        }

        /* A stored generated secret (generate.store) lives at `from`, or at defaults.backend
         * under its own name; an ephemeral one has no place, so `from` beside it is a mistake. */
        if (from_key && generate && !s->gen_store)
                report(l, SR004_INVALID_VALUE, generate->pos,
                       "secret '%s' has both 'from' and 'generate'; it takes one of them "
                       "(or add 'store: true' to 'generate' to keep the generated value at 'from')",
                       shown(name->value, b));
        else if (from)
                parse_reference(l, from, s);
        if (s->params && (generate || s->version))
                report(l, SR004_INVALID_VALUE, s->params_pos, "secret '%s': 'params' make a request that issues a new value each run, which %s",
                       shown(name->value, b), generate ? "is not stored or generated" : "cannot be pinned to a version");
        else if (!from_key && (!generate || s->gen_store)) {
                if (man->default_backend)
                        set_string(l, &s->backend, man->default_backend);
                set_string(l, &s->path, name->value);
        }
}

static void load_secrets(struct loader *l, const struct node *key, const struct node *m,
                         struct manifest *man) {
        if (!want_mapping(l, key, m, true) || m->kind != NODE_MAPPING || m->n_items == 0)
                return;
        if (m->n_items / 2 > MANIFEST_MAX_SECRETS) {
                /* refused before anything is built for them: a run could not mask them all */
                report(l, SR008_LIMIT, key->pos, "%zu secrets, more than the %d one manifest may declare",
                       m->n_items / 2, MANIFEST_MAX_SECRETS);
                return;
        }
        man->secrets = calloc(m->n_items / 2, sizeof(*man->secrets));
        if (!man->secrets) {
                l->oom = true;
                return;
        }
        size_t generated = 0;
        FOREACH_PAIR(m, i, k, v) {
                struct mf_secret *s = &man->secrets[man->n_secrets++];
                load_secret(l, k, v, man, s);
                if (s->generated)
                        generated += s->gen_length;
        }
        if (generated > MAX_SECRET_BYTES)
                report(l, SR008_LIMIT, key->pos, "generated values total %zu bytes, more than the %d bytes one run "
                       "can mask", generated, MAX_SECRET_BYTES);
}

/* Masks land inside log lines, JSON strings and annotations after they were escaped: nothing
 * in one may end a line or a string. */
static bool mask_is_plain(const char *mask) {
        for (const unsigned char *p = (const unsigned char *) mask; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
                        return false;
        return true;
}

static void load_defaults(struct loader *l, const struct node *key, const struct node *m,
                          struct manifest *man) {
        static const char *const keys[] = { "environment", "stage", "backend" };
        if (!want_mapping(l, key, m, true))
                return;
        FOREACH_PAIR(m, i, k, v) {
                if (!key_known(l, k, keys, ELEMENTSOF(keys)))
                        continue;
                if (streq(k->value, "environment")) {
                        man->default_environment_pos = v->pos;
                        get_string(l, k, v, &man->default_environment);
                } else if (streq(k->value, "stage"))
                        get_string(l, k, v, &man->default_stage);
                else {
                        man->default_backend_pos = v->pos;
                        get_string(l, k, v, &man->default_backend);
                }
        }
}

static void load_policy(struct loader *l, const struct node *key, const struct node *m,
                        struct mf_policy *p) {
        static const char *const keys[] = {
                "on_leak", "mask", "min_secret_length", "allow_env_delivery", "sandbox", "network",
                "artifacts", "audit_log", "require_owner", "require_rotation", "max_ttl",
                "allowed_signers", "approvals", "approval_max_age", "approval_fail_after",
        };
        char b[SHOWN_MAX + 4];
        int e;

        const struct node *fail_after = NULL;
        if (!want_mapping(l, key, m, true))
                return;
        FOREACH_PAIR(m, i, k, v) {
                if (!key_known(l, k, keys, ELEMENTSOF(keys)))
                        continue;
                if (streq(k->value, "on_leak")) {
                        if (get_enum(l, k, v, on_leak_names, ELEMENTSOF(on_leak_names), &e))
                                p->on_leak = (enum on_leak) e;
                } else if (streq(k->value, "mask")) {
                        if (get_string(l, k, v, &p->mask) && !mask_is_plain(p->mask))
                                report(l, SR004_INVALID_VALUE, v->pos,
                                       "'mask' may not contain control characters, '\"' or '\\'");
                } else if (streq(k->value, "min_secret_length")) {
                        uint64_t n;
                        if (get_uint(l, k, v, 1, 4096, &n))
                                p->min_secret_length = (size_t) n;
                } else if (streq(k->value, "allow_env_delivery"))
                        get_bool(l, k, v, &p->allow_env_delivery);
                else if (streq(k->value, "sandbox")) {
                        p->sandbox_pos = v->pos;
                        /* `off` is a string here, whatever YAML 1.1 thought of it */
                        if (get_enum(l, k, v, sandbox_names, ELEMENTSOF(sandbox_names), &e))
                                p->sandbox = (enum sandbox_mode) e;
                } else if (streq(k->value, "network")) {
                        /* an enum of on/off that also takes YAML's booleans, quoted or not */
                        if (v->kind != NODE_SCALAR || node_is_null(v))
                                report_kind(l, k, v, "on or off");
                        else if (!parse_bool(v->value, &p->network))
                                report(l, SR004_INVALID_VALUE, v->pos,
                                       "'network' must be one of on, off, got '%s'", shown(v->value, b));
                } else if (streq(k->value, "artifacts"))
                        get_strv(l, k, v, STRV_SCALAR_OK | STRV_EMPTY_OK, &p->artifacts);
                else if (streq(k->value, "audit_log"))
                        get_string(l, k, v, &p->audit_log);
                else if (streq(k->value, "require_owner"))
                        get_bool(l, k, v, &p->require_owner);
                else if (streq(k->value, "require_rotation"))
                        get_bool(l, k, v, &p->require_rotation);
                else if (streq(k->value, "allowed_signers")) {
                        p->allowed_signers_pos = v->pos;
                        get_string(l, k, v, &p->allowed_signers);
                } else if (streq(k->value, "approvals")) {
                        p->approvals_pos = v->pos;
                        get_string(l, k, v, &p->approvals);
                } else if (streq(k->value, "approval_max_age"))
                        get_duration(l, k, v, &p->approval_max_age);
                else if (streq(k->value, "approval_fail_after")) {
                        if (get_duration(l, k, v, &p->approval_fail_after))
                                fail_after = v;
                } else
                        get_duration(l, k, v, &p->max_ttl);
        }
        char b1[32], b2[32];
        if (fail_after && p->approval_max_age && p->approval_fail_after < p->approval_max_age)
                report(l, SR004_INVALID_VALUE, fail_after->pos,
                       "'approval_fail_after' (%s) must not be shorter than 'approval_max_age' (%s)",
                       format_duration(p->approval_fail_after, b1, sizeof b1),
                       format_duration(p->approval_max_age, b2, sizeof b2));
}

static void load_root(struct loader *l, const struct node *root, struct manifest *man) {
        static const char *const keys[] = {
                "version", "project", "defaults", "backends", "environments", "secrets", "policy",
        };
        char b[SHOWN_MAX + 4];

        if (!root || node_is_null(root)) {
                report(l, SR006_MISSING_KEY, (struct mf_pos) { 1, 1 },
                       "missing 'version' (the manifest is empty; start it with 'version: 1')");
                return;
        }
        if (root->kind != NODE_MAPPING) {
                report(l, SR003_WRONG_TYPE, root->pos, "the manifest must be a mapping, got %s",
                       node_kind_name(root));
                return;
        }

        /* The version decides how to read the rest: an unsupported one stops here, rather than
         * burying its one useful finding under every key a newer schema added. */
        const struct node *version = mapping_get(root, "version");
        if (!version)
                report(l, SR006_MISSING_KEY, root->pos, "missing 'version' (add 'version: 1')");
        else if (version->kind == NODE_SCALAR && version->plain && !node_is_null(version)) {
                uint64_t n = 0;
                bool digits = *version->value != '\0';
                for (const char *p = version->value; *p; p++)
                        if (!isdigit((unsigned char) *p))
                                digits = false;
                        else if (n < 1000000)  /* saturate: any big number is just "not 1" */
                                n = n * 10 + (uint64_t) (*p - '0');
                if (digits && n == 1)
                        man->version = 1;
                else if (digits || (version->value[0] == '-' && version->value[1])) {
                        report(l, SR007_VERSION, version->pos,
                               "unsupported manifest version %s (this secrets-run reads version 1)",
                               shown(version->value, b));
                        return;
                } else
                        report(l, SR004_INVALID_VALUE, version->pos,
                               "'version' must be an integer, got '%s'", shown(version->value, b));
        } else if (version->kind == NODE_SCALAR && !node_is_null(version))
                report(l, SR003_WRONG_TYPE, version->pos,
                       "'version' must be an integer, got a quoted string");
        else {
                const struct node *vk = NULL;
                FOREACH_PAIR(root, i, k, v)
                        if (v == version)
                                vk = k;
                report_kind(l, vk, version, "an integer");
        }

        /* defaults first: a secret without `from` takes defaults.backend */
        FOREACH_PAIR(root, i, k, v)
                if (streq(k->value, "defaults"))
                        load_defaults(l, k, v, man);
        FOREACH_PAIR(root, i, k, v) {
                if (!key_known(l, k, keys, ELEMENTSOF(keys)))
                        continue;
                if (streq(k->value, "project"))
                        get_string(l, k, v, &man->project);
                else if (streq(k->value, "backends"))
                        load_backends(l, k, v, man);
                else if (streq(k->value, "environments"))
                        load_environments(l, k, v, man);
                else if (streq(k->value, "secrets"))
                        load_secrets(l, k, v, man);
                else if (streq(k->value, "policy"))
                        load_policy(l, k, v, &man->policy);
        }
}

static void policy_defaults(struct loader *l, struct mf_policy *p) {
        *p = (struct mf_policy) {
                .on_leak = ON_LEAK_FAIL,
                .min_secret_length = 8,
                .sandbox = SANDBOX_AUTO,
                .network = true,
                .require_owner = true,
                .max_ttl = 3600,
        };
        set_string(l, &p->mask, "[REDACTED:{name}]");
}

/* ---- public interface ---- */

int manifest_load_buffer(const char *path, const char *buf, size_t size,
                         struct manifest **ret, struct findings *findings) {
        struct loader l = { .buf = buf, .size = size, .findings = findings };
        _cleanup_manifest_ struct manifest *m = NULL;
        struct document d = {};
        int r;

        if (!findings->file && !(findings->file = strdup(path)))
                return -ENOMEM;
        if (size > MANIFEST_MAX_SIZE) {
                report(&l, SR001_SYNTAX, (struct mf_pos) { 1, 1 }, "manifest is larger than 1 MiB");
                return l.oom ? -ENOMEM : -EINVAL;
        }

        r = build_document(&l, &d);
        if (r < 0) {
                document_done(&d);
                return r;
        }

        m = calloc(1, sizeof(*m));
        if (!m) {
                document_done(&d);
                return -ENOMEM;
        }
        set_string(&l, &m->path, path);
        _cleanup_free_ char *copy = strdup(path);
        if (copy) {
                char *slash = strrchr(copy, '/');
                if (!slash)
                        set_string(&l, &m->dir, ".");
                else if (slash == copy)
                        set_string(&l, &m->dir, "/");
                else {
                        *slash = '\0';
                        set_string(&l, &m->dir, copy);
                }
        } else
                l.oom = true;
        crypto_hash_sha256(m->sha256, (const unsigned char *) buf, size);
        policy_defaults(&l, &m->policy);

        load_root(&l, d.root, m);
        document_done(&d);

        if (!m->policy.artifacts && strv_extend(&m->policy.artifacts, "changed") < 0)
                l.oom = true;
        if (l.oom)
                return -ENOMEM;
        if (l.n_invalid > 0)
                return -EINVAL;
        *ret = steal_pointer(&m);
        return 0;
}

int manifest_load(const char *path, struct manifest **ret, struct findings *findings) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        /* read_file_bounded checks the size with fstat before reading, and bounds the read
         * for files whose size fstat doesn't tell (pipes, /dev/stdin) */
        int r = read_file_bounded(path, MANIFEST_MAX_SIZE, &buf, &size);
        if (r == -EFBIG) {
                struct loader l = { .findings = findings };
                if (!findings->file && !(findings->file = strdup(path)))
                        return -ENOMEM;
                report(&l, SR001_SYNTAX, (struct mf_pos) { 1, 1 }, "manifest is larger than 1 MiB");
                return l.oom ? -ENOMEM : -EINVAL;
        }
        if (r < 0)
                return r;
        return manifest_load_buffer(path, buf, size, ret, findings);
}

static void backend_done(struct mf_backend *b) {
        free(b->name);
        free(b->path);
        free(b->key_file);
        strv_free(b->command);
        free(b->address);
        free(b->namespace_);
        free(b->ca_cert);
        free(b->ca_path);
        free(b->auth_mount);
        free(b->auth_role);
        free(b->client_cert);
        free(b->client_key);
        free(b->auth_token_file);
        free(b->auth_name);
        free(b->jwt_env);
        free(b->audience);
        free(b->role_id_env);
        free(b->secret_id_env);
        free(b->token_env);
}

static void secret_done(struct mf_secret *s) {
        free(s->name);
        free(s->from);
        free(s->backend);
        free(s->path);
        free(s->field);
        free(s->owner);
        free(s->description);
        strv_free(s->environments);
        strv_free(s->stages);
        strv_free(s->when_branches);
        strv_free(s->when_events);
        free(s->as);
        strv_free(s->approved_by);
        strv_free(s->params);
        free(s->approved_by_item_pos);
}

struct manifest *manifest_free(struct manifest *m) {
        if (!m)
                return NULL;
        free(m->path);
        free(m->dir);
        free(m->project);
        free(m->default_environment);
        free(m->default_stage);
        free(m->default_backend);
        for (size_t i = 0; i < m->n_backends; i++)
                backend_done(&m->backends[i]);
        free(m->backends);
        for (size_t i = 0; i < m->n_environments; i++)
                free(m->environments[i].name);
        free(m->environments);
        for (size_t i = 0; i < m->n_secrets; i++)
                secret_done(&m->secrets[i]);
        free(m->secrets);
        free(m->policy.mask);
        strv_free(m->policy.artifacts);
        free(m->policy.audit_log);
        free(m->policy.allowed_signers);
        free(m->policy.approvals);
        free(m);
        return NULL;
}

const struct mf_backend *manifest_find_backend(const struct manifest *m, const char *name) {
        for (size_t i = 0; m && name && i < m->n_backends; i++)
                if (streq_ptr(m->backends[i].name, name))
                        return &m->backends[i];
        return NULL;
}

const struct mf_environment *manifest_find_environment(const struct manifest *m, const char *name) {
        for (size_t i = 0; m && name && i < m->n_environments; i++)
                if (streq_ptr(m->environments[i].name, name))
                        return &m->environments[i];
        return NULL;
}

int manifest_file(const struct manifest *m, const char *name, char **ret) {
        *ret = NULL;
        if (!name)
                return 0;
        *ret = name[0] == '/' || !m->dir ? strdup(name) : strdup_printf("%s/%s", m->dir, name);
        return *ret ? 0 : -ENOMEM;
}

const struct mf_secret *manifest_find_secret(const struct manifest *m, const char *name) {
        for (size_t i = 0; m && name && i < m->n_secrets; i++)
                if (streq_ptr(m->secrets[i].name, name))
                        return &m->secrets[i];
        return NULL;
}

/* Walks up with relative paths ("secrets.yaml", "../secrets.yaml", ...), so messages show a
 * short path the user recognises; the root is where "." and ".." are the same directory. */
int manifest_discover(const char *explicit_path, char **ret_path) {
        char *p;

        if (explicit_path) {
                if (!*explicit_path)
                        return -EINVAL;
                if (!(p = strdup(explicit_path)))
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }
        const char *env = getenv("SECRETS_RUN_MANIFEST");
        if (env && *env) {
                if (!(p = strdup(env)))
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }

        /* 4096 / 3 levels is more than PATH_MAX allows a directory to be deep */
        for (size_t up = 0; up < 1400; up++) {
                _cleanup_free_ char *prefix = malloc(3 * up + 1);
                if (!prefix)
                        return -ENOMEM;
                prefix[0] = '\0';
                for (size_t i = 0; i < up; i++)
                        strcat(prefix, "../");
                _cleanup_free_ char *candidate = strdup_printf("%ssecrets.yaml", prefix);
                _cleanup_free_ char *here = strdup_printf("%s.", prefix);
                _cleanup_free_ char *parent = strdup_printf("%s..", prefix);
                if (!candidate || !here || !parent)
                        return -ENOMEM;
                struct stat st, a, b;
                if (stat(candidate, &st) == 0 && !S_ISDIR(st.st_mode)) {
                        *ret_path = steal_pointer(&candidate);
                        return 0;
                }
                if (stat(here, &a) < 0 || stat(parent, &b) < 0)
                        return -ENOENT;  /* an unreadable ancestor ends the search */
                if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                        break;
        }
        return -ENOENT;
}
