/* Benchmark of the redaction engine: compile time, in-memory throughput and memory of the
 * streaming matcher over CI-log-like text, plus the helpers bench/redact.sh drives.
 *
 * Modes:
 *   redact_bench [--size MIB] [--format text|kv]
 *       compile times (including a 10,000-pattern set), in-memory throughput for 10, 100 and
 *       1,000 secrets, and the peak RSS of a process streaming a quarter and all of --size;
 *   redact_bench --rss-run N [--size MIB]
 *       that process: N secrets, --size MiB of text generated a piece at a time and streamed;
 *   redact_bench --write-input FILE --secret-dir DIR --secrets N [--size MIB]
 *       N random secrets as DIR/S0001... (mode 0600) and FILE, a text with their forms planted;
 *   redact_bench --exec IN -- CMD ARGS...   (CMD as a pipeline stage: IN fed through a pipe, output drained)
 *       runs CMD with stdin from IN, stdout and stderr to /dev/null; prints
 *       "elapsed_ns=... maxrss_kib=... status=..." (wait4's rusage of that child alone).
 *
 * The secret values are random test values made here, never real ones; they are kept in
 * plain memory because they must be written into the text and to files anyway. */
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "redact.h"

#define MIB (1024 * 1024)
#define MIN_LEN 8                   /* what `secrets-run redact --secret-file` uses */
#define SECRET_MIN 20
#define SECRET_MAX 48
#define PLANT_EVERY (64 * 1024)     /* one planted form per 64 KiB of text */
#define FEED_PIECE MIB              /* the in-memory run feeds the stream this much at a time */
#define COMPILE_PATTERNS 10000
#define REPEATS 3

/* ---- random numbers: libsodium for secrets, a fixed-seed generator for the text ---- */

static uint64_t text_rng = 0x9d2c5680a1b2c3d4ULL;

static uint64_t rnd64(void) {
        text_rng ^= text_rng >> 12;
        text_rng ^= text_rng << 25;
        text_rng ^= text_rng >> 27;
        return text_rng * 0x2545F4914F6CDD1DULL;
}

static uint32_t rnd(uint32_t n) {
        return (uint32_t) ((rnd64() >> 32) % n);
}

/* ---- secrets and their forms ---- */

struct form {
        unsigned char *p;
        size_t n;
};

struct bench_secret {
        char name[24];
        unsigned char value[SECRET_MAX];
        size_t len;
        struct form *forms;
        size_t n_forms;
};

/* Token-like alphabets, a password alphabet with quotes, '<', '&', '%' and '\\' (so the JSON,
 * shell, XML and percent forms all differ), and passphrases with inner spaces. */
static const char *const charsets[] = {
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "0123456789abcdef",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "abcdefghijklmnopqrstuvwxyz          ",
};

/* len 0: a random length in SECRET_MIN..SECRET_MAX */
static void secret_generate(struct bench_secret *s, size_t index, size_t len) {
        snprintf(s->name, sizeof s->name, "S%04zu", index + 1);
        const char *set = charsets[index % ELEMENTSOF(charsets)];
        uint32_t n = (uint32_t) strlen(set);
        s->len = len ? len : SECRET_MIN + randombytes_uniform(SECRET_MAX - SECRET_MIN + 1);
        for (size_t i = 0; i < s->len; i++)
                s->value[i] = (unsigned char) set[randombytes_uniform(n)];
        /* no whitespace at either end: a file's value keeps its bytes (one trailing '\n' aside) */
        s->value[0] = 'k';
        s->value[s->len - 1] = 'z';
}

static int collect_form(void *userdata, enum redact_form form, const unsigned char *p, size_t n, bool flex) {
        struct bench_secret *s = userdata;
        if (flex)
                return 0;   /* a flexible pattern's bytes are not text that matches it */
        struct form *f = realloc(s->forms, (s->n_forms + 1) * sizeof(*f));
        if (!f)
                return -ENOMEM;
        s->forms = f;
        f[s->n_forms].p = malloc(n);
        if (!f[s->n_forms].p)
                return -ENOMEM;
        memcpy(f[s->n_forms].p, p, n);
        f[s->n_forms++].n = n;
        return 0;
}

