/* plan, apply, rotate: the manifest as the desired state of the stores. plan compares it
 * with what each backend holds (exists, version, age against rotation), apply converges
 * (creates missing stored generated secrets, rotates overdue ones), rotate makes one new
 * version now. Writes are conditional on the version read (a lock for the file store,
 * check-and-set for Vault KV v2), so concurrent applies make one new version, not two. */
#include <inttypes.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "agent.h"
#include "approval.h"
#include "output.h"

#define WRITE_ATTEMPTS 3

enum action {
        ACTION_NONE,
        ACTION_CREATE,          /* a stored generated secret that does not exist yet */
        ACTION_ROTATE,          /* a stored generated secret past max_age */
        ACTION_CREATE_BY_HAND,  /* missing, and not ours to create */
        ACTION_ROTATE_BY_HAND,  /* past max_age, and not ours to rotate */
};

static const char *action_name(enum action a) {
        switch (a) {
        case ACTION_CREATE:         return "create";
        case ACTION_ROTATE:         return "rotate";
        case ACTION_CREATE_BY_HAND: return "create_by_hand";
        case ACTION_ROTATE_BY_HAND: return "rotate_by_hand";
        case ACTION_NONE:
        default:                    return "none";
        }
}

enum presence { PRESENT, ABSENT, UNCHECKED, FAILED };

struct item {
        const struct mf_secret *s;
        enum presence presence;
        struct secret_meta meta;       /* version and created time when PRESENT (or the
                                        * version a write must expect when ABSENT) */
        enum rotation_status rotation;
        uint64_t age;                  /* seconds, when rotation is not ROTATION_UNKNOWN/NONE */
        enum action action;
        char *note;                    /* why unchecked, or the error */
};

struct plan {
        const struct options *o;
        struct manifest *m;
        const char *environment;       /* NULL: every environment */
        struct sources sources;
        struct item *items;
        size_t n_items;
        int64_t now;
        const char *command;           /* apply or rotate, for the audit record */
        struct audit *audit;           /* opened before the first write */
        bool ahead;                    /* surveying all: tell each backend every stat ahead */
        struct backend **told;         /* backends told every stat ahead (survey_ahead) */
        size_t n_told;
        json_t *approvals;             /* plan: each approval's row, when allowed_signers is set */
        size_t approvals_due;          /* rows that need a person */
};

static void plan_done(struct plan *p) {
        for (size_t i = 0; i < p->n_items; i++) {
                secret_meta_done(&p->items[i].meta);
                free(p->items[i].note);
        }
        free(p->items);
        free(p->told);
        sources_done(&p->sources);
        audit_free(p->audit);
        json_decref(p->approvals);
        manifest_free(p->m);
}

/* plan and apply cover one environment (-e, $SECRETS_RUN_ENV, defaults.environment) or, with
 * --all or when none is named, every environment; stages and CI conditions do not narrow
 * them: the state of a store is the same for every stage. */
static bool in_environment(const struct mf_secret *s, const char *environment) {
        return !environment || !s->environments || strv_contains(s->environments, environment);
}

/* The first time a backend is surveyed: every secret it will be asked for, so that it can
 * ask for them at once (Vault, as run fetches). */
static void survey_ahead(struct plan *p, struct backend *b, const struct mf_secret *s0) {
        for (size_t i = 0; i < p->n_told; i++)
                if (p->told[i] == b)
                        return;
        struct backend **t = realloc(p->told, (p->n_told + 1) * sizeof(*t));
        if (!t)
                return;   /* only speed is lost */
        p->told = t;
        p->told[p->n_told++] = b;
        _cleanup_free_ struct secret_ref *refs = calloc(p->n_items, sizeof(*refs));
        if (!refs)
                return;
        size_t n = 0;
        for (size_t i = 0; i < p->n_items; i++)
                if (!mf_secret_is_ephemeral(p->items[i].s) && streq_ptr(p->items[i].s->backend, s0->backend))
                        refs[n++] = secret_ref_of(p->items[i].s);
        _cleanup_free_ char *why = NULL;
        if (backend_stat_prefetch(b, refs, n, &why) < 0)
                log_warning("backend '%s': %s", s0->backend, why ? why : "could not survey ahead");
}

