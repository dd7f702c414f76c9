/* `secrets-run approve`: signs a secret's binding with the approver's SSH key into the
 * approvals beside the manifest (or prints the text for ssh-keygen -Y sign), and run's
 * approval gate: a secret of a protected environment is delivered only with a valid, current
 * signature by every identity its approved_by names. */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "agent.h"
#include "approval.h"
#include "run.h"

static bool identity_valid(const char *id) {
        if (!*id || *id == '.' || strlen(id) > 256)
                return false;
        for (const unsigned char *p = (const unsigned char *) id; *p; p++)
                if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '"' || *p == '\\')
                        return false;
        return true;
}

static bool is_literal_principal(const char *p) {
        return *p && !strpbrk(p, "*?,!");
}

/* Who signs (malloc'd): --identity, else the one approved_by entry allowed_signers lists this
 * key for, else the key's only principal there. */
static int approve_identity(const struct options *o, const struct mf_secret *s, const struct approvals *a,
                            const struct ssh_key *pub, char **ret) {
        char fp[64];
        ssh_key_fingerprint(pub, fp, sizeof fp);
        if (o->identity) {
                _cleanup_free_ char *why = NULL;
                int64_t t = (int64_t) time(NULL);
                if (a->configured && a->signers_error == 0 &&
                    !allowed_signers_permit(&a->signers, pub, o->identity, APPROVAL_NAMESPACE, t, t, &why))
                        log_warning("approve: check will not accept this approval (SR118): %s", why ? why : "");
                return (*ret = strdup(o->identity)) ? 0 : -ENOMEM;
        }
        if (!a->configured || a->signers_error < 0) {
                log_error("approve: cannot tell whose key %s is: %s [pass --identity NAME]", fp,
                          a->configured ? "policy.allowed_signers cannot be read" : "policy.allowed_signers is not set");
                return -EINVAL;
        }
        int64_t now = (int64_t) time(NULL);
        const char *found = NULL;
        for (size_t i = 0; s->approved_by && s->approved_by[i]; i++) {
                _cleanup_free_ char *why = NULL;
                if (streq_ptr(found, s->approved_by[i]) ||
                    !allowed_signers_permit(&a->signers, pub, s->approved_by[i], APPROVAL_NAMESPACE, now, now, &why))
                        continue;
                if (found) {
                        log_error("approve: %s lists key %s for both '%s' and '%s' of approved_by [pass --identity NAME]",
                                  a->signers_path, fp, found, s->approved_by[i]);
                        return -EINVAL;
                }
                found = s->approved_by[i];
        }
        if (found)
                return (*ret = strdup(found)) ? 0 : -ENOMEM;
        _cleanup_free_ char *principals = allowed_signers_principals_of(&a->signers, pub);
        if (principals && is_literal_principal(principals)) {
                /* signing first and adding the name in the same change is the usual order */
                log_warning("approve: approved_by of %s does not name '%s' (key %s in %s): the approval counts once it does",
                            s->name, principals, fp, a->signers_path);
                *ret = steal_pointer(&principals);
                return 0;
        }
        log_error("approve: %s does not list key %s%s [add a line 'NAME %s ...' to it, or pass --identity NAME]",
                  a->signers_path, fp, principals ? " for anyone approved_by names" : "", pub->type);
        return -EINVAL;
}

/* The environments to approve for: -e, else each protected one the secret reaches. */
static int approve_environments(const struct options *o, const struct manifest *m, const struct mf_secret *s,
                                char ***ret) {
        if (o->environment) {
                if (m->n_environments > 0 && !manifest_find_environment(m, o->environment)) {
                        log_error("approve: %s declares no environment '%s'", m->path, o->environment);
                        return -EINVAL;
                }
                if (s->environments && !strv_contains(s->environments, o->environment)) {
                        log_error("approve: %s does not reach environment '%s' (%s:%u)", s->name, o->environment,
                                  m->path, s->pos.line);
                        return -EINVAL;
                }
                return strv_extend(ret, o->environment);
        }
        for (size_t i = 0; i < m->n_environments; i++) {
                const char *env = m->environments[i].name;
                if (approval_required(m, s, env) && (!s->environments || strv_contains(s->environments, env)) &&
                    strv_extend(ret, env) < 0)
                        return -ENOMEM;
        }
        if (!*ret) {
                log_error("approve: %s reaches no protected environment, so nothing asks for its approval "
                          "[pass -e ENV to approve it for one anyway]", s->name);
                return -EINVAL;
        }
        return 0;
}

/* Writes text to path through a temporary file and a rename, so a reader sees the old file or
 * the new one. */
