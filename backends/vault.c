/* The Vault/OpenBao backend: logs in (token, AppRole, JWT), reads KV v1/v2 fields and dynamic
 * credentials, and revokes what it obtained (leases, a login token) when it is closed. */
#include <ctype.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>
#include <strings.h>
#include <time.h>

#include "http-private.h"

#define VAULT_CLOSE_TIMEOUT_MS 10000

/* The variables credentials come from when the manifest names none, as Vault's CLI, GitLab's
 * id_tokens examples and GitHub Actions have them; also declared by vault_credential_env(). */
#define VAULT_TOKEN_ENV "VAULT_TOKEN"
#define VAULT_JWT_ENV "VAULT_ID_TOKEN"
#define GITHUB_OIDC_URL_ENV "ACTIONS_ID_TOKEN_REQUEST_URL"
#define GITHUB_OIDC_TOKEN_ENV "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
/* Where the kubelet projects a pod's service account token. */
#define KUBERNETES_TOKEN_FILE "/var/run/secrets/kubernetes.io/serviceaccount/token"

/* One response per path (and version) per run: two fields of one dynamic secret must come
 * from one request, one lease. Kept as the body in secure memory, not as parsed JSON in the
 * ordinary heap: each use parses it and frees (wipes) the JSON at once. */
struct vault_response {
        char *key;             /* path, or path?version=N */
        struct secret *body;
};


/* A GET done ahead by vault_prefetch(), kept until fetch() asks for it: failures are reported
 * there, as if the request were made then. */
struct vault_pending {
        char *key;
        struct http_result result;
        bool final;            /* result.r and .why are fetch()'s answer as they stand */
};

/* Something with a TTL we keep alive while the step runs: a lease, or the login token. */
struct vault_lease {
        char *id;                      /* NULL for the login token */
        uint64_t ttl_s;                /* as first granted: the increment asked for */
        bool renewable;
        uint64_t renew_at_ms;          /* monotonic; 0 = not to be renewed */
        uint64_t expires_ms;
        bool expiring_noted;           /* lease.expiring emitted */
        /* a certificate PKI issued without a lease (its role's generate_lease is false, the
         * default: builtin/logical/pki/path_roles.go): revoked with MOUNT/revoke by serial */
        char *revoke_url, *serial;
};

/* A mount, as sys/internal/ui/mounts/<path> tells it: mounts of one namespace never nest
 * (Vault's vault/mount.go refuses a mount under another), so a path under a known mount's
 * path is in that mount, and one lookup per mount serves the whole run. */
struct vault_mount {
        char *path;            /* "kv/team/", relative to the namespace we send; ends in '/' */
        char *type;            /* "kv", "database", "pki", ... */
        unsigned kv_version;   /* 1 or 2 for type kv; 0 otherwise */
};

struct vault_state {
        struct http_client *http;
        struct secret *token;
        bool token_from_login;         /* ours to revoke; a caller's token never is */
        struct vault_lease login;      /* the login token's TTL */
        struct vault_response *responses;
        size_t n_responses;
        struct vault_lease *leases;    /* every lease obtained, revoked at close */
        size_t n_leases;
        struct vault_pending *pending; /* prefetched answers not yet taken */
        size_t n_pending;
        uint64_t max_ttl_s;            /* policy.max_ttl: caps renewal increments; 0 = none */
        bool sequential;               /* no prefetch: one request at a time */
        const char *auth;              /* "token", "approle", "jwt", for the identity */
        /* One budget (the backend's timeout, from open) for everything before the step:
         * login, identity, mount lookups, fetches, plan's stats and apply's writes, their
         * retries included. A sealed Vault costs the timeout once, not once per request. */
        uint64_t deadline_ms;
        struct vault_mount *mounts;    /* every mount looked up so far */
        size_t n_mounts;
        bool mounts_unavailable;       /* sys/internal/ui/mounts is 404 (Vault before 0.10) */
        /* The token, as Vault describes it (the login's auth, or lookup-self): a batch token
         * cannot be renewed or revoked (vault/token_store.go answers 400); one with num_uses
         * is spent by every authenticated request (vault/request_handling.go UseToken) and
         * revoked by Vault, with its leases, after its last. */
        char *token_type;              /* NULL: not told */
        bool orphan;
        int64_t uses_left;             /* -1: unlimited (or not told) */
        bool used_up;
        char **login_policies;         /* the login's auth, for the identity of a token whose */
        char *login_entity_id;         /* uses a lookup-self would spend */
        bool via_agent;                /* a Vault Agent adds the token: we may have none */
        bool client_cert;              /* a TLS client certificate is configured */
        struct vault_pending *stat_pending;   /* stat_prefetch's answers, each for one stat */
        size_t n_stat_pending;
};

/* Renew at about two thirds of the TTL Vault granted. */
static void lease_schedule(struct vault_lease *l, uint64_t now_ms, uint64_t ttl_s) {
        l->expires_ms = now_ms + ttl_s * 1000;
        l->renew_at_ms = l->renewable && ttl_s > 0 ? now_ms + ttl_s * 2000 / 3 : 0;
}

static bool token_is_batch(const struct vault_state *v) {
        return v->token_type && streq(v->token_type, "batch");
}

/* n requests answered with the token: each spent one of its uses, if it has a number. */
static void token_spent(struct backend *b, size_t n) {
        struct vault_state *v = b->data;
        if (v->uses_left < 0 || n == 0)
                return;
        v->uses_left = (int64_t) n >= v->uses_left ? 0 : v->uses_left - (int64_t) n;
        if (v->uses_left == 0 && !v->used_up) {
                v->used_up = true;
                backend_message(b, BACKEND_MESSAGE_INFO,
                                "backend '%s' (vault): the token's last use is spent: Vault revokes it, and its leases", b->name);
        }
}

/* num_uses as Vault reports it: 0 is unlimited. */
static void token_uses_from(struct vault_state *v, json_t *num_uses) {
        json_int_t n = json_integer_value(num_uses);
        v->uses_left = n > 0 ? (int64_t) n : -1;
}

/* Tells the agent every string in an answer's data (as label) before a message could
 * quote one: the fetched value reaches the masker only when fetch() returns it, and a
 * warning is shown before that. */
static void mask_answer_values(struct backend *b, const char *label, json_t *x, unsigned depth) {
        if (json_is_string(x)) {
                _cleanup_secret_ struct secret *v = NULL;
                if (secret_from_bytes(json_string_value(x), json_string_length(x), &v) >= 0)
                        backend_credential(b, label, v);
                return;
        }
        const char *k;
        size_t i;
        json_t *y;
        if (depth < 4 && json_is_object(x))
                json_object_foreach(x, k, y)
                        mask_answer_values(b, label, y, depth + 1);
        if (depth < 4 && json_is_array(x))
                json_array_foreach(x, i, y)
                        mask_answer_values(b, label, y, depth + 1);
}

/* Vault's warnings on an answer (sdk/logical/response.go AddWarning: a hint on a wrong path,
 * a TTL capped, a deprecated endpoint), one warning line each, never dropped: the agent
 * passes every message through the run's masker, which is told the answer's values first
 * (as label). where names the request. */
static void vault_warnings(struct backend *b, const char *where, const char *label, const struct secret *body) {
        json_t *j = NULL;
        if (!body || secret_len(body) == 0 || http_json_parse(body, &j) < 0)
                return;
        if (json_array_size(json_object_get(j, "warnings")) > 0)
                mask_answer_values(b, label, json_object_get(j, "data"), 0);
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(j, "warnings"), i, w) {
                if (!json_is_string(w) || json_string_length(w) == 0)
                        continue;
                _cleanup_free_ char *text = strndup(json_string_value(w), 400);
                for (char *p = text; p && *p; p++)
                        if (!isprint((unsigned char) *p))
                                *p = ' ';
                if (text)
                        backend_message(b, BACKEND_MESSAGE_WARNING, "backend '%s' (vault), %s: Vault warns: %s", b->name,
                                        where, text);
        }
        json_decref(j);
}

/* The first error Vault gave, as printable text (Vault's messages name paths, not values). */
static char *vault_error_text(const struct secret *body) {
        json_t *j = NULL;
        if (!body || http_json_parse(body, &j) < 0)
                return NULL;
        json_t *e = json_array_get(json_object_get(j, "errors"), 0);
        char *s = json_is_string(e) ? strndup(json_string_value(e), 200) : NULL;
        json_decref(j);
        for (char *p = s; p && *p; p++)
                if (!isprint((unsigned char) *p))
                        *p = '?';
        return s;
}

static const char *status_cause(long status) {
        switch (status) {
        case 400: return "bad request";
        case 401:
        case 403: return "permission denied";
        case 404: return "not found";
        case 405: return "method not allowed";
        case 412: return "not yet replicated";
        case 501: return "Vault is not initialized";
        default:  return "unexpected answer";
        }
}

static int vault_post(struct backend *b, const char *path, const json_t *body, bool with_token,
                      uint64_t deadline, long *ret_status, struct secret **ret_body, char **ret_why) {
        struct vault_state *v = b->data;
        _cleanup_secret_ struct secret *payload = NULL;
        int r;
        if (body && (r = http_json_dump(body, &payload)) < 0)
                return r;
        r = http_request(v->http, "POST", path, with_token ? v->token : NULL, payload, deadline, ret_status, ret_body,
                         ret_why);
        if (with_token)
                token_spent(b, r >= 0);
        return r;
}

/* A credential from $var, told to the agent (under label) before anything can quote it. */
static int env_secret(struct backend *b, const char *var, const char *label, struct secret **ret) {
        const char *s = var ? getenv(var) : NULL;
        if (!s || !*s)
                return -ENOENT;
        int r = secret_from_bytes(s, strlen(s), ret);
        if (r >= 0)
                backend_credential(b, label, *ret);
        return r;
}

/* The HTTP client's retries, said as the backend's messages. */
static void http_note(void *userdata, const char *line) {
        backend_message(userdata, BACKEND_MESSAGE_INFO, "%s", line);
}

/* An HTTP client for this backend, its retries reported through b's events; a missing
 * libcurl is said plainly. */
static int http_client_open(struct backend *b, const struct http_options *options, struct http_client **ret,
                            char **ret_why) {
        struct http_options o = *options;
        o.note = http_note;
        o.note_userdata = b;
        int r = http_client_new(&o, ret);
        if (r == -ELIBACC || r == -ELIBBAD)
                return backend_fail(ret_why, r, "backend '%s' (vault): libcurl (libcurl.so.4) %s [install libcurl4]",
                                    b->name, r == -ELIBACC ? "is not installed" : "is not usable");
        return r;
}

/* GitHub Actions' OIDC token for audience (NULL: GitHub's default), from the job's
 * ACTIONS_ID_TOKEN_REQUEST_URL with ACTIONS_ID_TOKEN_REQUEST_TOKEN (needs id-token: write). */
