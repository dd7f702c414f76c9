/* The agent's internal interfaces between the CLI (main.c) and the commands it runs. */
#pragma once

#include <time.h>
#include <jansson.h>

#include "backends.h"
#include "manifest.h"

/* json_dumps' text comes from jansson's allocator, which backends_init() replaces (it wipes
 * on free): it must go back through the same allocator, not free(). */
static inline void json_text_freep(char **p) {
        json_malloc_t m;
        json_free_t f;
        json_get_alloc_funcs(&m, &f);
        if (*p)
                f(*p);
}

enum tri { TRI_UNSET = -1, TRI_OFF = 0, TRI_ON = 1 };

/* Everything the command line can say; TRI_UNSET / NULL / 0 means "not given", so the
 * manifest's policy decides. */
struct options {
        char *manifest;
        char *environment;
        char *stage;
        enum output_format format;
        /* run */
        char **only;
        int on_leak;          /* -1, ON_LEAK_FAIL, ON_LEAK_WARN */
        int sandbox;          /* -1 or enum sandbox_mode */
        int network;          /* enum tri */
        int guard;            /* enum tri: the output guard (off only for measuring it) */
        uint64_t timeout_ms;  /* 0 = none */
        char **artifacts;
        char *audit_log;
        int tty;              /* -1 auto, 0 never, 1 always */
        bool allow_ptrace;
        bool dry_run;
        char *result_file;    /* --result-file: the run's status and leak counts, as JSON */
        /* redact / scan */
        char **secret_files;
        /* plan / apply */
        bool all;             /* --all: every environment */
        /* store */
        char *store_path;     /* --store */
        uint64_t store_to;    /* --to; 0 = not given */
        bool replace;         /* --replace: import over existing names */
        char *dotenv;         /* import --dotenv FILE: a .env file's KEY=value lines */
        /* audit verify, report */
        char *public_key;
        char **audit_logs;    /* every --audit-log, for report (run takes the last) */
        /* approve */
        char *key;            /* --key: the SSH key that signs */
        char *identity;       /* --identity: whom the approval is from */
        bool print_payload;   /* --print-payload: the text to sign with ssh-keygen -Y sign */
        char *output;         /* -o/--output: approve's file, report's page */
        /* explain */
        char *event;          /* --event: push, pull_request, schedule, tag, ... */
        char *branch;         /* --branch */
        bool matrix;          /* --matrix: every environment, stage and event */
        /* positional arguments after the sub-command (the command for run) */
        char **args;
};

/* Loads the manifest the options point at and applies the check gate. On failure prints
 * what is wrong (findings with FILE:LINE:COL) and returns -errno / -EINVAL. */
int load_manifest(const struct options *o, bool gate_on_policy, struct manifest **ret);
/* The environment -e, $SECRETS_RUN_ENV or defaults.environment names (*ret NULL if none);
 * -EINVAL, said with a did-you-mean, when the manifest declares environments and not it. */
int resolve_environment(const struct options *o, const struct manifest *m, const char **ret);

/* The command of `run` resolved as execvpe(3) will, with the caller's $PATH: 0 if it can be
 * executed, -ENOENT (127) or -EACCES (126) with why (a sentence, maybe a "[hint]") if not. */
int command_lookup(const char *name, char *why, size_t size);

int command_run(const struct options *o);     /* returns the exit status of DESIGN §8 */
int command_check(const struct options *o);   /* 0, 1, 2 */
int command_redact(const struct options *o);  /* 0 clean, 1 leak (on-leak fail), 2 error */
int command_scan(const struct options *o);    /* 0 clean, 1 leak, 2 error */
int command_store(const struct options *o);   /* 0, 1 */
int command_plan(const struct options *o);    /* 0 in sync, 2 drift, 1 error */
int command_apply(const struct options *o);   /* 0, 1 */
int command_rotate(const struct options *o);  /* 0, 1 */
int command_doctor(const struct options *o);  /* 0 strict would work, 1 not */
int command_init(const struct options *o);    /* 0 written, 1 not (never overwrites) */
int command_approve(const struct options *o); /* 0, 1 */
int command_explain(const struct options *o); /* 0, 1 */
int command_report(const struct options *o);  /* 0, 1 */