/* Looks at one secret's store: does it exist, which version, how old. */
static int survey(struct plan *p, struct item *it) {
        const struct mf_secret *s = it->s;
        secret_meta_done(&it->meta);
        free(it->note);
        it->note = NULL;
        it->action = ACTION_NONE;
        it->rotation = ROTATION_NONE;
        if (mf_secret_is_ephemeral(s)) {
                it->presence = UNCHECKED;
                it->note = strdup("generated for each run");
                return 0;
        }
        /* unknown until the backend tells the age of what it holds */
        it->rotation = s->has_rotation ? ROTATION_UNKNOWN : ROTATION_NONE;
        struct backend *b;
        int k = sources_get(&p->sources, s, &b);
        if (k < 0) {
                it->presence = FAILED;
                it->note = strdup("backend unavailable (see above)");
                return k;
        }
        if (p->ahead)
                survey_ahead(p, b, s);
        struct secret_ref ref = secret_ref_of(s);
        _cleanup_free_ char *why = NULL;
        k = backend_stat(b, &ref, &it->meta, &why);
        if (k == -ENOENT)
                it->presence = ABSENT;
        else if (k == -EOPNOTSUPP) {
                it->presence = UNCHECKED;
                it->note = steal_pointer(&why);
        } else if (k < 0) {
                it->presence = FAILED;
                it->note = why ? steal_pointer(&why) : strdup(strerror(-k));
                return k;
        } else
                it->presence = PRESENT;

        if (it->presence == PRESENT)
                it->rotation = rotation_evaluate(s, it->meta.created, p->now, &it->age);
        bool ours = s->generated;   /* stored generated: apply may write it */
        /* a value too short to be masked is refused by every run, whatever its age */
        bool too_short = it->presence == PRESENT && it->meta.length > 0 &&
                         it->meta.length < p->m->policy.min_secret_length;
        if (too_short)
                it->note = strdup_printf("the stored value is %zu bytes, shorter than policy.min_secret_length (%zu): runs refuse it",
                                         it->meta.length, p->m->policy.min_secret_length);
        if (it->presence == ABSENT)
                it->action = ours ? ACTION_CREATE : ACTION_CREATE_BY_HAND;
        else if (too_short || it->rotation == ROTATION_OVERDUE || it->rotation == ROTATION_FAILING)
                it->action = ours ? ACTION_ROTATE : ACTION_ROTATE_BY_HAND;
        return 0;
}

static int plan_load(struct plan *p, const struct options *o, bool gate) {
        *p = (struct plan) { .o = o, .now = (int64_t) time(NULL) };
        int k;
        if ((k = load_manifest(o, gate, &p->m)) < 0)
                return k;
        if (!o->all && (k = resolve_environment(o, p->m, &p->environment)) < 0)
                return k;
        if ((k = sources_init(&p->sources, p->m)) < 0)
                return k;
        p->items = calloc(p->m->n_secrets ? p->m->n_secrets : 1, sizeof(*p->items));
        if (!p->items)
                return -ENOMEM;
        for (size_t i = 0; i < p->m->n_secrets; i++)
                if (in_environment(&p->m->secrets[i], p->environment))
                        p->items[p->n_items++].s = &p->m->secrets[i];
        return 0;
}

/* Surveys every item; returns how many could not be looked at. */
static size_t survey_all(struct plan *p) {
        size_t failed = 0;
        p->ahead = true;
        for (size_t i = 0; i < p->n_items; i++)
                if (survey(p, &p->items[i]) < 0)
                        failed++;
        p->ahead = false;
        return failed;
}

/* ---- approvals due (recertification, docs/approvals.md) ---- */

static const char *approval_status(const struct approval_verdict *v) {
        if (v->state != APPROVAL_VALID)
                return v->state == APPROVAL_MISSING ? "missing" : v->state == APPROVAL_CHANGED ? "changed" : "invalid";
        return v->recert == RECERT_EXPIRED ? "expired" : v->recert == RECERT_DUE ? "due" : "ok";
}

