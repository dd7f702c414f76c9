/* Unit tests for agent/scope.c: scope decisions over environment x stage x branch x event x
 * pull request, and CI context detection for each provider and for local git checkouts. */
#include <ftw.h>
#include <sys/stat.h>

#include "scope.h"
#include "tap.h"

/* ---- hand-built manifests (fixed capacity: pointers stay valid while adding) ---- */

#define CAPACITY 8

static char **sv(const char *first, ...) {
        char **l = NULL;
        va_list ap;
        va_start(ap, first);
        for (const char *s = first; s; s = va_arg(ap, const char *))
                if (strv_extend(&l, s) < 0)
                        abort();
        va_end(ap);
        return l;
}

static struct manifest *manifest_new(void) {
        struct manifest *m = calloc(1, sizeof(*m));
        if (!m || !(m->environments = calloc(CAPACITY, sizeof(*m->environments))) ||
            !(m->secrets = calloc(CAPACITY, sizeof(*m->secrets))))
                abort();
        return m;
}

static void add_environment(struct manifest *m, const char *name, bool protected_) {
        if (m->n_environments >= CAPACITY)
                abort();
        m->environments[m->n_environments++] = (struct mf_environment) {
                .name = strdup(name), .protected_ = protected_,
        };
}

static struct mf_secret *add_secret(struct manifest *m, const char *name) {
        if (m->n_secrets >= CAPACITY)
                abort();
        struct mf_secret *s = &m->secrets[m->n_secrets++];
        *s = (struct mf_secret) { .name = strdup(name), .as = strdup(name) };
        return s;
}

static void test_manifest_free(struct manifest *m) {
        for (size_t i = 0; i < m->n_environments; i++)
                free(m->environments[i].name);
        for (size_t i = 0; i < m->n_secrets; i++) {
                struct mf_secret *s = &m->secrets[i];
                free(s->name);
                free(s->as);
                strv_free(s->environments);
                strv_free(s->stages);
                strv_free(s->when_branches);
                strv_free(s->when_events);
        }
        free(m->environments);
        free(m->secrets);
        free(m);
}

static void test_manifest_freep(struct manifest **m) { test_manifest_free(*m); }
#define _cleanup_test_manifest_ _cleanup_(test_manifest_freep)

/* dev, staging, and protected prod */
static struct manifest *three_environments(void) {
        struct manifest *m = manifest_new();
        add_environment(m, "dev", false);
        add_environment(m, "staging", false);
        add_environment(m, "prod", true);
        return m;
}

static struct ci_context ci_of(const char *branch, const char *event, const char *raw_event) {
        return (struct ci_context) {
                .provider = (char *) "test", .branch = (char *) branch,
                .event = (char *) event, .raw_event = (char *) raw_event,
                .pull_request = event && streq(event, "pull_request"),
        };
}

/* ---- scope_evaluate ---- */

TEST(verdict_rule_names) {
        CHECK_EQ_STR(scope_verdict_rule(SCOPE_IN), "in-scope");
        CHECK_EQ_STR(scope_verdict_rule(SCOPE_OUT_ENVIRONMENT), "environments");
        CHECK_EQ_STR(scope_verdict_rule(SCOPE_OUT_STAGE), "stages");
        CHECK_EQ_STR(scope_verdict_rule(SCOPE_OUT_BRANCH), "when.branches");
        CHECK_EQ_STR(scope_verdict_rule(SCOPE_OUT_EVENT), "when.events");
        CHECK_EQ_STR(scope_verdict_rule(SCOPE_DENY_PROTECTED_PR),
                     "protected-environment-pull-request");
}

TEST(unrestricted_secret_everywhere_but_protected_pr) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        const struct mf_secret *s = add_secret(m, "ANY");
        struct ci_context push = ci_of("main", "push", "push");
        struct ci_context pr = ci_of("feature/x", "pull_request", "pull_request");
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "prod", "deploy", &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "undeclared", NULL, &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, NULL, NULL, &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "staging", NULL, &pr), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "prod", NULL, &pr), SCOPE_DENY_PROTECTED_PR);
}

