/* Unit tests for agent/check.c: each policy finding SR101-SR111 is raised with the right id,
 * severity and line, and not raised for the compliant variant. Manifests are built by hand. */
#include "manifest.h"
#include "tap.h"

/* ---- building manifests by hand ----
 * Arrays have a fixed capacity so that pointers returned by the add_* helpers stay valid while
 * a test adds more; every string is strdup'ed and freed by manifest_free(). */

#define CAPACITY 16

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

static char *xstrdup(const char *s) {
        char *c = s ? strdup(s) : NULL;
        if (s && !c)
                abort();
        return c;
}

static struct mf_pos at(unsigned line, unsigned col) {
        return (struct mf_pos) { .line = line, .col = col };
}

/* Defaults as the schema gives them. */
static struct manifest *manifest_new(void) {
        struct manifest *m = calloc(1, sizeof(*m));
        if (!m)
                abort();
        m->backends = calloc(CAPACITY, sizeof(*m->backends));
        m->environments = calloc(CAPACITY, sizeof(*m->environments));
        m->secrets = calloc(CAPACITY, sizeof(*m->secrets));
        if (!m->backends || !m->environments || !m->secrets)
                abort();
        m->path = xstrdup("secrets.yaml");
        m->version = 1;
        m->policy = (struct mf_policy) {
                .on_leak = ON_LEAK_FAIL, .mask = xstrdup("[REDACTED:{name}]"),
                .min_secret_length = 8, .sandbox = SANDBOX_AUTO, .network = true,
                .require_owner = true, .max_ttl = 3600,
        };
        return m;
}

static struct mf_backend *add_backend(struct manifest *m, const char *name,
                                      enum backend_type type, unsigned line) {
        if (m->n_backends >= CAPACITY)
                abort();
        struct mf_backend *b = &m->backends[m->n_backends++];
        *b = (struct mf_backend) { .name = xstrdup(name), .pos = at(line, 3), .type = type,
                                   .timeout = 30 };
        return b;
}

static void set_vault_address(struct mf_backend *b, const char *address, unsigned line) {
        b->address = xstrdup(address);
        b->address_pos = at(line, 14);
}

static struct mf_environment *add_environment(struct manifest *m, const char *name,
                                              bool protected_, unsigned line) {
        if (m->n_environments >= CAPACITY)
                abort();
        struct mf_environment *e = &m->environments[m->n_environments++];
        *e = (struct mf_environment) { .name = xstrdup(name), .pos = at(line, 3),
                                       .protected_ = protected_ };
        return e;
}

/* A compliant stored secret at `line`, its keys on the following lines (from +1, deliver +2,
 * as +3, environments +4, generate +5), so a test can tell which position a finding used. */
static struct mf_secret *add_secret(struct manifest *m, const char *name, const char *backend,
                                    unsigned line) {
        if (m->n_secrets >= CAPACITY)
                abort();
        struct mf_secret *s = &m->secrets[m->n_secrets++];
        *s = (struct mf_secret) {
                .name = xstrdup(name), .pos = at(line, 3),
                .from_pos = at(line + 1, 11), .deliver_pos = at(line + 2, 14),
                .as = xstrdup(name), .as_pos = at(line + 3, 9),
                .environments_pos = at(line + 4, 19), .generate_pos = at(line + 5, 15),
                .owner = xstrdup("team-a"), .gen_length = 32,
        };
        if (backend) {
                s->backend = xstrdup(backend);
                s->from = strdup_printf("%s:%s", backend, name);
                s->path = xstrdup(name);
        }
        return s;
}

/* A per-run random value: no backend, no owner, no rotation needed. */
static struct mf_secret *add_generated(struct manifest *m, const char *name, unsigned line) {
        struct mf_secret *s = add_secret(m, name, NULL, line);
        s->generated = true;
        free(s->owner);
        s->owner = NULL;
        return s;
}

#define _cleanup_test_manifest_ _cleanup_manifest_
static void findings_donep(struct findings *f) { findings_done(f); }
#define _cleanup_findings_ _cleanup_(findings_donep)

/* The shape of §3's example, with everything compliant: local and vault backends, dev /
 * staging / protected prod, a scoped and approved vault secret, an env-backed CI token and an
 * ephemeral generated one. */
