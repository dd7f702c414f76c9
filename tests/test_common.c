/* Unit tests for common/: durations, globs, edit distance, string lists, secure buffers. */
#include <fcntl.h>
#include <time.h>

#include "common.h"
#include "tap.h"

TEST(duration_units) {
        uint64_t s = 0;
        CHECK_EQ_INT(parse_duration("90s", &s), 0); CHECK_EQ_INT(s, 90);
        CHECK_EQ_INT(parse_duration("15m", &s), 0); CHECK_EQ_INT(s, 900);
        CHECK_EQ_INT(parse_duration("1h", &s), 0);  CHECK_EQ_INT(s, 3600);
        CHECK_EQ_INT(parse_duration("7d", &s), 0);  CHECK_EQ_INT(s, 604800);
        CHECK_EQ_INT(parse_duration("1h30m", &s), 0); CHECK_EQ_INT(s, 5400);
}

TEST(duration_rejects) {
        uint64_t s = 42;
        CHECK_EQ_INT(parse_duration("", &s), -EINVAL);
        CHECK_EQ_INT(parse_duration("30", &s), -EINVAL);
        CHECK_EQ_INT(parse_duration("5x", &s), -EINVAL);
        CHECK_EQ_INT(parse_duration("-5s", &s), -EINVAL);
        CHECK_EQ_INT(parse_duration("1.5h", &s), -EINVAL);
        CHECK_EQ_INT(parse_duration("h", &s), -EINVAL);
        CHECK_EQ_INT(parse_duration("99999999999999999999d", &s), -ERANGE);
        CHECK_EQ_INT(s, 42);  /* untouched on failure */
}

