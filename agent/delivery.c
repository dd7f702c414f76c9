/* What crosses into the step and what must not: the variables stripped from its
 * environment, the paths hidden from it, and the delivery of files, fds and env values. */
#include <sodium.h>

#include "run.h"

extern char **environ;

/* What the step must not reach although it runs as our uid: the directory of key files, and
 * every encrypted store the manifest names (with its key the step could decrypt secrets it
 * was never granted). The sandbox covers them inside its mount namespace. */
/* Hides path's directory, so that a file the host replaces by rename while the step runs
 * (every `store set`, `apply` and `rotate` does) stays hidden: a mount over a file covers
 * that file, not the name. Not when the directory holds the working directory (a store at
 * the root of the workspace): then the file itself is covered (docs/sandbox.md). */
static int hide_with_directory(struct run *r, const char *path, const char *cwd) {
        _cleanup_free_ char *resolved = realpath(path, NULL) ?: strdup(path);
        if (!resolved)
                return -ENOMEM;
        char *slash = strrchr(resolved, '/');
        if (slash && slash != resolved && cwd) {
                *slash = '\0';
                size_t n = strlen(resolved);
                bool holds_cwd = strncmp(cwd, resolved, n) == 0 && (cwd[n] == '\0' || cwd[n] == '/');
                if (!holds_cwd)
                        return strv_extend(&r->hide, resolved);
                *slash = '/';
        }
        return strv_extend(&r->hide, resolved);
}

int collect_hidden_paths(struct run *r) {
        int k;
        _cleanup_free_ char *keys = NULL, *cwd = getcwd(NULL, 0);
        if (config_path(NULL, &keys) >= 0 && (k = strv_extend(&r->hide, keys)) < 0)
                return k;
        const char *audit_key = getenv("SECRETS_RUN_AUDIT_KEY");
        if (audit_key && *audit_key && (k = hide_with_directory(r, audit_key, cwd)) < 0)
                return k;
        /* the stores and their keys, resolved by the code the backends use to find them */
        _cleanup_strv_free_ char **files = NULL;
        if ((k = sources_store_files(r->m, &files)) < 0)
                return k;
        for (char **f = files; f && *f; f++)
                if ((k = hide_with_directory(r, *f, cwd)) < 0)
                        return k;
        /* a backend's credential file (~/.vault-token) or a .env by itself, not its directory
         * (a home, a project): the step gets the values it is granted, not the file with them */
        _cleanup_strv_free_ char **creds = NULL;
        if ((k = sources_credential_files(r->m, &creds)) < 0)
                return k;
        for (char **f = creds; f && *f; f++) {
                _cleanup_free_ char *resolved = realpath(*f, NULL);
                if (resolved && (k = strv_extend(&r->hide, resolved)) < 0)
                        return k;
        }
        return 0;
}

int collect_stripped_env(struct run *r) {
        int k;
        for (size_t i = 0; i < r->m->n_secrets; i++) {
                const struct mf_secret *s = &r->m->secrets[i];
                const struct mf_backend *b = mf_secret_is_ephemeral(s) ? NULL : manifest_find_backend(r->m, s->backend);
                if (b && b->type == BACKEND_ENV && s->path && (k = strv_extend(&r->strip_env, s->path)) < 0)
                        return k;
        }
        return sources_credential_env(r->m, &r->strip_env);
}

/* The fetched values now live in secure buffers: wipe the originals out of our own
 * environment block too, so they are not readable from /proc/PID/environ. */
void scrub_own_environment(struct run *r) {
        for (char **v = r->strip_env; v && *v; v++) {
                char *value = getenv(*v);
                if (value)
                        sodium_memzero(value, strlen(value));
                (void) unsetenv(*v);
        }
}

static bool env_name_is_ours(const struct run *r, const char *entry) {
        size_t len = strcspn(entry, "=");
        for (char **v = r->strip_env; v && *v; v++)
                if (strlen(*v) == len && strncmp(*v, entry, len) == 0)
                        return true;
        return false;
}

