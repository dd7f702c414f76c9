/* The CI context of a run: which CI system runs us, and the branch, event, repository and
 * actor it says (from the runner's variables, or git for local runs). */
#include <pwd.h>
#include <sys/stat.h>

#include "ci.h"

/* Runners often export variables that do not apply as empty strings (GitHub sets
 * GITHUB_HEAD_REF="" on pushes): empty means unset. */
static const char *env_get(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

static bool env_is_true(const char *name) {
        const char *v = env_get(name);
        return v && streq(v, "true");
}

/* Copies value (NULL stays NULL) into *field. */
static int set_field(char **field, const char *value) {
        if (!value)
                return 0;
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

struct event_name {
        const char *raw, *normalized;
};

static const struct event_name github_events[] = {
        { "pull_request", "pull_request" },
        { "pull_request_target", "pull_request" },
        { "push", "push" },
        { "schedule", "schedule" },
        { "workflow_dispatch", "manual" },
};

static const struct event_name gitlab_events[] = {
        { "merge_request_event", "pull_request" },
        { "external_pull_request_event", "pull_request" },
        { "push", "push" },
        { "schedule", "schedule" },
        { "web", "manual" },
};

static const struct event_name buildkite_events[] = {
        { "schedule", "schedule" },
        { "ui", "manual" },
        { "webhook", "push" },
};

/* The normalized name, or the raw one when the table does not know it. */
static const char *normalize_event(const struct event_name *table, size_t n, const char *raw) {
        if (!raw)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (streq(table[i].raw, raw))
                        return table[i].normalized;
        return raw;
}

static int detect_github(struct ci_context *c) {
        const char *raw = env_get("GITHUB_EVENT_NAME");
        const char *event = normalize_event(github_events, ELEMENTSOF(github_events), raw);
        const char *branch = NULL;
        if (streq_ptr(event, "pull_request"))
                /* GITHUB_REF_NAME is "123/merge" here: the branch is the PR's head. */
                branch = env_get("GITHUB_HEAD_REF");
        else {
                const char *ref_type = env_get("GITHUB_REF_TYPE");
                const char *ref = env_get("GITHUB_REF");
                if (ref_type) {
                        if (streq(ref_type, "branch"))
                                branch = env_get("GITHUB_REF_NAME");
                        if (streq(ref_type, "branch") && !branch && ref &&
                            startswith(ref, "refs/heads/"))
                                branch = ref + strlen("refs/heads/");
                } else if (ref && startswith(ref, "refs/heads/"))
                        branch = ref + strlen("refs/heads/");
        }
        int r;
        if ((r = set_field(&c->provider, "github")) < 0 ||
            (r = set_field(&c->branch, branch)) < 0 ||
            (r = set_field(&c->event, event)) < 0 ||
            (r = set_field(&c->raw_event, raw)) < 0 ||
            (r = set_field(&c->repository, env_get("GITHUB_REPOSITORY"))) < 0 ||
            (r = set_field(&c->actor, env_get("GITHUB_ACTOR"))) < 0 ||
            (r = set_field(&c->run_id, env_get("GITHUB_RUN_ID"))) < 0 ||
            (r = set_field(&c->workflow, env_get("GITHUB_WORKFLOW"))) < 0)
                return r;
        return 0;
}

static int detect_gitlab(struct ci_context *c) {
        const char *raw = env_get("CI_PIPELINE_SOURCE");
        const char *branch = env_get("CI_COMMIT_BRANCH");
        if (!branch)
                branch = env_get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME");
        int r;
        if ((r = set_field(&c->provider, "gitlab")) < 0 ||
            (r = set_field(&c->branch, branch)) < 0 ||
            (r = set_field(&c->event, normalize_event(gitlab_events, ELEMENTSOF(gitlab_events),
                                                      raw))) < 0 ||
            (r = set_field(&c->raw_event, raw)) < 0 ||
            (r = set_field(&c->repository, env_get("CI_PROJECT_PATH"))) < 0 ||
            (r = set_field(&c->actor, env_get("GITLAB_USER_LOGIN"))) < 0 ||
            (r = set_field(&c->run_id, env_get("CI_PIPELINE_ID"))) < 0 ||
            (r = set_field(&c->workflow, env_get("CI_JOB_NAME"))) < 0)
                return r;
        return 0;
}

static int detect_buildkite(struct ci_context *c) {
        const char *raw = env_get("BUILDKITE_SOURCE");
        const char *pr = env_get("BUILDKITE_PULL_REQUEST");
        /* A pull-request build can come from any source (webhook, ui, api): the PR wins. */
        const char *event = pr && !streq(pr, "false") ? "pull_request"
                : normalize_event(buildkite_events, ELEMENTSOF(buildkite_events), raw);
        int r;
        if ((r = set_field(&c->provider, "buildkite")) < 0 ||
            (r = set_field(&c->branch, env_get("BUILDKITE_BRANCH"))) < 0 ||
            (r = set_field(&c->event, event)) < 0 ||
            (r = set_field(&c->raw_event, raw)) < 0 ||
            (r = set_field(&c->repository, env_get("BUILDKITE_REPO"))) < 0 ||
            (r = set_field(&c->actor, env_get("BUILDKITE_BUILD_CREATOR"))) < 0 ||
            (r = set_field(&c->run_id, env_get("BUILDKITE_BUILD_ID"))) < 0 ||
            (r = set_field(&c->workflow, env_get("BUILDKITE_PIPELINE_SLUG"))) < 0)
                return r;
        return 0;
}

static int detect_jenkins(struct ci_context *c) {
        bool pr = env_get("CHANGE_ID") != NULL;
        const char *branch = pr ? env_get("CHANGE_BRANCH") : NULL;
        if (!branch)
                branch = env_get("BRANCH_NAME");
        if (!branch) {
                branch = env_get("GIT_BRANCH");
                if (branch && startswith(branch, "origin/"))
                        branch += strlen("origin/");
        }
        const char *event = pr ? "pull_request" : "push";
        int r;
        if ((r = set_field(&c->provider, "jenkins")) < 0 ||
            (r = set_field(&c->branch, branch && *branch ? branch : NULL)) < 0 ||
            (r = set_field(&c->event, event)) < 0 ||
            (r = set_field(&c->raw_event, event)) < 0 ||
            (r = set_field(&c->repository, env_get("GIT_URL"))) < 0 ||
            (r = set_field(&c->actor, env_get("BUILD_USER_ID"))) < 0 ||
            (r = set_field(&c->run_id, env_get("BUILD_TAG"))) < 0 ||
            (r = set_field(&c->workflow, env_get("JOB_NAME"))) < 0)
                return r;
        return 0;
}

/* Drops trailing whitespace (the newline git writes) in place. */
static void strip_trailing_space(char *s) {
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
                         s[n - 1] == '\t'))
                s[--n] = '\0';
}

