/* check: the policy findings (SR1xx) on a schema-valid manifest — ownership, delivery, protected
 * environments, backends, generated lengths, delivery-name collisions, sandbox and rotation —
 * and the gate every command that reads a manifest passes (load_manifest). */
#include <inttypes.h>
#include <strings.h>
#include <time.h>

#include "agent.h"
#include "approval.h"
#include "backends.h"
#include "manifest.h"

static struct mf_pos pos_or(struct mf_pos preferred, struct mf_pos fallback) {
        return preferred.line > 0 ? preferred : fallback;
}

/* Own lookups rather than manifest_find_*: check only needs names, and this keeps the policy
 * code independent of the loader. */
static const struct mf_backend *find_backend(const struct manifest *m, const char *name) {
        for (size_t i = 0; name && i < m->n_backends; i++)
                if (streq(m->backends[i].name, name))
                        return &m->backends[i];
        return NULL;
}

static const struct mf_environment *find_environment(const struct manifest *m, const char *name) {
        for (size_t i = 0; name && i < m->n_environments; i++)
                if (streq(m->environments[i].name, name))
                        return &m->environments[i];
        return NULL;
}

/* A suggestion is worth printing only when it is close (edit distance <= 2) and not a complete
 * rewrite of a very short name ("ci" is not a typo of "db"). */
static void consider_suggestion(const char *wrong, const char *candidate,
                                const char **best, unsigned *best_distance) {
        unsigned d = edit_distance(wrong, candidate);
        if (d <= 2 && d < strlen(wrong) && d < *best_distance) {
                *best = candidate;
                *best_distance = d;
        }
}

static const char *nearest_backend(const struct manifest *m, const char *wrong) {
        const char *best = NULL;
        unsigned best_distance = UINT32_MAX;
        for (size_t i = 0; i < m->n_backends; i++)
                consider_suggestion(wrong, m->backends[i].name, &best, &best_distance);
        return best;
}

static const char *nearest_environment(const struct manifest *m, const char *wrong) {
        const char *best = NULL;
        unsigned best_distance = UINT32_MAX;
        for (size_t i = 0; i < m->n_environments; i++)
                consider_suggestion(wrong, m->environments[i].name, &best, &best_distance);
        return best;
}

/* " (did you mean 'x'?)" or "", into buf. */
static const char *suggestion_text(const char *near, char *buf, size_t size) {
        if (!near)
                return "";
        snprintf(buf, size, " (did you mean '%s'?)", near);
        return buf;
}

/* The protected environments secret s can reach, as "'prod', 'dr'", or NULL if none (or on
 * ENOMEM, which *ret_oom tells apart). `count` receives how many were named. */
static char *protected_reach(const struct manifest *m, const struct mf_secret *s,
                             size_t *count, bool *ret_oom) {
        _cleanup_free_ char *text = NULL;
        *count = 0;
        *ret_oom = false;
        for (size_t i = 0; i < m->n_environments; i++) {
                const struct mf_environment *e = &m->environments[i];
                if (!e->protected_)
                        continue;
                if (s->environments && !strv_contains(s->environments, e->name))
                        continue;
                char *t = text ? strdup_printf("%s, '%s'", text, e->name)
                               : strdup_printf("'%s'", e->name);
                if (!t) {
                        *ret_oom = true;
                        return NULL;
                }
                free(text);
                text = t;
                (*count)++;
        }
        return steal_pointer(&text);
}

