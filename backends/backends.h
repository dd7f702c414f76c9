/* The backend interface: open a store, fetch a secret by reference into a secure buffer,
 * report its metadata, and (for stores that have them) renew/revoke leases and write. */
#pragma once

#include "common.h"

enum backend_kind { BACKEND_KIND_FILE, BACKEND_KIND_ENV, BACKEND_KIND_EXEC,
                    BACKEND_KIND_GENERATE, BACKEND_KIND_VAULT };

enum generate_charset { GENERATE_ALNUM, GENERATE_HEX, GENERATE_BASE64URL, GENERATE_ASCII };

/* What the agent hands a backend: plain configuration, no manifest types. */
struct backend_config {
        const char *name;              /* as the manifest names it, for messages */
        enum backend_kind kind;
        uint64_t timeout_ms;           /* total time for one fetch, retries included */
        char *const *command;          /* exec: argv prefix; the reference path is appended */
        const char *path;              /* file: store path */
};

struct secret_ref {
        const char *secret_name;       /* for messages */
        const char *path;
        const char *field;             /* NULL if none */
        uint64_t version;              /* 0 = latest */
        size_t generate_length;
        enum generate_charset generate_charset;
};

struct secret_meta {
        uint64_t version;              /* 0 if the store has no versions */
        int64_t created;               /* unix seconds; 0 if unknown */
        char *lease_id;                /* NULL if not leased */
        uint64_t lease_ttl;            /* seconds */
        bool renewable;
};
void secret_meta_done(struct secret_meta *m);

struct backend;

/* Failures return -errno and, where there is more to say, a one-line reason in *ret_why
 * (malloc'd, never containing a value). */
int backend_open(const struct backend_config *config, struct backend **ret, char **ret_why);
int backend_fetch(struct backend *b, const struct secret_ref *ref,
                  struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why);
const char *backend_name(const struct backend *b);
const char *backend_kind_name(enum backend_kind k);
struct backend *backend_close(struct backend *b);
static inline void backend_closep(struct backend **b) { backend_close(*b); }
#define _cleanup_backend_ _cleanup_(backend_closep)
