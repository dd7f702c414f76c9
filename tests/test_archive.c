/* Unit tests for the file scan looking into compressed files and archives (redact/archive.c):
 * archives are built here with libarchive's writer, the secret is random per run. */
#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>
#include <sys/mman.h>

#include "redact.h"
#include "tap.h"

static char secret[33];
static struct redactor *red;

/* ---- what a scan reported ---- */

struct found {
        size_t n_leaks;
        char *members[64];       /* "" for the file itself */
        uint64_t offsets[64];
        size_t n_warnings;
        char *warnings[16];      /* "MEMBER: message" */
};

static void found_leak(void *userdata, const struct redact_leak *l) {
        struct found *f = userdata;
        if (f->n_leaks < ELEMENTSOF(f->members)) {
                f->members[f->n_leaks] = strdup(l->member ? l->member : "");
                f->offsets[f->n_leaks] = l->offset;
        }
        f->n_leaks++;
}

static void found_warning(void *userdata, const char *member, const char *message) {
        struct found *f = userdata;
        if (f->n_warnings < ELEMENTSOF(f->warnings))
                f->warnings[f->n_warnings] = strdup_printf("%s: %s", member ? member : "", message);
        f->n_warnings++;
}

static void found_clear(struct found *f) {
        for (size_t i = 0; i < f->n_leaks && i < ELEMENTSOF(f->members); i++)
                free(f->members[i]);
        for (size_t i = 0; i < f->n_warnings && i < ELEMENTSOF(f->warnings); i++)
                free(f->warnings[i]);
        memset(f, 0, sizeof *f);
}

static bool has_leak_in(const struct found *f, const char *member) {
        for (size_t i = 0; i < f->n_leaks && i < ELEMENTSOF(f->members); i++)
                if (streq(f->members[i], member))
                        return true;
        return false;
}

static bool has_warning(const struct found *f, const char *text) {
        for (size_t i = 0; i < f->n_warnings && i < ELEMENTSOF(f->warnings); i++)
                if (strstr(f->warnings[i], text))
                        return true;
        return false;
}

static void found_print(const struct found *f) {
        for (size_t i = 0; i < f->n_leaks && i < ELEMENTSOF(f->members); i++)
                printf("# leak in '%s' at %llu\n", f->members[i], (unsigned long long) f->offsets[i]);
        for (size_t i = 0; i < f->n_warnings && i < ELEMENTSOF(f->warnings); i++)
                printf("# warning %s\n", f->warnings[i]);
}

/* Scans bytes as the file `name`; returns what redact_scan_file returned. */
static int scan_bytes(const void *p, size_t n, const char *name, const struct redact_scan_options *limits,
                      struct found *f) {
        int fd = memfd_create("scan", MFD_CLOEXEC);
        if (fd < 0 || write_all(fd, p, n) < 0 || lseek(fd, 0, SEEK_SET) < 0)
                return -EIO;
        struct redact_scan_options o = limits ? *limits : (struct redact_scan_options) {};
        o.name = name;
        o.warning = found_warning;
        o.userdata = f;
        struct redact_sink sink = { .leak = found_leak, .userdata = f };
        int k = redact_scan_file(red, fd, UINT64_MAX, &o, &sink);
        close(fd);
        return k;
}

/* ---- building archives ---- */

/* libarchive's tar and zip writers call this (warning about file types they cannot store),
 * and its object also holds archive_write_set_format(), which links in every writer, xar's
 * libxml2 included: defined here, the static library's is not needed. */
void __archive_write_entry_filetype_unsupported(struct archive *a, struct archive_entry *e, const char *format);
void __archive_write_entry_filetype_unsupported(struct archive *a, struct archive_entry *e, const char *format) {
}

struct blob {
        unsigned char *p;
        size_t n, cap;
};

