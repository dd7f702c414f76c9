/* One-line messages on stderr. They take only plain strings: secret values live in
 * struct secret, which no function here accepts. */
#include "common.h"

int log_level = LOG_LEVEL_NORMAL;
static log_filter_fn log_filter;

/* Appends text to line[*len] with control characters but tab written as C escapes (\n, \r,
 * \xNN), so a message stays one line whatever it quotes: a file name a step chose with a
 * newline and "::add-mask::" in it would otherwise start a CI workflow command of its own. */
static void append_one_line(char *line, size_t size, size_t *len, const char *text) {
        static const char hex[] = "0123456789abcdef";
        for (const unsigned char *p = (const unsigned char *) text; *p && *len + 4 < size; p++) {
                if ((*p >= 0x20 && *p != 0x7f) || *p == '\t') {
                        line[(*len)++] = (char) *p;
                        continue;
                }
                line[(*len)++] = '\\';
                if (*p == '\n' || *p == '\r')
                        line[(*len)++] = *p == '\n' ? 'n' : 'r';
                else {
                        line[(*len)++] = 'x';
                        line[(*len)++] = hex[*p >> 4];
                        line[(*len)++] = hex[*p & 0xf];
                }
        }
}

void log_set_filter(log_filter_fn filter) {
        log_filter = filter;
}

static void log_line(const char *level, const char *fmt, va_list ap) {
        char message[4096], line[4096];
        vsnprintf(message, sizeof message, fmt, ap);
        int n = snprintf(line, sizeof line, "secrets-run: %s%s", level, *level ? ": " : "");
        if (n < 0 || (size_t) n >= sizeof line)
                return;
        _cleanup_free_ char *filtered = log_filter ? log_filter(message, strlen(message), NULL) : NULL;
        size_t len = (size_t) n;
        append_one_line(line, sizeof line, &len, filtered ? filtered : message);
        line[len++] = '\n';
        /* one write, so concurrent writers interleave whole lines */
        (void) write_all(STDERR_FILENO, line, len);
        /* what the message quoted before it was masked stays nowhere */
        explicit_bzero(message, sizeof message);
        explicit_bzero(line, sizeof line);
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
