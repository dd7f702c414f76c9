/* `secrets-run report`: what the manifest, the stores, the approvals and the audit logs say
 * about each secret, gathered here (the logs verified first) and drawn by report_html.c as one
 * self-contained page. Metadata only: no value is fetched, and audit logs hold none. */
#include <sys/stat.h>
#include <time.h>

#include "agent.h"
#include "approval.h"
#include "report.h"

#define REPORT_LOG_MAX_LINE (1024 * 1024)

static void report_secret_done(struct report_secret *rs) {
        free(rs->store_note);
        json_decref(rs->approvals);
        json_decref(rs->fetches);
        json_decref(rs->leaks);
        json_decref(rs->writes);
}

void report_done(struct report *r) {
        for (size_t i = 0; i < r->n_secrets; i++)
                report_secret_done(&r->secrets[i]);
        free(r->secrets);
        json_decref(r->logs);
        json_decref(r->runs);
        json_decref(r->unknown_names);
        manifest_free(r->m);
}

struct report_secret *report_find(struct report *r, const char *name) {
        for (size_t i = 0; name && i < r->n_secrets; i++)
                if (streq(r->secrets[i].s->name, name))
                        return &r->secrets[i];
        return NULL;
}

/* ---- the stores: each secret's age, as plan reads it (metadata only) ---- */

static void survey_store(struct report *r, struct sources *src, struct report_secret *rs) {
        const struct mf_secret *s = rs->s;
        rs->rotation = s->has_rotation ? ROTATION_UNKNOWN : ROTATION_NONE;
        if (mf_secret_is_ephemeral(s)) {
                rs->store_note = strdup("generated for each run");
                return;
        }
        struct backend *b;
        if (sources_get(src, s, &b) < 0) {
                rs->store_note = strdup("backend unavailable");
                return;
        }
        struct secret_ref ref = secret_ref_of(s);
        struct secret_meta meta = {};
        _cleanup_free_ char *why = NULL;
        int k = backend_stat(b, &ref, &meta, &why);
        if (k == -ENOENT)
                rs->store_note = strdup("missing from its backend");
        else if (k < 0)
                rs->store_note = why ? steal_pointer(&why) : strdup(strerror(-k));
        else if (meta.created > 0) {
                rs->age_known = true;
                rs->age = r->now > meta.created ? (uint64_t) (r->now - meta.created) : 0;
                rs->rotation = rotation_evaluate(s, meta.created, r->now, NULL);
        } else
                rs->store_note = strdup("its backend keeps no creation time");
        secret_meta_done(&meta);
}

/* ---- approvals ---- */

static const char *verdict_status(const struct approval_verdict *v) {
        if (v->state != APPROVAL_VALID)
                return v->state == APPROVAL_MISSING ? "missing" : v->state == APPROVAL_CHANGED ? "changed" : "invalid";
        return v->recert == RECERT_EXPIRED ? "expired" : v->recert == RECERT_DUE ? "due" : "ok";
}

static int gather_approvals(struct report *r, const struct approvals *a, struct report_secret *rs) {
        const struct mf_secret *s = rs->s;
        if (!(rs->approvals = json_array()))
                return -ENOMEM;
        for (size_t e = 0; e < r->m->n_environments; e++) {
                const char *env = r->m->environments[e].name;
                if (!approval_required(r->m, s, env) || (s->environments && !strv_contains(s->environments, env)))
                        continue;
                if (!a->configured) {
                        for (size_t i = 0; s->approved_by && s->approved_by[i]; i++)
                                json_array_append_new(rs->approvals, json_pack("{s:s, s:s, s:s, s:n, s:n}", "environment", env,
                                                                               "identity", s->approved_by[i], "status",
                                                                               "unverified", "approved", "age_seconds"));
                        continue;
                }
                struct approval_verdict *v = NULL;
                size_t n = 0;
                int k = approvals_verify(a, s, env, r->now, &v, &n);
                for (size_t i = 0; k >= 0 && i < n; i++) {
                        char ts[32] = "";
                        bool dated = v[i].state == APPROVAL_VALID;
                        if (dated)
                                format_timestamp(v[i].approved_at, ts, sizeof ts);
                        json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:o}", "environment", env, "identity", v[i].identity,
                                              "status", verdict_status(&v[i]), "approved", dated ? json_string(ts) : json_null(),
                                              "age_seconds", dated ? json_integer((json_int_t) v[i].age) : json_null());
                        k = j ? json_array_append_new(rs->approvals, j) : -ENOMEM;
                }
                approval_verdicts_free(v, n);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* ---- the audit logs ---- */

