/* `secrets-run run`: resolve scope, gate, fetch, deliver, supervise, tear down.
 * One function per phase; command_run() reads as the list of DESIGN §1. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <jansson.h>
#include <sodium.h>

#include "agent.h"
#include "backends.h"
#include "redact.h"
#include "sandbox.h"
#include "scope.h"

extern char **environ;

struct fetched {
        const struct mf_secret *def;
        struct secret *value;
        struct secret_meta meta;
};

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
        /* the audit trail (NULL with --dry-run, and for redact/scan) */
        struct audit *audit;
        int audit_error;                /* the first failed write after the step started */
        bool step_running;              /* backend events are written at once, like leaks */
        struct renewer *renewer;        /* while the renewal thread runs: where events queue */
        json_t *denials;                /* [{name, rule}] policy.deny events */
        json_t *leaks;                  /* [{name, form, stream|path, offset}] for the summary */
};

static void run_done(struct run *r) {
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
        redactor_free(r->redactor);
        audit_free(r->audit);
        json_decref(r->denials);
        json_decref(r->leaks);
        manifest_free(r->m);
}

/* ---- audit ---- */

static const char *delivery_name(enum delivery d) {
        return d == DELIVER_FD ? "fd" : d == DELIVER_ENV ? "env" : "file";
}

static const char *sandbox_mode_name(enum sandbox_level l) {
        return l == SANDBOX_LEVEL_OFF ? "off" : l == SANDBOX_LEVEL_STRICT ? "strict" : "auto";
}

/* Queues a record; audit_write() puts what is queued on disk. */
static int audit_event(struct run *r, const char *event, json_t *fields) {
        if (!r->audit) {
                json_decref(fields);
                return 0;
        }
        if (!fields)
                return -ENOMEM;
        int k = audit_append(r->audit, event, fields);
        if (k < 0)
                log_error("audit log %s: %s", audit_path(r->audit), audit_strerror(k));
        return k;
}

/* Writes the queued records: one locked append and one fsync for each point of the run
 * that must be on record before it goes on (before fetching, before the step, at exit). */
static int audit_write(struct run *r) {
        int k = r->audit ? audit_flush(r->audit) : 0;
        if (k < 0)
                log_error("audit log %s: %s", audit_path(r->audit), audit_strerror(k));
        return k;
}

static void record_denial(struct run *r, const char *name, const char *rule) {
        if (!r->denials)
                r->denials = json_array();
        json_array_append_new(r->denials, json_pack("{s:s, s:s}", "name", name, "rule", rule));
}

static json_t *sandbox_json(enum sandbox_level level, const struct sandbox_status *st) {
        json_t *active = json_array(), *missing = json_array();
        for (int l = 0; st && l < _LAYER_MAX; l++) {
                if (st->active & (1u << l))
                        json_array_append_new(active, json_string(sandbox_layer_name((enum sandbox_layer) l)));
                if (st->missing & (1u << l))
                        json_array_append_new(missing, json_string(sandbox_layer_name((enum sandbox_layer) l)));
        }
        return json_pack("{s:s, s:o, s:o}", "mode", sandbox_mode_name(level), "active", active, "missing", missing);
}

static void hex_encode(const unsigned char *p, size_t n, char *out) {
        sodium_bin2hex(out, n * 2 + 1, p, n);
}


/* ---- scope ---- */

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
                        record_denial(r, *n, scope_verdict_rule(v));
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
                        record_denial(r, s->name, scope_verdict_rule(v));
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

/* ---- fetch ---- */

/* ---- what backends do on their own: lease events and identity ---- */

static const char *backend_event_name(enum backend_event_kind k) {
        switch (k) {
        case BACKEND_EVENT_LEASE_RENEW:         return "lease.renew";
        case BACKEND_EVENT_LEASE_RENEW_FAILED:  return "lease.renew_failed";
        case BACKEND_EVENT_LEASE_REVOKE:        return "lease.revoke";
        case BACKEND_EVENT_LEASE_REVOKE_FAILED: return "lease.revoke_failed";
        case BACKEND_EVENT_LEASE_EXPIRING:      return "lease.expiring";
        default:                                return "lease.unknown";
        }
}

/* Lease renewal on a thread of its own while the step runs, so that a slow Vault does not
 * pause the step's output (the supervisor's loop relays it meanwhile). The thread does
 * nothing but renew: the backends are not touched by the main thread until it is joined,
 * and the events it produces are queued here, under the lock, for the main thread to write
 * (the audit log is not shared between threads), which the eventfd wakes. */
struct renewer {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;            /* on CLOCK_MONOTONIC: stop, or a renewal is due */
        bool stop;
        int event_fd;                   /* readable: events are queued */
        json_t *queue;                  /* [{event, fields}] */
};

static void audit_record_event(struct run *r, const char *event, json_t *fields);

/* A lease event as an audit record. While the step runs it is written at once (a renewal
 * that failed is on record even if we are then killed); a failed write is reported at the
 * end, as for leaks. Revocations come at close, before run.exit, and go with it. Runs on the
 * renewal thread while there is one. A message is printed at once, there too (log_* is
 * safe on any thread), so it keeps its place among the step's output. */
static void audit_backend_event(void *userdata, const struct backend_event *e) {
        struct run *r = userdata;
        if (e->kind == BACKEND_EVENT_MESSAGE) {
                backend_event_print(e);
                return;
        }
        if (!r->audit)
                return;
        json_t *ev = json_pack("{s:s, s:s}", "backend", e->backend, "lease", e->lease_id ? e->lease_id : "login token");
        if (ev && (e->kind == BACKEND_EVENT_LEASE_RENEW || e->kind == BACKEND_EVENT_LEASE_EXPIRING))
                json_object_set_new(ev, "ttl", json_integer((json_int_t) e->ttl_s));
        if (ev && e->reason)
                json_object_set_new(ev, "reason", json_string(e->reason));
        struct renewer *w = r->renewer;
        if (!w) {
                audit_record_event(r, backend_event_name(e->kind), ev);
                return;
        }
        json_t *item = ev ? json_pack("{s:s, s:o}", "event", backend_event_name(e->kind), "fields", ev) : NULL;
        pthread_mutex_lock(&w->lock);
        /* a record that could not even be queued is a failed write: NULL stands for it */
        json_array_append_new(w->queue, item ? item : json_null());
        pthread_mutex_unlock(&w->lock);
        uint64_t one = 1;
        (void) !write(w->event_fd, &one, sizeof one);
}

