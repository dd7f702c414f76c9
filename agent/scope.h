/* CI context detection and scope resolution: which secrets a run may receive. */
#pragma once

#include "manifest.h"

struct ci_context {
        char *provider;     /* github, gitlab, buildkite, jenkins, local */
        char *branch;       /* NULL if unknown */
        char *event;        /* normalized: push, pull_request, schedule, manual, tag, local, ... */
        char *raw_event;    /* as the CI system named it */
        char *repository;
        char *actor;
        char *run_id;
        char *workflow;
        bool pull_request;
};

/* Reads the runner's variables (getenv) and, for local runs, the branch from git under cwd. */
int ci_context_detect(struct ci_context *ret);
void ci_context_done(struct ci_context *c);

enum scope_verdict {
        SCOPE_IN = 0,
        SCOPE_OUT_ENVIRONMENT,    /* environment not in `environments` */
        SCOPE_OUT_STAGE,          /* stage not in `stages` */
        SCOPE_OUT_BRANCH,         /* `when.branches` not satisfied */
        SCOPE_OUT_EVENT,          /* `when.events` not satisfied */
        SCOPE_DENY_PROTECTED_PR,  /* protected environment on a pull-request event */
};

const char *scope_verdict_rule(enum scope_verdict v);  /* short rule name for messages/audit */

/* stage may be NULL (no stage). */
enum scope_verdict scope_evaluate(const struct manifest *m, const struct mf_secret *s,
                                  const char *environment, const char *stage,
                                  const struct ci_context *ci);