static json_t *approval_row(const struct mf_secret *s, const char *env, const struct approval_verdict *v) {
        char ts[32] = "";
        if (v->approved_at)
                format_timestamp(v->approved_at, ts, sizeof ts);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "secret", s->name, "environment", env, "identity", v->identity,
                              "status", approval_status(v));
        if (!j)
                return NULL;
        bool dated = v->state != APPROVAL_MISSING && v->approved_at;
        json_object_set_new(j, "approved", dated ? json_string(ts) : json_null());
        json_object_set_new(j, "age_seconds", dated && v->state == APPROVAL_VALID ? json_integer((json_int_t) v->age)
                                                                                 : json_null());
        json_object_set_new(j, "file", v->where ? json_string(v->where) : json_null());
        json_object_set_new(j, "why", v->why ? json_string(v->why) : json_null());
        return j;
}

/* Every approval the covered secrets need (each protected environment of the plan's scope
 * they reach), with its status; rows other than "ok" need a person. */
static int plan_approvals(struct plan *p) {
        if (!p->m->policy.allowed_signers)
                return 0;
        struct approvals a;
        int k = approvals_load(p->m, &a);
        if (k < 0)
                return k;
        p->approvals = json_array();
        for (size_t i = 0; k >= 0 && p->approvals && i < p->n_items; i++) {
                const struct mf_secret *s = p->items[i].s;
                for (size_t e = 0; k >= 0 && e < p->m->n_environments; e++) {
                        const char *env = p->m->environments[e].name;
                        if ((p->environment && !streq(env, p->environment)) || !approval_required(p->m, s, env) ||
                            (s->environments && !strv_contains(s->environments, env)))
                                continue;
                        struct approval_verdict *v = NULL;
                        size_t n = 0;
                        k = approvals_verify(&a, s, env, p->now, &v, &n);
                        for (size_t j = 0; k >= 0 && j < n; j++) {
                                p->approvals_due += v[j].state != APPROVAL_VALID || v[j].recert != RECERT_OK;
                                if (json_array_append_new(p->approvals, approval_row(s, env, &v[j])) < 0)
                                        k = -ENOMEM;
                        }
                        approval_verdicts_free(v, n);
                }
        }
        approvals_done(&a);
        return !p->approvals ? -ENOMEM : k;
}

static void print_approvals(const struct plan *p) {
        const struct mf_policy *pol = &p->m->policy;
        char age[32], limit[32], after[32];
        size_t i;
        json_t *row;
        if (!p->approvals || json_array_size(p->approvals) == 0)
                return;
        printf("\n%-24s %-12s %-16s %-6s %s\n", "APPROVAL", "ENVIRONMENT", "IDENTITY", "AGE", "STATUS");
        json_array_foreach(p->approvals, i, row) {
                const char *status = json_string_value(json_object_get(row, "status"));
                json_t *a = json_object_get(row, "age_seconds");
                if (json_is_integer(a))
                        format_age((uint64_t) json_integer_value(a), age, sizeof age);
                else
                        snprintf(age, sizeof age, "-");
                char text[512];
                if (streq(status, "ok"))
                        snprintf(text, sizeof text, "ok%s%s%s", pol->approval_max_age ? " (recertify at " : "",
                                 pol->approval_max_age ? format_duration(pol->approval_max_age, limit, sizeof limit) : "",
                                 pol->approval_max_age ? ")" : "");
                else if (streq(status, "due"))
                        snprintf(text, sizeof text, "due: past approval_max_age %s%s%s, approve again",
                                 format_duration(pol->approval_max_age, limit, sizeof limit),
                                 pol->approval_fail_after ? "; runs refuse it after " : "",
                                 pol->approval_fail_after ? format_duration(pol->approval_fail_after, after, sizeof after) : "");
                else if (streq(status, "expired"))
                        snprintf(text, sizeof text, "expired: past approval_fail_after %s, runs refuse it",
                                 format_duration(pol->approval_fail_after, limit, sizeof limit));
                else
                        snprintf(text, sizeof text, "%s: %s", status, json_is_string(json_object_get(row, "why")) ?
                                 json_string_value(json_object_get(row, "why")) : "no approval signed");
                printf("%-24s %-12s %-16s %-6s %s\n", json_string_value(json_object_get(row, "secret")),
                       json_string_value(json_object_get(row, "environment")),
                       json_string_value(json_object_get(row, "identity")), age, text);
        }
}

