/* Where secrets come from: the manifest's backends, opened on first use, and the reference a
 * secret's definition names. Shared by run (fetch) and plan/apply/rotate (stat, write). */
#include "agent.h"
#include "output.h"
#include "sandbox.h"

enum backend_kind backend_kind_of(enum backend_type t) {
        switch (t) {
        case BACKEND_ENV:   return BACKEND_KIND_ENV;
        case BACKEND_EXEC:  return BACKEND_KIND_EXEC;
        case BACKEND_VAULT: return BACKEND_KIND_VAULT;
        case BACKEND_DOTENV: return BACKEND_KIND_DOTENV;
        case BACKEND_FILE:
        default:            return BACKEND_KIND_FILE;
        }
}

static enum backend_vault_auth vault_auth_of(enum vault_auth a) {
        switch (a) {
        case VAULT_AUTH_APPROLE: return BACKEND_VAULT_AUTH_APPROLE;
        case VAULT_AUTH_JWT:     return BACKEND_VAULT_AUTH_JWT;
        case VAULT_AUTH_KUBERNETES: return BACKEND_VAULT_AUTH_KUBERNETES;
        case VAULT_AUTH_CERT:    return BACKEND_VAULT_AUTH_CERT;
        case VAULT_AUTH_TOKEN:
        case VAULT_AUTH_NONE:
        default:                 return BACKEND_VAULT_AUTH_TOKEN;
        }
}

static enum generate_charset generate_charset_of(enum charset c) {
        switch (c) {
        case CHARSET_HEX:       return GENERATE_HEX;
        case CHARSET_BASE64URL: return GENERATE_BASE64URL;
        case CHARSET_ASCII:     return GENERATE_ASCII;
        case CHARSET_ALNUM:
        default:                return GENERATE_ALNUM;
        }
}

struct secret_ref secret_ref_of(const struct mf_secret *s) {
        return (struct secret_ref) {
                .secret_name = s->name,
                .path = s->path,
                .field = s->field,
                .version = s->version,
                .params = s->params,
                .generate_length = s->gen_length,
                .generate_charset = generate_charset_of(s->gen_charset),
        };
}

int sources_init(struct sources *src, const struct manifest *m) {
        *src = (struct sources) { .m = m };
        src->open = calloc(m->n_backends ? m->n_backends : 1, sizeof(*src->open));
        return src->open ? 0 : -ENOMEM;
}

void sources_close(struct sources *src) {
        for (size_t i = 0; src->open && i < src->m->n_backends; i++)
                src->open[i] = backend_close(src->open[i]);
        src->generator = backend_close(src->generator);
}

void sources_done(struct sources *src) {
        sources_close(src);
        free(src->open);
        *src = (struct sources) {};
}

/* Backends print nothing: what they have to say arrives as message events, and what they
 * hold that no message may show (tokens, keys) as credential events, for the masker. log_*
 * writes each line with one write(), and the masker takes a lock, so this is safe on the
 * renewal thread too. */
void backend_event_print(const struct backend_event *e) {
        if (e->kind == BACKEND_EVENT_CREDENTIAL && e->credential) {
                (void) output_mask_add_as(e->message ? e->message : "credential", secret_data(e->credential),
                                          secret_len(e->credential), true);
                return;
        }
        if (e->kind != BACKEND_EVENT_MESSAGE || !e->message)
                return;
        if (e->level == BACKEND_MESSAGE_WARNING)
                log_warning("%s", e->message);
        else
                log_info("%s", e->message);
}

/* An exec provider starts through the sandbox's fork primitive like every child of ours. It
 * gets our environment as it is during the fetch: a provider such as `pass` or `vault kv get`
 * needs HOME, PATH and its own credentials (docs/decisions.md). */
static int spawn_provider(char *const *argv, int out_fd, int err_fd, pid_t *ret_pid) {
        return spawn_helper(argv, environ, out_fd, err_fd, ret_pid);
}