/* n secrets; the first is first_len bytes long if that is not 0 */
static struct bench_secret *secrets_generate(size_t n, size_t first_len) {
        struct bench_secret *s = calloc(n, sizeof(*s));
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                secret_generate(&s[i], i, i == 0 ? first_len : 0);
                if (redact_forms(s[i].value, s[i].len, MIN_LEN, collect_form, &s[i]) < 0)
                        return NULL;   /* out of memory: the bench exits */
        }
        return s;
}

static void secrets_free(struct bench_secret *s, size_t n) {
        if (!s)
                return;
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < s[i].n_forms; j++)
                        free(s[i].forms[j].p);
                free(s[i].forms);
        }
        free(s);
}

/* ---- CI-log-like text ---- */

static const char *const words[] = {
        "compiling", "linking", "test", "passed", "warning:", "error:", "npm", "install", "downloading",
        "cache", "hit", "miss", "docker", "layer", "pull", "Step", "RUN", "make", "[100%]", "Built",
        "target", "ok", "FAIL", "--", "=>", "resolving", "dependencies", "from", "to", "with", "the",
        "artifact", "upload", "checkout", "actions/checkout@v4", "Done", "in", "seconds", "bytes",
        "collecting", "fetching", "origin", "refs/heads/main", "GET", "POST", "200", "404", "HTTP/1.1",
};
static const char *const dirs[] = {
        "src", "lib", "node_modules", "build", "tests", "internal", "pkg", "vendor", "cmd", "api",
        "home/runner/work/app", "usr/lib/x86_64-linux-gnu", "tmp", "dist", ".cache/pip",
};
static const char *const exts[] = { ".c", ".go", ".js", ".py", ".rs", ".o", ".so", ".json", ".yml", "" };
static const char *const levels[] = { "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR" };

struct writer {
        unsigned char *p, *end;
};

static void put(struct writer *w, const char *s) {
        size_t n = strlen(s);
        if (n > (size_t) (w->end - w->p))
                n = (size_t) (w->end - w->p);
        memcpy(w->p, s, n);
        w->p += n;
}

static void put_char(struct writer *w, char c) {
        if (w->p < w->end)
                *w->p++ = (unsigned char) c;
}

static void put_uint(struct writer *w, uint64_t v, unsigned width) {
        char b[24];
        snprintf(b, sizeof b, "%0*llu", (int) width, (unsigned long long) v);
        put(w, b);
}

static void put_alphabet(struct writer *w, const char *alphabet, unsigned bits, size_t n) {
        while (n > 0) {
                uint64_t r = rnd64();
                for (unsigned used = 0; used + bits <= 64 && n > 0; used += bits, n--) {
                        put_char(w, alphabet[r & ((1u << bits) - 1)]);
                        r >>= bits;
                }
        }
}

static void put_words(struct writer *w, size_t n) {
        for (size_t i = 0; i < n; i++) {
                put_char(w, ' ');
                put(w, words[rnd(ELEMENTSOF(words))]);
        }
}