/* RFC 3339 as Vault, the store export and plan write it; offsets exactly +HH:MM. */
TEST(timestamps) {
        int64_t t = 0;
        CHECK_EQ_INT(parse_timestamp("2026-01-02T03:04:05Z", &t), 0);
        CHECK_EQ_INT(t, 1767323045);
        CHECK_EQ_INT(parse_timestamp("2018-03-22T02:24:06.945319214Z", &t), 0);
        CHECK_EQ_INT(t, 1521685446);
        CHECK_EQ_INT(parse_timestamp("2026-01-02T05:04:05.25+02:00", &t), 0);
        CHECK_EQ_INT(t, 1767323045);
        CHECK_EQ_INT(parse_timestamp("2026-01-01T22:04:05-05:00", &t), 0);
        CHECK_EQ_INT(t, 1767323045);
        const char *bad[] = { "", "2026-01-02", "2026-01-02T03:04:05", "2026-01-02T03:04:05+5:3",
                              "2026-01-02T03:04:05+05", "2026-01-02T03:04:05+24:00", "2026-01-02T03:04:05Zx",
                              "2026-01-02T03:04:05+05:00:00" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK_EQ_INT(parse_timestamp(bad[i], &t), -EINVAL);
        CHECK_EQ_INT(parse_timestamp(NULL, &t), -EINVAL);
        char buf[32];
        CHECK_EQ_STR(format_timestamp(1767323045, buf, sizeof buf), "2026-01-02T03:04:05Z");
        CHECK_EQ_INT(parse_timestamp(format_timestamp(0, buf, sizeof buf), &t), 0);
        CHECK_EQ_INT(t, 0);
}

TEST(duration_format) {
        char buf[32];
        CHECK_EQ_STR(format_duration(90, buf, sizeof buf), "1m30s");
        CHECK_EQ_STR(format_duration(45 * 86400, buf, sizeof buf), "45d");
        CHECK_EQ_STR(format_duration(0, buf, sizeof buf), "0s");
}

TEST(glob) {
        CHECK(glob_match("main", "main"));
        CHECK(!glob_match("main", "mainline"));
        CHECK(glob_match("release/*", "release/1.2"));
        CHECK(!glob_match("release/*", "release/1.2/hotfix"));
        CHECK(glob_match("release/**", "release/1.2/hotfix"));
        CHECK(glob_match("**/*.log", "a/b/c.log"));
        CHECK(glob_match("**/*.log", "c.log"));
        CHECK(glob_match("a/**/b", "a/b"));
        CHECK(glob_match("feat-?", "feat-x"));
        CHECK(!glob_match("feat-?", "feat-xy"));
        CHECK(glob_match("*", "anything"));
        CHECK(!glob_match("*", "a/b"));
        /* fnmatch(3)'s syntax inside a part */
        CHECK(glob_match("release/v[0-9]*", "release/v2.1"));
        CHECK(!glob_match("release/v[0-9]*", "release/vx"));
        CHECK(glob_match("feat-[!x]", "feat-y"));
        CHECK(glob_match("lit\\*", "lit*"));
        CHECK(!glob_match("lit\\*", "litx"));
        CHECK(!glob_match("a?b", "a/b"));
        CHECK(!glob_match("a[/]b", "a/b"));
        /* whole-part double stars */
        CHECK(!glob_match("release/**", "release"));
        CHECK(glob_match("release/**", "release/x"));
        CHECK(glob_match("a/**/b/**/c", "a/b/c"));
        CHECK(glob_match("a/**/b/**/c", "a/x/b/y/z/c"));
        CHECK(!glob_match("a/**/b/**/c", "a/x/c"));
        CHECK(glob_match("**/x/*.log", "p/x/q/x/r.log"));
        CHECK(!glob_match("a/**/a", "a"));
        CHECK(glob_match("**", "anything/at/all"));
}

/* The hand-written matcher took 18.5 s for this (exponential backtracking); fnmatch and one
 * pass over the parts take microseconds. */
TEST(glob_is_not_exponential) {
        char branch[41], pattern[256] = "", deep[256] = "", path[128] = "";
        memset(branch, 'a', 40);
        branch[40] = '\0';
        for (int i = 0; i < 20; i++)
                strcat(pattern, "*a");
        strcat(pattern, "*b");
        for (int i = 0; i < 30; i++)
                strcat(deep, "**/a/");
        strcat(deep, "b");
        for (int i = 0; i < 40; i++)
                strcat(path, "a/");
        strcat(path, "a");
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK(!glob_match(pattern, branch));
        CHECK(!glob_match(deep, path));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;
        CHECK(ms < 100);
}

TEST(url_host_loopback) {
        CHECK(url_host_is_loopback("127.0.0.1:8200/v1"));
        CHECK(url_host_is_loopback("127.9.9.9"));
        CHECK(url_host_is_loopback("localhost:8200"));
        CHECK(url_host_is_loopback("localhost."));
        CHECK(url_host_is_loopback("[::1]:8200/"));
        CHECK(url_host_is_loopback("[::ffff:127.0.0.1]"));
        CHECK(url_host_is_loopback("user@127.0.0.1:8200"));
        CHECK(url_host_is_loopback("a@b@127.0.0.1/x"));        /* the last @ ends the userinfo */
        CHECK(!url_host_is_loopback("127.0.0.1@vault.example.com/"));
        CHECK(!url_host_is_loopback("127.0.0.1.nip.io"));
        CHECK(!url_host_is_loopback("localhost.example.com"));
        CHECK(!url_host_is_loopback("10.0.0.1:8200"));
        CHECK(!url_host_is_loopback("[::2]"));
        CHECK(!url_host_is_loopback(""));
}

TEST(edit_distance_suggests) {
        CHECK_EQ_INT(edit_distance("enviroments", "environments"), 1);
        CHECK_EQ_INT(edit_distance("", "abc"), 3);
        CHECK_EQ_INT(edit_distance("stage", "stage"), 0);
}

TEST(strv) {
        _cleanup_strv_free_ char **l = NULL;
        CHECK_EQ_INT(strv_extend(&l, "a"), 0);
        CHECK_EQ_INT(strv_push(&l, strdup("b")), 0);
        CHECK_EQ_INT(strv_length(l), 2);
        CHECK(strv_contains(l, "b"));
        CHECK(!strv_contains(l, "c"));
        _cleanup_strv_free_ char **c = strv_copy(l);
        CHECK_EQ_INT(strv_length(c), 2);
        CHECK_EQ_STR(c[1], "b");
}

TEST(secret_buffer) {
        _cleanup_secret_ struct secret *s = NULL;
        CHECK_EQ_INT(secret_new(4, &s), 0);
        CHECK_EQ_INT(secret_append(s, "hello, ", 7), 0);
        CHECK_EQ_INT(secret_append(s, "world\n", 6), 0);   /* grows past capacity */
        CHECK_EQ_INT(secret_len(s), 13);
        secret_chomp(s);
        CHECK_EQ_INT(secret_len(s), 12);
        CHECK(memcmp(secret_data(s), "hello, world", 12) == 0);
        secret_chomp(s);  /* only one newline, and only if present */
        CHECK_EQ_INT(secret_len(s), 12);
        CHECK(!secret_has_nul(s));
        CHECK_EQ_INT(secret_append(s, "\0", 1), 0);
        CHECK(secret_has_nul(s));
}

TEST(secret_read_fd_bounded) {
        int p[2];
        CHECK_EQ_INT(pipe2(p, O_CLOEXEC), 0);
        CHECK_EQ_INT(write_all(p[1], "0123456789", 10), 0);
        close(p[1]);
        _cleanup_secret_ struct secret *s = NULL;
        CHECK_EQ_INT(secret_new(0, &s), 0);
        CHECK_EQ_INT(secret_read_fd(s, p[0], 5), -EFBIG);
        close(p[0]);
}

/* A freed secure buffer stays mapped (slabs and the per-size pool keep it for the next
 * allocation), so what it held must be gone the moment it is freed. The first pointer's
 * worth of a slab buffer links the free list. */
static bool wiped_after_free(size_t size) {
        _cleanup_free_ unsigned char *marker = malloc(size);
        if (!marker)
                return false;
        for (size_t i = 0; i < size; i++)
                marker[i] = (unsigned char) ('A' + i % 26);
        struct secret *s = NULL;
        if (secret_from_bytes(marker, size, &s) < 0)
                return false;
        const unsigned char *p = secret_data(s);
        secret_free(s);
        for (size_t i = sizeof(void *); i < size; i++)
                if (p[i] != 0)
                        return false;
        return true;
}

TEST(secret_wiped_on_free) {
        CHECK(wiped_after_free(40));          /* a slab buffer */
        CHECK(wiped_after_free(3000));        /* the largest slab class */
        CHECK(wiped_after_free(100 * 1024));  /* a pooled buffer of its own */
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        RUN(duration_units);
        RUN(duration_rejects);
        RUN(duration_format);
        RUN(timestamps);
        RUN(glob);
        RUN(glob_is_not_exponential);
        RUN(url_host_loopback);
        RUN(edit_distance_suggests);
        RUN(strv);
        RUN(secret_buffer);
        RUN(secret_read_fd_bounded);
        RUN(secret_wiped_on_free);
        return tap_finish();
}