static int check_backends(const struct manifest *m, struct findings *f) {
        for (size_t i = 0; i < m->n_backends; i++) {
                const struct mf_backend *b = &m->backends[i];
                if (b->type != BACKEND_VAULT)
                        continue;
                bool plain_remote = b->address && strncasecmp(b->address, "http://", 7) == 0 &&
                        !url_host_is_loopback(b->address + 7);
                int r = 0;
                if (plain_remote && !b->insecure)
                        r = findings_add(f, SEVERITY_ERROR, SR106_INSECURE_BACKEND,
                                         pos_or(b->address_pos, b->pos),
                                         "backend '%s' uses plain http:// to a host that is not "
                                         "loopback: tokens and secrets would cross the network "
                                         "unencrypted; use https:// (or set insecure: true to "
                                         "accept the risk)", b->name);
                else if (plain_remote)
                        r = findings_add(f, SEVERITY_WARNING, SR106_INSECURE_BACKEND,
                                         pos_or(b->insecure_pos, b->pos),
                                         "backend '%s' uses plain http:// to a host that is not "
                                         "loopback (allowed by insecure: true): tokens and "
                                         "secrets cross the network unencrypted", b->name);
                else if (b->insecure)
                        r = findings_add(f, SEVERITY_WARNING, SR106_INSECURE_BACKEND,
                                         pos_or(b->insecure_pos, b->pos),
                                         "backend '%s': insecure: true only permits plain http:// "
                                         "off loopback; TLS certificates are always verified, so "
                                         "with https:// it changes nothing (use ca_cert to trust "
                                         "a private CA)", b->name);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_defaults(const struct manifest *m, struct findings *f) {
        char hint[128];
        int r;
        if (m->default_backend && !find_backend(m, m->default_backend)) {
                r = findings_add(f, SEVERITY_ERROR, SR105_UNKNOWN_BACKEND, m->default_backend_pos,
                                 "defaults.backend '%s' is not declared under 'backends'%s",
                                 m->default_backend,
                                 suggestion_text(nearest_backend(m, m->default_backend),
                                                 hint, sizeof hint));
                if (r < 0)
                        return r;
        }
        if (m->n_environments > 0 && m->default_environment &&
            !find_environment(m, m->default_environment)) {
                r = findings_add(f, SEVERITY_ERROR, SR111_UNKNOWN_ENVIRONMENT,
                                 m->default_environment_pos,
                                 "defaults.environment '%s' is not declared under 'environments'%s",
                                 m->default_environment,
                                 suggestion_text(nearest_environment(m, m->default_environment),
                                                 hint, sizeof hint));
                if (r < 0)
                        return r;
        }
        if (m->policy.sandbox == SANDBOX_OFF) {
                r = findings_add(f, SEVERITY_WARNING, SR109_SANDBOX_OFF, m->policy.sandbox_pos,
                                 "policy.sandbox is off: the command runs with redaction only "
                                 "(no namespaces, seccomp or capability limits); use auto or "
                                 "strict");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whether a backend keeps a creation time per version, and can be written with a version
 * check: the file store does; Vault only for KV v2 paths (MOUNT/data/...); env and exec
 * never. */
static bool backend_keeps_versions(const struct mf_backend *b, const char *path) {
        if (b->type == BACKEND_FILE)
                return true;
        return b->type == BACKEND_VAULT && vault_path_is_kv2(path);
}

static int check_secret_store_kind(const struct manifest *m, const struct mf_secret *s,
                                   struct findings *f) {
        const struct mf_backend *b = mf_secret_is_ephemeral(s) ? NULL : find_backend(m, s->backend);
        if (b && s->generated && s->version)
                return findings_add(f, SEVERITY_ERROR, SR112_UNWRITABLE_STORE, pos_or(s->from_pos, s->pos),
                                    "generated secret '%s' pins a version (?version=%" PRIu64 "): apply and "
                                    "rotate write new versions, which a pinned reference never reads; "
                                    "remove the pin", s->name, s->version);
        if (!b || backend_keeps_versions(b, s->path))
                return 0;
        const char *what = b->type == BACKEND_VAULT ? "this Vault path is not KV v2 (MOUNT/data/PATH)"
                                                    : "this backend type keeps no versions";
        if (s->generated)
                return findings_add(f, SEVERITY_ERROR, SR112_UNWRITABLE_STORE, pos_or(s->generate_pos, s->pos),
                                    "generated secret '%s' is to be stored in backend '%s', which apply "
                                    "cannot write with a version check: %s; use a file backend or "
                                    "Vault KV v2", s->name, b->name, what);
        if (s->has_rotation)
                return findings_add(f, SEVERITY_WARNING, SR113_ROTATION_UNENFORCEABLE, s->pos,
                                    "secret '%s' declares rotation, but backend '%s' reports no creation "
                                    "time (%s): run cannot enforce it and plan shows its age as unknown",
                                    s->name, b->name, what);
        return 0;
}

/* params make a Vault request a POST (pki/issue/ROLE); no other backend takes any, and a
 * key that silently does nothing is how a certificate ends up issued wrong. */
static int check_secret_params(const struct manifest *m, const struct mf_secret *s, struct findings *f) {
        const struct mf_backend *b = s->params && s->backend ? find_backend(m, s->backend) : NULL;
        if (!b || b->type == BACKEND_VAULT)
                return 0;
        return findings_add(f, SEVERITY_ERROR, SR114_PARAMS_UNSUPPORTED, s->params_pos,
                            "secret '%s' has 'params', which only a vault backend takes (backend '%s' is %s)",
                            s->name, b->name, backend_kind_name(backend_kind_of(b->type)));
}

static int check_secret_backend(const struct manifest *m, const struct mf_secret *s,
                                struct findings *f) {
        char hint[128];
        if (mf_secret_is_ephemeral(s))
                return 0;
        /* A stored generated secret lives at its `from`, else in defaults.backend (an
         * undeclared defaults.backend is reported once, by check_defaults()). */
        if (s->generated && !s->backend)
                return findings_add(f, SEVERITY_ERROR, SR105_UNKNOWN_BACKEND,
                                    pos_or(s->generate_pos, s->pos),
                                    "generated secret '%s' is to be stored, but it has no 'from' "
                                    "and there is no defaults.backend to store it in", s->name);
        if (!s->backend)
                return findings_add(f, SEVERITY_ERROR, SR105_UNKNOWN_BACKEND,
                                    pos_or(s->from_pos, s->pos),
                                    s->from ? "secret '%s': 'from' names no backend"
                                            : "secret '%s' has no 'from' and there is no "
                                              "defaults.backend", s->name);
        if (find_backend(m, s->backend))
                return 0;
        /* Without `from`, the backend is defaults.backend, already reported once. */
        if (!s->from && streq_ptr(s->backend, m->default_backend))
                return 0;
        return findings_add(f, SEVERITY_ERROR, SR105_UNKNOWN_BACKEND, pos_or(s->from_pos, s->pos),
                            "secret '%s' uses backend '%s', which is not declared under "
                            "'backends'%s", s->name, s->backend,
                            suggestion_text(nearest_backend(m, s->backend), hint, sizeof hint));
}

static int check_secret_environments(const struct manifest *m, const struct mf_secret *s,
                                     struct findings *f) {
        if (m->n_environments == 0)
                return 0;  /* environments are free-form until some are declared */
        char hint[128];
        for (size_t i = 0; s->environments && s->environments[i]; i++) {
                const char *e = s->environments[i];
                if (find_environment(m, e))
                        continue;
                int r = findings_add(f, SEVERITY_ERROR, SR111_UNKNOWN_ENVIRONMENT,
                                     pos_or(s->environments_pos, s->pos),
                                     "secret '%s' lists environment '%s', which is not declared "
                                     "under 'environments'%s", s->name, e,
                                     suggestion_text(nearest_environment(m, e), hint, sizeof hint));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_secret_protected(const struct manifest *m, const struct mf_secret *s,
                                  struct findings *f) {
        if (mf_secret_is_ephemeral(s))
                return 0;
        size_t count;
        bool oom;
        _cleanup_free_ char *reach = protected_reach(m, s, &count, &oom);
        if (oom)
                return -ENOMEM;
        if (!reach)
                return 0;
        const char *noun = count == 1 ? "environment" : "environments";
        int r;
        if (strv_length(s->approved_by) == 0) {
                r = findings_add(f, SEVERITY_ERROR, SR103_PROTECTED_UNAPPROVED,
                                 s->environments ? pos_or(s->environments_pos, s->pos) : s->pos,
                                 "secret '%s' reaches protected %s %s but has no approved_by; "
                                 "list who approved it (approved_by: [NAME, ...])",
                                 s->name, noun, reach);
                if (r < 0)
                        return r;
        }
        if (!s->environments) {
                r = findings_add(f, SEVERITY_ERROR, SR104_UNSCOPED_PROTECTED, s->pos,
                                 "secret '%s' reaches protected %s %s because it lists no "
                                 "environments; add environments: [...] with the ones it needs",
                                 s->name, noun, reach);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool lists_overlap(char *const *a, char *const *b) {
        if (!a || !b)
                return true;  /* absent = all */
        for (size_t i = 0; a[i]; i++)
                if (strv_contains(b, a[i]))
                        return true;
        return false;
}

static const char *delivery_name(const struct mf_secret *s) {
        return s->as ? s->as : s->name;
}

/* Two secrets delivered under the same name (case-insensitively: <AS>_FILE is upper case)
 * collide only if one run can have both in scope; the same name for staging and prod from
 * different sources is the normal pattern. */
static int check_secret_delivery_name(const struct manifest *m, size_t j, struct findings *f) {
        const struct mf_secret *s = &m->secrets[j];
        for (size_t i = 0; i < j; i++) {
                const struct mf_secret *e = &m->secrets[i];
                if (strcasecmp(delivery_name(e), delivery_name(s)) != 0)
                        continue;
                if (!lists_overlap(e->environments, s->environments) ||
                    !lists_overlap(e->stages, s->stages))
                        continue;
                return findings_add(f, SEVERITY_ERROR, SR108_DUPLICATE_DELIVERY,
                                    pos_or(s->as_pos, s->pos),
                                    "secret '%s' is delivered as '%s', like secret '%s' (line %u), "
                                    "and both can be in scope in the same run; use a different "
                                    "'as' or disjoint environments or stages",
                                    s->name, delivery_name(s), e->name, e->pos.line);
        }
        return 0;
}

/* The masker looks for every form of a value (docs/redaction-forms.md); the weakest is its
 * base64 at an offset inside a longer text, which drops up to two characters' worth of the
 * value at its ends. A form that carries few bits matches ordinary output (hashes, IDs,
 * numbers, base64 blobs) by chance, and a false match is masked and fails the step. In
 * thousandths of a bit per character, each charset's log2(size). */
#define FORM_MIN_BITS 64

static int check_secret_form_strength(const struct mf_secret *s, struct findings *f) {
        static const unsigned millibits[] = {
                [CHARSET_ALNUM] = 5954, [CHARSET_HEX] = 4000, [CHARSET_BASE64URL] = 6000, [CHARSET_ASCII] = 6555,
        };
        unsigned per = millibits[s->gen_charset];
        size_t kept = s->gen_length > 2 ? s->gen_length - 2 : 0;
        if (kept * per >= FORM_MIN_BITS * 1000)
                return 0;
        size_t need = (FORM_MIN_BITS * 1000 + per - 1) / per + 2;
        return findings_add(f, SEVERITY_WARNING, SR122_AMBIGUOUS_FORM, pos_or(s->generate_pos, s->pos),
                            "generated secret '%s' (%zu characters of %s) carries about %zu bits, "
                            "its base64 inside a longer text about %zu: ordinary output can match a "
                            "form that weak by chance, and a false match is masked and fails the "
                            "step; use length: %zu or more", s->name, s->gen_length,
                            charset_name(s->gen_charset), s->gen_length * per / 1000, kept * per / 1000,
                            need);
}

static int check_secret(const struct manifest *m, size_t index, struct findings *f) {
        const struct mf_secret *s = &m->secrets[index];
        const struct mf_policy *p = &m->policy;
        int r;

        if (p->require_owner && !s->owner && !mf_secret_is_ephemeral(s)) {
                r = findings_add(f, SEVERITY_ERROR, SR101_MISSING_OWNER, s->pos,
                                 "secret '%s' has no owner; add owner: TEAM "
                                 "(policy.require_owner is on)", s->name);
                if (r < 0)
                        return r;
        }
        if (s->deliver == DELIVER_ENV && !p->allow_env_delivery) {
                r = findings_add(f, SEVERITY_ERROR, SR102_ENV_DELIVERY,
                                 pos_or(s->deliver_pos, s->pos),
                                 "secret '%s' is delivered as an environment variable, which the "
                                 "policy does not allow: values in the environment leak through "
                                 "/proc/PID/environ, crash dumps and env dumps; use deliver: file "
                                 "or fd, or set policy.allow_env_delivery: true", s->name);
                if (r < 0)
                        return r;
        }
        r = check_secret_protected(m, s, f);
        if (r < 0)
                return r;
        r = check_secret_backend(m, s, f);
        if (r < 0)
                return r;
        if (s->generated && s->gen_length < p->min_secret_length) {
                r = findings_add(f, SEVERITY_ERROR, SR107_SHORT_GENERATED,
                                 pos_or(s->generate_pos, s->pos),
                                 "generated secret '%s' is %zu characters long, below "
                                 "policy.min_secret_length %zu: shorter values cannot be masked "
                                 "safely", s->name, s->gen_length, p->min_secret_length);
                if (r < 0)
                        return r;
        } else if (s->generated) {
                r = check_secret_form_strength(s, f);
                if (r < 0)
                        return r;
        }
        r = check_secret_delivery_name(m, index, f);
        if (r < 0)
                return r;
        if (p->require_rotation && !s->has_rotation && !mf_secret_is_ephemeral(s)) {
                r = findings_add(f, SEVERITY_ERROR, SR110_ROTATION_MISSING, s->pos,
                                 "secret '%s' declares no rotation, which "
                                 "policy.require_rotation requires; add rotation: {max_age: ...}",
                                 s->name);
                if (r < 0)
                        return r;
        }
        r = check_secret_store_kind(m, s, f);
        if (r < 0 || (r = check_secret_params(m, s, f)) < 0)
                return r;
        return check_secret_environments(m, s, f);
}

int check_manifest(const struct manifest *m, struct findings *findings) {
        int r = check_defaults(m, findings);
        if (r < 0)
                return r;
        r = check_backends(m, findings);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_secrets; i++) {
                r = check_secret(m, i, findings);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- the check gate, and `secrets-run check` ---- */

int load_manifest(const struct options *o, bool gate_on_policy, struct manifest **ret) {
        _cleanup_free_ char *path = NULL;
        int k = manifest_discover(o->manifest, &path);
        if (k == -ENOENT && !o->manifest) {
                log_error("no manifest: no secrets.yaml in this directory or its parents [pass -f PATH or set $SECRETS_RUN_MANIFEST]");
                return k;
        }
        if (k < 0) {
                log_error("manifest: %s", strerror(-k));
                return k;
        }
        struct findings f = {};
        struct manifest *m = NULL;
        k = manifest_load(path, &m, &f);
        if (k < 0 && f.n == 0) {
                log_error("%s: cannot read the manifest: %s", path, strerror(-k));
                findings_done(&f);
                return k;
        }
        if (k >= 0 && gate_on_policy)
                k = check_manifest(m, &f);
        findings_sort(&f);
        size_t errors = findings_count(&f, SEVERITY_ERROR);
        if (errors > 0 || (f.n > 0 && log_level >= LOG_LEVEL_VERBOSE))
                findings_print(&f, FORMAT_TEXT, stderr);
        if (k >= 0 && errors > 0) {
                log_error("%s: %zu policy error%s: nothing runs until they are fixed [see 'secrets-run check']",
                          path, errors, errors == 1 ? "" : "s");
                k = -EPERM;
        } else if (k < 0)
                log_error("%s: the manifest is invalid", path);
        findings_done(&f);
        if (k < 0) {
                manifest_free(m);
                return k;
        }
        *ret = m;
        return 0;
}

int command_check(const struct options *o) {
        if (o->args) {
                log_error("check: unexpected argument '%s'", o->args[0]);
                return 2;
        }
        _cleanup_free_ char *path = NULL;
        int k = manifest_discover(o->manifest, &path);
        if (k < 0) {
                if (k == -ENOENT && !o->manifest)
                        log_error("no manifest: no secrets.yaml in this directory or its parents [pass -f PATH]");
                else
                        log_error("manifest: %s", strerror(-k));
                return 2;
        }
        struct findings f = {};
        _cleanup_manifest_ struct manifest *m = NULL;
        k = manifest_load(path, &m, &f);
        if (k < 0 && f.n == 0) {
                log_error("%s: cannot read the manifest: %s", path, strerror(-k));
                findings_done(&f);
                return 2;
        }
        if (k >= 0 && check_manifest(m, &f) >= 0)
                (void) check_approvals(m, &f, (int64_t) time(NULL));
        findings_sort(&f);
        findings_print(&f, o->format, stdout);
        int status = k < 0 ? 2 : findings_count(&f, SEVERITY_ERROR) > 0 ? 1 : 0;
        if (o->format == FORMAT_TEXT && log_level >= LOG_LEVEL_NORMAL)
                fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", path,
                        findings_count(&f, SEVERITY_ERROR), findings_count(&f, SEVERITY_ERROR) == 1 ? "" : "s",
                        findings_count(&f, SEVERITY_WARNING), findings_count(&f, SEVERITY_WARNING) == 1 ? "" : "s");
        findings_done(&f);
        return status;
}