/* The record of run id (created empty): {start, fetch: [], deliver: {}, read: {}, leaks: [], exit}. */
static json_t *run_entry(struct report *r, const char *id) {
        json_t *e = json_object_get(r->runs, id);
        if (!e) {
                e = json_pack("{s:n, s:[], s:{}, s:{}, s:[], s:n}", "start", "fetch", "deliver", "read", "leaks", "exit");
                if (!e || json_object_set_new(r->runs, id, e) < 0)
                        return NULL;
        }
        return e;
}

static int take_record(struct report *r, json_t *rec) {
        const char *event = json_string_value(json_object_get(rec, "event"));
        const char *run = json_string_value(json_object_get(rec, "run"));
        const char *name = json_string_value(json_object_get(rec, "name"));
        if (!event || !run)
                return 0;
        if (streq(event, "secret.write")) {
                struct report_secret *rs = report_find(r, name);
                return rs ? json_array_append(rs->writes, rec) : 0;
        }
        json_t *e = run_entry(r, run);
        if (!e)
                return -ENOMEM;
        if (streq(event, "run.start"))
                return json_object_set(e, "start", rec);
        if (streq(event, "run.exit"))
                return json_object_set(e, "exit", rec);
        if (streq(event, "secret.fetch") && name)
                return json_array_append_new(json_object_get(e, "fetch"), json_string(name));
        if (streq(event, "secret.deliver") && name)
                return json_object_set(json_object_get(e, "deliver"), name, json_object_get(rec, "method"));
        if (streq(event, "secret.read") && name)
                return json_object_set_new(json_object_get(e, "read"), name, json_true());
        if (streq(event, "leak") && name)
                return json_array_append(json_object_get(e, "leaks"), rec);
        return 0;
}

/* One log: verified first (a log that fails is not used: the report would draw what someone
 * wrote into it), then read record by record. */
static int read_log(struct report *r, const char *path, const unsigned char *public_key) {
        struct audit_verdict verdict;
        int k = audit_verify_file(path, public_key, &verdict);
        if (k < 0) {
                log_error("report: audit log %s: %s", path, strerror(-k));
                return k;
        }
        if (!verdict.intact) {
                log_error("report: audit log %s:%zu: tampered: %s: no report is made from it [secrets-run audit verify %s]",
                          path, verdict.first_bad_line, verdict.reason, path);
                return -EBADMSG;
        }
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return log_error("report: audit log %s: %s", path, strerror(errno)), -errno;
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        ssize_t n;
        while (k >= 0 && (n = getline(&line, &size, f)) > 0) {
                json_error_t e;
                json_t *rec = (size_t) n <= REPORT_LOG_MAX_LINE ? json_loadb(line, (size_t) n, 0, &e) : NULL;
                if (rec)
                        k = take_record(r, rec);
                json_decref(rec);
        }
        json_t *entry = json_pack("{s:s, s:I, s:b}", "path", path, "records", (json_int_t) verdict.records,
                                  "signatures_checked", public_key != NULL);
        if (k >= 0)
                k = entry ? json_array_append_new(r->logs, entry) : -ENOMEM;
        return k < 0 ? k : 0;
}

