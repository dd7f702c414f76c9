/* Unit tests for the manifest loader: the DESIGN §3 example, defaults, every finding class
 * with its id and position, alias bombs, size limits and manifest discovery. */
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <sys/stat.h>

#include "manifest.h"
#include "tap.h"

/* DESIGN §3, verbatim apart from the comments. */
static const char design_example[] =
        "version: 1\n"
        "project: payments-api\n"
        "defaults:\n"
        "  environment: dev\n"
        "  stage: local\n"
        "  backend: local\n"
        "backends:\n"
        "  local: {type: file, path: .secrets-run/store}\n"
        "  ci:    {type: env}\n"
        "  pass:  {type: exec, command: [pass, show]}\n"
        "  vault:\n"
        "    type: vault\n"
        "    address: https://vault.example.com:8200\n"
        "    namespace: team-a\n"
        "    ca_cert: /etc/ssl/vault-ca.pem\n"
        "    timeout: 30s\n"
        "    auth: {method: jwt, mount: jwt, role: ci-build, jwt_env: VAULT_ID_TOKEN}\n"
        "environments:\n"
        "  dev: {}\n"
        "  staging: {}\n"
        "  prod: {protected: true}\n"
        "secrets:\n"
        "  DB_PASSWORD:\n"
        "    from: vault:secret/data/ci/db#password\n"
        "    owner: team-db\n"
        "    description: primary database password\n"
        "    environments: [staging, prod]\n"
        "    stages: [test, deploy]\n"
        "    when: {branches: [main, \"release/*\"], events: [push, schedule]}\n"
        "    deliver: file\n"
        "    as: DB_PASSWORD\n"
        "    rotation: {max_age: 30d, fail_after: 45d}\n"
        "    approved_by: [alice, bob]\n"
        "  NPM_TOKEN: {from: \"ci:NPM_TOKEN\", stages: [publish], deliver: env}\n"
        "  TEST_DB_PASSWORD:\n"
        "    generate: {length: 32, charset: alnum}\n"
        "    stages: [test]\n"
        "policy:\n"
        "  on_leak: fail\n"
        "  mask: \"[REDACTED:{name}]\"\n"
        "  min_secret_length: 8\n"
        "  allow_env_delivery: false\n"
        "  sandbox: auto\n"
        "  network: on\n"
        "  artifacts: [changed]\n"
        "  audit_log: .secrets-run/audit.jsonl\n"
        "  require_owner: true\n"
        "  max_ttl: 1h\n"
        "  allowed_signers: .github/allowed_signers\n"
        "  approval_max_age: 90d\n"
        "  approval_fail_after: 120d\n";

static int load(const char *yaml, struct manifest **m, struct findings *f) {
        return manifest_load_buffer("test/secrets.yaml", yaml, strlen(yaml), m, f);
}

/* The finding with this id at line:col, or NULL; prints what there was when it is missing. */
static const struct finding *find(const struct findings *f, enum finding_id id, unsigned line,
                                  unsigned col) {
        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].id == id && f->items[i].line == line && f->items[i].col == col)
                        return &f->items[i];
        printf("# no SR%03u at %u:%u; findings:\n", (unsigned) id, line, col);
        for (size_t i = 0; i < f->n; i++)
                printf("#   %u:%u SR%03u %s\n", f->items[i].line, f->items[i].col,
                       (unsigned) f->items[i].id, f->items[i].message);
        return NULL;
}

#define CHECK_FINDING(f, id, line, col, msg)                                          \
        do {                                                                          \
                const struct finding *_x = find((f), (id), (line), (col));            \
                CHECK(_x != NULL);                                                    \
                if (_x)                                                               \
                        CHECK_EQ_STR(_x->message, (msg));                             \
        } while (0)

/* Loads yaml expecting failure with exactly one finding: id at line:col with message. */
#define CHECK_ONLY_FINDING(yaml, id, line, col, msg)                                  \
        do {                                                                          \
                struct findings _f = {};                                              \
                struct manifest *_m = (struct manifest *) 0x1;                        \
                CHECK_EQ_INT(load((yaml), &_m, &_f), -EINVAL);                        \
                CHECK(_m == (struct manifest *) 0x1);                                 \
                CHECK_EQ_INT(_f.n, 1);                                                \
                CHECK_FINDING(&_f, (id), (line), (col), (msg));                       \
                findings_done(&_f);                                                   \
        } while (0)

