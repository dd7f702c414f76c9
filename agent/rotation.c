/* Rotation: a secret's age against its rotation.max_age / fail_after. One verdict for plan's
 * report and run's gate, so the two cannot disagree about a secret. */
#include <inttypes.h>

#include "agent.h"

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