static bool guard_was_on(json_t *run) {
        json_t *active = json_object_get(json_object_get(json_object_get(run, "exit"), "sandbox"), "active");
        size_t i;
        json_t *l;
        json_array_foreach(active, i, l)
                if (streq_ptr(json_string_value(l), "output-guard"))
                        return true;
        return false;
}

static char *leak_where(json_t *leak) {
        const char *place = json_string_value(json_object_get(leak, "stream"));
        if (!place)
                place = json_string_value(json_object_get(leak, "path"));
        const char *member = json_string_value(json_object_get(leak, "member"));
        json_int_t line = json_integer_value(json_object_get(leak, "line"));
        if (!line)
                line = json_integer_value(json_object_get(leak, "first_line"));
        json_int_t col = json_integer_value(json_object_get(leak, "col"));
        if (!col)
                col = json_integer_value(json_object_get(leak, "first_col"));
        return strdup_printf("%s%s%s:%lld:%lld", place ? place : "?", member ? "!" : "", member ? member : "",
                             (long long) line, (long long) col);
}

/* One run's records, credited to the secrets they name. */
static int credit_run(struct report *r, const char *id, json_t *run) {
        json_t *start = json_object_get(run, "start"), *exit = json_object_get(run, "exit");
        const char *project = json_string_value(json_object_get(start, "project"));
        if (!json_is_object(start) || (r->m->project && !streq_ptr(project, r->m->project)))
                return 0;   /* another project's run in a shared log */
        const char *ts = json_string_value(json_object_get(start, "ts"));
        int64_t t = 0;
        if (ts && parse_timestamp(ts, &t) >= 0) {
                r->first_ts = r->first_ts && r->first_ts < t ? r->first_ts : t;
                r->last_ts = r->last_ts > t ? r->last_ts : t;
        }
        r->n_runs++;
        bool guard = guard_was_on(run);
        json_t *ci = json_object_get(start, "ci"), *deliver = json_object_get(run, "deliver"), *name;
        size_t i;
        json_array_foreach(json_object_get(run, "fetch"), i, name) {
                struct report_secret *rs = report_find(r, json_string_value(name));
                if (!rs) {
                        json_object_set_new(r->unknown_names, json_string_value(name), json_true());
                        continue;
                }
                const char *method = json_string_value(json_object_get(deliver, rs->s->name));
                bool file = streq_ptr(method, "file");
                json_t *read = file && guard ? json_boolean(json_object_get(json_object_get(run, "read"), rs->s->name)) : json_null();
                rs->unread += file && guard && json_is_false(read);
                json_t *f = json_pack("{s:s?, s:I, s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:o}", "ts", ts, "time", (json_int_t) t,
                                      "run", id, "environment", json_object_get(start, "environment"),
                                      "stage", json_object_get(start, "stage"), "branch", json_object_get(ci, "branch"),
                                      "event", json_object_get(ci, "event"), "actor", json_object_get(ci, "actor"),
                                      "status", json_object_get(exit, "status"), "read", read);
                if (!f || json_array_append_new(rs->fetches, f) < 0)
                        return -ENOMEM;
        }
        json_t *leak;
        json_array_foreach(json_object_get(run, "leaks"), i, leak) {
                struct report_secret *rs = report_find(r, json_string_value(json_object_get(leak, "name")));
                _cleanup_free_ char *where = rs ? leak_where(leak) : NULL;
                json_int_t count = json_integer_value(json_object_get(leak, "count"));
                json_t *l = where ? json_pack("{s:s?, s:I, s:s, s:O?, s:s, s:I}", "ts", ts, "time", (json_int_t) t, "run", id,
                                              "form", json_object_get(leak, "form"), "where", where,
                                              "count", count ? count : 1) : NULL;
                if (rs && (!l || json_array_append_new(rs->leaks, l) < 0))
                        return -ENOMEM;
        }
        return 0;
}

