/* The backend interface: open a store, fetch a secret by reference into a secure buffer,
 * report its metadata, and (for stores that have them) renew/revoke leases and write. */
#pragma once

#include "common.h"

enum backend_kind { BACKEND_KIND_FILE, BACKEND_KIND_ENV, BACKEND_KIND_EXEC,
                    BACKEND_KIND_GENERATE, BACKEND_KIND_VAULT, BACKEND_KIND_DOTENV };

enum backend_vault_auth { BACKEND_VAULT_AUTH_TOKEN, BACKEND_VAULT_AUTH_APPROLE, BACKEND_VAULT_AUTH_JWT,
                          BACKEND_VAULT_AUTH_KUBERNETES, BACKEND_VAULT_AUTH_CERT };

enum generate_charset { GENERATE_ALNUM, GENERATE_HEX, GENERATE_BASE64URL, GENERATE_ASCII };

/* How the exec backend starts its provider: argv[0] looked up in $PATH, stdin /dev/null,
 * stdout on out_fd, stderr on err_fd and no other fd open, a process group of its own
 * (pgid = pid, so kill(-pid) stops what it started), killed when we die, every signal at its
 * default. Returns 0 once it has exec'd, -errno if it could not be (no child remains). The
 * agent supplies it (the sandbox's one fork primitive): backends know nothing of how
 * processes are started, and what environment the provider gets is the agent's decision. */
typedef int (*backend_spawn_fn)(char *const *argv, int out_fd, int err_fd, pid_t *ret_pid);

struct backend_event;
typedef void (*backend_event_fn)(void *userdata, const struct backend_event *e);

/* What the agent hands a backend: plain configuration, no manifest types, no defaults of the
 * application's file layout (the agent resolves those). */
struct backend_config {
        const char *name;              /* as the manifest names it, for messages */
        enum backend_kind kind;
        uint64_t timeout_ms;           /* total time for one fetch, retries included */
        char *const *command;          /* exec: argv prefix; the reference path is appended */
        backend_spawn_fn spawn;        /* exec: starts the provider (required) */
        const char *path;              /* file: store path (required) */
        const char *key_file;          /* file: read when $SECRETS_RUN_STORE_KEY is unset; NULL: none */
        /* vault */
        const char *address;           /* NULL: $VAULT_ADDR */
        const char *namespace_;
        const char *ca_cert, *ca_path;
        const char *client_cert, *client_key;   /* TLS client certificate (cert auth); NULL: $VAULT_CLIENT_CERT/_KEY */
        bool insecure;                 /* allows http:// off loopback; TLS is always verified */
        enum backend_vault_auth vault_auth;
        const char *auth_mount;        /* NULL: "approle" / "jwt" */
        const char *auth_role;
        const char *jwt_env, *audience;
        const char *role_id_env, *secret_id_env;
        const char *token_env;         /* NULL: VAULT_TOKEN */
        const char *token_file;        /* kubernetes: NULL: the pod's service account token */
        const char *cert_name;         /* cert: the role to log in as; NULL: any that matches */
        uint64_t max_ttl_s;            /* policy.max_ttl: caps lease renewal increments; 0 = none */
        bool vault_sequential;         /* vault: one request at a time, no concurrent prefetch */
        /* Where the backend's events go from backend_open() on (messages of a login's
         * retries included); NULL: nowhere. backend_set_event_handler() changes it later. */
        backend_event_fn on_event;
        void *event_userdata;
};

struct secret_ref {
        const char *secret_name;       /* for messages */
        const char *path;
        const char *field;             /* NULL if none */
        uint64_t version;              /* 0 = latest */
        char *const *params;           /* vault: NAME, VALUE, ..., NULL: a POST with them (pki/issue/ROLE); NULL: a read */
        size_t generate_length;
        enum generate_charset generate_charset;
};

struct secret_meta {
        uint64_t version;              /* 0 if the store has no versions */
        size_t length;                 /* stat: the value's length in bytes; 0 if not told */
        int64_t created;               /* unix seconds; 0 if unknown */
        char *lease_id;                /* NULL if not leased */
        uint64_t lease_ttl;            /* seconds */
        bool renewable;
};
void secret_meta_done(struct secret_meta *m);

struct backend;

/* Once at startup, before any JSON exists: jansson's allocator wipes freed memory, libcurl's
 * global state. */
void backends_init(void);

/* Failures return -errno and, where there is more to say, a one-line reason in *ret_why
 * (malloc'd, never containing a value). */
int backend_open(const struct backend_config *config, struct backend **ret, char **ret_why);
/* Appends to *vars the names of the environment variables holding the credentials a backend
 * configured as config reads (file: the store key; vault: the token, a login's role and
 * secret ids or JWT, the CI's OIDC request token), whether or not they are set: the agent
 * keeps them from the step. env, exec, generate: none (the variables an env secret is read
 * from are secrets, which the agent knows of itself). Opens nothing; -ENOMEM. */
