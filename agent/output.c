/* Everything secrets-run prints about a run for people and CI systems: leak reports, the
 * summary line, the sandbox line, dry-run output, GitHub annotations and the step summary. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>

#include "output.h"
#include "redact.h"
#include "run.h"

/* ---- our own stdout, masked ----
 * stdout (the FILE) becomes a stream whose lines pass the masker before they reach fd 1; the
 * step's relayed output is written to the fd directly and masked by the run's own filter. */

static char *stdout_pending;
static size_t stdout_pending_len;
static int stdout_error;   /* the first failed write to fd 1, reported at exit */

static int stdout_write_masked(const char *p, size_t n) {
        size_t len = n;
        _cleanup_free_ char *masked = output_mask(p, n, &len);
        int k = write_all(STDOUT_FILENO, masked ? masked : p, masked ? len : n);
        if (k < 0 && !stdout_error)
                stdout_error = k;
        return k;
}

/* Whole lines are masked and written; a line's beginning waits for its end, so a value
 * printed in two pieces is masked too. A failed write fails the stream (fflush, fclose), as
 * writing to a full disk or a closed pipe would without the masker. */
static ssize_t stdout_cookie_write(void *cookie, const char *p, size_t n) {
        char *t = realloc(stdout_pending, stdout_pending_len + n);
        if (!t) {
                errno = ENOMEM;
                return -1;
        }
        stdout_pending = t;
        memcpy(stdout_pending + stdout_pending_len, p, n);
        stdout_pending_len += n;
        const char *end = memrchr(stdout_pending, '\n', stdout_pending_len);
        if (end) {
                size_t whole = (size_t) (end - stdout_pending) + 1;
                int k = stdout_write_masked(stdout_pending, whole);
                memmove(stdout_pending, stdout_pending + whole, stdout_pending_len - whole);
                stdout_pending_len -= whole;
                if (k < 0) {
                        errno = -k;
                        return -1;
                }
        }
        return (ssize_t) n;
}

void output_init(void) {
        log_set_filter(output_mask);
        cookie_io_functions_t io = { .write = stdout_cookie_write };
        FILE *f = fopencookie(NULL, "w", io);
        if (!f)
                return;   /* stdout stays as it is; messages are still masked */
        /* unbuffered: each fprintf reaches the cookie, which keeps the unfinished line */
        setvbuf(f, NULL, _IONBF, 0);
        stdout = f;
}

int output_done(void) {
        fflush(stdout);
        if (stdout_pending_len > 0)
                (void) stdout_write_masked(stdout_pending, stdout_pending_len);
        free(stdout_pending);
        stdout_pending = NULL;
        stdout_pending_len = 0;
        output_mask_done();
        return stdout_error;
}

/* ---- GitHub Actions workflow commands ---- */

void workflow_command_escape(FILE *out, const char *s, bool property) {
        for (; s && *s; s++) {
                switch (*s) {
                case '%':  fputs("%25", out); break;
                case '\r': fputs("%0D", out); break;
                case '\n': fputs("%0A", out); break;
                case ':':  property ? fputs("%3A", out) : fputc(':', out); break;
                case ',':  property ? fputs("%2C", out) : fputc(',', out); break;
                default:   fputc(*s, out);
                }
        }
}

/* A field of an annotation, masked before it is escaped: escaped first, a value's ':' and
 * ',' would be %3A and %2C, a form the masker does not know, and GitHub decodes it again. */
static void annotation_field(FILE *out, const char *text, bool property) {
        _cleanup_free_ char *masked = text ? output_mask(text, strlen(text), NULL) : NULL;
        workflow_command_escape(out, masked ? masked : text, property);
}

void annotation_print(FILE *out, const char *level, const char *file, unsigned line, unsigned col,
                      const char *title, const char *message) {
        if (ci_system_detect() != CI_GITHUB)
                return;
        const char *sep = " ";
        fprintf(out, "::%s", level);
        if (file) {
                fprintf(out, "%sfile=", sep);
                annotation_field(out, file, true);
                sep = ",";
        }
        if (line) {
                fprintf(out, "%sline=%u", sep, line);
                sep = ",";
        }
        if (col) {
                fprintf(out, "%scol=%u", sep, col);
                sep = ",";
        }
        if (title) {
                fprintf(out, "%stitle=", sep);
                annotation_field(out, title, true);
        }
        fputs("::", out);
        annotation_field(out, message, false);
        fputc('\n', out);
        fflush(out);
}