TEST(design_example) {
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        CHECK_EQ_INT(load(design_example, &m, &f), 0);
        CHECK_EQ_INT(f.n, 0);
        CHECK_EQ_STR(f.file, "test/secrets.yaml");
        findings_done(&f);
        if (!m)
                return;
        CHECK_EQ_STR(m->path, "test/secrets.yaml");
        CHECK_EQ_STR(m->dir, "test");
        CHECK_EQ_INT(m->version, 1);
        CHECK_EQ_STR(m->project, "payments-api");
        CHECK_EQ_STR(m->default_environment, "dev");
        CHECK_EQ_INT(m->default_environment_pos.line, 4);
        CHECK_EQ_INT(m->default_environment_pos.col, 16);
        CHECK_EQ_STR(m->default_stage, "local");
        CHECK_EQ_STR(m->default_backend, "local");

        CHECK_EQ_INT(m->n_backends, 4);
        const struct mf_backend *b = manifest_find_backend(m, "local");
        CHECK(b && b->type == BACKEND_FILE);
        CHECK_EQ_STR(b ? b->path : NULL, ".secrets-run/store");
        CHECK_EQ_INT(b ? b->timeout : 0, 30);
        CHECK_EQ_INT(b ? b->pos.line : 0, 8);
        b = manifest_find_backend(m, "ci");
        CHECK(b && b->type == BACKEND_ENV && !b->path);
        b = manifest_find_backend(m, "pass");
        CHECK(b && b->type == BACKEND_EXEC && strv_length(b->command) == 2);
        CHECK_EQ_STR(b && b->command ? b->command[1] : NULL, "show");
        b = manifest_find_backend(m, "vault");
        CHECK(b && b->type == BACKEND_VAULT);
        if (b) {
                CHECK_EQ_STR(b->address, "https://vault.example.com:8200");
                CHECK_EQ_INT(b->address_pos.line, 13);
                CHECK_EQ_INT(b->address_pos.col, 14);
                CHECK_EQ_STR(b->namespace_, "team-a");
                CHECK_EQ_STR(b->ca_cert, "/etc/ssl/vault-ca.pem");
                CHECK_EQ_INT(b->auth, VAULT_AUTH_JWT);
                CHECK_EQ_STR(b->auth_mount, "jwt");
                CHECK_EQ_STR(b->auth_role, "ci-build");
                CHECK_EQ_STR(b->jwt_env, "VAULT_ID_TOKEN");
                CHECK(!b->insecure && !b->token_env);
        }
        CHECK(manifest_find_backend(m, "nope") == NULL);

        CHECK_EQ_INT(m->n_environments, 3);
        const struct mf_environment *e = manifest_find_environment(m, "prod");
        CHECK(e && e->protected_);
        CHECK_EQ_INT(e ? e->pos.line : 0, 21);
        e = manifest_find_environment(m, "dev");
        CHECK(e && !e->protected_);

        CHECK_EQ_INT(m->n_secrets, 3);
        const struct mf_secret *s = manifest_find_secret(m, "DB_PASSWORD");
        CHECK(s != NULL);
        if (s) {
                CHECK_EQ_INT(s->pos.line, 23);
                CHECK_EQ_INT(s->pos.col, 3);
                CHECK_EQ_STR(s->from, "vault:secret/data/ci/db#password");
                CHECK_EQ_STR(s->backend, "vault");
                CHECK_EQ_STR(s->path, "secret/data/ci/db");
                CHECK_EQ_STR(s->field, "password");
                CHECK_EQ_INT(s->version, 0);
                CHECK(!s->generated);
                CHECK_EQ_STR(s->owner, "team-db");
                CHECK_EQ_STR(s->description, "primary database password");
                CHECK(strv_length(s->environments) == 2 && strv_contains(s->environments, "prod"));
                CHECK(strv_contains(s->stages, "deploy"));
                CHECK(strv_contains(s->when_branches, "release/*"));
                CHECK(strv_contains(s->when_events, "schedule"));
                CHECK_EQ_INT(s->deliver, DELIVER_FILE);
                CHECK_EQ_STR(s->as, "DB_PASSWORD");
                CHECK(s->has_rotation);
                CHECK_EQ_INT(s->rotation_max_age, 30 * 86400);
                CHECK_EQ_INT(s->rotation_fail_after, 45 * 86400);
                CHECK_EQ_INT(strv_length(s->approved_by), 2);
                /* each name's own place, for the approval findings */
                CHECK(s->approved_by_item_pos && s->approved_by_item_pos[0].line == 33 &&
                      s->approved_by_item_pos[0].col == 19 && s->approved_by_item_pos[1].col == 26);
        }
        s = manifest_find_secret(m, "NPM_TOKEN");
        CHECK(s && s->deliver == DELIVER_ENV);
        CHECK_EQ_INT(s ? s->deliver_pos.line : 0, 34);
        CHECK_EQ_STR(s ? s->backend : NULL, "ci");
        CHECK_EQ_STR(s ? s->path : NULL, "NPM_TOKEN");
        CHECK(s && !s->field && !s->environments && !s->has_rotation);
        s = manifest_find_secret(m, "TEST_DB_PASSWORD");
        CHECK(s && s->generated && !s->backend && !s->from);
        CHECK_EQ_INT(s ? s->gen_length : 0, 32);
        CHECK(s && s->gen_charset == CHARSET_ALNUM);
        CHECK(s && !s->gen_store);
        CHECK_EQ_INT(s ? s->generate_pos.line : 0, 36);

        CHECK_EQ_INT(m->policy.on_leak, ON_LEAK_FAIL);
        CHECK_EQ_STR(m->policy.mask, "[REDACTED:{name}]");
        CHECK_EQ_INT(m->policy.min_secret_length, 8);
        CHECK(!m->policy.allow_env_delivery);
        CHECK_EQ_INT(m->policy.sandbox, SANDBOX_AUTO);
        CHECK_EQ_INT(m->policy.sandbox_pos.line, 43);
        CHECK(m->policy.network);
        CHECK(strv_length(m->policy.artifacts) == 1 && streq(m->policy.artifacts[0], "changed"));
        CHECK_EQ_STR(m->policy.audit_log, ".secrets-run/audit.jsonl");
        CHECK(m->policy.require_owner && !m->policy.require_rotation);
        CHECK_EQ_INT(m->policy.max_ttl, 3600);
        CHECK_EQ_STR(m->policy.allowed_signers, ".github/allowed_signers");
        CHECK(!m->policy.approvals);
        CHECK_EQ_INT(m->policy.approval_max_age, 90 * 86400);
        CHECK_EQ_INT(m->policy.approval_fail_after, 120 * 86400);

        unsigned char digest[32];
        crypto_hash_sha256(digest, (const unsigned char *) design_example, strlen(design_example));
        CHECK(memcmp(digest, m->sha256, 32) == 0);
}

