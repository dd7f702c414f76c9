/* Approvals of one manifest: the canonical binding an approver signs, the approval files
 * beside the manifest, and the verdict on each approved_by identity (signature, signer,
 * binding, age) that check reports as SR115-SR121 and run's gate enforces. */
#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>

#include "agent.h"
#include "approval.h"

#define APPROVAL_FILE_MAX (1024 * 1024)
#define APPROVAL_SUFFIX ".approval"
#define ARMOR_BEGIN_LINE "-----BEGIN SSH SIGNATURE-----\n"
#define ARMOR_END_LINE "-----END SSH SIGNATURE-----"

struct approval_record {
        char *file;
        unsigned line;                 /* of the header */
        char *payload;                 /* the signed text, header line to the armor */
        size_t payload_len;
        char *signature;               /* the armor */
        size_t signature_len;
        char *secret, *environment, *identity;
        int64_t approved_at;           /* 0: the header did not say (a malformed approval) */
};

/* ---- the canonical binding ---- */

static void put_json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p < 0x20 || *p == 0x7f)
                        fprintf(f, "\\u%04x", *p);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

static void put_string(FILE *f, const char *key, const char *value) {
        fprintf(f, "%s: ", key);
        if (value)
                put_json_string(f, value);
        else
                fputs("null", f);
        fputc('\n', f);
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A list as a JSON array; sorted and without repeats when its order means nothing (which
 * environments, stages, branches, events), so reordering it keeps the approval. */
static void put_list(FILE *f, const char *key, char *const *list, bool as_set) {
        fprintf(f, "%s: ", key);
        if (!list) {
                fputs("null\n", f);
                return;
        }
        size_t n = strv_length(list);
        _cleanup_free_ char **sorted = malloc((n ? n : 1) * sizeof(char *));
        if (!sorted) {
                fputs("\x01", f);   /* a payload no approval can match; the caller sees ENOMEM */
                return;
        }
        memcpy(sorted, list, n * sizeof(char *));
        if (as_set)
                qsort(sorted, n, sizeof(char *), strcmp_ptr);
        fputc('[', f);
        for (size_t i = 0, put = 0; i < n; i++) {
                if (as_set && i > 0 && streq(sorted[i], sorted[i - 1]))
                        continue;
                if (put++)
                        fputc(',', f);
                put_json_string(f, sorted[i]);
        }
        fputs("]\n", f);
}

static void put_optional(FILE *f, const char *key, const char *value) {
        if (value)
                put_string(f, key, value);
}

/* The backend definition the secret is read through, every setting but its timeout (how long
 * to wait changes nothing about where the value comes from). */
static void put_backend(FILE *f, const struct mf_backend *b) {
        static const char *const types[] = {
                [BACKEND_FILE] = "file", [BACKEND_ENV] = "env", [BACKEND_EXEC] = "exec", [BACKEND_VAULT] = "vault",
        };
        static const char *const auths[] = {
                [VAULT_AUTH_NONE] = NULL, [VAULT_AUTH_TOKEN] = "token", [VAULT_AUTH_APPROLE] = "approle",
                [VAULT_AUTH_JWT] = "jwt",
        };
        if (!b) {
                put_string(f, "backend.type", NULL);
                return;
        }
        put_string(f, "backend.type", types[b->type]);
        put_optional(f, "backend.path", b->path);
        put_optional(f, "backend.key_file", b->key_file);
        if (b->command)
                put_list(f, "backend.command", b->command, false);
        put_optional(f, "backend.address", b->address);
        put_optional(f, "backend.namespace", b->namespace_);
        put_optional(f, "backend.ca_cert", b->ca_cert);
        put_optional(f, "backend.ca_path", b->ca_path);
        if (b->insecure)
                fputs("backend.insecure: true\n", f);
        put_optional(f, "backend.auth.method", auths[b->auth]);
        put_optional(f, "backend.auth.mount", b->auth_mount);
        put_optional(f, "backend.auth.role", b->auth_role);
        put_optional(f, "backend.auth.jwt_env", b->jwt_env);
        put_optional(f, "backend.auth.audience", b->audience);
        put_optional(f, "backend.auth.role_id_env", b->role_id_env);
        put_optional(f, "backend.auth.secret_id_env", b->secret_id_env);
        put_optional(f, "backend.auth.token_env", b->token_env);
}

int approval_payload(const struct manifest *m, const struct mf_secret *s, const char *env, const char *identity,
                     int64_t at, char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        char ts[32];
        fputs(APPROVAL_HEADER, f);
        put_string(f, "approved", format_timestamp(at, ts, sizeof ts));
        put_string(f, "identity", identity);
        put_string(f, "environment", env);
        put_string(f, "project", m->project);
        put_string(f, "secret", s->name);
        _cleanup_free_ char *from = NULL;
        if (s->backend) {
                char version[32] = "";
                if (s->version)
                        snprintf(version, sizeof version, "?version=%llu", (unsigned long long) s->version);
                from = strdup_printf("%s:%s%s%s%s", s->backend, s->path ? s->path : "", version, s->field ? "#" : "",
                                     s->field ? s->field : "");
        }
        put_string(f, "from", from);
        put_list(f, "environments", s->environments, true);
        put_list(f, "stages", s->stages, true);
        put_list(f, "when.branches", s->when_branches, true);
        put_list(f, "when.events", s->when_events, true);
        put_string(f, "deliver", delivery_method_name(s->deliver));
        put_string(f, "as", s->as);
        put_backend(f, manifest_find_backend(m, s->backend));
        bool failed = ferror(f) || (s->backend && !from);
        if (fclose(f) != 0 || failed || memchr(text, '\x01', size))
                return -ENOMEM;
        *ret = steal_pointer(&text);
        return 0;
}

static char **lines_of(const char *text) {
        _cleanup_free_ char *copy = strdup(text);
        char **lines = calloc(1, sizeof(char *));
        if (!copy || !lines)
                return strv_free(lines);
        char *save = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (strv_extend(&lines, line) < 0)
                        return strv_free(lines);
        return lines;
}

/* The keys whose lines differ between the signed payload and the current one (the header's
 * own lines aside), as "stages, when.events" (malloc'd). */
static char *changed_keys(const char *signed_text, const char *current) {
        static const char *const header[] = { "approved", "identity", "environment" };
        _cleanup_strv_free_ char **a = lines_of(signed_text), **b = lines_of(current), **keys = NULL;
        if (!a || !b)
                return NULL;
        for (int pass = 0; pass < 2; pass++) {
                char **mine = pass == 0 ? b : a, **other = pass == 0 ? a : b;
                for (size_t i = 0; mine[i]; i++) {
                        const char *colon = strstr(mine[i], ": ");
                        _cleanup_free_ char *key = colon ? strndup(mine[i], (size_t) (colon - mine[i])) : NULL;
                        if (!colon || strv_contains(other, mine[i]))
                                continue;
                        if (!key)
                                return NULL;
                        bool skip = strv_contains(keys, key);
                        for (size_t j = 0; j < ELEMENTSOF(header); j++)
                                skip |= streq(key, header[j]);
                        if (!skip && strv_extend(&keys, key) < 0)
                                return NULL;
                }
        }
        char *list = strdup(keys ? "" : "its header");
        for (size_t i = 0; list && keys && keys[i]; i++) {
                char *t = strdup_printf("%s%s'%s'", list, i ? ", " : "", keys[i]);
                free(list);
                list = t;
        }
        return list;
}

/* ---- approval files ---- */

static void record_done(struct approval_record *r) {
        free(r->file);
        free(r->payload);
        free(r->signature);
        free(r->secret);
        free(r->environment);
        free(r->identity);
}

/* The value of "key: VALUE" in payload as a string (NULL if absent or not a JSON string). */
static char *payload_field(const char *payload, const char *key) {
        _cleanup_free_ char *needle = strdup_printf("\n%s: ", key);
        if (!needle)
                return NULL;
        const char *p = strstr(payload, needle);
        if (!p)
                return NULL;
        p += strlen(needle);
        size_t len = strcspn(p, "\n");
        json_error_t e;
        json_t *v = json_loadb(p, len, JSON_DECODE_ANY, &e);
        char *s = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
        json_decref(v);
        return s;
}

static int add_problem(struct approvals *a, const char *file, unsigned line, const char *why) {
        char *p = line ? strdup_printf("%s:%u: %s", file, line, why) : strdup_printf("%s: %s", file, why);
        return p ? strv_push(&a->problems, p) : -ENOMEM;
}

static unsigned line_of(const char *text, const char *p) {
        unsigned n = 1;
        for (const char *q = text; q < p; q++)
                n += *q == '\n';
        return n;
}

static int add_record(struct approvals *a, const char *file, const char *text, const char *head,
                      const char *armor, const char *armor_end) {
        struct approval_record *t = realloc(a->records, (a->n_records + 1) * sizeof(*t));
        if (!t)
                return -ENOMEM;
        a->records = t;
        struct approval_record r = {
                .file = strdup(file), .line = line_of(text, head),
                .payload = strndup(head, (size_t) (armor - head)), .payload_len = (size_t) (armor - head),
                .signature = strndup(armor, (size_t) (armor_end - armor)), .signature_len = (size_t) (armor_end - armor),
        };
        if (!r.file || !r.payload || !r.signature) {
                record_done(&r);
                return -ENOMEM;
        }
        r.secret = payload_field(r.payload, "secret");
        r.environment = payload_field(r.payload, "environment");
        r.identity = payload_field(r.payload, "identity");
        _cleanup_free_ char *at = payload_field(r.payload, "approved");
        if (!at || parse_timestamp(at, &r.approved_at) < 0 || r.approved_at <= 0)
                r.approved_at = 0;
        a->records[a->n_records++] = r;
        return 0;
}

/* Splits a file into approvals: each is the header line through the armor's last line.
 * Blank lines and '#' comments may stand between them; anything else is a problem. */
static int parse_approval_file(struct approvals *a, const char *file, const char *text) {
        const char *p = text;
        while (*p) {
                size_t len = strcspn(p, "\n");
                if (len == 0 || *p == '#' || strspn(p, " \t\r") == len) {
                        p += len + (p[len] == '\n');
                        continue;
                }
                if (strncmp(p, APPROVAL_HEADER, strlen(APPROVAL_HEADER)) != 0)
                        return add_problem(a, file, line_of(text, p), "expected '" "secrets-run approval v1" "' to start an approval");
                const char *armor = strstr(p, "\n" ARMOR_BEGIN_LINE);
                const char *end = armor ? strstr(armor, "\n" ARMOR_END_LINE) : NULL;
                if (!armor || !end)
                        return add_problem(a, file, line_of(text, p), "the approval has no complete SSH signature after it");
                armor++;
                end += 1 + strlen(ARMOR_END_LINE);
                end += *end == '\n';
                int k = add_record(a, file, text, p, armor, end);
                if (k < 0)
                        return k;
                p = end;
        }
        return 0;
}

static int read_approval_file(struct approvals *a, const char *path) {
        _cleanup_free_ char *text = NULL;
        int k = read_file_bounded(path, APPROVAL_FILE_MAX, &text, NULL);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return add_problem(a, path, 0, strerror(-k));
        return parse_approval_file(a, path, text);
}

static int read_approval_dir(struct approvals *a, const char *dir) {
        struct dirent **entries = NULL;
        int n = scandir(dir, &entries, NULL, alphasort);
        if (n < 0)
                return errno == ENOMEM ? -ENOMEM : add_problem(a, dir, 0, strerror(errno));
        int k = 0;
        for (int i = 0; i < n; i++) {
                const char *name = entries[i]->d_name;
                size_t len = strlen(name), suffix = strlen(APPROVAL_SUFFIX);
                if (k >= 0 && name[0] != '.' && len > suffix && streq(name + len - suffix, APPROVAL_SUFFIX)) {
                        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, name);
                        k = path ? read_approval_file(a, path) : -ENOMEM;
                }
                free(entries[i]);
        }
        free(entries);
        return k;
}

