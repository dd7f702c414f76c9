/* `secrets-run run`: resolve, gate, fetch, deliver, spawn, supervise, scan artifacts, tear
 * down. command_run() reads as the list of DESIGN §1; each phase lives in the file named for
 * what it owns (run.h lists them). */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "output.h"
#include "redact.h"
#include "run.h"
#include "scope.h"

void run_done(struct run *r) {
        /* first: while the guard watches the secret files' opens (fanotify makes an opener
         * wait for its thread), wiping them would wait on it */
        output_guard_done(r);
        for (size_t i = 0; i < r->n_secrets; i++) {
                secret_free(r->secrets[i].value);
                secret_meta_done(&r->secrets[i].meta);
        }
        free(r->secrets);
        sources_done(&r->sources);
        secrets_dir_remove(r->dir);
        for (size_t i = 0; i < r->n_fds; i++)
                safe_close(r->fds[i]);
        free(r->fds);
        secret_free(r->env_block);
        strv_free(r->envp);
        strv_free(r->strip_env);
        strv_free(r->hide);
        ci_context_done(&r->ci);
        output_mask_adopt(NULL);   /* our words stop using the run's patterns before they go */
        redactor_free(r->redactor);
        audit_free(r->audit);
        json_decref(r->denials);
        json_decref(r->leaks);
        manifest_free(r->m);
        safe_close(r->signal_fd);
        /* after the directory is gone: a pid 1 that never started the step is killed here */
        sandbox_free(r->sandbox);
}

/* The run's environment (one is required) and stage. */
static int resolve_run_environment(struct run *r) {
        int k = resolve_environment(r->o, r->m, &r->environment);
        if (k < 0)
                return k;
        if (!r->environment) {
                log_error("%s: no environment: pass -e/--env, set $SECRETS_RUN_ENV, or set defaults.environment",
                          r->m->path);
                return -EINVAL;
        }
        const char *stage = r->o->stage;
        if (!stage || !*stage)
                stage = getenv("SECRETS_RUN_STAGE");
        if (!stage || !*stage)
                stage = r->m->default_stage;
        r->stage = stage && *stage ? stage : NULL;
        scope_warn_unnamed(r->m, r->environment, r->stage);
        return 0;
}

static int resolve_scope(struct run *r) {
        int k = ci_context_detect(&r->ci);
        if (k < 0)
                return k;
        for (char **n = r->o->only; n && *n; n++) {
                const struct mf_secret *s = manifest_find_secret(r->m, *n);
                if (!s) {
                        log_error("--only %s: no such secret in %s", *n, r->m->path);
                        return -EINVAL;
                }
                enum scope_verdict v = scope_evaluate(r->m, s, r->environment, r->stage, &r->ci);
                if (v != SCOPE_IN) {
                        run_record_denial(r, *n, scope_verdict_rule(v));
                        log_error("--only %s: policy: not in scope for environment '%s'%s%s (rule: %s; %s:%u)",
                                  *n, r->environment, r->stage ? ", stage " : "", r->stage ? r->stage : "",
                                  scope_verdict_rule(v), r->m->path, s->pos.line);
                        return -EPERM;
                }
        }
        r->secrets = calloc(r->m->n_secrets ? r->m->n_secrets : 1, sizeof(*r->secrets));
        if (!r->secrets)
                return -ENOMEM;
        for (size_t i = 0; i < r->m->n_secrets; i++) {
                const struct mf_secret *s = &r->m->secrets[i];
                enum scope_verdict v = scope_evaluate(r->m, s, r->environment, r->stage, &r->ci);
                if (v == SCOPE_DENY_PROTECTED_PR) {
                        r->n_withheld_pr++;
                        run_record_denial(r, s->name, scope_verdict_rule(v));
                }
                if (v != SCOPE_IN) {
                        log_info("%s: not delivered (rule: %s)", s->name, scope_verdict_rule(v));
                        continue;
                }
                if (r->o->only && !strv_contains(r->o->only, s->name))
                        continue;
                r->secrets[r->n_secrets++].def = s;
        }
        if (r->n_withheld_pr > 0)
                log_warning("%zu secret%s withheld: environment '%s' is protected and this is a pull-request event",
                            r->n_withheld_pr, r->n_withheld_pr == 1 ? "" : "s", r->environment);
        return 0;
}

