/* Unit tests for agent/audit.c: the hash chain as written, signatures made and checked, the
 * log's location, and verify's verdict on each kind of tampering of a synthetic log. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sodium.h>

#include "agent.h"
#include "tap.h"

static char tmpdir[] = "/tmp/test-audit-XXXXXX";

static char *path_in_tmp(const char *name) {
        return strdup_printf("%s/%s", tmpdir, name);
}

static char *slurp(const char *path, size_t *ret_size) {
        char *buf = NULL;
        if (read_file_bounded(path, 1024 * 1024, &buf, ret_size) < 0)
                return NULL;
        return buf;
}

/* Writes n records of one run to path (a fresh file), signed with key_path if not NULL. */
static int write_log(const char *path, const char *key_path, int n) {
        unlink(path);
        struct audit *a = NULL;
        int k = audit_open(path, key_path, &a);
        if (k < 0)
                return k;
        /* the first half record by record, the rest as one batch: the chain is the same */
        for (int i = 0; i < n && k >= 0; i++) {
                k = audit_append(a, "secret.fetch", json_pack("{s:s, s:i}", "name", "DB_PASSWORD", "i", i));
                if (k >= 0 && i < n / 2)
                        k = audit_flush(a);
        }
        if (k >= 0)
                k = audit_flush(a);
        audit_free(a);
        return k;
}

/* Splits buf into its lines (with newlines); returns the count. */
static size_t split_lines(char *buf, char **lines, size_t max) {
        size_t n = 0;
        for (char *p = buf; *p && n < max;) {
                char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) + 1 : strlen(p);
                lines[n++] = strndup(p, len);
                p += len;
        }
        return n;
}

static struct audit_verdict verify_lines_joined(char **lines, size_t n, const unsigned char *pk) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
                total += strlen(lines[i]);
        _cleanup_free_ char *buf = calloc(1, total + 1);
        for (size_t i = 0; i < n; i++)
                strcat(buf, lines[i]);
        struct audit_verdict v = {};
        CHECK(audit_verify_buffer(buf, total, pk, &v) == 0);
        return v;
}

TEST(chain_links_each_line_to_the_previous) {
        _cleanup_free_ char *path = path_in_tmp("chain.jsonl");
        CHECK(write_log(path, NULL, 3) == 0);
        size_t size;
        _cleanup_free_ char *buf = slurp(path, &size);
        char *lines[8];
        size_t n = split_lines(buf, lines, 8);
        CHECK_EQ_INT(n, 3);
        /* the first prev is zeros; each next one is BLAKE2b-256 of the whole line before */
        CHECK(strstr(lines[0], "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\""));
        for (size_t i = 1; i < n; i++) {
                unsigned char h[32];
                char hex[65], want[80];
                crypto_generichash(h, sizeof h, (const unsigned char *) lines[i - 1], strlen(lines[i - 1]), NULL, 0);
                sodium_bin2hex(hex, sizeof hex, h, sizeof h);
                snprintf(want, sizeof want, "\"prev\":\"%s\"", hex);
                CHECK(strstr(lines[i], want) != NULL);
        }
        /* stable key order, seq 1..n */
        CHECK(startswith(lines[0], "{\"ts\":\""));
        CHECK(strstr(lines[0], "\",\"seq\":1,\"event\":\"secret.fetch\",\"name\":\"DB_PASSWORD\",\"i\":0,\"prev\":"));
        CHECK(strstr(lines[2], "\"seq\":3,"));
        struct audit_verdict v = verify_lines_joined(lines, n, NULL);
        CHECK(v.intact);
        CHECK_EQ_INT(v.records, 3);
        for (size_t i = 0; i < n; i++)
                free(lines[i]);
}

TEST(file_mode_and_timestamp_format) {
        _cleanup_free_ char *path = path_in_tmp("sub/dir/mode.jsonl");
        CHECK(write_log(path, NULL, 1) == 0);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        _cleanup_free_ char *dir = path_in_tmp("sub/dir");
        CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
        size_t size;
        _cleanup_free_ char *buf = slurp(path, &size);
        /* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ" */
        CHECK(buf && size > 32 && buf[14] == '-' && buf[17] == 'T' && buf[26] == '.' && buf[30] == 'Z' && buf[31] == '"');
}