/* Fills text with lines of a CI log: timestamps, levels, paths, hashes, words, base64 blobs. */
static void text_generate(unsigned char *text, size_t size) {
        static const char hex[] = "0123456789abcdef";
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        struct writer w = { text, text + size };
        uint64_t ms = 1718000000000ULL;
        while (w.p < w.end) {
                ms += rnd(2000);
                uint64_t s = ms / 1000;
                put(&w, "2024-06-");
                put_uint(&w, 10 + s / 86400 % 20, 2);
                put_char(&w, 'T');
                put_uint(&w, s / 3600 % 24, 2);
                put_char(&w, ':');
                put_uint(&w, s / 60 % 60, 2);
                put_char(&w, ':');
                put_uint(&w, s % 60, 2);
                put_char(&w, '.');
                put_uint(&w, ms % 1000, 3);
                put(&w, "Z ");
                uint32_t kind = rnd(16);
                if (kind < 9) {
                        put(&w, levels[rnd(ELEMENTSOF(levels))]);
                        put(&w, " /");
                        for (uint32_t d = 0, nd = 1 + rnd(4); d < nd; d++) {
                                put(&w, dirs[rnd(ELEMENTSOF(dirs))]);
                                put_char(&w, '/');
                        }
                        put(&w, words[rnd(ELEMENTSOF(words))]);
                        put(&w, exts[rnd(ELEMENTSOF(exts))]);
                        put_char(&w, ':');
                        put_uint(&w, 1 + rnd(2000), 0);
                        put_words(&w, 3 + rnd(8));
                } else if (kind < 11) {
                        put(&w, "commit ");
                        put_alphabet(&w, hex, 4, 40);
                        put_words(&w, 2 + rnd(6));
                } else if (kind < 12) {
                        put(&w, "sha256:");
                        put_alphabet(&w, hex, 4, 64);
                        put(&w, " pulled in ");
                        put_uint(&w, rnd(100000), 0);
                        put(&w, "ms");
                } else if (kind < 13) {
                        put(&w, "payload:");
                        for (uint32_t l = 0, nl = 1 + rnd(4); l < nl; l++) {
                                put_char(&w, '\n');
                                put_alphabet(&w, b64, 6, 76);
                        }
                } else {
                        put(&w, "  ");
                        put_words(&w, 4 + rnd(12));
                        put_char(&w, ' ');
                        put_uint(&w, rnd(5000), 0);
                        put(&w, "ms");
                }
                put_char(&w, '\n');
        }
}

/* Overwrites one form of a random secret every PLANT_EVERY bytes (at a random place in each
 * block). The same text can be planted again for another secret set: leftovers of the
 * previous set are just text to the new one. Returns the number planted. */
static size_t text_plant(unsigned char *text, size_t size, const struct bench_secret *s, size_t n) {
        size_t planted = 0;
        for (size_t block = 0; block + PLANT_EVERY <= size; block += PLANT_EVERY) {
                const struct bench_secret *sec = &s[rnd((uint32_t) n)];
                const struct form *f = &sec->forms[rnd((uint32_t) sec->n_forms)];
                size_t at = block + rnd(PLANT_EVERY - 2 * (uint32_t) f->n - 2);
                text[at] = ' ';
                memcpy(text + at + 1, f->p, f->n);
                text[at + 1 + f->n] = ' ';
                planted++;
        }
        return planted;
}

/* ---- timing and memory ---- */

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* ---- the in-memory run ---- */

struct compiled {
        struct redactor *r;
        size_t patterns;
        double add_ms, compile_ms;
};

static int build(const struct bench_secret *s, size_t n, struct compiled *ret) {
        _cleanup_redactor_ struct redactor *r = NULL;
        int k = redactor_new(MIN_LEN, NULL, &r);
        if (k < 0)
                return k;
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; i++)
                if ((k = redactor_add(r, s[i].name, s[i].value, s[i].len)) <= 0)
                        return k < 0 ? k : -EINVAL;
        uint64_t t1 = now_ns();
        if ((k = redactor_compile(r)) < 0)
                return k;
        uint64_t t2 = now_ns();
        size_t patterns = redactor_pattern_count(r);   /* before r is stolen below */
        *ret = (struct compiled) {
                .patterns = patterns,
                .add_ms = (double) (t1 - t0) / 1e6,
                .compile_ms = (double) (t2 - t1) / 1e6,
                .r = steal_pointer(&r),
        };
        return 0;
}

struct counter {
        uint64_t bytes, leaks;
};