static struct manifest *compliant_manifest(void) {
        struct manifest *m = manifest_new();
        m->default_environment = xstrdup("dev");
        m->default_environment_pos = at(4, 16);
        m->default_backend = xstrdup("local");
        m->default_backend_pos = at(6, 12);
        add_backend(m, "local", BACKEND_FILE, 8);
        add_backend(m, "ci", BACKEND_ENV, 9);
        set_vault_address(add_backend(m, "vault", BACKEND_VAULT, 10),
                          "https://vault.example.com:8200", 12);
        add_environment(m, "dev", false, 20);
        add_environment(m, "staging", false, 21);
        add_environment(m, "prod", true, 22);

        struct mf_secret *s = add_secret(m, "DB_PASSWORD", "vault", 30);
        free(s->path);
        s->path = xstrdup("secret/data/ci/db");   /* KV v2: it has versions and ages */
        s->field = xstrdup("password");
        s->environments = sv("staging", "prod", NULL);
        s->stages = sv("test", "deploy", NULL);
        s->approved_by = sv("alice", "bob", NULL);
        s->has_rotation = true;
        s->rotation_max_age = 30 * 86400;

        s = add_secret(m, "NPM_TOKEN", "ci", 40);
        s->environments = sv("dev", "staging", NULL);
        s->stages = sv("publish", NULL);

        s = add_generated(m, "TEST_DB_PASSWORD", 50);
        s->stages = sv("test", NULL);
        return m;
}

static struct mf_secret *secret_named(struct manifest *m, const char *name) {
        for (size_t i = 0; i < m->n_secrets; i++)
                if (streq(m->secrets[i].name, name))
                        return &m->secrets[i];
        abort();
}

static void run_check(const struct manifest *m, struct findings *f) {
        *f = (struct findings) {};
        CHECK_EQ_INT(check_manifest(m, f), 0);
        for (size_t i = 0; i < f->n; i++)  /* shown in the TAP log when a case fails */
                printf("#   %u:%u: %s SR%03u: %s\n", f->items[i].line, f->items[i].col,
                       f->items[i].severity == SEVERITY_ERROR ? "error" : "warning",
                       (unsigned) f->items[i].id, f->items[i].message);
}

static size_t count_id(const struct findings *f, enum finding_id id) {
        size_t n = 0;
        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].id == id)
                        n++;
        return n;
}

static const struct finding *first_id(const struct findings *f, enum finding_id id) {
        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].id == id)
                        return &f->items[i];
        return NULL;
}

static bool contains(const char *haystack, const char *needle) {
        return haystack && strstr(haystack, needle);
}

/* Asserts exactly one finding `id` with severity and line; returns it (or NULL). */
#define CHECK_ONE(f, id_, sev, line_)                                                  \
        ({                                                                             \
                const struct finding *_x = first_id(&(f), id_);                        \
                CHECK_EQ_INT(count_id(&(f), id_), 1);                                  \
                if (_x) {                                                              \
                        CHECK_EQ_INT(_x->severity, sev);                               \
                        CHECK_EQ_INT(_x->line, line_);                                 \
                }                                                                      \
                _x;                                                                    \
        })

/* ---- cases ---- */

TEST(compliant_manifest_is_clean) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr101_missing_owner) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "NPM_TOKEN");
        free(s->owner);
        s->owner = NULL;
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR101_MISSING_OWNER, SEVERITY_ERROR, 40);
        CHECK(x && contains(x->message, "NPM_TOKEN"));
        CHECK_EQ_INT(f.n, 1);

        /* policy.require_owner: false turns it off */
        m->policy.require_owner = false;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(count_id(&f, SR101_MISSING_OWNER), 0);
}

TEST(sr101_generated_exemption_only_when_ephemeral) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);  /* TEST_DB_PASSWORD has no owner and is ephemeral: fine */
        CHECK_EQ_INT(count_id(&f, SR101_MISSING_OWNER), 0);

        secret_named(m, "TEST_DB_PASSWORD")->gen_store = true;  /* stored: someone owns it */
        findings_done(&f);
        run_check(m, &f);
        CHECK_ONE(f, SR101_MISSING_OWNER, SEVERITY_ERROR, 50);
}