TEST(two_writers_share_one_chain) {
        _cleanup_free_ char *path = path_in_tmp("two.jsonl");
        unlink(path);
        struct audit *a = NULL, *b = NULL;
        CHECK(audit_open(path, NULL, &a) == 0);
        CHECK(audit_open(path, NULL, &b) == 0);
        CHECK(!streq(audit_run_id(a), audit_run_id(b)));
        CHECK_EQ_INT(strlen(audit_run_id(a)), 16);
        for (int i = 0; i < 3; i++) {
                CHECK(audit_append(a, "x", json_object()) == 0);
                CHECK(audit_flush(a) == 0);
                CHECK(audit_append(b, "y", json_object()) == 0);
                CHECK(audit_flush(b) == 0);
        }
        audit_free(a);
        audit_free(b);
        struct audit_verdict v = {};
        CHECK(audit_verify_file(path, NULL, &v) == 0);
        CHECK(v.intact);
        CHECK_EQ_INT(v.records, 6);
}

TEST(signatures_round_trip) {
        _cleanup_free_ char *sk = path_in_tmp("k.key"), *pk = path_in_tmp("k.pub");
        _cleanup_free_ char *sk2 = path_in_tmp("other.key"), *pk2 = path_in_tmp("other.pub");
        CHECK(audit_keygen(sk, pk) == 0);
        CHECK(audit_keygen(sk2, pk2) == 0);
        CHECK(audit_keygen(sk, pk) == -EEXIST);   /* never overwritten */
        struct stat st;
        CHECK(stat(sk, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(stat(pk, &st) == 0 && (st.st_mode & 0777) == 0644);
        _cleanup_free_ char *path = path_in_tmp("signed.jsonl");
        CHECK(write_log(path, sk, 4) == 0);
        unsigned char right[AUDIT_PUBLIC_KEY_BYTES], wrong[AUDIT_PUBLIC_KEY_BYTES];
        CHECK(audit_read_public_key(pk, right) == 0);
        CHECK(audit_read_public_key(pk2, wrong) == 0);
        struct audit_verdict v = {};
        CHECK(audit_verify_file(path, right, &v) == 0);
        CHECK(v.intact);
        CHECK(audit_verify_file(path, NULL, &v) == 0);
        CHECK(v.intact);   /* the chain alone still holds */
        CHECK(audit_verify_file(path, wrong, &v) == 0);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 1);
        CHECK(strstr(v.reason, "bad signature") != NULL);

        /* an edit that keeps the chain's shape is caught on its own line by the signature */
        size_t size;
        _cleanup_free_ char *buf = slurp(path, &size);
        char *lines[8];
        size_t n = split_lines(buf, lines, 8);
        char *at = strstr(lines[1], "DB_PASSWORD");
        at[0] = 'X';
        v = verify_lines_joined(lines, n, right);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 2);
        CHECK(strstr(v.reason, "bad signature") != NULL);
        for (size_t i = 0; i < n; i++)
                free(lines[i]);

        /* an unsigned log checked against a key: missing signature */
        _cleanup_free_ char *plain = path_in_tmp("plain.jsonl");
        CHECK(write_log(plain, NULL, 2) == 0);
        CHECK(audit_verify_file(plain, right, &v) == 0);
        CHECK(!v.intact && v.first_bad_line == 1 && strstr(v.reason, "no signature"));

        /* a key file others can read is refused */
        CHECK(chmod(sk, 0640) == 0);
        struct audit *a = NULL;
        CHECK(audit_open(path, sk, &a) == -EPERM);
        CHECK(a == NULL);
        /* a public key is not a secret key */
        CHECK(chmod(pk, 0600) == 0);
        CHECK(audit_open(path, pk, &a) == -EKEYREJECTED);
}

