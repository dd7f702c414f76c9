/* The state of one `secrets-run run` (and of redact/scan, which share its first phases), and
 * one function per phase of DESIGN §1. Private to the files that implement the phases. */
#pragma once

#include <time.h>
#include <jansson.h>

#include "agent.h"
#include "backends.h"
#include "ci.h"
#include "sandbox.h"

struct fetched {
        const struct mf_secret *def;
        struct secret *value;
        struct secret_meta meta;
};

struct renewer;
struct redact_leak;
struct redact_sink;
struct redact_scanner;
struct redactor;

struct run {
        const struct options *o;
        struct manifest *m;
        const char *environment;
        const char *stage;
        struct ci_context ci;
        struct fetched *secrets;        /* in scope (and in --only) */
        size_t n_secrets;
        size_t n_withheld_pr;
        struct sources sources;         /* the manifest's backends, opened on first use */
        char **strip_env;               /* variables that must not reach the step */
        char **hide;                    /* paths the sandbox covers: keys and stores */
        struct secrets_dir *dir;
        int *fds;
        size_t n_fds;
        struct secret *env_block;       /* "NAME=value\0..." of env deliveries */
        char **envp;                    /* pointers into environ copies and env_block */
        struct redactor *redactor;
        /* the sandbox and the step */
        struct sandbox *sandbox;
        struct sandbox_status sandbox_status;
        struct child child;
        int signal_fd;
        struct timespec started;        /* artifacts changed after this are the step's */
        uint64_t started_ms;            /* monotonic, for run.exit's duration */
        bool delivered;
        /* the outcome */
        int status;                     /* the run's exit status (DESIGN §8) */
        int command_status;             /* the command's own, -1 if it did not run */
        bool timed_out;
        uint64_t output_leaks, artifact_leaks;
        /* the audit trail (NULL with --dry-run, and for redact/scan) */
        struct audit *audit;
        int audit_error;                /* the first failed write after the step started */
        bool step_running;              /* backend events are written at once, like leaks */
        struct renewer *renewer;        /* while the renewal thread runs: where events queue */
        json_t *denials;                /* [{name, rule}] policy.deny events */
        json_t *leaks;                  /* [{name, form, stream|path, member, offset, line, col}] */
        struct output_guard *guard;     /* what the step wrote and where it connected */
};

#define RUN_INIT(options) ((struct run) { .o = (options), .child = CHILD_NULL, .signal_fd = -1, \
                                        .started_ms = now_monotonic_ms(), .status = 125, .command_status = -1 })

/* run.c: the phases' order, and what several phases ask of the run */
void run_done(struct run *r);
/* Load, resolve environment, stage and scope, and what must not cross into the step:
 * nothing secret is in memory yet. */
int run_resolve(struct run *r);
enum on_leak run_on_leak(const struct run *r);
enum sandbox_mode run_sandbox_mode(const struct run *r);      /* --sandbox, else policy.sandbox */
enum sandbox_level run_sandbox_level(const struct run *r);
bool run_network_off(const struct run *r);

/* fetch.c: every in-scope secret from its backend into secure memory, then the redactor */
int run_fetch(struct run *r);
/* redactor_add, refusing (-E2BIG, said) past MAX_PATTERNS in *patterns, the run's count. */
int redactor_add_bounded(struct redactor *red, const char *name, const struct secret *v, size_t *patterns);
/* Closes the backends (revoking leases and login tokens) before run.exit is written, so the
 * revocations are on record with it. */
void run_close_backends(struct run *r);

/* approve.c: a secret of a protected environment needs a valid, current approval by each
 * identity of its approved_by, or the run refuses (-EPERM) before anything is fetched */
int run_gate_approvals(struct run *r);

/* rotation.c: past rotation.max_age warns, past fail_after refuses (-EKEYEXPIRED) */
int run_gate_rotation(struct run *r);

/* delivery.c: what crosses into the step, and what must not */
int collect_hidden_paths(struct run *r);
int collect_stripped_env(struct run *r);
/* Wipes the fetched values' originals out of our own environment block. */
void scrub_own_environment(struct run *r);
int create_secrets_dir(struct run *r);
/* Writes file deliveries through dir_fd, makes fd deliveries and the env block, and the
 * step's environment. */
