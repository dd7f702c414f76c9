/* `secrets-run explain`: policy simulation. Which secrets a run in a context (environment,
 * stage, event, branch) gets, by the same scope rules and approval gate run applies, and for
 * each secret it does not get the rule that keeps it out; --matrix does it for every
 * environment, stage and event. Nothing is fetched and no backend is opened. */
#include <time.h>

#include "agent.h"
#include "approval.h"
#include "scope.h"

/* The events of --matrix: what CI systems start jobs for. A tag build is a push with no
 * branch, as the CI variables say it (docs/ci-context.md). */
static const char *const matrix_events[] = { "push", "pull_request", "schedule", "tag" };

struct explain {
        const struct options *o;
        struct manifest *m;
        struct approvals approvals;
        int64_t now;
};

struct context {
        const char *environment;       /* NULL: none */
        const char *stage;             /* NULL: none */
        const char *event;             /* as asked: push, pull_request, schedule, tag, ... */
        struct ci_context ci;          /* what run would see */
};

static void explain_done(struct explain *x) {
        approvals_done(&x->approvals);
        manifest_free(x->m);
}

static char *list_text(char *const *l) {
        char *t = strdup("[");
        for (size_t i = 0; t && l && l[i]; i++) {
                char *n = strdup_printf("%s%s%s", t, i ? ", " : "", l[i]);
                free(t);
                t = n;
        }
        char *n = t ? strdup_printf("%s]", t) : NULL;
        free(t);
        return n;
}

/* Why rule v keeps s out of context c, for a person (malloc'd). */
static char *rule_detail(const struct mf_secret *s, enum scope_verdict v, const struct context *c) {
        _cleanup_free_ char *list = NULL;
        switch (v) {
        case SCOPE_OUT_ENVIRONMENT:
                list = list_text(s->environments);
                return list ? strdup_printf("it lists environments %s", list) : NULL;
        case SCOPE_OUT_STAGE:
                list = list_text(s->stages);
                return list ? strdup_printf("it lists stages %s and the run has %s%s%s", list, c->stage ? "stage '" : "no stage",
                                            c->stage ? c->stage : "", c->stage ? "'" : "") : NULL;
        case SCOPE_OUT_BRANCH:
                list = list_text(s->when_branches);
                return list ? strdup_printf("it needs a branch of %s and the branch is %s%s%s", list,
                                            c->ci.branch ? "'" : "unknown", c->ci.branch ? c->ci.branch : "",
                                            c->ci.branch ? "'" : "") : NULL;
        case SCOPE_OUT_EVENT:
                list = list_text(s->when_events);
                return list ? strdup_printf("it needs an event of %s and the event is '%s'", list,
                                            c->ci.event ? c->ci.event : "?") : NULL;
        case SCOPE_DENY_PROTECTED_PR:
                return strdup_printf("environment '%s' is protected and this is a pull request", c->environment);
        case SCOPE_IN:
        default:
                return strdup("");
        }
}

/* The approval gate for s in c: NULL if run would deliver it, else a JSON object {name, rule,
 * id, message} (the first finding that refuses it). */
static json_t *approval_refusal(const struct explain *x, const struct mf_secret *s, const struct context *c, int *ret_k) {
        *ret_k = 0;
        if (!c->environment || !approval_required(x->m, s, c->environment) || strv_length(s->approved_by) == 0 ||
            !x->approvals.configured)
                return NULL;
        struct approval_verdict *v = NULL;
        size_t n = 0;
        struct findings f = {};
        json_t *refusal = NULL;
        int k = approvals_verify(&x->approvals, s, c->environment, x->now, &v, &n);
        for (size_t i = 0; k >= 0 && i < n && !refusal; i++) {
                if (v[i].state == APPROVAL_VALID && v[i].recert != RECERT_EXPIRED)
                        continue;
                if ((k = approval_verdict_finding(&x->approvals, s, c->environment, &v[i], &f)) < 0 || f.n == 0)
                        break;
                char id[8];
                snprintf(id, sizeof id, "SR%03u", (unsigned) f.items[f.n - 1].id);
                refusal = json_pack("{s:s, s:s, s:s, s:s}", "name", s->name, "rule",
                                    v[i].state == APPROVAL_VALID ? "approval.expired" : approval_state_rule(v[i].state),
                                    "id", id, "message", f.items[f.n - 1].message);
                if (!refusal)
                        k = -ENOMEM;
        }
        approval_verdicts_free(v, n);
        findings_done(&f);
        *ret_k = k;
        return refusal;
}