static int count_write(void *userdata, const void *p, size_t n) {
        struct counter *c = userdata;
        c->bytes += n;
        return 0;
}

static void count_leak(void *userdata, const struct redact_leak *leak) {
        struct counter *c = userdata;
        c->leaks++;
}

/* Streams text through r in FEED_PIECE pieces; returns the elapsed nanoseconds. */
static int stream_text(const struct redactor *r, const unsigned char *text, size_t size, struct counter *ret_count,
                       uint64_t *ret_ns) {
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        struct counter c = {};
        struct redact_sink sink = { count_write, count_leak, &c };
        int k = redact_stream_new(r, &s);
        if (k < 0)
                return k;
        uint64_t t0 = now_ns();
        for (size_t pos = 0; pos < size; pos += FEED_PIECE)
                if ((k = redact_stream_feed(s, text + pos, size - pos < FEED_PIECE ? size - pos : FEED_PIECE, &sink)) < 0)
                        return k;
        if ((k = redact_stream_finish(s, &sink)) < 0)
                return k;
        *ret_ns = now_ns() - t0;
        *ret_count = c;
        return 0;
}

static int spawn(const char *input, char **argv, uint64_t *ret_ns, long *ret_maxrss_kib, int *ret_status);

static bool kv;   /* --format kv: one "key=value ..." line per figure, for bench/redact.sh */