static int github_oidc_token(struct backend *b, const char *audience, uint64_t deadline,
                             struct secret **ret, char **ret_why) {
        const char *url = getenv(GITHUB_OIDC_URL_ENV);
        _cleanup_secret_ struct secret *request_token = NULL;
        if (env_secret(b, GITHUB_OIDC_TOKEN_ENV, "github-oidc-request-token", &request_token) < 0)
                return backend_fail(ret_why, -ENOENT, "backend '%s' (vault): jwt login from GitHub OIDC needs $ACTIONS_ID_TOKEN_REQUEST_TOKEN (permissions: id-token: write)",
                                    b->name);
        if (strncasecmp(url, "https://", 8) != 0 &&
            !(strncasecmp(url, "http://", 7) == 0 && url_host_is_loopback(url + 7)))
                return backend_fail(ret_why, -EPERM, "backend '%s' (vault): $ACTIONS_ID_TOKEN_REQUEST_URL is not https://", b->name);
        _cleanup_free_ char *full = NULL;
        if (audience) {
                _cleanup_free_ char *esc = http_url_escape(audience);
                if (!esc)
                        return -ENOMEM;
                full = strdup_printf("%s%saudience=%s", url, strchr(url, '?') ? "&" : "?", esc);
        } else
                full = strdup(url);
        if (!full)
                return -ENOMEM;
        _cleanup_http_client_ struct http_client *gh = NULL;
        struct http_options o = { .base_url = full, .bearer = true };
        int r = http_client_open(b, &o, &gh, ret_why);
        if (r < 0)
                return r;
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        if ((r = http_request(gh, "GET", "", request_token, NULL, deadline, &status, &resp, ret_why)) < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "backend '%s' (vault): GitHub OIDC token: %s", b->name,
                                                       *ret_why ? *ret_why : strerror(-r));
        json_t *j = NULL;
        if (status != 200 || http_json_parse(resp, &j) < 0)
                return backend_fail(ret_why, -EACCES, "backend '%s' (vault): GitHub OIDC token request failed (HTTP %ld)",
                                    b->name, status);
        json_t *value = json_object_get(j, "value");
        r = json_is_string(value) && json_string_length(value) > 0
                ? secret_from_bytes(json_string_value(value), json_string_length(value), ret)
                : backend_fail(ret_why, -EBADMSG, "backend '%s' (vault): the GitHub OIDC response has no token", b->name);
        json_decref(j);
        return r;
}

static int token_from_file(struct backend *b, const char *path, struct secret **ret);

static json_t *secret_json(const struct secret *s) {
        return json_stringn((const char *) secret_data(s), secret_len(s));
}

static int approle_body(struct backend *b, const struct backend_config *c, json_t **ret, char **ret_why) {
        _cleanup_secret_ struct secret *role_id = NULL, *secret_id = NULL;
        if (env_secret(b, c->role_id_env, "approle-role-id", &role_id) < 0)
                return backend_fail(ret_why, -ENOENT, "backend '%s' (vault): approle login needs the role id in $%s, which is not set",
                                    b->name, c->role_id_env ? c->role_id_env : "(role_id_env not configured)");
        if (c->secret_id_env && env_secret(b, c->secret_id_env, "approle-secret-id", &secret_id) < 0)
                return backend_fail(ret_why, -ENOENT, "backend '%s' (vault): approle login needs the secret id in $%s, which is not set",
                                    b->name, c->secret_id_env);
        json_t *body = json_pack("{s:o}", "role_id", secret_json(role_id));
        if (body && secret_id)
                json_object_set_new(body, "secret_id", secret_json(secret_id));
        *ret = body;
        return body ? 0 : -ENOMEM;
}

static int jwt_body(struct backend *b, const struct backend_config *c, uint64_t deadline, json_t **ret,
                    char **ret_why) {
        _cleanup_secret_ struct secret *jwt = NULL;
        const char *var = c->jwt_env ? c->jwt_env : VAULT_JWT_ENV;
        int r;
        if (!c->jwt_env && getenv(GITHUB_OIDC_URL_ENV)) {
                if ((r = github_oidc_token(b, c->audience, deadline, &jwt, ret_why)) < 0)
                        return r;
                backend_credential(b, "jwt", jwt);
        } else if (env_secret(b, var, "jwt", &jwt) < 0)
                return backend_fail(ret_why, -ENOENT, "backend '%s' (vault): jwt login needs the token in $%s, which is not set",
                                    b->name, var);
        json_t *body = json_pack("{s:o, s:s?}", "jwt", secret_json(jwt), "role", c->auth_role);
        *ret = body;
        return body ? 0 : -ENOMEM;
}

/* Kubernetes: the pod's service account token (the file the kubelet projects, re-read at
 * each login since it is rotated) with the role (builtin/credential/kubernetes/path_login.go:
 * {"role", "jwt"}; Vault checks the token with the TokenReview API). */
static int kubernetes_body(struct backend *b, const struct backend_config *c, json_t **ret, char **ret_why) {
        const char *file = c->token_file ? c->token_file : KUBERNETES_TOKEN_FILE;
        _cleanup_secret_ struct secret *jwt = NULL;
        int r = token_from_file(b, file, &jwt);
        if (r == -ENOENT)
                return backend_fail(ret_why, r, "backend '%s' (vault): kubernetes login needs the service account token in %s, which is missing or empty [automountServiceAccountToken, or auth.token_file]",
                                    b->name, file);
        if (r < 0)
                return r;
        json_t *body = json_pack("{s:o, s:s?}", "jwt", secret_json(jwt), "role", c->auth_role);
        *ret = body;
        return body ? 0 : -ENOMEM;
}

/* Cert: the TLS client certificate is the credential (builtin/credential/cert/path_login.go);
 * the body names the role, if one is configured. */
static int cert_body(struct backend *b, const struct backend_config *c, json_t **ret, char **ret_why) {
        struct vault_state *v = b->data;
        if (!v->client_cert)
                return backend_fail(ret_why, -ENOENT, "backend '%s' (vault): cert login needs a client certificate: client_cert and client_key, or $VAULT_CLIENT_CERT and $VAULT_CLIENT_KEY",
                                    b->name);
        json_t *body = c->cert_name ? json_pack("{s:s}", "name", c->cert_name) : json_object();
        *ret = body;
        return body ? 0 : -ENOMEM;
}

static int vault_login(struct backend *b, const struct backend_config *c, char **ret_why) {
        struct vault_state *v = b->data;
        uint64_t deadline = v->deadline_ms;
        const char *mount = c->auth_mount ? c->auth_mount : v->auth;   /* each method's default mount is its name */
        json_t *body = NULL;
        int r = c->vault_auth == BACKEND_VAULT_AUTH_APPROLE ? approle_body(b, c, &body, ret_why)
                : c->vault_auth == BACKEND_VAULT_AUTH_KUBERNETES ? kubernetes_body(b, c, &body, ret_why)
                : c->vault_auth == BACKEND_VAULT_AUTH_CERT ? cert_body(b, c, &body, ret_why)
                : jwt_body(b, c, deadline, &body, ret_why);
        if (r < 0)
                return r;
        _cleanup_free_ char *esc = http_path_escape(mount);
        _cleanup_free_ char *path = esc ? strdup_printf("/v1/auth/%s/login", esc) : NULL;
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        r = path ? vault_post(b, path, body, false, deadline, &status, &resp, ret_why) : -ENOMEM;
        json_decref(body);
        if (r < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "backend '%s' (vault): login: %s", b->name,
                                                       *ret_why ? *ret_why : strerror(-r));
        _cleanup_free_ char *where = strdup_printf("login at auth/%s", mount);
        vault_warnings(b, where ? where : "login", "vault-answer", resp);
        if (status != 200) {
                _cleanup_free_ char *text = vault_error_text(resp);
                return backend_fail(ret_why, -EACCES, "backend '%s' (vault): login at auth/%s failed: HTTP %ld %s%s%s",
                                    b->name, mount, status, status_cause(status), text ? ": " : "", text ? text : "");
        }
        json_t *j = NULL;
        if (http_json_parse(resp, &j) < 0)
                return backend_fail(ret_why, -EBADMSG, "backend '%s' (vault): login at auth/%s: the response is not valid JSON",
                                    b->name, mount);
        json_t *token = json_object_get(json_object_get(j, "auth"), "client_token");
        if (!json_is_string(token) || json_string_length(token) == 0) {
                json_decref(j);
                return backend_fail(ret_why, -EBADMSG, "backend '%s' (vault): login at auth/%s: the response has no auth.client_token",
                                    b->name, mount);
        }
        r = secret_from_bytes(json_string_value(token), json_string_length(token), &v->token);
        if (r >= 0)
                backend_credential(b, "vault-token", v->token);
        json_t *auth = json_object_get(j, "auth");
        v->login.ttl_s = (uint64_t) json_integer_value(json_object_get(auth, "lease_duration"));
        const char *type = json_string_value(json_object_get(auth, "token_type"));
        if (r >= 0 && type && !(v->token_type = strdup(type)))
                r = -ENOMEM;
        v->orphan = json_is_true(json_object_get(auth, "orphan"));
        token_uses_from(v, json_object_get(auth, "num_uses"));
        /* a batch token is never renewable, whatever else is said (vault/token_store.go) */
        v->login.renewable = json_is_true(json_object_get(auth, "renewable")) && !token_is_batch(v);
        lease_schedule(&v->login, now_monotonic_ms(), v->login.ttl_s);
        const char *entity = json_string_value(json_object_get(auth, "entity_id"));
        if (r >= 0 && entity && *entity && !(v->login_entity_id = strdup(entity)))
                r = -ENOMEM;
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(auth, "policies"), i, p)
                if (r >= 0 && json_is_string(p))
                        r = strv_extend(&v->login_policies, json_string_value(p));
        json_decref(j);
        if (r < 0)
                return r;
        v->token_from_login = true;
        return 0;
}

/* A variable as Vault's and OpenBao's CLIs read it: BAO_X if it is set at all (even empty),
 * else VAULT_X (openbao api/env.go ReadBaoVariable; HashiCorp's reads VAULT_X). name is the
 * part after the prefix ("ADDR"). */
static const char *vault_env(const char *name) {
        char bao[64], vault[64];
        (void) snprintf(bao, sizeof bao, "BAO_%s", name);
        (void) snprintf(vault, sizeof vault, "VAULT_%s", name);
        const char *v = getenv(bao);
        return v ? v : getenv(vault);
}

static const char *nonempty(const char *s) {
        return s && *s ? s : NULL;
}

/* Where `vault login` leaves the token (command/token/helper_internal.go): $BAO_TOKEN_PATH
 * (OpenBao), else ~/.vault-token. malloc'd; NULL without a home. */
static char *token_file_path(void) {
        const char *p = nonempty(getenv("BAO_TOKEN_PATH"));
        if (p)
                return strdup(p);
        const char *home = nonempty(getenv("HOME"));
        return home ? strdup_printf("%s/.vault-token", home) : NULL;
}