TEST(sr102_env_delivery) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        secret_named(m, "NPM_TOKEN")->deliver = DELIVER_ENV;
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR102_ENV_DELIVERY, SEVERITY_ERROR, 42);
        CHECK(x && contains(x->message, "policy.allow_env_delivery: true"));
        CHECK(x && contains(x->message, "/proc/PID/environ"));
        CHECK(x && contains(x->message, "crash dumps"));
        CHECK_EQ_INT(f.n, 1);

        m->policy.allow_env_delivery = true;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);

        /* fd and file delivery never need the policy */
        m->policy.allow_env_delivery = false;
        secret_named(m, "NPM_TOKEN")->deliver = DELIVER_FD;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr103_protected_without_approval) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "DB_PASSWORD");
        strv_free(s->approved_by);
        s->approved_by = NULL;
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR103_PROTECTED_UNAPPROVED, SEVERITY_ERROR, 34);
        CHECK(x && contains(x->message, "'prod'"));
        CHECK(x && contains(x->message, "DB_PASSWORD"));
        CHECK_EQ_INT(f.n, 1);

        /* an empty list is no approval either */
        s->approved_by = calloc(1, sizeof(char *));
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(count_id(&f, SR103_PROTECTED_UNAPPROVED), 1);

        /* staging only: no protected environment reached, no approval needed */
        strv_free(s->environments);
        s->environments = sv("staging", NULL);
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr103_unscoped_secret_reaches_protected) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "NPM_TOKEN");
        strv_free(s->environments);
        s->environments = NULL;  /* every environment, prod included */
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR103_PROTECTED_UNAPPROVED, SEVERITY_ERROR, 40);
        CHECK(x && contains(x->message, "'prod'"));

        s->approved_by = sv("carol", NULL);
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(count_id(&f, SR103_PROTECTED_UNAPPROVED), 0);
}

TEST(sr104_unscoped_in_protected) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "DB_PASSWORD");
        strv_free(s->environments);
        s->environments = NULL;
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR104_UNSCOPED_PROTECTED, SEVERITY_ERROR, 30);
        CHECK(x && contains(x->message,
                            "reaches protected environment 'prod' because it lists no environments"));
        CHECK_EQ_INT(f.n, 1);  /* it is approved, so no SR103 */

        /* two protected environments are both named */
        add_environment(m, "dr", true, 23);
        findings_done(&f);
        run_check(m, &f);
        x = CHECK_ONE(f, SR104_UNSCOPED_PROTECTED, SEVERITY_ERROR, 30);
        CHECK(x && contains(x->message, "'prod', 'dr'"));

        /* nothing protected: unscoped is fine */
        m->environments[2].protected_ = false;
        m->environments[3].protected_ = false;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr103_sr104_ephemeral_generated_exempt) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        /* unscoped, unapproved, in a manifest with a protected environment */
        CHECK(secret_named(m, "TEST_DB_PASSWORD")->environments == NULL);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);

        secret_named(m, "TEST_DB_PASSWORD")->gen_store = true;
        secret_named(m, "TEST_DB_PASSWORD")->owner = xstrdup("team-a");
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(count_id(&f, SR103_PROTECTED_UNAPPROVED), 1);
        CHECK_EQ_INT(count_id(&f, SR104_UNSCOPED_PROTECTED), 1);
}

TEST(sr105_unknown_backend_with_suggestion) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "DB_PASSWORD");
        free(s->backend);
        s->backend = xstrdup("vualt");
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR105_UNKNOWN_BACKEND, SEVERITY_ERROR, 31);
        CHECK(x && contains(x->message, "'vualt'"));
        CHECK(x && contains(x->message, "did you mean 'vault'?"));
        CHECK_EQ_INT(f.n, 1);

        /* nothing close: no suggestion */
        free(s->backend);
        s->backend = xstrdup("kms");
        findings_done(&f);
        run_check(m, &f);
        x = CHECK_ONE(f, SR105_UNKNOWN_BACKEND, SEVERITY_ERROR, 31);
        CHECK(x && !contains(x->message, "did you mean"));

        /* "db" is two edits from "ci", but replacing every character is not a typo */
        free(s->backend);
        s->backend = xstrdup("db");
        findings_done(&f);
        run_check(m, &f);
        x = CHECK_ONE(f, SR105_UNKNOWN_BACKEND, SEVERITY_ERROR, 31);
        CHECK(x && !contains(x->message, "did you mean"));
        free(s->backend);
        s->backend = xstrdup("cl");  /* one edit from "ci" */
        findings_done(&f);
        run_check(m, &f);
        x = CHECK_ONE(f, SR105_UNKNOWN_BACKEND, SEVERITY_ERROR, 31);
        CHECK(x && contains(x->message, "did you mean 'ci'?"));
}