static int run_in_memory(size_t size) {
        /* the last row: one 8-byte secret (the shortest `secrets-run redact` accepts) among 1,000;
         * the matcher's sampling step follows the shortest pattern */
        static const struct {
                size_t n, first_len;
        } runs[] = { { 10, 0 }, { 100, 0 }, { 1000, 0 }, { 1000, MIN_LEN } };
        unsigned char *text = malloc(size);
        if (!text)
                return -ENOMEM;
        uint64_t t0 = now_ns();
        text_generate(text, size);
        if (!kv)
                printf("text: %zu MiB CI-log-like, generated in %.2f s; one secret form planted per %d KiB\n\n",
                       size / MIB, (double) (now_ns() - t0) / 1e9, PLANT_EVERY / 1024);

        /* compile times first, while the heap is young: the 10,000-pattern set included */
        if (!kv)
                printf("%-8s %9s %9s %11s %9s\n", "secrets", "patterns", "forms ms", "compile ms", "total ms");
        static const size_t compile_sets[] = { 10, 100, 1000, 0 };   /* 0: COMPILE_PATTERNS */
        for (size_t i = 0; i < ELEMENTSOF(compile_sets); i++) {
                size_t made = compile_sets[i] ? compile_sets[i] : COMPILE_PATTERNS;   /* plenty */
                struct bench_secret *s = secrets_generate(made, 0);
                if (!s)
                        return -ENOMEM;
                size_t n = made;
                if (compile_sets[i] == 0) {
                        /* the fewest secrets whose forms make COMPILE_PATTERNS patterns */
                        size_t patterns = 0;
                        for (n = 0; n < made && patterns < COMPILE_PATTERNS; n++)
                                patterns += s[n].n_forms;
                }
                struct compiled c = {};
                double best_add = 1e9, best_compile = 1e9;
                for (int rep = 0; rep < REPEATS; rep++) {
                        int k = build(s, n, &c);
                        if (k < 0)
                                return k;
                        if (c.add_ms < best_add)
                                best_add = c.add_ms;
                        if (c.compile_ms < best_compile)
                                best_compile = c.compile_ms;
                        c.r = redactor_free(c.r);
                }
                double total = best_add + best_compile;
                if (kv)
                        printf("compile secrets=%zu patterns=%zu forms_ms=%.2f compile_ms=%.2f total_ms=%.2f\n", n,
                               c.patterns, best_add, best_compile, total);
                else
                        printf("%-8zu %9zu %9.2f %11.2f %9.2f%s\n", n, c.patterns, best_add, best_compile, total,
                               compile_sets[i] ? "" : total < 100 ? "  (target < 100 ms: met)" : "  (target < 100 ms: missed)");
                secrets_free(s, made);
        }

        if (!kv)
                printf("\n%-8s %9s %10s %9s %10s\n", "secrets", "patterns", "GB/s", "MB/s", "leaks");
        for (size_t i = 0; i < ELEMENTSOF(runs); i++) {
                size_t n = runs[i].n, first_len = runs[i].first_len;
                struct bench_secret *s = secrets_generate(n, first_len);
                if (!s)
                        return -ENOMEM;
                size_t planted = text_plant(text, size, s, n);
                struct compiled c;
                int k = build(s, n, &c);
                if (k < 0)
                        return k;
                uint64_t best = UINT64_MAX;
                struct counter count = {};
                for (int rep = 0; rep < REPEATS; rep++) {
                        uint64_t ns;
                        if ((k = stream_text(c.r, text, size, &count, &ns)) < 0)
                                return k;
                        if (ns < best)
                                best = ns;
                }
                double gbps = (double) size / (double) best;   /* bytes per ns = GB/s */
                if (count.bytes < size - planted * SECRET_MAX * 6)
                        fprintf(stderr, "redact_bench: the output is suspiciously short (%llu bytes)\n",
                                (unsigned long long) count.bytes);
                char label[32];
                snprintf(label, sizeof label, first_len ? "%zu-%zuB" : "%zu", n, first_len);
                if (kv)
                        printf("%s secrets=%zu first_len=%zu patterns=%zu gbps=%.3f leaks=%llu planted=%zu\n",
                               first_len ? "inmem_short" : "inmem", n, first_len, c.patterns, gbps,
                               (unsigned long long) count.leaks, planted);
                else
                        printf("%-8s %9zu %10.2f %9.0f %5llu/%-4zu%s\n", label, c.patterns, gbps, gbps * 1000,
                               (unsigned long long) count.leaks, planted,
                               n != 1000 ? "" : gbps >= 1.5 ? "  (target >= 1.5 GB/s: met)" : "  (target >= 1.5 GB/s: missed)");
                redactor_free(c.r);
                secrets_free(s, n);
        }
        if (!kv)
                printf("(%zu-%dB: %zu secrets, one of them %d bytes long)\n", runs[3].n, MIN_LEN, runs[3].n, MIN_LEN);

        free(text);

        /* Peak memory against stream length: fresh processes (this one holds the whole text and
         * the heap of the runs above) streaming generated text through 1,000 secrets' forms. */
        long rss[2];
        size_t lengths[2] = { size / 4, size };
        for (size_t i = 0; i < 2; i++) {
                char size_arg[32];
                snprintf(size_arg, sizeof size_arg, "%zu", lengths[i] / MIB);
                char *child[] = { (char *) "/proc/self/exe", (char *) "--rss-run", (char *) "1000", (char *) "--size",
                                  size_arg, NULL };
                uint64_t ns;
                int status;
                int k = spawn("/dev/null", child, &ns, &rss[i], &status);
                if (k < 0)
                        return k;
                if (status != 0)
                        return -EIO;
        }
        if (kv)
                printf("inmem_rss secrets=1000 short_mib=%zu short_rss_mib=%.1f long_mib=%zu long_rss_mib=%.1f\n",
                       lengths[0] / MIB, (double) rss[0] / 1024, lengths[1] / MIB, (double) rss[1] / 1024);
        else
                printf("\npeak RSS of a process streaming generated text through 1000 secrets' forms: "
                       "%.1f MiB for %zu MiB, %.1f MiB for %zu MiB%s\n",
                       (double) rss[0] / 1024, lengths[0] / MIB, (double) rss[1] / 1024, lengths[1] / MIB,
                       rss[1] < 64 * 1024 && rss[1] <= rss[0] + 1024 ? "  (target < 64 MiB, flat: met)"
                                                                     : "  (target < 64 MiB, flat: missed)");
        return 0;
}

