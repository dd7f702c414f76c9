/* Between scan.c (files and plain streams of bytes) and archive.c (what is inside compressed
 * files and archives): one scan of a top-level file and the sources of bytes it reads. */
#pragma once

#include "redact.h"

#define SCAN_PIECE (1024 * 1024)
#define SCAN_SNIFF 512           /* bytes that tell an archive from the rest: tar's magic ends at 263 */

struct archive;

/* One top-level file's scan: the matcher's stream (reused, reset per member), the limits and
 * what has been spent of them. */
struct scan {
        const struct redactor *r;
        struct redact_stream *stream;
        const struct redact_sink *sink;   /* the caller's */
        const struct redact_scan_options *options;   /* the caller's, may be NULL */
        const char *name;                 /* the file's, may be NULL */
        uint64_t max_expanded, max_members;
        unsigned max_depth;
        uint64_t expanded, members;
        bool stopped;                     /* a limit was reached: nothing more is read */
        uint64_t leaks;
        const char *member;               /* where the leaks being found now are; NULL: the file */
};

/* Bytes to scan, from the file (fd >= 0) or from the member an archive is at. The first
 * ones are read ahead to tell the format (head), then handed on before anything else. */
struct source {
        struct scan *scan;
        const unsigned char *head;
        size_t head_len;
        const unsigned char *back;        /* the rest of the block the head was cut from */
        size_t back_len;
        /* the file */
        int fd;
        off_t fd_start;                   /* -1: not seekable, cannot be read again */
        uint64_t fd_limit, fd_left;
        unsigned char *fd_buf;            /* SCAN_PIECE bytes, wiped after use */
        size_t fd_dirty;
        /* a member */
        struct archive *archive;
        const unsigned char *block;       /* from archive_read_data_block, not yet handed on */
        size_t block_len;
        int64_t block_offset;
        uint64_t offset;                  /* of the next byte handed on (sparse members have holes) */
        unsigned char peek[SCAN_SNIFF];   /* the head, when the first block was shorter */
};

/* The next bytes of src: their number (0 at the end, or once a limit is reached) and where
 * they are in *ret, valid until the next call; -EBADMSG when the archive the member is in is
 * damaged, another negative errno when the file cannot be read. */
ssize_t source_read(struct source *src, const void **ret);
/* Reads the head (up to SCAN_SNIFF bytes) of a member source. */
int source_fill_head(struct source *src);
/* Scans what src holds: looked into when its head says compressed or archive, else as it is.
 * depth: how many levels of archives it is inside; unpacked: it is what a compressed stream
 * holds (a tar or zip there is one level with it: a .tgz is one archive). member: where the
 * leaks are (NULL: the file itself). */
int scan_source(struct scan *s, struct source *src, unsigned depth, const char *member, bool unpacked);
/* Scans the rest of src as it is, a stream of its own. */
int scan_plain(struct scan *s, struct source *src, const char *member);
void scan_warning(struct scan *s, const char *member, const char *fmt, ...) _printf_(3, 4);

/* ---- archive.c ---- */
/* source_read of a member: its next bytes out of the archive, counted against the limit. */
ssize_t archive_member_read(struct source *src, const void **ret);
enum sniff {
        SNIFF_PLAIN,
        SNIFF_COMPRESSED,        /* gzip, bzip2, xz, lzip, zstd, compress: one stream inside */
        SNIFF_ARCHIVE,           /* tar, zip: members inside */
};
/* What these first bytes are the beginning of. */
enum sniff archive_sniff(const unsigned char *p, size_t n);
/* Unpacks src (kind: its archive_sniff) and scans each regular member through scan_source,
 * members at depth. *ret_damaged: the archive itself could not be read to its end (what was
 * read is scanned; the caller scans the raw bytes). Returns the leaks found, or a negative
 * errno (-EBADMSG: the archive src is a member of is damaged). */
int archive_scan(struct scan *s, struct source *src, enum sniff kind, unsigned depth, const char *member,
                 bool *ret_damaged);