/* ---- output ---- */

static const char *backend_label(const struct mf_secret *s) {
        return mf_secret_is_ephemeral(s) ? "generate" : s->backend ? s->backend : "-";
}

static bool use_colour(void) {
        const char *no = getenv("NO_COLOR");
        return isatty(STDOUT_FILENO) && !(no && *no);
}

static const char *colour_of(const struct item *it) {
        if (it->presence == FAILED || it->rotation == ROTATION_FAILING || it->action == ACTION_CREATE_BY_HAND)
                return "\033[31m";
        if (it->action != ACTION_NONE)
                return "\033[33m";
        return "";
}

static void rotation_text(const struct item *it, char *buf, size_t size) {
        const struct mf_secret *s = it->s;
        char a[32], b[32];
        switch (it->rotation) {
        case ROTATION_OK:
                snprintf(buf, size, "ok (max %s)", format_duration(s->rotation_max_age, a, sizeof a));
                break;
        case ROTATION_OVERDUE:
                snprintf(buf, size, "overdue by %s (max %s)", format_age(it->age - s->rotation_max_age, a, sizeof a),
                         format_duration(s->rotation_max_age, b, sizeof b));
                break;
        case ROTATION_FAILING:
                snprintf(buf, size, "past fail_after %s: run refuses", format_duration(s->rotation_fail_after, a, sizeof a));
                break;
        case ROTATION_UNKNOWN:
                snprintf(buf, size, "max %s%s", format_duration(s->rotation_max_age, a, sizeof a),
                         it->presence == ABSENT ? "" : ", age unknown");
                break;
        case ROTATION_NONE:
        default:
                snprintf(buf, size, "-");
                break;
        }
}

static void action_text(const struct item *it, char *buf, size_t size) {
        const struct mf_secret *s = it->s;
        char a[32];
        const char *owner = s->owner ? s->owner : "(no owner)";
        switch (it->action) {
        case ACTION_CREATE:
                snprintf(buf, size, "create (generated, %zu %s)", s->gen_length, charset_name(s->gen_charset));
                break;
        case ACTION_ROTATE:
                snprintf(buf, size, "rotate (generated)");
                break;
        case ACTION_CREATE_BY_HAND:
                snprintf(buf, size, "create by hand: owner %s", owner);
                break;
        case ACTION_ROTATE_BY_HAND:
                if (it->rotation == ROTATION_OVERDUE || it->rotation == ROTATION_FAILING)
                        snprintf(buf, size, "rotate by hand: owner %s, overdue by %s", owner,
                                 format_age(it->age - s->rotation_max_age, a, sizeof a));
                else
                        snprintf(buf, size, "rotate by hand: owner %s, the value is too short", owner);
                break;
        case ACTION_NONE:
        default:
                snprintf(buf, size, "%s", it->presence == FAILED ? "error" : it->note && it->presence == UNCHECKED ? it->note : "-");
                break;
        }
}

static void print_table(const struct plan *p) {
        bool colour = use_colour();
        char ver[24], age[24], rot[96], act[160];
        /* columns as wide as their longest entry, and never narrower than the defaults */
        int name_w = 24, backend_w = 10;
        for (size_t i = 0; i < p->n_items; i++) {
                int n = (int) strlen(p->items[i].s->name), b = (int) strlen(backend_label(p->items[i].s));
                name_w = n > name_w ? n : name_w;
                backend_w = b > backend_w ? b : backend_w;
        }
        printf("%-*s %-*s %-8s %-6s %-34s %s\n", name_w, "SECRET", backend_w, "BACKEND", "VERSION", "AGE", "ROTATION",
               "ACTION");
        for (size_t i = 0; i < p->n_items; i++) {
                const struct item *it = &p->items[i];
                if (it->presence == PRESENT && it->meta.version)
                        snprintf(ver, sizeof ver, "%" PRIu64, it->meta.version);
                else
                        snprintf(ver, sizeof ver, "%s", it->presence == ABSENT ? "missing" : "-");
                if (it->presence == PRESENT && it->meta.created > 0)
                        format_age(p->now > it->meta.created ? (uint64_t) (p->now - it->meta.created) : 0, age, sizeof age);
                else
                        snprintf(age, sizeof age, "-");
                rotation_text(it, rot, sizeof rot);
                action_text(it, act, sizeof act);
                const char *c = colour ? colour_of(it) : "";
                printf("%s%-*s %-*s %-8s %-6s %-34s %s%s\n", c, name_w, it->s->name, backend_w, backend_label(it->s), ver,
                       age, rot, act, *c ? "\033[0m" : "");
                if ((it->presence == FAILED || it->presence == PRESENT) && it->note)
                        printf("  %s\n", it->note);
        }
}