/* ---- leak reports ---- */

static bool leaks_are_warnings;
static leak_hook_t leak_hook;
static void *leak_hook_userdata;

void report_leaks_to(leak_hook_t hook, void *userdata) {
        leak_hook = hook;
        leak_hook_userdata = userdata;
}

void report_leaks_as_warnings(bool warn) {
        leaks_are_warnings = warn;
}

bool leak_where_is_stream(const char *where) {
        return streq(where, "stdout") || streq(where, "stderr") || streq(where, "stdout+stderr") ||
               streq(where, "stdin");
}

char *leak_place(const char *where, const char *member, uint64_t line, uint64_t col) {
        char pos[48] = "";
        if (line > 0)
                snprintf(pos, sizeof pos, ":%" PRIu64 ":%" PRIu64, line, col);
        return strdup_printf("%s%s%s%s", where, member ? "!" : "", member ? member : "", pos);
}

/* Leaks of one secret in one form at one place: the first LEAK_REPORTS_EACH are reported one
 * by one, the rest counted, so a step that prints a secret on every line costs a line in the
 * end, not one per leak, and memory stays flat in the number of leaks. */
struct leak_group {
        char *where;         /* a stream's name or a path */
        char *member;        /* of the archive at where; NULL: none */
        char *name;          /* the secret's */
        const char *form;
        uint64_t count;
        struct leak_pos first, last;          /* of the leaks past the first LEAK_REPORTS_EACH */
        uint64_t summarized;                  /* how many of those a "more" line has told */
};
static struct leak_group *groups;
static size_t n_groups;

/* Reports wait until the step's output is over: written while it runs, they would land in
 * the middle of its stderr lines. */
struct queued {
        size_t group;
        struct leak_pos pos;
};
static struct queued *queue;
static size_t n_queue;

static void say_leak(const char *fmt, ...) _printf_(1, 2);
static void say_leak(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *text = NULL;
        if (vasprintf(&text, fmt, ap) >= 0)
                (leaks_are_warnings ? log_warning : log_error)("%s", text);
        va_end(ap);
}

static unsigned annotation_number(uint64_t n) {
        return n > UINT_MAX ? UINT_MAX : (unsigned) n;
}

/* The annotation's file, line and col are the leak's for a file; a member's position is not
 * one in the archive, and a stream has no file: the message says where. */
static void annotate_leak(const struct leak_group *g, const struct leak_pos *pos, const char *fmt, ...) _printf_(3, 4);
static void annotate_leak(const struct leak_group *g, const struct leak_pos *pos, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *text = NULL;
        bool stream = leak_where_is_stream(g->where), in_file = !stream && !g->member;
        /* workflow commands go to stdout */
        if (vasprintf(&text, fmt, ap) >= 0)
                annotation_print(stdout, leaks_are_warnings ? "warning" : "error", stream ? NULL : g->where,
                                 in_file ? annotation_number(pos->line) : 0, in_file ? annotation_number(pos->col) : 0,
                                 "secret leaked", text);
        va_end(ap);
}

/* The program that wrote each file the output guard saw the step write: a report names it. */
static json_t *writers;

void report_writer(const char *where, const char *program) {
        if (!writers)
                writers = json_object();
        if (writers && program)
                (void) json_object_set_new(writers, where, json_string(program));
}

const char *leak_writer(const char *where) {
        return writers ? json_string_value(json_object_get(writers, where)) : NULL;
}

static void print_queued(const struct queued *q) {
        const struct leak_group *g = &groups[q->group];
        _cleanup_free_ char *place = leak_place(g->where, g->member, q->pos.line, q->pos.col);
        const char *writer = leak_writer(g->where);
        say_leak("leak: %s (%s): %s%s%s%s", place ? place : g->where, g->form, g->name,
                 writer ? " (written by " : "", writer ? writer : "", writer ? ")" : "");
        annotate_leak(g, &q->pos, "%s (%s) at %s", g->name, g->form, place ? place : g->where);
}