static void print_backend_event(void *userdata, const struct backend_event *e) {
        backend_event_print(e);
}

/* A backend_config for a manifest backend, and the strings it points at. */
struct source_config {
        struct backend_config config;
        char *path, *key_file, *ca_cert, *ca_path, *client_cert, *client_key, *token_file;
};

static void source_config_done(struct source_config *c) {
        free(c->path);
        free(c->key_file);
        free(c->ca_cert);
        free(c->ca_path);
        free(c->client_cert);
        free(c->client_key);
        free(c->token_file);
        *c = (struct source_config) {};
}

/* A diagnostic and benchmark switch (docs/vault.md), not a manifest setting: it changes how
 * fast secrets arrive, never which. */
static bool vault_sequential_requested(void) {
        const char *v = getenv("SECRETS_RUN_VAULT_SEQUENTIAL");
        return v && streq(v, "1");
}

/* What backend_open() gets for the manifest's backend b, opening nothing: paths relative to
 * the manifest's directory, and secrets-run's own defaults filled in (the store's path, the
 * key file, which stays NULL if $HOME is unknown), so backends know no file layout. Messages
 * are printed until someone sets another event handler. */
static int source_config_of(const struct manifest *m, const struct mf_backend *b, struct source_config *ret) {
        _cleanup_(source_config_done) struct source_config c = {};
        enum backend_kind kind = backend_kind_of(b->type);
        bool file = kind == BACKEND_KIND_FILE;
        if (manifest_file(m, b->path ? b->path : file ? STORE_DEFAULT_PATH : NULL, &c.path) < 0 ||
            manifest_file(m, b->key_file, &c.key_file) < 0 ||
            manifest_file(m, b->ca_cert, &c.ca_cert) < 0 || manifest_file(m, b->ca_path, &c.ca_path) < 0 ||
            manifest_file(m, b->client_cert, &c.client_cert) < 0 || manifest_file(m, b->client_key, &c.client_key) < 0 ||
            manifest_file(m, b->auth_token_file, &c.token_file) < 0)
                return -ENOMEM;
        int k;
        if (file && !c.key_file && (k = store_key_default_path(&c.key_file)) < 0 && k != -ENOENT)
                return k;
        c.config = (struct backend_config) {
                .name = b->name,
                .kind = kind,
                .timeout_ms = b->timeout * 1000,
                .command = b->command,
                .spawn = spawn_provider,
                .path = c.path,
                .key_file = c.key_file,
                .address = b->address,
                .namespace_ = b->namespace_,
                .ca_cert = c.ca_cert,
                .ca_path = c.ca_path,
                .client_cert = c.client_cert,
                .client_key = c.client_key,
                .token_file = c.token_file,
                .cert_name = b->auth_name,
                .insecure = b->insecure,
                .vault_auth = vault_auth_of(b->auth),
                .auth_mount = b->auth_mount,
                .auth_role = b->auth_role,
                .jwt_env = b->jwt_env,
                .audience = b->audience,
                .role_id_env = b->role_id_env,
                .secret_id_env = b->secret_id_env,
                .token_env = b->token_env,
                .max_ttl_s = m->policy.max_ttl,
                .vault_sequential = kind == BACKEND_KIND_VAULT && vault_sequential_requested(),
                .on_event = print_backend_event,
        };
        *ret = c;
        c = (struct source_config) {};
        return 0;
}

int sources_credential_env(const struct manifest *m, char ***vars) {
        for (size_t i = 0; i < m->n_backends; i++) {
                _cleanup_(source_config_done) struct source_config c = {};
                int k = source_config_of(m, &m->backends[i], &c);
                if (k < 0 || (k = backend_credential_env(&c.config, vars)) < 0)
                        return k;
        }
        return 0;
}