static la_ssize_t blob_write(struct archive *a, void *userdata, const void *p, size_t n) {
        struct blob *b = userdata;
        if (b->n + n > b->cap) {
                b->cap = (b->n + n) * 2;
                b->p = realloc(b->p, b->cap);
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
        return (la_ssize_t) n;
}

struct member {
        const char *name;
        const void *data;        /* NULL: `zeros` bytes of zeros */
        size_t len;
        size_t zeros;
        const char *symlink;     /* a symbolic link to this */
};

#define REG(n, d, l) { .name = (n), .data = (d), .len = (l) }
#define ZEROS(n, z) { .name = (n), .zeros = (z) }
#define SYMLINK(n, to) { .name = (n), .symlink = (to) }

/* format: ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, _ZIP or _RAW; filter: ARCHIVE_FILTER_*. */
static struct blob build(int format, int filter, const struct member *m, size_t n_members) {
        struct blob b = {};
        struct archive *a = archive_write_new();
        /* by name, not archive_write_set_format(): that links in every writer */
        if (format == ARCHIVE_FORMAT_ZIP)
                archive_write_set_format_zip(a);
        else if (format == ARCHIVE_FORMAT_RAW)
                archive_write_set_format_raw(a);
        else
                archive_write_set_format_pax_restricted(a);
        switch (filter) {
        case ARCHIVE_FILTER_GZIP: archive_write_add_filter_gzip(a); break;
        case ARCHIVE_FILTER_BZIP2: archive_write_add_filter_bzip2(a); break;
        case ARCHIVE_FILTER_XZ: archive_write_add_filter_xz(a); break;
        case ARCHIVE_FILTER_LZIP: archive_write_add_filter_lzip(a); break;
        case ARCHIVE_FILTER_ZSTD: archive_write_add_filter_zstd(a); break;
        default: break;
        }
        archive_write_set_bytes_in_last_block(a, 1);
        archive_write_open(a, &b, NULL, blob_write, NULL);
        for (size_t i = 0; i < n_members; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, m[i].name);
                archive_entry_set_perm(e, 0644);
                if (m[i].symlink) {
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, m[i].symlink);
                } else {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_size(e, (la_int64_t) (m[i].data ? m[i].len : m[i].zeros));
                }
                archive_write_header(a, e);
                if (m[i].data)
                        archive_write_data(a, m[i].data, m[i].len);
                else
                        for (size_t done = 0; done < m[i].zeros;) {
                                static const char z[65536];
                                size_t take = m[i].zeros - done < sizeof z ? m[i].zeros - done : sizeof z;
                                archive_write_data(a, z, take);
                                done += take;
                        }
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
        return b;
}

static char *log_with_secret(size_t before) {
        char *text = malloc(before + 64);
        memset(text, 'x', before);
        snprintf(text + before, 64, " token=%s\n", secret);
        return text;
}

/* ---- cases ---- */

TEST(tgz_member_is_named_with_its_offset) {
        _cleanup_free_ char *text = log_with_secret(100);
        struct member m[] = { REG("logs/clean.txt", "nothing here\n", 13), REG("logs/run.log", text, strlen(text)) };
        struct blob b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, m, 2);
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "report.tgz", NULL, &f), 1);
        CHECK(has_leak_in(&f, "logs/run.log"));
        CHECK_EQ_INT(f.offsets[0], 107);   /* in the member, after "x..x token=" */
        CHECK_EQ_INT(f.n_warnings, 0);
        found_print(&f);
        found_clear(&f);
        free(b.p);
}

TEST(every_filter_and_zip) {
        _cleanup_free_ char *text = log_with_secret(10);
        struct member m[] = { REG("a/b.txt", text, strlen(text)) };
        const int filters[] = { ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_XZ,
                                ARCHIVE_FILTER_LZIP, ARCHIVE_FILTER_ZSTD };
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                struct blob b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, filters[i], m, 1);
                struct found f = {};
                CHECK_EQ_INT(scan_bytes(b.p, b.n, "x.tar.any", NULL, &f), 1);
                if (!has_leak_in(&f, "a/b.txt") || f.n_warnings) {
                        printf("# filter %d\n", filters[i]);
                        CHECK(!"leak in a/b.txt, no warning");
                        found_print(&f);
                }
                found_clear(&f);
                free(b.p);
        }
        struct blob b = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, m, 1);
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "x.zip", NULL, &f), 1);
        CHECK(has_leak_in(&f, "a/b.txt"));
        CHECK_EQ_INT(f.n_warnings, 0);
        found_clear(&f);
        free(b.p);
}