static void audit_record_event(struct run *r, const char *event, json_t *fields) {
        int k = fields ? audit_append(r->audit, event, fields) : -ENOMEM;
        if (k >= 0 && r->step_running)
                k = audit_flush(r->audit);
        if (k < 0 && !r->audit_error)
                r->audit_error = k;
}

/* backend.identity: who a backend acts as (Vault: lookup-self), recorded when it is opened.
 * One request, and only when there is a log to write; a failed lookup is a warning. */
static int audit_backend_identity(struct run *r, struct backend *b, enum backend_type type) {
        if (!r->audit)
                return 0;
        struct backend_identity id = {};
        _cleanup_free_ char *why = NULL;
        int k = backend_identity(b, &id, &why);
        if (k == -EOPNOTSUPP)
                return 0;
        if (k < 0) {
                log_warning("%s", why ? why : strerror(-k));
                return k == -ENOMEM ? k : 0;
        }
        json_t *policies = json_array();
        for (char **p = id.policies; policies && p && *p; p++)
                json_array_append_new(policies, json_string(*p));
        json_t *ev = policies ? json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s?, s:o}", "backend", backend_name(b), "type",
                                          backend_kind_name(backend_kind_of(type)), "auth", id.auth, "login",
                                          id.from_login, "display_name", id.display_name, "entity_id", id.entity_id,
                                          "policies", policies) : NULL;
        uint64_t ttl_s = id.ttl_s;
        bool renewed = id.renewed;
        backend_identity_done(&id);
        if ((k = audit_event(r, "backend.identity", ev)) < 0)
                return k;
        if (renewed || !ttl_s || !r->o->timeout_ms || ttl_s * 1000 >= r->o->timeout_ms)
                return 0;
        /* a token that nobody renews ends before the step may, and every lease it obtained
         * with it (lease.expiring at the start, like a lease that is not renewable) */
        log_warning("backend '%s': its token expires in %" PRIu64 " s, before the step's --timeout, and is not renewed",
                    backend_name(b), ttl_s);
        return audit_event(r, "lease.expiring",
                           json_pack("{s:s, s:s, s:I, s:s}", "backend", backend_name(b), "lease", "token", "ttl",
                                     (json_int_t) ttl_s, "reason",
                                     "the token is not renewed and expires before the step's --timeout; its leases end with it"));
}

/* Every backend, as it is opened: its lease events go to the audit log, and who it acts as
 * is on record before anything is fetched. */
static int backend_opened(void *userdata, struct backend *b, const struct mf_backend *def) {
        struct run *r = userdata;
        backend_set_event_handler(b, audit_backend_event, r);
        return audit_backend_identity(r, b, def->type);
}

/* Tells b, just opened, about every secret from index first on that it will be asked for
 * (the Vault backend fetches independent paths concurrently). */
static int prefetch_for(struct run *r, struct backend *b, size_t first) {
        const struct mf_secret *s0 = r->secrets[first].def;
        if (mf_secret_is_ephemeral(s0))
                return 0;
        _cleanup_free_ struct secret_ref *refs = calloc(r->n_secrets - first, sizeof(*refs));
        if (!refs)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = first; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                if (!mf_secret_is_ephemeral(s) && s->backend && streq(s->backend, s0->backend))
                        refs[n++] = secret_ref_of(s);
        }
        _cleanup_free_ char *why = NULL;
        int k = backend_prefetch(b, refs, n, &why);
        if (k < 0)
                log_error("backend '%s': %s", backend_name(b), why ? why : strerror(-k));
        return k;
}

static int fetch_secrets(struct run *r) {
        int k = sources_init(&r->sources, r->m);
        if (k < 0)
                return k;
        r->sources.on_open = backend_opened;
        r->sources.userdata = r;
        _cleanup_free_ struct backend **prefetched = calloc(r->m->n_backends + 1, sizeof(*prefetched));
        size_t n_prefetched = 0;
        if (!prefetched)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_secrets; i++) {
                struct fetched *f = &r->secrets[i];
                const struct mf_secret *s = f->def;
                struct backend *b;
                k = sources_get(&r->sources, s, &b);
                if (k < 0)
                        return k;
                bool seen = false;
                for (size_t j = 0; j < n_prefetched && !seen; j++)
                        seen = prefetched[j] == b;
                if (!seen) {
                        if ((k = prefetch_for(r, b, i)) < 0)
                                return k;
                        if (n_prefetched < r->m->n_backends + 1)
                                prefetched[n_prefetched++] = b;
                }
                struct secret_ref ref = secret_ref_of(s);
                _cleanup_free_ char *why = NULL;
                k = backend_fetch(b, &ref, &f->value, &f->meta, &why);
                if (k < 0) {
                        log_error("%s%s", why ? why : strerror(-k),
                                  k == -ENOENT && s->generated ? " [a stored generated secret: 'secrets-run apply' creates it]" : "");
                        return k;
                }
                if (secret_len(f->value) < r->m->policy.min_secret_length) {
                        log_error("secret %s: the value from backend '%s' is %zu bytes, shorter than policy.min_secret_length (%zu): it could not be masked safely",
                                  s->name, backend_name(b), secret_len(f->value), r->m->policy.min_secret_length);
                        return -EINVAL;
                }
                log_info("%s: fetched from %s", s->name, backend_name(b));
                json_t *ev = json_pack("{s:s, s:s}", "name", s->name, "backend", backend_name(b));
                if (ev && f->meta.version)
                        json_object_set_new(ev, "version", json_integer((json_int_t) f->meta.version));
                if (ev && f->meta.lease_ttl)
                        json_object_set_new(ev, "lease_ttl", json_integer((json_int_t) f->meta.lease_ttl));
                if ((k = audit_event(r, "secret.fetch", ev)) < 0)
                        return k;
        }
        return 0;
}

