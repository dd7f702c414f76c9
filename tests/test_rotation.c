/* Unit tests for the rotation verdict shared by plan and run's gate (agent/plan.c): the
 * boundaries of max_age and fail_after, unknown creation times, clocks that disagree, and the
 * ages people read. */
#include "agent.h"
#include "tap.h"

#define DAY 86400

static struct mf_secret with_rotation(uint64_t max_age, uint64_t fail_after) {
        return (struct mf_secret) { .name = (char *) "S", .has_rotation = true,
                                    .rotation_max_age = max_age, .rotation_fail_after = fail_after };
}

TEST(thresholds_are_exclusive) {
        struct mf_secret s = with_rotation(30 * DAY, 45 * DAY);
        int64_t now = 2000000000;
        uint64_t age = 0;
        CHECK_EQ_INT(rotation_evaluate(&s, now, now, &age), ROTATION_OK);
        CHECK_EQ_INT(age, 0);
        CHECK_EQ_INT(rotation_evaluate(&s, now - 30 * DAY, now, &age), ROTATION_OK);
        CHECK_EQ_INT(rotation_evaluate(&s, now - 30 * DAY - 1, now, &age), ROTATION_OVERDUE);
        CHECK_EQ_INT(age, 30 * DAY + 1);
        CHECK_EQ_INT(rotation_evaluate(&s, now - 45 * DAY, now, &age), ROTATION_OVERDUE);
        CHECK_EQ_INT(rotation_evaluate(&s, now - 45 * DAY - 1, now, &age), ROTATION_FAILING);
}

TEST(without_fail_after_only_overdue) {
        struct mf_secret s = with_rotation(DAY, 0);
        CHECK_EQ_INT(rotation_evaluate(&s, 1, 1000 * DAY, NULL), ROTATION_OVERDUE);
}

TEST(unknown_and_undeclared) {
        struct mf_secret s = with_rotation(DAY, 2 * DAY);
        uint64_t age = 77;
        CHECK_EQ_INT(rotation_evaluate(&s, 0, 1000, &age), ROTATION_UNKNOWN);
        CHECK_EQ_INT(age, 77);   /* untouched when unknown */
        s.has_rotation = false;
        CHECK_EQ_INT(rotation_evaluate(&s, 1, 1000 * DAY, NULL), ROTATION_NONE);
}

TEST(created_in_the_future_is_new) {
        /* another machine's clock ahead of ours: age 0, not a huge unsigned number */
        struct mf_secret s = with_rotation(DAY, 2 * DAY);
        uint64_t age = 1;
        CHECK_EQ_INT(rotation_evaluate(&s, 5000, 1000, &age), ROTATION_OK);
        CHECK_EQ_INT(age, 0);
}

TEST(ages_as_people_read_them) {
        char b[32];
        CHECK_EQ_STR(format_age(0, b, sizeof b), "0s");
        CHECK_EQ_STR(format_age(59, b, sizeof b), "59s");
        CHECK_EQ_STR(format_age(61, b, sizeof b), "1m");
        CHECK_EQ_STR(format_age(3 * 3600 + 5, b, sizeof b), "3h");
        CHECK_EQ_STR(format_age(DAY + 3600, b, sizeof b), "25h");
        CHECK_EQ_STR(format_age(40 * DAY + 100, b, sizeof b), "40d");
        CHECK_EQ_STR(rotation_status_name(ROTATION_FAILING), "failing");
}

int main(void) {
        RUN(thresholds_are_exclusive);
        RUN(without_fail_after_only_overdue);
        RUN(unknown_and_undeclared);
        RUN(created_in_the_future_is_new);
        RUN(ages_as_people_read_them);
        return tap_finish();
}