static const char *backend_label(const struct mf_secret *s) {
        return mf_secret_is_ephemeral(s) ? "generate" : s->backend ? s->backend : "-";
}

/* One context's outcome: {environment, stage, event, branch, pull_request, secrets,
 * withheld, refused}. */
static int evaluate(const struct explain *x, const struct context *c, json_t **ret) {
        json_t *gets = json_array(), *withheld = json_array(), *refused = json_array();
        json_t *doc = json_pack("{s:s?, s:s?, s:s?, s:s?, s:b, s:o, s:o, s:o}", "environment", c->environment,
                                "stage", c->stage, "event", c->event, "branch", c->ci.branch, "pull_request",
                                c->ci.pull_request, "secrets", gets, "withheld", withheld, "refused", refused);
        if (!doc)
                return -ENOMEM;
        int k = 0;
        for (size_t i = 0; k >= 0 && i < x->m->n_secrets; i++) {
                const struct mf_secret *s = &x->m->secrets[i];
                enum scope_verdict v = scope_evaluate(x->m, s, c->environment, c->stage, &c->ci);
                if (v != SCOPE_IN) {
                        _cleanup_free_ char *why = rule_detail(s, v, c);
                        json_t *w = why ? json_pack("{s:s, s:s, s:s, s:i}", "name", s->name, "rule",
                                                    scope_verdict_rule(v), "why", why, "line", (int) s->pos.line) : NULL;
                        k = w ? json_array_append_new(withheld, w) : -ENOMEM;
                        continue;
                }
                json_t *refusal = approval_refusal(x, s, c, &k);
                if (refusal)
                        json_array_append_new(refused, refusal);
                json_t *g = json_pack("{s:s, s:s, s:s, s:s}", "name", s->name, "backend", backend_label(s), "deliver",
                                      delivery_method_name(s->deliver), "as", s->as);
                if (k >= 0)
                        k = g ? json_array_append_new(gets, g) : -ENOMEM;
        }
        if (k < 0) {
                json_decref(doc);
                return k;
        }
        *ret = doc;
        return 0;
}

/* The CI context run would see for event and branch: "tag" is a push without a branch. */
static int context_for(struct context *c, const char *event, const char *branch) {
        bool tag = streq(event, "tag");
        const char *e = tag ? "push" : event;
        c->event = event;
        c->ci = (struct ci_context) {
                .provider = strdup("explain"), .event = strdup(e), .raw_event = strdup(e),
                .branch = !tag && branch ? strdup(branch) : NULL, .pull_request = streq(e, "pull_request"),
        };
        if (!c->ci.provider || !c->ci.event || !c->ci.raw_event || (!tag && branch && !c->ci.branch))
                return -ENOMEM;
        return 0;
}

/* ---- output ---- */

static void print_names(json_t *list, const char *key) {
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
                printf("%s%s", i ? ", " : "", json_string_value(json_object_get(e, key)));
}