/* Each tampering of a 5-record log of one run, and the line verify names. */
TEST(verify_detects_each_tamper_kind) {
        _cleanup_free_ char *path = path_in_tmp("tamper.jsonl");
        CHECK(write_log(path, NULL, 5) == 0);
        size_t size;
        _cleanup_free_ char *buf = slurp(path, &size);
        char *orig[8], *l[8];
        size_t n = split_lines(buf, orig, 8);
        CHECK_EQ_INT(n, 5);
        struct audit_verdict v;

        /* edited byte in line 3: line 4's link breaks, line 3 is blamed */
        memcpy(l, orig, sizeof l);
        _cleanup_free_ char *edited = strdup(orig[2]);
        strstr(edited, "DB_PASSWORD")[0] = 'X';
        l[2] = edited;
        v = verify_lines_joined(l, n, NULL);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 3);
        CHECK(strstr(v.reason, "edited") != NULL);

        /* an edit that breaks the JSON is named on its own line */
        _cleanup_free_ char *broken = strdup(orig[1]);
        broken[0] = '[';
        memcpy(l, orig, sizeof l);
        l[1] = broken;
        v = verify_lines_joined(l, n, NULL);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 2);

        /* line 2 deleted */
        char *del[8] = { orig[0], orig[2], orig[3], orig[4] };
        v = verify_lines_joined(del, 4, NULL);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 2);
        CHECK(strstr(v.reason, "deleted") != NULL);

        /* first line deleted */
        v = verify_lines_joined(orig + 1, 4, NULL);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 1);
        CHECK(strstr(v.reason, "deleted") != NULL);

        /* lines 3 and 4 swapped */
        char *swapped[8] = { orig[0], orig[1], orig[3], orig[2], orig[4] };
        v = verify_lines_joined(swapped, 5, NULL);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 3);
        CHECK(strstr(v.reason, "reordered") != NULL);

        /* truncated in the middle of the last line */
        _cleanup_free_ char *cut = strndup(orig[4], 20);
        char *truncated[8] = { orig[0], orig[1], orig[2], orig[3], cut };
        v = verify_lines_joined(truncated, 5, NULL);
        CHECK(!v.intact);
        CHECK_EQ_INT(v.first_bad_line, 5);
        CHECK(strstr(v.reason, "truncated") != NULL);

        /* and the untouched lines still verify */
        v = verify_lines_joined(orig, 5, NULL);
        CHECK(v.intact);
        for (size_t i = 0; i < n; i++)
                free(orig[i]);
}

TEST(append_refuses_a_log_ending_mid_record) {
        _cleanup_free_ char *path = path_in_tmp("cut.jsonl");
        CHECK(write_log(path, NULL, 1) == 0);
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        CHECK(fd >= 0 && write(fd, "{\"ts\":", 6) == 6);
        close(fd);
        struct audit *a = NULL;
        CHECK(audit_open(path, NULL, &a) == 0);
        CHECK(audit_append(a, "x", json_object()) == 0);
        CHECK(audit_flush(a) == -EBADMSG);
        audit_free(a);
}

TEST(location_order) {
        struct options o = {};
        struct manifest m = { .dir = (char *) "/proj" };
        char *p = NULL;
        setenv("XDG_STATE_HOME", "/state", 1);
        unsetenv("SECRETS_RUN_AUDIT_LOG");
        CHECK(audit_log_path(&o, &m, &p) == 0);
        CHECK_EQ_STR(p, "/state/secrets-run/audit.jsonl");
        free(p);
        setenv("SECRETS_RUN_AUDIT_LOG", "/env.jsonl", 1);
        CHECK(audit_log_path(&o, &m, &p) == 0);
        CHECK_EQ_STR(p, "/env.jsonl");
        free(p);
        m.policy.audit_log = (char *) "logs/a.jsonl";
        CHECK(audit_log_path(&o, &m, &p) == 0);
        CHECK_EQ_STR(p, "/proj/logs/a.jsonl");
        free(p);
        o.audit_log = (char *) "/cli.jsonl";
        CHECK(audit_log_path(&o, &m, &p) == 0);
        CHECK_EQ_STR(p, "/cli.jsonl");
        free(p);
        unsetenv("SECRETS_RUN_AUDIT_LOG");
}

static int remove_tree(const char *dir) {
        _cleanup_free_ char *cmd = strdup_printf("rm -rf '%s'", dir);
        return system(cmd);
}

int main(void) {
        if (secret_init() < 0 || !mkdtemp(tmpdir))
                return 1;
        RUN(chain_links_each_line_to_the_previous);
        RUN(file_mode_and_timestamp_format);
        RUN(two_writers_share_one_chain);
        RUN(signatures_round_trip);
        RUN(verify_detects_each_tamper_kind);
        RUN(append_refuses_a_log_ending_mid_record);
        RUN(location_order);
        (void) remove_tree(tmpdir);
        return tap_finish();
}
