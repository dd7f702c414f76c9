/* Findings of manifest validation and `check`: collected with their position, sorted, and
 * printed compiler-style, as JSON, or as GitHub Actions annotations. */
#include <jansson.h>

#include "manifest.h"
#include "output.h"

int findings_add(struct findings *f, enum severity sev, enum finding_id id,
                 struct mf_pos pos, const char *fmt, ...) {
        struct finding *items = realloc(f->items, (f->n + 1) * sizeof(*items));
        if (!items)
                return -ENOMEM;
        f->items = items;
        va_list ap;
        va_start(ap, fmt);
        char *msg = NULL;
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        f->items[f->n++] = (struct finding) {
                .severity = sev, .id = id, .line = pos.line, .col = pos.col, .message = msg,
        };
        return 0;
}

size_t findings_count(const struct findings *f, enum severity sev) {
        size_t n = 0;
        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].severity == sev)
                        n++;
        return n;
}

bool findings_have_invalid(const struct findings *f) {
        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].id < 100)
                        return true;
        return false;
}

static int finding_cmp(const void *a, const void *b) {
        const struct finding *x = a, *y = b;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->col != y->col)
                return x->col < y->col ? -1 : 1;
        return (int) x->id - (int) y->id;
}

void findings_sort(struct findings *f) {
        if (f->n > 1)
                qsort(f->items, f->n, sizeof(*f->items), finding_cmp);
}

void findings_done(struct findings *f) {
        for (size_t i = 0; i < f->n; i++)
                free(f->items[i].message);
        free(f->items);
        free(f->file);
        *f = (struct findings) {};
}

static const char *severity_name(enum severity s) {
        return s == SEVERITY_ERROR ? "error" : "warning";
}

void findings_print(const struct findings *f, enum output_format format, FILE *out) {
        const char *file = f->file ? f->file : "secrets.yaml";
        if (format == FORMAT_JSON) {
                json_t *a = json_array();
                for (size_t i = 0; i < f->n; i++) {
                        const struct finding *x = &f->items[i];
                        char id[8];
                        snprintf(id, sizeof id, "SR%03u", (unsigned) x->id);
                        json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:s, s:s, s:s}",
                                "file", file, "line", (int) x->line, "column", (int) x->col,
                                "severity", severity_name(x->severity), "id", id,
                                "message", x->message));
                }
                json_dumpf(a, out, JSON_INDENT(2));
                fputc('\n', out);
                json_decref(a);
        } else {
                for (size_t i = 0; i < f->n; i++) {
                        const struct finding *x = &f->items[i];
                        fprintf(out, "%s:%u:%u: %s SR%03u: %s\n", file, x->line, x->col,
                                severity_name(x->severity), (unsigned) x->id, x->message);
                }
        }
        for (size_t i = 0; i < f->n; i++) {
                const struct finding *x = &f->items[i];
                char title[8];
                snprintf(title, sizeof title, "SR%03u", (unsigned) x->id);
                annotation_print(out, severity_name(x->severity), file, x->line, x->col, title, x->message);
        }
}
