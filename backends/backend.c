/* Backend dispatch: one object per configured store, the same calls for every kind. */
#include "backend-private.h"

static const struct backend_ops *ops_for(enum backend_kind k) {
        switch (k) {
        case BACKEND_KIND_ENV:      return &env_backend_ops;
        case BACKEND_KIND_EXEC:     return &exec_backend_ops;
        case BACKEND_KIND_GENERATE: return &generate_backend_ops;
        case BACKEND_KIND_FILE:     return &file_backend_ops;
        case BACKEND_KIND_VAULT:    return &vault_backend_ops;
        case BACKEND_KIND_DOTENV:   return &dotenv_backend_ops;
        default:                    return NULL;
        }
}

const char *backend_kind_name(enum backend_kind k) {
        switch (k) {
        case BACKEND_KIND_FILE:     return "file";
        case BACKEND_KIND_ENV:      return "env";
        case BACKEND_KIND_EXEC:     return "exec";
        case BACKEND_KIND_GENERATE: return "generate";
        case BACKEND_KIND_VAULT:    return "vault";
        case BACKEND_KIND_DOTENV:   return "dotenv";
        default:                    return "unknown";
        }
}

int backend_fail(char **ret_why, int r, const char *fmt, ...) {
        if (ret_why) {
                va_list ap;
                va_start(ap, fmt);
                char *s = NULL;
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
                free(*ret_why);
                *ret_why = s;
        }
        return r;
}

void secret_meta_done(struct secret_meta *m) {
        free(m->lease_id);
        *m = (struct secret_meta) {};
}

int backend_open(const struct backend_config *config, struct backend **ret, char **ret_why) {
        const struct backend_ops *ops = ops_for(config->kind);
        if (!ops)
                return backend_fail(ret_why, -EOPNOTSUPP,
                                    "backend '%s': type %s is not available in this version of secrets-run",
                                    config->name, backend_kind_name(config->kind));

        struct backend *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->ops = ops;
        b->kind = config->kind;
        b->timeout_ms = config->timeout_ms ? config->timeout_ms : 30000;
        b->name = strdup(config->name ? config->name : backend_kind_name(config->kind));
        if (!b->name)
                return backend_close(b), -ENOMEM;
        if (config->command && !(b->command = strv_copy(config->command)))
                return backend_close(b), -ENOMEM;
        if (config->path && !(b->path = strdup(config->path)))
                return backend_close(b), -ENOMEM;
        if (config->key_file && !(b->key_file = strdup(config->key_file)))
                return backend_close(b), -ENOMEM;
        b->on_event = config->on_event;
        b->event_userdata = config->event_userdata;
        if (ops->open) {
                b->config = config;
                int r = ops->open(b, ret_why);
                b->config = NULL;
                if (r < 0) {
                        backend_close(b);
                        return r;
                }
        }
        *ret = b;
        return 0;
}

int backend_fetch(struct backend *b, const struct secret_ref *ref,
                  struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why) {
        struct secret_meta meta = {};
        struct secret *value = NULL;
        int r = b->ops->fetch(b, ref, &value, &meta, ret_why);
        if (r < 0) {
                secret_meta_done(&meta);
                return r;
        }
        *ret_value = value;
        if (ret_meta)
                *ret_meta = meta;
        else
                secret_meta_done(&meta);
        return 0;
}

int backend_prefetch(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why) {
        return b->ops->prefetch && n > 0 ? b->ops->prefetch(b, refs, n, ret_why) : 0;
}

int backend_stat_prefetch(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why) {
        return b->ops->stat_prefetch && n > 0 ? b->ops->stat_prefetch(b, refs, n, ret_why) : 0;
}

int backend_stat(struct backend *b, const struct secret_ref *ref, struct secret_meta *ret_meta, char **ret_why) {
        struct secret_meta meta = {};
        int r = b->ops->stat ? b->ops->stat(b, ref, &meta, ret_why)
                             : backend_fail(ret_why, -EOPNOTSUPP, "not checked: backend '%s' (%s) is read only by runs",
                                            b->name, backend_kind_name(b->kind));
        if (ret_meta)
                *ret_meta = meta;
        else
                secret_meta_done(&meta);
        return r;
}

int backend_write(struct backend *b, const struct secret_ref *ref, const struct secret *value,
                  uint64_t expect_version, struct secret_meta *ret_meta, char **ret_why) {
        if (!b->ops->write)
                return backend_fail(ret_why, -EOPNOTSUPP, "backend '%s' (%s) cannot be written by secrets-run",
                                    b->name, backend_kind_name(b->kind));
        struct secret_meta meta = {};
        int r = b->ops->write(b, ref, value, expect_version, &meta, ret_why);
        if (r >= 0 && ret_meta)
                *ret_meta = meta;
        else
                secret_meta_done(&meta);
        return r;
}

void backend_set_event_handler(struct backend *b, backend_event_fn fn, void *userdata) {
        b->on_event = fn;
        b->event_userdata = userdata;
}

void backend_emit(struct backend *b, struct backend_event e) {
        if (!b->on_event)
                return;
        e.backend = b->name;
        b->on_event(b->event_userdata, &e);
}

void backend_message(struct backend *b, enum backend_message_level level, const char *fmt, ...) {
        if (!b->on_event)
                return;
        /* a line, as the agent's log functions print at most (they truncate longer ones) */
        char line[4096];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_MESSAGE, .level = level, .message = line });
}

void backend_credential(struct backend *b, const char *label, const struct secret *value) {
        if (value && secret_len(value) > 0)
                backend_emit(b, (struct backend_event) { .kind = BACKEND_EVENT_CREDENTIAL, .message = label,
                                                         .credential = value });
}

int backend_credential_files(const struct backend_config *config, char ***paths) {
        const struct backend_ops *ops = ops_for(config->kind);
        return ops && ops->credential_files ? ops->credential_files(config, paths) : 0;
}

int backend_credential_env(const struct backend_config *config, char ***vars) {
        const struct backend_ops *ops = ops_for(config->kind);
        return ops && ops->credential_env ? ops->credential_env(config, vars) : 0;
}

void backend_identity_done(struct backend_identity *id) {
        free(id->auth);
        free(id->display_name);
        free(id->entity_id);
        free(id->token_type);
        strv_free(id->policies);
        *id = (struct backend_identity) {};
}

int backend_identity(struct backend *b, struct backend_identity *ret, char **ret_why) {
        if (!b->ops->identity)
                return backend_fail(ret_why, -EOPNOTSUPP, "backend '%s' (%s) has no identity to report",
                                    b->name, backend_kind_name(b->kind));
        struct backend_identity id = {};
        int r = b->ops->identity(b, &id, ret_why);
        if (r < 0) {
                backend_identity_done(&id);
                return r;
        }
        *ret = id;
        return 0;
}

uint64_t backend_renew(struct backend *b, uint64_t now_ms) {
        return b && b->ops->renew ? b->ops->renew(b, now_ms) : 0;
}

const char *backend_name(const struct backend *b) {
        return b->name;
}

struct backend *backend_close(struct backend *b) {
        if (!b)
                return NULL;
        if (b->ops && b->ops->close)
                b->ops->close(b);
        free(b->name);
        strv_free(b->command);
        free(b->path);
        free(b->key_file);
        free(b);
        return NULL;
}
