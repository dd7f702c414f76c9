/* The manifest model (secrets.yaml, schema version 1) and its loader, plus the findings that
 * `check` reports. Internal to agent/: other modules never see a manifest. */
#pragma once

#include "common.h"

#define MANIFEST_MAX_SIZE (1024 * 1024)
#define MANIFEST_MAX_ALIAS_NODES 1000   /* nodes reachable through aliases, in total */

struct mf_pos {
        unsigned line, col;   /* 1-based; 0 when the value came from a default */
};

/* ---- findings: FILE:LINE:COL: error|warning SRnnn: message ---- */

enum severity { SEVERITY_ERROR, SEVERITY_WARNING };

/* Stable ids. 0xx: the manifest is invalid (check exits 2, run 125).
 *             1xx: policy findings (errors make check exit 1 and run refuse). */
enum finding_id {
        SR001_SYNTAX = 1,          /* YAML syntax, unreadable, too large, alias bomb */
        SR002_UNKNOWN_KEY = 2,     /* with "did you mean" */
        SR003_WRONG_TYPE = 3,
        SR004_INVALID_VALUE = 4,   /* bad name, duration, enum, reference, number */
        SR005_DUPLICATE_KEY = 5,
        SR006_MISSING_KEY = 6,
        SR007_VERSION = 7,         /* unsupported schema version */

        SR101_MISSING_OWNER = 101,
        SR102_ENV_DELIVERY = 102,
        SR103_PROTECTED_UNAPPROVED = 103,
        SR104_UNSCOPED_PROTECTED = 104,
        SR105_UNKNOWN_BACKEND = 105,
        SR106_INSECURE_BACKEND = 106,
        SR107_SHORT_GENERATED = 107,
        SR108_DUPLICATE_DELIVERY = 108,
        SR109_SANDBOX_OFF = 109,
        SR110_ROTATION_MISSING = 110,
        SR111_UNKNOWN_ENVIRONMENT = 111,
        SR112_UNWRITABLE_STORE = 112,
        SR113_ROTATION_UNENFORCEABLE = 113,
};

struct finding {
        enum severity severity;
        enum finding_id id;
        unsigned line, col;
        char *message;
};

struct findings {
        char *file;               /* the manifest path as given */
        struct finding *items;
        size_t n;
};

int findings_add(struct findings *f, enum severity sev, enum finding_id id,
                 struct mf_pos pos, const char *fmt, ...) _printf_(5, 6);
size_t findings_count(const struct findings *f, enum severity sev);
bool findings_have_invalid(const struct findings *f);  /* any SR0xx */
void findings_sort(struct findings *f);                /* by line, then column */
void findings_done(struct findings *f);

/* ---- the model ---- */

enum backend_type { BACKEND_FILE, BACKEND_ENV, BACKEND_EXEC, BACKEND_VAULT };
enum delivery { DELIVER_FILE, DELIVER_FD, DELIVER_ENV };
enum charset { CHARSET_ALNUM, CHARSET_HEX, CHARSET_BASE64URL, CHARSET_ASCII };
enum on_leak { ON_LEAK_FAIL, ON_LEAK_WARN };
enum sandbox_mode { SANDBOX_AUTO, SANDBOX_STRICT, SANDBOX_OFF };
const char *delivery_method_name(enum delivery d);   /* "file", "fd", "env" */
const char *sandbox_mode_name(enum sandbox_mode m);  /* "auto", "strict", "off" */
enum vault_auth { VAULT_AUTH_NONE, VAULT_AUTH_TOKEN, VAULT_AUTH_APPROLE, VAULT_AUTH_JWT };

struct mf_backend {
        char *name;
        struct mf_pos pos;
        enum backend_type type;
        uint64_t timeout;         /* seconds; 30 when absent */
        /* file */
        char *path;               /* default .secrets-run/store, relative to the manifest's dir */
        char *key_file;
        /* exec */
        char **command;
        /* vault */
        char *address;            /* NULL: $VAULT_ADDR at run time */
        struct mf_pos address_pos;
        char *namespace_;
        char *ca_cert, *ca_path;
        bool insecure;
        struct mf_pos insecure_pos;
        enum vault_auth auth;
        char *auth_mount, *auth_role, *jwt_env, *audience;
        char *role_id_env, *secret_id_env, *token_env;
};

struct mf_environment {
        char *name;
        struct mf_pos pos;
        bool protected_;
};