/* The child of the memory figure: N secrets, then size bytes of text generated and planted
 * one MiB at a time and streamed, so nothing but the matcher grows with the length. */
static int rss_run(size_t n, size_t size) {
        struct bench_secret *s = secrets_generate(n, 0);
        if (!s)
                return -ENOMEM;
        struct compiled c;
        int k = build(s, n, &c);
        if (k < 0)
                return k;
        _cleanup_redactor_ struct redactor *r = c.r;
        _cleanup_redact_stream_ struct redact_stream *st = NULL;
        _cleanup_free_ unsigned char *piece = malloc(FEED_PIECE);
        struct counter count = {};
        struct redact_sink sink = { count_write, count_leak, &count };
        if (!piece || (k = redact_stream_new(r, &st)) < 0)
                return k < 0 ? k : -ENOMEM;
        for (size_t pos = 0; pos < size; pos += FEED_PIECE) {
                text_generate(piece, FEED_PIECE);
                text_plant(piece, FEED_PIECE, s, n);
                if ((k = redact_stream_feed(st, piece, FEED_PIECE, &sink)) < 0)
                        return k;
        }
        if ((k = redact_stream_finish(st, &sink)) < 0)
                return k;
        secrets_free(s, n);
        return count.leaks > 0 ? 0 : -EIO;   /* something was planted, so something is found */
}

/* ---- helpers for bench/redact.sh ---- */

static int write_file(int dirfd, const char *name, const void *p, size_t n) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        return write_all(fd, p, n);
}

