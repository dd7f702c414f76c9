/* The report as one self-contained HTML page: inline CSS and SVG, no script, no external
 * asset, readable with JavaScript off and printable. Every text from the manifest or the logs
 * is escaped; rows carry data-* attributes with the numbers they show, for tools and tests. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "report.h"

#define TIMELINE_WIDTH 720
#define TIMELINE_ROW 22
#define TIMELINE_LABEL 190
#define BAR_WIDTH 180
#define DETAIL_ROWS 50                 /* fetches listed per secret; the rest are counted */

static const char *const STYLE =
        "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}"
        "h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}"
        "table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{text-align:left;padding:.3em .5em;"
        "border-bottom:1px solid #eee;vertical-align:top}th{background:#f6f6f6}"
        ".muted{color:#777}.ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e;font-weight:600}"
        ".cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;"
        "min-width:9em}.card b{display:block;font-size:1.6em}code{font-size:.92em}"
        "@media print{h2{break-before:auto}section{break-inside:avoid}}";

static void esc(FILE *f, const char *s) {
        for (; s && *s; s++)
                switch (*s) {
                case '&': fputs("&amp;", f); break;
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '"': fputs("&quot;", f); break;
                case '\'': fputs("&#39;", f); break;
                default: fputc(*s, f); break;
                }
}

static const char *jstr(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static void esc_or(FILE *f, const char *s, const char *fallback) {
        if (s)
                esc(f, s);
        else
                fprintf(f, "<span class=muted>%s</span>", fallback);
}

static uint64_t leak_count(const struct report_secret *rs) {
        uint64_t n = 0;
        size_t i;
        json_t *l;
        json_array_foreach(rs->leaks, i, l)
                n += (uint64_t) json_integer_value(json_object_get(l, "count"));
        return n;
}

static const char *rotation_class(enum rotation_status st) {
        return st == ROTATION_FAILING ? "bad" : st == ROTATION_OVERDUE ? "warn" : st == ROTATION_OK ? "ok" : "muted";
}

/* The age as a bar against max_age (a tick) and fail_after (a red tick). */
static void rotation_cell(FILE *f, const struct report_secret *rs) {
        const struct mf_secret *s = rs->s;
        char age[32], max[32], fail[32];
        if (rs->age_known)
                format_age(rs->age, age, sizeof age);
        if (!s->has_rotation) {
                fprintf(f, "<span class=muted>no rotation declared%s%s</span>", rs->age_known ? "; age " : "",
                        rs->age_known ? age : "");
                return;
        }
        format_duration(s->rotation_max_age, max, sizeof max);
        if (s->rotation_fail_after)
                format_duration(s->rotation_fail_after, fail, sizeof fail);
        if (!rs->age_known) {
                fprintf(f, "max %s%s%s; <span class=muted>age unknown (", max, s->rotation_fail_after ? ", fails after " : "",
                        s->rotation_fail_after ? fail : "");
                esc(f, rs->store_note);
                fputs(")</span>", f);
                return;
        }
        double scale = (double) (s->rotation_fail_after ? s->rotation_fail_after : s->rotation_max_age) * 1.25;
        double bar = (double) rs->age / scale;
        const char *colour = rs->rotation == ROTATION_FAILING ? "#cf222e" : rs->rotation == ROTATION_OVERDUE ? "#d4a72c" : "#2da44e";
        fprintf(f, "<svg width=\"%d\" height=\"14\" role=\"img\" aria-label=\"age %s of %s\">"
                   "<rect width=\"%d\" height=\"14\" fill=\"#eee\"/><rect width=\"%.0f\" height=\"14\" fill=\"%s\"/>"
                   "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"0\" y2=\"14\" stroke=\"#555\" stroke-width=\"2\"/>",
                BAR_WIDTH, age, max, BAR_WIDTH, (bar > 1 ? 1 : bar) * BAR_WIDTH, colour,
                (double) s->rotation_max_age / scale * BAR_WIDTH, (double) s->rotation_max_age / scale * BAR_WIDTH);
        if (s->rotation_fail_after)
                fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"0\" y2=\"14\" stroke=\"#cf222e\" stroke-width=\"2\"/>",
                        (double) s->rotation_fail_after / scale * BAR_WIDTH, (double) s->rotation_fail_after / scale * BAR_WIDTH);
        fprintf(f, "</svg><br><span class=%s>%s old: %s</span> <span class=muted>(max %s%s%s)</span>",
                rotation_class(rs->rotation), age, rotation_status_name(rs->rotation), max,
                s->rotation_fail_after ? ", fails after " : "", s->rotation_fail_after ? fail : "");
}