/* The git directory for `dotgit` (the path of a `.git` entry): itself if it is a directory;
 * if it is a file (worktrees, submodules), the `gitdir: PATH` it names, relative to the file's
 * directory `dir`. *ret is NULL when dotgit is neither. */
static int resolve_git_dir(const char *dir, const char *dotgit, char **ret) {
        struct stat st;
        *ret = NULL;
        if (stat(dotgit, &st) < 0)
                return 0;
        if (S_ISDIR(st.st_mode)) {
                *ret = strdup(dotgit);
                return *ret ? 0 : -ENOMEM;
        }
        if (!S_ISREG(st.st_mode))
                return 0;
        _cleanup_free_ char *text = NULL;
        int r = read_file_bounded(dotgit, 4096, &text, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !startswith(text, "gitdir:"))
                return 0;
        strip_trailing_space(text);
        const char *target = text + strlen("gitdir:");
        target += strspn(target, " \t");
        if (!*target)
                return 0;
        *ret = target[0] == '/' ? strdup(target) : strdup_printf("%s/%s", dir, target);
        return *ret ? 0 : -ENOMEM;
}

/* The checked-out branch of the git work tree containing the working directory, read from
 * HEAD without running git (which may be absent, slow, or a different version). NULL when
 * there is no repository, HEAD is detached, or anything is unreadable. */