int sources_credential_files(const struct manifest *m, char ***paths) {
        for (size_t i = 0; i < m->n_backends; i++) {
                _cleanup_(source_config_done) struct source_config c = {};
                int k = source_config_of(m, &m->backends[i], &c);
                if (k < 0 || (k = backend_credential_files(&c.config, paths)) < 0)
                        return k;
                /* a .env file holds every value it has, the granted ones or not */
                if (c.config.kind == BACKEND_KIND_DOTENV && c.path && (k = strv_extend(paths, c.path)) < 0)
                        return k;
        }
        return 0;
}

int sources_store_files(const struct manifest *m, char ***paths) {
        for (size_t i = 0; i < m->n_backends; i++) {
                _cleanup_(source_config_done) struct source_config c = {};
                int k = source_config_of(m, &m->backends[i], &c);
                if (k < 0)
                        return k;
                if (c.config.kind != BACKEND_KIND_FILE)
                        continue;
                if ((c.path && (k = strv_extend(paths, c.path)) < 0) ||
                    (c.key_file && (k = strv_extend(paths, c.key_file)) < 0))
                        return k;
        }
        return 0;
}

static int open_generator(struct sources *src, char **ret_why) {
        if (src->generator)
                return 0;
        struct backend_config c = { .name = "generate", .kind = BACKEND_KIND_GENERATE, .on_event = print_backend_event };
        return backend_open(&c, &src->generator, ret_why);
}

static int open_backend(struct sources *src, size_t i, char **ret_why) {
        if (src->open[i])
                return 0;
        _cleanup_(source_config_done) struct source_config c = {};
        int k = source_config_of(src->m, &src->m->backends[i], &c);
        if (k < 0)
                return k;
        k = backend_open(&c.config, &src->open[i], ret_why);
        if (k == -ENOENT && c.config.kind == BACKEND_KIND_FILE && !c.key_file && !store_key_in_environment() &&
            ret_why && *ret_why) {
                /* the store had no key file to read because we found no default */
                char *why = strdup_printf("%s (%s)", *ret_why, NO_DEFAULT_KEY_FILE);
                if (why) {
                        free(*ret_why);
                        *ret_why = why;
                }
        }
        return k;
}

int sources_get(struct sources *src, const struct mf_secret *s, struct backend **ret) {
        const struct manifest *m = src->m;
        _cleanup_free_ char *why = NULL;
        int k;
        if (mf_secret_is_ephemeral(s)) {
                if ((k = open_generator(src, &why)) < 0)
                        goto fail;
                *ret = src->generator;
                return 0;
        }
        for (size_t i = 0; s->backend && i < m->n_backends; i++) {
                if (!streq(m->backends[i].name, s->backend))
                        continue;
                if (!src->open[i]) {
                        if ((k = open_backend(src, i, &why)) < 0)
                                goto fail;
                        if (src->on_open && (k = src->on_open(src->userdata, src->open[i], &m->backends[i])) < 0)
                                return k;
                }
                *ret = src->open[i];
                return 0;
        }
        log_error("%s:%u: secret %s: unknown backend '%s'", m->path, s->pos.line, s->name,
                  s->backend ? s->backend : "(none)");
        return -ENOENT;
fail:
        log_error("%s:%u: secret %s: %s", m->path, s->pos.line, s->name, why ? why : strerror(-k));
        return k;
}

uint64_t sources_renew(struct sources *src, uint64_t now_ms) {
        uint64_t next = 0;
        for (size_t i = 0; src->open && i < src->m->n_backends; i++) {
                uint64_t t = src->open[i] ? backend_renew(src->open[i], now_ms) : 0;
                if (t && (!next || t < next))
                        next = t;
        }
        return next;
}

int sources_generate(struct sources *src, const struct mf_secret *s, struct secret **ret) {
        _cleanup_free_ char *why = NULL;
        struct secret_ref ref = secret_ref_of(s);
        int k = open_generator(src, &why);
        if (k >= 0)
                k = backend_fetch(src->generator, &ref, ret, NULL, &why);
        if (k < 0)
                log_error("secret %s: %s", s->name, why ? why : strerror(-k));
        return k;
}
