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
        FORM_BASE64_WRAPPED,     /* standard, wrapped at 76 columns */
        FORM_HEX_LOWER,
        FORM_HEX_UPPER,
        FORM_PERCENT_UPPER,      /* %2F */
        FORM_PERCENT_LOWER,      /* %2f */
        FORM_PERCENT_PLUS,       /* form encoding: '+' for space */
        FORM_JSON,               /* JSON string escape */
        FORM_SHELL,              /* set -x / printf %q quoting */
        FORM_XML,                /* XML/HTML entities */
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