static int write_atomic(const char *path, const char *text) {
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.XXXXXX", path);
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int k = write_all(fd, text, strlen(text));
        if (k >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
                k = -errno;
        if (k >= 0 && rename(tmp, path) < 0)
                k = -errno;
        if (k < 0)
                (void) unlink(tmp);
        return k;
}

/* Where the approval goes: -o FILE; else, when policy.approvals is a file, that file with the
 * other approvals kept and this identity's earlier one for the secret and environment
 * replaced; else SECRET.ENV.IDENTITY.approval in the approvals directory. */
static int store_approval(const struct options *o, const struct approvals *a, const struct mf_secret *s,
                          const char *env, const char *identity, const char *text, char **ret_path) {
        _cleanup_free_ char *path = NULL, *all = NULL;
        int k;
        if (o->output)
                path = strdup(o->output);
        else if (a->location_is_file) {
                path = strdup(a->location);
                if ((k = approvals_others_text(a, s->name, env, identity, &all)) < 0)
                        return k;
                char *t = strdup_printf("%s%s%s", all, *all ? "\n" : "", text);
                free(all);
                if (!(all = t))
                        return -ENOMEM;
        } else {
                if (mkdir(a->location, 0755) < 0 && errno != EEXIST) {
                        k = -errno;
                        log_error("approve: cannot create %s: %s", a->location, strerror(-k));
                        return k;
                }
                path = strdup_printf("%s/%s.%s.%s.approval", a->location, s->name, env, identity);
        }
        if (!path)
                return -ENOMEM;
        if ((k = write_atomic(path, all ? all : text)) < 0) {
                log_error("approve: cannot write %s: %s", path, strerror(-k));
                return k;
        }
        *ret_path = steal_pointer(&path);
        return 0;
}

static void approve_said(const struct options *o, const struct mf_secret *s, const char *env, const char *identity,
                         const struct ssh_key *pub, int64_t at, const char *path) {
        char fp[64], ts[32];
        ssh_key_fingerprint(pub, fp, sizeof fp);
        format_timestamp(at, ts, sizeof ts);
        if (o->format == FORMAT_JSON) {
                json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "secret", s->name, "environment", env,
                                        "identity", identity, "key", fp, "approved", ts, "file", path);
                _cleanup_(json_text_freep) char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
                json_decref(doc);
                if (text)
                        printf("%s\n", text);
        } else
                printf("approved %s for environment %s as %s (key %s, %s): %s\n", s->name, env, identity, fp, ts, path);
}

struct approve_ctx {
        const struct options *o;
        struct manifest *m;
        const struct mf_secret *s;
        struct approvals a;
        struct ssh_key pub;
        struct secret *sk;             /* NULL with --print-payload */
        char *identity;
        char **environments;
};

static void approve_ctx_done(struct approve_ctx *c) {
        approvals_done(&c->a);
        ssh_key_done(&c->pub);
        secret_free(c->sk);
        free(c->identity);
        strv_free(c->environments);
        manifest_free(c->m);
}

static int approve_prepare(struct approve_ctx *c) {
        const struct options *o = c->o;
        int k;
        if ((k = load_manifest(o, false, &c->m)) < 0)
                return k;
        if (!(c->s = manifest_find_secret(c->m, o->args[0]))) {
                log_error("approve: no secret '%s' in %s", o->args[0], c->m->path);
                return -ENOENT;
        }
        if (mf_secret_is_ephemeral(c->s)) {
                log_error("approve: %s is generated afresh for each run: there is no binding to approve", c->s->name);
                return -EINVAL;
        }
        if ((k = approve_environments(o, c->m, c->s, &c->environments)) < 0)
                return k;
        if (o->print_payload && c->environments[1]) {
                log_error("approve: %s reaches several protected environments: name one with -e for --print-payload",
                          c->s->name);
                return -EINVAL;
        }
        if ((k = approvals_load(c->m, &c->a)) < 0)
                return k;
        if (o->key) {
                const char *why = NULL;
                k = ssh_key_load(o->key, &c->pub, o->print_payload ? NULL : &c->sk, &why);
                if (k >= 0 && !o->print_payload && !c->sk) {
                        why = "it holds a public key only: with the private key in ssh-agent, sign with --print-payload "
                              "and ssh-keygen -Y sign";
                        k = -EINVAL;
                }
                if (k < 0) {
                        log_error("approve: --key %s: %s", o->key, why ? why : strerror(-k));
                        return k;
                }
                if ((k = approve_identity(o, c->s, &c->a, &c->pub, &c->identity)) < 0)
                        return k;
        } else if (!(c->identity = strdup(o->identity)))
                return -ENOMEM;
        if (!identity_valid(c->identity)) {
                log_error("approve: '%s' cannot be an identity here (no spaces, quotes, '/' or leading '.')", c->identity);
                return -EINVAL;
        }
        return 0;
}

