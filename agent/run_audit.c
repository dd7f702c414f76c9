/* The run's audit records (DESIGN §9): run.start and denials, fetches and deliveries, what
 * backends did on their own, leaks as they are found, and run.exit. */
#include <inttypes.h>
#include <sodium.h>

#include "output.h"
#include "redact.h"
#include "run.h"

/* Queues a record; run_audit_write() puts what is queued on disk. */
int run_audit_event(struct run *r, const char *event, json_t *fields) {
        if (!r->audit) {
                json_decref(fields);
                return 0;
        }
        if (!fields)
                return -ENOMEM;
        int k = audit_append(r->audit, event, fields);
        if (k < 0)
                log_error("audit log %s: %s", audit_path(r->audit), audit_strerror(k));
        return k;
}

/* Writes the queued records: one locked append and one fsync for each point of the run
 * that must be on record before it goes on (before fetching, before the step, at exit). */
int run_audit_write(struct run *r) {
        int k = r->audit ? audit_flush(r->audit) : 0;
        if (k < 0)
                log_error("audit log %s: %s", audit_path(r->audit), audit_strerror(k));
        return k;
}

void run_record_denial(struct run *r, const char *name, const char *rule) {
        if (!r->denials)
                r->denials = json_array();
        json_array_append_new(r->denials, json_pack("{s:s, s:s}", "name", name, "rule", rule));
}

json_t *run_sandbox_json(const struct run *r) {
        const struct sandbox_status *st = &r->sandbox_status;
        json_t *active = json_array(), *missing = json_array();
        for (int l = 0; l < _LAYER_MAX; l++) {
                if (st->active & (1u << l))
                        json_array_append_new(active, json_string(sandbox_layer_name((enum sandbox_layer) l)));
                if (st->missing & (1u << l))
                        json_array_append_new(missing, json_string(sandbox_layer_name((enum sandbox_layer) l)));
        }
        return json_pack("{s:s, s:o, s:o}", "mode", sandbox_mode_name(run_sandbox_mode(r)), "active", active, "missing", missing);
}

static void hex_encode(const unsigned char *p, size_t n, char *out) {
        sodium_bin2hex(out, n * 2 + 1, p, n);
}

static const char *backend_event_name(enum backend_event_kind k) {
        switch (k) {
        case BACKEND_EVENT_LEASE_RENEW:         return "lease.renew";
        case BACKEND_EVENT_LEASE_RENEW_FAILED:  return "lease.renew_failed";
        case BACKEND_EVENT_LEASE_REVOKE:        return "lease.revoke";
        case BACKEND_EVENT_LEASE_REVOKE_FAILED: return "lease.revoke_failed";
        case BACKEND_EVENT_LEASE_EXPIRING:      return "lease.expiring";
        default:                                return "lease.unknown";
        }
}

/* A lease event as an audit record. While the step runs it is written at once (a renewal
 * that failed is on record even if we are then killed); a failed write is reported at the
 * end, as for leaks. Revocations come at close, before run.exit, and go with it. Runs on the
 * renewal thread while there is one. A message is printed at once, there too (log_* is
 * safe on any thread), so it keeps its place among the step's output. */
void run_audit_backend_event(void *userdata, const struct backend_event *e) {
        struct run *r = userdata;
        if (e->kind == BACKEND_EVENT_MESSAGE || e->kind == BACKEND_EVENT_CREDENTIAL) {
                backend_event_print(e);
                return;
        }
        if (!r->audit)
                return;
        json_t *ev = json_pack("{s:s, s:s}", "backend", e->backend, "lease", e->lease_id ? e->lease_id : "login token");
        if (ev && (e->kind == BACKEND_EVENT_LEASE_RENEW || e->kind == BACKEND_EVENT_LEASE_EXPIRING))
                json_object_set_new(ev, "ttl", json_integer((json_int_t) e->ttl_s));
        if (ev && e->reason)
                json_object_set_new(ev, "reason", json_string(e->reason));
        if (!renewer_queue(r, backend_event_name(e->kind), ev))
                run_audit_record(r, backend_event_name(e->kind), ev);
}

void run_audit_record(struct run *r, const char *event, json_t *fields) {
        int k = fields ? audit_append(r->audit, event, fields) : -ENOMEM;
        if (k >= 0 && r->step_running)
                k = audit_flush(r->audit);
        if (k < 0 && !r->audit_error)
                r->audit_error = k;
}

