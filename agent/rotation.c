/* Rotation: a secret's age against its rotation.max_age / fail_after. One verdict for plan's
 * report and run's gate (run_gate_rotation), so the two cannot disagree about a secret. */
#include <inttypes.h>

#include "agent.h"
#include "run.h"

#define SECONDS_PER_DAY 86400

enum rotation_status rotation_evaluate(const struct mf_secret *s, int64_t created, int64_t now, uint64_t *ret_age) {
        if (!s->has_rotation)
                return ROTATION_NONE;
        if (created <= 0)
                return ROTATION_UNKNOWN;
        uint64_t age = now > created ? (uint64_t) (now - created) : 0;
        if (ret_age)
                *ret_age = age;
        if (s->rotation_fail_after && age > s->rotation_fail_after)
                return ROTATION_FAILING;
        if (s->rotation_max_age && age > s->rotation_max_age)
                return ROTATION_OVERDUE;
        return ROTATION_OK;
}

const char *rotation_status_name(enum rotation_status r) {
        switch (r) {
        case ROTATION_OK:       return "ok";
        case ROTATION_OVERDUE:  return "overdue";
        case ROTATION_FAILING:  return "failing";
        case ROTATION_UNKNOWN:  return "unknown";
        case ROTATION_NONE:
        default:                return "none";
        }
}

const char *format_age(uint64_t seconds, char *buf, size_t size) {
        if (seconds >= 2 * SECONDS_PER_DAY)
                snprintf(buf, size, "%" PRIu64 "d", seconds / SECONDS_PER_DAY);
        else if (seconds >= 3600)
                snprintf(buf, size, "%" PRIu64 "h", seconds / 3600);
        else if (seconds >= 60)
                snprintf(buf, size, "%" PRIu64 "m", seconds / 60);
        else
                snprintf(buf, size, "%" PRIu64 "s", seconds);
        return buf;
}

/* The rotation gate, on the creation time the backends reported with each value: past
 * rotation.max_age warns, past rotation.fail_after refuses the run (every such secret is
 * named before it does). A backend that keeps no creation time cannot be gated; plan says so. */
int run_gate_rotation(struct run *r) {
        int64_t now = (int64_t) time(NULL);
        size_t refused = 0;
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                uint64_t age = 0;
                enum rotation_status st = rotation_evaluate(s, r->secrets[i].meta.created, now, &age);
                if (st != ROTATION_OVERDUE && st != ROTATION_FAILING) {
                        if (st == ROTATION_UNKNOWN)
                                log_info("%s: backend '%s' reports no creation time; rotation is not checked",
                                         s->name, s->backend ? s->backend : "generate");
                        continue;
                }
                char a[32], t[32], f[32];
                const char *owner = s->owner ? s->owner : "not set";
                uint64_t limit = st == ROTATION_FAILING ? s->rotation_fail_after : s->rotation_max_age;
                json_t *ev = json_pack("{s:s, s:I, s:I, s:s, s:s?}", "name", s->name, "age_seconds", (json_int_t) age,
                                       st == ROTATION_FAILING ? "fail_after" : "max_age", (json_int_t) limit,
                                       "status", rotation_status_name(st), "owner", s->owner);
                int k = run_audit_event(r, "rotation.gate", ev);
                if (k < 0)
                        return k;
                format_age(age, a, sizeof a);
                format_duration(limit, t, sizeof t);
                if (st == ROTATION_FAILING) {
                        char hint[96] = "";
                        if (s->generated)
                                snprintf(hint, sizeof hint, " [secrets-run rotate %s]", s->name);
                        log_error("%s:%u: rotation: %s is %s old, past rotation.fail_after (%s): refusing to run; owner %s must rotate it%s",
                                  r->m->path, s->pos.line, s->name, a, t, owner, hint);
                        refused++;
                } else
                        log_warning("%s:%u: rotation: %s is %s old, past rotation.max_age (%s); owner %s should rotate it%s%s",
                                    r->m->path, s->pos.line, s->name, a, t, owner,
                                    s->rotation_fail_after ? ", runs refuse it after " : "",
                                    s->rotation_fail_after ? format_duration(s->rotation_fail_after, f, sizeof f) : "");
        }
        return refused ? -EKEYEXPIRED : 0;
}