TEST(sr105_no_from_and_no_default) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        free(m->default_backend);
        m->default_backend = NULL;
        struct mf_secret *s = secret_named(m, "NPM_TOKEN");
        free(s->from);
        free(s->backend);
        s->from = s->backend = NULL;
        s->from_pos = at(0, 0);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR105_UNKNOWN_BACKEND, SEVERITY_ERROR, 40);
        CHECK(x && contains(x->message, "no 'from'"));
        CHECK(x && contains(x->message, "defaults.backend"));
        CHECK_EQ_INT(f.n, 1);  /* the generated secret needs no backend */
}

TEST(sr105_undeclared_default_backend_reported_once) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        free(m->default_backend);
        m->default_backend = xstrdup("lcoal");
        /* a secret without `from` resolves to the default */
        struct mf_secret *s = secret_named(m, "NPM_TOKEN");
        free(s->from);
        free(s->backend);
        s->from = NULL;
        s->backend = xstrdup("lcoal");
        s->from_pos = at(0, 0);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR105_UNKNOWN_BACKEND, SEVERITY_ERROR, 6);
        CHECK(x && contains(x->message, "defaults.backend 'lcoal'"));
        CHECK(x && contains(x->message, "did you mean 'local'?"));
        CHECK_EQ_INT(f.n, 1);
}

TEST(sr106_http_off_loopback) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_backend *b = &m->backends[2];
        free(b->address);
        b->address = xstrdup("http://vault.example.com:8200");
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR106_INSECURE_BACKEND, SEVERITY_ERROR, 12);
        CHECK(x && contains(x->message, "http://"));
        CHECK_EQ_INT(f.n, 1);

        static const char *const remote[] = {
                "HTTP://vault.example.com",
                "http://10.0.0.5:8200",
                "http://localhost.example.com:8200",    /* not localhost */
                "http://127.0.0.1.nip.io:8200",         /* a name, not the address */
                "http://127.0.0.1@vault.example.com/",  /* userinfo, then the real host */
                "http://[2001:db8::1]:8200",
        };
        for (size_t i = 0; i < ELEMENTSOF(remote); i++) {
                free(b->address);
                b->address = xstrdup(remote[i]);
                findings_done(&f);
                run_check(m, &f);
                if (count_id(&f, SR106_INSECURE_BACKEND) != 1)
                        printf("# not flagged: %s\n", remote[i]);
                CHECK_EQ_INT(count_id(&f, SR106_INSECURE_BACKEND), 1);
        }
}

TEST(sr106_loopback_and_https_allowed) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_backend *b = &m->backends[2];
        static const char *const fine[] = {
                "http://127.0.0.1:8200", "http://127.3.2.1", "http://localhost:8200/",
                "http://LOCALHOST", "http://[::1]:8200", "http://user@127.0.0.1:8200/v1",
                "https://vault.example.com", "https://10.0.0.5:8200",
        };
        _cleanup_findings_ struct findings f = {};
        for (size_t i = 0; i < ELEMENTSOF(fine); i++) {
                free(b->address);
                b->address = xstrdup(fine[i]);
                findings_done(&f);
                run_check(m, &f);
                if (f.n)
                        printf("# flagged: %s\n", fine[i]);
                CHECK_EQ_INT(f.n, 0);
        }
        /* no address: $VAULT_ADDR at run time, nothing to check here */
        free(b->address);
        b->address = NULL;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr106_insecure_is_a_warning) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_backend *b = &m->backends[2];
        b->insecure = true;
        b->insecure_pos = at(13, 15);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR106_INSECURE_BACKEND, SEVERITY_WARNING, 13);
        CHECK(x && contains(x->message, "always verified"));
        CHECK_EQ_INT(findings_count(&f, SEVERITY_ERROR), 0);

        /* http:// off loopback is accepted with insecure: true, but still a warning */
        free(b->address);
        b->address = xstrdup("http://vault.example.com:8200");
        findings_done(&f);
        run_check(m, &f);
        CHECK_ONE(f, SR106_INSECURE_BACKEND, SEVERITY_WARNING, 13);
        CHECK_EQ_INT(findings_count(&f, SEVERITY_ERROR), 0);
}

TEST(sr107_short_generated) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "TEST_DB_PASSWORD");
        s->gen_length = 6;
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR107_SHORT_GENERATED, SEVERITY_ERROR, 55);
        CHECK(x && contains(x->message, "min_secret_length"));
        CHECK_EQ_INT(f.n, 1);

        s->gen_length = 8;  /* equal to the minimum is enough (SR122 warns it is weak) */
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(findings_count(&f, SEVERITY_ERROR), 0);
        CHECK_ONE(f, SR122_AMBIGUOUS_FORM, SEVERITY_WARNING, 55);

        s->gen_length = 32;
        m->policy.min_secret_length = 40;
        findings_done(&f);
        run_check(m, &f);
        CHECK_ONE(f, SR107_SHORT_GENERATED, SEVERITY_ERROR, 55);
}