static void print_context_text(const struct explain *x, json_t *doc) {
        json_t *gets = json_object_get(doc, "secrets"), *out = json_object_get(doc, "withheld");
        json_t *refused = json_object_get(doc, "refused");
        const char *branch = json_string_value(json_object_get(doc, "branch"));
        const char *stage = json_string_value(json_object_get(doc, "stage"));
        printf("explain: environment %s, stage %s, event %s, branch %s (%s)\n\n",
               json_string_value(json_object_get(doc, "environment")), stage ? stage : "(none)",
               json_string_value(json_object_get(doc, "event")), branch ? branch : "(unknown)", x->m->path);
        size_t i;
        json_t *e;
        printf("gets %zu secret%s%s\n", json_array_size(gets), json_array_size(gets) == 1 ? "" : "s",
               json_array_size(gets) ? ":" : ".");
        json_array_foreach(gets, i, e) {
                const char *d = json_string_value(json_object_get(e, "deliver"));
                printf("  %-24s from %-10s as %s\n", json_string_value(json_object_get(e, "name")),
                       json_string_value(json_object_get(e, "backend")), d);
        }
        if (json_array_size(out))
                printf("\ndoes not get:\n");
        json_array_foreach(out, i, e)
                printf("  %-24s %s: %s (%s:%d)\n", json_string_value(json_object_get(e, "name")),
                       json_string_value(json_object_get(e, "rule")), json_string_value(json_object_get(e, "why")),
                       x->m->path, (int) json_integer_value(json_object_get(e, "line")));
        if (json_array_size(refused)) {
                printf("\nrun refuses (exit 125) without fetching anything, for ");
                print_names(refused, "name");
                printf(":\n");
        }
        json_array_foreach(refused, i, e)
                printf("  %-24s %s: %s %s\n", json_string_value(json_object_get(e, "name")),
                       json_string_value(json_object_get(e, "rule")), json_string_value(json_object_get(e, "id")),
                       json_string_value(json_object_get(e, "message")));
}

static void print_json_doc(json_t *doc) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
}

/* ---- the two forms ---- */

static const char *run_stage(const struct options *o, const struct manifest *m) {
        const char *stage = o->stage;
        if (!stage || !*stage)
                stage = getenv("SECRETS_RUN_STAGE");
        if (!stage || !*stage)
                stage = m->default_stage;
        return stage && *stage ? stage : NULL;
}

static int explain_one(struct explain *x) {
        struct context c = {};
        const char *env = NULL;
        int k = resolve_environment(x->o, x->m, &env);
        if (k < 0)
                return k;
        if (!env) {
                log_error("%s: no environment: pass -e/--env, set $SECRETS_RUN_ENV, or set defaults.environment", x->m->path);
                return -EINVAL;
        }
        c.environment = env;
        c.stage = run_stage(x->o, x->m);
        if (x->o->event)
                k = context_for(&c, x->o->event, x->o->branch);
        else {
                /* this job's own context, --branch aside */
                k = ci_context_detect(&c.ci);
                if (k >= 0 && x->o->branch) {
                        free(c.ci.branch);
                        k = (c.ci.branch = strdup(x->o->branch)) ? 0 : -ENOMEM;
                }
                c.event = c.ci.event;
        }
        json_t *doc = NULL;
        if (k >= 0)
                k = evaluate(x, &c, &doc);
        if (k >= 0 && x->o->format == FORMAT_JSON) {
                json_object_set_new(doc, "manifest", json_string(x->m->path));
                print_json_doc(doc);
        } else if (k >= 0)
                print_context_text(x, doc);
        json_decref(doc);
        ci_context_done(&c.ci);
        return k;
}

/* The environments of the matrix: the declared ones, else the ones secrets and defaults name. */
static int matrix_names(const struct manifest *m, bool stages, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        for (size_t i = 0; !stages && i < m->n_environments; i++)
                if (strv_extend(&names, m->environments[i].name) < 0)
                        return -ENOMEM;
        if (names) {
                *ret = steal_pointer(&names);
                return 0;
        }
        const char *dflt = stages ? m->default_stage : m->default_environment;
        if (dflt && strv_extend(&names, dflt) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_secrets; i++) {
                char *const *l = stages ? m->secrets[i].stages : m->secrets[i].environments;
                for (size_t j = 0; l && l[j]; j++)
                        if (!strv_contains(names, l[j]) && strv_extend(&names, l[j]) < 0)
                                return -ENOMEM;
        }
        *ret = steal_pointer(&names);
        return 0;
}