int approvals_load(const struct manifest *m, struct approvals *ret) {
        struct approvals a = { .m = m, .configured = m->policy.allowed_signers != NULL };
        int k = manifest_file(m, m->policy.allowed_signers, &a.signers_path);
        if (k >= 0)
                k = m->policy.approvals ? manifest_file(m, m->policy.approvals, &a.location)
                                        : manifest_file(m, APPROVALS_DEFAULT_DIR, &a.location);
        if (k >= 0 && a.signers_path)
                a.signers_error = allowed_signers_load(a.signers_path, &a.signers);
        if (a.signers_error == -ENOMEM)
                k = -ENOMEM;
        struct stat st;
        if (k >= 0 && stat(a.location, &st) == 0) {
                a.location_is_file = !S_ISDIR(st.st_mode);
                k = a.location_is_file ? read_approval_file(&a, a.location) : read_approval_dir(&a, a.location);
        } else if (k >= 0 && m->policy.approvals)
                k = add_problem(&a, a.location, 0, strerror(errno));
        else if (k >= 0)
                a.location_is_file = false;   /* the default directory, made by the first approve */
        if (k < 0) {
                approvals_done(&a);
                return k;
        }
        *ret = a;
        return 0;
}

void approvals_done(struct approvals *a) {
        for (size_t i = 0; i < a->n_records; i++)
                record_done(&a->records[i]);
        free(a->records);
        allowed_signers_done(&a->signers);
        free(a->signers_path);
        free(a->location);
        strv_free(a->problems);
        *a = (struct approvals) {};
}

