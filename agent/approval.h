/* Signed approvals: OpenSSH signatures (PROTOCOL.sshsig) over a secret's binding, the
 * allowed_signers file that says whose keys count, and the verdicts check, run, plan, explain
 * and report share. docs/approvals.md describes the files and the rules. */
#pragma once

#include <time.h>

#include "manifest.h"

/* The sshsig namespace of every approval: a signature made for git, email or files never
 * passes for one, and one of ours never passes for theirs. */
#define APPROVAL_NAMESPACE "secrets-run-approval"
#define APPROVAL_HEADER "secrets-run approval v1\n"
/* the approvals directory beside the manifest when policy.approvals names none */
#define APPROVALS_DEFAULT_DIR "secrets.approvals"
/* an approval dated later than now by more than this is refused: clocks differ a little,
 * and a date far ahead would put off its recertification */
#define APPROVAL_CLOCK_SKEW 300

/* ---- OpenSSH keys and signatures (sshsig.c) ---- */

struct secret;

struct ssh_key {
        char type[48];                 /* "ssh-ed25519", "ssh-rsa", ... */
        unsigned char *blob;           /* the wire encoding (RFC 4253 §6.6) */
        size_t blob_len;
        bool ed25519;
        unsigned char pk[32];          /* the Ed25519 public key, when ed25519 */
};
void ssh_key_done(struct ssh_key *k);
bool ssh_key_equal(const struct ssh_key *a, const struct ssh_key *b);
/* "SHA256:..." as ssh-keygen -l prints it. */
const char *ssh_key_fingerprint(const struct ssh_key *k, char *buf, size_t size);
/* "TYPE BASE64 [COMMENT]", as in a .pub file. -EINVAL with why. */
int ssh_public_key_parse(const char *line, struct ssh_key *ret, const char **ret_why);
/* "ssh-ed25519 BASE64" for a key (malloc'd). */
char *ssh_public_key_format(const struct ssh_key *k);
/* Reads an OpenSSH key file: an unencrypted private key (openssh-key-v1) gives its public key
 * and, if ret_sk is not NULL, the 64-byte Ed25519 secret key in secure memory; a .pub line
 * gives the public key only (then *ret_sk is NULL). -EINVAL / -EPROTONOSUPPORT (encrypted,
 * not Ed25519) with why (a static sentence). */
int ssh_key_load(const char *path, struct ssh_key *ret_pub, struct secret **ret_sk, const char **ret_why);

/* An armored sshsig ("-----BEGIN SSH SIGNATURE-----") over message, with namespace ns and
 * SHA-512, by the Ed25519 key (sk: 64 bytes, libsodium's layout). */
int sshsig_sign(const struct secret *sk, const struct ssh_key *pub, const void *message, size_t size,
                const char *ns, char **ret_armored);
/* Checks an armored sshsig over message in namespace ns: 0 and the signer's key in ret_key,
 * -EBADMSG (malformed, wrong namespace), -EKEYREJECTED (does not verify),
 * -EPROTONOSUPPORT (a key type verified elsewhere only), with why in ret_why (static). */
int sshsig_verify(const char *armored, size_t armored_len, const void *message, size_t size, const char *ns,
                  struct ssh_key *ret_key, const char **ret_why);

/* ---- allowed_signers (ssh-keygen(1) ALLOWED SIGNERS; git's gpg.ssh.allowedSignersFile) ---- */

struct allowed_signer {
        unsigned line;
        char *principals;              /* a pattern-list, as ssh_config(5) PATTERNS */
        char *namespaces;              /* a pattern-list; NULL: any namespace */
        bool cert_authority;
        int64_t valid_after, valid_before;   /* unix seconds; 0: unbounded */
        struct ssh_key key;
};

struct allowed_signers {
        char *path;
        struct allowed_signer *items;
        size_t n;
        char **problems;               /* "PATH:LINE: why" of each line that was skipped */
};
/* Reads the file; lines that cannot be read are skipped and said in problems. -errno when the
 * file cannot be read at all. */