/* One line for the leaks of g that were counted, not reported one by one. */
static void print_more(struct leak_group *g) {
        uint64_t more = g->count > LEAK_REPORTS_EACH ? g->count - LEAK_REPORTS_EACH : 0;
        if (more <= g->summarized)
                return;
        g->summarized = more;
        _cleanup_free_ char *place = leak_place(g->where, g->member, 0, 0);
        _cleanup_free_ char *first = leak_place(g->where, g->member, g->first.line, g->first.col);
        _cleanup_free_ char *last = leak_place(g->where, g->member, g->last.line, g->last.col);
        /* without memory for the positions, the place alone: the count is still told */
        const char *p = place ? place : g->where, *from = first ? first : p, *to = last ? last : p;
        say_leak("leak: %s (%s): %s: %" PRIu64 " more, from %s to %s", p, g->form, g->name, more, from, to);
        annotate_leak(g, &g->first, "%s (%s): %" PRIu64 " more, from %s to %s", g->name, g->form, more, from, to);
}

void flush_leak_reports(void) {
        for (size_t i = 0; i < n_queue; i++)
                print_queued(&queue[i]);
        for (size_t i = 0; i < n_groups; i++)
                print_more(&groups[i]);
        free(queue);
        queue = NULL;
        n_queue = 0;
}

void leak_groups_foreach(void (*fn)(void *userdata, const struct leak_summary *s), void *userdata) {
        for (size_t i = 0; i < n_groups; i++) {
                const struct leak_group *g = &groups[i];
                if (g->count <= LEAK_REPORTS_EACH)
                        continue;
                struct leak_summary s = {
                        .name = g->name, .form = g->form, .where = g->where, .member = g->member,
                        .count = g->count - LEAK_REPORTS_EACH, .first = g->first, .last = g->last,
                };
                fn(userdata, &s);
        }
}

void leak_reports_done(void) {
        flush_leak_reports();
        for (size_t i = 0; i < n_groups; i++)
                free(groups[i].where), free(groups[i].member), free(groups[i].name);
        free(groups);
        groups = NULL;
        n_groups = 0;
        json_decref(writers);
        writers = NULL;
}

/* The group of (name, form, where, member), made if new; the last one used is the likeliest. */
static struct leak_group *leak_group_of(const char *name, const char *form, const char *where, const char *member) {
        for (size_t i = n_groups; i > 0; i--) {
                struct leak_group *g = &groups[i - 1];
                if (g->form == form && streq(g->name, name) && streq(g->where, where) && streq_ptr(g->member, member))
                        return g;
        }
        struct leak_group *t = realloc(groups, (n_groups + 1) * sizeof(*t));
        if (!t)
                return NULL;
        groups = t;
        struct leak_group *g = &groups[n_groups];
        *g = (struct leak_group) { .where = strdup(where), .member = member ? strdup(member) : NULL,
                                   .name = strdup(name), .form = form };
        if (!g->where || !g->name || (member && !g->member)) {
                free(g->where), free(g->member), free(g->name);
                return NULL;
        }
        n_groups++;
        return g;
}

void report_leak(const struct redact_leak *leak, const char *where) {
        struct leak_group *g = leak_group_of(leak->name, redact_form_name(leak->form), where, leak->member);
        struct leak_pos pos = { leak->offset, leak->line, leak->col };
        bool reported = false;
        if (g && ++g->count <= LEAK_REPORTS_EACH) {
                struct queued *q = realloc(queue, (n_queue + 1) * sizeof(*q));
                if (q) {
                        queue = q;
                        queue[n_queue++] = (struct queued) { .group = (size_t) (g - groups), .pos = pos };
                        reported = true;
                }
        } else if (g) {
                if (g->count == LEAK_REPORTS_EACH + 1)
                        g->first = pos;
                g->last = pos;
        }
        if (leak_hook)
                leak_hook(leak_hook_userdata, leak, where, reported);
}

/* ---- a run ---- */