static json_t *item_json(const struct plan *p, const struct item *it) {
        const struct mf_secret *s = it->s;
        static const char *const presence_names[] = {
                [PRESENT] = "present", [ABSENT] = "missing", [UNCHECKED] = "unchecked", [FAILED] = "error",
        };
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", s->name, "backend", backend_label(s),
                              "kind", mf_secret_is_ephemeral(s) ? "generated" : s->generated ? "stored_generated" : "stored",
                              "state", presence_names[it->presence], "action", action_name(it->action));
        if (!j)
                return NULL;
        json_object_set_new(j, "owner", s->owner ? json_string(s->owner) : json_null());
        bool present = it->presence == PRESENT;
        json_object_set_new(j, "version", present && it->meta.version ? json_integer((json_int_t) it->meta.version) : json_null());
        char created[32] = "";
        if (present && it->meta.created > 0)
                format_timestamp(it->meta.created, created, sizeof created);
        json_object_set_new(j, "created", *created ? json_string(created) : json_null());
        json_object_set_new(j, "age_seconds", *created ? json_integer(p->now > it->meta.created ? (json_int_t) (p->now - it->meta.created) : 0)
                                                       : json_null());
        if (s->has_rotation)
                json_object_set_new(j, "rotation", json_pack("{s:I, s:o, s:s}", "max_age", (json_int_t) s->rotation_max_age,
                                                             "fail_after", s->rotation_fail_after ? json_integer((json_int_t) s->rotation_fail_after) : json_null(),
                                                             "status", rotation_status_name(it->rotation)));
        else
                json_object_set_new(j, "rotation", json_null());
        json_object_set_new(j, "note", it->note ? json_string(it->note) : json_null());
        return j;
}

static void print_json(const struct plan *p, bool in_sync, const char *command, json_t *actions) {
        json_t *doc = json_pack("{s:s, s:s, s:o, s:b, s:[]}", "command", command, "manifest", p->m->path,
                                "environment", p->environment ? json_string(p->environment) : json_null(),
                                "in_sync", in_sync, "secrets");
        if (!doc)
                return;
        json_t *arr = json_object_get(doc, "secrets");
        for (size_t i = 0; i < p->n_items; i++)
                json_array_append_new(arr, item_json(p, &p->items[i]));
        if (actions)
                json_object_set(doc, "actions", actions);
        if (p->approvals)
                json_object_set(doc, "approvals", p->approvals);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
}

static size_t count_action(const struct plan *p, enum action a) {
        size_t n = 0;
        for (size_t i = 0; i < p->n_items; i++)
                n += p->items[i].action == a;
        return n;
}

static size_t count_drift(const struct plan *p) {
        size_t n = 0;
        for (size_t i = 0; i < p->n_items; i++)
                n += p->items[i].action != ACTION_NONE;
        return n;
}

static const char *scope_text(const struct plan *p, char *buf, size_t size) {
        if (p->environment)
                snprintf(buf, size, "environment '%s'", p->environment);
        else
                snprintf(buf, size, "every environment");
        return buf;
}

/* ---- plan ---- */