TEST(generated_secret_denied_on_protected_pr_too) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        struct mf_secret *s = add_secret(m, "TEST_DB_PASSWORD");
        s->generated = true;
        struct ci_context pr = ci_of("feature/x", "pull_request", "pull_request_target");
        CHECK_EQ_INT(scope_evaluate(m, s, "prod", NULL, &pr), SCOPE_DENY_PROTECTED_PR);
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &pr), SCOPE_IN);
}

TEST(environment_list) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        struct mf_secret *s = add_secret(m, "DB");
        s->environments = sv("staging", "prod", NULL);
        struct ci_context push = ci_of("main", "push", "push");
        CHECK_EQ_INT(scope_evaluate(m, s, "staging", NULL, &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "prod", NULL, &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &push), SCOPE_OUT_ENVIRONMENT);
        CHECK_EQ_INT(scope_evaluate(m, s, "Prod", NULL, &push), SCOPE_OUT_ENVIRONMENT);
        /* a run without an environment gets only secrets that list none */
        CHECK_EQ_INT(scope_evaluate(m, s, NULL, NULL, &push), SCOPE_OUT_ENVIRONMENT);
}

TEST(stage_list_and_no_stage) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        struct mf_secret *s = add_secret(m, "DB");
        s->stages = sv("test", "deploy", NULL);
        struct ci_context push = ci_of("main", "push", "push");
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", "test", &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", "lint", &push), SCOPE_OUT_STAGE);
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &push), SCOPE_OUT_STAGE);
        /* absent stages: every stage, including none */
        strv_free(s->stages);
        s->stages = NULL;
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &push), SCOPE_IN);
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", "lint", &push), SCOPE_IN);
}

TEST(branch_globs) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        struct mf_secret *s = add_secret(m, "DEPLOY_KEY");
        s->when_branches = sv("main", "release/*", NULL);
        struct {
                const char *branch;
                enum scope_verdict expected;
        } cases[] = {
                { "main", SCOPE_IN },
                { "release/1.2", SCOPE_IN },
                { "release/1.2/hotfix", SCOPE_OUT_BRANCH },  /* '*' stays within one part */
                { "release", SCOPE_OUT_BRANCH },
                { "mainline", SCOPE_OUT_BRANCH },
                { "feature/main", SCOPE_OUT_BRANCH },
                { NULL, SCOPE_OUT_BRANCH },                   /* tag build, detached HEAD */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct ci_context c = ci_of(cases[i].branch, "push", "push");
                CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &c), cases[i].expected);
        }
}

TEST(events_normalized_or_raw) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        struct mf_secret *s = add_secret(m, "NIGHTLY");
        s->when_events = sv("push", "schedule", NULL);
        struct ci_context c = ci_of("main", "push", "push");
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &c), SCOPE_IN);
        c = ci_of("main", "push", "webhook");  /* Buildkite: matched by its normalized name */
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &c), SCOPE_IN);
        c = ci_of("main", "manual", "workflow_dispatch");
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &c), SCOPE_OUT_EVENT);
        c = ci_of("main", NULL, NULL);
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &c), SCOPE_OUT_EVENT);
        /* a raw CI-specific name can be listed too */
        strv_free(s->when_events);
        s->when_events = sv("merge_request_event", NULL);
        c = ci_of("feature/x", "pull_request", "merge_request_event");
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &c), SCOPE_IN);
        c = ci_of("feature/x", "pull_request", "external_pull_request_event");
        CHECK_EQ_INT(scope_evaluate(m, s, "dev", NULL, &c), SCOPE_OUT_EVENT);
}

TEST(no_ci_context_means_no_branch_or_event) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        struct mf_secret *s = add_secret(m, "X");
        CHECK_EQ_INT(scope_evaluate(m, s, "prod", NULL, NULL), SCOPE_IN);
        s->when_events = sv("push", NULL);
        CHECK_EQ_INT(scope_evaluate(m, s, "prod", NULL, NULL), SCOPE_OUT_EVENT);
        s->when_branches = sv("*", NULL);
        CHECK_EQ_INT(scope_evaluate(m, s, "prod", NULL, NULL), SCOPE_OUT_BRANCH);
}