int approvals_others_text(const struct approvals *a, const char *secret, const char *env, const char *identity,
                          char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0, n = 0; i < a->n_records; i++) {
                const struct approval_record *r = &a->records[i];
                if (streq_ptr(r->secret, secret) && streq_ptr(r->environment, env) && streq_ptr(r->identity, identity))
                        continue;
                fprintf(f, "%s%s%s", n++ ? "\n" : "", r->payload, r->signature);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = steal_pointer(&text);
        return 0;
}

/* ---- verdicts ---- */

bool approval_required(const struct manifest *m, const struct mf_secret *s, const char *env) {
        const struct mf_environment *e = manifest_find_environment(m, env);
        return e && e->protected_ && !mf_secret_is_ephemeral(s);
}

const char *approval_state_rule(enum approval_state st) {
        switch (st) {
        case APPROVAL_VALID:          return "approval";
        case APPROVAL_MISSING:        return "approval.missing";
        case APPROVAL_CHANGED:        return "approval.changed";
        case APPROVAL_BAD_SIGNATURE:  return "approval.signature";
        case APPROVAL_WRONG_SIGNER:   return "approval.signer";
        default:                      return "approval";
        }
}

enum finding_id approval_state_finding(enum approval_state st) {
        switch (st) {
        case APPROVAL_MISSING:        return SR115_APPROVAL_MISSING;
        case APPROVAL_CHANGED:        return SR116_APPROVAL_CHANGED;
        case APPROVAL_BAD_SIGNATURE:  return SR117_APPROVAL_BAD_SIGNATURE;
        case APPROVAL_WRONG_SIGNER:   return SR118_APPROVAL_WRONG_SIGNER;
        case APPROVAL_VALID:
        default:                      return SR119_APPROVAL_RECERTIFY;
        }
}

