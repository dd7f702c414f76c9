/* Scanning whole files for leaks: the streaming matcher over read() pieces, so memory stays
 * bounded whatever the file's size; what is compressed or an archive goes through archive.c.
 * Which files to scan is the caller's policy. */
#include <stdarg.h>

#include "scan-private.h"

void scan_warning(struct scan *s, const char *member, const char *fmt, ...) {
        if (!s->options || !s->options->warning)
                return;
        char text[512];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        s->options->warning(s->options->userdata, member, text);
}

static void scan_leak(void *userdata, const struct redact_leak *leak) {
        struct scan *s = userdata;
        if (!s->sink || !s->sink->leak)
                return;
        struct redact_leak l = *leak;
        l.member = s->member;
        s->sink->leak(s->sink->userdata, &l);
}

/* ---- the file as a source ---- */

static void fd_wipe(struct source *src) {
        /* the file's bytes may hold a value: not left in the buffer */
        explicit_bzero(src->fd_buf, src->fd_dirty);
        src->fd_dirty = 0;
}

static ssize_t fd_read(struct source *src, const void **ret) {
        fd_wipe(src);
        size_t want = src->fd_left < SCAN_PIECE ? (size_t) src->fd_left : SCAN_PIECE;
        if (want == 0)
                return 0;
        for (;;) {
                ssize_t n = read(src->fd, src->fd_buf, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                src->fd_left -= (uint64_t) n;
                src->fd_dirty = (size_t) n;
                *ret = src->fd_buf;
                return n;
        }
}

/* The first piece, at least SCAN_SNIFF bytes unless the file is shorter: one read() for a
 * regular file, as a plain scan always did. */
static int fd_fill_head(struct source *src) {
        fd_wipe(src);
        size_t want = src->fd_left < SCAN_PIECE ? (size_t) src->fd_left : SCAN_PIECE, got = 0;
        while (got < want && got < SCAN_SNIFF) {
                ssize_t n = read(src->fd, src->fd_buf + got, want - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
                src->fd_dirty = got;
        }
        src->fd_left -= got;
        src->head = src->fd_buf;
        src->head_len = got;
        return 0;
}

/* Back to the file's first byte, to scan it again as it is. */
static int fd_rewind(struct source *src) {
        if (src->archive || src->fd < 0 || src->fd_start < 0)
                return -ESPIPE;
        if (lseek(src->fd, src->fd_start, SEEK_SET) < 0)
                return -errno;
        src->fd_left = src->fd_limit;
        src->head_len = src->back_len = 0;
        return fd_fill_head(src);
}

ssize_t source_read(struct source *src, const void **ret) {
        size_t n;
        if ((n = src->head_len) > 0) {
                *ret = src->head;
                src->head_len = 0;
                return (ssize_t) n;
        }
        if ((n = src->back_len) > 0) {
                *ret = src->back;
                src->back_len = 0;
                return (ssize_t) n;
        }
        return src->archive ? archive_member_read(src, ret) : fd_read(src, ret);
}

int source_fill_head(struct source *src) {
        size_t got = 0;
        while (got < SCAN_SNIFF) {
                const void *p;
                ssize_t n = source_read(src, &p);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                if (got == 0 && n >= SCAN_SNIFF) {   /* the common case: no copy */
                        src->head = p;
                        src->head_len = (size_t) n;
                        return 0;
                }
                size_t take = (size_t) n < SCAN_SNIFF - got ? (size_t) n : SCAN_SNIFF - got;
                memcpy(src->peek + got, p, take);
                got += take;
                if (take < (size_t) n) {
                        src->back = (const unsigned char *) p + take;
                        src->back_len = (size_t) n - take;
                }
        }
        src->head = src->peek;
        src->head_len = got;
        return 0;
}

/* ---- scanning ---- */

int scan_plain(struct scan *s, struct source *src, const char *member) {
        struct redact_sink sink = { .leak = scan_leak, .userdata = s };
        redact_stream_reset(s->stream);
        s->member = member;
        for (;;) {
                const void *p;
                ssize_t n = source_read(src, &p);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                int k = redact_stream_feed(s->stream, p, (size_t) n, &sink);
                if (k < 0)
                        return k;
        }
        int k = redact_stream_finish(s->stream, &sink);
        if (k < 0)
                return k;
        s->leaks += redact_stream_leak_count(s->stream);
        return 0;
}

int scan_source(struct scan *s, struct source *src, unsigned depth, const char *member, bool unpacked) {
        enum sniff kind = archive_sniff(src->head, src->head_len);
        if (kind == SNIFF_PLAIN)
                return scan_plain(s, src, member);
        unsigned level = kind == SNIFF_ARCHIVE && unpacked ? depth : depth + 1;
        if (level > s->max_depth) {
                scan_warning(s, member, "an archive nested more than %u deep: scanned as it is, not unpacked",
                             s->max_depth);
                return scan_plain(s, src, member);
        }
        bool damaged = false;
        int k = archive_scan(s, src, kind, level, member, &damaged);
        if (k < 0 || !damaged || s->stopped)
                return k;
        /* truncated or corrupt: its bytes as they are may still hold a leak (an uncompressed
         * tar, a zip's stored members); the file from its start, a member from where it broke */
        if (!src->archive && (k = fd_rewind(src)) < 0 && k != -ESPIPE)
                return k;
        return scan_plain(s, src, member);
}

/* A stream and a read buffer kept for many files: an artifact scan of 100,000 small files
 * would otherwise make (and lock, and wipe) both for each. */
struct redact_scanner {
        const struct redactor *r;
        struct redact_stream *stream;
        unsigned char *buf;
};

struct redact_scanner *redact_scanner_free(struct redact_scanner *sc) {
        if (!sc)
                return NULL;
        redact_stream_free(sc->stream);
        free(sc->buf);   /* wiped after each file */
        free(sc);
        return NULL;
}

int redact_scanner_new(const struct redactor *r, struct redact_scanner **ret) {
        struct redact_scanner *sc = calloc(1, sizeof *sc);
        if (!sc)
                return -ENOMEM;
        sc->r = r;
        int k = redact_stream_new(r, &sc->stream);
        if (k >= 0 && !(sc->buf = malloc(SCAN_PIECE)))
                k = -ENOMEM;
        if (k < 0) {
                redact_scanner_free(sc);
                return k;
        }
        *ret = sc;
        return 0;
}

int redact_scanner_scan(struct redact_scanner *sc, int fd, uint64_t limit, const struct redact_scan_options *o,
                        const struct redact_sink *sink) {
        struct scan s = {
                .r = sc->r, .sink = sink, .options = o, .name = o ? o->name : NULL,
                .max_expanded = o && o->max_expanded ? o->max_expanded : REDACT_SCAN_MAX_EXPANDED,
                .max_depth = o && o->max_depth ? o->max_depth : REDACT_SCAN_MAX_DEPTH,
                .max_members = o && o->max_members ? o->max_members : REDACT_SCAN_MAX_MEMBERS,
                .stream = sc->stream,
        };
        struct source src = {
                .scan = &s, .fd = fd, .fd_start = lseek(fd, 0, SEEK_CUR), .fd_limit = limit, .fd_left = limit,
                .fd_buf = sc->buf,
        };
        int k = fd_fill_head(&src);
        if (k >= 0)
                k = scan_source(&s, &src, 0, NULL, false);
        fd_wipe(&src);
        if (k < 0)
                return k;
        return s.leaks > INT32_MAX ? INT32_MAX : (int) s.leaks;
}

int redact_scan_file(const struct redactor *r, int fd, uint64_t limit, const struct redact_scan_options *o,
                     const struct redact_sink *sink) {
        struct redact_scanner *sc = NULL;
        int k = redact_scanner_new(r, &sc);
        if (k < 0)
                return k;
        k = redact_scanner_scan(sc, fd, limit, o, sink);
        redact_scanner_free(sc);
        return k;
}

int redact_scan_fd(const struct redactor *r, int fd, uint64_t limit, const struct redact_sink *sink) {
        return redact_scan_file(r, fd, limit, NULL, sink);
}