/* lease.expiring at the start: a lease Vault will not renew, shorter than the step may run
 * (its --timeout), ends while the step still needs it. Once per lease. */
static int audit_short_leases(struct run *r) {
        uint64_t timeout_ms = r->o->timeout_ms;
        for (size_t i = 0; timeout_ms && i < r->n_secrets; i++) {
                const struct secret_meta *m = &r->secrets[i].meta;
                if (!m->lease_id || m->renewable || m->lease_ttl * 1000 >= timeout_ms)
                        continue;
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = r->secrets[j].meta.lease_id && streq(r->secrets[j].meta.lease_id, m->lease_id);
                if (seen)
                        continue;
                log_warning("secret %s: its lease ends in %" PRIu64 " s and is not renewable, before the step's --timeout",
                            r->secrets[i].def->name, m->lease_ttl);
                json_t *ev = json_pack("{s:s?, s:s, s:I, s:s}", "backend", r->secrets[i].def->backend, "lease",
                                       m->lease_id, "ttl", (json_int_t) m->lease_ttl, "reason",
                                       "not renewable, and shorter than the step's --timeout");
                int k = audit_event(r, "lease.expiring", ev);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Closes the backends (revoking their leases and login tokens) before run.exit is written,
 * so the revocations are on record with it. */
static void close_backends(struct run *r) {
        sources_close(&r->sources);
}

/* Writes what the renewal thread queued (on the main thread). */
static void renewer_drain(struct run *r, struct renewer *w) {
        uint64_t n;
        (void) !read(w->event_fd, &n, sizeof n);
        pthread_mutex_lock(&w->lock);
        json_t *queued = w->queue, *fresh = json_array();
        if (fresh)
                w->queue = fresh;
        pthread_mutex_unlock(&w->lock);
        if (!fresh)
                return;   /* left queued for the next wake-up */
        size_t i;
        json_t *item;
        json_array_foreach(queued, i, item)
                audit_record_event(r, json_string_value(json_object_get(item, "event")),
                                   json_incref(json_object_get(item, "fields")));
        json_decref(queued);
}

static void renewer_wake(void *userdata) {
        struct run *r = userdata;
        if (r->renewer)
                renewer_drain(r, r->renewer);
}

static uint64_t renew_leases(void *userdata, uint64_t now_ms);

static void *renewer_main(void *userdata) {
        struct run *r = userdata;
        struct renewer *w = r->renewer;
        pthread_mutex_lock(&w->lock);
        while (!w->stop) {
                pthread_mutex_unlock(&w->lock);
                uint64_t next = renew_leases(r, now_monotonic_ms());
                pthread_mutex_lock(&w->lock);
                while (!w->stop && next) {
                        if (now_monotonic_ms() >= next)
                                break;
                        struct timespec at = { .tv_sec = (time_t) (next / 1000),
                                               .tv_nsec = (long) (next % 1000) * 1000000 };
                        (void) pthread_cond_timedwait(&w->cond, &w->lock, &at);
                }
                while (!w->stop && !next)
                        pthread_cond_wait(&w->cond, &w->lock);   /* nothing left to renew */
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Starts the renewal thread if any backend has something to renew (asking with now = 0 only
 * reports when, it renews nothing). 0 without a thread: nothing to renew; < 0: the caller
 * renews from the supervisor's loop instead. */
static int renewer_start(struct run *r, struct renewer *w) {
        if (!renew_leases(r, 0))
                return 0;
        *w = (struct renewer) { .event_fd = -1 };
        pthread_condattr_t attr;
        int k = -pthread_condattr_init(&attr);
        if (k < 0)
                return k;
        (void) pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* now_monotonic_ms()'s clock */
        k = -pthread_cond_init(&w->cond, &attr);
        pthread_condattr_destroy(&attr);
        if (k < 0)
                return k;
        if ((k = -pthread_mutex_init(&w->lock, NULL)) < 0)
                goto out_cond;
        w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->event_fd < 0) {
                k = -errno;
                goto out_mutex;
        }
        if (!(w->queue = json_array())) {
                k = -ENOMEM;
                goto out_fd;
        }
        r->renewer = w;
        if ((k = -pthread_create(&w->thread, NULL, renewer_main, r)) < 0) {
                r->renewer = NULL;
                json_decref(w->queue);
                goto out_fd;
        }
        return 1;
out_fd:
        close(w->event_fd);
out_mutex:
        pthread_mutex_destroy(&w->lock);
out_cond:
        pthread_cond_destroy(&w->cond);
        return k;
}

/* Stops and joins the thread (a renewal under way is interrupted), then writes what it left
 * queued. */
static void renewer_stop(struct run *r) {
        struct renewer *w = r->renewer;
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        /* a renewal waiting on a slow Vault is cut short: the step is over and its leases are
         * revoked next (a cancel in CI allows seconds, not a backend timeout) */
        backends_interrupt(true);
        pthread_join(w->thread, NULL);
        backends_interrupt(false);
        r->renewer = NULL;
        renewer_drain(r, w);
        json_decref(w->queue);
        close(w->event_fd);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
}

/* The supervisor's timer while the step runs: leases (and login tokens) are renewed at
 * about two thirds of their TTL; returns the earliest next renewal, 0 if none. */
static uint64_t renew_leases(void *userdata, uint64_t now_ms) {
        struct run *r = userdata;
        return sources_renew(&r->sources, now_ms);
}

/* Variables the step must not see: every env-backend source variable the manifest names
 * (in scope or not: a step has no business reading what it was not granted) and the
 * credentials of the declared backends. */
static int collect_stripped_env(struct run *r) {
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
static void scrub_own_environment(struct run *r) {
        for (char **v = r->strip_env; v && *v; v++) {
                char *value = getenv(*v);
                if (value)
                        sodium_memzero(value, strlen(value));
                (void) unsetenv(*v);
        }
}

/* ---- delivery ---- */

static bool env_name_is_ours(const struct run *r, const char *entry) {
        size_t len = strcspn(entry, "=");
        for (char **v = r->strip_env; v && *v; v++)
                if (strlen(*v) == len && strncmp(*v, entry, len) == 0)
                        return true;
        return false;
}

static int create_secrets_dir(struct run *r) {
        int k = secrets_dir_create(&r->dir);
        if (k < 0)
                log_error("cannot create the secrets directory on a tmpfs (/dev/shm or $XDG_RUNTIME_DIR): %s%s",
                          strerror(-k), k == -EXDEV ? " (it is not a memory file system)" : "");
        return k;
}

/* Files go through dir_fd: the sandbox's private tmpfs, or the host directory without one. */
static int deliver(struct run *r, int dir_fd) {
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
static char **envp_with_env_block(struct run *r) {
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

static enum sandbox_level sandbox_mode_of(const struct run *r) {
        int m = r->o->sandbox >= 0 ? r->o->sandbox : (int) r->m->policy.sandbox;
        return m == SANDBOX_STRICT ? SANDBOX_LEVEL_STRICT : m == SANDBOX_OFF ? SANDBOX_LEVEL_OFF : SANDBOX_LEVEL_AUTO;
}

static bool network_off_of(const struct run *r) {
        return r->o->network >= 0 ? r->o->network == TRI_OFF : !r->m->policy.network;
}

static void print_sandbox_status(const struct run *r, const struct sandbox_status *st) {
        char line[768];
        sandbox_status_format(st, line, sizeof line);
        if (sandbox_mode_of(r) == SANDBOX_LEVEL_OFF)
                log_info("sandbox: off (redaction only)");
        else if (st->missing)
                log_notice("sandbox: %s", line);   /* auto: one line naming what is missing and why */
        else
                log_info("sandbox: %s", line);
}

/* ---- audit events and the GitHub step summary ---- */

/* Opens the log and writes run.start and the policy denials: before any secret is fetched,
 * and after the sandbox's pid 1 exists, so it never holds a copy of the signing key. A
 * failure stops the run (125). */
static int audit_begin(struct run *r, const struct sandbox_status *st) {
        int k = audit_open_for(r->o, r->m, &r->audit);
        if (k < 0)
                return k;
        char sha[65];
        hex_encode(r->m->sha256, sizeof r->m->sha256, sha);
        json_t *ci = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "provider", r->ci.provider,
                               "repository", r->ci.repository, "workflow", r->ci.workflow, "branch", r->ci.branch,
                               "event", r->ci.event, "actor", r->ci.actor, "run_id", r->ci.run_id);
        json_t *ev = ci ? json_pack("{s:s?, s:s?, s:s?, s:o, s:s?, s:s, s:s, s:o}", "project", r->m->project,
                                    "environment", r->environment, "stage", r->stage, "ci", ci, "command",
                                    r->o->args ? r->o->args[0] : NULL, "manifest", r->m->path, "manifest_sha256", sha,
                                    "sandbox", sandbox_json(sandbox_mode_of(r), st)) : NULL;
        if ((k = audit_event(r, "run.start", ev)) < 0)
                goto fail;
        size_t i;
        json_t *d;
        json_array_foreach(r->denials, i, d)
                if ((k = audit_event(r, "policy.deny", json_incref(d))) < 0)
                        goto fail;
        /* audit_open created the log, so one that refuses writes has refused already; these
         * records go to disk with the fetches and deliveries, before the step starts */
        return 0;
fail:
        r->audit = audit_free(r->audit);   /* nothing more goes to a log that refuses writes */
        return k;
}

static bool is_stream(const char *where) {
        return streq(where, "stdout") || streq(where, "stderr") || streq(where, "stdin");
}

/* Called for each leak while the step runs: recorded, and remembered for the summary. A
 * failed write is reported at the end, not in the middle of the step's output. */
static void audit_leak(void *userdata, const struct redact_leak *leak, const char *where) {
        struct run *r = userdata;
        json_t *ev = json_pack("{s:s, s:s, s:s, s:I}", "name", leak->name, "form", redact_form_name(leak->form),
                               is_stream(where) ? "stream" : "path", where, "offset", (json_int_t) leak->offset);
        if (!ev)
                return;
        if (!r->leaks)
                r->leaks = json_array();
        json_array_append(r->leaks, ev);
        /* written at once: on record even if we are killed before the step ends */
        int k = r->audit ? audit_append(r->audit, "leak", json_incref(ev)) : 0;
        if (k >= 0 && r->audit)
                k = audit_flush(r->audit);
        if (k < 0 && !r->audit_error)
                r->audit_error = k;
        json_decref(ev);
}

static int audit_delivered(struct run *r) {
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                int k = audit_event(r, "secret.deliver", json_pack("{s:s, s:s, s:s}", "name", s->name, "method",
                                                                   delivery_name(s->deliver), "as", s->as));
                if (k < 0)
                        return k;
        }
        /* what was fetched and how it is delivered is on record before the step starts; a
         * delivery that then fails shows as run.exit 125 with no command status */
        return audit_write(r);
}

/* The last record; returns the run's exit status (125 for a failed write if it was 0). */
static int audit_end(struct run *r, int status, int command_status, uint64_t started_ms, uint64_t leaks,
                     const struct sandbox_status *st) {
        if (!r->audit)
                return status;
        if (r->audit_error) {
                log_error("audit log %s: recording a leak or lease event failed: %s", audit_path(r->audit),
                          audit_strerror(r->audit_error));
                if (status == 0)
                        status = 125;
        }
        json_t *ev = json_pack("{s:i, s:o, s:I, s:I, s:o}", "status", status, "command_status",
                               command_status >= 0 ? json_integer(command_status) : json_null(), "duration_ms",
                               (json_int_t) (now_monotonic_ms() - started_ms), "leaks", (json_int_t) leaks,
                               "sandbox", sandbox_json(sandbox_mode_of(r), st));
        if ((audit_event(r, "run.exit", ev) < 0 || audit_write(r) < 0) && status == 0)
                status = 125;
        return status;
}

/* Under GitHub Actions: a short Markdown account of the run in $GITHUB_STEP_SUMMARY. */
static void github_step_summary(const struct run *r, int status, int command_status, bool delivered,
                                const struct sandbox_status *st) {
        const char *actions = getenv("GITHUB_ACTIONS"), *path = getenv("GITHUB_STEP_SUMMARY");
        if (!actions || !streq(actions, "true") || !path || !*path)
                return;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return;
        fprintf(f, "### secrets-run: `%s` exited with status %d", r->o->args ? r->o->args[0] : "?", status);
        if (command_status >= 0 && command_status != status)
                fprintf(f, " (the command's own: %d)", command_status);
        fprintf(f, "\n\nEnvironment `%s`%s%s%s.\n\n", r->environment ? r->environment : "?",
                r->stage ? ", stage `" : "", r->stage ? r->stage : "", r->stage ? "`" : "");
        if (delivered && r->n_secrets > 0) {
                fprintf(f, "| secret | delivered as |\n|---|---|\n");
                for (size_t i = 0; i < r->n_secrets; i++)
                        fprintf(f, "| `%s` | %s `%s` |\n", r->secrets[i].def->name, delivery_name(r->secrets[i].def->deliver),
                                r->secrets[i].def->as);
        } else
                fprintf(f, "No secret was delivered.\n");
        char layers[768];
        if (sandbox_mode_of(r) == SANDBOX_LEVEL_OFF)
                snprintf(layers, sizeof layers, "off (redaction only)");
        else
                sandbox_status_format(st, layers, sizeof layers);
        fprintf(f, "\nSandbox: %s\n\n", layers);
        size_t n_leaks = json_array_size(r->leaks);
        if (n_leaks == 0)
                fprintf(f, "No leak detected.\n");
        else {
                fprintf(f, "**%zu leak%s detected** (masked in the log):\n\n", n_leaks, n_leaks == 1 ? "" : "s");
                size_t i;
                json_t *l;
                json_array_foreach(r->leaks, i, l) {
                        const char *where = json_string_value(json_object_get(l, "stream"));
                        bool stream = where != NULL;
                        if (!where)
                                where = json_string_value(json_object_get(l, "path"));
                        fprintf(f, "- `%s` (%s) %s `%s` at byte %lld\n", json_string_value(json_object_get(l, "name")),
                                json_string_value(json_object_get(l, "form")), stream ? "on" : "in", where ? where : "?",
                                (long long) json_integer_value(json_object_get(l, "offset")));
                }
        }
        fputc('\n', f);
        if (fclose(f) != 0)
                return;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0 || write_all(fd, text, size) < 0)
                log_warning("GitHub step summary %s: %s", path, strerror(errno));
}

/* ---- dry run ---- */

static void print_dry_run(const struct run *r, const struct sandbox_status *st) {
        char layers[768];
        sandbox_status_format(st, layers, sizeof layers);
        if (r->o->format == FORMAT_JSON) {
                json_t *list = json_array();
                for (size_t i = 0; i < r->n_secrets; i++) {
                        const struct mf_secret *s = r->secrets[i].def;
                        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", s->name,
                                              "backend", mf_secret_is_ephemeral(s) ? "generate" : s->backend,
                                              "deliver", delivery_name(s->deliver), "as", s->as);
                        if (r->secrets[i].meta.version)
                                json_object_set_new(o, "version", json_integer((json_int_t) r->secrets[i].meta.version));
                        json_array_append_new(list, o);
                }
                json_t *active = json_array(), *missing = json_array();
                for (int l = 0; l < _LAYER_MAX; l++) {
                        if (st->active & (1u << l))
                                json_array_append_new(active, json_string(sandbox_layer_name((enum sandbox_layer) l)));
                        if (st->missing & (1u << l))
                                json_array_append_new(missing, json_string(sandbox_layer_name((enum sandbox_layer) l)));
                }
                json_t *doc = json_pack("{s:s, s:s?, s:o, s:i, s:{s:s, s:o, s:o, s:s?}}", "environment", r->environment,
                                        "stage", r->stage, "secrets", list,
                                        "withheld_pull_request", (int) r->n_withheld_pr, "sandbox",
                                        "mode", sandbox_mode_of(r) == SANDBOX_LEVEL_OFF ? "off" :
                                                sandbox_mode_of(r) == SANDBOX_LEVEL_STRICT ? "strict" : "auto",
                                        "active", active, "missing", missing,
                                        "why", st->missing ? st->why : NULL);
                json_dumpf(doc, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
                json_decref(doc);
                return;
        }
        printf("dry run: environment %s, stage %s: %zu secret%s would be delivered\n", r->environment,
               r->stage ? r->stage : "(none)", r->n_secrets, r->n_secrets == 1 ? "" : "s");
        printf("sandbox: %s\n", sandbox_mode_of(r) == SANDBOX_LEVEL_OFF ? "off (redaction only)" : layers);
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                _cleanup_free_ char *upper = strdup_upper(s->as);
                printf("  %-24s from %-10s as ", s->name, mf_secret_is_ephemeral(s) ? "generate" : s->backend);
                if (s->deliver == DELIVER_FD)
                        printf("fd, number in $%s_FD\n", upper ? upper : s->as);
                else if (s->deliver == DELIVER_ENV)
                        printf("env, variable %s\n", s->as);
                else
                        printf("file, $SECRETS_DIR/%s\n", s->as);
        }
}

/* ---- the run ---- */

/* ---- redaction ---- */

static int build_redactor(struct run *r) {
        int k = redactor_new(r->m->policy.min_secret_length, r->m->policy.mask, &r->redactor);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct secret *v = r->secrets[i].value;
                if ((k = redactor_add(r->redactor, r->secrets[i].def->name, secret_data(v), secret_len(v))) < 0)
                        return k;
        }
        return redactor_compile(r->redactor);
}

static enum on_leak effective_on_leak(const struct run *r) {
        return r->o->on_leak >= 0 ? (enum on_leak) r->o->on_leak : r->m->policy.on_leak;
}

/* What the step must not reach although it runs as our uid: the directory of key files, and
 * every encrypted store the manifest names (with its key the step could decrypt secrets it
 * was never granted). The sandbox covers them inside its mount namespace. */
static int collect_hidden_paths(struct run *r) {
        int k;
        _cleanup_free_ char *keys = NULL;
        if (config_path(NULL, &keys) >= 0 && (k = strv_extend(&r->hide, keys)) < 0)
                return k;
        const char *audit_key = getenv("SECRETS_RUN_AUDIT_KEY");
        if (audit_key && *audit_key && (k = strv_push(&r->hide, realpath(audit_key, NULL) ?: strdup(audit_key))) < 0)
                return k;
        for (size_t i = 0; i < r->m->n_backends; i++) {
                const struct mf_backend *b = &r->m->backends[i];
                if (b->type != BACKEND_FILE)
                        continue;
                _cleanup_free_ char *path = NULL;
                if (manifest_file(r->m, b->path, &path) < 0 || !path ||
                    (k = strv_push(&r->hide, realpath(path, NULL) ?: strdup(path))) < 0)
                        return -ENOMEM;
                if (b->key_file && (k = strv_extend(&r->hide, b->key_file)) < 0)
                        return k;
        }
        return 0;
}

/* Load, gate, resolve the scope: nothing secret is in memory yet. */
static int resolve(struct run *r) {
        int k;
        if ((k = load_manifest(r->o, true, &r->m)) < 0)
                return k;
        if ((k = resolve_run_environment(r)) < 0 || (k = resolve_scope(r)) < 0)
                return k;
        if ((k = collect_hidden_paths(r)) < 0)
                return k;
        return collect_stripped_env(r);
}

/* The rotation gate, on the creation time the backends reported with each value: past
 * rotation.max_age warns, past rotation.fail_after refuses the run (every such secret is
 * named before it does). A backend that keeps no creation time cannot be gated; plan says so. */
static int gate_rotation(struct run *r) {
        int64_t now = (int64_t) time(NULL);
        size_t refused = 0;
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                uint64_t age = 0;
                enum rotation_status st = rotation_evaluate(s, r->secrets[i].meta.created, now, &age);
                if (st != ROTATION_OVERDUE && st != ROTATION_FAILING) {
                        if (st == ROTATION_UNKNOWN)
                                log_info("%s: backend '%s' reports no creation time; rotation is not checked",
                                         s->name, s->backend ? s->backend : "generate");
                        continue;
                }
                char a[32], t[32], f[32];
                const char *owner = s->owner ? s->owner : "not set";
                uint64_t limit = st == ROTATION_FAILING ? s->rotation_fail_after : s->rotation_max_age;
                json_t *ev = json_pack("{s:s, s:I, s:I, s:s, s:s?}", "name", s->name, "age_seconds", (json_int_t) age,
                                       st == ROTATION_FAILING ? "fail_after" : "max_age", (json_int_t) limit,
                                       "status", rotation_status_name(st), "owner", s->owner);
                int k = audit_event(r, "rotation.gate", ev);
                if (k < 0)
                        return k;
                format_age(age, a, sizeof a);
                format_duration(limit, t, sizeof t);
                if (st == ROTATION_FAILING) {
                        char hint[96] = "";
                        if (s->generated)
                                snprintf(hint, sizeof hint, " [secrets-run rotate %s]", s->name);
                        log_error("%s:%u: rotation: %s is %s old, past rotation.fail_after (%s): refusing to run; owner %s must rotate it%s",
                                  r->m->path, s->pos.line, s->name, a, t, owner, hint);
                        refused++;
                } else
                        log_warning("%s:%u: rotation: %s is %s old, past rotation.max_age (%s); owner %s should rotate it%s%s",
                                    r->m->path, s->pos.line, s->name, a, t, owner,
                                    s->rotation_fail_after ? ", runs refuse it after " : "",
                                    s->rotation_fail_after ? format_duration(s->rotation_fail_after, f, sizeof f) : "");
        }
        return refused ? -EKEYEXPIRED : 0;
}

