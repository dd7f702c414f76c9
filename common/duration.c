/* Durations as the manifest and command line write them: 90s, 15m, 1h, 7d, or a sum (1h30m);
 * and points in time as RFC 3339 text. */
#include <ctype.h>
#include <inttypes.h>
#include <time.h>

#include "common.h"

static uint64_t unit_seconds(char u) {
        switch (u) {
        case 's': return 1;
        case 'm': return 60;
        case 'h': return 3600;
        case 'd': return 86400;
        case 'w': return 7 * 86400;
        default:  return 0;
        }
}

int parse_duration(const char *s, uint64_t *ret_seconds) {
        if (!s || !*s)
                return -EINVAL;
        uint64_t total = 0;
        const char *p = s;
        while (*p) {
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                uint64_t n = 0;
                while (isdigit((unsigned char) *p)) {
                        if (n > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        n = n * 10 + (uint64_t) (*p++ - '0');
                }
                uint64_t unit = unit_seconds(*p);
                if (unit == 0)
                        return -EINVAL;  /* a unit is required: "30" is ambiguous */
                p++;
                if (n > (UINT64_MAX - total) / unit)
                        return -ERANGE;
                total += n * unit;
        }
        *ret_seconds = total;
        return 0;
}

const char *format_duration(uint64_t seconds, char *buf, size_t size) {
        static const struct { char unit; uint64_t secs; } units[] = {
                { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
        };
        size_t off = 0;
        if (seconds == 0) {
                snprintf(buf, size, "0s");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(units) && off < size; i++) {
                if (seconds < units[i].secs)
                        continue;
                uint64_t n = seconds / units[i].secs;
                seconds %= units[i].secs;
                int w = snprintf(buf + off, size - off, "%llu%c", (unsigned long long) n, units[i].unit);
                if (w < 0)
                        break;
                off += (size_t) w;
        }
        return buf;
}

int parse_timestamp(const char *s, int64_t *ret) {
        struct tm tm = {};
        const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        if (!end)
                return -EINVAL;
        if (*end == '.')
                for (end++; *end >= '0' && *end <= '9'; end++)
                        ;
        long offset = 0;
        if (*end == '+' || *end == '-') {
                /* exactly +HH:MM: every character is looked at before the next is read */
                for (int i = 1; i <= 5; i++)
                        if (i == 3 ? end[i] != ':' : !(end[i] >= '0' && end[i] <= '9'))
                                return -EINVAL;
                int hh = (end[1] - '0') * 10 + (end[2] - '0'), mm = (end[4] - '0') * 10 + (end[5] - '0');
                if (hh > 23 || mm > 59)
                        return -EINVAL;
                offset = (hh * 3600L + mm * 60L) * (*end == '-' ? -1 : 1);
                end += 6;
        } else if (*end == 'Z' || *end == 'z')
                end++;
        else
                return -EINVAL;
        if (*end)
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = (int64_t) t - offset;
        return 0;
}

const char *format_timestamp(int64_t t, char *buf, size_t size) {
        struct tm tm;
        time_t tt = (time_t) t;
        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "%" PRId64, t);
        return buf;
}