/* backend.identity: who a backend acts as (Vault: lookup-self), recorded when it is opened.
 * One request, and only when there is a log to write; a failed lookup is a warning. */
int run_audit_backend_identity(struct run *r, struct backend *b, enum backend_type type) {
        if (!r->audit)
                return 0;
        struct backend_identity id = {};
        _cleanup_free_ char *why = NULL;
        int k = backend_identity(b, &id, &why);
        if (k == -EOPNOTSUPP)
                return 0;
        if (k < 0) {
                log_warning("%s", why ? why : strerror(-k));
                return k == -ENOMEM ? k : 0;
        }
        json_t *policies = json_array();
        for (char **p = id.policies; policies && p && *p; p++)
                json_array_append_new(policies, json_string(*p));
        json_t *ev = policies ? json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s?, s:o, s:s?}", "backend", backend_name(b),
                                          "type", backend_kind_name(backend_kind_of(type)), "auth", id.auth, "login",
                                          id.from_login, "display_name", id.display_name, "entity_id", id.entity_id,
                                          "policies", policies, "token_type", id.token_type) : NULL;
        if (ev && id.token_type)
                json_object_set_new(ev, "orphan", json_boolean(id.orphan));
        if (ev && id.num_uses)
                json_object_set_new(ev, "num_uses", json_integer((json_int_t) id.num_uses));
        uint64_t ttl_s = id.ttl_s;
        bool renewed = id.renewed;
        backend_identity_done(&id);
        if ((k = run_audit_event(r, "backend.identity", ev)) < 0)
                return k;
        if (renewed || !ttl_s || !r->o->timeout_ms || ttl_s * 1000 >= r->o->timeout_ms)
                return 0;
        /* a token that nobody renews ends before the step may, and every lease it obtained
         * with it (lease.expiring at the start, like a lease that is not renewable) */
        log_warning("backend '%s': its token expires in %" PRIu64 " s, before the step's --timeout, and is not renewed",
                    backend_name(b), ttl_s);
        return run_audit_event(r, "lease.expiring",
                           json_pack("{s:s, s:s, s:I, s:s}", "backend", backend_name(b), "lease", "token", "ttl",
                                     (json_int_t) ttl_s, "reason",
                                     "the token is not renewed and expires before the step's --timeout; its leases end with it"));
}

/* lease.expiring at the start: a lease Vault will not renew, shorter than the step may run
 * (its --timeout), ends while the step still needs it. Once per lease. */