/* The token in path, whitespace trimmed as the CLI's helper trims it; -ENOENT if there is
 * none (no file, or an empty one). */
static int token_from_file(struct backend *b, const char *path, struct secret **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return -ENOENT;
        _cleanup_secret_ struct secret *raw = NULL;
        int r = secret_new(512, &raw);
        if (r < 0)
                return r;
        char buf[512];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0 && secret_len(raw) < 8192)
                if ((r = secret_append(raw, buf, (size_t) n)) < 0)
                        break;
        sodium_memzero(buf, sizeof buf);
        if (r < 0)
                return r;
        const char *d = (const char *) secret_data(raw);
        size_t start = 0, end = secret_len(raw);
        while (start < end && isspace((unsigned char) d[start]))
                start++;
        while (end > start && isspace((unsigned char) d[end - 1]))
                end--;
        if (end == start)
                return -ENOENT;
        if ((r = secret_from_bytes(d + start, end - start, ret)) >= 0)
                backend_credential(b, "vault-token", *ret);
        return r;
}

/* Token auth: the configured variable; else $BAO_TOKEN / $VAULT_TOKEN, else the token file
 * `vault login` writes; else, through a Vault Agent or Proxy, none (its auto-auth adds it:
 * command/agentproxyshared/cache/handler.go). */
static int token_auth(struct backend *b, const struct backend_config *c, bool via_agent, char **ret_why) {
        struct vault_state *v = b->data;
        if (c->token_env) {
                if (env_secret(b, c->token_env, "vault-token", &v->token) < 0)
                        return backend_fail(ret_why, -ENOENT, "backend '%s' (vault): token auth needs a token in $%s, which is not set",
                                            b->name, c->token_env);
                return 0;
        }
        if (env_secret(b, getenv("BAO_TOKEN") ? "BAO_TOKEN" : VAULT_TOKEN_ENV, "vault-token", &v->token) >= 0)
                return 0;
        _cleanup_free_ char *file = token_file_path();
        int r = file ? token_from_file(b, file, &v->token) : -ENOENT;
        if (r >= 0) {
                backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): the token from %s", b->name, file);
                return 0;
        }
        if (r != -ENOENT)
                return r;
        if (via_agent) {
                backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): no token: the Vault Agent at $VAULT_AGENT_ADDR adds its own",
                                b->name);
                return 0;
        }
        return backend_fail(ret_why, -ENOENT, "backend '%s' (vault): token auth needs a token: $VAULT_TOKEN is not set and there is no %s [vault login writes it]",
                            b->name, file ? file : "~/.vault-token");
}

/* The address: the manifest's, else a Vault Agent's ($VAULT_AGENT_ADDR wins over
 * $VAULT_ADDR, as in api/client.go), else $VAULT_ADDR. unix:///path is a socket (the
 * agent's listener): *ret_socket the path, *ret_base a URL with no host of its own. */
static int vault_address(struct backend *b, const struct backend_config *c, const char **ret_base,
                         const char **ret_socket, bool *ret_agent, char **ret_why) {
        const char *agent = nonempty(vault_env("AGENT_ADDR"));
        const char *address = c->address ? c->address : agent ? agent : vault_env("ADDR");
        *ret_agent = !c->address && agent;
        *ret_socket = NULL;
        *ret_base = address;
        if (!address || !*address)
                return backend_fail(ret_why, -EINVAL, "backend '%s' (vault): no address (set 'address', $VAULT_ADDR or $VAULT_AGENT_ADDR)",
                                    b->name);
        if (strncasecmp(address, "unix://", 7) == 0) {
                if (address[7] != '/')
                        return backend_fail(ret_why, -EINVAL, "backend '%s' (vault): a unix:// address names an absolute socket path (unix:///run/vault.sock)",
                                            b->name);
                *ret_socket = address + 7;
                *ret_base = "http://localhost";
                return 0;
        }
        if (strncasecmp(address, "http://", 7) == 0) {
                if (!url_host_is_loopback(address + 7) && !c->insecure)
                        return backend_fail(ret_why, -EPERM,
                                            "backend '%s' (vault): refusing plain http:// to a host that is not loopback (use https://, or insecure: true)",
                                            b->name);
        } else if (strncasecmp(address, "https://", 8) != 0)
                return backend_fail(ret_why, -EINVAL, "backend '%s' (vault): the address must start with https:// (or http:// on loopback, or unix://)",
                                    b->name);
        return 0;
}

static int vault_open(struct backend *b, char **ret_why) {
        const struct backend_config *c = b->config;
        const char *base, *socket_path;
        bool via_agent;
        int r = vault_address(b, c, &base, &socket_path, &via_agent, ret_why);
        if (r < 0)
                return r;
        struct vault_state *v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        b->data = v;
        v->deadline_ms = now_monotonic_ms() + b->timeout_ms;
        v->uses_left = -1;
        /* like the address, the CA, the namespace and a client certificate may come from the
         * variables Vault's own CLI reads (api/client.go ReadEnvironment) */
        bool manifest_ca = c->ca_cert || c->ca_path;
        bool manifest_cert = c->client_cert || c->client_key;
        struct http_options o = { .base_url = base, .unix_socket = socket_path,
                                  .namespace_ = c->namespace_ ? c->namespace_ : nonempty(vault_env("NAMESPACE")),
                                  .ca_cert = manifest_ca ? c->ca_cert : nonempty(vault_env("CACERT")),
                                  .ca_path = manifest_ca ? c->ca_path : nonempty(vault_env("CAPATH")),
                                  .client_cert = manifest_cert ? c->client_cert : nonempty(vault_env("CLIENT_CERT")),
                                  .client_key = manifest_cert ? c->client_key : nonempty(vault_env("CLIENT_KEY")) };
        v->max_ttl_s = c->max_ttl_s;
        v->sequential = c->vault_sequential;
        v->auth = c->vault_auth == BACKEND_VAULT_AUTH_APPROLE ? "approle"
                : c->vault_auth == BACKEND_VAULT_AUTH_JWT ? "jwt"
                : c->vault_auth == BACKEND_VAULT_AUTH_KUBERNETES ? "kubernetes"
                : c->vault_auth == BACKEND_VAULT_AUTH_CERT ? "cert" : "token";
        v->client_cert = o.client_cert != NULL;
        if ((r = http_client_open(b, &o, &v->http, ret_why)) < 0)
                return r;
        v->via_agent = via_agent;
        if (c->vault_auth == BACKEND_VAULT_AUTH_TOKEN)
                return token_auth(b, c, via_agent, ret_why);
        return vault_login(b, c, ret_why);
}

/* Vault's created_time ("2018-03-22T02:24:06.945319214Z") as unix seconds; 0 (unknown) if
 * it is missing or unparsable. */
static int64_t created_time(json_t *metadata) {
        int64_t t = 0;
        if (parse_timestamp(json_string_value(json_object_get(metadata, "created_time")), &t) < 0 || t < 0)
                return 0;
        return t;
}

/* Offline, for `check` (and for the server that will not say): a KV v2 API path has a
 * segment "data" after the mount's, whatever the mount's length (kv/team/data/app). The
 * run asks the server (sys/internal/ui/mounts), which also knows a KV v1 key under a
 * folder named data/. */
bool vault_path_is_kv2(const char *path) {
        for (const char *p = path ? strchr(path, '/') : NULL; p; p = strchr(p + 1, '/'))
                if (startswith(p + 1, "data/"))
                        return true;
        return false;
}

/* ---- mounts: sys/internal/ui/mounts/<path>, as Vault's CLI asks before every kv command
 * (command/kv_helpers.go kvPreflightVersionRequest) ---- */

static const struct vault_mount *mount_cached(const struct vault_state *v, const char *path) {
        for (size_t i = 0; i < v->n_mounts; i++)
                if (startswith(path, v->mounts[i].path))
                        return &v->mounts[i];
        return NULL;
}

static bool mount_is_kv2(const struct vault_mount *m) {
        return m && streq(m->type, "kv") && m->kv_version == 2;
}

/* The path within m (after the mount's own path). */
static const char *mount_rest(const struct vault_mount *m, const char *path) {
        return path + strlen(m->path);
}

/* "/v1/" + path with each segment percent-encoded (a space, '?', '#' or '%' in a key is the
 * key's, not the URL's), then ?version=N if version. */
static char *api_url(const char *prefix, const char *path, uint64_t version) {
        _cleanup_free_ char *esc = http_path_escape(path);
        if (!esc)
                return NULL;
        return version ? strdup_printf("/v1/%s%s?version=%" PRIu64, prefix, esc, version)
                       : strdup_printf("/v1/%s%s", prefix, esc);
}

static char *mount_lookup_url(const char *path) {
        return api_url("sys/internal/ui/mounts/", path, 0);
}

/* Takes the answer to a lookup of path: a 200 is cached (*ret its entry). A 403 (no mount
 * there, or no access to it: Vault answers both alike, vault/logical_system.go
 * pathInternalUIMountRead) or any other answer leaves *ret NULL, and the response's shape
 * decides; a 404 means the server has no such endpoint, which is not asked again. */
static int mount_take(struct backend *b, const char *path, int r, long status, struct secret *resp_in,
                      const struct vault_mount **ret, char **ret_why) {
        struct vault_state *v = b->data;
        _cleanup_secret_ struct secret *resp = resp_in;
        *ret = NULL;
        if (r < 0)
                return r;
        if (status == 404)
                v->mounts_unavailable = true;
        _cleanup_free_ char *where = strdup_printf("mount lookup of %s", path);
        vault_warnings(b, where ? where : path, "vault-answer", resp);
        json_t *j = NULL;
        if (status != 200 || http_json_parse(resp, &j) < 0) {
                backend_message(b, BACKEND_MESSAGE_INFO,
                                "backend '%s' (vault): no mount information for %s (HTTP %ld): the answer's shape tells KV v2 from v1",
                                b->name, path, status);
                return 0;
        }
        json_t *data = json_object_get(j, "data");
        const char *mpath = json_string_value(json_object_get(data, "path"));
        const char *type = json_string_value(json_object_get(data, "type"));
        const char *version = json_string_value(json_object_get(json_object_get(data, "options"), "version"));
        (void) ret_why;
        if (!mpath || !type || !*mpath || mpath[strlen(mpath) - 1] != '/' || !startswith(path, mpath)) {
                json_decref(j);
                return 0;
        }
        struct vault_mount *n = realloc(v->mounts, (v->n_mounts + 1) * sizeof(*n));
        if (!n) {
                json_decref(j);
                return -ENOMEM;
        }
        v->mounts = n;
        n = &n[v->n_mounts];
        /* command/kv_helpers.go: options.version "2" is v2; absent, "" or "1" is v1 */
        *n = (struct vault_mount) { .path = strdup(mpath), .type = strdup(type),
                                    .kv_version = streq(type, "kv") ? (version && streq(version, "2") ? 2 : 1) : 0 };
        json_decref(j);
        if (!n->path || !n->type) {
                free(n->path);
                free(n->type);
                return -ENOMEM;
        }
        *ret = &v->mounts[v->n_mounts++];
        backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): %s is a %s mount%s", b->name, (*ret)->path,
                        (*ret)->type, (*ret)->kv_version == 2 ? " (KV v2)" : (*ret)->kv_version == 1 ? " (KV v1)" : "");
        return 0;
}