TEST(defaults_when_absent) {
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        CHECK_EQ_INT(load("version: 1\n"
                          "defaults: {backend: store}\n"
                          "backends:\n"
                          "  store: {type: file}\n"
                          "  v: {type: vault}\n"
                          "environments: {dev: ~, prod: }\n"
                          "secrets:\n"
                          "  API_KEY:\n"
                          "  TOKEN: {generate: }\n"
                          "  OTHER: {generate: {charset: hex, store: yes}}\n", &m, &f), 0);
        CHECK_EQ_INT(f.n, 0);
        findings_done(&f);
        if (!m)
                return;
        CHECK(!m->project && !m->default_environment && !m->default_stage);
        const struct mf_backend *b = manifest_find_backend(m, "store");
        CHECK_EQ_STR(b ? b->path : NULL, ".secrets-run/store");
        CHECK_EQ_INT(b ? b->timeout : 0, 30);
        b = manifest_find_backend(m, "v");
        CHECK(b && b->auth == VAULT_AUTH_NONE && !b->address && b->address_pos.line == 0);
        CHECK_EQ_INT(m->n_environments, 2);
        CHECK(!manifest_find_environment(m, "prod")->protected_);

        const struct mf_secret *s = manifest_find_secret(m, "API_KEY");
        CHECK_EQ_STR(s ? s->backend : NULL, "store");   /* defaults.backend */
        CHECK_EQ_STR(s ? s->path : NULL, "API_KEY");   /* the secret's name */
        CHECK_EQ_STR(s ? s->as : NULL, "API_KEY");
        CHECK(s && s->deliver == DELIVER_FILE && s->deliver_pos.line == 0);
        CHECK(s && !s->environments && !s->stages && !s->when_branches && !s->approved_by);
        CHECK(s && !s->generated && !s->owner && !s->has_rotation);
        s = manifest_find_secret(m, "TOKEN");
        CHECK(s && s->generated && s->gen_length == 32 && s->gen_charset == CHARSET_ALNUM);
        CHECK(s && !s->gen_store && !s->backend && !s->path);
        s = manifest_find_secret(m, "OTHER");
        CHECK(s && s->gen_charset == CHARSET_HEX && s->gen_store && s->gen_length == 32);

        CHECK_EQ_INT(m->policy.on_leak, ON_LEAK_FAIL);
        CHECK_EQ_STR(m->policy.mask, "[REDACTED:{name}]");
        CHECK_EQ_INT(m->policy.min_secret_length, 8);
        CHECK(!m->policy.allow_env_delivery);
        CHECK(m->policy.sandbox == SANDBOX_AUTO && m->policy.sandbox_pos.line == 0);
        CHECK(m->policy.network);
        CHECK(strv_length(m->policy.artifacts) == 1 && streq(m->policy.artifacts[0], "changed"));
        CHECK(!m->policy.audit_log);
        CHECK(m->policy.require_owner && !m->policy.require_rotation);
        CHECK_EQ_INT(m->policy.max_ttl, 3600);
}

TEST(approval_policy) {
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        CHECK_EQ_INT(load("version: 1\n"
                          "policy:\n"
                          "  approvals: ci/approvals.txt\n"
                          "  approval_max_age: 90d\n"
                          "  approval_fail_after: 30d\n"
                          "  allowed_signer: x\n", &m, &f), -EINVAL);
        CHECK(find(&f, SR004_INVALID_VALUE, 5, 24));   /* fail_after shorter than max_age */
        const struct finding *x = find(&f, SR002_UNKNOWN_KEY, 6, 3);
        CHECK(x && strstr(x->message, "did you mean 'allowed_signers'?"));
        CHECK_EQ_INT(f.n, 2);
        findings_done(&f);
}

TEST(no_default_backend) {
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        CHECK_EQ_INT(load("version: 1\nsecrets: {X: }\n", &m, &f), 0);
        findings_done(&f);
        const struct mf_secret *s = manifest_find_secret(m, "X");
        CHECK(s && !s->backend);   /* check reports it, the loader doesn't guess */
        CHECK_EQ_STR(s ? s->path : NULL, "X");
}