int run_audit_short_leases(struct run *r) {
        uint64_t timeout_ms = r->o->timeout_ms;
        for (size_t i = 0; timeout_ms && i < r->n_secrets; i++) {
                const struct secret_meta *m = &r->secrets[i].meta;
                if (!m->lease_id || m->renewable || m->lease_ttl * 1000 >= timeout_ms)
                        continue;
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = r->secrets[j].meta.lease_id && streq(r->secrets[j].meta.lease_id, m->lease_id);
                if (seen)
                        continue;
                log_warning("secret %s: its lease ends in %" PRIu64 " s and is not renewable, before the step's --timeout",
                            r->secrets[i].def->name, m->lease_ttl);
                json_t *ev = json_pack("{s:s?, s:s, s:I, s:s}", "backend", r->secrets[i].def->backend, "lease",
                                       m->lease_id, "ttl", (json_int_t) m->lease_ttl, "reason",
                                       "not renewable, and shorter than the step's --timeout");
                int k = run_audit_event(r, "lease.expiring", ev);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Opens the log and writes run.start and the policy denials: before any secret is fetched,
 * and after the sandbox's pid 1 exists, so it never holds a copy of the signing key. A
 * failure stops the run (125). */
int run_audit_begin(struct run *r) {
        int k = audit_open_for(r->o, r->m, &r->audit);
        if (k < 0)
                return k;
        char sha[65];
        hex_encode(r->m->sha256, sizeof r->m->sha256, sha);
        json_t *ci = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "provider", r->ci.provider,
                               "repository", r->ci.repository, "workflow", r->ci.workflow, "branch", r->ci.branch,
                               "event", r->ci.event, "actor", r->ci.actor, "run_id", r->ci.run_id);
        json_t *ev = ci ? json_pack("{s:s?, s:s?, s:s?, s:o, s:s?, s:s, s:s, s:o}", "project", r->m->project,
                                    "environment", r->environment, "stage", r->stage, "ci", ci, "command",
                                    r->o->args ? r->o->args[0] : NULL, "manifest", r->m->path, "manifest_sha256", sha,
                                    "sandbox", run_sandbox_json(r)) : NULL;
        if ((k = run_audit_event(r, "run.start", ev)) < 0)
                goto fail;
        size_t i;
        json_t *d;
        json_array_foreach(r->denials, i, d)
                if ((k = run_audit_event(r, "policy.deny", json_incref(d))) < 0)
                        goto fail;
        /* audit_open created the log, so one that refuses writes has refused already; these
         * records go to disk with the fetches and deliveries, before the step starts */
        return 0;
fail:
        r->audit = audit_free(r->audit);   /* nothing more goes to a log that refuses writes */
        return k;
}

/* Called for each leak as it is found: the first ones of each secret, form and place become
 * records (and lines of the step summary), the rest are counted by output.c and recorded in
 * one record at the end. Records are written in batches (run_audit_flush_leaks: one fsync for
 * the leaks of one read of the step's output), so a flood of leaks costs no flood of fsyncs;
 * a failed write is reported at the end, not in the middle of the step's output. */
void run_audit_leak(void *userdata, const struct redact_leak *leak, const char *where, bool reported) {
        struct run *r = userdata;
        if (!reported)
                return;
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s*, s:I, s:I, s:I, s:s*}", "name", leak->name, "form",
                               redact_form_name(leak->form), leak_where_is_stream(where) ? "stream" : "path", where,
                               "member", leak->member, "offset", (json_int_t) leak->offset, "line",
                               (json_int_t) leak->line, "col", (json_int_t) leak->col, "writer", leak_writer(where));
        if (!ev)
                return;
        if (!r->leaks)
                r->leaks = json_array();
        json_array_append(r->leaks, ev);
        int k = r->audit ? audit_append(r->audit, "leak", json_incref(ev)) : 0;
        if (k < 0 && !r->audit_error)
                r->audit_error = k;
        json_decref(ev);
}

void run_audit_flush_leaks(void *userdata) {
        struct run *r = userdata;
        int k = r->audit ? audit_flush(r->audit) : 0;
        if (k < 0 && !r->audit_error)
                r->audit_error = k;
}

/* One record for the leaks of a secret, form and place past the first ones. */
static void audit_leak_count(void *userdata, const struct leak_summary *l) {
        struct run *r = userdata;
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s*, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", l->name, "form",
                               l->form, leak_where_is_stream(l->where) ? "stream" : "path", l->where, "member",
                               l->member, "count", (json_int_t) l->count, "first_offset", (json_int_t) l->first.offset,
                               "first_line", (json_int_t) l->first.line, "first_col", (json_int_t) l->first.col,
                               "last_offset", (json_int_t) l->last.offset, "last_line", (json_int_t) l->last.line,
                               "last_col", (json_int_t) l->last.col);
        (void) run_audit_event(r, "leak", ev);
}

int run_audit_delivered(struct run *r) {
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                int k = run_audit_event(r, "secret.deliver", json_pack("{s:s, s:s, s:s}", "name", s->name, "method",
                                                                   delivery_method_name(s->deliver), "as", s->as));
                if (k < 0)
                        return k;
        }
        /* what was fetched and how it is delivered is on record before the step starts; a
         * delivery that then fails shows as run.exit 125 with no command status */
        return run_audit_write(r);
}

void run_audit_end(struct run *r) {
        if (!r->audit)
                return;
        if (r->audit_error) {
                log_error("audit log %s: recording a leak or lease event failed: %s", audit_path(r->audit),
                          audit_strerror(r->audit_error));
                if (r->status == 0)
                        r->status = 125;
        }
        leak_groups_foreach(audit_leak_count, r);
        json_t *ev = json_pack("{s:i, s:o, s:I, s:I, s:o}", "status", r->status, "command_status",
                               r->command_status >= 0 ? json_integer(r->command_status) : json_null(), "duration_ms",
                               (json_int_t) (now_monotonic_ms() - r->started_ms), "leaks",
                               (json_int_t) (r->output_leaks + r->artifact_leaks), "sandbox", run_sandbox_json(r));
        if ((run_audit_event(r, "run.exit", ev) < 0 || run_audit_write(r) < 0) && r->status == 0)
                r->status = 125;
}