int create_secrets_dir(struct run *r) {
        int k = secrets_dir_create(&r->dir);
        if (k < 0)
                log_error("cannot create the secrets directory on a tmpfs (/dev/shm or $XDG_RUNTIME_DIR): %s%s",
                          strerror(-k), k == -EXDEV ? " (it is not a memory file system)" : "");
        else if (k > 0)
                log_warning("%s is not this user's own private directory (someone else's, or open to others): "
                            "this run uses a fresh one of its own [remove %s, or set $XDG_RUNTIME_DIR]",
                            secrets_dir_refused_base(r->dir), secrets_dir_refused_base(r->dir));
        return k < 0 ? k : 0;
}

/* Files go through dir_fd: the sandbox's private tmpfs, or the host directory without one. */
int deliver(struct run *r, int dir_fd) {
        int k;
        r->fds = calloc(r->n_secrets ? r->n_secrets : 1, sizeof(int));
        if (!r->fds)
                return -ENOMEM;
        if ((k = secret_new(256, &r->env_block)) < 0)
                return k;

        _cleanup_strv_free_ char **ours = NULL;   /* the variables we set for the step */
        if ((k = strv_push(&ours, strdup_printf("SECRETS_DIR=%s", secrets_dir_path(r->dir)))) < 0)
                return k;
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                const struct secret *value = r->secrets[i].value;
                _cleanup_free_ char *upper = strdup_upper(s->as);
                if (!upper)
                        return -ENOMEM;
                switch (s->deliver) {
                case DELIVER_FD: {
                        int fd = memfd_sealed(s->as, value);
                        if (fd < 0) {
                                log_error("secret %s: cannot create a sealed memfd: %s", s->name, strerror(-fd));
                                return fd;
                        }
                        r->fds[r->n_fds] = fd;
                        k = strv_push(&ours, strdup_printf("%s_FD=%zu", upper, 3 + r->n_fds));
                        r->n_fds++;
                        break;
                }
                case DELIVER_ENV:
                        if (secret_has_nul(value)) {
                                log_error("secret %s: the value contains a NUL byte and cannot be delivered as an environment variable (use deliver: file)",
                                          s->name);
                                return -EINVAL;
                        }
                        if ((k = secret_append(r->env_block, s->as, strlen(s->as))) < 0 ||
                            (k = secret_append(r->env_block, "=", 1)) < 0 ||
                            (k = secret_append(r->env_block, secret_data(value), secret_len(value))) < 0 ||
                            (k = secret_append(r->env_block, "", 1)) < 0)
                                return k;
                        k = strv_extend(&r->strip_env, s->as);
                        break;
                case DELIVER_FILE:
                default:
                        if ((k = secret_file_write(dir_fd, s->as, value)) < 0) {
                                log_error("secret %s: cannot write %s/%s: %s", s->name,
                                          secrets_dir_path(r->dir), s->as, strerror(-k));
                                return k;
                        }
                        k = strv_push(&ours, strdup_printf("%s_FILE=%s/%s", upper, secrets_dir_path(r->dir), s->as));
                        break;
                }
                if (k < 0)
                        return k;
        }

        /* the step's environment: ours first, then the caller's minus stripped variables and
         * minus anything we set (ours wins) */
        for (char **v = ours; *v; v++) {
                size_t len = strcspn(*v, "=");
                _cleanup_free_ char *name = strndup(*v, len);
                if (!name || (k = strv_extend(&r->strip_env, name)) < 0)
                        return -ENOMEM;
        }
        char **envp = NULL;
        for (char **v = ours; *v; v++)
                if ((k = strv_extend(&envp, *v)) < 0)
                        return strv_free(envp), k;
        for (char **v = environ; v && *v; v++)
                if (!env_name_is_ours(r, *v) && (k = strv_extend(&envp, *v)) < 0)
                        return strv_free(envp), k;
        r->envp = envp;
        return 0;
}

/* The env-delivered values are appended to the step's envp only in the child's copy of
 * memory: build the final vector right before spawning and drop it right after. */
char **envp_with_env_block(struct run *r) {
        size_t n = strv_length(r->envp), extra = 0;
        const char *p = (const char *) secret_data(r->env_block);
        const char *end = p + secret_len(r->env_block);
        for (const char *q = p; q < end; q += strlen(q) + 1)
                extra++;
        char **v = calloc(n + extra + 1, sizeof(char *));
        if (!v)
                return NULL;
        size_t i = 0;
        for (const char *q = p; q < end; q += strlen(q) + 1)
                v[i++] = (char *) q;
        memcpy(v + i, r->envp, n * sizeof(char *));
        return v;
}