TEST(single_compressed_file_is_its_content) {
        _cleanup_free_ char *text = log_with_secret(5000);
        struct member m[] = { REG("data", text, strlen(text)) };
        struct blob b = build(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, m, 1);
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "build/app.log.gz", NULL, &f), 1);
        CHECK(has_leak_in(&f, "app.log"));
        CHECK_EQ_INT(f.offsets[0], 5007);
        found_clear(&f);
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "blob", NULL, &f), 1);
        CHECK(has_leak_in(&f, "data"));
        found_clear(&f);
        free(b.p);
        b = build(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_XZ, m, 1);
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "trace.json.xz", NULL, &f), 1);
        CHECK(has_leak_in(&f, "trace.json"));
        found_clear(&f);
        free(b.p);
}

TEST(nested_zip_in_tgz) {
        _cleanup_free_ char *text = log_with_secret(3);
        struct member inner[] = { REG("logs/run.log", text, strlen(text)) };
        struct blob zip = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, inner, 1);
        struct blob gz = build(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, inner, 1);
        struct member outer[] = { REG("inner.zip", zip.p, zip.n), REG("deep/app.log.gz", gz.p, gz.n) };
        struct blob b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, outer, 2);
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "report.tgz", NULL, &f), 2);
        CHECK(has_leak_in(&f, "inner.zip!logs/run.log"));
        CHECK(has_leak_in(&f, "deep/app.log.gz!app.log"));
        CHECK_EQ_INT(f.n_warnings, 0);
        found_print(&f);
        found_clear(&f);
        free(b.p), free(zip.p), free(gz.p);
}

TEST(clean_archive_and_empty_ones) {
        struct member m[] = { REG("a.txt", "nothing to see\n", 15) };
        struct blob b = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, m, 1);
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "a.zip", NULL, &f), 0);
        CHECK_EQ_INT(f.n_warnings, 0);
        free(b.p);
        b = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, m, 0);     /* PK\5\6 */
        CHECK(b.n >= 4 && memcmp(b.p, "PK\5\6", 4) == 0);
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "empty.zip", NULL, &f), 0);
        free(b.p);
        struct member empty[] = { REG("data", "", 0) };
        b = build(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, empty, 1);
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "empty.gz", NULL, &f), 0);
        CHECK_EQ_INT(f.n_warnings, 0);
        found_print(&f);
        found_clear(&f);
        free(b.p);
}

TEST(compressed_content_beginning_with_zeros) {
        /* libarchive's tar reader takes a zero block for an empty archive: the content of a
         * compressed file is told by its own first bytes, not offered to it */
        size_t n = 4096 + 64;
        _cleanup_free_ char *text = calloc(1, n);
        snprintf(text + 4096, 64, "token=%s\n", secret);
        struct member m[] = { REG("data", text, 4096 + strlen(text + 4096)) };
        const int filters[] = { ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_ZSTD };
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                struct blob b = build(ARCHIVE_FORMAT_RAW, filters[i], m, 1);
                struct found f = {};
                CHECK_EQ_INT(scan_bytes(b.p, b.n, "disk.img.gz", NULL, &f), 1);
                CHECK(has_leak_in(&f, "disk.img"));
                CHECK_EQ_INT(f.offsets[0], 4096 + 6);
                found_clear(&f);
                free(b.p);
        }
}

TEST(plain_files_that_begin_like_one) {
        /* text beginning "BZh9" is not bzip2: scanned as it is, no warning */
        _cleanup_free_ char *text = strdup_printf("BZh9 is not it: %s\n", secret);
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(text, strlen(text), "notes.txt", NULL, &f), 1);
        CHECK(has_leak_in(&f, ""));
        CHECK_EQ_INT(f.n_warnings, 0);
        found_clear(&f);
}