static void print_matrix_row(json_t *row) {
        const char *stage = json_string_value(json_object_get(row, "stage"));
        json_t *gets = json_object_get(row, "secrets"), *refused = json_object_get(row, "refused");
        json_t *withheld = json_object_get(row, "withheld");
        const char *env = json_string_value(json_object_get(row, "environment"));
        printf("%-12s %-12s %-13s ", env ? env : "(any)", stage ? stage : "(none)",
               json_string_value(json_object_get(row, "event")));
        if (json_array_size(gets))
                print_names(gets, "name");
        else
                printf("-");
        size_t i, pr = 0;
        json_t *e;
        json_array_foreach(withheld, i, e)
                pr += streq(json_string_value(json_object_get(e, "rule")), "protected-environment-pull-request");
        if (pr) {
                printf("  [withheld from a pull request: ");
                bool first = true;
                json_array_foreach(withheld, i, e)
                        if (streq(json_string_value(json_object_get(e, "rule")), "protected-environment-pull-request")) {
                                printf("%s%s", first ? "" : ", ", json_string_value(json_object_get(e, "name")));
                                first = false;
                        }
                printf("]");
        }
        if (json_array_size(refused)) {
                printf("  [run refuses: ");
                json_array_foreach(refused, i, e)
                        printf("%s%s %s", i ? ", " : "", json_string_value(json_object_get(e, "name")),
                               json_string_value(json_object_get(e, "rule")));
                printf("]");
        }
        putchar('\n');
}

static int explain_matrix(struct explain *x) {
        _cleanup_strv_free_ char **envs = NULL, **stages = NULL;
        int k = matrix_names(x->m, false, &envs);
        if (k >= 0)
                k = matrix_names(x->m, true, &stages);
        if (k < 0)
                return k;
        /* the branch of pushes, schedules and pull requests: --branch, else this checkout's */
        struct ci_context here = {};
        if (!x->o->branch && (k = ci_context_detect(&here)) < 0)
                return k;
        const char *branch = x->o->branch ? x->o->branch : here.branch;
        json_t *rows = json_array();
        size_t n_stages = strv_length(stages) + !x->m->default_stage;   /* no stage only if nothing defaults one */
        for (size_t e = 0; k >= 0 && rows && (e < strv_length(envs) || (e == 0 && !envs)); e++)
                for (size_t st = 0; k >= 0 && st < n_stages; st++)
                        for (size_t ev = 0; k >= 0 && ev < ELEMENTSOF(matrix_events); ev++) {
                                struct context c = { .environment = envs ? envs[e] : NULL,
                                                     .stage = stages && st < strv_length(stages) ? stages[st] : NULL };
                                json_t *row = NULL;
                                if ((k = context_for(&c, matrix_events[ev], branch)) >= 0 && (k = evaluate(x, &c, &row)) >= 0)
                                        json_array_append_new(rows, row);
                                ci_context_done(&c.ci);
                        }
        json_t *doc = rows && k >= 0 ? json_pack("{s:s, s:s?, s:O}", "manifest", x->m->path, "branch", branch, "contexts", rows)
                                     : NULL;
        ci_context_done(&here);
        if (!doc) {
                json_decref(rows);
                return k < 0 ? k : -ENOMEM;
        }
        if (x->o->format == FORMAT_JSON)
                print_json_doc(doc);
        else {
                printf("explain --matrix (%s): branch %s for push, schedule and pull_request; a tag build has no branch\n\n",
                       x->m->path, branch ? branch : "(unknown)");
                printf("%-12s %-12s %-13s %s\n", "ENVIRONMENT", "STAGE", "EVENT", "GETS");
                size_t i;
                json_t *row;
                json_array_foreach(rows, i, row)
                        print_matrix_row(row);
        }
        json_decref(rows);
        json_decref(doc);
        return 0;
}

int command_explain(const struct options *o) {
        if (o->args) {
                log_error("explain: unexpected argument '%s'", o->args[0]);
                return 1;
        }
        if (o->matrix && (o->environment || o->stage || o->event)) {
                log_error("explain: --matrix covers every environment, stage and event: it takes none of -e, -s, --event");
                return 1;
        }
        _cleanup_(explain_done) struct explain x = { .o = o, .now = (int64_t) time(NULL) };
        int k = load_manifest(o, true, &x.m);
        if (k >= 0)
                k = approvals_load(x.m, &x.approvals);
        if (k >= 0)
                k = o->matrix ? explain_matrix(&x) : explain_one(&x);
        if (k == -ENOMEM)
                log_error("explain: %s", strerror(ENOMEM));
        return k < 0 ? 1 : 0;
}