int command_plan(const struct options *o) {
        struct plan p;
        int status = 1;
        char scope[128];
        if (o->args) {
                log_error("plan: unexpected argument '%s'", o->args[0]);
                return 1;
        }
        if (plan_load(&p, o, false) < 0)
                goto out;
        size_t failed = survey_all(&p);
        if (plan_approvals(&p) < 0) {
                log_error("approvals: %s", strerror(ENOMEM));
                goto out;
        }
        size_t drift = count_drift(&p) + p.approvals_due;
        if (o->format == FORMAT_JSON)
                print_json(&p, failed == 0 && drift == 0, "plan", NULL);
        else {
                printf("plan for %s (%s): %zu secret%s\n\n", scope_text(&p, scope, sizeof scope), p.m->path,
                       p.n_items, p.n_items == 1 ? "" : "s");
                if (p.n_items > 0)
                        print_table(&p);
                print_approvals(&p);
                size_t by_hand = count_action(&p, ACTION_CREATE_BY_HAND) + count_action(&p, ACTION_ROTATE_BY_HAND);
                size_t ours = count_action(&p, ACTION_CREATE) + count_action(&p, ACTION_ROTATE);
                putchar('\n');
                if (failed)
                        printf("%zu secret%s could not be checked.\n", failed, failed == 1 ? "" : "s");
                size_t unchecked = 0;
                for (size_t i = 0; i < p.n_items; i++)
                        unchecked += p.items[i].presence == UNCHECKED && !mf_secret_is_ephemeral(p.items[i].s);
                if (drift == 0 && failed == 0 && unchecked == 0)
                        printf("In sync: nothing to do.\n");
                else if (drift == 0 && failed == 0)
                        printf("In sync as far as can be checked: nothing to do (%zu not checked).\n", unchecked);
                else if (drift > 0) {
                        size_t create = count_action(&p, ACTION_CREATE), rotate = count_action(&p, ACTION_ROTATE);
                        const char *sep = "";
                        printf("Drift: ");
                        if (create)
                                printf("%zu to create", create), sep = ", ";
                        if (rotate)
                                printf("%s%zu to rotate", sep, rotate), sep = ", ";
                        if (by_hand)
                                printf("%s%zu for a person (not generated by secrets-run)", sep, by_hand), sep = ", ";
                        if (p.approvals_due)
                                printf("%s%zu approval%s to sign again", sep, p.approvals_due,
                                       p.approvals_due == 1 ? "" : "s");
                        printf(".%s\n", ours ? " 'secrets-run apply' makes the generated ones." : "");
                }
        }
        status = failed ? 1 : drift ? 2 : 0;
out:
        plan_done(&p);
        return status;
}

/* ---- apply and rotate ---- */

/* Every write to a store is on record, like every run: the log is opened before the first
 * write (a log that refuses records stops the write), and each write is flushed as it is made. */
static int audit_ready(struct plan *p) {
        return p->audit ? 0 : audit_open_for(p->o, p->m, &p->audit);
}

static int audit_write(struct plan *p, const struct item *it, enum action did, uint64_t version) {
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s?}", "command", p->command, "name", it->s->name,
                               "backend", backend_label(it->s), "action", action_name(did), "version",
                               (json_int_t) version, "manifest", p->m->path, "environment", p->environment);
        int k = ev ? audit_append(p->audit, "secret.write", ev) : -ENOMEM;
        if (k >= 0)
                k = audit_flush(p->audit);
        if (k < 0)
                log_error("audit log %s: %s (the new version of %s is written)", audit_path(p->audit),
                          audit_strerror(k), it->s->name);
        return k;
}

/* Whether version of s's reference holds value. A write whose answer was lost (a timeout, a
 * 503 after Vault applied it) is retried by the HTTP layer, and the retry's check-and-set
 * refusal looks like another writer's; the value tells the two apart. */
static bool holds_value(struct backend *b, const struct mf_secret *s, uint64_t version, const struct secret *value) {
        struct secret_ref ref = secret_ref_of(s);
        ref.version = version;
        _cleanup_secret_ struct secret *now = NULL;
        _cleanup_free_ char *why = NULL;
        if (backend_fetch(b, &ref, &now, NULL, &why) < 0)
                return false;
        return secret_len(now) == secret_len(value) &&
               sodium_memcmp(secret_data(now), secret_data(value), secret_len(value)) == 0;
}

/* Writes a new generated value for it, conditional on the version surveyed. If another
 * writer got there first, surveys again: when the secret no longer needs the action (force:
 * never), the other writer's version stands. Returns 1 when written, 0 when another writer
 * did it, -errno on failure. */
