/* Small shared helpers for every module of secrets-run: scope-based cleanup, the secure
 * buffer that carries secret values, messages, durations, strings and fd utilities. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- scope-based cleanup ---- */

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _noreturn_ __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) { free(*(void **) p); }
#define _cleanup_free_ _cleanup_(freep)

/* Closes fd if it is >= 0 and returns -1, so `fd = safe_close(fd);` reads naturally. */
int safe_close(int fd);
static inline void closep(int *fd) { safe_close(*fd); }
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d) { if (*d) closedir(*d); }
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Hands a pointer over to a new owner, leaving NULL behind so cleanup does nothing. */
#define steal_pointer(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

/* ---- secure buffers: the only type that carries secret values ----
 * Memory comes from sodium_malloc (guard pages, mlock'd, excluded from core dumps) and is
 * wiped on free. The struct is opaque and message functions take only `const char *`, so a
 * value cannot be passed to a log call by accident. */
struct secret;

int secret_init(void);  /* sodium_init, RLIMIT_MEMLOCK raised; call once before anything else */
/* 1 if locked memory has reached RLIMIT_MEMLOCK (so buffers allocated past it are not
 * locked), 0 if not or if the limit does not apply; the locked bytes and the limit (0: none). */
int secret_lock_status(uint64_t *ret_locked, uint64_t *ret_limit);
int secret_new(size_t capacity, struct secret **ret);
int secret_from_bytes(const void *p, size_t n, struct secret **ret);
int secret_append(struct secret *s, const void *p, size_t n);
/* Appends one byte passed by value: it goes from a register into secure memory, with no
 * stack copy left behind (an encoder building a form a byte at a time needs no wipe). */
int secret_push(struct secret *s, unsigned char c);
/* Reads fd to EOF into s; fails with -EFBIG past max bytes. */
int secret_read_fd(struct secret *s, int fd, size_t max);
void secret_truncate(struct secret *s, size_t len);
void secret_chomp(struct secret *s);   /* drop one trailing "\n", as providers print it */
const unsigned char *secret_data(const struct secret *s);
size_t secret_len(const struct secret *s);
bool secret_has_nul(const struct secret *s);
struct secret *secret_free(struct secret *s);
/* Zeroes every live secure buffer of this process (a forked child that must not keep a copy
 * of the secrets calls it; the buffers stay allocated, empty). */
void secret_wipe_all(void);
static inline void secret_freep(struct secret **s) { secret_free(*s); }
#define _cleanup_secret_ _cleanup_(secret_freep)

/* ---- messages (stderr, one line each, "secrets-run: <level>: ...") ---- */

enum log_level { LOG_LEVEL_QUIET = 0, LOG_LEVEL_NORMAL = 1, LOG_LEVEL_VERBOSE = 2 };
extern int log_level;
void log_error(const char *fmt, ...) _printf_(1, 2);
void log_warning(const char *fmt, ...) _printf_(1, 2);
void log_notice(const char *fmt, ...) _printf_(1, 2);   /* hidden by --quiet */
void log_info(const char *fmt, ...) _printf_(1, 2);     /* shown with --verbose */
/* Every message passes filter before it is written: it returns a malloc'd replacement of the
 * text (the agent masks values and credentials with it), or NULL to keep it. */
typedef char *(*log_filter_fn)(const char *text, size_t len, size_t *ret_len);
void log_set_filter(log_filter_fn filter);
/* --format json: each message is one JSON object on stderr, {"error"|"warning"|"notice": TEXT,
 * "hint": TEXT or null}, the hint being the message's trailing "[...]". */
void log_set_json(bool json);

/* ---- durations: "90s", "15m", "1h", "7d" (also combined, "1h30m") ---- */

int parse_duration(const char *s, uint64_t *ret_seconds);
/* Writes the shortest exact form ("45d", "90s", "1h30m") into buf. */
const char *format_duration(uint64_t seconds, char *buf, size_t size);

/* ---- points in time: RFC 3339, as Vault, the store's export and plan's JSON write them ---- */

/* "2026-01-02T03:04:05Z", with optional fractional seconds, "Z" or exactly "+HH:MM"/"-HH:MM";
 * -EINVAL for anything else. */
int parse_timestamp(const char *s, int64_t *ret_unix);
/* "2026-01-02T03:04:05Z" (UTC) into buf (at least 21 bytes). */
const char *format_timestamp(int64_t unix_seconds, char *buf, size_t size);

/* ---- strings ---- */

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}
bool startswith(const char *s, const char *prefix);
bool is_identifier(const char *s);       /* [A-Za-z_][A-Za-z0-9_]* */
char *strdup_upper(const char *s);
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
unsigned edit_distance(const char *a, const char *b);
/* Globs for branch names and paths, by fnmatch(3): each '/'-separated part of the pattern is
 * matched against one part of s with fnmatch(pattern_part, part, 0) ('*', '?', '[...]' and
 * '\\' escapes, never across a '/', as FNM_PATHNAME has it), and a part that is exactly "**"
 * matches any number of parts: zero or more at the start or middle ("**" + "/x.log",
 * "a/" + "**" + "/b" matches "a/b"), one or more at the end ("release/" + "**"). Linear in
 * the parts, whatever the pattern (the hand-written matcher before was exponential). */
bool glob_match(const char *pattern, const char *s);
/* Is the host of a URL's authority (what follows "scheme://": [userinfo@]host[:port][/...])
 * loopback: localhost, 127.0.0.0/8, ::1, ::ffff:127.x.y.z? Traffic to these never leaves the
 * machine. One rule for `check` and for the backends that refuse plain http elsewhere. */
bool url_host_is_loopback(const char *authority);

/* NULL-terminated string lists */
size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
int strv_push(char ***l, char *s);       /* takes ownership of s, even on failure */
int strv_extend(char ***l, const char *s);  /* copies s */
char **strv_copy(char *const *l);
char **strv_free(char **l);
static inline void strv_freep(char ***l) { strv_free(*l); }
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* ---- fds and files ---- */

int write_all(int fd, const void *p, size_t n);
/* Reads up to max bytes of a regular file into a NUL-terminated malloc'd buffer. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_size);
int fd_set_nonblock(int fd, bool nonblock);
/* fdopendir() on a duplicate, so dir_fd stays the caller's (closedir closes only the copy);
 * rewound to the first entry. NULL with errno set on failure. */
DIR *opendir_dup(int dir_fd);
int fd_set_cloexec(int fd, bool cloexec);
uint64_t now_monotonic_ms(void);
