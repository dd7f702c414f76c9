/* Unit tests for the backend interface itself: the credential variables each kind declares
 * from its configuration alone, and a store key that is nowhere. */
#include <stdlib.h>

#include "backends.h"
#include "tap.h"

static char **credentials_of(const struct backend_config *c) {
        char **vars = NULL;
        CHECK_EQ_INT(backend_credential_env(c, &vars), 0);
        return vars;
}

static bool vars_are(char **vars, const char *const *want, size_t n) {
        if (strv_length(vars) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strv_contains(vars, want[i]))
                        return false;
        return true;
}

TEST(file_declares_the_store_key) {
        struct backend_config c = { .name = "local", .kind = BACKEND_KIND_FILE, .key_file = "/k" };
        _cleanup_strv_free_ char **vars = credentials_of(&c);
        CHECK(vars_are(vars, (const char *const[]) { "SECRETS_RUN_STORE_KEY" }, 1));
}

TEST(vault_declares_what_its_auth_reads) {
        struct backend_config token = { .name = "v", .kind = BACKEND_KIND_VAULT, .vault_auth = BACKEND_VAULT_AUTH_TOKEN };
        _cleanup_strv_free_ char **a = credentials_of(&token);
        CHECK(vars_are(a, (const char *const[]) { "VAULT_TOKEN", "BAO_TOKEN" }, 2));

        token.token_env = "MY_TOKEN";
        _cleanup_strv_free_ char **b = credentials_of(&token);
        CHECK(vars_are(b, (const char *const[]) { "MY_TOKEN" }, 1));

        /* the token variable whatever the method: Vault's CLI would act as the caller with it */
        struct backend_config approle = { .name = "v", .kind = BACKEND_KIND_VAULT, .vault_auth = BACKEND_VAULT_AUTH_APPROLE,
                                          .role_id_env = "RID", .secret_id_env = "SID" };
        _cleanup_strv_free_ char **c = credentials_of(&approle);
        CHECK(vars_are(c, (const char *const[]) { "VAULT_TOKEN", "BAO_TOKEN", "RID", "SID" }, 4));

        struct backend_config jwt = { .name = "v", .kind = BACKEND_KIND_VAULT, .vault_auth = BACKEND_VAULT_AUTH_JWT,
                                      .jwt_env = "CI_JWT" };
        _cleanup_strv_free_ char **d = credentials_of(&jwt);
        CHECK(vars_are(d, (const char *const[]) { "VAULT_TOKEN", "BAO_TOKEN", "CI_JWT" }, 3));

        /* without jwt_env: $VAULT_ID_TOKEN, or GitHub's OIDC endpoint with the request token */
        jwt.jwt_env = NULL;
        _cleanup_strv_free_ char **e = credentials_of(&jwt);
        CHECK(vars_are(e, (const char *const[]) { "VAULT_TOKEN", "BAO_TOKEN", "VAULT_ID_TOKEN",
                                                  "ACTIONS_ID_TOKEN_REQUEST_TOKEN" }, 4));
}

TEST(env_exec_generate_declare_none) {
        char *cmd[] = { "pass", "show", NULL };
        const struct backend_config configs[] = {
                { .name = "ci", .kind = BACKEND_KIND_ENV },
                { .name = "pass", .kind = BACKEND_KIND_EXEC, .command = cmd },
                { .name = "generate", .kind = BACKEND_KIND_GENERATE },
        };
        for (size_t i = 0; i < ELEMENTSOF(configs); i++) {
                _cleanup_strv_free_ char **vars = credentials_of(&configs[i]);
                CHECK_EQ_INT(strv_length(vars), 0);
        }
}

TEST(credentials_are_appended) {
        _cleanup_strv_free_ char **vars = NULL;
        CHECK_EQ_INT(strv_extend(&vars, "SRC_SECRET"), 0);
        struct backend_config c = { .name = "local", .kind = BACKEND_KIND_FILE };
        CHECK_EQ_INT(backend_credential_env(&c, &vars), 0);
        CHECK(vars_are(vars, (const char *const[]) { "SRC_SECRET", "SECRETS_RUN_STORE_KEY" }, 2));
}

/* No default is made up below the agent: no variable and no key file is -ENOENT, said so. */
TEST(store_key_nowhere) {
        unsetenv("SECRETS_RUN_STORE_KEY");
        CHECK(!store_key_in_environment());
        _cleanup_secret_ struct secret *key = NULL;
        _cleanup_free_ char *why = NULL;
        CHECK_EQ_INT(store_key_load(NULL, &key, &why), -ENOENT);
        CHECK(key == NULL);
        CHECK(why && strstr(why, "no store key") && strstr(why, "no key file"));
        setenv("SECRETS_RUN_STORE_KEY", "not base64 of 32 bytes", 1);
        CHECK(store_key_in_environment());
        CHECK_EQ_INT(store_key_load(NULL, &key, NULL), -EINVAL);
        unsetenv("SECRETS_RUN_STORE_KEY");
}

int main(void) {
        if (secret_init() < 0)
                return 1;
        RUN(file_declares_the_store_key);
        RUN(vault_declares_what_its_auth_reads);
        RUN(env_exec_generate_declare_none);
        RUN(credentials_are_appended);
        RUN(store_key_nowhere);
        return tap_finish();
}