/* Fetch and compile the redactor: what run, redact and scan share after resolve(). */
static int fetch(struct run *r) {
        int k;
        if ((k = fetch_secrets(r)) < 0)
                return k;
        if ((k = audit_short_leases(r)) < 0)
                return k;
        scrub_own_environment(r);
        if ((k = build_redactor(r)) < 0) {
                log_error("cannot compile the redaction patterns: %s", strerror(-k));
                return k;
        }
        log_info("redaction: %zu patterns for %zu secret%s", redactor_pattern_count(r->redactor), r->n_secrets,
                 r->n_secrets == 1 ? "" : "s");
        return 0;
}

/* ---- the run ---- */

int command_run(const struct options *o) {
        struct run r = { .o = o };
        struct child child = CHILD_NULL;
        _cleanup_sandbox_ struct sandbox *sandbox = NULL;
        _cleanup_close_ int signal_fd = -1;
        _cleanup_free_ char **envp = NULL;
        _cleanup_strv_free_ char **own = NULL;
        struct sandbox_status sandbox_status = {};
        uint64_t started_ms = now_monotonic_ms(), leaks = 0;
        int status = 125, command_status = -1, k;
        bool delivered = false;

        if (!o->args || !o->args[0]) {
                if (!o->dry_run) {
                        log_error("run: no command given [usage: secrets-run [run] [OPTIONS] [--] COMMAND [ARG...]]");
                        return 125;
                }
        }
        k = secrets_dir_sweep();
        if (k > 0)
                log_info("removed %d secrets director%s left by a crashed run", k, k == 1 ? "y" : "ies");

        if (resolve(&r) < 0) {
                /* a refusal after the manifest was read (--only out of scope) is audited */
                if (r.m && r.environment && !o->dry_run)
                        (void) audit_begin(&r, NULL);
                goto out;
        }
        report_leaks_as_warnings(effective_on_leak(&r) == ON_LEAK_WARN);
        report_leaks_to(audit_leak, &r);
        /* the sandbox first: its pid 1 is cloned from us and must never hold a secret */
        if (create_secrets_dir(&r) < 0)
                goto out;
        struct sandbox_options so = {
                .level = sandbox_mode_of(&r), .network_off = network_off_of(&r),
                .allow_ptrace = o->allow_ptrace, .secrets_dir = secrets_dir_path(r.dir), .hide = r.hide,
        };
        k = sandbox_create(&so, &sandbox, &sandbox_status);
        /* nothing runs and nothing is fetched unless the audit log takes records */
        if (!o->dry_run && audit_begin(&r, &sandbox_status) < 0)
                goto out;
        if (k < 0) {
                log_error("sandbox: %s%s", k == -ENOTSUP ? sandbox_status.why : strerror(-k),
                          so.level == SANDBOX_LEVEL_STRICT ? " [strict mode needs every layer; --sandbox auto runs without what is missing]" : "");
                goto out;
        }
        if (fetch(&r) < 0 || gate_rotation(&r) < 0)
                goto out;
        /* on disk before the step runs; written now, the fsync overlaps pid 1's setup */
        if (!o->dry_run && audit_delivered(&r) < 0)
                goto out;
        k = sandbox_ready(sandbox, &sandbox_status);
        if (k < 0) {
                log_error("sandbox: %s%s", k == -ENOTSUP ? sandbox_status.why : strerror(-k),
                          so.level == SANDBOX_LEVEL_STRICT ? " [strict mode needs every layer; --sandbox auto runs without what is missing]" : "");
                goto out;
        }
        if (o->dry_run) {
                print_dry_run(&r, &sandbox_status);
                status = 0;
                goto out;
        }
        if (deliver(&r, sandbox_dir_fd(sandbox)) < 0)
                goto out;
        delivered = true;

        signal_fd = signals_block_to_fd();
        if (signal_fd < 0) {
                log_error("cannot set up signal forwarding: %s", strerror(-signal_fd));
                goto out;
        }
        envp = envp_with_env_block(&r);
        if (!envp)
                goto out;
        /* file times come from the kernel's coarse clock, which lags the precise one by up
         * to a tick: a file written in the step's first millisecond can look older than a
         * precise "now". Scanning a little too much is the safe side. */
        struct timespec started;
        clock_gettime(CLOCK_REALTIME_COARSE, &started);
        started.tv_sec -= 1;
        struct spawn_config sc = {
                .argv = o->args, .envp = envp, .fds = r.fds, .n_fds = r.n_fds,
                /* --tty auto: a pty when a person is watching our output */
                .pty = o->tty == 1 || (o->tty < 0 && isatty(STDOUT_FILENO)),
        };
        k = sandbox_spawn(sandbox, &sc, &child, &sandbox_status);
        free(steal_pointer(&envp));
        /* the step has its own copies now; ours close and wipe */
        secret_free(steal_pointer(&r.env_block));
        for (size_t i = 0; i < r.n_fds; i++)
                r.fds[i] = safe_close(r.fds[i]);
        if (k == -ENOTSUP) {
                log_error("sandbox: %s%s", sandbox_status.why,
                          so.level == SANDBOX_LEVEL_STRICT ? " [strict mode needs every layer; --sandbox auto runs without it]" : "");
                goto out;
        }
        if (k < 0) {
                log_error("cannot execute '%s': %s", o->args[0], strerror(-k));
                status = command_status = k == -ENOENT || k == -ENOTDIR ? 127 : 126;
                goto out;
        }
        print_sandbox_status(&r, &sandbox_status);
        log_info("started '%s' (pid %d) with %zu secret%s", o->args[0], (int) child.pid, r.n_secrets,
                 r.n_secrets == 1 ? "" : "s");

        if (child.pty_fd >= 0 && (k = pty_prepare(child.pty_fd)) < 0)
                log_warning("cannot put the terminal in raw mode: %s", strerror(-k));
        struct supervise_result result;
        r.step_running = true;
        /* renewals on their own thread, so a slow Vault does not pause the output; if no
         * thread can be had, from the supervisor's loop as a timer */
        struct renewer renewer;
        int threaded = renewer_start(&r, &renewer);
        if (threaded < 0)
                log_warning("lease renewal thread: %s; renewing from the output loop", strerror(-threaded));
        struct supervise_timer renewals = threaded >= 0
                ? (struct supervise_timer) { .wake = renewer_wake, .wake_fd = threaded > 0 ? renewer.event_fd : -1,
                                             .userdata = &r }
                : (struct supervise_timer) { .tick = renew_leases, .userdata = &r };
        k = supervise(&child, signal_fd, o->timeout_ms, r.redactor, &renewals, &result);
        renewer_stop(&r);
        r.step_running = false;
        pty_restore();
        child_release(&child);
        if (k < 0) {
                log_error("supervising the step failed: %s", strerror(-k));
                goto out;
        }
        int step_status = command_status = exit_status_from_wait(result.wstatus);
        if (WIFSIGNALED(result.wstatus) && WTERMSIG(result.wstatus) == SIGSYS)
                /* the filter kills only for a system call made through another architecture's
                 * entry point (32-bit int 0x80, x32); everything else it refuses with an errno */
                log_error("sandbox violation: the step was killed by SIGSYS for a system call through a foreign "
                          "architecture's ABI (32-bit or x32 entry), which the sandbox forbids");

        /* the step is over: its artifacts are scanned with the same matcher */
        char *const *artifacts = o->artifacts ? o->artifacts : r.m->policy.artifacts;
        own = strv_copy(r.hide);   /* keys, stores, and the audit log */
        if (r.audit)
                (void) strv_extend(&own, audit_path(r.audit));
        k = scan_artifacts(r.redactor, artifacts, &started, own);
        if (k < 0)
                log_warning("artifact scan failed: %s", strerror(-k));
        uint64_t artifact_leaks = k > 0 ? (uint64_t) k : 0;
        leaks = result.leaks + artifact_leaks;

        if (result.timed_out) {
                char d[32];
                log_error("timeout: the step ran longer than %s and was stopped",
                          format_duration((o->timeout_ms + 999) / 1000, d, sizeof d));
                status = 124;
        } else
                status = step_status;
        flush_leak_reports();
        if (leaks > 0) {
                bool fail = effective_on_leak(&r) == ON_LEAK_FAIL;
                (fail ? log_error : log_warning)(
                        "%llu leak%s of secrets (%llu in the output, masked; %llu in artifacts); the step exited with status %d%s",
                        (unsigned long long) leaks, leaks == 1 ? "" : "s", (unsigned long long) result.leaks,
                        (unsigned long long) artifact_leaks, step_status,
                        fail ? ": failing the step (on_leak: fail)" : " (on_leak: warn)");
                if (fail && status != 124)
                        status = 123;
        }
out:
        report_leaks_to(NULL, NULL);
        close_backends(&r);
        status = audit_end(&r, status, command_status, started_ms, leaks, &sandbox_status);
        if (r.m && !o->dry_run)
                github_step_summary(&r, status, command_status, delivered, &sandbox_status);
        run_done(&r);
        return status;
}

