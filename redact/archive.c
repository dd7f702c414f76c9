/* What is inside compressed files and archives, for the file scan: libarchive unpacks them and
 * each regular member is scanned as a stream of its own, within limits on the bytes unpacked,
 * the nesting and the number of members (redact.h, docs/redaction-forms.md). */
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>

#include "scan-private.h"

#define MEMBER_NAME_MAX 1024

/* ---- telling the formats ---- */

static bool bzip2_magic(const unsigned char *p, size_t n) {
        /* "BZh" and a block size can begin a text file: the first block's (or the empty
         * stream's end) magic follows */
        return n >= 10 && memcmp(p, "BZh", 3) == 0 && p[3] >= '1' && p[3] <= '9' &&
               (memcmp(p + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0 || memcmp(p + 4, "\x17\x72\x45\x38\x50\x90", 6) == 0);
}

enum sniff archive_sniff(const unsigned char *p, size_t n) {
        static const struct {
                size_t at, len;
                const char *magic;
                enum sniff kind;
        } magics[] = {
                { 0, 3, "\x1f\x8b\x08", SNIFF_COMPRESSED },        /* gzip (deflate, the only method) */
                { 0, 6, "\xfd" "7zXZ\0", SNIFF_COMPRESSED },       /* xz */
                { 0, 4, "LZIP", SNIFF_COMPRESSED },                /* lzip */
                { 0, 4, "\x28\xb5\x2f\xfd", SNIFF_COMPRESSED },    /* zstd frame */
                { 0, 4, "PK\x03\x04", SNIFF_ARCHIVE },             /* zip */
                { 0, 4, "PK\x05\x06", SNIFF_ARCHIVE },             /* zip without members */
                { 0, 4, "PK\x07\x08", SNIFF_ARCHIVE },             /* zip, spanned: the marker before the first member */
                { 257, 5, "ustar", SNIFF_ARCHIVE },                /* tar: POSIX "ustar\0", GNU "ustar  " */
        };
        for (size_t i = 0; i < ELEMENTSOF(magics); i++)
                if (n >= magics[i].at + magics[i].len && memcmp(p + magics[i].at, magics[i].magic, magics[i].len) == 0)
                        return magics[i].kind;
        /* compress (.Z): two bytes of magic, then 9 to 16 bits and no reserved flag */
        if (n >= 3 && p[0] == 0x1f && p[1] == 0x9d && (p[2] & 0x1f) >= 9 && (p[2] & 0x1f) <= 16 && !(p[2] & 0x60))
                return SNIFF_COMPRESSED;
        return bzip2_magic(p, n) ? SNIFF_COMPRESSED : SNIFF_PLAIN;
}

/* ---- a member as a source ---- */

static const unsigned char zeros[64 * 1024];

/* Counts n more unpacked bytes; past the limit, cuts n to what is left and stops the scan. */
static size_t spend(struct scan *s, size_t n) {
        uint64_t left = s->max_expanded - s->expanded;
        if (n > left) {
                n = (size_t) left;
                s->stopped = true;
                scan_warning(s, NULL, "stopped after %llu bytes unpacked, the limit for one file: the rest is not scanned",
                             (unsigned long long) s->max_expanded);
        }
        s->expanded += n;
        return n;
}

ssize_t archive_member_read(struct source *src, const void **ret) {
        struct scan *s = src->scan;
        while (!s->stopped) {
                if (src->block_len == 0) {
                        const void *p;
                        size_t n;
                        la_int64_t offset;
                        int st = archive_read_data_block(src->archive, &p, &n, &offset);
                        if (st == ARCHIVE_EOF)
                                return 0;
                        if (st != ARCHIVE_OK && st != ARCHIVE_WARN)
                                return -EBADMSG;
                        src->block = p;
                        src->block_len = n;
                        src->block_offset = offset;
                        continue;
                }
                size_t n;
                if (src->block_offset > 0 && (uint64_t) src->block_offset > src->offset) {
                        /* a hole in a sparse member reads as zeros, as it would from the file */
                        uint64_t hole = (uint64_t) src->block_offset - src->offset;
                        n = hole < sizeof zeros ? (size_t) hole : sizeof zeros;
                        *ret = zeros;
                } else {
                        n = src->block_len;
                        *ret = src->block;
                        src->block_len = 0;
                }
                n = spend(s, n);
                src->offset += n;
                return (ssize_t) n;
        }
        return 0;
}

/* The bytes of a member that is not scanned, still counted: not read, they would be
 * unpacked all the same when libarchive skips them. */
static int drain(struct source *src) {
        for (;;) {
                const void *p;
                ssize_t n = source_read(src, &p);
                if (n <= 0)
                        return (int) n;
        }
}

/* ---- naming members ---- */

/* What a single compressed file holds is named after it without the compressor's suffix:
 * app.log.gz holds app.log, logs.tgz holds logs.tar; anything else holds "data". */
static char *content_name(const char *path) {
        static const struct {
                const char *suffix, *replacement;
        } suffixes[] = {
                { ".tgz", ".tar" }, { ".taz", ".tar" }, { ".tbz2", ".tar" }, { ".tbz", ".tar" }, { ".txz", ".tar" },
                { ".tzst", ".tar" }, { ".tlz", ".tar" }, { ".gz", "" }, { ".bz2", "" }, { ".xz", "" },
                { ".lz", "" }, { ".zst", "" }, { ".Z", "" },
        };
        const char *base = path;
        for (const char *p = path; p && *p; p++)
                if (*p == '/' || *p == '!')
                        base = p + 1;
        size_t n = base ? strlen(base) : 0;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t l = strlen(suffixes[i].suffix);
                if (n > l && strcmp(base + n - l, suffixes[i].suffix) == 0)
                        return strdup_printf("%.*s%s", (int) (n - l), base, suffixes[i].replacement);
        }
        return strdup("data");
}