TEST(bomb_stops_at_the_limit) {
        _cleanup_free_ char *text = log_with_secret(10);
        /* 64 MiB of zeros in a few tens of KiB, with leaks before and after the limit */
        struct member m[] = { REG("first.log", text, strlen(text)), ZEROS("zeros", 64u << 20),
                              REG("after.log", text, strlen(text)) };
        struct blob b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, m, 3);
        CHECK(b.n < (1u << 20));
        struct redact_scan_options limits = { .max_expanded = 4u << 20 };
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "bomb.tgz", &limits, &f), 1);
        CHECK(has_leak_in(&f, "first.log"));
        CHECK(!has_leak_in(&f, "after.log"));
        CHECK(has_warning(&f, ": stopped after 4194304 bytes unpacked, the limit for one file"));
        CHECK_EQ_INT(f.n_warnings, 1);
        found_print(&f);
        found_clear(&f);
        /* nested: the limit is the file's, whatever the depth */
        struct member outer[] = { REG("in.tgz", b.p, b.n), REG("again.tgz", b.p, b.n) };
        struct blob o = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, outer, 2);
        CHECK_EQ_INT(scan_bytes(o.p, o.n, "bombs.zip", &limits, &f), 1);
        CHECK(has_leak_in(&f, "in.tgz!first.log"));
        CHECK(has_warning(&f, "the limit for one file"));
        found_clear(&f);
        free(o.p);
        free(b.p);
}

TEST(depth_limit) {
        _cleanup_free_ char *text = log_with_secret(1);
        struct member m[] = { REG("leak.log", text, strlen(text)) };
        struct blob b = build(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, m, 1);    /* level 4: leak.log.gz */
        for (int level = 3; level >= 1; level--) {   /* each a .tgz holding the one below and a leak */
                _cleanup_free_ char *name = strdup_printf("l%d.tgz", level + 1);
                _cleanup_free_ char *mine = strdup_printf("at%d.log", level);
                struct member outer[] = { REG(level == 3 ? "leak.log.gz" : name, b.p, b.n), REG(mine, text, strlen(text)) };
                struct blob o = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, outer, 2);
                free(b.p);
                b = o;
        }
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "l1.tgz", NULL, &f), 3);
        CHECK(has_leak_in(&f, "at1.log"));
        CHECK(has_leak_in(&f, "l2.tgz!at2.log"));
        CHECK(has_leak_in(&f, "l2.tgz!l3.tgz!at3.log"));
        CHECK(has_warning(&f, "l2.tgz!l3.tgz!leak.log.gz: an archive nested more than 3 deep"));
        found_print(&f);
        found_clear(&f);
        free(b.p);
}

TEST(member_limit) {
        _cleanup_free_ char *text = log_with_secret(1);
        struct member m[20];
        char names[20][16];
        for (size_t i = 0; i < 20; i++) {
                snprintf(names[i], sizeof names[i], "m%02zu", i);
                m[i] = (struct member) REG(names[i], text, strlen(text));
        }
        struct blob b = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, m, 20);
        struct redact_scan_options limits = { .max_members = 5 };
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "many.zip", &limits, &f), 5);
        CHECK(has_leak_in(&f, "m04") && !has_leak_in(&f, "m05"));
        CHECK(has_warning(&f, ": stopped after 5 members, the limit for one file"));
        found_clear(&f);
        free(b.p);
}

TEST(damaged_archives_are_scanned_raw) {
        /* random bytes, so that a cut at 3/4 of the compressed stream is in the second member */
        _cleanup_free_ char *text = log_with_secret(200000);
        for (size_t i = 0; i < 200000; i++)
                text[i] = "0123456789abcdef"[randombytes_uniform(16)];
        struct member m[] = { REG("big.log", text, strlen(text)), REG("end.log", text, strlen(text)) };
        /* truncated in the middle of the compressed stream: what was unpacked is scanned */
        struct blob b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, m, 2);
        struct found f = {};
        int k = scan_bytes(b.p, b.n * 3 / 4, "cut.tgz", NULL, &f);
        CHECK(k >= 1);
        CHECK(has_leak_in(&f, "big.log"));
        CHECK(has_warning(&f, "cut.tgz: damaged archive") || has_warning(&f, ": damaged archive"));
        found_print(&f);
        found_clear(&f);
        free(b.p);
        /* an uncompressed tar whose second header is garbage: the raw bytes hold the leak */
        b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, m, 2);
        size_t second = 512 + ((strlen(text) + 511) / 512) * 512;
        memset(b.p + second, 0x55, 512);
        k = scan_bytes(b.p, b.n, "bad.tar", NULL, &f);
        CHECK(has_leak_in(&f, "big.log"));
        CHECK(has_leak_in(&f, ""));       /* the raw scan of the file itself */
        CHECK(has_warning(&f, ": damaged archive"));
        CHECK(k >= 3);                    /* big.log, and both copies in the raw bytes */
        found_print(&f);
        found_clear(&f);
        free(b.p);
        /* gzip magic, then garbage around a plain leak */
        _cleanup_free_ char *fake = strdup_printf("\x1f\x8b\x08 garbage %s garbage", secret);
        CHECK_EQ_INT(scan_bytes(fake, strlen(fake), "fake.gz", NULL, &f), 1);
        CHECK(has_leak_in(&f, ""));
        CHECK(has_warning(&f, ": damaged archive"));
        found_clear(&f);
        /* a nested damaged archive: the rest of its member is scanned raw, the outer goes on */
        b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, m, 2);
        memset(b.p + second, 0x55, 512);
        struct member outer[] = { REG("bad.tar", b.p, b.n), REG("next.log", text, strlen(text)) };
        struct blob o = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, outer, 2);
        k = scan_bytes(o.p, o.n, "out.zip", NULL, &f);
        CHECK(has_leak_in(&f, "bad.tar!big.log"));
        CHECK(has_leak_in(&f, "bad.tar"));
        CHECK(has_leak_in(&f, "next.log"));
        CHECK(has_warning(&f, "bad.tar: damaged archive"));
        found_print(&f);
        found_clear(&f);
        free(o.p);
        free(b.p);
}