/* The rules of DESIGN §3 written out independently, first failing rule wins. */
static enum scope_verdict expected_verdict(const char *env, const char *stage,
                                           const char *branch, const char *event, bool pr) {
        bool env_ok = env && (streq(env, "staging") || streq(env, "prod"));
        bool stage_ok = stage && (streq(stage, "test") || streq(stage, "deploy"));
        bool branch_ok = branch && (streq(branch, "main") ||
                                    (startswith(branch, "release/") &&
                                     !strchr(branch + strlen("release/"), '/') &&
                                     branch[strlen("release/")]));
        bool event_ok = event && (streq(event, "push") || streq(event, "pull_request"));
        if (!env_ok)
                return SCOPE_OUT_ENVIRONMENT;
        if (!stage_ok)
                return SCOPE_OUT_STAGE;
        if (!branch_ok)
                return SCOPE_OUT_BRANCH;
        if (!event_ok)
                return SCOPE_OUT_EVENT;
        if (pr && streq(env, "prod"))
                return SCOPE_DENY_PROTECTED_PR;
        return SCOPE_IN;
}

TEST(matrix) {
        _cleanup_test_manifest_ struct manifest *m = three_environments();
        struct mf_secret *s = add_secret(m, "DB_PASSWORD");
        s->environments = sv("staging", "prod", NULL);
        s->stages = sv("test", "deploy", NULL);
        s->when_branches = sv("main", "release/*", NULL);
        s->when_events = sv("push", "pull_request", NULL);

        static const char *const envs[] = { "dev", "staging", "prod", NULL };
        static const char *const stages[] = { NULL, "test", "deploy", "lint" };
        static const char *const branches[] = { "main", "release/2.0", "release/2.0/rc",
                                                 "feature/x", NULL };
        static const char *const events[] = { "push", "pull_request", "schedule", "manual" };
        unsigned n = 0, in = 0, denied = 0, failures = 0;
        for (size_t e = 0; e < ELEMENTSOF(envs); e++)
                for (size_t st = 0; st < ELEMENTSOF(stages); st++)
                        for (size_t b = 0; b < ELEMENTSOF(branches); b++)
                                for (size_t ev = 0; ev < ELEMENTSOF(events); ev++) {
                                        struct ci_context c = ci_of(branches[b], events[ev],
                                                                    events[ev]);
                                        enum scope_verdict want = expected_verdict(
                                                envs[e], stages[st], branches[b], events[ev],
                                                c.pull_request);
                                        enum scope_verdict got = scope_evaluate(
                                                m, s, envs[e], stages[st], &c);
                                        n++;
                                        in += got == SCOPE_IN;
                                        denied += got == SCOPE_DENY_PROTECTED_PR;
                                        if (got != want && failures++ < 10)
                                                printf("# env=%s stage=%s branch=%s event=%s: "
                                                       "%s, expected %s\n",
                                                       envs[e] ?: "-", stages[st] ?: "-",
                                                       branches[b] ?: "-", events[ev],
                                                       scope_verdict_rule(got),
                                                       scope_verdict_rule(want));
                                }
        CHECK_EQ_INT(failures, 0);
        CHECK_EQ_INT(n, 4 * 4 * 5 * 4);
        /* staging+prod x test+deploy x main+release/2.0 x push (+ staging's pull_request) */
        CHECK_EQ_INT(in, 2 * 2 * 2 + 1 * 2 * 2);
        CHECK_EQ_INT(denied, 1 * 2 * 2);
}

/* ---- ci_context_detect ---- */

static const char *const ci_variables[] = {
        "GITHUB_ACTIONS", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "GITHUB_REF_TYPE", "GITHUB_REF",
        "GITHUB_EVENT_NAME", "GITHUB_REPOSITORY", "GITHUB_ACTOR", "GITHUB_RUN_ID",
        "GITHUB_WORKFLOW",
        "GITLAB_CI", "CI_COMMIT_BRANCH", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
        "CI_PIPELINE_SOURCE", "CI_PROJECT_PATH", "GITLAB_USER_LOGIN", "CI_PIPELINE_ID",
        "CI_JOB_NAME",
        "BUILDKITE", "BUILDKITE_BRANCH", "BUILDKITE_PULL_REQUEST", "BUILDKITE_SOURCE",
        "BUILDKITE_REPO", "BUILDKITE_BUILD_CREATOR", "BUILDKITE_BUILD_ID",
        "BUILDKITE_PIPELINE_SLUG",
        "JENKINS_URL", "BRANCH_NAME", "GIT_BRANCH", "CHANGE_ID", "CHANGE_BRANCH", "GIT_URL",
        "BUILD_USER_ID", "BUILD_TAG", "JOB_NAME",
        "USER",
};