TEST(scalars_and_lists) {
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        CHECK_EQ_INT(load("version: 1\n"
                          "project: 2024\n"                   /* a plain number is a string here */
                          "environments: {prod: {protected: YES}}\n"
                          "secrets:\n"
                          "  A:\n"
                          "    from: 'b:p?version=3#f'\n"
                          "    stages: test\n"             /* one string = a one-element list */
                          "    environments: prod\n"
                          "    approved_by: []\n"
                          "    when: {branches: main}\n"
                          "    deliver: fd\n"
                          "    as: A_FILE\n"
                          "policy:\n"
                          "  network: false\n"
                          "  sandbox: off\n"
                          "  on_leak: warn\n"
                          "  artifacts: []\n"
                          "  require_owner: Off\n"
                          "  min_secret_length: 12\n"
                          "  max_ttl: 1h30m\n", &m, &f), 0);
        CHECK_EQ_INT(f.n, 0);
        findings_done(&f);
        if (!m)
                return;
        CHECK_EQ_STR(m->project, "2024");
        CHECK(manifest_find_environment(m, "prod")->protected_);
        const struct mf_secret *s = manifest_find_secret(m, "A");
        CHECK_EQ_STR(s->backend, "b");
        CHECK_EQ_STR(s->path, "p");
        CHECK_EQ_STR(s->field, "f");
        CHECK_EQ_INT(s->version, 3);
        CHECK(strv_length(s->stages) == 1 && streq(s->stages[0], "test"));
        CHECK(strv_length(s->environments) == 1 && streq(s->environments[0], "prod"));
        CHECK(s->approved_by && strv_length(s->approved_by) == 0);
        CHECK(strv_length(s->when_branches) == 1 && !s->when_events);
        CHECK_EQ_INT(s->when_pos.line, 10);
        CHECK_EQ_INT(s->deliver, DELIVER_FD);
        CHECK_EQ_STR(s->as, "A_FILE");
        CHECK_EQ_INT(s->as_pos.line, 12);
        CHECK(!m->policy.network);
        CHECK_EQ_INT(m->policy.sandbox, SANDBOX_OFF);
        CHECK_EQ_INT(m->policy.on_leak, ON_LEAK_WARN);
        CHECK(m->policy.artifacts && strv_length(m->policy.artifacts) == 0);  /* none, not default */
        CHECK(!m->policy.require_owner);
        CHECK_EQ_INT(m->policy.min_secret_length, 12);
        CHECK_EQ_INT(m->policy.max_ttl, 5400);
}

TEST(aliases_are_shared) {
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        CHECK_EQ_INT(load("version: 1\n"
                          "secrets:\n"
                          "  A: {stages: &st [test, deploy], owner: &o team-a}\n"
                          "  B: {stages: *st, owner: *o}\n", &m, &f), 0);
        CHECK_EQ_INT(f.n, 0);
        findings_done(&f);
        const struct mf_secret *b = manifest_find_secret(m, "B");
        CHECK(b && strv_length(b->stages) == 2 && streq(b->stages[1], "deploy"));
        CHECK_EQ_STR(b ? b->owner : NULL, "team-a");
        manifest_free(steal_pointer(&m));

        /* many anchors (the table grows), and a redefined anchor: the latest wins */
        _cleanup_free_ char *yaml = strdup("version: 1\nsecrets:\n");
        for (int i = 0; yaml && i < 40; i++) {
                char *t = strdup_printf("%s  S%d: {owner: &o%d owner-%d}\n", yaml, i, i % 30, i);
                free(yaml);
                yaml = t;
        }
        char *t = yaml ? strdup_printf("%s  LAST: {owner: *o5}\n", yaml) : NULL;
        free(yaml);
        yaml = t;
        CHECK(yaml != NULL);
        CHECK_EQ_INT(yaml ? load(yaml, &m, &f) : -1, 0);
        findings_done(&f);
        CHECK_EQ_STR(manifest_find_secret(m, "LAST") ? manifest_find_secret(m, "LAST")->owner : NULL,
                     "owner-35");
}

TEST(unknown_key_suggestion) {
        CHECK_ONLY_FINDING("version: 1\nenviroments: {}\n", SR002_UNKNOWN_KEY, 2, 1,
                           "unknown key 'enviroments' (did you mean 'environments'?)");
        /* short keys: one edit at most */
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  b: {type: env, tmeout: 5s}\n",
                           SR002_UNKNOWN_KEY, 3, 18, "unknown key 'tmeout' (did you mean 'timeout'?)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {ass: X}}\n", SR002_UNKNOWN_KEY, 2, 15,
                           "unknown key 'ass' (did you mean 'as'?)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {az: X}}\n", SR002_UNKNOWN_KEY, 2, 15,
                           "unknown key 'az' (did you mean 'as'?)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {zz: X}}\n", SR002_UNKNOWN_KEY, 2, 15,
                           "unknown key 'zz'");
        CHECK_ONLY_FINDING("version: 1\npolicy: {colour: blue}\n", SR002_UNKNOWN_KEY, 2, 10,
                           "unknown key 'colour'");
}

TEST(key_of_another_backend_type) {
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  v:\n    type: vault\n    command: [x]\n",
                           SR002_UNKNOWN_KEY, 5, 5, "key 'command' is not valid for a backend of type vault");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  e: {type: env, path: x}\n",
                           SR002_UNKNOWN_KEY, 3, 18, "key 'path' is not valid for a backend of type env");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  v: {type: vault, auth: {method: token, jwt_env: X}}\n",
                           SR002_UNKNOWN_KEY, 3, 42, "key 'jwt_env' is not valid for auth method token");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  v: {type: vault, auth: {method: cert, role: r}}\n",
                           SR002_UNKNOWN_KEY, 3, 41, "key 'role' is not valid for auth method cert");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  v: {type: vault, auth: {method: jwt, token_file: /t}}\n",
                           SR002_UNKNOWN_KEY, 3, 40, "key 'token_file' is not valid for auth method jwt");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  v: {type: vault, auth: {method: kubernetes, role: r, name: n}}\n",
                           SR002_UNKNOWN_KEY, 3, 56, "key 'name' is not valid for auth method kubernetes");
}

