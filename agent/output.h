/* Everything secrets-run prints about a run for people and CI systems: leak reports, the
 * leak summary line, the sandbox line, dry-run output, GitHub annotations, the step summary. */
#pragma once

#include <stdio.h>

#include "common.h"

/* ---- the one masker for what secrets-run itself writes (mask.c) ----
 * Every value a command fetched and every credential a backend read or obtained is added;
 * messages on stderr, our stdout, the step summary and audit fields pass through it. */
int output_mask_add(const char *name, const void *p, size_t n);   /* copies */
/* credential: a backend's (a token, a key), not a value the command fetched. */
int output_mask_add_as(const char *name, const void *p, size_t n, bool credential);
/* r, the run's redactor compiled over every value added so far, masks those values in our
 * words too (one compile for the step's output and ours; credentials and later additions
 * are masked by the masker's own set); NULL before r is freed. */
struct redactor;
void output_mask_adopt(const struct redactor *r);
/* text with every form of every added value replaced by [REDACTED:NAME], malloc'd; NULL
 * when nothing in it needs masking. A text that cannot be looked at (no memory) comes back
 * as a placeholder saying it was withheld: the masker fails closed. */
char *output_mask(const char *text, size_t len, size_t *ret_len);
void output_mask_done(void);
/* At start: messages and stdout go through the masker from now on. */
void output_init(void);
/* At exit: what is left of stdout's last line is written; the masker forgets its values.
 * -errno if a write to stdout failed. */
int output_done(void);

/* ---- GitHub Actions workflow commands (`::error file=F,line=L::message`) ----
 * One escaper for both parts: %, CR and LF always, and ':' and ',' in properties, so text a
 * step chose (a file name with a newline and "::") cannot end the command and start its own. */
void workflow_command_escape(FILE *out, const char *s, bool property);
/* Under GitHub Actions, one annotation line on out; elsewhere nothing. file, title may be
 * NULL; line, col 0 when unknown. */
void annotation_print(FILE *out, const char *level, const char *file, unsigned line, unsigned col,
                      const char *title, const char *message);

/* ---- leak reports (stderr, and an annotation under GitHub Actions) ----
 * The first LEAK_REPORTS_EACH leaks of one secret in one form at one place are reported one by
 * one (`leak: PLACE:LINE:COL (form): NAME`); the rest are counted and told in one line with
 * their first and last positions. */
#define LEAK_REPORTS_EACH 10
struct redact_leak;
/* A leak's place as people and editors read it: where, or where!member for a member of an
 * archive, then :line:col when line > 0 (col in bytes since the line's start). malloc'd;
 * NULL without memory. The one spelling of a place: reports, annotations, the step summary. */
char *leak_place(const char *where, const char *member, uint64_t line, uint64_t col);
/* where: "stdout", "stderr", "stdin", or a path; the leak's position (and member) is in it */
void report_leak(const struct redact_leak *leak, const char *where);
/* The file at where was written by program (the output guard saw it): its reports say so. */
void report_writer(const char *where, const char *program);
const char *leak_writer(const char *where);   /* NULL: not known */
void report_leaks_as_warnings(bool warn);   /* --on-leak warn */
/* Prints the queued reports and the counts (after the step's output is over). */
void flush_leak_reports(void);
/* Also hands every leak to hook as it is found (NULL: none), e.g. for the audit log;
 * reported is false for a leak that is only counted. */
typedef void (*leak_hook_t)(void *userdata, const struct redact_leak *leak, const char *where, bool reported);
void report_leaks_to(leak_hook_t hook, void *userdata);
/* Where a leak is in its stream or file: byte offset, 1-based line and column. */
struct leak_pos {
        uint64_t offset, line, col;
};
/* The leaks that were counted, not reported one by one, per secret, form and place. */
struct leak_summary {
        const char *name, *form, *where;
        const char *member;       /* NULL: none */
        uint64_t count;
        struct leak_pos first, last;
};
void leak_groups_foreach(void (*fn)(void *userdata, const struct leak_summary *s), void *userdata);
/* Flushes, then forgets every leak (the end of a command). */
void leak_reports_done(void);
bool leak_where_is_stream(const char *where);

/* ---- a run ---- */
struct run;
/* The sandbox's one line: what is active, what is missing and why. */
void output_sandbox_line(const struct run *r);
/* A sandbox layer that failed (k < 0; -ENOTSUP: the status says why). */
void output_sandbox_error(const struct run *r, int k);
/* After the step: the count of leaks and what on_leak makes of them. */
void output_leak_summary(const struct run *r);
/* --dry-run: what would be delivered, as text or JSON on stdout. */
void output_dry_run(const struct run *r);
/* --result-file: {"status", "command_status", "leaks", "output_leaks", "artifact_leaks",
 * "timed_out"} (counts and statuses only), replacing the file; a failure is a warning. */
void output_result_file(const struct run *r);
/* Under GitHub Actions: a Markdown account of the run in $GITHUB_STEP_SUMMARY. */
void output_step_summary(const struct run *r);