/* The mount path is in: cached, else asked now. *ret NULL: the server does not say (then
 * the response's shape decides, as far as it can). */
static int vault_mount_of(struct backend *b, const char *path, const struct vault_mount **ret, char **ret_why) {
        struct vault_state *v = b->data;
        if ((*ret = mount_cached(v, path)) || v->mounts_unavailable)
                return 0;
        _cleanup_free_ char *url = mount_lookup_url(path);
        if (!url)
                return -ENOMEM;
        long status = 0;
        struct secret *resp = NULL;
        int r = http_request(v->http, "GET", url, v->token, NULL, v->deadline_ms, &status, &resp,
                             ret_why);
        return mount_take(b, path, r, status, resp, ret, ret_why);
}

/* Without mount information: a KV v2 read answers data.data and data.metadata (with a
 * version), nothing else, and no lease. */
static bool response_looks_kv2(json_t *j) {
        json_t *data = json_object_get(j, "data");
        json_t *meta = json_object_get(data, "metadata");
        json_t *inner = json_object_get(data, "data");
        return json_object_size(data) == 2 && json_is_object(meta) && json_object_get(meta, "version") &&
               (json_is_object(inner) || json_is_null(inner));
}


/* The cached response for key, or its answer from a prefetch, or one request now; a fresh
 * answer is checked, cached (and its lease recorded) by vault_take(). */
static int vault_take(struct backend *b, const struct secret_ref *ref, const char *key, int r, long status,
                      struct secret *resp, json_t **ret, char **ret_why);

/* A certificate issued without a lease (data.serial_number, no lease_id) is still ours to
 * revoke at exit: MOUNT/revoke with its serial (builtin/logical/pki/path_revoke.go). */
static int certificate_take(struct backend *b, const struct secret_ref *ref, json_t *j) {
        struct vault_state *v = b->data;
        const char *serial = json_string_value(json_object_get(json_object_get(j, "data"), "serial_number"));
        if (!serial || !*serial)
                return 0;
        const struct vault_mount *m = mount_cached(v, ref->path);
        const char *issue = strstr(ref->path, "/issue/");
        _cleanup_free_ char *mount = m && streq(m->type, "pki") ? strdup(m->path)
                                     : issue ? strndup(ref->path, (size_t) (issue - ref->path) + 1) : NULL;
        if (!mount)
                return 0;   /* not PKI's issue: nothing we know how to revoke */
        struct vault_lease *l = realloc(v->leases, (v->n_leases + 1) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        v->leases = l;
        l = &l[v->n_leases];
        json_int_t expiration = json_integer_value(json_object_get(json_object_get(j, "data"), "expiration"));
        time_t now = time(NULL);
        *l = (struct vault_lease) { .id = strdup_printf("certificate %s", serial), .serial = strdup(serial),
                                    .revoke_url = api_url(mount, "revoke", 0),
                                    .ttl_s = expiration > now ? (uint64_t) (expiration - now) : 0 };
        if (!l->id || !l->serial || !l->revoke_url) {
                free(l->id);
                free(l->serial);
                free(l->revoke_url);
                return -ENOMEM;
        }
        lease_schedule(l, now_monotonic_ms(), l->ttl_s);   /* not renewable: never renewed */
        v->n_leases++;
        backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): issued %s at %s (no lease: revoked by serial at exit)",
                        b->name, l->id, ref->path);
        return 0;
}

static const struct secret *vault_cached(struct vault_state *v, const char *key) {
        for (size_t i = 0; i < v->n_responses; i++)
                if (streq(v->responses[i].key, key))
                        return v->responses[i].body;
        return NULL;
}

/* *ret is the caller's to json_decref (which wipes it). */
static int vault_get(struct backend *b, const struct secret_ref *ref, const char *key, json_t **ret,
                     char **ret_why) {
        struct vault_state *v = b->data;
        const struct secret *cached = vault_cached(v, key);
        if (cached)
                return http_json_parse(cached, ret);
        for (size_t i = 0; i < v->n_pending; i++)
                if (streq(v->pending[i].key, key)) {
                        struct vault_pending p = v->pending[i];
                        v->pending[i] = v->pending[--v->n_pending];
                        free(p.key);
                        if (p.final) {
                                free(*ret_why);
                                *ret_why = steal_pointer(&p.result.why);
                                return p.result.r;
                        }
                        if (p.result.why) {
                                free(*ret_why);
                                *ret_why = steal_pointer(&p.result.why);
                        }
                        int k = vault_take(b, ref, key, p.result.r, p.result.status, steal_pointer(&p.result.body),
                                           ret, ret_why);
                        http_result_done(&p.result);
                        return k;
                }
        _cleanup_free_ char *url_path = api_url("", ref->path, ref->version);
        if (!url_path)
                return -ENOMEM;
        long status = 0;
        struct secret *resp = NULL;
        int r;
        if (ref->params) {
                /* a request that issues (pki/issue/ROLE): a POST of the params, once */
                json_t *body = json_object();
                for (char *const *p = ref->params; body && p[0] && p[1]; p += 2)
                        if (json_object_set_new(body, p[0], json_string(p[1])) < 0) {
                                json_decref(body);
                                body = NULL;
                        }
                r = body ? vault_post(b, url_path, body, true, v->deadline_ms, &status, &resp, ret_why) : -ENOMEM;
                json_decref(body);
                if (r == -ENOMEM)
                        return r;
        } else {
                r = http_request(v->http, "GET", url_path, v->token, NULL, v->deadline_ms, &status, &resp, ret_why);
                token_spent(b, r >= 0);
        }
        return vault_take(b, ref, key, r, status, resp, ret, ret_why);
}

static int vault_take(struct backend *b, const struct secret_ref *ref, const char *key, int r, long status,
                      struct secret *resp_in, json_t **ret, char **ret_why) {
        struct vault_state *v = b->data;
        _cleanup_secret_ struct secret *resp = resp_in;
        if (r < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "secret %s: backend '%s' (vault), path %s: %s",
                                                       ref->secret_name, b->name, ref->path,
                                                       *ret_why ? *ret_why : strerror(-r));
        _cleanup_free_ char *where = strdup_printf("secret %s, path %s", ref->secret_name, ref->path);
        vault_warnings(b, where ? where : ref->path, ref->secret_name, resp);
        json_t *j = NULL;
        bool parsed = http_json_parse(resp, &j) >= 0;
        json_t *meta = json_object_get(json_object_get(j, "data"), "metadata");
        if (status == 404 && parsed && json_is_object(meta)) {
                /* A deleted or destroyed KV v2 version answers 404 with its metadata. */
                bool destroyed = json_is_true(json_object_get(meta, "destroyed"));
                const char *deletion_time = json_string_value(json_object_get(meta, "deletion_time"));
                bool deleted = deletion_time && *deletion_time;
                uint64_t version = (uint64_t) json_integer_value(json_object_get(meta, "version"));
                json_decref(j);
                if (destroyed || deleted)
                        return backend_fail(ret_why, -ENOENT, "secret %s: backend '%s' (vault), path %s: version %" PRIu64 " is %s",
                                            ref->secret_name, b->name, ref->path, version,
                                            destroyed ? "destroyed" : "deleted");
                return backend_fail(ret_why, -ENOENT, "secret %s: backend '%s' (vault), path %s: not found (HTTP 404)",
                                    ref->secret_name, b->name, ref->path);
        }
        if (status != 200) {
                json_decref(j);
                _cleanup_free_ char *text = vault_error_text(resp);
                /* a KV v2 mount answers a path outside data/ and metadata/ with 404 (and a
                 * warning): the reference is the raw API path, MOUNT/data/KEY */
                const struct vault_mount *m = mount_cached(v, ref->path);
                _cleanup_free_ char *hint = status == 404 && mount_is_kv2(m) && !startswith(mount_rest(m, ref->path), "data/")
                        ? strdup_printf(" [%s is a KV v2 mount: the API path is %sdata/%s]", m->path, m->path,
                                        mount_rest(m, ref->path))
                        : NULL;
                return backend_fail(ret_why, status == 404 ? -ENOENT : -EACCES,
                                    "secret %s: backend '%s' (vault), path %s: %s (HTTP %ld)%s%s%s",
                                    ref->secret_name, b->name, ref->path, status_cause(status), status,
                                    text ? ": " : "", text ? text : "", hint ? hint : "");
        }
        if (!parsed || !json_is_object(j)) {
                json_decref(j);
                return backend_fail(ret_why, -EBADMSG, "secret %s: backend '%s' (vault), path %s: the response is not a valid JSON object",
                                    ref->secret_name, b->name, ref->path);
        }
        struct vault_response *n = realloc(v->responses, (v->n_responses + 1) * sizeof(*n));
        if (!n) {
                json_decref(j);
                return -ENOMEM;
        }
        v->responses = n;
        if (!(n[v->n_responses].key = strdup(key))) {
                json_decref(j);
                return -ENOMEM;
        }
        n[v->n_responses++].body = steal_pointer(&resp);
        const char *lease = json_string_value(json_object_get(j, "lease_id"));
        if (lease && *lease) {
                struct vault_lease *l = realloc(v->leases, (v->n_leases + 1) * sizeof(*l));
                if (!l) {
                        json_decref(j);
                        return -ENOMEM;
                }
                v->leases = l;
                l = &l[v->n_leases];
                *l = (struct vault_lease) {
                        .id = strdup(lease),
                        .ttl_s = (uint64_t) json_integer_value(json_object_get(j, "lease_duration")),
                        .renewable = json_is_true(json_object_get(j, "renewable")),
                };
                if (!l->id) {
                        json_decref(j);
                        return -ENOMEM;
                }
                lease_schedule(l, now_monotonic_ms(), l->ttl_s);
                v->n_leases++;
        } else if (ref->params && (r = certificate_take(b, ref, j)) < 0) {
                json_decref(j);
                return r;
        }
        *ret = j;
        return 0;
}

/* The cache's key: one answer per path, version and params in a run (a certificate's
 * fields come from one issue). */
static char *ref_key(const struct secret_ref *ref) {
        _cleanup_free_ char *key = ref->version ? strdup_printf("%s?version=%" PRIu64, ref->path, ref->version)
                                                : strdup(ref->path);
        for (char *const *p = ref->params; key && p && p[0] && p[1]; p += 2) {
                _cleanup_free_ char *k = http_url_escape(p[0]), *val = http_url_escape(p[1]);
                char *next = k && val ? strdup_printf("%s%c%s=%s", key, p == ref->params ? '#' : '&', k, val) : NULL;
                free(key);
                key = next;
        }
        return steal_pointer(&key);
}

