/* Scanning whole files for leaks: the streaming matcher over read() pieces, so memory stays
 * bounded whatever the file's size. Which files to scan is the caller's policy. */
#include "redact.h"

#define SCAN_PIECE (1024 * 1024)

int redact_scan_fd(const struct redactor *r, int fd, uint64_t limit, const struct redact_sink *sink) {
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        int k = redact_stream_new(r, &s);
        if (k < 0)
                return k;
        struct redact_sink scan_sink = { .leak = sink ? sink->leak : NULL, .userdata = sink ? sink->userdata : NULL };
        _cleanup_free_ unsigned char *buf = malloc(SCAN_PIECE);
        if (!buf)
                return -ENOMEM;
        for (uint64_t done = 0; done < limit;) {
                ssize_t n = read(fd, buf, limit - done < SCAN_PIECE ? (size_t) (limit - done) : SCAN_PIECE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (uint64_t) n;
                k = redact_stream_feed(s, buf, (size_t) n, &scan_sink);
                /* the file's bytes may hold a value: not left in the freed buffer */
                explicit_bzero(buf, (size_t) n);
                if (k < 0)
                        return k;
        }
        if ((k = redact_stream_finish(s, &scan_sink)) < 0)
                return k;
        uint64_t leaks = redact_stream_leak_count(s);
        return leaks > INT32_MAX ? INT32_MAX : (int) leaks;
}
