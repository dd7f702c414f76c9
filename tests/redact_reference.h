/* A deliberately naive redactor: every pattern at every offset over the whole input, then
 * sort and merge. The streaming matcher must produce exactly its output, whatever the
 * chunking. Shared by the differential unit test and the fuzz target. */
#pragma once

#include "redact.h"

#define REF_FLEX_MAX_RUN 16
#define REF_FLEX_MIN_ANCHOR 8
/* The match modes (docs/redaction-forms.md "Match modes"), restated from the page. */
#define REF_VIEW_SLACK 64
#define REF_CSI_MAX 64
#define REF_OSC_MAX 512
#define REF_NF_MAX 8
#define REF_WRAP_RUN 16
#define REF_WRAP_INDENT 16

struct ref_pattern {
        unsigned char *bytes;
        size_t len;
        size_t secret;
        enum redact_form form;
        bool flex;
};

struct ref_set {
        struct ref_pattern *p;
        size_t n;
        char **names;
        char **masks;
        size_t n_secrets;
        size_t min_len;
};

struct ref_leak {
        size_t secret;
        enum redact_form form;
        size_t offset;
};

int ref_set_add(struct ref_set *set, const char *name, const char *mask, const unsigned char *value, size_t len);
/* Returns a malloc'd output and its length; leaks into *ret_leaks (malloc'd). */
unsigned char *ref_redact(const struct ref_set *set, const unsigned char *text, size_t n, size_t *ret_len,
                          struct ref_leak **ret_leaks, size_t *ret_n_leaks);
void ref_set_done(struct ref_set *set);

/* Every form of one value (the first REF_FORMS_MAX), copied, for the differential tests to
 * plant encoded occurrences in the texts they generate. */
#define REF_FORMS_MAX 96
struct ref_forms {
        unsigned char *p[REF_FORMS_MAX];
        size_t n[REF_FORMS_MAX];
        bool flex[REF_FORMS_MAX];
        size_t count;
};
void ref_forms_of(const unsigned char *value, size_t len, size_t min_len, struct ref_forms *f);
void ref_forms_done(struct ref_forms *f);