static int vault_fetch(struct backend *b, const struct secret_ref *ref,
                       struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why) {
        if (!ref->field)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (vault), path %s: name a field (vault:PATH#FIELD)",
                                    ref->secret_name, b->name, ref->path);
        _cleanup_free_ char *key = ref_key(ref);
        if (!key)
                return -ENOMEM;
        const struct vault_mount *mount = NULL;
        int r = vault_mount_of(b, ref->path, &mount, ret_why);
        if (r < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "secret %s: backend '%s' (vault), path %s: mount lookup: %s",
                                                       ref->secret_name, b->name, ref->path,
                                                       *ret_why ? *ret_why : strerror(-r));
        _cleanup_(json_decrefp) json_t *j = NULL;
        if ((r = vault_get(b, ref, key, &j, ret_why)) < 0)
                return r;

        json_t *data = json_object_get(j, "data");
        const char *lease = json_string_value(json_object_get(j, "lease_id"));
        bool kv2 = mount ? mount_is_kv2(mount) : response_looks_kv2(j);
        if (kv2 && !(lease && *lease)) {
                json_t *meta = json_object_get(data, "metadata");
                data = json_object_get(data, "data");
                if (json_is_null(data) || !data)
                        return backend_fail(ret_why, -ENOENT, "secret %s: backend '%s' (vault), path %s: the version has no data (deleted or destroyed)",
                                            ref->secret_name, b->name, ref->path);
                ret_meta->version = (uint64_t) json_integer_value(json_object_get(meta, "version"));
                ret_meta->created = created_time(meta);
        }
        json_t *value = json_object_get(data, ref->field);
        if (!value || json_is_null(value))
                return backend_fail(ret_why, -ENOENT, "secret %s: backend '%s' (vault), path %s: no field '%s'",
                                    ref->secret_name, b->name, ref->path, ref->field);
        if (json_is_string(value))
                r = secret_from_bytes(json_string_value(value), json_string_length(value), ret_value);
        else if (json_is_object(value) || json_is_array(value))
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (vault), path %s: field '%s' is not a scalar",
                                    ref->secret_name, b->name, ref->path, ref->field);
        else {
                _cleanup_secret_ struct secret *s = NULL;
                json_t *wrapped = json_pack("[O]", value);
                if (!wrapped)
                        return -ENOMEM;
                /* encode the scalar as JSON text (42, true) without its array brackets */
                r = http_json_dump(wrapped, &s);
                json_decref(wrapped);
                if (r >= 0)
                        r = secret_from_bytes(secret_data(s) + 1, secret_len(s) - 2, ret_value);
        }
        if (r < 0)
                return r;
        if (lease && *lease) {
                if (!(ret_meta->lease_id = strdup(lease)))
                        return -ENOMEM;
                ret_meta->lease_ttl = (uint64_t) json_integer_value(json_object_get(j, "lease_duration"));
                ret_meta->renewable = json_is_true(json_object_get(j, "renewable"));
        }
        return 0;
}

/* ---- stat and write (plan/apply/rotate): KV v2 only ---- */

/* One GET of path (with ?version=N if version), never cached: plan and apply must see what
 * Vault holds now, also after this process wrote. Returns 0 with the status and the parsed
 * body of a 200 or 404 (*ret_json NULL if a 404 had no JSON body); any other outcome is an
 * error naming the secret, the backend and the path, as fetch() gives it. */
static int kv2_read_now(struct backend *b, const struct secret_ref *ref, uint64_t version, long *ret_status,
                        json_t **ret_json, char **ret_why) {
        struct vault_state *v = b->data;
        _cleanup_free_ char *url_path = api_url("", ref->path, version);
        if (!url_path)
                return -ENOMEM;
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        int r = -ENOENT;
        for (size_t i = 0; i < v->n_stat_pending; i++)
                if (streq(v->stat_pending[i].key, url_path)) {
                        /* asked ahead by stat_prefetch: this answer serves this one stat */
                        struct vault_pending p = v->stat_pending[i];
                        v->stat_pending[i] = v->stat_pending[--v->n_stat_pending];
                        free(p.key);
                        r = p.result.r;
                        status = p.result.status;
                        resp = steal_pointer(&p.result.body);
                        if (p.result.why) {
                                free(*ret_why);
                                *ret_why = steal_pointer(&p.result.why);
                        }
                        http_result_done(&p.result);
                        break;
                }
        if (r == -ENOENT) {
                r = http_request(v->http, "GET", url_path, v->token, NULL, v->deadline_ms, &status, &resp, ret_why);
                token_spent(b, r >= 0);
        }
        if (r < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "secret %s: backend '%s' (vault), path %s: %s",
                                                       ref->secret_name, b->name, ref->path,
                                                       *ret_why ? *ret_why : strerror(-r));
        _cleanup_free_ char *where = strdup_printf("secret %s, path %s", ref->secret_name, ref->path);
        vault_warnings(b, where ? where : ref->path, ref->secret_name, resp);
        json_t *j = NULL;
        bool parsed = http_json_parse(resp, &j) >= 0 && json_is_object(j);
        if (status == 404) {
                *ret_status = status;
                *ret_json = parsed ? j : (json_decref(j), NULL);
                return 0;
        }
        if (status != 200) {
                json_decref(j);
                _cleanup_free_ char *text = vault_error_text(resp);
                return backend_fail(ret_why, -EACCES, "secret %s: backend '%s' (vault), path %s: %s (HTTP %ld)%s%s",
                                    ref->secret_name, b->name, ref->path, status_cause(status), status,
                                    text ? ": " : "", text ? text : "");
        }
        if (!parsed) {
                json_decref(j);
                return backend_fail(ret_why, -EBADMSG, "secret %s: backend '%s' (vault), path %s: the response is not a valid JSON object",
                                    ref->secret_name, b->name, ref->path);
        }
        *ret_status = status;
        *ret_json = j;
        return 0;
}

/* Whether stat and write may go ahead: only for KV v2 (MOUNT/data/KEY), told by the mount
 * (reading a dynamic path would create a lease; KV v1 keeps no versions and has no
 * check-and-set). *ret_known: the server said what the mount is; without, the path's
 * look decides and the answer's shape is checked (vault_stat). */
static int kv2_only(struct backend *b, const struct secret_ref *ref, bool writing, bool *ret_known, char **ret_why) {
        if (!ref->field)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (vault), path %s: name a field (vault:PATH#FIELD)",
                                    ref->secret_name, b->name, ref->path);
        if (ref->params)
                return backend_fail(ret_why, -EOPNOTSUPP, "secret %s: backend '%s' (vault), path %s: issued anew by each run (params), nothing kept to check",
                                    ref->secret_name, b->name, ref->path);
        const struct vault_mount *m = NULL;
        int r = vault_mount_of(b, ref->path, &m, ret_why);
        if (r < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "secret %s: backend '%s' (vault), path %s: mount lookup: %s",
                                                       ref->secret_name, b->name, ref->path,
                                                       *ret_why ? *ret_why : strerror(-r));
        *ret_known = m != NULL;
        if (m ? mount_is_kv2(m) && startswith(mount_rest(m, ref->path), "data/") : vault_path_is_kv2(ref->path))
                return 0;
        _cleanup_free_ char *what = !m ? strdup("not a KV v2 path (MOUNT/data/KEY)")
                : mount_is_kv2(m) ? strdup_printf("%s is KV v2, but the path is not under %sdata/", m->path, m->path)
                : m->kv_version == 1 ? strdup_printf("%s is a KV v1 mount", m->path)
                : strdup_printf("%s is a %s mount, not KV", m->path, m->type);
        if (!what)
                return -ENOMEM;
        if (writing)
                return backend_fail(ret_why, -EOPNOTSUPP,
                                    "secret %s: backend '%s' (vault), path %s: %s: KV v1 has no check-and-set and dynamic secrets cannot be written; use KV v2 (MOUNT/data/KEY)",
                                    ref->secret_name, b->name, ref->path, what);
        return backend_fail(ret_why, -EOPNOTSUPP,
                            "secret %s: backend '%s' (vault), path %s: %s: KV v1 keeps no versions, and reading a dynamic secret would create a lease",
                            ref->secret_name, b->name, ref->path, what);
}

/* The metadata of the latest version (or of the pinned one). -ENOENT when the field is not
 * there to deliver; meta.version is then what check-and-set must name: 0 for a path never
 * written, else the current version, also when that version is deleted or destroyed (Vault
 * compares cas with the current version whether or not it is soft-deleted). */
static int vault_stat(struct backend *b, const struct secret_ref *ref, struct secret_meta *ret_meta, char **ret_why) {
        bool known = false;
        int r = kv2_only(b, ref, false, &known, ret_why);
        if (r < 0)
                return r;
        long status = 0;
        json_t *j = NULL;
        if ((r = kv2_read_now(b, ref, ref->version, &status, &j, ret_why)) < 0)
                return r;
        if (!known && status == 200 && !response_looks_kv2(j)) {
                json_decref(j);
                return backend_fail(ret_why, -EOPNOTSUPP, "secret %s: backend '%s' (vault), path %s: the answer is not KV v2's (data.data and data.metadata)",
                                    ref->secret_name, b->name, ref->path);
        }
        json_t *data = json_object_get(j, "data");
        json_t *meta = json_object_get(data, "metadata");
        ret_meta->version = (uint64_t) json_integer_value(json_object_get(meta, "version"));
        ret_meta->created = created_time(meta);
        if (status == 404) {
                bool destroyed = json_is_true(json_object_get(meta, "destroyed"));
                json_decref(j);
                if (!ret_meta->version)
                        return backend_fail(ret_why, -ENOENT, "secret %s: backend '%s' (vault), path %s: not found",
                                            ref->secret_name, b->name, ref->path);
                return backend_fail(ret_why, -ENOENT, "secret %s: backend '%s' (vault), path %s: version %" PRIu64 " is %s",
                                    ref->secret_name, b->name, ref->path, ret_meta->version,
                                    destroyed ? "destroyed" : "deleted");
        }
        json_t *value = json_object_get(json_object_get(data, "data"), ref->field);
        bool present = value && !json_is_null(value);
        if (json_is_string(value))
                ret_meta->length = json_string_length(value);   /* what a run would deliver */
        json_decref(j);
        if (!present)
                return backend_fail(ret_why, -ENOENT, "secret %s: backend '%s' (vault), path %s: version %" PRIu64 " has no field '%s'",
                                    ref->secret_name, b->name, ref->path, ret_meta->version, ref->field);
        return 0;
}

/* The fields of version expect (0: none) that a write must carry over: a KV v2 write replaces
 * the whole secret, so the other fields of the path are copied from the version the write is
 * conditional on. A deleted or destroyed version has none left to copy. -ESTALE if that
 * version no longer exists at all. */