/* Every case starts from a clean slate, also when the tests themselves run under a CI. */
static void clear_ci_environment(void) {
        for (size_t i = 0; i < ELEMENTSOF(ci_variables); i++)
                unsetenv(ci_variables[i]);
}

/* setenv for "NAME=value" pairs, NULL-terminated */
static void set_variables(const char *first, ...) {
        va_list ap;
        va_start(ap, first);
        for (const char *kv = first; kv; kv = va_arg(ap, const char *)) {
                const char *eq = strchr(kv, '=');
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int) (eq - kv), kv);
                setenv(name, eq + 1, 1);
        }
        va_end(ap);
}

static void ci_context_donep(struct ci_context *c) { ci_context_done(c); }
#define _cleanup_ci_context_ _cleanup_(ci_context_donep)

#define CHECK_NULL(p) CHECK((p) == NULL)

TEST(github_push) {
        clear_ci_environment();
        set_variables("GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=push",
                      "GITHUB_REF=refs/heads/release/1.2", "GITHUB_REF_NAME=release/1.2",
                      "GITHUB_REF_TYPE=branch", "GITHUB_HEAD_REF=" /* empty on pushes */,
                      "GITHUB_REPOSITORY=acme/payments", "GITHUB_ACTOR=alice",
                      "GITHUB_RUN_ID=4242", "GITHUB_WORKFLOW=ci", NULL);
        _cleanup_ci_context_ struct ci_context c = {};
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.provider, "github");
        CHECK_EQ_STR(c.branch, "release/1.2");
        CHECK_EQ_STR(c.event, "push");
        CHECK_EQ_STR(c.raw_event, "push");
        CHECK_EQ_STR(c.repository, "acme/payments");
        CHECK_EQ_STR(c.actor, "alice");
        CHECK_EQ_STR(c.run_id, "4242");
        CHECK_EQ_STR(c.workflow, "ci");
        CHECK(!c.pull_request);
}

TEST(github_pull_request) {
        static const char *const raw[] = { "pull_request", "pull_request_target" };
        for (size_t i = 0; i < ELEMENTSOF(raw); i++) {
                clear_ci_environment();
                set_variables("GITHUB_ACTIONS=true", "GITHUB_REF=refs/pull/7/merge",
                              "GITHUB_REF_NAME=7/merge", "GITHUB_REF_TYPE=branch",
                              "GITHUB_HEAD_REF=feature/login", NULL);
                setenv("GITHUB_EVENT_NAME", raw[i], 1);
                _cleanup_ci_context_ struct ci_context c = {};
                CHECK_EQ_INT(ci_context_detect(&c), 0);
                CHECK_EQ_STR(c.branch, "feature/login");
                CHECK_EQ_STR(c.event, "pull_request");
                CHECK_EQ_STR(c.raw_event, raw[i]);
                CHECK(c.pull_request);
        }
}

TEST(github_tag_and_other_events) {
        clear_ci_environment();
        set_variables("GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=push", "GITHUB_REF=refs/tags/v1.0",
                      "GITHUB_REF_NAME=v1.0", "GITHUB_REF_TYPE=tag", NULL);
        _cleanup_ci_context_ struct ci_context c = {};
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_NULL(c.branch);  /* a tag is not a branch */
        CHECK_EQ_STR(c.event, "push");
        ci_context_done(&c);

        /* without GITHUB_REF_TYPE (older runners): refs/heads/ decides */
        clear_ci_environment();
        set_variables("GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=schedule",
                      "GITHUB_REF=refs/heads/main", NULL);
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.branch, "main");
        CHECK_EQ_STR(c.event, "schedule");
        ci_context_done(&c);

        clear_ci_environment();
        set_variables("GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=workflow_dispatch",
                      "GITHUB_REF=refs/heads/main", "GITHUB_REF_NAME=main",
                      "GITHUB_REF_TYPE=branch", NULL);
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.event, "manual");
        CHECK_EQ_STR(c.raw_event, "workflow_dispatch");
        ci_context_done(&c);

        clear_ci_environment();
        set_variables("GITHUB_ACTIONS=true", "GITHUB_EVENT_NAME=release",
                      "GITHUB_REF=refs/tags/v2", NULL);
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.event, "release");  /* unknown events keep their raw name */
        CHECK_NULL(c.branch);
        CHECK(!c.pull_request);
}