TEST(backend_required_keys) {
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  p: {type: exec}\n", SR006_MISSING_KEY, 3, 3,
                           "backend 'p' of type exec needs 'command'");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  p: {type: exec, command: pass show}\n",
                           SR003_WRONG_TYPE, 3, 28,
                           "'command' must be a sequence of strings, got a scalar (write it as [program, arg, ...])");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  p: {timeout: 1m}\n", SR006_MISSING_KEY, 3, 3,
                           "backend 'p' needs 'type' (file, env, exec, vault or dotenv)");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  p: {type: s3}\n", SR004_INVALID_VALUE, 3, 13,
                           "'type' must be one of file, env, exec, vault, dotenv, got 's3'");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  v: {type: vault, auth: {role: r}}\n",
                           SR006_MISSING_KEY, 3, 20, "'auth' needs 'method' (token, approle, jwt, kubernetes or cert)");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  v: {type: vault, auth: {method: kubernetes}}\n",
                           SR006_MISSING_KEY, 3, 20, "auth method kubernetes needs 'role'");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  -v: {type: env}\n", SR004_INVALID_VALUE, 3, 3,
                           "'-v' is not a valid backend name (letters, digits, _, -; not starting with a digit or -)");
}

TEST(duplicate_key) {
        CHECK_ONLY_FINDING("version: 1\n"
                           "secrets:\n"
                           "  A:\n"
                           "    owner: x\n"
                           "    description: d\n"
                           "    owner: y\n", SR005_DUPLICATE_KEY, 6, 5,
                           "duplicate key 'owner' (first at line 4)");
        /* the first value is the one kept */
        struct findings f = {};
        struct manifest *m = NULL;
        CHECK_EQ_INT(load("version: 1\nproject: a\nproject: b\nproject: c\n", &m, &f), -EINVAL);
        CHECK_EQ_INT(f.n, 2);
        CHECK_FINDING(&f, SR005_DUPLICATE_KEY, 3, 1, "duplicate key 'project' (first at line 2)");
        CHECK_FINDING(&f, SR005_DUPLICATE_KEY, 4, 1, "duplicate key 'project' (first at line 2)");
        findings_done(&f);
}

TEST(wrong_type) {
        CHECK_ONLY_FINDING("version: 1\nsecrets:\n  A:\n    environments: {prod: 1}\n",
                           SR003_WRONG_TYPE, 4, 19, "'environments' must be a sequence of strings, got a mapping");
        CHECK_ONLY_FINDING("version: 1\nsecrets:\n  A:\n    owner:\n", SR003_WRONG_TYPE, 4, 5,
                           "'owner' has no value (expected a string)");
        CHECK_ONLY_FINDING("version: 1\nproject: [a]\n", SR003_WRONG_TYPE, 2, 10,
                           "'project' must be a string, got a sequence");
        CHECK_ONLY_FINDING("version: 1\nsecrets: [A, B]\n", SR003_WRONG_TYPE, 2, 10,
                           "'secrets' must be a mapping, got a sequence");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {stages: [a, {b: c}]}}\n", SR003_WRONG_TYPE, 2, 27,
                           "items of 'stages' must be strings, got a mapping");
        CHECK_ONLY_FINDING("version: 1\npolicy: {require_owner: \"true\"}\n", SR003_WRONG_TYPE, 2, 25,
                           "'require_owner' must be true or false, got a quoted string");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {generate: true}}\n", SR003_WRONG_TYPE, 2, 25,
                           "'generate' must be a mapping, got a scalar");
        CHECK_ONLY_FINDING("- version: 1\n", SR003_WRONG_TYPE, 1, 1,
                           "the manifest must be a mapping, got a sequence");
        CHECK_ONLY_FINDING("version: 1\n{a: b}: c\n", SR003_WRONG_TYPE, 2, 1,
                           "a key must be a string, got a mapping");
}

TEST(bad_values) {
        CHECK_ONLY_FINDING("version: 1\nsecrets:\n  DB-PASSWORD: {}\n", SR004_INVALID_VALUE, 3, 3,
                           "'DB-PASSWORD' is not a valid secret name (letters, digits, _; not starting with a digit)");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  b: {type: env, timeout: 5 minutes}\n",
                           SR004_INVALID_VALUE, 3, 27,
                           "'timeout' must be a duration like 90s, 15m, 1h, 7d, got '5 minutes'");
        CHECK_ONLY_FINDING("version: 1\nbackends:\n  b: {type: env, timeout: 0s}\n",
                           SR004_INVALID_VALUE, 3, 27, "'timeout' must be longer than 0s");
        CHECK_ONLY_FINDING("version: 1\nsecrets:\n  A:\n    deliver: pipe\n", SR004_INVALID_VALUE, 4, 14,
                           "'deliver' must be one of file, fd, env, got 'pipe'");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {generate: {length: 0}}}\n", SR004_INVALID_VALUE, 2, 34,
                           "'length' must be an integer from 1 to 4096, got '0'");
        CHECK_ONLY_FINDING("version: 1\npolicy: {min_secret_length: 0x10}\n", SR004_INVALID_VALUE, 2, 29,
                           "'min_secret_length' must be an integer from 1 to 4096, got '0x10'");
        CHECK_ONLY_FINDING("version: 1\npolicy: {network: maybe}\n", SR004_INVALID_VALUE, 2, 19,
                           "'network' must be one of on, off, got 'maybe'");
        CHECK_ONLY_FINDING("version: 1\nenvironments: {prod: {protected: sure}}\n", SR004_INVALID_VALUE, 2, 34,
                           "'protected' must be true or false, got 'sure'");
        CHECK_ONLY_FINDING("version: 1\nenvironments: {'pr od': {}}\n", SR004_INVALID_VALUE, 2, 16,
                           "'pr od' is not a valid environment name (letters, digits, _, ., -)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {as: 9X}}\n", SR004_INVALID_VALUE, 2, 19,
                           "'9X' is not a valid delivery name for 'as' (letters, digits, _; not starting with a digit)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {stages: []}}\n", SR004_INVALID_VALUE, 2, 23,
                           "'stages' must not be empty (leave it out to mean any)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {rotation: {max_age: 30d, fail_after: 15d}}}\n",
                           SR004_INVALID_VALUE, 2, 52,
                           "'fail_after' (15d) must not be shorter than 'max_age' (30d)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {rotation: {fail_after: 15d}}}\n",
                           SR006_MISSING_KEY, 2, 15, "'rotation' needs 'max_age'");
        CHECK_ONLY_FINDING("version: 1\nproject: \"a\\0b\"\n", SR004_INVALID_VALUE, 2, 10,
                           "'project' must not contain a NUL character");
        CHECK_ONLY_FINDING("version: 1\nproject: !custom x\n", SR004_INVALID_VALUE, 2, 10,
                           "YAML tags are not supported, got '!custom'");
}