void approval_verdicts_free(struct approval_verdict *v, size_t n) {
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].where);
                free(v[i].why);
        }
        free(v);
}

/* The verdict on one signed approval: its signature, whose key made it, the binding it
 * signs, its date, then its age against the policy. */
static int judge_record(const struct approvals *a, const struct mf_secret *s, const char *env,
                        const struct approval_record *r, int64_t now, struct approval_verdict *v) {
        const struct mf_policy *p = &a->m->policy;
        v->approved_at = r->approved_at;
        v->where = strdup_printf("%s:%u", r->file, r->line);
        if (!v->where)
                return -ENOMEM;
        if (!r->approved_at) {
                v->state = APPROVAL_BAD_SIGNATURE;
                v->why = strdup("its 'approved:' line is missing or not an RFC 3339 time");
                return v->why ? 0 : -ENOMEM;
        }
        struct ssh_key key = {};
        const char *why = NULL;
        int k = sshsig_verify(r->signature, r->signature_len, r->payload, r->payload_len, APPROVAL_NAMESPACE,
                              &key, &why);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                v->state = APPROVAL_BAD_SIGNATURE;
                v->why = strdup(why);
                return v->why ? 0 : -ENOMEM;
        }
        char *signer_why = NULL;
        bool permitted = a->signers_error == 0 &&
                allowed_signers_permit(&a->signers, &key, v->identity, APPROVAL_NAMESPACE, r->approved_at, now,
                                       &signer_why);
        ssh_key_done(&key);
        if (!permitted) {
                v->state = APPROVAL_WRONG_SIGNER;
                v->why = signer_why ? signer_why : strdup("policy.allowed_signers cannot be read");
                return v->why ? 0 : -ENOMEM;
        }
        _cleanup_free_ char *expected = NULL;
        if ((k = approval_payload(a->m, s, env, v->identity, r->approved_at, &expected)) < 0)
                return k;
        if (!streq(expected, r->payload)) {
                _cleanup_free_ char *keys = changed_keys(r->payload, expected);
                v->state = APPROVAL_CHANGED;
                v->why = keys ? strdup_printf("%s changed since it was signed", keys) : NULL;
                return v->why ? 0 : -ENOMEM;
        }
        if (r->approved_at > now + APPROVAL_CLOCK_SKEW) {
                v->state = APPROVAL_BAD_SIGNATURE;
                v->why = strdup("it is dated in the future");
                return v->why ? 0 : -ENOMEM;
        }
        v->state = APPROVAL_VALID;
        v->age = now > r->approved_at ? (uint64_t) (now - r->approved_at) : 0;
        if (p->approval_fail_after && v->age > p->approval_fail_after)
                v->recert = RECERT_EXPIRED;
        else if (p->approval_max_age && v->age > p->approval_max_age)
                v->recert = RECERT_DUE;
        return 0;
}