/* ---- redact and scan ---- */

/* --secret-file [NAME=]FILE: the file's bytes minus one trailing newline. */
static int redactor_from_files(char *const *files, struct redactor **ret) {
        _cleanup_redactor_ struct redactor *red = NULL;
        int k = redactor_new(8, NULL, &red);
        if (k < 0)
                return k;
        for (char *const *f = files; *f; f++) {
                const char *eq = strchr(*f, '=');
                const char *path = eq ? eq + 1 : *f;
                _cleanup_free_ char *name = eq ? strndup(*f, (size_t) (eq - *f)) : NULL;
                if (!name) {
                        const char *slash = strrchr(path, '/');
                        name = strdup(slash ? slash + 1 : path);
                }
                if (!name)
                        return -ENOMEM;
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        log_error("--secret-file %s: %s", path, strerror(errno));
                        return -errno;
                }
                _cleanup_secret_ struct secret *v = NULL;
                if ((k = secret_new(256, &v)) < 0)
                        return k;
                if ((k = secret_read_fd(v, fd, 1024 * 1024)) < 0) {
                        log_error("--secret-file %s: %s", path, k == -EFBIG ? "larger than 1 MiB" : strerror(-k));
                        return k;
                }
                secret_chomp(v);
                if ((k = redactor_add(red, name, secret_data(v), secret_len(v))) < 0)
                        return k;
                if (k == 0) {
                        log_error("--secret-file %s: the value is %zu bytes, shorter than 8: it cannot be masked safely",
                                  path, secret_len(v));
                        return -EINVAL;
                }
        }
        if ((k = redactor_compile(red)) < 0)
                return k;
        *ret = steal_pointer(&red);
        return 0;
}