TEST(long_values_are_shortened) {
        struct findings f = {};
        struct manifest *m = NULL;
        CHECK_EQ_INT(load("version: 1\nsecrets: {A: {deliver: "
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}\n",
                          &m, &f), -EINVAL);
        CHECK_EQ_INT(f.n, 1);
        CHECK(f.n == 1 && strlen(f.items[0].message) < 120);
        CHECK(f.n == 1 && strstr(f.items[0].message, "aaa...'") != NULL);
        findings_done(&f);
}

TEST(bad_reference) {
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {from: nocolon}}\n", SR004_INVALID_VALUE, 2, 21,
                           "invalid reference 'nocolon' (expected BACKEND:PATH[#FIELD])");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {from: ':path'}}\n", SR004_INVALID_VALUE, 2, 21,
                           "invalid reference ':path' (expected BACKEND:PATH[#FIELD])");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {from: 'vault:'}}\n", SR004_INVALID_VALUE, 2, 21,
                           "invalid reference 'vault:' (expected BACKEND:PATH[#FIELD])");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {from: 'vault:#f'}}\n", SR004_INVALID_VALUE, 2, 21,
                           "invalid reference 'vault:#f' (expected BACKEND:PATH[#FIELD])");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {from: 'v:p?version=x'}}\n", SR004_INVALID_VALUE, 2, 21,
                           "invalid reference 'v:p?version=x' (expected ?version=N with N a positive integer)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {from: 'v:p?ver=1'}}\n", SR004_INVALID_VALUE, 2, 21,
                           "invalid reference 'v:p?ver=1' (expected ?version=N with N a positive integer)");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {from: 'v:p#'}}\n", SR004_INVALID_VALUE, 2, 21,
                           "invalid reference 'v:p#' (empty field after '#')");
}

TEST(from_and_generate) {
        CHECK_ONLY_FINDING("version: 1\nsecrets:\n  A:\n    from: v:p\n    generate: {}\n",
                           SR004_INVALID_VALUE, 5, 5,
                           "secret 'A' has both 'from' and 'generate'; it takes one of them (or add 'store: true' to 'generate' to keep the generated value at 'from')");
}

TEST(missing_version) {
        CHECK_ONLY_FINDING("", SR006_MISSING_KEY, 1, 1,
                           "missing 'version' (the manifest is empty; start it with 'version: 1')");
        CHECK_ONLY_FINDING("# only a comment\n---\n", SR006_MISSING_KEY, 1, 1,
                           "missing 'version' (the manifest is empty; start it with 'version: 1')");
        CHECK_ONLY_FINDING("project: x\n", SR006_MISSING_KEY, 1, 1, "missing 'version' (add 'version: 1')");
        CHECK_ONLY_FINDING("version: \"1\"\n", SR003_WRONG_TYPE, 1, 10,
                           "'version' must be an integer, got a quoted string");
        CHECK_ONLY_FINDING("version: 1.0\n", SR004_INVALID_VALUE, 1, 10,
                           "'version' must be an integer, got '1.0'");
}

TEST(version_2) {
        /* the keys a newer schema may add are not reported as unknown */
        CHECK_ONLY_FINDING("project: x\nversion: 2\nworkflows: {}\n", SR007_VERSION, 2, 10,
                           "unsupported manifest version 2 (this secrets-run reads version 1)");
        CHECK_ONLY_FINDING("version: 0\n", SR007_VERSION, 1, 10,
                           "unsupported manifest version 0 (this secrets-run reads version 1)");
}

TEST(syntax_error) {
        CHECK_ONLY_FINDING("version: 1\nproject: x\n bad: y\n", SR001_SYNTAX, 3, 5,
                           "mapping values are not allowed in this context");
        CHECK_ONLY_FINDING("version: 1\nsecrets: {A: {}\n", SR001_SYNTAX, 3, 1,
                           "did not find expected ',' or '}' (while parsing a flow mapping at line 2)");
        /* invalid UTF-8: libyaml reports a byte offset, we report its line and column */
        CHECK_ONLY_FINDING("version: 1\nproject: \"a\xff\"\n", SR001_SYNTAX, 2, 12,
                           "invalid leading UTF-8 octet (byte 0xff)");
}