int deliver(struct run *r, int dir_fd);
/* The step's final envp, env deliveries first; NULL on ENOMEM. Points into r's buffers. */
char **envp_with_env_block(struct run *r);

/* run_audit.c: the run's audit records. Each returns < 0 when the log refused a record. */
/* {mode, active, missing}: the sandbox as set up so far, for records and the dry run. */
json_t *run_sandbox_json(const struct run *r);
int run_audit_event(struct run *r, const char *event, json_t *fields);   /* queues; takes fields */
int run_audit_write(struct run *r);                                      /* on disk now */
void run_record_denial(struct run *r, const char *name, const char *rule);
/* Opens the log; run.start and the policy denials. */
int run_audit_begin(struct run *r);
/* secret.deliver for each secret, then on disk before the step starts. */
int run_audit_delivered(struct run *r);
/* lease.expiring for leases that end before the step's --timeout and are not renewable. */
int run_audit_short_leases(struct run *r);
/* The last record; r->status becomes 125 for a failed write if it was 0. */
void run_audit_end(struct run *r);
/* What a backend says about itself as it is opened (backend.identity), and its events. */
int run_audit_backend_identity(struct run *r, struct backend *b, enum backend_type type);
void run_audit_backend_event(void *userdata, const struct backend_event *e);
/* An event from a backend or the renewal thread's queue: written at once while the step
 * runs; a failed write is remembered for run.exit. */
void run_audit_record(struct run *r, const char *event, json_t *fields);
/* The leak hook: the first leaks of each secret, form and place queued as records and kept
 * for the step summary; run_audit_flush_leaks writes what is queued (one batch, one fsync). */
void run_audit_leak(void *userdata, const struct redact_leak *leak, const char *where, bool reported);
void run_audit_flush_leaks(void *userdata);

/* artifacts.c: scanning files after the step, each file once */
struct artifact_scan {
        const struct redactor *r;
        json_t *seen;                   /* "dev:ino" of our own files and of those scanned */
        struct redact_scanner *scanner; /* one stream and buffer for every file */
        uint64_t leaks;
};
/* own: secrets-run's files and directories, never scanned. */
int artifact_scan_init(struct artifact_scan *s, const struct redactor *r, char *const *own);
void artifact_scan_done(struct artifact_scan *s);
/* One file (a symlink followed), unless it was scanned already; leaks reported as display. */
int artifact_scan_path(struct artifact_scan *s, const char *path, const char *display);
/* The files under the working directory matching globs (`changed`: modified since). */
int artifact_scan_globs(struct artifact_scan *s, char *const *globs, const struct timespec *since);
/* A CI command file: scanned, and if it leaked, rewritten in place with the values masked. */
int artifact_mask_in_place(struct artifact_scan *s, const char *path);
/* One file's leaks to sink (not to the reports): for the guard's thread. */
int scan_file_to(const struct redactor *r, const char *path, const struct redact_sink *sink);

/* guard.c: the output guard's record of the step's writes and connections */
/* Before the spawn: the record, and the watch on the secret files' first opens. */
int output_guard_prepare(struct run *r);
/* After the spawn: 1 watching, 0 not asked for, -errno unavailable (said in the status). */
int output_guard_start(struct run *r);
enum read_state { READ_UNKNOWN, READ_NOT, READ_BY };
/* Whether the secret file `file` was opened, and by which program (NULL: not told). */
enum read_state output_guard_read_state(const struct run *r, const char *file, const char **ret_program);
void output_guard_stop(struct run *r);   /* the step is over */
/* Leaks found as files went, then every written file still there. */
void output_guard_scan(struct run *r, struct artifact_scan *s);
/* secret.read records and "granted but not read" warnings; net.connect records, one per
 * destination and program. */
void output_guard_audit(struct run *r);
void output_guard_done(struct run *r);

/* renewer.c: lease renewal while the step runs, on its own thread where one can be had.
 * Fills *ret_timer for supervise(): wake-ups to write what the thread queued, or renewals
 * from the supervisor's own loop. */
void renewer_start(struct run *r, struct supervise_timer *ret_timer);
/* Stops and joins the thread (a renewal under way is interrupted), then writes what it left. */
void renewer_stop(struct run *r);
/* From the renewal thread: queues an event for the main thread. false: there is no thread,
 * the caller is the main thread and records it itself. Takes fields either way. */
bool renewer_queue(struct run *r, const char *event, json_t *fields);