/* The redactor for redact/scan: from --secret-file, else the manifest's in-scope secrets. */
static int redact_setup(struct run *r, enum on_leak *ret_on_leak) {
        if (r->o->secret_files) {
                *ret_on_leak = r->o->on_leak >= 0 ? (enum on_leak) r->o->on_leak : ON_LEAK_FAIL;
                return redactor_from_files(r->o->secret_files, &r->redactor);
        }
        int k = resolve(r);
        if (k >= 0)
                k = fetch(r);
        if (k >= 0)
                *ret_on_leak = effective_on_leak(r);
        return k;
}

static int stdout_write(void *userdata, const void *p, size_t n) {
        return write_all(STDOUT_FILENO, p, n);
}

static void stdin_leak(void *userdata, const struct redact_leak *leak) {
        report_leak(leak, "stdin");
}

int command_redact(const struct options *o) {
        struct run r = { .o = o };
        enum on_leak on_leak = ON_LEAK_FAIL;
        int status = 2;
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        /* big reads: fewer system calls when the input is a file or a full pipe */
        const size_t buf_size = 1024 * 1024;
        _cleanup_free_ char *buf = NULL;
        if (o->args) {
                log_error("redact: unexpected argument '%s' (it filters stdin to stdout)", o->args[0]);
                goto out;
        }
        if (redact_setup(&r, &on_leak) < 0 || redact_stream_new(r.redactor, &s) < 0)
                goto out;
        report_leaks_as_warnings(on_leak == ON_LEAK_WARN);
        struct redact_sink sink = { stdout_write, stdin_leak, NULL };
        buf = malloc(buf_size);
        if (!buf)
                goto out;
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, buf_size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        log_error("redact: reading stdin: %s", strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                if (redact_stream_feed(s, buf, (size_t) n, &sink) < 0) {
                        log_error("redact: writing stdout: %s", strerror(errno));
                        goto out;
                }
        }
        if (redact_stream_finish(s, &sink) < 0) {
                log_error("redact: writing stdout: %s", strerror(errno));
                goto out;
        }
        status = redact_stream_leak_count(s) > 0 && on_leak == ON_LEAK_FAIL ? 1 : 0;
out:
        flush_leak_reports();
        run_done(&r);
        return status;
}

int command_scan(const struct options *o) {
        struct run r = { .o = o };
        enum on_leak on_leak = ON_LEAK_FAIL;
        int status = 2;
        if (!o->args) {
                log_error("scan: no PATH given [usage: secrets-run scan [OPTIONS] PATH...]");
                goto out;
        }
        if (redact_setup(&r, &on_leak) < 0)
                goto out;
        int k = scan_paths(r.redactor, o->args);
        if (k < 0)
                goto out;
        flush_leak_reports();
        if (k > 0)
                log_error("scan: %d leak%s of secrets found", k, k == 1 ? "" : "s");
        status = k > 0 ? 1 : 0;
out:
        flush_leak_reports();
        run_done(&r);
        return status;
}