/* member (the path of the archive inside the file, NULL: the file) + '!' + the entry's name,
 * made printable: a name is the step's to choose, and it lands in logs and annotations. */
static char *member_path(const struct scan *s, struct archive *a, struct archive_entry *e, const char *member) {
        _cleanup_free_ char *name = NULL;
        if (archive_format(a) == ARCHIVE_FORMAT_RAW)
                name = content_name(member ? member : s->name);
        else {
                const char *p = archive_entry_pathname(e);
                name = strndup(p && *p ? p : "?", MEMBER_NAME_MAX);
        }
        if (!name)
                return NULL;
        for (unsigned char *c = (unsigned char *) name; *c; c++)
                if (*c < 0x20 || *c == 0x7f)
                        *c = '?';
        return member ? strdup_printf("%s!%s", member, name) : steal_pointer(&name);
}

/* ---- libarchive ---- */

/* A compressed stream is opened with the decompressors and the raw reader only, its content
 * then told by its own first bytes like any member's: with libarchive's tar reader there too,
 * content that begins with a zero block (a disk image, a sparse database) would be taken for an
 * empty tar and the rest never read. Only what is built into this program: libarchive runs an
 * external program for a filter whose library it lacks (saying ARCHIVE_WARN), and no process
 * is started here. */
static int archive_setup(struct archive *a, enum sniff kind) {
        int (*const compressed[])(struct archive *) = {
                archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                archive_read_support_filter_xz, archive_read_support_filter_lzip,
                archive_read_support_filter_zstd, archive_read_support_filter_compress,
                archive_read_support_format_raw,    /* the stream's content, one member */
                archive_read_support_format_empty,  /* of an empty one */
        };
        int (*const archives[])(struct archive *) = {
                archive_read_support_format_tar,
                /* not the seekable reader: it loads the whole central directory, one entry per
                 * member, before the member limit could apply */
                archive_read_support_format_zip_streamable,
        };
        bool c = kind == SNIFF_COMPRESSED;
        for (size_t i = 0; i < (c ? ELEMENTSOF(compressed) : ELEMENTSOF(archives)); i++)
                if ((c ? compressed : archives)[i](a) != ARCHIVE_OK)
                        return -ENOTSUP;
        return 0;
}

struct reader {
        struct source *src;
        int error;     /* of src: the bytes below this archive failed, not the archive */
};

static la_ssize_t reader_read(struct archive *a, void *userdata, const void **ret) {
        struct reader *rd = userdata;
        ssize_t n = source_read(rd->src, ret);
        if (n < 0) {
                rd->error = (int) n;
                archive_set_error(a, EIO, "read failed");
                return -1;
        }
        return n;
}