static const char *approval_class(const char *status) {
        return streq(status, "ok") ? "ok" : streq(status, "due") || streq(status, "unverified") ? "warn" : "bad";
}

static void approvals_cell(FILE *f, const struct report_secret *rs) {
        size_t i;
        json_t *a;
        char age[32];
        if (json_array_size(rs->approvals) == 0) {
                fputs("<span class=muted>none needed</span>", f);
                return;
        }
        json_array_foreach(rs->approvals, i, a) {
                const char *status = jstr(a, "status");
                json_t *secs = json_object_get(a, "age_seconds");
                fprintf(f, "%s<span class=%s>", i ? "<br>" : "", approval_class(status));
                esc(f, jstr(a, "environment"));
                fputs(": ", f);
                esc(f, jstr(a, "identity"));
                fprintf(f, " %s", status);
                if (json_is_integer(secs))
                        fprintf(f, " (%s old)", format_age((uint64_t) json_integer_value(secs), age, sizeof age));
                fputs("</span>", f);
        }
}

static void approvals_attr(FILE *f, const struct report_secret *rs) {
        size_t i;
        json_t *a;
        fputs(" data-approvals=\"", f);
        json_array_foreach(rs->approvals, i, a) {
                fputs(i ? "," : "", f);
                esc(f, jstr(a, "environment"));
                fputc(':', f);
                esc(f, jstr(a, "identity"));
                fputc(':', f);
                esc(f, jstr(a, "status"));
        }
        fputc('"', f);
}

static json_t *last_fetch(const struct report_secret *rs) {
        json_t *best = NULL, *e;
        size_t i;
        json_array_foreach(rs->fetches, i, e)
                if (!best || json_integer_value(json_object_get(e, "time")) >= json_integer_value(json_object_get(best, "time")))
                        best = e;
        return best;
}

static void secret_row(FILE *f, const struct report_secret *rs) {
        const struct mf_secret *s = rs->s;
        json_t *last = last_fetch(rs);
        uint64_t leaks = leak_count(rs);
        fputs("<tr id=\"secret-", f);
        esc(f, s->name);
        fprintf(f, "\" data-fetches=\"%zu\" data-leaks=\"%" PRIu64 "\" data-unread=\"%zu\" data-rotation=\"%s\"",
                json_array_size(rs->fetches), leaks, rs->unread, rotation_status_name(rs->rotation));
        approvals_attr(f, rs);
        fputs(" data-last-fetch=\"", f);
        esc(f, last ? jstr(last, "ts") : "");
        fputs("\"><td><a href=\"#details-", f);
        esc(f, s->name);
        fputs("\"><code>", f);
        esc(f, s->name);
        fputs("</code></a></td><td>", f);
        esc_or(f, s->owner, "none");
        fputs("</td><td>", f);
        esc(f, mf_secret_is_ephemeral(s) ? "generated per run" : s->backend ? s->backend : "-");
        fputs("</td><td>", f);
        rotation_cell(f, rs);
        fputs("</td><td>", f);
        approvals_cell(f, rs);
        fprintf(f, "</td><td>%zu</td><td>", json_array_size(rs->fetches));
        esc_or(f, last ? jstr(last, "ts") : NULL, "never");
        fprintf(f, "</td><td class=%s>%" PRIu64 "</td><td class=%s>", leaks ? "bad" : "ok", leaks, rs->unread ? "warn" : "muted");
        if (rs->unread)
                fprintf(f, "granted but never read in %zu run%s", rs->unread, rs->unread == 1 ? "" : "s");
        else
                fputs("-", f);
        fputs("</td></tr>\n", f);
}