static const char *sandbox_text(const struct run *r, char *buf, size_t size) {
        if (run_sandbox_level(r) == SANDBOX_LEVEL_OFF)
                return "off (redaction only)";
        sandbox_status_format(&r->sandbox_status, buf, size);
        return buf;
}

void output_sandbox_line(const struct run *r) {
        char line[768];
        const char *text = sandbox_text(r, line, sizeof line);
        if (run_sandbox_level(r) != SANDBOX_LEVEL_OFF && r->sandbox_status.missing)
                log_notice("sandbox: %s", text);   /* auto: one line naming what is missing and why */
        else
                log_info("sandbox: %s", text);
}

void output_sandbox_error(const struct run *r, int k) {
        log_error("sandbox: %s%s", k == -ENOTSUP ? r->sandbox_status.why : strerror(-k),
                  run_sandbox_level(r) == SANDBOX_LEVEL_STRICT
                  ? " [strict mode needs every layer; --sandbox auto runs without what is missing]" : "");
}

void output_leak_summary(const struct run *r) {
        uint64_t leaks = r->output_leaks + r->artifact_leaks;
        if (leaks == 0)
                return;
        bool fail = run_on_leak(r) == ON_LEAK_FAIL;
        (fail ? log_error : log_warning)(
                "%llu leak%s of secrets (%llu in the output, masked; %llu in artifacts); the step exited with status %d%s",
                (unsigned long long) leaks, leaks == 1 ? "" : "s", (unsigned long long) r->output_leaks,
                (unsigned long long) r->artifact_leaks, r->command_status,
                fail ? ": failing the step (on_leak: fail)" : " (on_leak: warn)");
}

static const char *backend_label(const struct mf_secret *s) {
        return mf_secret_is_ephemeral(s) ? "generate" : s->backend;
}

static void dry_run_json(const struct run *r) {
        const struct sandbox_status *st = &r->sandbox_status;
        json_t *list = json_array();
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", s->name, "backend", backend_label(s),
                                      "deliver", delivery_method_name(s->deliver), "as", s->as);
                if (r->secrets[i].meta.version)
                        json_object_set_new(o, "version", json_integer((json_int_t) r->secrets[i].meta.version));
                json_array_append_new(list, o);
        }
        json_t *sandbox = run_sandbox_json(r);
        if (sandbox)
                json_object_set_new(sandbox, "why", st->missing ? json_string(st->why) : json_null());
        json_t *doc = json_pack("{s:s, s:s?, s:o, s:i, s:o}", "environment", r->environment, "stage", r->stage,
                                "secrets", list, "withheld_pull_request", (int) r->n_withheld_pr, "sandbox", sandbox);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
}

void output_dry_run(const struct run *r) {
        if (r->o->format == FORMAT_JSON) {
                dry_run_json(r);
                return;
        }
        char layers[768];
        printf("dry run: environment %s, stage %s: %zu secret%s would be delivered\n", r->environment,
               r->stage ? r->stage : "(none)", r->n_secrets, r->n_secrets == 1 ? "" : "s");
        printf("sandbox: %s\n", sandbox_text(r, layers, sizeof layers));
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                _cleanup_free_ char *upper = strdup_upper(s->as);
                printf("  %-24s from %-10s as ", s->name, backend_label(s));
                if (s->deliver == DELIVER_FD)
                        printf("fd, number in $%s_FD\n", upper ? upper : s->as);
                else if (s->deliver == DELIVER_ENV)
                        printf("env, variable %s\n", s->as);
                else
                        printf("file, $SECRETS_DIR/%s\n", s->as);
        }
}

static void step_summary_more(void *userdata, const struct leak_summary *l) {
        _cleanup_free_ char *place = leak_place(l->where, l->member, 0, 0);
        _cleanup_free_ char *first = leak_place(l->where, l->member, l->first.line, l->first.col);
        _cleanup_free_ char *last = leak_place(l->where, l->member, l->last.line, l->last.col);
        if (place && first && last)
                fprintf(userdata, "- `%s` (%s) at `%s`: %" PRIu64 " more, from `%s` to `%s`\n", l->name, l->form, place,
                        l->count, first, last);
}

