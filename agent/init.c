/* `secrets-run init`: a commented starter secrets.yaml for the CI system it detects (GitHub
 * Actions, GitLab CI, or none), which `check` passes as written; it never overwrites a file. */
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>

#include "agent.h"
#include "ci.h"

enum init_ci { INIT_LOCAL, INIT_GITHUB, INIT_GITLAB };

/* The runner's variables when init runs in CI, else the repository's own files: a person
 * runs init at the root of a repository that already has its pipeline. */
static enum init_ci detect_ci(void) {
        enum ci_system s = ci_system_detect();
        struct stat st;
        if (s == CI_GITHUB || (s == CI_LOCAL && stat(".github/workflows", &st) == 0 && S_ISDIR(st.st_mode)))
                return INIT_GITHUB;
        if (s == CI_GITLAB || (s == CI_LOCAL && access(".gitlab-ci.yml", F_OK) == 0))
                return INIT_GITLAB;
        return INIT_LOCAL;
}

/* A name fit for `project` and `owner`: the working directory's and the user's, else a
 * placeholder; only [A-Za-z0-9._-] kept, so the YAML needs no quoting. */
static void plain_name(const char *from, const char *fallback, char *buf, size_t size) {
        size_t n = 0;
        for (const char *p = from; p && *p && n + 1 < size; p++)
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    *p == '.' || *p == '_' || *p == '-')
                        buf[n++] = *p;
        buf[n] = '\0';
        if (n == 0 || buf[0] == '-' || buf[0] == '.')
                snprintf(buf, size, "%s", fallback);
}

static const char *const ci_label[] = {
        [INIT_LOCAL] = "local runs (no CI system detected)",
        [INIT_GITHUB] = "GitHub Actions",
        [INIT_GITLAB] = "GitLab CI",
};

static const char *const ci_variables[] = {
        [INIT_LOCAL] = "#   ci: {type: env}             # a CI system's secret variables, when you add one\n",
        [INIT_GITHUB] = "  ci: {type: env}               # GitHub Actions secrets the workflow step passes as env:\n"
                        "                                #   env: {API_TOKEN: ${{ secrets.API_TOKEN }}}\n",
        [INIT_GITLAB] = "  ci: {type: env}               # GitLab CI/CD variables (Settings > CI/CD > Variables),\n"
                        "                                #   masked and protected for prod\n",
};

static void write_manifest(FILE *f, enum init_ci ci, const char *project, const char *owner) {
        bool has_ci = ci != INIT_LOCAL;
        fprintf(f, "# secrets.yaml: which secrets each step gets, from where, and the policy around them.\n"
                   "# Written by `secrets-run init` for %s. Reference: `man 5 secrets.yaml`.\n"
                   "# Check it: secrets-run check    Try it: secrets-run --dry-run    Run: secrets-run ./test.sh\n"
                   "# Editors complete and check it with the JSON Schema: make the first line\n"
                   "#   # yaml-language-server: $schema=PATH/TO/secrets-run.schema.json\n"
                   "version: 1\nproject: %s\n\n", ci_label[ci], project);
        fprintf(f, "defaults:\n"
                   "  environment: dev               # when neither -e nor $SECRETS_RUN_ENV names one\n"
                   "  stage: test                    # when neither -s nor $SECRETS_RUN_STAGE names one\n"
                   "  backend: local                 # where a secret without from: is read\n\n");
        fprintf(f, "backends:\n"
                   "  local: {type: file}           # the embedded encrypted store, .secrets-run/store:\n"
                   "                                #   secrets-run store init; secrets-run store set NAME\n"
                   "%s"
                   "#   dev: {type: dotenv, path: .env}   # or a local .env file (mode 0600)\n\n",
                ci_variables[ci]);
        fprintf(f, "environments:\n"
                   "  dev: {}                        # your machine\n"
                   "%s"
                   "  prod: {protected: true}        # its secrets need approved_by; never given to a pull request\n\n",
                has_ci ? "  ci: {}                         # the pipeline's tests\n" : "");
        fprintf(f, "secrets:\n"
                   "  TEST_DB_PASSWORD:              # a fresh random value for every run, never stored\n"
                   "    generate: {length: 32}\n"
                   "    owner: %s\n"
                   "    description: password of the throwaway test database\n"
                   "    stages: [test]\n"
                   "    deliver: file                # $SECRETS_DIR/TEST_DB_PASSWORD, path in $TEST_DB_PASSWORD_FILE\n",
                owner);
        if (has_ci)
                fprintf(f, "  API_TOKEN:\n"
                           "    from: \"ci:API_TOKEN\"         # the CI variable API_TOKEN (removed from the step's environment)\n"
                           "    owner: %s\n"
                           "    environments: [ci]           # dev runs never fetch it\n", owner);
        fprintf(f, "  # DEV_API_TOKEN:               # one from the store: secrets-run store set DEV_API_TOKEN\n"
                   "  #   owner: %s\n"
                   "  #   environments: [dev]\n\n", owner);
        fprintf(f, "policy:\n"
                   "  on_leak: fail                  # a secret in the output or artifacts fails the step (123)\n"
                   "  sandbox: auto                  # strict: refuse to run without every sandbox layer\n"
                   "  network: on                    # off: loopback only\n"
                   "  min_secret_length: 8           # shorter values cannot be masked safely\n"
                   "  allow_env_delivery: false      # deliver: env leaks to /proc/PID/environ and crash reports\n"
                   "  require_owner: true\n"
                   "  artifacts: [changed]           # files the step changed are scanned for leaks\n");
}

int command_init(const struct options *o) {
        if (o->args) {
                log_error("init: unexpected argument '%s' [the file is -f PATH, default secrets.yaml]", o->args[0]);
                return 1;
        }
        const char *path = o->manifest ? o->manifest : "secrets.yaml";
        enum init_ci ci = detect_ci();
        char project[64], owner[64];
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        const char *base = cwd ? strrchr(cwd, '/') : NULL;
        plain_name(base ? base + 1 : NULL, "my-project", project, sizeof project);
        const struct passwd *pw = getpwuid(geteuid());
        plain_name(getenv("USER") ? getenv("USER") : pw ? pw->pw_name : NULL, "you", owner, sizeof owner);

        /* O_EXCL: an existing file, or a link planted in its place, is never written */
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                if (errno == EEXIST)
                        log_error("init: %s already exists; not overwriting it [check it with 'secrets-run check', or "
                                  "write elsewhere with -f PATH]", path);
                else
                        log_error("init: cannot create %s: %s", path, strerror(errno));
                return 1;
        }
        _cleanup_fclose_ FILE *f = fdopen(steal_fd(&fd), "w");
        if (!f) {
                log_error("init: cannot write %s: %s", path, strerror(errno));
                return 1;
        }
        write_manifest(f, ci, project, owner);
        if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
                log_error("init: writing %s: %s", path, strerror(errno));
                return 1;
        }
        static const char *const ci_name[] = { [INIT_LOCAL] = "local", [INIT_GITHUB] = "github", [INIT_GITLAB] = "gitlab" };
        if (o->format == FORMAT_JSON) {
                json_t *doc = json_pack("{s:s, s:s}", "written", path, "ci", ci_name[ci]);
                _cleanup_(json_text_freep) char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
                json_decref(doc);
                if (text)
                        printf("%s\n", text);
        } else
                printf("wrote %s for %s\nnext: secrets-run check; secrets-run store init (for the local store); "
                       "secrets-run --dry-run\n", path, ci_label[ci]);
        return 0;
}
