/* The redaction engine: compiles secret values into every encoded form DESIGN §5 lists,
 * then filters byte streams, replacing each occurrence with a mask and reporting it.
 * Pure computation: no processes, no manifest, no I/O policy. */
#pragma once

#include "common.h"

enum redact_form {
        FORM_RAW,
        FORM_TRIMMED,            /* leading/trailing whitespace removed */
        FORM_LINE,               /* one line of a multi-line value */
        FORM_WHITESPACE,         /* multi-line value, any whitespace run standing for a newline */
        FORM_BASE64,             /* standard alphabet, any alignment, padded or not */
        FORM_BASE64URL,
        FORM_HEX_LOWER,
        FORM_HEX_UPPER,
        FORM_PERCENT_UPPER,      /* %2F */
        FORM_PERCENT_LOWER,      /* %2f */
        FORM_PERCENT_PLUS,       /* form encoding: '+' for space */
        FORM_JSON,               /* JSON string escape */
        FORM_SHELL,              /* set -x / printf %q quoting */
        FORM_XML,                /* XML/HTML entities */
        FORM_PYTHON,             /* Python repr()/str() of a str or bytes (pytest prints these) */
        FORM_ESCAPED,            /* C, Go, Rust, Java, JavaScript string-literal escapes */
        FORM_YAML,               /* YAML double-quoted scalar */
        FORM_QUOTE_DOUBLED,      /* '' doubling (SQL, PowerShell, GitHub expressions), "" (CSV) */
        FORM_UNESCAPED,          /* backslash escapes resolved, as an unquoted shell word prints */
        FORM_BASE64_BASE64,      /* nested to depth 2: base64 of a base64 form */
        FORM_BASE64_JSON,        /* base64 of the JSON-escaped value */
        FORM_PERCENT_BASE64,     /* percent-encoding of a base64 form */
        FORM_JSON_JSON,          /* a JSON string escaped twice */
        FORM_PARTIAL,            /* a held prefix at end of stream */
        _FORM_MAX,
};
const char *redact_form_name(enum redact_form f);

/* ---- forms ----
 * Calls emit once per distinct form of value (raw included) whose length is >= min_len.
 * `flex` marks the FORM_WHITESPACE pattern: its bytes are the value's non-whitespace tokens
 * separated by single ' ', each standing for any run of whitespace. Encodings are built in
 * secure memory; emit must copy what it keeps. Returns 0, a negative errno, or emit's
 * first negative return. */
typedef int (*redact_emit_fn)(void *userdata, enum redact_form form, const unsigned char *p,
                              size_t n, bool flex);
int redact_forms(const unsigned char *value, size_t len, size_t min_len, redact_emit_fn emit,
                 void *userdata);

/* ---- the compiled pattern set ----
 * Pattern bytes (derived from secret values) live in secure memory. */
struct redactor;

int redactor_new(size_t min_len, const char *mask_template, struct redactor **ret);
/* Adds every form of one secret's value under name (used in masks and reports). Returns
 * the number of patterns added; 0 means the value itself is shorter than min_len and
 * cannot be masked safely (the caller refuses such a secret). */
int redactor_add(struct redactor *r, const char *name, const unsigned char *value, size_t len);
/* Builds the search tables; call once after the last redactor_add. */
int redactor_compile(struct redactor *r);
size_t redactor_pattern_count(const struct redactor *r);
/* The longest text one match can span: what a scanner of pieces must overlap by. */
size_t redactor_max_match_len(const struct redactor *r);
struct redactor *redactor_free(struct redactor *r);
static inline void redactor_freep(struct redactor **r) { redactor_free(*r); }
#define _cleanup_redactor_ _cleanup_(redactor_freep)

/* ---- streaming ----
 * Bytes are passed on as soon as no future bytes can make them part of a match; a possible
 * beginning of a secret is held until later bytes decide (never on a timer). Each merged
 * run of overlapping matches becomes one mask and one leak report. */