TEST(gitlab) {
        static const struct {
                const char *source, *event;
        } events[] = {
                { "push", "push" }, { "schedule", "schedule" }, { "web", "manual" },
                { "api", "api" }, { "trigger", "trigger" },
        };
        for (size_t i = 0; i < ELEMENTSOF(events); i++) {
                clear_ci_environment();
                set_variables("GITLAB_CI=true", "CI_COMMIT_BRANCH=main",
                              "CI_PROJECT_PATH=acme/payments", "GITLAB_USER_LOGIN=bob",
                              "CI_PIPELINE_ID=99", "CI_JOB_NAME=test", NULL);
                setenv("CI_PIPELINE_SOURCE", events[i].source, 1);
                _cleanup_ci_context_ struct ci_context c = {};
                CHECK_EQ_INT(ci_context_detect(&c), 0);
                CHECK_EQ_STR(c.provider, "gitlab");
                CHECK_EQ_STR(c.branch, "main");
                CHECK_EQ_STR(c.event, events[i].event);
                CHECK_EQ_STR(c.raw_event, events[i].source);
                CHECK_EQ_STR(c.repository, "acme/payments");
                CHECK_EQ_STR(c.actor, "bob");
                CHECK_EQ_STR(c.run_id, "99");
                CHECK_EQ_STR(c.workflow, "test");
                CHECK(!c.pull_request);
        }
}

TEST(gitlab_merge_request) {
        static const char *const sources[] = { "merge_request_event",
                                               "external_pull_request_event" };
        for (size_t i = 0; i < ELEMENTSOF(sources); i++) {
                clear_ci_environment();
                set_variables("GITLAB_CI=true",
                              "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=feature/mr", NULL);
                setenv("CI_PIPELINE_SOURCE", sources[i], 1);
                _cleanup_ci_context_ struct ci_context c = {};
                CHECK_EQ_INT(ci_context_detect(&c), 0);
                CHECK_EQ_STR(c.branch, "feature/mr");
                CHECK_EQ_STR(c.event, "pull_request");
                CHECK(c.pull_request);
        }
}

TEST(buildkite) {
        clear_ci_environment();
        set_variables("BUILDKITE=true", "BUILDKITE_BRANCH=main", "BUILDKITE_SOURCE=webhook",
                      "BUILDKITE_PULL_REQUEST=false", "BUILDKITE_REPO=git@github.com:acme/p.git",
                      "BUILDKITE_BUILD_CREATOR=Carol", "BUILDKITE_BUILD_ID=0190-ab",
                      "BUILDKITE_PIPELINE_SLUG=payments", NULL);
        _cleanup_ci_context_ struct ci_context c = {};
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.provider, "buildkite");
        CHECK_EQ_STR(c.branch, "main");
        CHECK_EQ_STR(c.event, "push");
        CHECK_EQ_STR(c.raw_event, "webhook");
        CHECK_EQ_STR(c.repository, "git@github.com:acme/p.git");
        CHECK_EQ_STR(c.actor, "Carol");
        CHECK_EQ_STR(c.run_id, "0190-ab");
        CHECK_EQ_STR(c.workflow, "payments");
        CHECK(!c.pull_request);
        ci_context_done(&c);

        setenv("BUILDKITE_PULL_REQUEST", "123", 1);
        setenv("BUILDKITE_BRANCH", "feature/bk", 1);
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.event, "pull_request");
        CHECK_EQ_STR(c.raw_event, "webhook");
        CHECK_EQ_STR(c.branch, "feature/bk");
        CHECK(c.pull_request);
        ci_context_done(&c);

        static const struct {
                const char *source, *event;
        } events[] = { { "schedule", "schedule" }, { "ui", "manual" }, { "api", "api" } };
        unsetenv("BUILDKITE_PULL_REQUEST");
        for (size_t i = 0; i < ELEMENTSOF(events); i++) {
                setenv("BUILDKITE_SOURCE", events[i].source, 1);
                CHECK_EQ_INT(ci_context_detect(&c), 0);
                CHECK_EQ_STR(c.event, events[i].event);
                CHECK(!c.pull_request);
                ci_context_done(&c);
        }
}

