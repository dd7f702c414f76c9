/* The report's model, shared by report.c (which gathers it from the manifest, the stores,
 * the approvals and the verified audit logs) and report_html.c (which draws it). */
#pragma once

#include <jansson.h>

#include "agent.h"

struct report_secret {
        const struct mf_secret *s;
        bool age_known;
        uint64_t age;                  /* seconds, when age_known */
        enum rotation_status rotation;
        char *store_note;              /* why the age is not known */
        json_t *approvals;             /* [{environment, identity, status, approved, age_seconds}] */
        json_t *fetches;               /* [{ts, time, run, environment, stage, branch, event, actor, status, read}] */
        json_t *leaks;                 /* [{ts, time, run, form, where, count}] */
        json_t *writes;                /* the secret.write records (apply, rotate) */
        size_t unread;                 /* file deliveries the output guard saw nobody open */
};

struct report {
        const struct options *o;
        struct manifest *m;
        int64_t now;
        struct report_secret *secrets;
        size_t n_secrets;
        json_t *logs;                  /* [{path, records, signatures_checked}] */
        json_t *runs;                  /* run id -> {start, fetch, deliver, read, leaks, exit} */
        json_t *unknown_names;         /* names the logs fetched that the manifest no longer has */
        size_t n_runs;                 /* of this project */
        int64_t first_ts, last_ts;     /* of those runs' starts */
};

void report_done(struct report *r);
struct report_secret *report_find(struct report *r, const char *name);
/* The page, written through a temporary file and a rename. */
int report_write_html(const struct report *r, const char *path);