/* Of several approvals by one identity, a valid one wins over any other, a newer over an
 * older; a recertification past its date counts after a current one. */
static bool verdict_better(const struct approval_verdict *a, const struct approval_verdict *b) {
        if ((a->state == APPROVAL_VALID) != (b->state == APPROVAL_VALID))
                return a->state == APPROVAL_VALID;
        return a->approved_at > b->approved_at;
}

static int verify_identity(const struct approvals *a, const struct mf_secret *s, const char *env, int64_t now,
                           struct approval_verdict *v) {
        for (size_t i = 0; i < a->n_records; i++) {
                const struct approval_record *r = &a->records[i];
                if (!streq_ptr(r->secret, s->name) || !streq_ptr(r->environment, env) ||
                    !streq_ptr(r->identity, v->identity))
                        continue;
                struct approval_verdict candidate = { .identity = v->identity, .pos = v->pos };
                int k = judge_record(a, s, env, r, now, &candidate);
                if (k < 0) {
                        free(candidate.where), free(candidate.why);
                        return k;
                }
                if (v->state == APPROVAL_MISSING || verdict_better(&candidate, v)) {
                        free(v->where), free(v->why);
                        *v = candidate;
                } else
                        free(candidate.where), free(candidate.why);
        }
        return 0;
}

int approvals_verify(const struct approvals *a, const struct mf_secret *s, const char *env, int64_t now,
                     struct approval_verdict **ret, size_t *ret_n) {
        size_t n = strv_length(s->approved_by);
        struct approval_verdict *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        size_t used = 0;
        for (size_t i = 0; i < n; i++) {
                bool repeated = false;
                for (size_t j = 0; j < i; j++)
                        repeated |= streq(s->approved_by[i], s->approved_by[j]);
                if (repeated)
                        continue;
                v[used] = (struct approval_verdict) {
                        .identity = s->approved_by[i], .state = APPROVAL_MISSING,
                        .pos = s->approved_by_item_pos ? s->approved_by_item_pos[i] : s->approved_by_pos,
                };
                int k = verify_identity(a, s, env, now, &v[used++]);
                if (k < 0) {
                        approval_verdicts_free(v, used);
                        return k;
                }
        }
        *ret = v;
        *ret_n = used;
        return 0;
}

/* ---- check ---- */

static struct mf_pos pos_or(struct mf_pos preferred, struct mf_pos fallback) {
        return preferred.line > 0 ? preferred : fallback;
}