/* ---- rotation: a secret's age against its rotation.max_age / fail_after ---- */
enum rotation_status {
        ROTATION_NONE,       /* no rotation declared */
        ROTATION_OK,
        ROTATION_OVERDUE,    /* past max_age: warn */
        ROTATION_FAILING,    /* past fail_after: run refuses */
        ROTATION_UNKNOWN,    /* declared, but the backend keeps no creation time */
};
/* created: unix seconds (0: unknown); *ret_age is set when the age is known. */
enum rotation_status rotation_evaluate(const struct mf_secret *s, int64_t created, int64_t now, uint64_t *ret_age);
const char *rotation_status_name(enum rotation_status r);
/* An age as a person reads it: whole days from two days up, else hours, minutes, seconds. */
const char *format_age(uint64_t seconds, char *buf, size_t size);
int command_audit(const struct options *o);   /* verify: 0 intact, 1 tampered, 2 error; keygen: 0, 2 */

/* ---- where secrets-run keeps its files (agent/paths.c) ---- */

/* A file backend's store when the manifest names no path, relative to the manifest's directory. */
#define STORE_DEFAULT_PATH ".secrets-run/store"
/* ${XDG_CONFIG_HOME:-$HOME/.config}/secrets-run, plus "/leaf" if leaf is given: the store key,
 * the audit keys, and the directory the sandbox hides from the step. -ENOENT if neither
 * variable holds an absolute path. */
int config_path(const char *leaf, char **ret);
/* ${XDG_CONFIG_HOME:-~/.config}/secrets-run/store.key: the store's key file when the manifest
 * names none (and the key is not in the environment). */
int store_key_default_path(char **ret);
/* Said with a store's "no store key" error when store_key_default_path() found no place. */
#define NO_DEFAULT_KEY_FILE "$HOME is unknown, so there is no default key file"

/* ---- where secrets come from: the manifest's backends, opened on first use ---- */

struct sources {
        const struct manifest *m;
        struct backend **open;         /* parallel to m->backends; NULL until first used */
        struct backend *generator;     /* ephemeral generated secrets */
        /* optional: told of each manifest backend right after it is opened (a failure
         * fails sources_get) */
        int (*on_open)(void *userdata, struct backend *b, const struct mf_backend *def);
        void *userdata;
};
int sources_init(struct sources *src, const struct manifest *m);
/* Closes every backend: leases are revoked, a login token too. */
void sources_done(struct sources *src);
/* The same, keeping src usable (no backend open) until sources_done. */
void sources_close(struct sources *src);
enum backend_kind backend_kind_of(enum backend_type t);
/* The files the file backends read (stores and key files), resolved exactly as the backends
 * resolve them, appended to *paths. */
int sources_store_files(const struct manifest *m, char ***paths);
/* The backend s is read from (the generator for an ephemeral generated secret), opened now
 * if it is not yet; on failure prints why, naming the secret and its manifest line. */
int sources_get(struct sources *src, const struct mf_secret *s, struct backend **ret);
/* A fresh value by s's `generate` settings, stored or not (apply and rotate make the value
 * they then write); on failure prints why. */
int sources_generate(struct sources *src, const struct mf_secret *s, struct secret **ret);
/* Renews what is due in every open backend; returns the next time to call, 0 for never. */
uint64_t sources_renew(struct sources *src, uint64_t now_ms);
struct secret_ref secret_ref_of(const struct mf_secret *s);
/* Appends the variables holding the credentials of every backend m declares (used or not),
 * as each backend names them (backend_credential_env()), for stripping from the step. */
int sources_credential_env(const struct manifest *m, char ***vars);
/* The credential files (not stores) of the manifest's backends: Vault's ~/.vault-token, a .env. */
int sources_credential_files(const struct manifest *m, char ***paths);
/* Prints a BACKEND_EVENT_MESSAGE with log_* (other kinds: nothing); safe on any thread.
 * Backends are opened printing their messages; a handler set later must call this to keep
 * them. */
void backend_event_print(const struct backend_event *e);

/* ---- supervision of the running step ---- */