/* SR122: a generated value whose weakest form (base64 at an offset: two characters fewer)
 * carries under 64 bits, at each charset's boundary. */
TEST(sr122_ambiguous_form) {
        static const struct { enum charset c; size_t warn, enough; } bounds[] = {
                { CHARSET_ALNUM, 12, 13 }, { CHARSET_HEX, 17, 18 },
                { CHARSET_BASE64URL, 12, 13 }, { CHARSET_ASCII, 11, 12 },
        };
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "TEST_DB_PASSWORD");
        for (size_t i = 0; i < ELEMENTSOF(bounds); i++) {
                _cleanup_findings_ struct findings f = {};
                s->gen_charset = bounds[i].c;
                s->gen_length = bounds[i].warn;
                run_check(m, &f);
                const struct finding *x = CHECK_ONE(f, SR122_AMBIGUOUS_FORM, SEVERITY_WARNING, 55);
                _cleanup_free_ char *advice = strdup_printf("use length: %zu or more", bounds[i].enough);
                CHECK(x && contains(x->message, "TEST_DB_PASSWORD") && contains(x->message, advice));
                CHECK_EQ_INT(f.n, 1);
                findings_done(&f);
                s->gen_length = bounds[i].enough;
                run_check(m, &f);
                CHECK_EQ_INT(f.n, 0);
        }
}

TEST(sr108_duplicate_delivery_name) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = add_secret(m, "NPM_TOKEN_2", "ci", 60);
        free(s->as);
        s->as = xstrdup("npm_token");  /* NPM_TOKEN_FILE either way */
        s->environments = sv("staging", NULL);
        s->stages = sv("publish", NULL);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR108_DUPLICATE_DELIVERY, SEVERITY_ERROR, 63);
        CHECK(x && contains(x->message, "'NPM_TOKEN'"));
        CHECK(x && contains(x->message, "line 40"));
        CHECK_EQ_INT(f.n, 1);
}

TEST(sr108_disjoint_scopes_allowed) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        /* the same name for staging and prod from different sources: the normal pattern */
        struct mf_secret *a = add_secret(m, "API_KEY_STAGING", "ci", 60);
        free(a->as);
        a->as = xstrdup("API_KEY");
        a->environments = sv("dev", "staging", NULL);
        struct mf_secret *b = add_secret(m, "API_KEY_PROD", "vault", 70);
        free(b->as);
        b->as = xstrdup("API_KEY");
        b->environments = sv("prod", NULL);
        b->approved_by = sv("alice", NULL);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);

        /* overlapping environments but disjoint stages: also fine */
        strv_free(b->environments);
        b->environments = sv("staging", "prod", NULL);
        a->stages = sv("test", NULL);
        b->stages = sv("deploy", NULL);
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);

        /* absent stages mean every stage, so they overlap with [deploy] */
        strv_free(a->stages);
        a->stages = NULL;
        findings_done(&f);
        run_check(m, &f);
        CHECK_ONE(f, SR108_DUPLICATE_DELIVERY, SEVERITY_ERROR, 73);

        /* absent environments mean every environment */
        a->stages = sv("test", NULL);
        strv_free(b->stages);
        b->stages = sv("test", "deploy", NULL);
        strv_free(a->environments);
        a->environments = sv("dev", NULL);
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(count_id(&f, SR108_DUPLICATE_DELIVERY), 0);
        strv_free(b->environments);
        b->environments = NULL;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(count_id(&f, SR108_DUPLICATE_DELIVERY), 1);
}