static int converge(struct plan *p, struct item *it, bool force, uint64_t *ret_version) {
        const struct mf_secret *s = it->s;
        struct backend *b;
        int k = sources_get(&p->sources, s, &b);
        if (k < 0 || (k = audit_ready(p)) < 0)
                return k;
        for (int attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
                _cleanup_secret_ struct secret *value = NULL;
                if ((k = sources_generate(&p->sources, s, &value)) < 0 ||
                    (k = output_mask_add(s->name, secret_data(value), secret_len(value))) < 0)
                        return k;
                if (secret_len(value) < p->m->policy.min_secret_length) {
                        log_error("secret %s: a generated length of %zu is below policy.min_secret_length (%zu)",
                                  s->name, s->gen_length, p->m->policy.min_secret_length);
                        return -EINVAL;
                }
                struct secret_ref ref = secret_ref_of(s);
                struct secret_meta written = {};
                _cleanup_free_ char *why = NULL;
                uint64_t expect = it->meta.version;
                enum action wanted = it->action;
                k = backend_write(b, &ref, value, expect, &written, &why);
                if (k >= 0) {
                        *ret_version = written.version;
                        /* the item now says what the store holds (apply --format json prints it) */
                        it->presence = PRESENT;
                        it->meta.version = written.version;
                        it->meta.created = written.created;
                        it->meta.length = secret_len(value);
                        it->rotation = rotation_evaluate(s, written.created, p->now, &it->age);
                        it->action = ACTION_NONE;
                        secret_meta_done(&written);
                        k = audit_write(p, it, wanted, *ret_version);
                        return k < 0 ? k : 1;
                }
                if (k != -ESTALE) {
                        log_error("secret %s: cannot write to backend '%s': %s", s->name, backend_name(b),
                                  why ? why : strerror(-k));
                        return k;
                }
                log_info("secret %s: %s; looking again", s->name, why ? why : "another writer changed it");
                if ((k = survey(p, it)) < 0) {
                        log_error("secret %s: %s", s->name, it->note ? it->note : strerror(-k));
                        return k;
                }
                if (it->presence == PRESENT && it->meta.version > expect &&
                    holds_value(b, s, it->meta.version, value)) {
                        /* our own write, whose answer was lost and whose retry was refused */
                        *ret_version = it->meta.version;
                        k = audit_write(p, it, wanted, *ret_version);
                        return k < 0 ? k : 1;
                }
                if (!force && it->action != wanted) {
                        *ret_version = it->meta.version;
                        return 0;
                }
                if (force && it->presence == PRESENT && it->meta.version > expect) {
                        /* rotate: a version newer than the one we read is as new as ours */
                        *ret_version = it->meta.version;
                        return 0;
                }
        }
        log_error("secret %s: other writers kept changing it; giving up after %d attempts", s->name, WRITE_ATTEMPTS);
        return -EBUSY;
}

static void report_by_hand(const struct item *it) {
        char act[160];
        action_text(it, act, sizeof act);
        const struct mf_secret *s = it->s;
        log_warning("%s (backend '%s'): %s", s->name, backend_label(s), act);
}