TEST(links_and_odd_names) {
        struct member m[] = { SYMLINK("link", "/etc/passwd"), REG("evil\nname.log", secret, strlen(secret)) };
        struct blob b = build(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, m, 2);
        struct found f = {};
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "odd.tgz", NULL, &f), 1);
        CHECK(has_leak_in(&f, "evil?name.log"));   /* a name cannot forge a line of the report */
        CHECK_EQ_INT(f.n_warnings, 0);
        found_clear(&f);
        free(b.p);
        /* a zip's UTF-8 names, in this test's C locale */
        struct member u[] = { REG("r\u00e9pertoire/\u65e5\u672c.log", secret, strlen(secret)) };
        b = build(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, u, 1);
        CHECK_EQ_INT(scan_bytes(b.p, b.n, "u.zip", NULL, &f), 1);
        CHECK(has_leak_in(&f, "r\u00e9pertoire/\u65e5\u672c.log"));
        found_print(&f);
        found_clear(&f);
        free(b.p);
}

TEST(plain_scan_unchanged) {
        /* redact_scan_fd with a limit: the bytes past it are not read */
        _cleanup_free_ char *text = log_with_secret(2u << 20);
        int fd = memfd_create("plain", MFD_CLOEXEC);
        CHECK(fd >= 0 && write_all(fd, text, strlen(text)) == 0 && lseek(fd, 0, SEEK_SET) == 0);
        struct found f = {};
        struct redact_sink sink = { .leak = found_leak, .userdata = &f };
        CHECK_EQ_INT(redact_scan_fd(red, fd, 2u << 20, &sink), 0);
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        CHECK_EQ_INT(redact_scan_fd(red, fd, UINT64_MAX, &sink), 1);
        CHECK_EQ_INT(f.offsets[0], (2u << 20) + 7);
        found_clear(&f);
        close(fd);
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for (size_t i = 0; i < 32; i++)
                secret[i] = alnum[randombytes_uniform(sizeof alnum - 1)];
        if (redactor_new(8, "[REDACTED:{name}]", &red) < 0 || redactor_add(red, "TOKEN", (unsigned char *) secret, 32) <= 0 ||
            redactor_compile(red) < 0)
                return 1;
        RUN(tgz_member_is_named_with_its_offset);
        RUN(every_filter_and_zip);
        RUN(single_compressed_file_is_its_content);
        RUN(nested_zip_in_tgz);
        RUN(clean_archive_and_empty_ones);
        RUN(compressed_content_beginning_with_zeros);
        RUN(plain_files_that_begin_like_one);
        RUN(bomb_stops_at_the_limit);
        RUN(depth_limit);
        RUN(member_limit);
        RUN(damaged_archives_are_scanned_raw);
        RUN(links_and_odd_names);
        RUN(plain_scan_unchanged);
        redactor_free(red);
        return tap_finish();
}