static int write_input(const char *path, const char *secret_dir, size_t n, size_t size) {
        _cleanup_close_ int dirfd = open(secret_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        struct bench_secret *s = secrets_generate(n, 0);
        if (!s)
                return -ENOMEM;
        int k = 0;
        for (size_t i = 0; i < n && k >= 0; i++)
                k = write_file(dirfd, s[i].name, s[i].value, s[i].len);
        _cleanup_free_ unsigned char *text = malloc(size);
        if (k >= 0 && !text)
                k = -ENOMEM;
        if (k >= 0) {
                text_generate(text, size);
                size_t planted = text_plant(text, size, s, n);
                k = write_file(AT_FDCWD, path, text, size);
                if (k >= 0)
                        printf("planted=%zu\n", planted);
        }
        secrets_free(s, n);
        return k;
}

/* A pipeline stage's throughput: argv reads a pipe that a feeder process fills from input
 * and writes a pipe that a drain process empties, as a filter in a CI job does. Returns its
 * wall time, peak RSS (wait4's rusage: that child alone) and exit status (128+N for a
 * signal). */
static pid_t fork_feeder(const char *input, int out, int keep_closed[3]) {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        for (int i = 0; i < 3; i++)
                close(keep_closed[i]);   /* only our own end stays open, so EOFs arrive */
        int in = open(input, O_RDONLY | O_CLOEXEC);
        static char buf[1 << 20];
        ssize_t n;
        while (in >= 0 && (n = read(in, buf, sizeof buf)) > 0)
                if (write_all(out, buf, (size_t) n) < 0)
                        break;
        _exit(0);
}

static pid_t fork_drain(int in, int keep_closed[3]) {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        for (int i = 0; i < 3; i++)
                close(keep_closed[i]);
        static char buf[1 << 20];
        while (read(in, buf, sizeof buf) > 0) {
        }
        _exit(0);
}

static int spawn(const char *input, char **argv, uint64_t *ret_ns, long *ret_maxrss_kib, int *ret_status) {
        int to[2], from[2];
        if (pipe2(to, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(from, O_CLOEXEC) < 0) {
                int e = -errno;
                close(to[0]), close(to[1]);
                return e;
        }
        _cleanup_close_ int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null < 0)
                return -errno;
        uint64_t t0 = now_ns();
        pid_t feeder = fork_feeder(input, to[1], (int[3]) { to[0], from[0], from[1] });
        pid_t drain = fork_drain(from[0], (int[3]) { to[0], to[1], from[1] });
        pid_t pid = fork();
        if (pid < 0 || feeder < 0 || drain < 0)
                return -errno;
        if (pid == 0) {
                if (dup2(to[0], STDIN_FILENO) < 0 || dup2(from[1], STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        int status;
        struct rusage ru;
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        return -errno;
        (void) waitpid(feeder, NULL, 0);
        (void) waitpid(drain, NULL, 0);
        *ret_ns = now_ns() - t0;
        *ret_maxrss_kib = ru.ru_maxrss;
        *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return 0;
}

static int exec_timed(const char *input, char **argv) {
        uint64_t ns;
        long rss;
        int status;
        int k = spawn(input, argv, &ns, &rss, &status);
        if (k < 0)
                return k;
        printf("elapsed_ns=%llu maxrss_kib=%ld status=%d\n", (unsigned long long) ns, rss, status);
        return 0;
}

int main(int argc, char **argv) {
        enum { OPT_SIZE = 0x100, OPT_FORMAT, OPT_WRITE_INPUT, OPT_SECRET_DIR, OPT_SECRETS, OPT_EXEC, OPT_RSS_RUN };
        static const struct option options[] = {
                { "size", required_argument, NULL, OPT_SIZE },
                { "format", required_argument, NULL, OPT_FORMAT },
                { "write-input", required_argument, NULL, OPT_WRITE_INPUT },
                { "secret-dir", required_argument, NULL, OPT_SECRET_DIR },
                { "secrets", required_argument, NULL, OPT_SECRETS },
                { "exec", required_argument, NULL, OPT_EXEC },
                { "rss-run", required_argument, NULL, OPT_RSS_RUN },
                {},
        };
        size_t size = 256 * (size_t) MIB, n_secrets = 0, arg_rss_run = 0;
        const char *arg_write_input = NULL, *arg_secret_dir = NULL, *arg_exec = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case OPT_SIZE:
                        size = (size_t) strtoull(optarg, NULL, 10) * MIB;
                        break;
                case OPT_FORMAT:
                        kv = streq(optarg, "kv");
                        break;
                case OPT_WRITE_INPUT:
                        arg_write_input = optarg;
                        break;
                case OPT_SECRET_DIR:
                        arg_secret_dir = optarg;
                        break;
                case OPT_SECRETS:
                        n_secrets = (size_t) strtoull(optarg, NULL, 10);
                        break;
                case OPT_EXEC:
                        arg_exec = optarg;
                        break;
                case OPT_RSS_RUN:
                        arg_rss_run = (size_t) strtoull(optarg, NULL, 10);
                        break;
                default:
                        fprintf(stderr, "usage: see the comment at the top of bench/redact_bench.c\n");
                        return 2;
                }
        if (size < 4 * (size_t) PLANT_EVERY) {
                fprintf(stderr, "redact_bench: --size must be at least 1 (MiB)\n");
                return 2;
        }
        if (secret_init() < 0)
                return 1;
        setvbuf(stdout, NULL, _IOLBF, 0);
        int k;
        if (arg_exec) {
                if (optind >= argc) {
                        fprintf(stderr, "redact_bench: --exec needs a command after --\n");
                        return 2;
                }
                k = exec_timed(arg_exec, argv + optind);
        } else if (arg_write_input) {
                if (!arg_secret_dir || n_secrets == 0) {
                        fprintf(stderr, "redact_bench: --write-input needs --secret-dir and --secrets\n");
                        return 2;
                }
                k = write_input(arg_write_input, arg_secret_dir, n_secrets, size);
        } else if (arg_rss_run > 0)
                k = rss_run(arg_rss_run, size);
        else
                k = run_in_memory(size);
        if (k < 0) {
                fprintf(stderr, "redact_bench: %s\n", strerror(-k));
                return 1;
        }
        return 0;
}
