/* The fetch phase: every in-scope secret from its backend into secure memory (backends told
 * ahead what they will be asked for), then the redactor compiled over the values. */
#include <inttypes.h>

#include "output.h"
#include "redact.h"
#include "run.h"

/* Every backend, as it is opened: its lease events go to the audit log, and who it acts as
 * is on record before anything is fetched. */
static int backend_opened(void *userdata, struct backend *b, const struct mf_backend *def) {
        struct run *r = userdata;
        backend_set_event_handler(b, run_audit_backend_event, r);
        return run_audit_backend_identity(r, b, def->type);
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
        size_t n_prefetched = 0, total = 0;
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
                if ((total += secret_len(f->value)) > MAX_SECRET_BYTES) {
                        log_error("secret %s: the values fetched so far total %zu bytes, more than the %d bytes one run "
                                  "can mask [narrow the step's scope with stages or --only]", s->name, total,
                                  MAX_SECRET_BYTES);
                        return -E2BIG;
                }
                /* from now on no message can show it, whoever quotes it */
                if ((k = output_mask_add(s->name, secret_data(f->value), secret_len(f->value))) < 0)
                        return k;
                json_t *ev = json_pack("{s:s, s:s}", "name", s->name, "backend", backend_name(b));
                if (ev && f->meta.version)
                        json_object_set_new(ev, "version", json_integer((json_int_t) f->meta.version));
                if (ev && f->meta.lease_ttl)
                        json_object_set_new(ev, "lease_ttl", json_integer((json_int_t) f->meta.lease_ttl));
                if ((k = run_audit_event(r, "secret.fetch", ev)) < 0)
                        return k;
        }
        /* said once all are in: each message builds the masker anew after values were added */
        for (size_t i = 0; log_level >= LOG_LEVEL_VERBOSE && i < r->n_secrets; i++)
                log_info("%s: fetched from %s", r->secrets[i].def->name,
                         mf_secret_is_ephemeral(r->secrets[i].def) ? "generate" : r->secrets[i].def->backend);
        return 0;
}

int redactor_add_bounded(struct redactor *red, const char *name, const struct secret *v, size_t *patterns) {
        int k = redactor_add(red, name, secret_data(v), secret_len(v));
        if (k > 0 && (*patterns += (size_t) k) > MAX_PATTERNS) {
                log_error("secret %s: its forms bring the patterns to match to %zu, more than the %d one run can "
                          "compile [narrow the step's scope with stages or --only]", name, *patterns, MAX_PATTERNS);
                return -E2BIG;
        }
        return k;
}

/* The fetched values; the same compiled set then masks our own words too
 * (output_mask_adopt): one compile of the values, not two. */
static int build_redactor(struct run *r) {
        int k = redactor_new(r->m->policy.min_secret_length, r->m->policy.mask, &r->redactor);
        size_t patterns = 0;
        for (size_t i = 0; k >= 0 && i < r->n_secrets; i++)
                k = redactor_add_bounded(r->redactor, r->secrets[i].def->name, r->secrets[i].value, &patterns);
        if (k >= 0 && (k = redactor_compile(r->redactor)) >= 0)
                output_mask_adopt(r->redactor);
        return k;
}

/* Fetch and compile the redactor: what run, redact and scan share after run_resolve(). */
int run_fetch(struct run *r) {
        int k;
        if ((k = fetch_secrets(r)) < 0)
                return k;
        if ((k = run_audit_short_leases(r)) < 0)
                return k;
        scrub_own_environment(r);
        if ((k = build_redactor(r)) < 0) {
                if (k != -E2BIG)
                        log_error("cannot compile the redaction patterns: %s", strerror(-k));
                return k;
        }
        log_info("redaction: %zu patterns for %zu secret%s", redactor_pattern_count(r->redactor), r->n_secrets,
                 r->n_secrets == 1 ? "" : "s");
        /* every value and pattern is in place: whatever did not fit in locked memory could
         * be swapped out, which the user should know (once) */
        uint64_t locked, limit;
        if (secret_lock_status(&locked, &limit) > 0)
                log_warning("locked memory: RLIMIT_MEMLOCK is %" PRIu64 " KiB and %" PRIu64 " KiB are locked: the "
                            "secrets that did not fit are not locked and could reach swap [raise it: ulimit -l, "
                            "LimitMEMLOCK= for a service, --ulimit memlock= for a container]", limit / 1024, locked / 1024);
        return 0;
}

void run_close_backends(struct run *r) {
        sources_close(&r->sources);
}
