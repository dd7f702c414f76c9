/* The CI context of a run: which CI system runs us, and what it says about the run. One
 * place answers "are we under GitHub Actions / GitLab CI" for everything the agent prints. */
#pragma once

#include "common.h"

enum ci_system { CI_LOCAL, CI_GITHUB, CI_GITLAB, CI_BUILDKITE, CI_JENKINS };
/* From the runner's variables: GITHUB_ACTIONS=true, GITLAB_CI=true, BUILDKITE=true,
 * JENKINS_URL set; else local. */
enum ci_system ci_system_detect(void);

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