struct redact_leak {
        const char *name;         /* the secret's name, never its value */
        enum redact_form form;
        uint64_t offset;          /* byte offset of the match in the input stream (in a
                                   * member of an archive: in the member's content) */
        const char *member;       /* NULL, or the archive member the match is in, nested ones
                                   * joined by '!': "inner.tgz!logs/run.log"; valid during
                                   * the callback only (the matcher leaves it NULL) */
        uint64_t line;            /* 1-based line of the match's first byte */
        uint64_t col;             /* 1-based, in bytes since the last '\n' before it ('\r' is a byte) */
};

struct redact_sink {
        int (*write)(void *userdata, const void *p, size_t n);   /* NULL: discard (scanning) */
        void (*leak)(void *userdata, const struct redact_leak *leak);  /* may be NULL */
        void *userdata;
};

struct redact_stream;
int redact_stream_new(const struct redactor *r, struct redact_stream **ret);
int redact_stream_feed(struct redact_stream *s, const void *p, size_t n, const struct redact_sink *sink);
/* End of input: a held prefix of >= min_len bytes is masked and reported as FORM_PARTIAL. */
int redact_stream_finish(struct redact_stream *s, const struct redact_sink *sink);
uint64_t redact_stream_leak_count(const struct redact_stream *s);
/* Back to the start of a new input, its window wiped and kept: many short inputs (messages)
 * through one stream cost one locked allocation, not one each. */
void redact_stream_reset(struct redact_stream *s);
struct redact_stream *redact_stream_free(struct redact_stream *s);
static inline void redact_stream_freep(struct redact_stream **s) { redact_stream_free(*s); }
#define _cleanup_redact_stream_ _cleanup_(redact_stream_freep)

/* ---- scanning files ----
 * Scans what is readable from fd, up to limit bytes (UINT64_MAX: to the end), in bounded
 * pieces (the stream keeps the overlap a match across two pieces needs). Leaks go to
 * sink->leak; nothing is written. Returns the number of leaks found, or a negative errno.
 *
 * Compressed files and archives are looked into (redact/archive.c): what the first bytes say
 * is gzip, bzip2, xz, lzip, zstd, compress (.Z), zip or tar is unpacked and each regular
 * member scanned as a stream of its own (leaks name it in redact_leak.member), archives in
 * archives too, all within the limits below; a single compressed file is one member, named
 * after the file without its suffix ("app.log.gz" holds "app.log"). A damaged archive gets a
 * warning and its raw bytes are scanned too. Anything else is scanned as it is. */
#define REDACT_SCAN_MAX_EXPANDED (UINT64_C(1) << 30)   /* bytes unpacked from one file, all depths */
#define REDACT_SCAN_MAX_DEPTH 3                        /* archives in archives: 3 levels unpacked */
#define REDACT_SCAN_MAX_MEMBERS 100000                 /* members of one file, all depths */

struct redact_scan_options {
        const char *name;          /* the file's name, for naming a compressed file's content; may be NULL */
        uint64_t max_expanded;     /* 0: REDACT_SCAN_MAX_EXPANDED */
        unsigned max_depth;        /* 0: REDACT_SCAN_MAX_DEPTH */
        uint64_t max_members;      /* 0: REDACT_SCAN_MAX_MEMBERS */
        /* may be NULL: what could not be looked into as it should (a limit reached, a damaged
         * archive), in member (NULL: the file itself) */
        void (*warning)(void *userdata, const char *member, const char *message);
        void *userdata;
};
int redact_scan_file(const struct redactor *r, int fd, uint64_t limit, const struct redact_scan_options *o,
                     const struct redact_sink *sink);
/* The same for many files, with one stream and buffer kept between them. */
struct redact_scanner;
int redact_scanner_new(const struct redactor *r, struct redact_scanner **ret);
int redact_scanner_scan(struct redact_scanner *sc, int fd, uint64_t limit, const struct redact_scan_options *o,
                        const struct redact_sink *sink);
struct redact_scanner *redact_scanner_free(struct redact_scanner *sc);
/* The same with the default options. */
int redact_scan_fd(const struct redactor *r, int fd, uint64_t limit, const struct redact_sink *sink);