static int kv2_fields_of(struct backend *b, const struct secret_ref *ref, uint64_t expect, json_t **ret,
                         char **ret_why) {
        if (!expect) {
                json_t *empty = json_object();
                if (!empty)
                        return -ENOMEM;
                *ret = empty;
                return 0;
        }
        long status = 0;
        json_t *j = NULL;
        int r = kv2_read_now(b, ref, expect, &status, &j, ret_why);
        if (r < 0)
                return r;
        json_t *data = json_object_get(j, "data");
        if (status == 404 && !json_object_get(data, "metadata")) {
                json_decref(j);
                return backend_fail(ret_why, -ESTALE, "secret %s: backend '%s' (vault), path %s: version %" PRIu64 " no longer exists",
                                    ref->secret_name, b->name, ref->path, expect);
        }
        json_t *fields = json_object_get(data, "data");
        /* a deep copy: j goes away, and its strings (values) are wiped as it does */
        json_t *copy = json_is_object(fields) ? json_deep_copy(fields) : json_object();
        json_decref(j);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* A new version with ref's field set to value and every other field kept, written with
 * check-and-set on expect_version. The request is retried on connection errors and 5xx
 * like any other; a write that reached Vault but whose answer was lost is then refused by
 * the retry's own check-and-set (the version moved on), which reads as -ESTALE: the caller
 * stats again and finds its value there. */
static int vault_write(struct backend *b, const struct secret_ref *ref, const struct secret *value,
                       uint64_t expect_version, struct secret_meta *ret_meta, char **ret_why) {
        bool known = false;
        int r = kv2_only(b, ref, true, &known, ret_why);
        if (r < 0)
                return r;
        if (!known && !expect_version)
                /* nothing read tells this path's engine, and a KV v1 mount would store the
                 * write's envelope as the secret */
                return backend_fail(ret_why, -EOPNOTSUPP,
                                    "secret %s: backend '%s' (vault), path %s: the server does not say which engine the path is in (sys/internal/ui/mounts), so a first write cannot be known to be KV v2's [grant the token read on the path]",
                                    ref->secret_name, b->name, ref->path);
        if (ref->version)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (vault), path %s: a reference pinned to version %" PRIu64 " cannot be written",
                                    ref->secret_name, b->name, ref->path, ref->version);
        json_t *text = json_stringn((const char *) secret_data(value), secret_len(value));
        if (!text)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (vault), path %s: the value is not UTF-8 text, which a Vault field must be",
                                    ref->secret_name, b->name, ref->path);
        json_t *fields = NULL;
        if ((r = kv2_fields_of(b, ref, expect_version, &fields, ret_why)) < 0) {
                json_decref(text);
                return r;
        }
        json_t *body = json_pack("{s:{s:I}, s:o}", "options", "cas", (json_int_t) expect_version, "data", fields);
        if (!body || json_object_set_new(json_object_get(body, "data"), ref->field, text) < 0) {
                json_decref(body);
                return -ENOMEM;
        }
        _cleanup_free_ char *url_path = api_url("", ref->path, 0);
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        r = url_path ? vault_post(b, url_path, body, true, ((struct vault_state *) b->data)->deadline_ms, &status, &resp,
                                  ret_why)
                     : -ENOMEM;
        json_decref(body);
        if (r < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "secret %s: backend '%s' (vault), path %s: write: %s",
                                                       ref->secret_name, b->name, ref->path,
                                                       *ret_why ? *ret_why : strerror(-r));
        _cleanup_free_ char *where = strdup_printf("secret %s, write of %s", ref->secret_name, ref->path);
        vault_warnings(b, where ? where : ref->path, ref->secret_name, resp);
        if (status != 200) {
                _cleanup_free_ char *err = vault_error_text(resp);
                if (status == 400 && err && strstr(err, "check-and-set"))
                        return backend_fail(ret_why, -ESTALE, "secret %s: backend '%s' (vault), path %s: version %" PRIu64 " is no longer current (%s)",
                                            ref->secret_name, b->name, ref->path, expect_version, err);
                return backend_fail(ret_why, status == 404 ? -ENOENT : -EACCES,
                                    "secret %s: backend '%s' (vault), path %s: write: %s (HTTP %ld)%s%s",
                                    ref->secret_name, b->name, ref->path, status_cause(status), status,
                                    err ? ": " : "", err ? err : "");
        }
        json_t *j = NULL;
        if (http_json_parse(resp, &j) < 0)
                return backend_fail(ret_why, -EBADMSG, "secret %s: backend '%s' (vault), path %s: the write's answer is not valid JSON",
                                    ref->secret_name, b->name, ref->path);
        json_t *meta = json_object_get(j, "data");
        ret_meta->version = (uint64_t) json_integer_value(json_object_get(meta, "version"));
        ret_meta->created = created_time(meta);
        json_decref(j);
        backend_message(b, BACKEND_MESSAGE_INFO, "secret %s: backend '%s' (vault): wrote version %" PRIu64 " of %s",
                        ref->secret_name, b->name, ret_meta->version, ref->path);
        return 0;
}

#define VAULT_MAX_CONNECTIONS 8

/* Issues the GETs for every distinct path of refs not yet answered all at once; fetch() then
 * takes each answer (or its error) from what is kept here. Successful answers are taken at
 * once, so that every lease obtained is recorded (and revoked at close) even if the run stops
 * at an earlier secret. */
static int vault_prefetch(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why) {
        struct vault_state *v = b->data;
        if (!v)
                return 0;
        /* the answers' GETs first (m of them), then the mount lookups they need (l) */
        char **keys = calloc(n ? n : 1, sizeof(char *)), **paths = calloc(2 * n + 1, sizeof(char *));
        const struct secret_ref **owners = calloc(n ? n : 1, sizeof(*owners));
        const char **looked_up = calloc(n ? n : 1, sizeof(char *));
        struct http_result *results = calloc(2 * n + 1, sizeof(*results));
        size_t m = 0, l = 0;
        int r = 0;
        if (!keys || !paths || !owners || !looked_up || !results) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < n; i++) {
                if (!refs[i].field || refs[i].params)
                        continue;   /* fetch() says what is wrong, or issues (a POST, once) */
                _cleanup_free_ char *key = ref_key(&refs[i]);
                if (!key) {
                        r = -ENOMEM;
                        goto finish;
                }
                bool known = vault_cached(v, key) != NULL;
                for (size_t j = 0; !known && j < v->n_pending; j++)
                        known = streq(v->pending[j].key, key);
                for (size_t j = 0; !known && j < m; j++)
                        known = streq(keys[j], key);
                if (known)
                        continue;
                if (!(paths[m] = api_url("", refs[i].path, refs[i].version))) {
                        r = -ENOMEM;
                        goto finish;
                }
                owners[m] = &refs[i];
                keys[m++] = steal_pointer(&key);
        }
        /* One lookup per mount is the aim: paths with the same first segment are mostly in
         * one mount, so one of them is asked for here; fetch() asks for any path the answer
         * does not cover (another mount of several segments, a namespace's). */
        if (v->uses_left >= 0 && (int64_t) m > v->uses_left)
                backend_message(b, BACKEND_MESSAGE_WARNING,
                                "backend '%s' (vault): the token has %" PRId64 " use%s left and this run reads %zu paths: Vault refuses the requests after its last use [raise the role's token_num_uses, or use 0: unlimited]",
                                b->name, v->uses_left, v->uses_left == 1 ? "" : "s", m);
        for (size_t i = 0; i < m && !v->mounts_unavailable && !v->sequential; i++) {
                const char *path = owners[i]->path;
                size_t seg = strcspn(path, "/");
                bool asked = mount_cached(v, path) != NULL;
                for (size_t j = 0; !asked && j < l; j++)
                        asked = strncmp(looked_up[j], path, seg + 1) == 0;
                if (asked)
                        continue;
                if (!(paths[m + l] = mount_lookup_url(path))) {
                        r = -ENOMEM;
                        goto finish;
                }
                looked_up[l++] = path;
        }
        if (v->sequential || m + l < 2)
                goto finish;   /* nothing to overlap: fetch() asks as it always did */
        struct vault_pending *p = realloc(v->pending, (v->n_pending + m) * sizeof(*p));
        if (!p) {
                r = -ENOMEM;
                goto finish;
        }
        v->pending = p;
        backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): fetching %zu path%s and %zu mount%s concurrently",
                        b->name, m, m == 1 ? "" : "s", l, l == 1 ? "" : "s");
        r = http_get_many(v->http, (const char *const *) paths, m + l, v->token, v->deadline_ms,
                          VAULT_MAX_CONNECTIONS, results);
        if (r < 0) {
                if (r == -EOPNOTSUPP)
                        r = 0;   /* an old libcurl: one at a time */
                goto finish;
        }
        size_t answered = 0;
        for (size_t j = 0; j < m; j++)
                answered += results[j].r >= 0;
        token_spent(b, answered);
        /* the mounts first: the answers' errors may name them */
        for (size_t j = 0; j < l; j++) {
                struct http_result *res = &results[m + j];
                const struct vault_mount *ignored;
                int k = mount_take(b, looked_up[j], res->r, res->status, steal_pointer(&res->body), &ignored, NULL);
                if (k == -ENOMEM) {
                        r = k;
                        goto finish;
                }
        }
        for (size_t j = 0; j < m; j++) {
                struct http_result *res = &results[j];
                if (res->r == 0 && res->status == 200) {
                        json_t *taken = NULL;
                        _cleanup_free_ char *why = NULL;
                        int k = vault_take(b, owners[j], keys[j], 0, 200, steal_pointer(&res->body), &taken, &why);
                        if (k == -ENOMEM) {
                                r = k;
                                goto finish;
                        }
                        if (k >= 0) {
                                json_decref(taken);   /* kept as the body; fetch() parses it again */
                                continue;
                        }
                        /* a bad answer: the error as fetch() would give it */
                        res->r = k;
                        res->why = steal_pointer(&why);
                        v->pending[v->n_pending++] = (struct vault_pending) {
                                .key = steal_pointer(&keys[j]), .result = *res, .final = true };
                } else
                        v->pending[v->n_pending++] = (struct vault_pending) {
                                .key = steal_pointer(&keys[j]), .result = *res };
                *res = (struct http_result) {};
        }
finish:
        for (size_t j = 0; j < m; j++)
                free(keys[j]);
        for (size_t j = 0; j < m + l; j++) {
                free(paths[j]);
                if (results)
                        http_result_done(&results[j]);
        }
        free(keys);
        free(paths);
        free(owners);
        free(looked_up);
        free(results);
        (void) ret_why;
        return r == -ENOMEM ? r : 0;   /* otherwise fetch() asks for each path itself */
}

