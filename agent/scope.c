/* scope: whether a secret is in scope for an environment, stage and CI context (the
 * context itself is read by ci.c). */
#include "agent.h"
#include "scope.h"

const char *scope_verdict_rule(enum scope_verdict v) {
        switch (v) {
        case SCOPE_IN:                return "in-scope";
        case SCOPE_OUT_ENVIRONMENT:   return "environments";
        case SCOPE_OUT_STAGE:         return "stages";
        case SCOPE_OUT_BRANCH:        return "when.branches";
        case SCOPE_OUT_EVENT:         return "when.events";
        case SCOPE_DENY_PROTECTED_PR: return "protected-environment-pull-request";
        default:                      return "unknown";
        }
}

static bool environment_is_protected(const struct manifest *m, const char *name) {
        for (size_t i = 0; name && i < m->n_environments; i++)
                if (streq(m->environments[i].name, name))
                        return m->environments[i].protected_;
        return false;
}

static bool branch_matches(char *const *patterns, const char *branch) {
        for (size_t i = 0; branch && patterns[i]; i++)
                if (glob_match(patterns[i], branch))
                        return true;
        return false;
}

enum scope_verdict scope_evaluate(const struct manifest *m, const struct mf_secret *s,
                                  const char *environment, const char *stage,
                                  const struct ci_context *ci) {
        /* A run without an environment matches only secrets that list none. */
        if (s->environments && (!environment || !strv_contains(s->environments, environment)))
                return SCOPE_OUT_ENVIRONMENT;
        if (s->stages && (!stage || !strv_contains(s->stages, stage)))
                return SCOPE_OUT_STAGE;
        if (s->when_branches && !branch_matches(s->when_branches, ci ? ci->branch : NULL))
                return SCOPE_OUT_BRANCH;
        if (s->when_events) {
                bool listed = ci && ((ci->event && strv_contains(s->when_events, ci->event)) ||
                                     (ci->raw_event && strv_contains(s->when_events,
                                                                     ci->raw_event)));
                if (!listed)
                        return SCOPE_OUT_EVENT;
        }
        /* Last, so a secret that is out of scope anyway is reported for its own rule; every
         * secret counts here, generated ones included: a pull request gets nothing of a
         * protected environment. */
        if (ci && ci->pull_request && environment_is_protected(m, environment))
                return SCOPE_DENY_PROTECTED_PR;
        return SCOPE_IN;
}

int resolve_environment(const struct options *o, const struct manifest *m, const char **ret) {
        const char *env = o->environment;
        if (!env || !*env)
                env = getenv("SECRETS_RUN_ENV");
        if (!env || !*env)
                env = m->default_environment;
        *ret = NULL;
        if (!env || !*env)
                return 0;
        if (m->n_environments > 0 && !manifest_find_environment(m, env)) {
                const char *near = NULL;
                for (size_t i = 0; i < m->n_environments; i++)
                        if (edit_distance(env, m->environments[i].name) <= 2)
                                near = m->environments[i].name;
                log_error("%s: unknown environment '%s'%s%s%s", m->path, env,
                          near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
                return -EINVAL;
        }
        *ret = env;
        return 0;
}

/* Whether name is among the names m uses for one kind (stages or environments); *ret_near
 * the closest of them within two edits, *ret_any whether there is any. */
static bool name_used(const struct manifest *m, bool stages, const char *name, const char **ret_near,
                      bool *ret_any) {
        const char *near = NULL;
        unsigned best = 3;
        bool any = false, found = false;
        const char *dflt = stages ? m->default_stage : m->default_environment;
        for (size_t i = 0; i <= m->n_secrets; i++) {
                char *const *list = i < m->n_secrets
                                            ? (stages ? m->secrets[i].stages : m->secrets[i].environments)
                                            : NULL;
                char *const one[] = { (char *) dflt, NULL };
                if (i == m->n_secrets)
                        list = dflt ? one : NULL;
                for (size_t j = 0; list && list[j]; j++) {
                        any = true;
                        unsigned d = edit_distance(name, list[j]);
                        if (d == 0)
                                found = true;
                        else if (d < best) {
                                best = d;
                                near = list[j];
                        }
                }
        }
        *ret_near = near;
        *ret_any = any;
        return found;
}

static void warn_unnamed(const struct manifest *m, bool stages, const char *name) {
        const char *near;
        bool any;
        if (!name || name_used(m, stages, name, &near, &any) || !any)
                return;
        const char *kind = stages ? "stage" : "environment";
        if (near)
                log_warning("%s: no secret names %s '%s': only the secrets that list no %ss are in scope "
                            "[did you mean '%s'?]", m->path, kind, name, kind, near);
        else
                log_warning("%s: no secret names %s '%s': only the secrets that list no %ss are in scope",
                            m->path, kind, name, kind);
}

void scope_warn_unnamed(const struct manifest *m, const char *environment, const char *stage) {
        /* declared environments are checked where the environment is resolved (an error) */
        if (m->n_environments == 0)
                warn_unnamed(m, false, environment);
        warn_unnamed(m, true, stage);
}