int run_resolve(struct run *r) {
        int k;
        if ((k = load_manifest(r->o, true, &r->m)) < 0)
                return k;
        if ((k = resolve_run_environment(r)) < 0 || (k = resolve_scope(r)) < 0 || (k = run_gate_approvals(r)) < 0)
                return k;
        if ((k = collect_hidden_paths(r)) < 0)
                return k;
        return collect_stripped_env(r);
}

enum on_leak run_on_leak(const struct run *r) {
        return r->o->on_leak >= 0 ? (enum on_leak) r->o->on_leak : r->m->policy.on_leak;
}

enum sandbox_mode run_sandbox_mode(const struct run *r) {
        return r->o->sandbox >= 0 ? (enum sandbox_mode) r->o->sandbox : r->m->policy.sandbox;
}

enum sandbox_level run_sandbox_level(const struct run *r) {
        enum sandbox_mode m = run_sandbox_mode(r);
        return m == SANDBOX_STRICT ? SANDBOX_LEVEL_STRICT : m == SANDBOX_OFF ? SANDBOX_LEVEL_OFF : SANDBOX_LEVEL_AUTO;
}

bool run_network_off(const struct run *r) {
        return r->o->network >= 0 ? r->o->network == TRI_OFF : !r->m->policy.network;
}

/* ---- the step ---- */