static int read_logs(struct report *r) {
        const struct options *o = r->o;
        unsigned char key[AUDIT_PUBLIC_KEY_BYTES];
        int k;
        if (o->public_key && (k = audit_read_public_key(o->public_key, key)) < 0)
                return log_error("report: --public-key %s: %s", o->public_key, strerror(-k)), k;
        _cleanup_strv_free_ char **logs = strv_copy(o->audit_logs);
        if (!logs)
                return -ENOMEM;
        if (!logs[0]) {
                /* the log runs of this manifest write to, when it exists */
                _cleanup_free_ char *path = NULL;
                struct stat st;
                if (audit_log_path(o, r->m, &path) >= 0 && stat(path, &st) == 0 && strv_extend(&logs, path) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; logs && logs[i]; i++)
                if ((k = read_log(r, logs[i], o->public_key ? key : NULL)) < 0)
                        return k;
        const char *id;
        json_t *run;
        json_object_foreach(r->runs, id, run)
                if ((k = credit_run(r, id, run)) < 0)
                        return k;
        return 0;
}

/* ---- the command ---- */

static int report_gather(struct report *r) {
        int k = load_manifest(r->o, false, &r->m);
        if (k < 0)
                return k;
        r->secrets = calloc(r->m->n_secrets ? r->m->n_secrets : 1, sizeof(*r->secrets));
        r->logs = json_array();
        r->runs = json_object();
        r->unknown_names = json_object();
        if (!r->secrets || !r->logs || !r->runs || !r->unknown_names)
                return -ENOMEM;
        for (size_t i = 0; i < r->m->n_secrets; i++) {
                struct report_secret *rs = &r->secrets[r->n_secrets++];
                rs->s = &r->m->secrets[i];
                if (!(rs->fetches = json_array()) || !(rs->leaks = json_array()) || !(rs->writes = json_array()))
                        return -ENOMEM;
        }
        if ((k = read_logs(r)) < 0)
                return k;
        struct approvals a;
        if ((k = approvals_load(r->m, &a)) < 0)
                return k;
        for (size_t i = 0; k >= 0 && i < r->n_secrets; i++)
                k = gather_approvals(r, &a, &r->secrets[i]);
        approvals_done(&a);
        if (k < 0)
                return k;
        struct sources src;
        if ((k = sources_init(&src, r->m)) < 0)
                return k;
        for (size_t i = 0; i < r->n_secrets; i++)
                survey_store(r, &src, &r->secrets[i]);
        sources_done(&src);
        return 0;
}

int command_report(const struct options *o) {
        if (o->args) {
                log_error("report: unexpected argument '%s'", o->args[0]);
                return 1;
        }
        if (!o->output) {
                log_error("report: where should the page go? [usage: secrets-run report [--audit-log F...] -o FILE.html]");
                return 1;
        }
        _cleanup_(report_done) struct report r = { .o = o, .now = (int64_t) time(NULL) };
        int k = report_gather(&r);
        if (k == -ENOMEM)
                log_error("report: %s", strerror(ENOMEM));
        if (k < 0)
                return 1;
        if ((k = report_write_html(&r, o->output)) < 0) {
                log_error("report: cannot write %s: %s", o->output, strerror(-k));
                return 1;
        }
        if (o->format == FORMAT_JSON) {
                json_t *doc = json_pack("{s:s, s:I, s:I, s:I}", "report", o->output, "secrets", (json_int_t) r.n_secrets,
                                        "runs", (json_int_t) r.n_runs, "audit_logs", (json_int_t) json_array_size(r.logs));
                _cleanup_(json_text_freep) char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
                json_decref(doc);
                if (text)
                        printf("%s\n", text);
        } else
                printf("report: %s (%zu secret%s, %zu run%s from %zu audit log%s)\n", o->output, r.n_secrets,
                       r.n_secrets == 1 ? "" : "s", r.n_runs, r.n_runs == 1 ? "" : "s", json_array_size(r.logs),
                       json_array_size(r.logs) == 1 ? "" : "s");
        return 0;
}