TEST(sr109_sandbox_off) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        m->policy.sandbox = SANDBOX_OFF;
        m->policy.sandbox_pos = at(90, 12);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        CHECK_ONE(f, SR109_SANDBOX_OFF, SEVERITY_WARNING, 90);
        CHECK_EQ_INT(f.n, 1);

        m->policy.sandbox = SANDBOX_STRICT;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr112_sr113_backends_without_versions) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        _cleanup_findings_ struct findings f = {};
        /* rotation on an env-backed secret: its age is never known */
        secret_named(m, "NPM_TOKEN")->has_rotation = true;
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR113_ROTATION_UNENFORCEABLE, SEVERITY_WARNING, 40);
        CHECK(x && contains(x->message, "NPM_TOKEN") && contains(x->message, "'ci'"));
        CHECK_EQ_INT(f.n, 1);
        secret_named(m, "NPM_TOKEN")->has_rotation = false;

        /* a Vault path that is not KV v2 (dynamic credentials, KV v1) */
        struct mf_secret *db = secret_named(m, "DB_PASSWORD");
        free(db->path);
        db->path = xstrdup("database/creds/ci");
        findings_done(&f);
        run_check(m, &f);
        x = CHECK_ONE(f, SR113_ROTATION_UNENFORCEABLE, SEVERITY_WARNING, 30);
        CHECK(x && contains(x->message, "not KV v2"));

        /* stored generated secrets need a writable, versioned place: an error */
        db->generated = true;
        db->gen_store = true;
        findings_done(&f);
        run_check(m, &f);
        x = CHECK_ONE(f, SR112_UNWRITABLE_STORE, SEVERITY_ERROR, 35);
        CHECK(x && contains(x->message, "DB_PASSWORD") && contains(x->message, "Vault KV v2"));
        CHECK_EQ_INT(f.n, 1);
        free(db->path);
        db->path = xstrdup("secret/data/ci/db");
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr110_rotation_required) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        m->policy.require_rotation = true;
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        /* DB_PASSWORD declares rotation, TEST_DB_PASSWORD is ephemeral: only NPM_TOKEN */
        const struct finding *x = CHECK_ONE(f, SR110_ROTATION_MISSING, SEVERITY_ERROR, 40);
        CHECK(x && contains(x->message, "NPM_TOKEN"));
        CHECK_EQ_INT(f.n, 1);

        secret_named(m, "NPM_TOKEN")->has_rotation = true;
        findings_done(&f);
        run_check(m, &f);
        /* declared, though an env variable's age cannot be known (SR113 says so) */
        CHECK_ONE(f, SR113_ROTATION_UNENFORCEABLE, SEVERITY_WARNING, 40);
        CHECK_EQ_INT(f.n, 1);

        /* a stored generated secret is rotated by apply: it must say when */
        struct mf_secret *g = secret_named(m, "TEST_DB_PASSWORD");
        g->gen_store = true;
        g->owner = xstrdup("team-a");
        g->environments = sv("dev", NULL);
        g->backend = xstrdup(m->default_backend);   /* where the loader stores it */
        g->path = xstrdup(g->name);
        findings_done(&f);
        run_check(m, &f);
        CHECK_ONE(f, SR110_ROTATION_MISSING, SEVERITY_ERROR, 50);

        m->policy.require_rotation = false;
        secret_named(m, "NPM_TOKEN")->has_rotation = false;
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(sr111_unknown_environment) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        struct mf_secret *s = secret_named(m, "NPM_TOKEN");
        strv_free(s->environments);
        s->environments = sv("dev", "stagign", NULL);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        const struct finding *x = CHECK_ONE(f, SR111_UNKNOWN_ENVIRONMENT, SEVERITY_ERROR, 44);
        CHECK(x && contains(x->message, "'stagign'"));
        CHECK(x && contains(x->message, "did you mean 'staging'?"));
        CHECK_EQ_INT(f.n, 1);

        free(m->default_environment);
        m->default_environment = xstrdup("prd");
        findings_done(&f);
        run_check(m, &f);
        CHECK_EQ_INT(count_id(&f, SR111_UNKNOWN_ENVIRONMENT), 2);
        x = first_id(&f, SR111_UNKNOWN_ENVIRONMENT);  /* defaults come first */
        CHECK(x && x->line == 4 && contains(x->message, "did you mean 'prod'?"));
}

TEST(sr111_free_form_without_declarations) {
        _cleanup_test_manifest_ struct manifest *m = manifest_new();
        add_backend(m, "ci", BACKEND_ENV, 5);
        m->default_environment = xstrdup("whatever");
        struct mf_secret *s = add_secret(m, "TOKEN", "ci", 10);
        s->environments = sv("qa", NULL);
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 0);
}