int backend_credential_env(const struct backend_config *config, char ***vars);
/* Appends to *paths the files (not stores: those the agent knows) a backend configured as
 * config may read a credential from, whether or not they exist: Vault's ~/.vault-token. The
 * agent hides them from the step. Opens nothing; -ENOMEM. */
int backend_credential_files(const struct backend_config *config, char ***paths);
int backend_fetch(struct backend *b, const struct secret_ref *ref,
                  struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why);
/* Optional hint before fetching: every ref that will be fetched from b (a backend may fetch
 * them ahead, concurrently). Only -ENOMEM-like failures; per-secret errors come from fetch. */
int backend_prefetch(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why);
/* Optional hint before stats (plan): every ref that is about to be stat'ed (the Vault backend
 * asks for them at once; each answer serves the next stat of its ref only, so a stat after a
 * write still sees the write). Only -ENOMEM-like failures. */
int backend_stat_prefetch(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why);
/* The metadata of ref's current version without delivering its value (plan/apply/rotate).
 * -ENOENT: ref does not exist; meta.version then holds what backend_write() must expect
 * (the version of a container that lacks the field, else 0). -EOPNOTSUPP: the backend
 * cannot tell without side effects (exec commands, dynamic credentials, KV v1). */
int backend_stat(struct backend *b, const struct secret_ref *ref, struct secret_meta *ret_meta, char **ret_why);
/* Stores value as a new version of ref only if its current version is still expect_version
 * (0: only if ref does not exist), atomically with respect to other writers (a lock, or
 * Vault's check-and-set). -ESTALE: another writer got there first; stat again and decide
 * again. -EOPNOTSUPP: this backend or path cannot be written. On success ret_meta (optional)
 * describes the new version. */
int backend_write(struct backend *b, const struct secret_ref *ref, const struct secret *value,
                  uint64_t expect_version, struct secret_meta *ret_meta, char **ret_why);
const char *backend_name(const struct backend *b);
/* What a backend did on its own, told to the agent: lease renewals, their failures,
 * revocations and leases that will run out, for the audit log; and messages for the user,
 * since backends print nothing themselves. Never a value or a token; a lease id is not a
 * credential (it needs a token to be used). */
enum backend_event_kind {
        BACKEND_EVENT_LEASE_RENEW,         /* ttl_s: granted */
        BACKEND_EVENT_LEASE_RENEW_FAILED,  /* reason */
        BACKEND_EVENT_LEASE_REVOKE,
        BACKEND_EVENT_LEASE_REVOKE_FAILED, /* reason */
        BACKEND_EVENT_LEASE_EXPIRING,      /* ttl_s: left; reason: why it cannot be extended */
        BACKEND_EVENT_MESSAGE,             /* level, message: for the user's terminal only */
        BACKEND_EVENT_CREDENTIAL,          /* message: a label; credential: bytes the backend holds */
};
enum backend_message_level {
        BACKEND_MESSAGE_INFO,              /* what it is doing (--verbose) */
        BACKEND_MESSAGE_WARNING,           /* something went wrong that does not stop the run */
};
struct backend_event {
        enum backend_event_kind kind;
        const char *backend;               /* the backend's name */
        const char *lease_id;              /* NULL: the token the backend logged in with */
        uint64_t ttl_s;
        const char *reason;                /* one line; NULL if none */
        enum backend_message_level level;  /* MESSAGE only */
        const char *message;               /* MESSAGE: one line, as it is to be printed;
                                              CREDENTIAL: what it is ("vault-token") */
        /* CREDENTIAL only: a token, secret id, JWT or key the backend read or obtained, or a
         * value it was reading when it failed. Never to be printed: the agent masks it in
         * everything it writes, so a store that quotes it in an error cannot put it in a log. */
        const struct secret *credential;
};
/* fn is called for each event, on the thread that called into the backend (open, fetch,
 * write, renew, close): lease events come from renew and close, messages from any call.
 * NULL: none. */
void backend_set_event_handler(struct backend *b, backend_event_fn fn, void *userdata);

/* Who the backend acts as, for the audit log (Vault: auth/token/lookup-self). Never the
 * token or its accessor. */
struct backend_identity {
        char *auth;                        /* "token", "approle", "jwt" */
        bool from_login;                   /* a token obtained by logging in (and revoked at exit) */
        char *display_name;                /* NULL if not reported */
        char *entity_id;                   /* NULL if not reported or empty */
        char **policies;                   /* NULL-terminated; NULL if none reported */
        uint64_t ttl_s;                    /* what the token has left; 0: no expiry, or unknown */
        bool renewed;                      /* the backend keeps the token alive while the step runs */
        char *token_type;                  /* "service", "batch"; NULL if not reported */
        bool orphan;
        uint64_t num_uses;                 /* uses left; 0: unlimited */
};
void backend_identity_done(struct backend_identity *id);
/* One request to the store. -EOPNOTSUPP: the backend has no identity to tell. */
int backend_identity(struct backend *b, struct backend_identity *ret, char **ret_why);
/* Keeps leases alive while the step runs: renews what is due at now_ms (monotonic) and
 * returns when to call again (0: nothing to renew). Failures are warnings, not errors. */