static int scan_member(struct scan *s, struct archive *a, struct archive_entry *e, unsigned depth,
                       const char *member) {
        struct source src = { .scan = s, .fd = -1, .fd_start = -1, .archive = a };
        if (archive_entry_filetype(e) != AE_IFREG)
                return drain(&src);   /* symlinks, devices, directories: not followed */
        if (archive_entry_is_data_encrypted(e)) {
                _cleanup_free_ char *path = member_path(s, a, e, member);
                scan_warning(s, path ? path : member, "encrypted: not scanned");
                return 0;
        }
        int k = source_fill_head(&src);
        if (k < 0)
                return k;
        /* what a compressed stream holds: a tar or zip there is named and counted with it
         * (report.tgz!logs/run.log), anything else is a member of its own (app.log.gz!app.log) */
        bool content = archive_format(a) == ARCHIVE_FORMAT_RAW;
        _cleanup_free_ char *path = NULL;
        if (!(content && archive_sniff(src.head, src.head_len) == SNIFF_ARCHIVE) && !(path = member_path(s, a, e, member)))
                k = -ENOMEM;
        else
                k = scan_source(s, &src, depth, path ? path : member, content);
        explicit_bzero(src.peek, sizeof src.peek);
        return k;
}

/* 0 at the end, -EBADMSG when the archive is damaged, or a member's error. */
static int scan_members(struct scan *s, struct archive *a, unsigned depth, const char *member) {
        for (;;) {
                struct archive_entry *e;
                int st = archive_read_next_header(a, &e);
                if (st == ARCHIVE_EOF)
                        return 0;
                if (st != ARCHIVE_OK && st != ARCHIVE_WARN)   /* ARCHIVE_RETRY too: a damaged header */
                        return -EBADMSG;
                if (archive_format(a) == ARCHIVE_FORMAT_RAW && archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
                        /* nothing to unpack: the tar or zip its first bytes said is not one */
                        archive_set_error(a, EINVAL, "not the archive its first bytes say");
                        return -EBADMSG;
                }
                if (++s->members > s->max_members) {
                        scan_warning(s, NULL, "stopped after %llu members, the limit for one file: the rest is not scanned",
                                     (unsigned long long) s->max_members);
                        s->stopped = true;
                        return 0;
                }
                int k = scan_member(s, a, e, depth, member);
                if (k < 0)
                        return k;
                if (s->stopped)
                        return 0;
        }
}

/* libarchive converts names to the charset of the thread's locale: in the C locale (ours, and
 * a CI runner's often) every non-ASCII name of a zip would fail to convert. C.UTF-8 for this
 * thread while an archive is read, the process's locale untouched. */
static locale_t utf8_locale(void) {
        static locale_t utf8;
        if (!utf8)
                utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
        return utf8;
}

static int archive_scan_in(struct scan *s, struct source *src, enum sniff kind, unsigned depth, const char *member,
                           bool *ret_damaged);

int archive_scan(struct scan *s, struct source *src, enum sniff kind, unsigned depth, const char *member,
                 bool *ret_damaged) {
        locale_t utf8 = utf8_locale(), before = utf8 ? uselocale(utf8) : (locale_t) 0;
        int k = archive_scan_in(s, src, kind, depth, member, ret_damaged);
        if (utf8)
                uselocale(before);
        return k;
}

static int archive_scan_in(struct scan *s, struct source *src, enum sniff kind, unsigned depth, const char *member,
                           bool *ret_damaged) {
        struct reader rd = { .src = src };
        struct archive *a = archive_read_new();
        if (!a)
                return -ENOMEM;
        int k = archive_setup(a, kind);
        if (k < 0) {
                scan_warning(s, member, "cannot be unpacked (libarchive lacks a decompressor): scanned as it is");
                *ret_damaged = true;
                archive_read_free(a);
                return 0;
        }
        archive_read_set_read_callback(a, reader_read);
        archive_read_set_callback_data(a, &rd);
        k = archive_read_open1(a) == ARCHIVE_OK ? scan_members(s, a, depth, member) : -EBADMSG;
        if (rd.error < 0)
                k = rd.error;   /* the archive around this one is damaged, or the file unreadable */
        else if (k == -EBADMSG) {
                if (!s->stopped) {   /* cut short by a limit: not damaged */
                        const char *why = archive_error_string(a);
                        scan_warning(s, member, "damaged archive (%s): what could be unpacked was scanned, and its bytes as they are",
                                     why ? why : "unreadable");
                        *ret_damaged = true;
                }
                k = 0;
        }
        archive_read_free(a);
        return k;
}