TEST(findings_in_manifest_order_then_sorted) {
        _cleanup_test_manifest_ struct manifest *m = compliant_manifest();
        m->policy.sandbox = SANDBOX_OFF;
        m->policy.sandbox_pos = at(90, 12);
        free(secret_named(m, "DB_PASSWORD")->owner);
        secret_named(m, "DB_PASSWORD")->owner = NULL;
        secret_named(m, "NPM_TOKEN")->deliver = DELIVER_ENV;
        secret_named(m, "TEST_DB_PASSWORD")->gen_length = 4;
        _cleanup_findings_ struct findings f = {};
        run_check(m, &f);
        CHECK_EQ_INT(f.n, 4);
        if (f.n == 4) {
                CHECK_EQ_INT(f.items[0].id, SR109_SANDBOX_OFF);  /* manifest-wide first */
                CHECK_EQ_INT(f.items[1].id, SR101_MISSING_OWNER);
                CHECK_EQ_INT(f.items[2].id, SR102_ENV_DELIVERY);
                CHECK_EQ_INT(f.items[3].id, SR107_SHORT_GENERATED);
                findings_sort(&f);
                CHECK_EQ_INT(f.items[0].line, 30);
                CHECK_EQ_INT(f.items[3].line, 90);
        }
        CHECK_EQ_INT(findings_count(&f, SEVERITY_ERROR), 3);
        CHECK_EQ_INT(findings_count(&f, SEVERITY_WARNING), 1);
        CHECK(!findings_have_invalid(&f));
}

/* ---- through the YAML loader: positions as a user sees them ---- */

static int load_and_check(const char *yaml, struct findings *f) {
        _cleanup_manifest_ struct manifest *m = NULL;
        *f = (struct findings) {};
        int r = manifest_load_buffer("secrets.yaml", yaml, strlen(yaml), &m, f);
        if (r < 0) {
                for (size_t i = 0; i < f->n; i++)
                        printf("# load: %u:%u SR%03u %s\n", f->items[i].line, f->items[i].col,
                               (unsigned) f->items[i].id, f->items[i].message);
                return r;
        }
        r = check_manifest(m, f);
        findings_sort(f);
        for (size_t i = 0; i < f->n; i++)
                printf("#   %u:%u: SR%03u: %s\n", f->items[i].line, f->items[i].col,
                       (unsigned) f->items[i].id, f->items[i].message);
        return r;
}

TEST(yaml_design_example_findings) {
        /* DESIGN §3's example, abridged: NPM_TOKEN is unowned, unscoped and env-delivered */
        static const char yaml[] =
                "version: 1\n"                                              /* 1 */
                "defaults: {environment: dev, backend: local}\n"            /* 2 */
                "backends:\n"                                               /* 3 */
                "  local: {type: file}\n"                                   /* 4 */
                "  ci: {type: env}\n"                                       /* 5 */
                "  vault: {type: vault, address: \"https://vault.example.com:8200\"}\n"
                "environments:\n"                                           /* 7 */
                "  dev: {}\n"
                "  staging: {}\n"
                "  prod: {protected: true}\n"                               /* 10 */
                "secrets:\n"
                "  DB_PASSWORD:\n"                                          /* 12 */
                "    from: vault:secret/data/ci/db#password\n"
                "    owner: team-db\n"
                "    environments: [staging, prod]\n"                       /* 15 */
                "    approved_by: [alice, bob]\n"
                "  NPM_TOKEN: {from: \"ci:NPM_TOKEN\", stages: [publish], deliver: env}\n"
                "  TEST_DB_PASSWORD:\n"                                     /* 18 */
                "    generate: {length: 32, charset: alnum}\n"
                "    stages: [test]\n";
        _cleanup_findings_ struct findings f = {};
        CHECK_EQ_INT(load_and_check(yaml, &f), 0);
        CHECK_EQ_INT(f.n, 4);
        CHECK_ONE(f, SR101_MISSING_OWNER, SEVERITY_ERROR, 17);
        CHECK_ONE(f, SR102_ENV_DELIVERY, SEVERITY_ERROR, 17);
        CHECK_ONE(f, SR103_PROTECTED_UNAPPROVED, SEVERITY_ERROR, 17);
        CHECK_ONE(f, SR104_UNSCOPED_PROTECTED, SEVERITY_ERROR, 17);
        const struct finding *x = first_id(&f, SR102_ENV_DELIVERY);
        const struct finding *y = first_id(&f, SR101_MISSING_OWNER);
        CHECK(x && y && x->col > y->col);  /* at `deliver`, not at the secret's name */
}