uint64_t backend_renew(struct backend *b, uint64_t now_ms);
const char *backend_kind_name(enum backend_kind k);
/* Whether a Vault path is KV v2's (MOUNT/data/PATH): versioned, with creation times, and
 * writable with check-and-set. Anything else is KV v1 or a dynamic engine. */
bool vault_path_is_kv2(const char *path);
/* While on: every request under way (on any thread) stops within about a second and new ones
 * fail with -ECANCELED. For ending the renewal thread without waiting for a slow server;
 * switched off again before the backends are closed (their revocations must go out). */
void backends_interrupt(bool on);
struct backend *backend_close(struct backend *b);
static inline void backend_closep(struct backend **b) { backend_close(*b); }
#define _cleanup_backend_ _cleanup_(backend_closep)

/* ---- the embedded encrypted store: one file, read by the file backend and written by
 * `secrets-run store` (format, key and durability in docs/store.md) ---- */

#define STORE_KEY_BYTES 32
#define STORE_KEEP_VERSIONS 10
#define STORE_MAX_VALUE (1024 * 1024)

struct store;
struct store_version_info {
        uint64_t version;
        int64_t created;       /* unix seconds */
};

/* The KEY=value pairs of a .env file (docker compose's rules: comments, quotes, escapes,
 * $VAR and ${VAR:-default} interpolation from earlier keys, then the environment), in file
 * order, a key defined twice listed twice (the last wins). The file must be a regular file of
 * yours that nobody else may read, as the store's key file. Values are secure buffers. */
struct dotenv_pair {
        char *key;
        struct secret *value;
};
int dotenv_load(const char *path, struct dotenv_pair **ret, size_t *ret_n, char **ret_why);
void dotenv_pairs_free(struct dotenv_pair *pairs, size_t n);

/* $SECRETS_RUN_STORE_KEY (base64 of 32 bytes) if set, else key_file, which holds the same
 * base64 text and must be the user's own, mode 0600 or stricter. key_file NULL: there is
 * none (-ENOENT when the variable is unset). Where a key file is by default is the agent's
 * business. */
int store_key_load(const char *key_file, struct secret **ret_key, char **ret_why);
/* Whether the key comes from the environment: then store_key_load() reads no key file, and
 * `store init` has none to create. */
bool store_key_in_environment(void);
/* A fresh random key written to path (0600, its directory created 0700); -EEXIST if present. */
int store_key_create(const char *path, struct secret **ret_key, char **ret_why);

int store_new(struct store **ret);
struct store *store_free(struct store *s);
static inline void store_freep(struct store **s) { store_free(*s); }
#define _cleanup_store_ _cleanup_(store_freep)

/* In-memory form <-> file bytes. The reason in *ret_why never names a value. */
int store_decode(const unsigned char *buf, size_t size, const struct secret *key,
                 struct store **ret, char **ret_why);
int store_encode(const struct store *s, const struct secret *key, unsigned char **ret, size_t *ret_size);

/* Reads and decrypts path (no lock needed: writers replace the file by rename). */
int store_load(const char *path, const struct secret *key, struct store **ret, char **ret_why);
/* Takes the writers' lock, PATH.lock (exclusive flock, blocking); the lock is held until the
 * returned fd is closed. */
int store_lock(const char *path, int *ret_fd, char **ret_why);
/* Replaces path atomically and durably: temp file, fsync, rename, fsync of the directory.
 * Call with the lock held. On failure path is untouched. */
int store_save(const char *path, const struct store *s, const struct secret *key, char **ret_why);

size_t store_count(const struct store *s);
const char *store_name_at(const struct store *s, size_t i);
/* The kept versions of name, oldest first; returns how many (0 if there is no such name). */
size_t store_history(const struct store *s, const char *name,
                     struct store_version_info ret[STORE_KEEP_VERSIONS]);
/* The value of version (0: latest). -ENOENT: no such name; -ESRCH: no such version kept. */
int store_get(const struct store *s, const char *name, uint64_t version,
              struct secret **ret_value, struct store_version_info *ret_info);
/* Adds a version (the previous latest + 1), dropping versions beyond the last 10. */
int store_set(struct store *s, const char *name, const void *value, size_t size, int64_t created,
              uint64_t *ret_version);
/* Adds a version with the given number and time, as an import restores history: the number
 * must be above the latest kept (-ERANGE otherwise); versions beyond the last 10 are dropped. */
int store_put_version(struct store *s, const char *name, uint64_t version, int64_t created,
                      const void *value, size_t size);
/* Makes version `to` (0: the one before the latest) current again, as a new version. */
int store_rollback(struct store *s, const char *name, uint64_t to, int64_t created, uint64_t *ret_version);
int store_remove(struct store *s, const char *name);