struct mf_secret {
        char *name;
        struct mf_pos pos;
        /* source: `from: BACKEND:PATH[?version=N][#FIELD]`, or `generate`, or neither
         * (then defaults.backend with PATH = name) */
        char *from;               /* as written; NULL if absent */
        struct mf_pos from_pos;
        char *backend;            /* resolved backend name; NULL for ephemeral generated secrets */
        char *path;
        char *field;              /* NULL if absent */
        uint64_t version;         /* 0 = latest */
        bool generated;
        struct mf_pos generate_pos;
        size_t gen_length;        /* default 32 */
        enum charset gen_charset; /* default alnum */
        bool gen_store;           /* keep the value at backend/path/field (plan/apply) */

        char *owner;
        char *description;
        char **environments;      /* NULL = every environment */
        struct mf_pos environments_pos;
        char **stages;            /* NULL = every stage, including none */
        char **when_branches;     /* NULL = any */
        char **when_events;       /* NULL = any */
        struct mf_pos when_pos;
        enum delivery deliver;
        struct mf_pos deliver_pos;
        char *as;                 /* defaults to name */
        struct mf_pos as_pos;
        uint64_t rotation_max_age, rotation_fail_after;  /* seconds; 0 = unset */
        bool has_rotation;
        char **approved_by;
};

/* A per-run random value that nobody stores or owns (generate without store): nothing to
 * fetch, own, approve or rotate. A stored generated secret is read from its backend like any
 * other and created or rotated by apply/rotate. */
static inline bool mf_secret_is_ephemeral(const struct mf_secret *s) {
        return s->generated && !s->gen_store;
}

struct mf_policy {
        enum on_leak on_leak;             /* fail */
        char *mask;                       /* "[REDACTED:{name}]" */
        size_t min_secret_length;         /* 8 */
        bool allow_env_delivery;          /* false */
        enum sandbox_mode sandbox;        /* auto */
        struct mf_pos sandbox_pos;
        bool network;                     /* true */
        char **artifacts;                 /* ["changed"] when absent */
        char *audit_log;                  /* NULL: the default location */
        bool require_owner;               /* true */
        bool require_rotation;            /* false: stored secrets must declare rotation */
        uint64_t max_ttl;                 /* 3600 */
};

struct manifest {
        char *path;                       /* as given or discovered */
        char *dir;                        /* its directory, for relative paths */
        unsigned char sha256[32];
        int version;
        char *project;
        char *default_environment;
        struct mf_pos default_environment_pos;
        char *default_stage;
        char *default_backend;
        struct mf_pos default_backend_pos;
        struct mf_backend *backends;
        size_t n_backends;
        struct mf_environment *environments;
        size_t n_environments;
        struct mf_secret *secrets;
        size_t n_secrets;
        struct mf_policy policy;
};

/* Loads and validates the schema. Every schema problem becomes an SR0xx finding in
 * `findings` (which must have .file set by the caller or is set here); returns -EINVAL if any
 * was found, -errno if the file cannot be read, 0 on success. */
int manifest_load(const char *path, struct manifest **ret, struct findings *findings);
/* Same, from memory (tests); `path` is used only in messages. */
int manifest_load_buffer(const char *path, const char *buf, size_t size,
                         struct manifest **ret, struct findings *findings);
struct manifest *manifest_free(struct manifest *m);
static inline void manifest_freep(struct manifest **m) { manifest_free(*m); }
#define _cleanup_manifest_ _cleanup_(manifest_freep)

const struct mf_backend *manifest_find_backend(const struct manifest *m, const char *name);
const struct mf_environment *manifest_find_environment(const struct manifest *m, const char *name);
const struct mf_secret *manifest_find_secret(const struct manifest *m, const char *name);
/* A file name the manifest gives (store path, key file, CA, audit log): relative names are
 * relative to the manifest's directory, wherever secrets-run was started. *ret is NULL when
 * name is; -ENOMEM is the only failure. */
int manifest_file(const struct manifest *m, const char *name, char **ret);

/* Finds the manifest: explicit path, else $SECRETS_RUN_MANIFEST, else secrets.yaml in the
 * working directory or the nearest parent. */
int manifest_discover(const char *explicit_path, char **ret_path);

/* ---- check: policy findings (SR1xx) on a schema-valid manifest ---- */
int check_manifest(const struct manifest *m, struct findings *findings);

/* Prints findings: text ("FILE:LINE:COL: error SR002: message" one per line on stdout),
 * json (an array), and under GitHub Actions also "::error file=...,line=...::" lines. */
enum output_format { FORMAT_TEXT, FORMAT_JSON };
void findings_print(const struct findings *f, enum output_format format, FILE *out);