TEST(jenkins) {
        clear_ci_environment();
        set_variables("JENKINS_URL=https://ci.example.com/", "GIT_BRANCH=origin/develop",
                      "GIT_URL=https://git.example.com/acme/p.git", "BUILD_USER_ID=dave",
                      "BUILD_TAG=jenkins-payments-17", "JOB_NAME=payments", NULL);
        _cleanup_ci_context_ struct ci_context c = {};
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.provider, "jenkins");
        CHECK_EQ_STR(c.branch, "develop");  /* "origin/" removed */
        CHECK_EQ_STR(c.event, "push");
        CHECK_EQ_STR(c.raw_event, "push");
        CHECK_EQ_STR(c.repository, "https://git.example.com/acme/p.git");
        CHECK_EQ_STR(c.actor, "dave");
        CHECK_EQ_STR(c.run_id, "jenkins-payments-17");
        CHECK_EQ_STR(c.workflow, "payments");
        CHECK(!c.pull_request);
        ci_context_done(&c);

        setenv("BRANCH_NAME", "main", 1);  /* multibranch pipelines: wins over GIT_BRANCH */
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.branch, "main");
        ci_context_done(&c);

        set_variables("CHANGE_ID=42", "BRANCH_NAME=PR-42", "CHANGE_BRANCH=feature/j", NULL);
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.branch, "feature/j");
        CHECK_EQ_STR(c.event, "pull_request");
        CHECK_EQ_STR(c.raw_event, "pull_request");
        CHECK(c.pull_request);
        ci_context_done(&c);

        unsetenv("CHANGE_BRANCH");
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.branch, "PR-42");
        CHECK(c.pull_request);
}

TEST(provider_requires_true) {
        clear_ci_environment();
        set_variables("GITHUB_ACTIONS=false", "GITLAB_CI=1", "BUILDKITE=", "JENKINS_URL=",
                      "USER=erin", NULL);
        _cleanup_ci_context_ struct ci_context c = {};
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.provider, "local");
}

/* ---- local runs: branch from .git without running git ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void write_file(const char *dir, const char *name, const char *content) {
        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, name);
        _cleanup_fclose_ FILE *f = fopen(path, "we");
        if (!f) {
                printf("# cannot create %s\n", path);
                abort();
        }
        fputs(content, f);
}

static void make_dirs(const char *base, const char *rel) {
        _cleanup_free_ char *path = strdup_printf("%s/%s", base, rel);
        for (char *p = path + strlen(base) + 1;; p++) {
                if (*p == '/' || *p == '\0') {
                        char saved = *p;
                        *p = '\0';
                        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                                abort();
                        *p = saved;
                        if (!saved)
                                break;
                }
        }
}

/* Runs detection with cwd = base/rel and returns the branch (malloc'd) or NULL. */
static char *local_branch_in(const char *base, const char *rel) {
        _cleanup_free_ char *saved = getcwd(NULL, 0);
        _cleanup_free_ char *dir = strdup_printf("%s/%s", base, rel);
        if (!saved || !dir || chdir(dir) < 0)
                abort();
        struct ci_context c = {};
        int r = ci_context_detect(&c);
        CHECK_EQ_INT(r, 0);
        CHECK_EQ_STR(c.provider, "local");
        CHECK_EQ_STR(c.event, "local");
        CHECK(!c.pull_request);
        CHECK_NULL(c.repository);
        char *branch = steal_pointer(&c.branch);
        ci_context_done(&c);
        if (chdir(saved) < 0)
                abort();
        return branch;
}

struct temp_tree {
        char path[64];
};

