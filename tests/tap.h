/* A minimal TAP producer for the unit tests: one "ok N - name" line per case, so meson
 * and .ci/run count cases, not executables. */
#pragma once

#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed, tap_case_failed;
static const char *tap_case_name;

#define CHECK(cond)                                                                   \
        do {                                                                          \
                if (!(cond)) {                                                        \
                        printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        tap_case_failed = 1;                                          \
                }                                                                     \
        } while (0)

#define CHECK_EQ_INT(a, b)                                                            \
        do {                                                                          \
                long long _a = (long long) (a), _b = (long long) (b);                 \
                if (_a != _b) {                                                       \
                        printf("# %s:%d: %s == %lld, expected %s == %lld\n",          \
                               __FILE__, __LINE__, #a, _a, #b, _b);                  \
                        tap_case_failed = 1;                                          \
                }                                                                     \
        } while (0)

#define CHECK_EQ_STR(a, b)                                                            \
        do {                                                                          \
                const char *_a = (a), *_b = (b);                                      \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                              \
                        printf("# %s:%d: %s == \"%s\", expected \"%s\"\n",            \
                               __FILE__, __LINE__, #a, _a ? _a : "(null)",           \
                               _b ? _b : "(null)");                                   \
                        tap_case_failed = 1;                                          \
                }                                                                     \
        } while (0)

static inline void tap_begin(const char *name) {
        tap_case_name = name;
        tap_case_failed = 0;
}

static inline void tap_end(void) {
        tap_count++;
        if (tap_case_failed)
                tap_failed++;
        printf("%sok %d - %s\n", tap_case_failed ? "not " : "", tap_count, tap_case_name);
        fflush(stdout);
}

/* TEST(name) { ... } defines a case; RUN(name) runs it. */
#define TEST(name) static void test_##name(void)
#define RUN(name) do { tap_begin(#name); test_##name(); tap_end(); } while (0)

static inline int tap_finish(void) {
        printf("1..%d\n", tap_count);
        return tap_failed ? 1 : 0;
}