int command_apply(const struct options *o) {
        if (o->dry_run) {
                struct options plan_options = *o;
                plan_options.dry_run = false;
                return command_plan(&plan_options);
        }
        struct plan p;
        int status = 1;
        char scope[128];
        if (o->args) {
                log_error("apply: unexpected argument '%s'", o->args[0]);
                return 1;
        }
        if (plan_load(&p, o, true) < 0)
                goto out;
        p.command = "apply";
        size_t failed = survey_all(&p), created = 0, rotated = 0, by_hand = 0, raced = 0;
        json_t *actions = o->format == FORMAT_JSON ? json_array() : NULL;
        for (size_t i = 0; i < p.n_items; i++) {
                struct item *it = &p.items[i];
                if (it->presence == FAILED) {
                        log_error("%s: %s", it->s->name, it->note ? it->note : "cannot be checked");
                        continue;
                }
                if (it->action == ACTION_CREATE_BY_HAND || it->action == ACTION_ROTATE_BY_HAND) {
                        if (o->format != FORMAT_JSON)
                                report_by_hand(it);
                        by_hand++;
                        continue;
                }
                if (it->action != ACTION_CREATE && it->action != ACTION_ROTATE)
                        continue;
                enum action did = it->action;
                uint64_t version = 0;
                int k = converge(&p, it, false, &version);
                if (k < 0) {
                        failed++;
                        continue;
                }
                const char *verb = k == 0 ? "already done by another writer" : did == ACTION_CREATE ? "created" : "rotated";
                if (k == 0)
                        raced++;
                else if (did == ACTION_CREATE)
                        created++;
                else
                        rotated++;
                if (actions)
                        json_array_append_new(actions, json_pack("{s:s, s:s, s:I, s:b}", "name", it->s->name,
                                                                 "action", action_name(did), "version", (json_int_t) version,
                                                                 "written", k > 0));
                else
                        printf("%s: %s in backend '%s' (version %" PRIu64 ")\n", it->s->name, verb,
                               backend_label(it->s), version);
        }
        if (actions) {
                print_json(&p, failed == 0 && by_hand == 0, "apply", actions);
                json_decref(actions);
        } else if (created + rotated + raced == 0 && failed == 0)
                printf("apply for %s: nothing to do: %zu secret%s in sync%s\n", scope_text(&p, scope, sizeof scope),
                       p.n_items - by_hand, p.n_items - by_hand == 1 ? "" : "s",
                       by_hand ? "; the ones above need a person" : "");
        else
                printf("apply for %s: %zu created, %zu rotated%s%s\n", scope_text(&p, scope, sizeof scope), created,
                       rotated, failed ? ", some failed (see above)" : "",
                       by_hand ? "; the ones above need a person" : "");
        status = failed ? 1 : 0;
out:
        plan_done(&p);
        return status;
}

int command_rotate(const struct options *o) {
        struct plan p;
        int status = 1;
        if (!o->args || !o->args[0] || o->args[1]) {
                log_error("rotate: name one secret [usage: secrets-run rotate NAME]");
                return 1;
        }
        const char *name = o->args[0];
        struct options all = *o;
        all.all = true;   /* a secret is named: whatever environments it serves */
        if (plan_load(&p, &all, true) < 0)
                goto out;
        p.command = "rotate";
        struct item *it = NULL;
        for (size_t i = 0; i < p.n_items && !it; i++)
                if (streq(p.items[i].s->name, name))
                        it = &p.items[i];
        if (!it) {
                log_error("rotate: no secret '%s' in %s", name, p.m->path);
                goto out;
        }
        const struct mf_secret *s = it->s;
        if (mf_secret_is_ephemeral(s)) {
                log_error("rotate: %s is generated afresh for every run; there is nothing stored to rotate "
                          "[add 'store: true' to its 'generate' to keep one value across runs]", name);
                goto out;
        }
        if (!s->generated) {
                log_error("rotate: %s comes from backend '%s' and is not generated by secrets-run: rotate it by hand "
                          "(owner %s), then runs pick up the new version", name, backend_label(s),
                          s->owner ? s->owner : "not set");
                goto out;
        }
        if (survey(&p, it) < 0) {
                log_error("rotate: %s: %s", name, it->note ? it->note : "cannot be checked");
                goto out;
        }
        if (it->presence == UNCHECKED) {
                log_error("rotate: %s: %s", name, it->note ? it->note : "backend cannot be written");
                goto out;
        }
        bool existed = it->presence == PRESENT;
        uint64_t before = it->meta.version, version = 0;
        it->action = existed ? ACTION_ROTATE : ACTION_CREATE;
        int k = converge(&p, it, true, &version);
        if (k < 0)
                goto out;
        if (o->format == FORMAT_JSON) {
                json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", name, "backend", backend_label(s),
                                        "action", k == 0 ? "raced" : existed ? "rotated" : "created", "previous_version",
                                        (json_int_t) (existed ? before : 0), "version", (json_int_t) version);
                _cleanup_(json_text_freep) char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
                json_decref(doc);
                if (text)
                        printf("%s\n", text);
        } else if (k == 0)
                printf("%s: rotated by another writer meanwhile: version %" PRIu64 " is new\n", name, version);
        else if (existed)
                printf("%s: rotated in backend '%s': version %" PRIu64 " -> %" PRIu64 "\n", name, backend_label(s),
                       before, version);
        else
                printf("%s: created in backend '%s' (version %" PRIu64 ")\n", name, backend_label(s), version);
        status = 0;
out:
        plan_done(&p);
        return status;
}