int allowed_signers_load(const char *path, struct allowed_signers *ret);
void allowed_signers_done(struct allowed_signers *s);
/* ssh_config(5) pattern-lists: 1 if s matches a pattern, -1 if it matches a negated one (which
 * decides), 0 if none. */
int match_pattern_list(const char *s, const char *list);
/* Whether the file lets key sign for identity in namespace ns, both at `at` (the approval's
 * time) and at `now`. false with why (malloc'd) when not. */
bool allowed_signers_permit(const struct allowed_signers *s, const struct ssh_key *key, const char *identity,
                            const char *ns, int64_t at, int64_t now, char **ret_why);
/* The principals listed with key, comma-separated (malloc'd; NULL if it is not listed). */
char *allowed_signers_principals_of(const struct allowed_signers *s, const struct ssh_key *key);

/* ---- approvals of one manifest (approval.c) ---- */

enum approval_state {
        APPROVAL_VALID,
        APPROVAL_MISSING,              /* SR115: approved_by names someone who has not signed */
        APPROVAL_CHANGED,              /* SR116: the signed binding is not the current one */
        APPROVAL_BAD_SIGNATURE,        /* SR117: malformed, does not verify, dated ahead */
        APPROVAL_WRONG_SIGNER,         /* SR118: a key allowed_signers does not list for them */
};

enum recertification {
        RECERT_OK,
        RECERT_DUE,                    /* past policy.approval_max_age: a warning */
        RECERT_EXPIRED,                /* past policy.approval_fail_after: refused */
};

struct approval_record;                /* one signed approval read from a file */

struct approvals {
        const struct manifest *m;
        bool configured;               /* policy.allowed_signers is set */
        char *signers_path;
        char *location;                /* the approvals directory or file */
        bool location_is_file;
        int signers_error;             /* -errno when the file could not be read */
        struct allowed_signers signers;
        struct approval_record *records;
        size_t n_records;
        char **problems;               /* approval files or blocks that could not be read */
};
/* Reads allowed_signers and every approval file. Only -ENOMEM fails: what cannot be read is
 * kept in signers_error and problems (check reports them). */
int approvals_load(const struct manifest *m, struct approvals *ret);
void approvals_done(struct approvals *a);
/* Every approval read from the approvals file but those by identity for secret in env, as the
 * text of a file (malloc'd; "" when none): what approve writes back with the new one. */
int approvals_others_text(const struct approvals *a, const char *secret, const char *env, const char *identity,
                          char **ret);

struct approval_verdict {
        const char *identity;          /* an entry of approved_by */
        struct mf_pos pos;             /* where approved_by names it */
        enum approval_state state;
        enum recertification recert;
        int64_t approved_at;           /* the signed time; 0 when missing */
        uint64_t age;                  /* seconds since approved_at */
        char *where;                   /* "FILE:LINE" of the approval, NULL when missing */
        char *why;                     /* what is wrong (NULL when valid) */
};
void approval_verdicts_free(struct approval_verdict *v, size_t n);
/* One verdict per approved_by identity of s, for environment env, at now. */
int approvals_verify(const struct approvals *a, const struct mf_secret *s, const char *env, int64_t now,
                     struct approval_verdict **ret, size_t *ret_n);
/* Whether a run in env needs s approved: env is protected and s is stored (not ephemeral). */
bool approval_required(const struct manifest *m, const struct mf_secret *s, const char *env);
const char *approval_state_rule(enum approval_state st);       /* "approval.missing", ... */
enum finding_id approval_state_finding(enum approval_state st);
/* The signed text for s in env by identity at `at` (malloc'd): the header, then the binding. */
int approval_payload(const struct manifest *m, const struct mf_secret *s, const char *env, const char *identity,
                     int64_t at, char **ret);
/* The finding for one verdict (SR115-SR119; nothing for a valid, current approval). */
int approval_verdict_finding(const struct approvals *a, const struct mf_secret *s, const char *env,
                             const struct approval_verdict *v, struct findings *f);
/* check: SR115-SR121 for every protected environment each secret reaches. */
int check_approvals(const struct manifest *m, struct findings *f, int64_t now);