/* GETs paths (n of them, "/v1/...") at once; each result goes to *pending under its path. */
static int get_many_into(struct backend *b, char **paths, size_t n, struct vault_pending **pending, size_t *n_pending,
                         bool spends) {
        struct vault_state *v = b->data;
        if (n == 0)
                return 0;
        _cleanup_free_ struct http_result *results = calloc(n, sizeof(*results));
        struct vault_pending *p = realloc(*pending, (*n_pending + n) * sizeof(*p));
        if (!results || !p)
                return -ENOMEM;
        *pending = p;
        int r = http_get_many(v->http, (const char *const *) paths, n, v->token, v->deadline_ms, VAULT_MAX_CONNECTIONS,
                              results);
        if (r < 0)
                return r == -EOPNOTSUPP ? 0 : r;
        size_t answered = 0;
        for (size_t j = 0; j < n; j++) {
                answered += results[j].r >= 0;
                p[(*n_pending)++] = (struct vault_pending) { .key = steal_pointer(&paths[j]), .result = results[j] };
        }
        if (spends)
                token_spent(b, answered);
        return 0;
}

/* plan's survey: the mount of every path (one lookup per first segment, at once), then every
 * KV v2 path's current version (at once); kv2_read_now() takes each answer once. Paths that
 * are not KV v2 are not read (a dynamic one would create a lease). */
static int vault_stat_prefetch(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why) {
        struct vault_state *v = b->data;
        if (!v || v->sequential)
                return 0;
        char **paths = calloc(n ? n : 1, sizeof(char *));
        const char **looked = calloc(n ? n : 1, sizeof(char *));
        struct vault_pending *lookups = NULL;
        size_t m = 0, n_lookups = 0;
        int r = 0;
        if (!paths || !looked) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < n && !v->mounts_unavailable; i++) {
                size_t seg = strcspn(refs[i].path, "/");
                bool asked = mount_cached(v, refs[i].path) != NULL;
                for (size_t j = 0; !asked && j < m; j++)
                        asked = strncmp(looked[j], refs[i].path, seg + 1) == 0;
                if (asked)
                        continue;
                if (!(paths[m] = mount_lookup_url(refs[i].path))) {
                        r = -ENOMEM;
                        goto finish;
                }
                looked[m++] = refs[i].path;
        }
        if ((r = get_many_into(b, paths, m, &lookups, &n_lookups, false)) < 0)
                goto finish;
        for (size_t j = 0; j < n_lookups; j++) {
                const struct vault_mount *ignored;
                struct http_result *res = &lookups[j].result;
                if ((r = mount_take(b, looked[j], res->r, res->status, steal_pointer(&res->body), &ignored, NULL)) == -ENOMEM)
                        goto finish;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                const struct vault_mount *mt = mount_cached(v, refs[i].path);
                bool kv2 = mt ? mount_is_kv2(mt) && startswith(mount_rest(mt, refs[i].path), "data/")
                              : vault_path_is_kv2(refs[i].path);
                if (!refs[i].field || refs[i].params || !kv2)
                        continue;
                _cleanup_free_ char *url = api_url("", refs[i].path, refs[i].version);
                if (!url) {
                        r = -ENOMEM;
                        goto finish;
                }
                bool dup = false;
                for (size_t j = 0; j < k && !dup; j++)
                        dup = streq(paths[j], url);
                for (size_t j = 0; j < v->n_stat_pending && !dup; j++)
                        dup = streq(v->stat_pending[j].key, url);
                if (!dup) {
                        free(paths[k]);
                        paths[k++] = steal_pointer(&url);
                }
        }
        if (k > 1) {
                backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): surveying %zu paths concurrently", b->name, k);
                r = get_many_into(b, paths, k, &v->stat_pending, &v->n_stat_pending, true);
        }
finish:
        for (size_t j = 0; paths && j < (m > n ? m : n); j++)
                free(paths[j]);
        for (size_t j = 0; j < n_lookups; j++) {
                free(lookups[j].key);
                http_result_done(&lookups[j].result);
        }
        free(lookups);
        free(paths);
        free(looked);
        (void) ret_why;
        return r == -ENOMEM ? r : 0;
}

/* One renewal: sys/leases/renew for a lease, auth/token/renew-self for the login token.
 * Vault may grant less than asked (max TTL): the TTL it returns is what counts. */
static void lease_renew(struct backend *b, struct vault_lease *l, uint64_t now) {
        uint64_t budget = l->expires_ms > now ? (l->expires_ms - now) / 2 : 0;
        if (budget > b->timeout_ms)
                budget = b->timeout_ms;
        if (budget < 500)
                budget = 500;
        struct vault_state *v = b->data;
        uint64_t increment = l->ttl_s;
        if (v->max_ttl_s && increment > v->max_ttl_s)
                increment = v->max_ttl_s;   /* policy.max_ttl */
        _cleanup_free_ char *inc = strdup_printf("%" PRIu64 "s", increment);
        json_t *body = l->id ? json_pack("{s:s, s:I}", "lease_id", l->id, "increment", (json_int_t) increment)
                             : json_pack("{s:s?}", "increment", inc);
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        _cleanup_free_ char *why = NULL;
        int r = body ? vault_post(b, l->id ? "/v1/sys/leases/renew" : "/v1/auth/token/renew-self", body, true,
                                  now + budget, &status, &resp, &why) : -ENOMEM;
        json_decref(body);
        const char *what = l->id ? l->id : "the login token";
        _cleanup_free_ char *where = strdup_printf("renewal of %s", what);
        if (r >= 0)
                vault_warnings(b, where ? where : what, "vault-answer", resp);
        json_t *j = NULL;
        if (r >= 0 && status == 200 && http_json_parse(resp, &j) >= 0) {
                json_t *src = l->id ? j : json_object_get(j, "auth");
                uint64_t ttl = (uint64_t) json_integer_value(json_object_get(src, "lease_duration"));
                l->renewable = json_is_true(json_object_get(src, "renewable"));
                json_decref(j);
                now = now_monotonic_ms();
                lease_schedule(l, now, ttl);
                backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): renewed %s for %" PRIu64 " s", b->name,
                                what, ttl);
                backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_LEASE_RENEW, .lease_id = l->id,
                                                         .ttl_s = ttl });
                if (ttl < increment && !l->expiring_noted) {
                        /* Vault granted less than asked: its maximum TTL is reached, and the
                         * lease ends then however often it is renewed */
                        l->expiring_noted = true;
                        backend_message(b, BACKEND_MESSAGE_WARNING,
                                        "backend '%s' (vault): %s expires in %" PRIu64 " s and cannot be renewed further (maximum TTL reached)",
                                        b->name, what, ttl);
                        backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_LEASE_EXPIRING, .lease_id = l->id,
                                                                 .ttl_s = ttl, .reason = "maximum TTL reached" });
                }
                if (ttl < increment && ttl <= 1)
                        l->renew_at_ms = 0;   /* nothing left to extend */
                return;
        }
        if (r == -ECANCELED)
                return;   /* the step is over: the lease is revoked next, not renewed */
        _cleanup_free_ char *failure = r < 0 ? strdup(why ? why : strerror(-r))
                                             : vault_error_text(resp);
        backend_message(b, BACKEND_MESSAGE_WARNING, "backend '%s' (vault): could not renew %s: %s%s%s", b->name, what,
                        r < 0 ? "" : status_cause(status), r < 0 || !failure ? "" : ": ", failure ? failure : "");
        _cleanup_free_ char *reason = r < 0 ? strdup(failure ? failure : "failed")
                                            : strdup_printf("HTTP %ld %s%s%s", status, status_cause(status),
                                                            failure ? ": " : "", failure ? failure : "");
        backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_LEASE_RENEW_FAILED, .lease_id = l->id,
                                                 .reason = reason ? reason : "failed" });
        /* try again halfway to expiry while there is time */
        now = now_monotonic_ms();
        l->renew_at_ms = l->expires_ms > now + 2000 ? now + (l->expires_ms - now) / 2 : 0;
}

static uint64_t vault_renew(struct backend *b, uint64_t now) {
        struct vault_state *v = b->data;
        if (!v || (!v->token && !v->via_agent) || v->used_up)
                return 0;   /* a token whose last use is spent is revoked, and its leases */
        /* A renewal spends a use too: the last one is kept for revoke-self, and spending
         * it would end the token, and with it every lease it renewed. */
        if (v->uses_left >= 0 && v->uses_left <= 1)
                return 0;
        bool renew_token = v->token_from_login;
        uint64_t next = 0;
        for (size_t i = 0; i <= v->n_leases; i++) {
                struct vault_lease *l = i < v->n_leases ? &v->leases[i] : renew_token ? &v->login : NULL;
                if (!l || !l->renew_at_ms)
                        continue;
                if (now >= l->renew_at_ms)
                        lease_renew(b, l, now);
                if (l->renew_at_ms && (!next || l->renew_at_ms < next))
                        next = l->renew_at_ms;
        }
        return next;
}

/* Says how a revocation (of lease_id; NULL: the login token) went, as a message and as an
 * event; how (a reason) when it was not by a request of its own. */
static void revoked(struct backend *b, const char *lease_id, int r, long status, const char *why, const char *how,
                    const struct secret *resp) {
        const char *what = lease_id ? lease_id : "the login token";
        if (r >= 0 && resp) {
                _cleanup_free_ char *where = strdup_printf("revocation of %s", what);
                vault_warnings(b, where ? where : what, "vault-answer", resp);
        }
        if (r >= 0 && (status == 200 || status == 204)) {
                backend_message(b, BACKEND_MESSAGE_INFO, "backend '%s' (vault): revoked %s%s%s", b->name, what,
                                how ? ": " : "", how ? how : "");
                backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_LEASE_REVOKE, .lease_id = lease_id,
                                                         .reason = how });
                return;
        }
        _cleanup_free_ char *text = r >= 0 ? vault_error_text(resp) : NULL;
        _cleanup_free_ char *reason = r < 0 ? strdup(why ? why : strerror(-r))
                : strdup_printf("HTTP %ld %s%s%s%s", status, status_cause(status), text ? ": " : "", text ? text : "",
                                status == 403 && lease_id && startswith(lease_id, "certificate ")
                                        ? " (revoking a certificate needs update on MOUNT/revoke, which Vault's default policy does not grant; it ends at its expiry)"
                                : status == 403 && lease_id
                                        ? " (Vault's default policy does not allow sys/leases/revoke; the lease ends with its TTL)"
                                        : "");
        backend_message(b, BACKEND_MESSAGE_WARNING, "backend '%s' (vault): could not revoke %s: %s", b->name, what,
                        reason ? reason : "failed");
        backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_LEASE_REVOKE_FAILED, .lease_id = lease_id,
                                                 .reason = reason ? reason : "failed" });
}

/* Who the token is, for the audit log: auth/token/lookup-self, one request, made only when
 * there is a log to write; but not for a login token with num_uses, whose uses the run
 * needs (the login's auth says the same, but the display name). The token's id and
 * accessor stay out. A caller's token is told here what it is (type, uses). */