/* Each secret's fetches on one time axis; a run that leaked it is red. */
static void timeline(FILE *f, const struct report *r) {
        if (r->n_runs == 0) {
                fputs("<p class=muted>No runs of this project in the audit logs.</p>\n", f);
                return;
        }
        double span = r->last_ts > r->first_ts ? (double) (r->last_ts - r->first_ts) : 1;
        int plot = TIMELINE_WIDTH - TIMELINE_LABEL - 20;
        char a[32], b[32];
        fprintf(f, "<svg width=\"%d\" height=\"%zu\" role=\"img\" aria-label=\"fetches over time\">\n", TIMELINE_WIDTH,
                r->n_secrets * TIMELINE_ROW + 40);
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct report_secret *rs = &r->secrets[i];
                size_t y = i * TIMELINE_ROW + 15;
                fprintf(f, "<text x=\"0\" y=\"%zu\" font-size=\"12\">", y + 4);
                esc(f, rs->s->name);
                fprintf(f, "</text><line x1=\"%d\" x2=\"%d\" y1=\"%zu\" y2=\"%zu\" stroke=\"#eee\"/>", TIMELINE_LABEL,
                        TIMELINE_WIDTH - 10, y, y);
                size_t j;
                json_t *e, *l;
                json_array_foreach(rs->fetches, j, e) {
                        bool leaked = false;
                        size_t n;
                        json_array_foreach(rs->leaks, n, l)
                                leaked |= streq_ptr(jstr(l, "run"), jstr(e, "run"));
                        double x = TIMELINE_LABEL + 5 + (double) (json_integer_value(json_object_get(e, "time")) - r->first_ts) / span * plot;
                        fprintf(f, "<circle cx=\"%.1f\" cy=\"%zu\" r=\"5\" fill=\"%s\"><title>", x, y, leaked ? "#cf222e" : "#0969da");
                        esc(f, jstr(e, "ts"));
                        fputs(leaked ? " (leaked)" : "", f);
                        fputs("</title></circle>", f);
                }
                fputc('\n', f);
        }
        fprintf(f, "<text x=\"%d\" y=\"%zu\" font-size=\"11\" fill=\"#777\">%s</text>", TIMELINE_LABEL,
                r->n_secrets * TIMELINE_ROW + 30, format_timestamp(r->first_ts, a, sizeof a));
        fprintf(f, "<text x=\"%d\" y=\"%zu\" font-size=\"11\" fill=\"#777\" text-anchor=\"end\">%s</text></svg>\n",
                TIMELINE_WIDTH - 10, r->n_secrets * TIMELINE_ROW + 30, format_timestamp(r->last_ts, b, sizeof b));
}

static void cell(FILE *f, json_t *o, const char *key) {
        fputs("<td>", f);
        json_t *v = json_object_get(o, key);
        if (json_is_string(v))
                esc(f, json_string_value(v));
        else if (json_is_integer(v))
                fprintf(f, "%lld", (long long) json_integer_value(v));
        else
                fputs("<span class=muted>-</span>", f);
        fputs("</td>", f);
}

static void details(FILE *f, const struct report_secret *rs) {
        size_t i, n = json_array_size(rs->fetches);
        json_t *e;
        fputs("<section id=\"details-", f);
        esc(f, rs->s->name);
        fputs("\"><h3><code>", f);
        esc(f, rs->s->name);
        fputs("</code></h3>", f);
        if (rs->s->description) {
                fputs("<p>", f);
                esc(f, rs->s->description);
                fputs("</p>", f);
        }
        if (n) {
                fputs("<h4>Runs that fetched it</h4><table class=fetches><tr><th>run started</th><th>environment</th><th>stage</th><th>branch</th>"
                      "<th>event</th><th>actor</th><th>exit</th><th>read</th></tr>\n", f);
                for (i = n; i-- > 0 && n - i <= DETAIL_ROWS;) {
                        e = json_array_get(rs->fetches, i);
                        fputs("<tr>", f);
                        cell(f, e, "ts"), cell(f, e, "environment"), cell(f, e, "stage"), cell(f, e, "branch");
                        cell(f, e, "event"), cell(f, e, "actor"), cell(f, e, "status");
                        json_t *read = json_object_get(e, "read");
                        fprintf(f, "<td class=%s>%s</td></tr>\n", json_is_false(read) ? "warn" : "muted",
                                json_is_true(read) ? "yes" : json_is_false(read) ? "never read" : "not watched");
                }
                fputs("</table>", f);
                if (n > DETAIL_ROWS)
                        fprintf(f, "<p class=muted>and %zu earlier runs</p>", n - DETAIL_ROWS);
        } else
                fputs("<p class=muted>Never fetched in these audit logs.</p>", f);
        if (json_array_size(rs->leaks)) {
                fputs("<h4>Leaks</h4><table class=leaks><tr><th>run started</th><th>where</th><th>form</th><th>count</th></tr>\n", f);
                json_array_foreach(rs->leaks, i, e) {
                        fputs("<tr class=bad>", f);
                        cell(f, e, "ts"), cell(f, e, "where"), cell(f, e, "form"), cell(f, e, "count");
                        fputs("</tr>\n", f);
                }
                fputs("</table>", f);
        }
        if (json_array_size(rs->writes)) {
                fputs("<h4>Versions written</h4><table class=writes><tr><th>written</th><th>by</th><th>action</th><th>version</th></tr>\n", f);
                json_array_foreach(rs->writes, i, e) {
                        fputs("<tr>", f);
                        cell(f, e, "ts"), cell(f, e, "command"), cell(f, e, "action"), cell(f, e, "version");
                        fputs("</tr>\n", f);
                }
                fputs("</table>", f);
        }
        fputs("</section>\n", f);
}