static void step_summary_leaks(const struct run *r, FILE *f) {
        uint64_t n_leaks = r->output_leaks + r->artifact_leaks;
        if (n_leaks == 0) {
                fprintf(f, "No leak detected.\n");
                return;
        }
        fprintf(f, "**%llu leak%s detected** (masked in the log):\n\n", (unsigned long long) n_leaks,
                n_leaks == 1 ? "" : "s");
        size_t i;
        json_t *l;
        json_array_foreach(r->leaks, i, l) {
                const char *where = json_string_value(json_object_get(l, "stream"));
                if (!where)
                        where = json_string_value(json_object_get(l, "path"));
                _cleanup_free_ char *place = leak_place(where ? where : "?",
                                                        json_string_value(json_object_get(l, "member")),
                                                        (uint64_t) json_integer_value(json_object_get(l, "line")),
                                                        (uint64_t) json_integer_value(json_object_get(l, "col")));
                fprintf(f, "- `%s` (%s) at `%s`\n", json_string_value(json_object_get(l, "name")),
                        json_string_value(json_object_get(l, "form")), place ? place : "?");
        }
        leak_groups_foreach(step_summary_more, f);
}

void output_result_file(const struct run *r) {
        if (!r->o->result_file)
                return;
        json_t *doc = json_pack("{s:i, s:o, s:I, s:I, s:I, s:b}", "status", r->status, "command_status",
                                r->command_status >= 0 ? json_integer(r->command_status) : json_null(), "leaks",
                                (json_int_t) (r->output_leaks + r->artifact_leaks), "output_leaks",
                                (json_int_t) r->output_leaks, "artifact_leaks", (json_int_t) r->artifact_leaks,
                                "timed_out", r->timed_out);
        _cleanup_(json_text_freep) char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        _cleanup_fclose_ FILE *f = text ? fopen(r->o->result_file, "we") : NULL;
        if (!f || fprintf(f, "%s\n", text) < 0 || fflush(f) != 0)
                log_warning("--result-file %s: cannot write it: %s", r->o->result_file, strerror(errno));
}

void output_step_summary(const struct run *r) {
        const char *path = getenv("GITHUB_STEP_SUMMARY");
        if (ci_system_detect() != CI_GITHUB || !path || !*path)
                return;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return;
        fprintf(f, "### secrets-run: `%s` exited with status %d", r->o->args ? r->o->args[0] : "?", r->status);
        if (r->command_status >= 0 && r->command_status != r->status)
                fprintf(f, " (the command's own: %d)", r->command_status);
        fprintf(f, "\n\nEnvironment `%s`%s%s%s.\n\n", r->environment ? r->environment : "?",
                r->stage ? ", stage `" : "", r->stage ? r->stage : "", r->stage ? "`" : "");
        if (r->delivered && r->n_secrets > 0) {
                fprintf(f, "| secret | delivered as | read |\n|---|---|---|\n");
                for (size_t i = 0; i < r->n_secrets; i++) {
                        const struct mf_secret *s = r->secrets[i].def;
                        const char *program = NULL;
                        enum read_state st = s->deliver == DELIVER_FILE ? output_guard_read_state(r, s->as, &program)
                                                                        : READ_UNKNOWN;
                        char read[64] = "";
                        if (st == READ_NOT)
                                snprintf(read, sizeof read, "**granted but not read**");
                        else if (st == READ_BY && program)
                                snprintf(read, sizeof read, "by `%s`", program);
                        else if (st == READ_BY)
                                snprintf(read, sizeof read, "yes");
                        fprintf(f, "| `%s` | %s `%s` | %s |\n", s->name, delivery_method_name(s->deliver), s->as, read);
                }
        } else
                fprintf(f, "No secret was delivered.\n");
        char layers[768];
        fprintf(f, "\nSandbox: %s\n\n", sandbox_text(r, layers, sizeof layers));
        step_summary_leaks(r, f);
        fputc('\n', f);
        if (fclose(f) != 0)
                return;
        _cleanup_free_ char *masked = output_mask(text, size, &size);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0 || write_all(fd, masked ? masked : text, size) < 0)
                log_warning("GitHub step summary %s: %s", path, strerror(errno));
}