#define KILL_GRACE_MS 5000       /* between TERM and KILL after --timeout */
#define DRAIN_AFTER_EXIT_MS 5000 /* how long a leftover process may hold the output open */

struct child;
struct redactor;
struct supervise_result {
        int wstatus;
        bool timed_out;
        uint64_t leaks;
};
/* Work due at times while the step runs (lease renewal): tick(now) (may be NULL) does what
 * is due and returns the next monotonic time it wants to be called at, 0 for never. wake
 * (may be NULL) is called whenever wake_fd is readable: work done elsewhere (a renewal
 * thread) has something for this thread. */
struct supervise_timer {
        uint64_t (*tick)(void *userdata, uint64_t now_ms);
        void (*wake)(void *userdata);
        int wake_fd;                   /* only looked at with wake */
        /* (may be NULL) after each round of relayed output: what it found goes on record
         * together (the audit's leak records) */
        void (*after_output)(void *userdata);
        void *userdata;
};
/* Pumps the step's output through the redactor (NULL: pass through) until it exits; calls
 * timer (may be NULL) when it is due. */
int supervise(struct child *c, int signal_fd, uint64_t timeout_ms, const struct redactor *redactor,
              const struct supervise_timer *timer, struct supervise_result *ret);

/* ---- artifacts: files to scan after the step ---- */
/* Scans the files under the working directory that match any glob of `globs` ("changed" =
 * modified since `since`, .git/ excepted), skipping `own` (secrets-run's own files and
 * directories). Returns the number of leaks, or -errno. */
int scan_artifacts(const struct redactor *r, char *const *globs, const struct timespec *since, char *const *own);
/* Scans PATHs (files, or directories recursively). Returns leaks found, or -errno. */
int scan_paths(const struct redactor *r, char *const *paths);

/* ---- the audit log (DESIGN §9): hash-chained JSON Lines, optionally Ed25519-signed ---- */
#define AUDIT_PUBLIC_KEY_BYTES 32

struct audit;
/* Where this run's records go: --audit-log, else policy.audit_log (relative to the manifest's
 * directory), else $SECRETS_RUN_AUDIT_LOG, else ${XDG_STATE_HOME:-~/.local/state}/secrets-run/audit.jsonl. */
int audit_log_path(const struct options *o, const struct manifest *m, char **ret);
/* Creates the log (0600, missing directories 0700) if needed, picks a run id, and loads the
 * signing key from key_path (NULL: unsigned; the file must be 0600). Writes nothing. */
int audit_open(const char *path, const char *key_path, struct audit **ret);
/* audit_open() on audit_log_path(), signing with $SECRETS_RUN_AUDIT_KEY if set; a failure is
 * said on stderr. */
int audit_open_for(const struct options *o, const struct manifest *m, struct audit **ret);
/* Queues one record {ts, run, seq, event, <fields...>, prev[, sig]}; audit_flush writes the
 * queue under an exclusive lock. Takes ownership of fields (a JSON object of names and
 * metadata, never a value). */
int audit_append(struct audit *a, const char *event, json_t *fields);   /* queues; takes fields */
int audit_flush(struct audit *a);   /* writes what is queued: one locked append, one fsync */
const char *audit_path(const struct audit *a);
const char *audit_run_id(const struct audit *a);
/* strerror() for audit_open/audit_append failures, with the audit-specific ones spelled out. */
const char *audit_strerror(int k);
struct audit *audit_free(struct audit *a);
static inline void audit_freep(struct audit **a) { audit_free(*a); }

/* Writes a new key pair (secret 0600, public 0644; never overwrites). */
int audit_keygen(const char *secret_path, const char *public_path);
int audit_read_public_key(const char *path, unsigned char ret[AUDIT_PUBLIC_KEY_BYTES]);

struct audit_verdict {
        bool intact;
        size_t records;            /* lines in the file */
        size_t first_bad_line;     /* 1-based; 0 when intact */
        char reason[256];
};
/* Checks the chain, each run's seq and, with public_key, every signature. -errno only when
 * the input cannot be read; tampering is a verdict. */
int audit_verify_buffer(const char *p, size_t size, const unsigned char *public_key, struct audit_verdict *ret);
int audit_verify_file(const char *path, const unsigned char *public_key, struct audit_verdict *ret);