static int vault_identity(struct backend *b, struct backend_identity *ret, char **ret_why) {
        struct vault_state *v = b->data;
        if (!(ret->auth = strdup(v->auth)) || (v->token_type && !(ret->token_type = strdup(v->token_type))))
                return -ENOMEM;
        ret->from_login = v->token_from_login;
        if (v->token_from_login && v->uses_left >= 0) {
                ret->orphan = v->orphan;
                ret->num_uses = (uint64_t) v->uses_left;
                ret->ttl_s = v->login.ttl_s;
                ret->renewed = v->login.renewable;
                if ((v->login_entity_id && !(ret->entity_id = strdup(v->login_entity_id))) ||
                    (v->login_policies && !(ret->policies = strv_copy(v->login_policies))))
                        return -ENOMEM;
                return 0;
        }
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        int r = http_request(v->http, "GET", "/v1/auth/token/lookup-self", v->token, NULL,
                             v->deadline_ms, &status, &resp, ret_why);
        token_spent(b, r >= 0);
        if (r >= 0)
                vault_warnings(b, "token lookup", "vault-answer", resp);
        if (r < 0)
                return r == -ENOMEM ? r : backend_fail(ret_why, r, "backend '%s' (vault): token lookup: %s", b->name,
                                                       *ret_why ? *ret_why : strerror(-r));
        json_t *j = NULL;
        if (status != 200 || http_json_parse(resp, &j) < 0) {
                _cleanup_free_ char *text = status != 200 ? vault_error_text(resp) : NULL;
                return backend_fail(ret_why, -EACCES, "backend '%s' (vault): token lookup: HTTP %ld %s%s%s", b->name,
                                    status, status_cause(status), text ? ": " : "", text ? text : "");
        }
        json_t *data = json_object_get(j, "data");
        const char *name = json_string_value(json_object_get(data, "display_name"));
        const char *entity = json_string_value(json_object_get(data, "entity_id"));
        const char *type = json_string_value(json_object_get(data, "type"));
        r = 0;
        if ((name && !(ret->display_name = strdup(name))) ||
            (entity && *entity && !(ret->entity_id = strdup(entity))))
                r = -ENOMEM;
        if (r >= 0 && type && !v->token_type) {
                free(ret->token_type);
                if (!(v->token_type = strdup(type)) || !(ret->token_type = strdup(type)))
                        r = -ENOMEM;
        }
        if (!v->token_from_login) {
                v->orphan = json_is_true(json_object_get(data, "orphan"));
                /* what is left after this lookup's own use; below 0: that was the last */
                json_t *uses = json_object_get(data, "num_uses");
                token_uses_from(v, uses);
                if (json_integer_value(uses) < 0)
                        v->used_up = true;
        }
        ret->orphan = json_is_true(json_object_get(data, "orphan"));
        ret->num_uses = v->uses_left > 0 ? (uint64_t) v->uses_left : 0;
        ret->ttl_s = (uint64_t) json_integer_value(json_object_get(data, "ttl"));
        ret->renewed = v->token_from_login && v->login.renewable;   /* a caller's token never is */
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(data, "policies"), i, p)
                if (r >= 0 && json_is_string(p))
                        r = strv_extend(&ret->policies, json_string_value(p));
        json_decref(j);
        return r;
}

/* sys/leases/revoke for each lease; allowed only by a policy that grants it (Vault's
 * default policy does not: vault/policy/policy_store.go), so a 403 is what it is. */
static void revoke_one(struct backend *b, const struct vault_lease *l, uint64_t deadline) {
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        _cleanup_free_ char *why = NULL;
        json_t *body = l->serial ? json_pack("{s:s}", "serial_number", l->serial) : json_pack("{s:s}", "lease_id", l->id);
        int r = body ? vault_post(b, l->serial ? l->revoke_url : "/v1/sys/leases/revoke", body, true, deadline, &status,
                                  &resp, &why)
                     : -ENOMEM;
        json_decref(body);
        revoked(b, l->id, r, status, why, NULL, resp);
}

/* certificates: those only (every_lease false), or every lease too */
static void revoke_leases(struct backend *b, uint64_t deadline, bool every_lease) {
        struct vault_state *v = b->data;
        for (size_t i = 0; i < v->n_leases; i++)
                if (every_lease || v->leases[i].serial)
                        revoke_one(b, &v->leases[i], deadline);
}

/* At exit, what we obtained goes, and the audit log says how Vault did it:
 * - a login token (service): auth/token/revoke-self, which revokes its leases too (they
 *   are expired at once and revoked by Vault in the background: vault/expiration.go
 *   RevokeByToken), and which the default policy allows, unlike sys/leases/revoke;
 * - a token whose last use is spent: Vault revoked it and its leases already;
 * - a batch token: it cannot be revoked (400, vault/token_store.go) and is no failure: it
 *   ends with its TTL; its leases are revoked one by one, as a caller's token's are. */
static void vault_revoke_all(struct backend *b) {
        struct vault_state *v = b->data;
        uint64_t budget = b->timeout_ms < VAULT_CLOSE_TIMEOUT_MS ? b->timeout_ms : VAULT_CLOSE_TIMEOUT_MS;
        uint64_t deadline = now_monotonic_ms() + budget;
        if (!v->http || (!v->token && !v->via_agent))
                return;
        if (v->used_up) {
                static const char how[] = "the token's last use was spent: Vault revoked it and its leases";
                for (size_t i = 0; i < v->n_leases; i++)
                        if (v->leases[i].serial)
                                /* not a lease: it outlives the token */
                                revoked(b, v->leases[i].id, -EPERM, 0,
                                        "the token's last use was spent: nothing can revoke it now; it ends at its expiry",
                                        NULL, NULL);
                        else
                                revoked(b, v->leases[i].id, 0, 204, NULL, how, NULL);
                if (v->token_from_login)
                        revoked(b, NULL, 0, 204, NULL, how, NULL);
                return;
        }
        if (!v->token_from_login || token_is_batch(v)) {
                revoke_leases(b, deadline, true);
                if (v->token_from_login) {
                        uint64_t now = now_monotonic_ms();
                        uint64_t left = v->login.expires_ms > now ? (v->login.expires_ms - now) / 1000 : 0;
                        backend_message(b, BACKEND_MESSAGE_INFO,
                                        "backend '%s' (vault): the login token is a batch token, which Vault cannot revoke: it ends in %" PRIu64 " s",
                                        b->name, left);
                        backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_LEASE_EXPIRING, .ttl_s = left,
                                                                 .reason = "a batch token: Vault cannot revoke it; it ends with its TTL" });
                }
                return;
        }
        /* certificates first: they are not leases, and their revocation needs the token */
        revoke_leases(b, deadline, false);
        long status = 0;
        _cleanup_secret_ struct secret *resp = NULL;
        _cleanup_free_ char *why = NULL;
        int r = vault_post(b, "/v1/auth/token/revoke-self", NULL, true, deadline, &status, &resp, &why);
        if (r >= 0 && (status == 200 || status == 204)) {
                for (size_t i = 0; i < v->n_leases; i++)
                        if (!v->leases[i].serial)
                                revoked(b, v->leases[i].id, r, status, NULL,
                                        "with the login token (auth/token/revoke-self): Vault expired it at once", NULL);
                revoked(b, NULL, r, status, NULL, NULL, resp);
                return;
        }
        /* the token stays: its leases, at least, may go one by one */
        for (size_t i = 0; i < v->n_leases; i++)
                if (!v->leases[i].serial)
                        revoke_one(b, &v->leases[i], deadline);
        revoked(b, NULL, r, status, why, NULL, resp);
}

static void vault_close(struct backend *b) {
        struct vault_state *v = b->data;
        if (!v)
                return;
        vault_revoke_all(b);
        for (size_t i = 0; i < v->n_responses; i++) {
                free(v->responses[i].key);
                secret_free(v->responses[i].body);
        }
        free(v->responses);
        for (size_t i = 0; i < v->n_pending; i++) {
                free(v->pending[i].key);
                http_result_done(&v->pending[i].result);
        }
        free(v->pending);
        for (size_t i = 0; i < v->n_stat_pending; i++) {
                free(v->stat_pending[i].key);
                http_result_done(&v->stat_pending[i].result);
        }
        free(v->stat_pending);
        for (size_t i = 0; i < v->n_leases; i++) {
                free(v->leases[i].id);
                free(v->leases[i].serial);
                free(v->leases[i].revoke_url);
        }
        free(v->leases);
        for (size_t i = 0; i < v->n_mounts; i++) {
                free(v->mounts[i].path);
                free(v->mounts[i].type);
        }
        free(v->mounts);
        free(v->token_type);
        free(v->login_entity_id);
        strv_free(v->login_policies);
        secret_free(v->token);
        http_client_free(v->http);
        free(v);
        b->data = NULL;
}

/* Every variable this configuration may take a credential from. The token variable is
 * declared whatever the auth method: Vault's own CLI and SDKs read it, so a step handed it
 * could act as the caller. A jwt login without jwt_env reads $VAULT_ID_TOKEN, or asks
 * GitHub's OIDC endpoint with the job's request token. */
static int vault_credential_env(const struct backend_config *c, char ***vars) {
        bool jwt_default = c->vault_auth == BACKEND_VAULT_AUTH_JWT && !c->jwt_env;
        const char *names[] = { c->token_env ? c->token_env : VAULT_TOKEN_ENV, c->token_env ? NULL : "BAO_TOKEN",
                                c->role_id_env, c->secret_id_env,
                                c->jwt_env, jwt_default ? VAULT_JWT_ENV : NULL,
                                jwt_default ? GITHUB_OIDC_TOKEN_ENV : NULL };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                int r = names[i] ? strv_extend(vars, names[i]) : 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The token file a token auth without token_env may read (the step must not act as the
 * user with it any more than with $VAULT_TOKEN). */
static int vault_credential_files(const struct backend_config *c, char ***paths) {
        /* the key; or, without one, the certificate's file, which then holds the key too */
        const char *key = c->client_key ? c->client_key : c->client_cert ? c->client_cert
                        : nonempty(vault_env("CLIENT_KEY")) ? nonempty(vault_env("CLIENT_KEY"))
                        : nonempty(vault_env("CLIENT_CERT"));
        int r = key ? strv_extend(paths, key) : 0;
        if (r < 0 || c->vault_auth != BACKEND_VAULT_AUTH_TOKEN || c->token_env)
                return r;
        _cleanup_free_ char *file = token_file_path();
        return file ? strv_extend(paths, file) : 0;
}

const struct backend_ops vault_backend_ops = {
        .open = vault_open,
        .fetch = vault_fetch,
        .prefetch = vault_prefetch,
        .close = vault_close,
        .stat = vault_stat,
        .stat_prefetch = vault_stat_prefetch,
        .write = vault_write,
        .identity = vault_identity,
        .renew = vault_renew,
        .credential_env = vault_credential_env,
        .credential_files = vault_credential_files,
};
