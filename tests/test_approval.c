/* Unit tests for approvals (agent/sshsig.c, agent/approval.c): sshsig sign and verify with
 * Ed25519 keys made here, what breaks a signature, ssh_config pattern-lists, allowed_signers
 * lines and their options, and the canonical binding (stable under reordering, changed by
 * what matters). The ssh-keygen interoperation is tested end to end (test_approvals.py). */
#include <sodium.h>
#include <stdlib.h>

#include "approval.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-approval-XXXXXX";

/* "ssh-ed25519 BASE64" of pk, as a .pub file holds it. */
static char *pub_line(const unsigned char pk[32]) {
        unsigned char blob[51] = { 0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5', '1', '9', 0, 0, 0, 32 };
        memcpy(blob + 19, pk, 32);
        char b64[sodium_base64_ENCODED_LEN(51, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
        return strdup_printf("ssh-ed25519 %s", b64);
}

struct pair {
        struct ssh_key pub;
        struct secret *sk;
        char *line;
};

static void pair_new(struct pair *p) {
        unsigned char pk[32], sk[64];
        crypto_sign_keypair(pk, sk);
        p->line = pub_line(pk);
        const char *why = NULL;
        CHECK(ssh_public_key_parse(p->line, &p->pub, &why) == 0);
        CHECK(secret_from_bytes(sk, sizeof sk, &p->sk) == 0);
        sodium_memzero(sk, sizeof sk);
}

static void pair_done(struct pair *p) {
        ssh_key_done(&p->pub);
        secret_free(p->sk);
        free(p->line);
}

TEST(sign_and_verify) {
        struct pair a, b;
        pair_new(&a);
        pair_new(&b);
        const char *msg = "secrets-run approval v1\nidentity: \"alice\"\n", *why = NULL;
        char *armor = NULL;
        CHECK_EQ_INT(sshsig_sign(a.sk, &a.pub, msg, strlen(msg), APPROVAL_NAMESPACE, &armor), 0);
        CHECK(armor && strncmp(armor, "-----BEGIN SSH SIGNATURE-----\n", 30) == 0);
        CHECK(armor && strstr(armor, "\n-----END SSH SIGNATURE-----\n"));
        struct ssh_key signer = {};
        CHECK_EQ_INT(sshsig_verify(armor, strlen(armor), msg, strlen(msg), APPROVAL_NAMESPACE, &signer, &why), 0);
        CHECK(ssh_key_equal(&signer, &a.pub) && !ssh_key_equal(&signer, &b.pub));
        ssh_key_done(&signer);
        /* another message, another namespace, a flipped byte of the signature */
        CHECK_EQ_INT(sshsig_verify(armor, strlen(armor), msg, strlen(msg) - 1, APPROVAL_NAMESPACE, &signer, &why),
                     -EKEYREJECTED);
        CHECK_EQ_INT(sshsig_verify(armor, strlen(armor), msg, strlen(msg), "git", &signer, &why), -EBADMSG);
        char *bad = strdup(armor);
        char *body = bad + 30 + 200;   /* inside the signature bytes */
        *body = *body == 'A' ? 'B' : 'A';
        CHECK(sshsig_verify(bad, strlen(bad), msg, strlen(msg), APPROVAL_NAMESPACE, &signer, &why) < 0);
        CHECK_EQ_INT(sshsig_verify("nope", 4, msg, strlen(msg), APPROVAL_NAMESPACE, &signer, &why), -EBADMSG);
        free(bad);
        free(armor);
        pair_done(&a);
        pair_done(&b);
}

TEST(pattern_lists) {
        CHECK_EQ_INT(match_pattern_list("alice", "alice"), 1);
        CHECK_EQ_INT(match_pattern_list("alice", "bob,alice"), 1);
        CHECK_EQ_INT(match_pattern_list("alice@example.com", "*@example.com"), 1);
        CHECK_EQ_INT(match_pattern_list("alice", "al?ce"), 1);
        CHECK_EQ_INT(match_pattern_list("alice", "ali"), 0);
        CHECK_EQ_INT(match_pattern_list("alice", "*,!alice"), -1);
        CHECK_EQ_INT(match_pattern_list("bob", "*,!alice"), 1);
        CHECK_EQ_INT(match_pattern_list("a*b", "a[*]b"), 0);   /* no brackets in ssh patterns */
}

static char *write_file(const char *name, const char *text) {
        char *path = strdup_printf("%s/%s", tmpdir, name);
        FILE *f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
        return path;
}

TEST(allowed_signers_lines) {
        struct pair a, b;
        pair_new(&a);
        pair_new(&b);
        char *text = strdup_printf("# comment\n\n"
                                   "alice,alice@example.com %s alice's laptop\n"
                                   "\"bob\" namespaces=\"git,secrets-run-approval\",valid-before=\"20300101Z\" %s\n"
                                   "carol valid-after=\"2030\" %s\n"
                                   "dave unknown-option %s\n",
                                   a.line, b.line, a.line, a.line);
        char *path = write_file("allowed_signers", text);
        struct allowed_signers s;
        CHECK_EQ_INT(allowed_signers_load(path, &s), 0);
        CHECK_EQ_INT(s.n, 2);
        CHECK_EQ_INT(strv_length(s.problems), 2);
        CHECK(s.problems && strstr(s.problems[0], "allowed_signers:5:"));
        CHECK(s.problems && strstr(s.problems[1], "allowed_signers:6:"));
        char *why = NULL;
        int64_t t2026 = 1780000000, t2031 = 1925000000;
        CHECK(allowed_signers_permit(&s, &a.pub, "alice@example.com", APPROVAL_NAMESPACE, t2026, t2026, &why));
        CHECK(!allowed_signers_permit(&s, &a.pub, "bob", APPROVAL_NAMESPACE, t2026, t2026, &why));
        CHECK(why && strstr(why, "lists for 'alice,alice@example.com', not for 'bob'"));
        free(why);
        CHECK(allowed_signers_permit(&s, &b.pub, "bob", APPROVAL_NAMESPACE, t2026, t2026, &why));
        CHECK(!allowed_signers_permit(&s, &b.pub, "bob", "file", t2026, t2026, &why));
        CHECK(why && strstr(why, "namespaces="));
        free(why);
        /* retired by valid-before: at the approval's time, and now */
        CHECK(!allowed_signers_permit(&s, &b.pub, "bob", APPROVAL_NAMESPACE, t2026, t2031, &why));
        free(why);
        allowed_signers_done(&s);
        free(path);
        free(text);
        pair_done(&a);
        pair_done(&b);
}

static const char *const MANIFEST =
        "version: 1\n"
        "project: p\n"
        "backends:\n"
        "  v: {type: vault, address: https://vault.example.com, timeout: %s}\n"
        "environments: {dev: {}, prod: {protected: true}}\n"
        "secrets:\n"
        "  S:\n"
        "    from: \"v:secret/data/s#k\"\n"
        "    environments: %s\n"
        "    stages: [deploy]\n"
        "    approved_by: [alice]\n";

static char *payload_of(const char *timeout, const char *environments) {
        char *text = strdup_printf(MANIFEST, timeout, environments);
        struct findings f = {};
        struct manifest *m = NULL;
        char *payload = NULL;
        CHECK_EQ_INT(manifest_load_buffer("secrets.yaml", text, strlen(text), &m, &f), 0);
        if (m)
                CHECK_EQ_INT(approval_payload(m, &m->secrets[0], "prod", "alice", 1780000000, &payload), 0);
        manifest_free(m);
        findings_done(&f);
        free(text);
        return payload;
}

TEST(binding_is_canonical) {
        char *a = payload_of("30s", "[prod, dev]"), *b = payload_of("90s", "[dev, prod, prod]"),
             *c = payload_of("30s", "[prod]");
        CHECK(a && b && c);
        CHECK(a && strncmp(a, APPROVAL_HEADER "approved: \"2026-05-28T20:26:40Z\"\n", 57) == 0);
        CHECK(a && strstr(a, "\nenvironments: [\"dev\",\"prod\"]\n"));
        CHECK(a && strstr(a, "\nfrom: \"v:secret/data/s#k\"\n"));
        CHECK(a && strstr(a, "\nbackend.address: \"https://vault.example.com\"\n"));
        CHECK(a && strstr(a, "\nwhen.events: null\n"));
        CHECK_EQ_STR(a, b);   /* order, repeats and the timeout do not matter */
        CHECK(a && c && strcmp(a, c) != 0);
        free(a), free(b), free(c);
}

int main(void) {
        if (secret_init() < 0 || !mkdtemp(tmpdir))
                return 1;
        RUN(sign_and_verify);
        RUN(pattern_lists);
        RUN(allowed_signers_lines);
        RUN(binding_is_canonical);
        char *path = strdup_printf("%s/allowed_signers", tmpdir);
        if (unlink(path) < 0 || rmdir(tmpdir) < 0)
                return 1;
        free(path);
        return tap_finish();
}
