/* The agent's internal interfaces between the CLI (main.c) and the commands it runs. */
#pragma once

#include <time.h>

#include "manifest.h"

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
        uint64_t timeout_ms;  /* 0 = none */
        char **artifacts;
        char *audit_log;
        int tty;              /* -1 auto, 0 never, 1 always */
        bool allow_ptrace;
        bool dry_run;
        /* redact / scan */
        char **secret_files;
        /* store */
        char *store_path;     /* --store */
        uint64_t store_to;    /* --to; 0 = not given */
        /* positional arguments after the sub-command (the command for run) */
        char **args;
};

/* Loads the manifest the options point at and applies the check gate. On failure prints
 * what is wrong (findings with FILE:LINE:COL) and returns -errno / -EINVAL. */
int load_manifest(const struct options *o, bool gate_on_policy, struct manifest **ret);

int command_run(const struct options *o);     /* returns the exit status of DESIGN §8 */
int command_check(const struct options *o);   /* 0, 1, 2 */
int command_redact(const struct options *o);  /* 0 clean, 1 leak (on-leak fail), 2 error */
int command_scan(const struct options *o);    /* 0 clean, 1 leak, 2 error */
int command_store(const struct options *o);   /* 0, 1 */

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
/* Pumps the step's output through the redactor (NULL: pass through) until it exits. */
int supervise(struct child *c, int signal_fd, uint64_t timeout_ms, const struct redactor *redactor,
              struct supervise_result *ret);

/* ---- leak reports (stderr, and ::error annotations under GitHub Actions) ---- */
struct redact_leak;
/* where: "stdout", "stderr", "stdin", or a path; offset is the leak's byte offset in it */
void report_leak(const struct redact_leak *leak, const char *where);
void report_leaks_as_warnings(bool warn);   /* --on-leak warn */
/* Prints the queued reports (after the step's output is over). */
void flush_leak_reports(void);

/* ---- artifacts: files to scan after the step ---- */
/* Scans the files under the working directory that match any glob of `globs` ("changed" =
 * modified since `since`, .git/ excepted). Returns the number of leaks, or -errno. */
int scan_artifacts(const struct redactor *r, char *const *globs, const struct timespec *since);
/* Scans PATHs (files, or directories recursively). Returns leaks found, or -errno. */
int scan_paths(const struct redactor *r, char *const *paths);
