/* One-line messages on stderr. They take only plain strings: secret values live in
 * struct secret, which no function here accepts. */
#include "common.h"

int log_level = LOG_LEVEL_NORMAL;
static log_filter_fn log_filter;
static bool log_json;

void log_set_json(bool json) {
        log_json = json;
}

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

/* Appends text as the inside of a JSON string: '"', '\\' and control characters escaped, a
 * byte that is not part of valid UTF-8 written as U+FFFD, so the line stays valid JSON. */
static void append_json_string(char *line, size_t size, size_t *len, const char *text, size_t n) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *) text, *end = p + n;
        while (p < end && *len + 8 < size) {
                unsigned c = *p;
                if (c == '"' || c == '\\') {
                        line[(*len)++] = '\\';
                        line[(*len)++] = (char) c;
                        p++;
                } else if (c < 0x20 || c == 0x7f) {
                        memcpy(line + *len, "\\u00", 4);
                        *len += 4;
                        line[(*len)++] = hex[c >> 4];
                        line[(*len)++] = hex[c & 0xf];
                        p++;
                } else if (c < 0x80) {
                        line[(*len)++] = (char) *p++;
                } else {
                        size_t want = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
                        if (c >= 0xf5)
                                want = 0;
                        bool valid = want > 0 && (size_t) (end - p) >= want;
                        for (size_t i = 1; valid && i < want; i++)
                                valid = (p[i] & 0xc0) == 0x80;
                        if (valid) {
                                memcpy(line + *len, p, want);
                                *len += want;
                                p += want;
                        } else {
                                memcpy(line + *len, "\\ufffd", 6);
                                *len += 6;
                                p++;
                        }
                }
        }
}

/* --format json: {"error": WHAT, "hint": HINT or null} (or "warning", "notice"), the hint
 * being a message's trailing "[...]" (DESIGN §2: "<what>: <why> [hint]"). */
static size_t json_line(char *line, size_t size, const char *level, const char *text) {
        size_t n = strlen(text), what = n;
        const char *hint = NULL;
        if (n > 2 && text[n - 1] == ']') {
                const char *open = NULL;
                for (const char *q = text; (q = strstr(q, " [")); q++)
                        open = q;
                if (open) {
                        what = (size_t) (open - text);
                        hint = open + 2;
                }
        }
        size_t len = (size_t) snprintf(line, size, "{\"%s\": \"", *level ? level : "notice");
        append_json_string(line, size, &len, text, what);
        if (hint) {
                len += (size_t) snprintf(line + len, size - len, "\", \"hint\": \"");
                append_json_string(line, size, &len, hint, (size_t) (text + n - 1 - hint));
                len += (size_t) snprintf(line + len, size - len, "\"}\n");
        } else
                len += (size_t) snprintf(line + len, size - len, "\", \"hint\": null}\n");
        return len < size ? len : size - 1;
}

static void log_line(const char *level, const char *fmt, va_list ap) {
        char message[4096], line[4096 + 2048];
        vsnprintf(message, sizeof message, fmt, ap);
        _cleanup_free_ char *filtered = log_filter ? log_filter(message, strlen(message), NULL) : NULL;
        size_t len;
        if (log_json)
                len = json_line(line, sizeof line, level, filtered ? filtered : message);
        else {
                int n = snprintf(line, sizeof line, "secrets-run: %s%s", level, *level ? ": " : "");
                if (n < 0 || (size_t) n >= sizeof line)
                        return;
                len = (size_t) n;
                append_one_line(line, sizeof line, &len, filtered ? filtered : message);
                line[len++] = '\n';
        }
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