int approval_verdict_finding(const struct approvals *a, const struct mf_secret *s, const char *env,
                             const struct approval_verdict *v, struct findings *f) {
        char age[32], limit[32], ts[32];
        const struct mf_policy *p = &a->m->policy;
        struct mf_pos pos = pos_or(v->pos, s->pos);
        if (v->state == APPROVAL_MISSING)
                return findings_add(f, SEVERITY_ERROR, SR115_APPROVAL_MISSING, pos,
                                    "secret '%s': approved_by names '%s', but %s holds no approval by '%s' for "
                                    "environment '%s' [secrets-run approve %s -e %s --key KEY]",
                                    s->name, v->identity, a->location, v->identity, env, s->name, env);
        if (v->state != APPROVAL_VALID)
                return findings_add(f, SEVERITY_ERROR, approval_state_finding(v->state), pos,
                                    "secret '%s': the approval by '%s' for environment '%s' (%s) %s: %s%s",
                                    s->name, v->identity, env, v->where,
                                    v->state == APPROVAL_CHANGED ? "signs another binding" :
                                    v->state == APPROVAL_WRONG_SIGNER ? "is not from a key allowed for them" :
                                                                        "does not hold",
                                    v->why ? v->why : "",
                                    v->state == APPROVAL_CHANGED ? "; it must be signed again" : "");
        if (v->recert == RECERT_OK)
                return 0;
        bool expired = v->recert == RECERT_EXPIRED;
        return findings_add(f, expired ? SEVERITY_ERROR : SEVERITY_WARNING, SR119_APPROVAL_RECERTIFY, pos,
                            "secret '%s': the approval by '%s' for environment '%s' is %s old (signed %s), past "
                            "policy.%s (%s): %s [secrets-run approve %s -e %s --key KEY]",
                            s->name, v->identity, env, format_age(v->age, age, sizeof age),
                            format_timestamp(v->approved_at, ts, sizeof ts),
                            expired ? "approval_fail_after" : "approval_max_age",
                            format_duration(expired ? p->approval_fail_after : p->approval_max_age, limit, sizeof limit),
                            expired ? "runs refuse the secret until it is approved again" : "it is due for recertification",
                            s->name, env);
}

static int check_files(const struct approvals *a, struct findings *f) {
        const struct mf_policy *p = &a->m->policy;
        int k = 0;
        if (a->signers_error < 0)
                k = findings_add(f, SEVERITY_ERROR, SR121_APPROVAL_FILES, p->allowed_signers_pos,
                                 "policy.allowed_signers: cannot read %s: %s", a->signers_path, strerror(-a->signers_error));
        for (size_t i = 0; k >= 0 && a->signers.problems && a->signers.problems[i]; i++)
                k = findings_add(f, SEVERITY_ERROR, SR121_APPROVAL_FILES, p->allowed_signers_pos,
                                 "policy.allowed_signers: %s (the line is skipped)", a->signers.problems[i]);
        for (size_t i = 0; k >= 0 && a->problems && a->problems[i]; i++)
                k = findings_add(f, SEVERITY_ERROR, SR121_APPROVAL_FILES, pos_or(p->approvals_pos, p->allowed_signers_pos),
                                 "approvals: %s", a->problems[i]);
        return k;
}

static int check_secret_approvals(const struct approvals *a, const struct mf_secret *s, int64_t now,
                                  struct findings *f) {
        const struct manifest *m = a->m;
        bool warned = false;
        for (size_t e = 0; e < m->n_environments; e++) {
                const char *env = m->environments[e].name;
                if (!approval_required(m, s, env) || (s->environments && !strv_contains(s->environments, env)) ||
                    strv_length(s->approved_by) == 0)
                        continue;
                if (!a->configured) {
                        if (warned)
                                continue;
                        warned = true;
                        int k = findings_add(f, SEVERITY_WARNING, SR120_APPROVALS_UNVERIFIED, pos_or(s->approved_by_pos, s->pos),
                                             "secret '%s': approved_by is a list of names nobody signed: set "
                                             "policy.allowed_signers so each approval is a signature that check "
                                             "and run verify [see docs/approvals.md]", s->name);
                        if (k < 0)
                                return k;
                        continue;
                }
                struct approval_verdict *v = NULL;
                size_t n = 0;
                int k = approvals_verify(a, s, env, now, &v, &n);
                for (size_t i = 0; k >= 0 && i < n; i++)
                        k = approval_verdict_finding(a, s, env, &v[i], f);
                approval_verdicts_free(v, n);
                if (k < 0)
                        return k;
        }
        return 0;
}

int check_approvals(const struct manifest *m, struct findings *f, int64_t now) {
        struct approvals a;
        int k = approvals_load(m, &a);
        if (k < 0)
                return k;
        if (a.configured)
                k = check_files(&a, f);
        for (size_t i = 0; k >= 0 && i < m->n_secrets; i++)
                k = check_secret_approvals(&a, &m->secrets[i], now, f);
        approvals_done(&a);
        return k;
}