static int local_git_branch(char **ret) {
        *ret = NULL;
        _cleanup_free_ char *dir = getcwd(NULL, 0);
        if (!dir)
                return errno == ENOMEM ? -ENOMEM : 0;
        _cleanup_free_ char *git_dir = NULL;
        for (;;) {
                _cleanup_free_ char *dotgit = strdup_printf("%s/.git",
                                                            streq(dir, "/") ? "" : dir);
                if (!dotgit)
                        return -ENOMEM;
                int r = resolve_git_dir(dir, dotgit, &git_dir);
                if (r < 0)
                        return r;
                struct stat st;
                /* The nearest `.git` decides, even if it turns out to be unusable. */
                if (git_dir || lstat(dotgit, &st) == 0)
                        break;
                char *slash = strrchr(dir, '/');
                if (!slash || streq(dir, "/"))
                        return 0;
                if (slash == dir)
                        slash[1] = '\0';
                else
                        *slash = '\0';
        }
        if (!git_dir)
                return 0;
        _cleanup_free_ char *head_path = strdup_printf("%s/HEAD", git_dir);
        if (!head_path)
                return -ENOMEM;
        _cleanup_free_ char *head = NULL;
        int r = read_file_bounded(head_path, 4096, &head, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !startswith(head, "ref:"))
                return 0;  /* unreadable, or detached (HEAD holds a commit id) */
        strip_trailing_space(head);
        const char *ref = head + strlen("ref:");
        ref += strspn(ref, " \t");
        if (!startswith(ref, "refs/heads/") || !ref[strlen("refs/heads/")])
                return 0;
        *ret = strdup(ref + strlen("refs/heads/"));
        return *ret ? 0 : -ENOMEM;
}

static int detect_local(struct ci_context *c) {
        int r = local_git_branch(&c->branch);
        if (r < 0)
                return r;
        const char *user = env_get("USER");
        if (!user) {
                struct passwd *pw = getpwuid(getuid());
                user = pw ? pw->pw_name : NULL;
        }
        if ((r = set_field(&c->provider, "local")) < 0 ||
            (r = set_field(&c->event, "local")) < 0 ||
            (r = set_field(&c->raw_event, "local")) < 0 ||
            (r = set_field(&c->actor, user)) < 0)
                return r;
        return 0;
}

enum ci_system ci_system_detect(void) {
        if (env_is_true("GITHUB_ACTIONS"))
                return CI_GITHUB;
        if (env_is_true("GITLAB_CI"))
                return CI_GITLAB;
        if (env_is_true("BUILDKITE"))
                return CI_BUILDKITE;
        if (env_get("JENKINS_URL"))
                return CI_JENKINS;
        return CI_LOCAL;
}

int ci_context_detect(struct ci_context *ret) {
        _cleanup_(ci_context_done) struct ci_context c = {};
        int r;
        switch (ci_system_detect()) {
        case CI_GITHUB:    r = detect_github(&c); break;
        case CI_GITLAB:    r = detect_gitlab(&c); break;
        case CI_BUILDKITE: r = detect_buildkite(&c); break;
        case CI_JENKINS:   r = detect_jenkins(&c); break;
        case CI_LOCAL:
        default:           r = detect_local(&c); break;
        }
        if (r < 0)
                return r;
        c.pull_request = streq_ptr(c.event, "pull_request");
        *ret = c;
        c = (struct ci_context) {};
        return 0;
}

void ci_context_done(struct ci_context *c) {
        if (!c)
                return;
        free(c->provider);
        free(c->branch);
        free(c->event);
        free(c->raw_event);
        free(c->repository);
        free(c->actor);
        free(c->run_id);
        free(c->workflow);
        *c = (struct ci_context) {};
}