static void temp_tree_remove(struct temp_tree *t) {
        if (t->path[0])
                nftw(t->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#define _cleanup_temp_tree_ _cleanup_(temp_tree_remove)

static void temp_tree_make(struct temp_tree *t) {
        snprintf(t->path, sizeof t->path, "/tmp/test-scope-XXXXXX");
        if (!mkdtemp(t->path))
                abort();
}

TEST(local_branch_from_head) {
        clear_ci_environment();
        setenv("USER", "erin", 1);
        _cleanup_temp_tree_ struct temp_tree t = {};
        temp_tree_make(&t);
        make_dirs(t.path, "repo/.git");
        make_dirs(t.path, "repo/src/deep");
        write_file(t.path, "repo/.git/HEAD", "ref: refs/heads/feature/local-x\n");

        _cleanup_free_ char *at_root = local_branch_in(t.path, "repo");
        CHECK_EQ_STR(at_root, "feature/local-x");
        _cleanup_free_ char *below = local_branch_in(t.path, "repo/src/deep");
        CHECK_EQ_STR(below, "feature/local-x");

        _cleanup_ci_context_ struct ci_context c = {};
        CHECK_EQ_INT(ci_context_detect(&c), 0);
        CHECK_EQ_STR(c.actor, "erin");
}

TEST(local_detached_head) {
        clear_ci_environment();
        _cleanup_temp_tree_ struct temp_tree t = {};
        temp_tree_make(&t);
        make_dirs(t.path, "repo/.git");
        write_file(t.path, "repo/.git/HEAD", "3f786850e387550fdab836ed7e6dc881de23001b\n");
        _cleanup_free_ char *b = local_branch_in(t.path, "repo");
        CHECK_NULL(b);
}

TEST(local_gitdir_file) {
        clear_ci_environment();
        _cleanup_temp_tree_ struct temp_tree t = {};
        temp_tree_make(&t);
        /* a worktree: .git is a file pointing (relatively) at the real git dir */
        make_dirs(t.path, "main/.git/worktrees/wt");
        make_dirs(t.path, "wt/sub");
        write_file(t.path, "main/.git/HEAD", "ref: refs/heads/main\n");
        write_file(t.path, "main/.git/worktrees/wt/HEAD", "ref: refs/heads/wt-branch\n");
        write_file(t.path, "wt/.git", "gitdir: ../main/.git/worktrees/wt\n");
        _cleanup_free_ char *b = local_branch_in(t.path, "wt/sub");
        CHECK_EQ_STR(b, "wt-branch");

        /* an absolute gitdir */
        _cleanup_free_ char *abs = strdup_printf("gitdir: %s/main/.git\n", t.path);
        write_file(t.path, "wt/.git", abs);
        _cleanup_free_ char *b2 = local_branch_in(t.path, "wt");
        CHECK_EQ_STR(b2, "main");
}

TEST(local_nearest_git_decides) {
        clear_ci_environment();
        _cleanup_temp_tree_ struct temp_tree t = {};
        temp_tree_make(&t);
        make_dirs(t.path, "outer/.git");
        make_dirs(t.path, "outer/inner");
        write_file(t.path, "outer/.git/HEAD", "ref: refs/heads/main\n");
        /* an unusable .git below the outer repository: no branch, not the outer one */
        write_file(t.path, "outer/inner/.git", "not a gitdir line\n");
        _cleanup_free_ char *b = local_branch_in(t.path, "outer/inner");
        CHECK_NULL(b);
        /* HEAD pointing outside refs/heads/ is not a branch */
        write_file(t.path, "outer/.git/HEAD", "ref: refs/remotes/origin/main\n");
        _cleanup_free_ char *b2 = local_branch_in(t.path, "outer");
        CHECK_NULL(b2);
}

int main(void) {
        RUN(verdict_rule_names);
        RUN(unrestricted_secret_everywhere_but_protected_pr);
        RUN(generated_secret_denied_on_protected_pr_too);
        RUN(environment_list);
        RUN(stage_list_and_no_stage);
        RUN(branch_globs);
        RUN(events_normalized_or_raw);
        RUN(no_ci_context_means_no_branch_or_event);
        RUN(matrix);
        RUN(github_push);
        RUN(github_pull_request);
        RUN(github_tag_and_other_events);
        RUN(gitlab);
        RUN(gitlab_merge_request);
        RUN(buildkite);
        RUN(jenkins);
        RUN(provider_requires_true);
        RUN(local_branch_from_head);
        RUN(local_detached_head);
        RUN(local_gitdir_file);
        RUN(local_nearest_git_decides);
        return tap_finish();
}
