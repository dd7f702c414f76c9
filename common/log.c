/* One-line messages on stderr. They take only plain strings: secret values live in
 * struct secret, which no function here accepts. */
#include "common.h"

int log_level = LOG_LEVEL_NORMAL;

static void log_line(const char *level, const char *fmt, va_list ap) {
        char line[4096];
        int n = snprintf(line, sizeof(line), "secrets-run: %s%s", level, *level ? ": " : "");
        if (n < 0 || (size_t) n >= sizeof(line))
                return;
        vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
        size_t len = strlen(line);
        if (len + 1 < sizeof(line))
                line[len++] = '\n';
        else
                line[len - 1] = '\n';
        /* one write, so concurrent writers interleave whole lines */
        (void) write_all(STDERR_FILENO, line, len);
}

#define DEFINE_LOG(fn, level, min)                   \
        void fn(const char *fmt, ...) {              \
                if (log_level < (min))               \
                        return;                      \
                va_list ap;                          \
                va_start(ap, fmt);                   \
                log_line(level, fmt, ap);            \
                va_end(ap);                          \
        }

DEFINE_LOG(log_error, "error", LOG_LEVEL_QUIET)
DEFINE_LOG(log_warning, "warning", LOG_LEVEL_QUIET)
DEFINE_LOG(log_notice, "", LOG_LEVEL_NORMAL)
DEFINE_LOG(log_info, "", LOG_LEVEL_VERBOSE)

void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_line("error", fmt, ap);
        va_end(ap);
        _exit(125);
}
