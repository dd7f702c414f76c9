/* Unit tests for agent/output.c's leak places: how a place is spelled (PATH:LINE:COL, a
 * member as PATH!MEMBER), and that leaks of different members are told apart. */
#include "output.h"
#include "redact.h"
#include "tap.h"

TEST(leak_place_spelling) {
        _cleanup_free_ char *stream = leak_place("stdout", NULL, 12, 5);
        _cleanup_free_ char *file = leak_place("path/to/f", NULL, 3, 17);
        _cleanup_free_ char *member = leak_place("dist/a.tar.gz", "src/config.json", 3, 17);
        _cleanup_free_ char *bare = leak_place("out.log", NULL, 0, 0);
        _cleanup_free_ char *bare_member = leak_place("a.zip", "x/y", 0, 0);
        CHECK_EQ_STR(stream, "stdout:12:5");
        CHECK_EQ_STR(file, "path/to/f:3:17");
        CHECK_EQ_STR(member, "dist/a.tar.gz!src/config.json:3:17");
        CHECK_EQ_STR(bare, "out.log");
        CHECK_EQ_STR(bare_member, "a.zip!x/y");
}

struct seen {
        unsigned hooked, members;
        unsigned groups;
        char *first[4];
};

static void hook(void *userdata, const struct redact_leak *leak, const char *where, bool reported) {
        struct seen *s = userdata;
        s->hooked++;
        if (leak->member)
                s->members++;
}

static void group(void *userdata, const struct leak_summary *l) {
        struct seen *s = userdata;
        if (s->groups < 4)
                s->first[s->groups] = leak_place(l->where, l->member, l->first.line, l->first.col);
        s->groups++;
}

/* Leaks past the first ten are counted per secret, form, path and member: two members of one
 * archive are two groups, each with its own first position. */
TEST(leak_groups_per_member) {
        struct seen s = {};
        report_leaks_to(hook, &s);
        report_leaks_as_warnings(true);
        for (uint64_t i = 1; i <= 12; i++) {
                report_leak(&(struct redact_leak) { .name = "K", .form = FORM_RAW, .member = "a.txt", .line = i, .col = 2 },
                            "dist/x.tar");
                report_leak(&(struct redact_leak) { .name = "K", .form = FORM_RAW, .member = "b.txt", .line = i, .col = 3 },
                            "dist/x.tar");
        }
        leak_groups_foreach(group, &s);
        CHECK_EQ_INT(s.hooked, 24);
        CHECK_EQ_INT(s.members, 24);
        CHECK_EQ_INT(s.groups, 2);
        CHECK_EQ_STR(s.first[0], "dist/x.tar!a.txt:11:2");
        CHECK_EQ_STR(s.first[1], "dist/x.tar!b.txt:11:3");
        for (unsigned i = 0; i < 2; i++)
                free(s.first[i]);
        report_leaks_to(NULL, NULL);
        leak_reports_done();
}

int main(void) {
        RUN(leak_place_spelling);
        RUN(leak_groups_per_member);
        return tap_finish();
}