TEST(yaml_positions) {
        static const char yaml[] =
                "version: 1\n"
                "defaults: {backend: lcoal}\n"                              /* 2 */
                "backends:\n"
                "  local: {type: file}\n"
                "  vault:\n"                                                /* 5 */
                "    type: vault\n"
                "    address: http://vault.internal:8200\n"                 /* 7 */
                "environments:\n"
                "  staging: {}\n"
                "  prod: {protected: true}\n"                               /* 10 */
                "secrets:\n"
                "  A:\n"                                                    /* 12 */
                "    from: vualt:kv/a\n"                                    /* 13 */
                "    owner: x\n"
                "    environments: [stagign]\n"                             /* 15 */
                "  B:\n"                                                    /* 16 */
                "    from: vault:kv/b\n"
                "    owner: x\n"
                "    environments: [staging]\n"
                "    as: a\n"                                               /* 20 */
                "  C:\n"
                "    generate: {length: 4}\n"                               /* 22 */
                "    environments: [staging]\n"
                "policy:\n"
                "  sandbox: off\n";                                         /* 25 */
        _cleanup_findings_ struct findings f = {};
        CHECK_EQ_INT(load_and_check(yaml, &f), 0);
        CHECK_EQ_INT(count_id(&f, SR105_UNKNOWN_BACKEND), 2);
        const struct finding *x = first_id(&f, SR105_UNKNOWN_BACKEND);
        CHECK(x && x->line == 2 && contains(x->message, "did you mean 'local'?"));
        bool at_from = false;
        for (size_t i = 0; i < f.n; i++)
                at_from |= f.items[i].id == SR105_UNKNOWN_BACKEND && f.items[i].line == 13 &&
                           contains(f.items[i].message, "did you mean 'vault'?");
        CHECK(at_from);
        CHECK_ONE(f, SR106_INSECURE_BACKEND, SEVERITY_ERROR, 7);
        CHECK_ONE(f, SR111_UNKNOWN_ENVIRONMENT, SEVERITY_ERROR, 15);
        /* A lists only an unknown environment, so it cannot collide with B */
        CHECK_EQ_INT(count_id(&f, SR108_DUPLICATE_DELIVERY), 0);
        CHECK_ONE(f, SR107_SHORT_GENERATED, SEVERITY_ERROR, 22);
        CHECK_ONE(f, SR109_SANDBOX_OFF, SEVERITY_WARNING, 25);
        CHECK_EQ_INT(f.n, 6);
}

TEST(yaml_duplicate_delivery_line) {
        static const char yaml[] =
                "version: 1\n"
                "backends: {ci: {type: env}}\n"
                "secrets:\n"
                "  TOKEN: {from: \"ci:T1\", owner: x}\n"                     /* 4 */
                "  OTHER_TOKEN:\n"
                "    from: ci:T2\n"
                "    owner: x\n"
                "    as: token\n";                                          /* 8 */
        _cleanup_findings_ struct findings f = {};
        CHECK_EQ_INT(load_and_check(yaml, &f), 0);
        const struct finding *x = CHECK_ONE(f, SR108_DUPLICATE_DELIVERY, SEVERITY_ERROR, 8);
        CHECK(x && contains(x->message, "'TOKEN' (line 4)"));
        CHECK_EQ_INT(f.n, 1);
}

int main(void) {
        RUN(compliant_manifest_is_clean);
        RUN(sr101_missing_owner);
        RUN(sr101_generated_exemption_only_when_ephemeral);
        RUN(sr102_env_delivery);
        RUN(sr103_protected_without_approval);
        RUN(sr103_unscoped_secret_reaches_protected);
        RUN(sr104_unscoped_in_protected);
        RUN(sr103_sr104_ephemeral_generated_exempt);
        RUN(sr105_unknown_backend_with_suggestion);
        RUN(sr105_no_from_and_no_default);
        RUN(sr105_undeclared_default_backend_reported_once);
        RUN(sr106_http_off_loopback);
        RUN(sr106_loopback_and_https_allowed);
        RUN(sr106_insecure_is_a_warning);
        RUN(sr107_short_generated);
        RUN(sr122_ambiguous_form);
        RUN(sr108_duplicate_delivery_name);
        RUN(sr108_disjoint_scopes_allowed);
        RUN(sr109_sandbox_off);
        RUN(sr110_rotation_required);
        RUN(sr111_unknown_environment);
        RUN(sr112_sr113_backends_without_versions);
        RUN(sr111_free_form_without_declarations);
        RUN(findings_in_manifest_order_then_sorted);
        RUN(yaml_design_example_findings);
        RUN(yaml_positions);
        RUN(yaml_duplicate_delivery_line);
        return tap_finish();
}