/* Whether two of our fds are one file or pipe (the caller wrote 2>&1). */
static bool same_file(int a, int b) {
        struct stat sa, sb;
        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The sandbox first: its pid 1 is cloned from us before anything is fetched, so it never
 * holds a secret. */
static int run_sandbox_create(struct run *r) {
        struct sandbox_options so = {
                .level = run_sandbox_level(r), .network_off = run_network_off(r),
                .allow_ptrace = r->o->allow_ptrace, .secrets_dir = secrets_dir_path(r->dir),
                .secrets_dir_on_disk = secrets_dir_on_disk(r->dir), .hide = r->hide,
        };
        return sandbox_create(&so, &r->sandbox, &r->sandbox_status);
}

/* Starts the command; 126/127 in r->status when it cannot be executed. */
static int run_spawn(struct run *r) {
        r->signal_fd = signals_block_to_fd();
        if (r->signal_fd < 0) {
                log_error("cannot set up signal forwarding: %s", strerror(-r->signal_fd));
                return r->signal_fd;
        }
        _cleanup_free_ char **envp = envp_with_env_block(r);
        if (!envp)
                return -ENOMEM;
        /* file times come from the kernel's coarse clock, which lags the precise one by up
         * to a tick: a file written in the step's first millisecond can look older than a
         * precise "now". Scanning a little too much is the safe side. */
        clock_gettime(CLOCK_REALTIME_COARSE, &r->started);
        r->started.tv_sec -= 1;
        struct spawn_config sc = {
                .argv = r->o->args, .envp = envp, .fds = r->fds, .n_fds = r->n_fds,
                /* --tty auto: a pty when a person is watching our output */
                .pty = r->o->tty == 1 || (r->o->tty < 0 && isatty(STDOUT_FILENO)),
                /* 2>&1 (one log file, one pipe): one stream, so the order stays the step's */
                .merge_output = same_file(STDOUT_FILENO, STDERR_FILENO),
                /* the guard watches what the sandbox's own filter would let through */
                .guard = run_sandbox_level(r) != SANDBOX_LEVEL_OFF && r->o->guard != TRI_OFF,
        };
        if (sc.guard && output_guard_prepare(r) < 0)
                return log_error("output guard: %s", strerror(ENOMEM)), -ENOMEM;
        int k = sandbox_spawn(r->sandbox, &sc, &r->child, &r->sandbox_status);
        free(steal_pointer(&envp));
        /* the step has its own copies now; ours close and wipe */
        secret_free(steal_pointer(&r->env_block));
        for (size_t i = 0; i < r->n_fds; i++)
                r->fds[i] = safe_close(r->fds[i]);
        if (k == -ENOTSUP) {
                output_sandbox_error(r, k);
                return k;
        }
        if (k < 0) {
                log_error("cannot execute '%s': %s", r->o->args[0], strerror(-k));
                r->status = r->command_status = k == -ENOENT || k == -ENOTDIR ? 127 : 126;
                return k;
        }
        (void) output_guard_start(r);
        output_sandbox_line(r);
        log_info("started '%s' (pid %d) with %zu secret%s", r->o->args[0], (int) r->child.pid, r->n_secrets,
                 r->n_secrets == 1 ? "" : "s");
        return 0;
}

/* Relays the step's output through the redactor until it exits, leases renewed meanwhile. */
static int run_supervise(struct run *r) {
        int k;
        if (r->child.pty_fd >= 0 && (k = pty_prepare(r->child.pty_fd)) < 0)
                log_warning("cannot put the terminal in raw mode: %s", strerror(-k));
        struct supervise_result result;
        struct supervise_timer renewals;
        r->step_running = true;
        /* renewals on their own thread, so a slow Vault does not pause the output; if no
         * thread can be had, from the supervisor's loop as a timer */
        renewer_start(r, &renewals);
        renewals.after_output = run_audit_flush_leaks;
        k = supervise(&r->child, r->signal_fd, r->o->timeout_ms, r->redactor, &renewals, &result);
        renewer_stop(r);
        output_guard_stop(r);
        r->step_running = false;
        pty_restore();
        child_release(&r->child);
        if (k < 0) {
                log_error("supervising the step failed: %s", strerror(-k));
                return k;
        }
        r->command_status = exit_status_from_wait(result.wstatus);
        r->timed_out = result.timed_out;
        r->output_leaks = result.leaks;
        if (WIFSIGNALED(result.wstatus) && WTERMSIG(result.wstatus) == SIGSYS)
                /* the filter kills only for a system call made through another architecture's
                 * entry point (32-bit int 0x80, x32); everything else it refuses with an errno */
                log_error("sandbox violation: the step was killed by SIGSYS for a system call through a foreign "
                          "architecture's ABI (32-bit or x32 entry), which the sandbox forbids");
        return 0;
}

/* The CI files a step writes for the runner to read after it ($GITHUB_OUTPUT and the
 * rest): a value in them would reach the later steps and their logs, so it is masked there
 * as well as reported. */
static const char *const ci_command_files[] = {
        "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", "GITHUB_STATE",
};

/* The step is over: the CI command files, every file the guard saw it write, and the
 * artifact globs are scanned with the same matcher, each file once. */
static void run_scan_artifacts(struct run *r) {
        char *const *artifacts = r->o->artifacts ? r->o->artifacts : r->m->policy.artifacts;
        /* keys, stores, the audit log, and the secrets directory itself (a step run at / would
         * walk into it: its files are the values, not leaks) */
        _cleanup_strv_free_ char **own = strv_copy(r->hide);
        if (r->audit)
                (void) strv_extend(&own, audit_path(r->audit));
        (void) strv_extend(&own, secrets_dir_path(r->dir));
        struct artifact_scan s;
        int k = artifact_scan_init(&s, r->redactor, own);
        for (size_t i = 0; k >= 0 && i < ELEMENTSOF(ci_command_files); i++) {
                const char *path = getenv(ci_command_files[i]);
                int m = path && *path ? artifact_mask_in_place(&s, path) : 0;
                if (m > 0)
                        log_warning("$%s: masked the leaked value%s in place, so later steps do not get %s",
                                    ci_command_files[i], m == 1 ? "" : "s", m == 1 ? "it" : "them");
                else if (m < 0)
                        log_warning("$%s: cannot scan %s: %s", ci_command_files[i], path, strerror(-m));
        }
        output_guard_scan(r, &s);
        /* `changed` as well: a file written for the step by something outside it (a
         * container engine's daemon writing a bind mount) is no call the guard sees */
        if (k >= 0)
                k = artifact_scan_globs(&s, artifacts, &r->started);
        if (k < 0)
                log_warning("artifact scan failed: %s", strerror(-k));
        r->artifact_leaks = s.leaks;
        artifact_scan_done(&s);
        output_guard_audit(r);
        run_audit_flush_leaks(r);
}

/* The run's status from the step's, the timeout and the leaks (DESIGN §8). */
static void run_verdict(struct run *r) {
        if (r->timed_out) {
                char d[32];
                log_error("timeout: the step ran longer than %s and was stopped",
                          format_duration((r->o->timeout_ms + 999) / 1000, d, sizeof d));
                r->status = 124;
        } else
                r->status = r->command_status;
        flush_leak_reports();
        output_leak_summary(r);
        if (r->output_leaks + r->artifact_leaks > 0 && run_on_leak(r) == ON_LEAK_FAIL && r->status != 124)
                r->status = 123;
}

/* Leases and login tokens revoked, then run.exit (125 if the log refused it), then the
 * step summary; run_done wipes the rest. */
static void run_teardown(struct run *r) {
        report_leaks_to(NULL, NULL);
        run_close_backends(r);
        run_audit_end(r);
        if (r->m && !r->o->dry_run)
                output_step_summary(r);
        output_result_file(r);
        leak_reports_done();
}

/* ---- the run ---- */

int command_run(const struct options *o) {
        _cleanup_(run_done) struct run r = RUN_INIT(o);
        int k;
        if (!o->dry_run && (!o->args || !o->args[0])) {
                log_error("run: no command given [usage: secrets-run [run] [OPTIONS] [--] COMMAND [ARG...]]");
                return 125;
        }
        if ((k = secrets_dir_sweep()) > 0)
                log_info("removed %d secrets director%s left by a crashed run", k, k == 1 ? "y" : "ies");

        if (run_resolve(&r) < 0) {
                /* a refusal after the manifest was read (--only out of scope) is audited */
                if (r.m && r.environment && !o->dry_run)
                        (void) run_audit_begin(&r);
                goto out;
        }
        report_leaks_as_warnings(run_on_leak(&r) == ON_LEAK_WARN);
        report_leaks_to(run_audit_leak, &r);
        if (create_secrets_dir(&r) < 0)
                goto out;
        k = run_sandbox_create(&r);
        /* nothing runs and nothing is fetched unless the audit log takes records */
        if (!o->dry_run && run_audit_begin(&r) < 0)
                goto out;
        if (k < 0) {
                output_sandbox_error(&r, k);
                goto out;
        }
        if (run_fetch(&r) < 0 || run_gate_rotation(&r) < 0)
                goto out;
        /* on disk before the step runs; written now, the fsync overlaps pid 1's setup */
        if (!o->dry_run && run_audit_delivered(&r) < 0)
                goto out;
        if ((k = sandbox_ready(r.sandbox, &r.sandbox_status)) < 0) {
                output_sandbox_error(&r, k);
                goto out;
        }
        if (o->dry_run) {
                output_dry_run(&r);
                r.status = 0;
                goto out;
        }
        if (deliver(&r, sandbox_dir_fd(r.sandbox)) < 0)
                goto out;
        r.delivered = true;
        if (run_spawn(&r) < 0 || run_supervise(&r) < 0)
                goto out;
        run_scan_artifacts(&r);
        run_verdict(&r);
out:
        run_teardown(&r);
        return r.status;
}