TEST(multiple_documents) {
        CHECK_ONLY_FINDING("version: 1\n---\nversion: 1\n", SR001_SYNTAX, 2, 1,
                           "a manifest is one YAML document, found a second one");
}

TEST(alias_bomb) {
        /* "billion laughs": 9^9 nodes once expanded; stops at the first alias of line 5,
         * where 9*10 + 9*91 nodes so far plus the 820 of *c pass 1000 */
        static const char bomb[] =
                "version: 1\n"
                "a: &a [x, x, x, x, x, x, x, x, x]\n"
                "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
        uint64_t start = now_monotonic_ms();
        CHECK_ONLY_FINDING(bomb, SR001_SYNTAX, 5, 8, "alias expansion exceeds 1000 nodes");
        CHECK(now_monotonic_ms() - start < 1000);

        /* the limit counts every dereference: 200 aliases of a 6-node list is too many */
        _cleanup_free_ char *many = strdup("version: 1\nx: &l [a, b, c, d, e]\ny: [");
        for (int i = 0; many && i < 200; i++) {
                char *t = strdup_printf("%s*l, ", many);
                free(many);
                many = t;
        }
        CHECK(many != NULL);
        if (many) {
                char *t = strdup_printf("%s*l]\n", many);
                free(many);
                many = t;
                struct findings f = {};
                struct manifest *m = NULL;
                CHECK_EQ_INT(load(many, &m, &f), -EINVAL);
                CHECK(f.n == 1 && f.items[0].id == SR001_SYNTAX &&
                      streq(f.items[0].message, "alias expansion exceeds 1000 nodes"));
                findings_done(&f);
        }
}

TEST(bad_anchors) {
        CHECK_ONLY_FINDING("version: 1\nproject: *nope\n", SR001_SYNTAX, 2, 10, "unknown anchor 'nope'");
        /* an alias inside its own anchored node would be a cycle */
        CHECK_ONLY_FINDING("version: 1\nx: &r [a, *r]\n", SR001_SYNTAX, 2, 11, "unknown anchor 'r'");
}

TEST(merge_key) {
        CHECK_ONLY_FINDING("version: 1\n"
                           "secrets:\n"
                           "  A: &base {owner: x}\n"
                           "  B:\n"
                           "    <<: *base\n"
                           "    from: v:p\n", SR004_INVALID_VALUE, 5, 5,
                           "merge keys ('<<') are not supported; write the keys out or alias the whole mapping");
}

TEST(deep_nesting) {
        char deep[512];
        size_t n = 0;
        n += (size_t) snprintf(deep, sizeof deep, "version: 1\nx: ");
        for (int i = 0; i < 100; i++)
                deep[n++] = '[';
        for (int i = 0; i < 100; i++)
                deep[n++] = ']';
        deep[n++] = '\n';
        deep[n] = '\0';
        struct findings f = {};
        struct manifest *m = NULL;
        CHECK_EQ_INT(load(deep, &m, &f), -EINVAL);
        CHECK(f.n == 1 && f.items[0].id == SR001_SYNTAX &&
              streq(f.items[0].message, "nesting is deeper than 64 levels"));
        findings_done(&f);
}

TEST(errors_collected_in_one_pass) {
        struct findings f = {};
        struct manifest *m = (struct manifest *) 0x1;
        CHECK_EQ_INT(load("version: 1\n"
                          "projet: x\n"
                          "backends:\n"
                          "  b: {type: env, timeout: soon}\n"
                          "secrets:\n"
                          "  1BAD: {}\n"
                          "  OK:\n"
                          "    deliver: pipe\n"
                          "    stages: {a: b}\n"
                          "policy: {sandbox: maybe}\n", &m, &f), -EINVAL);
        CHECK(m == (struct manifest *) 0x1);
        CHECK_EQ_INT(f.n, 6);
        CHECK(find(&f, SR002_UNKNOWN_KEY, 2, 1));
        CHECK(find(&f, SR004_INVALID_VALUE, 4, 27));
        CHECK(find(&f, SR004_INVALID_VALUE, 6, 3));
        CHECK(find(&f, SR004_INVALID_VALUE, 8, 14));
        CHECK(find(&f, SR003_WRONG_TYPE, 9, 13));
        CHECK(find(&f, SR004_INVALID_VALUE, 10, 19));
        findings_done(&f);
}

static char *write_temp(const char *dir, const char *name, const char *content, size_t size) {
        char *path = strdup_printf("%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, content, size) < 0) {
                printf("# cannot write %s\n", path);
        }
        safe_close(fd);
        return path;
}

TEST(load_file) {
        char dir[] = "/tmp/test-manifest-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = write_temp(dir, "secrets.yaml", design_example,
                                               strlen(design_example));
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        CHECK_EQ_INT(manifest_load(path, &m, &f), 0);
        CHECK_EQ_STR(f.file, path);
        CHECK_EQ_INT(f.n, 0);
        findings_done(&f);
        CHECK_EQ_STR(m ? m->path : NULL, path);
        CHECK_EQ_STR(m ? m->dir : NULL, dir);
        unsigned char digest[32];
        crypto_hash_sha256(digest, (const unsigned char *) design_example, strlen(design_example));
        CHECK(m && memcmp(digest, m->sha256, 32) == 0);

        /* unreadable: -errno, no finding (the caller prints the error) */
        _cleanup_free_ char *missing = strdup_printf("%s/absent.yaml", dir);
        struct manifest *none = (struct manifest *) 0x1;
        CHECK_EQ_INT(manifest_load(missing, &none, &f), -ENOENT);
        CHECK_EQ_INT(f.n, 0);
        CHECK(none == (struct manifest *) 0x1);
        CHECK_EQ_INT(manifest_load(dir, &none, &f), -EISDIR);
        findings_done(&f);

        unlink(path);
        rmdir(dir);
}