static void summary(FILE *f, const struct report *r) {
        size_t overdue = 0, failing = 0, approvals_due = 0, unread = 0;
        uint64_t leaks = 0;
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct report_secret *rs = &r->secrets[i];
                overdue += rs->rotation == ROTATION_OVERDUE;
                failing += rs->rotation == ROTATION_FAILING;
                leaks += leak_count(rs);
                unread += rs->unread > 0;
                size_t j;
                json_t *a;
                json_array_foreach(rs->approvals, j, a)
                        approvals_due += !streq(jstr(a, "status"), "ok");
        }
        fprintf(f, "<div class=cards>"
                   "<div class=card id=card-secrets><b>%zu</b>secrets</div>"
                   "<div class=card id=card-runs><b>%zu</b>runs</div>"
                   "<div class=card id=card-rotation><b class=%s>%zu</b>past rotation (%zu failing)</div>"
                   "<div class=card id=card-approvals><b class=%s>%zu</b>approvals not current</div>"
                   "<div class=card id=card-leaks><b class=%s>%" PRIu64 "</b>leaks</div>"
                   "<div class=card id=card-unread><b class=%s>%zu</b>granted but never read</div></div>\n",
                r->n_secrets, r->n_runs, overdue + failing ? "warn" : "ok", overdue + failing, failing,
                approvals_due ? "warn" : "ok", approvals_due, leaks ? "bad" : "ok", leaks, unread ? "warn" : "ok", unread);
}

static void header(FILE *f, const struct report *r) {
        char now[32];
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width\"><title>secrets-run report: ", f);
        esc_or(f, r->m->project, "(no project)");
        fprintf(f, "</title><style>%s</style></head>\n<body>\n<h1>secrets-run report: ", STYLE);
        esc_or(f, r->m->project, "(no project)");
        fprintf(f, "</h1>\n<p class=muted>Manifest <code>");
        esc(f, r->m->path);
        fprintf(f, "</code>, made %s. Names and metadata only: no value was fetched.</p>\n",
                format_timestamp(r->now, now, sizeof now));
        fputs("<h2>Audit logs</h2>\n", f);
        if (json_array_size(r->logs) == 0) {
                fputs("<p class=muted>No audit log was read: fetches, reads and leaks are not shown.</p>\n", f);
                return;
        }
        fputs("<table id=logs><tr><th>log</th><th>records</th><th>verified</th></tr>\n", f);
        size_t i;
        json_t *l;
        json_array_foreach(r->logs, i, l) {
                fputs("<tr><td><code>", f);
                esc(f, jstr(l, "path"));
                fprintf(f, "</code></td><td>%lld</td><td class=ok>hash chain intact%s</td></tr>\n",
                        (long long) json_integer_value(json_object_get(l, "records")),
                        json_is_true(json_object_get(l, "signatures_checked")) ? ", every signature valid" : "");
        }
        fputs("</table>\n", f);
}

static void page(FILE *f, const struct report *r) {
        header(f, r);
        fputs("<h2>Summary</h2>\n", f);
        summary(f, r);
        fputs("<h2>Secrets</h2>\n<table id=secrets><tr><th>secret</th><th>owner</th><th>from</th><th>age against rotation</th>"
              "<th>approvals</th><th>fetches</th><th>last fetched</th><th>leaks</th><th>reads</th></tr>\n", f);
        for (size_t i = 0; i < r->n_secrets; i++)
                secret_row(f, &r->secrets[i]);
        fputs("</table>\n", f);
        if (json_object_size(r->unknown_names)) {
                const char *name;
                json_t *v;
                fputs("<p class=warn>The logs also show fetches of secrets this manifest no longer declares: ", f);
                bool first = true;
                json_object_foreach(r->unknown_names, name, v) {
                        fputs(first ? "<code>" : ", <code>", f);
                        esc(f, name);
                        fputs("</code>", f);
                        first = false;
                }
                fputs(".</p>\n", f);
        }
        fputs("<h2>Fetches over time</h2>\n", f);
        timeline(f, r);
        fputs("<h2>Each secret</h2>\n", f);
        for (size_t i = 0; i < r->n_secrets; i++)
                details(f, &r->secrets[i]);
        fputs("</body></html>\n", f);
}

int report_write_html(const struct report *r, const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        page(f, r);
        if (fclose(f) != 0)
                return -ENOMEM;
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.XXXXXX", path);
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int k = write_all(fd, text, size);
        if (k >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0))
                k = -errno;
        if (k < 0)
                (void) unlink(tmp);
        return k;
}