int command_approve(const struct options *o) {
        if (!o->args || o->args[1]) {
                log_error("approve: name one secret [usage: secrets-run approve NAME [-e ENV] --key FILE]");
                return 1;
        }
        if (!o->key && !(o->print_payload && o->identity)) {
                log_error("approve: --key FILE is needed (an Ed25519 private key; with --print-payload its .pub, or "
                          "--identity NAME) [usage: secrets-run approve NAME [-e ENV] --key FILE]");
                return 1;
        }
        _cleanup_(approve_ctx_done) struct approve_ctx c = { .o = o };
        if (approve_prepare(&c) < 0)
                return 1;
        int64_t now = (int64_t) time(NULL);
        for (size_t i = 0; c.environments[i]; i++) {
                const char *env = c.environments[i];
                _cleanup_free_ char *payload = NULL, *armor = NULL, *text = NULL, *path = NULL;
                if (approval_payload(c.m, c.s, env, c.identity, now, &payload) < 0)
                        return log_error("approve: %s", strerror(ENOMEM)), 1;
                if (o->print_payload) {
                        fputs(payload, stdout);
                        return 0;
                }
                int k = sshsig_sign(c.sk, &c.pub, payload, strlen(payload), APPROVAL_NAMESPACE, &armor);
                if (k < 0) {
                        log_error("approve: cannot sign: %s", strerror(-k));
                        return 1;
                }
                if (!(text = strdup_printf("%s%s", payload, armor)) ||
                    store_approval(o, &c.a, c.s, env, c.identity, text, &path) < 0)
                        return 1;
                approve_said(o, c.s, env, c.identity, &c.pub, now, path);
        }
        return 0;
}

/* ---- run's gate ---- */

/* Every in-scope secret of a protected environment: a valid, current approval by each
 * identity approved_by names, or the run refuses (each one said, then -EPERM). Nothing is
 * fetched before: an approval is checked on the manifest and the files beside it. */
int run_gate_approvals(struct run *r) {
        bool needed = false;
        for (size_t i = 0; i < r->n_secrets; i++)
                needed |= approval_required(r->m, r->secrets[i].def, r->environment) &&
                          strv_length(r->secrets[i].def->approved_by) > 0;
        if (!needed)
                return 0;
        if (!r->m->policy.allowed_signers) {
                log_warning("%s: the approvals of environment '%s' are names nobody signed: set policy.allowed_signers "
                            "[see docs/approvals.md]", r->m->path, r->environment);
                return 0;
        }
        struct approvals a;
        struct findings f = { .file = strdup(r->m->path) };
        int k = f.file ? approvals_load(r->m, &a) : -ENOMEM;
        if (k < 0) {
                findings_done(&f);
                return log_error("approvals: %s", strerror(-k)), k;
        }
        int64_t now = (int64_t) time(NULL);
        size_t refused = 0;
        _cleanup_free_ const char **rules = calloc(r->n_secrets ? r->n_secrets : 1, sizeof(char *));
        if (!rules)
                k = -ENOMEM;
        for (size_t i = 0; k >= 0 && i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                if (!approval_required(r->m, s, r->environment))
                        continue;
                struct approval_verdict *v = NULL;
                size_t n = 0;
                k = approvals_verify(&a, s, r->environment, now, &v, &n);
                for (size_t j = 0; k >= 0 && j < n; j++) {
                        if (!rules[i] && (v[j].state != APPROVAL_VALID || v[j].recert == RECERT_EXPIRED))
                                rules[i] = v[j].state != APPROVAL_VALID ? approval_state_rule(v[j].state)
                                                                        : "approval.expired";
                        k = approval_verdict_finding(&a, s, r->environment, &v[j], &f);
                }
                approval_verdicts_free(v, n);
        }
        /* the findings first (FILE:LINE:COL and why), then what the run does about them */
        findings_sort(&f);
        findings_print(&f, FORMAT_TEXT, stderr);
        findings_done(&f);
        approvals_done(&a);
        if (k < 0)
                return log_error("approvals: %s", strerror(-k)), k;
        for (size_t i = 0; i < r->n_secrets; i++) {
                const struct mf_secret *s = r->secrets[i].def;
                if (!rules[i])
                        continue;
                refused++;
                run_record_denial(r, s->name, rules[i]);
                log_error("%s: policy: not delivered to environment '%s' without a valid approval (rule: %s; %s:%u): "
                          "nothing was fetched or run [see 'secrets-run check']", s->name, r->environment, rules[i],
                          r->m->path, s->pos.line);
        }
        return refused ? -EPERM : 0;
}