TEST(file_too_large) {
        char dir[] = "/tmp/test-manifest-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        size_t size = MANIFEST_MAX_SIZE + 1;
        _cleanup_free_ char *big = malloc(size);
        CHECK(big != NULL);
        if (!big)
                return;
        memcpy(big, "version: 1\n", 11);
        memset(big + 11, '#', size - 11);
        _cleanup_free_ char *path = write_temp(dir, "big.yaml", big, size);
        struct findings f = {};
        struct manifest *m = (struct manifest *) 0x1;
        CHECK_EQ_INT(manifest_load(path, &m, &f), -EINVAL);
        CHECK(m == (struct manifest *) 0x1);
        CHECK_EQ_INT(f.n, 1);
        CHECK_FINDING(&f, SR001_SYNTAX, 1, 1, "manifest is larger than 1 MiB");
        CHECK_EQ_STR(f.file, path);
        findings_done(&f);

        /* exactly 1 MiB is fine */
        unlink(path);
        free(path);
        path = write_temp(dir, "big.yaml", big, size - 1);
        _cleanup_manifest_ struct manifest *ok = NULL;
        CHECK_EQ_INT(manifest_load(path, &ok, &f), 0);
        findings_done(&f);
        unlink(path);
        rmdir(dir);
}

TEST(discover) {
        char *p = NULL;
        CHECK_EQ_INT(manifest_discover("ci/secrets.yaml", &p), 0);
        CHECK_EQ_STR(p, "ci/secrets.yaml");
        free(p);
        p = NULL;

        const char *saved_env = getenv("SECRETS_RUN_MANIFEST");
        _cleanup_free_ char *saved = saved_env ? strdup(saved_env) : NULL;
        setenv("SECRETS_RUN_MANIFEST", "from-env.yaml", 1);
        CHECK_EQ_INT(manifest_discover(NULL, &p), 0);
        CHECK_EQ_STR(p, "from-env.yaml");
        free(p);
        p = NULL;
        CHECK_EQ_INT(manifest_discover("explicit.yaml", &p), 0);  /* explicit wins */
        CHECK_EQ_STR(p, "explicit.yaml");
        free(p);
        p = NULL;
        setenv("SECRETS_RUN_MANIFEST", "", 1);  /* empty is unset */

        char cwd[PATH_MAX];
        CHECK(getcwd(cwd, sizeof cwd) != NULL);
        char dir[] = "/tmp/test-manifest-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *sub = strdup_printf("%s/a", dir);
        _cleanup_free_ char *subsub = strdup_printf("%s/a/b", dir);
        CHECK_EQ_INT(mkdir(sub, 0700), 0);
        CHECK_EQ_INT(mkdir(subsub, 0700), 0);
        _cleanup_free_ char *top = write_temp(dir, "secrets.yaml", "version: 1\n", 11);
        _cleanup_free_ char *decoy = strdup_printf("%s/secrets.yaml", sub);  /* a directory: skipped */
        CHECK_EQ_INT(mkdir(decoy, 0700), 0);

        CHECK_EQ_INT(chdir(subsub), 0);
        CHECK_EQ_INT(manifest_discover(NULL, &p), 0);
        CHECK_EQ_STR(p, "../../secrets.yaml");
        free(p);
        p = NULL;
        CHECK_EQ_INT(chdir(dir), 0);
        CHECK_EQ_INT(manifest_discover(NULL, &p), 0);
        CHECK_EQ_STR(p, "secrets.yaml");
        free(p);
        p = NULL;

        /* none: only checkable when no ancestor of the temp dir has one */
        unlink(top);
        CHECK_EQ_INT(chdir(subsub), 0);
        if (access("/tmp/secrets.yaml", F_OK) < 0 && access("/secrets.yaml", F_OK) < 0) {
                CHECK_EQ_INT(manifest_discover(NULL, &p), -ENOENT);
                CHECK(p == NULL);
        }
        CHECK_EQ_INT(chdir(cwd), 0);
        rmdir(decoy);
        rmdir(subsub);
        rmdir(sub);
        rmdir(dir);
        if (saved)
                setenv("SECRETS_RUN_MANIFEST", saved, 1);
        else
                unsetenv("SECRETS_RUN_MANIFEST");
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        unsetenv("SECRETS_RUN_MANIFEST");
        RUN(design_example);
        RUN(defaults_when_absent);
        RUN(approval_policy);
        RUN(no_default_backend);
        RUN(scalars_and_lists);
        RUN(aliases_are_shared);
        RUN(unknown_key_suggestion);
        RUN(key_of_another_backend_type);
        RUN(backend_required_keys);
        RUN(duplicate_key);
        RUN(wrong_type);
        RUN(bad_values);
        RUN(long_values_are_shortened);
        RUN(bad_reference);
        RUN(from_and_generate);
        RUN(missing_version);
        RUN(version_2);
        RUN(syntax_error);
        RUN(multiple_documents);
        RUN(alias_bomb);
        RUN(bad_anchors);
        RUN(merge_key);
        RUN(deep_nesting);
        RUN(errors_collected_in_one_pass);
        RUN(load_file);
        RUN(file_too_large);
        RUN(discover);
        return tap_finish();
}
