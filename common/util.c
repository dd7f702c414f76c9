/* String lists, globs, edit distance and fd helpers shared by every module. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <fnmatch.h>
#include <time.h>

#include "common.h"

int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);  /* Linux closes even on EINTR: never retry */
                errno = saved;
        }
        return -1;
}

bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool is_identifier(const char *s) {
        if (!s || !(isalpha((unsigned char) *s) || *s == '_'))
                return false;
        for (s++; *s; s++)
                if (!(isalnum((unsigned char) *s) || *s == '_'))
                        return false;
        return true;
}

char *strdup_upper(const char *s) {
        char *u = strdup(s);
        if (u)
                for (char *p = u; *p; p++)
                        *p = (char) toupper((unsigned char) *p);
        return u;
}

char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

unsigned edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return 1000;
        unsigned row[65];
        for (size_t j = 0; j <= lb; j++)
                row[j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++) {
                unsigned diag = row[0];
                row[0] = (unsigned) i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned up = row[j];
                        unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        unsigned best = diag + cost;
                        if (row[j] + 1 < best)
                                best = row[j] + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

/* The '/'-separated parts of s, in one allocation: *ret_parts points into *ret_buf. */
static int split_parts(const char *s, char **ret_buf, char ***ret_parts, size_t *ret_n) {
        size_t n = 1;
        for (const char *q = s; *q; q++)
                n += *q == '/';
        _cleanup_free_ char *buf = strdup(s);
        _cleanup_free_ char **parts = calloc(n, sizeof(*parts));
        if (!buf || !parts)
                return -ENOMEM;
        size_t i = 0;
        for (char *q = buf;; q++) {
                if (i == 0 || q[-1] == '\0')
                        parts[i++] = q;
                if (*q == '/')
                        *q = '\0';
                else if (*q == '\0')
                        break;
        }
        *ret_buf = steal_pointer(&buf);
        *ret_parts = steal_pointer(&parts);
        *ret_n = n;
        return 0;
}

/* Pattern parts p[0..np) against string parts s[0..np), each with fnmatch(3), flags 0: a part
 * holds no '/', so '*', '?' and '[...]' stay inside it as FNM_PATHNAME would keep them. */
static bool parts_match(char **p, char **s, size_t np) {
        for (size_t i = 0; i < np; i++)
                if (fnmatch(p[i], s[i], 0) != 0)
                        return false;
        return true;
}

bool glob_match(const char *pattern, const char *str) {
        _cleanup_free_ char *pbuf = NULL, *sbuf = NULL;
        _cleanup_free_ char **p = NULL, **s = NULL;
        size_t np, ns;
        if (split_parts(pattern, &pbuf, &p, &np) < 0 || split_parts(str, &sbuf, &s, &ns) < 0)
                return false;
        /* Blocks of parts between whole-part double stars have a fixed length each, so placing every
         * middle block at its leftmost fit is right whenever any placement is: one pass, no
         * backtracking (the old matcher's exponential case). */
        size_t first = 0;
        while (first < np && !streq(p[first], "**"))
                first++;
        if (first == np)
                return np == ns && parts_match(p, s, np);
        size_t last = np;
        while (!streq(p[last - 1], "**"))
                last--;
        size_t tail = np - last;               /* parts after the last "**" */
        bool trailing = tail == 0;             /* a trailing double star: at least one part inside */
        if (first + tail > ns || !parts_match(p, s, first) || !parts_match(p + last, s + ns - tail, tail))
                return false;
        size_t at = first, end = ns - tail;
        for (size_t i = first; i < last;) {
                if (streq(p[i], "**")) {
                        i++;
                        continue;
                }
                size_t len = 0;
                while (i + len < last && !streq(p[i + len], "**"))
                        len++;
                while (at + len <= end && !parts_match(p + i, s + at, len))
                        at++;
                if (at + len > end)
                        return false;
                at += len;
                i += len;
        }
        return !trailing || at < end;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

int strv_push(char ***l, char *s) {
        if (!s)
                return -ENOMEM;
        size_t n = strv_length(*l);
        char **t = realloc(*l, (n + 2) * sizeof(char *));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        return strv_push(l, strdup(s));
}

char **strv_copy(char *const *l) {
        char **c = calloc(strv_length(l) + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; l && l[i]; i++)
                if (!(c[i] = strdup(l[i])))
                        return strv_free(c);
        return c;
}

char **strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
        return NULL;
}

int write_all(int fd, const void *p, size_t n) {
        const char *c = p;
        while (n > 0) {
                ssize_t w = write(fd, c, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += w;
                n -= (size_t) w;
        }
        return 0;
}

int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max)
                return -EFBIG;
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        char *t = realloc(buf, cap * 2 + 1);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        cap *= 2;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = '\0';
        if (ret_size)
                *ret_size = len;
        *ret = steal_pointer(&buf);
        return 0;
}

int fd_set_nonblock(int fd, bool nonblock) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return -errno;
        int nfl = nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
        if (nfl != fl && fcntl(fd, F_SETFL, nfl) < 0)
                return -errno;
        return 0;
}

int fd_set_cloexec(int fd, bool cloexec) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0)
                return -errno;
        int nfl = cloexec ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
        if (nfl != fl && fcntl(fd, F_SETFD, nfl) < 0)
                return -errno;
        return 0;
}

uint64_t now_monotonic_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

DIR *opendir_dup(int dir_fd) {
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return NULL;
        DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return NULL;
        }
        rewinddir(d);   /* the duplicate shares its offset with dir_fd */
        return d;
}

/* The host of an http(s) URL's authority (after "scheme://"), without userinfo, port or the
 * brackets of an IPv6 literal. */
static bool url_host(const char *authority, char *buf, size_t size) {
        size_t end = strcspn(authority, "/?#");
        const char *host = authority;
        for (size_t i = 0; i < end; i++)
                if (authority[i] == '@')
                        host = authority + i + 1;
        size_t hostlen = (size_t) (authority + end - host);
        if (hostlen > 0 && host[0] == '[') {
                const char *close = memchr(host, ']', hostlen);
                if (!close)
                        return false;
                host++;
                hostlen = (size_t) (close - host);
        } else {
                const char *colon = memchr(host, ':', hostlen);
                if (colon)
                        hostlen = (size_t) (colon - host);
        }
        if (hostlen == 0 || hostlen >= size)
                return false;
        memcpy(buf, host, hostlen);
        buf[hostlen] = '\0';
        return true;
}

/* Loopback: localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z). Traffic to these never
 * leaves the machine, so plain http is acceptable (a Vault dev server, an SSH tunnel). */
static bool host_is_loopback(const char *host) {
        if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
                return true;
        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6) ||
                       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
        return false;
}

bool url_host_is_loopback(const char *authority) {
        char host[256];
        return url_host(authority, host, sizeof host) && host_is_loopback(host);
}
