/* What every backend implementation shares: the backend object and its operations.
 * Private to backends/; the rest of the program sees only backends.h. */
#pragma once

#include "backends.h"

/* The variable the embedded store's key may come from (base64), before any key file. */
#define STORE_KEY_ENV "SECRETS_RUN_STORE_KEY"

struct backend_ops {
        int (*open)(struct backend *b, char **ret_why);
        int (*fetch)(struct backend *b, const struct secret_ref *ref,
                     struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why);
        /* Optional: told before the first fetch() of every ref that will go to this backend,
         * so it can fetch them ahead (concurrently); errors stay for fetch() to report. */
        int (*prefetch)(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why);
        void (*close)(struct backend *b);
        /* Optional (absent: -EOPNOTSUPP): see backend_stat() and backend_write(). */
        int (*stat)(struct backend *b, const struct secret_ref *ref, struct secret_meta *ret_meta, char **ret_why);
        int (*write)(struct backend *b, const struct secret_ref *ref, const struct secret *value,
                     uint64_t expect_version, struct secret_meta *ret_meta, char **ret_why);
        /* Optional: told before the first stat() of refs, so it can ask ahead (concurrently). */
        int (*stat_prefetch)(struct backend *b, const struct secret_ref *refs, size_t n, char **ret_why);
        /* Optional (absent: -EOPNOTSUPP): see backend_identity(). */
        int (*identity)(struct backend *b, struct backend_identity *ret, char **ret_why);
        /* Renews what is due at now (monotonic ms); returns when to be called next, 0 = never. */
        uint64_t (*renew)(struct backend *b, uint64_t now_ms);
        /* Optional (absent: none): see backend_credential_env(). Called without an open
         * backend, on the configuration alone. */
        int (*credential_env)(const struct backend_config *c, char ***vars);
        /* Optional (absent: none): see backend_credential_files(). */
        int (*credential_files)(const struct backend_config *c, char ***paths);
};

struct backend {
        const struct backend_ops *ops;
        char *name;
        enum backend_kind kind;
        uint64_t timeout_ms;
        char **command;
        char *path;
        char *key_file;       /* file: read when $SECRETS_RUN_STORE_KEY is unset; NULL: none */
        const struct backend_config *config;  /* during open only: kind-specific settings */
        void *data;           /* the implementation's own state */
        backend_event_fn on_event;   /* NULL: nobody listens */
        void *event_userdata;
};

extern const struct backend_ops env_backend_ops;
extern const struct backend_ops file_backend_ops;
extern const struct backend_ops exec_backend_ops;
extern const struct backend_ops generate_backend_ops;
extern const struct backend_ops vault_backend_ops;
extern const struct backend_ops dotenv_backend_ops;

/* Hands e (its backend field filled in here) to the event handler, if there is one. */
void backend_emit(struct backend *b, struct backend_event e);
/* A BACKEND_EVENT_MESSAGE: how a backend says something to the user (it never prints).
 * Formatted only if someone listens; one line, never a value or a token. */
void backend_message(struct backend *b, enum backend_message_level level, const char *fmt, ...) _printf_(3, 4);

/* Tells the agent about bytes it must mask in every message (a BACKEND_EVENT_CREDENTIAL):
 * call it as soon as a credential is read or obtained, before it can be quoted. */
void backend_credential(struct backend *b, const char *label, const struct secret *value);

/* Sets *ret_why to a formatted reason (if ret_why is non-NULL) and returns r. */
int backend_fail(char **ret_why, int r, const char *fmt, ...) _printf_(3, 4);
