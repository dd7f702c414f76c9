/* Unit tests for sandbox/'s fork primitive, spawn_process(): what a child holds (fds,
 * environment, signals, process group, parent-death signal, secure memory) whatever its
 * parent held. The test binary re-executes itself ("probe", "erase") to look from inside. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "sandbox-private.h"
#include "tap.h"

extern char **environ;

/* ---- inside: the test binary run as a child ---- */

/* Prints what this process holds: its open fds (without the one listing them), environment,
 * blocked and ignored signals, whether it leads its process group, its parent-death signal. */
static int probe_main(void) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return 2;
        printf("fds");
        for (struct dirent *e; (e = readdir(d));)
                if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
                        printf(" %s", e->d_name);
        closedir(d);
        printf("\nenv");
        for (char **v = environ; *v; v++)
                printf(" %s", *v);
        sigset_t mask;
        sigprocmask(SIG_SETMASK, NULL, &mask);
        printf("\nblocked");
        for (int sig = 1; sig < 32; sig++)
                if (sigismember(&mask, sig))
                        printf(" %d", sig);
        printf("\nignored");
        for (int sig = 1; sig < 32; sig++) {
                struct sigaction sa;
                if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
                        printf(" %d", sig);
        }
        int pdeathsig = 0;
        (void) prctl(PR_GET_PDEATHSIG, &pdeathsig);
        printf("\ngroup %s\npdeathsig %d\n", getpgrp() == getpid() ? "own" : "inherited", pdeathsig);
        return 0;
}

static bool file_contains(const char *path, const char *needle) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        if (read_file_bounded(path, 1 << 20, &buf, &size) < 0)
                return true;   /* cannot tell: count it as held */
        size_t n = strlen(needle);
        for (size_t i = 0; i + n <= size; i++)
                if (memcmp(buf + i, needle, n) == 0)
                        return true;
        return false;
}

static int report_erased(void *userdata) {
        const char *const *markers = userdata;
        for (size_t i = 0; markers[i]; i++)
                printf("%s %s\n", markers[i], file_contains("/proc/self/environ", markers[i]) ? "held" : "gone");
        printf("environ %s\n", environ[0] ? environ[0] : "(empty)");
        fflush(stdout);
        return 0;
}

/* Started with MARK_BLOCK=... in its initial environment block, it unsets that (the string
 * stays in the block), sets MARK_HEAP (a heap copy) and keeps MARK_KEPT, then asks a child
 * that does not exec what /proc/self/environ still shows. */
static int erase_main(void) {
        if (unsetenv("MARK_BLOCK") < 0 || setenv("MARK_HEAP", "heap-value-c0ffee", 1) < 0)
                return 2;
        const char *markers[] = { "block-value-5ec2e7", "heap-value-c0ffee", "kept-value-b1ade5", NULL };
        char *const envp[] = { "GIVEN=1", NULL };
        const struct spawn_fd fds[] = { { STDOUT_FILENO, STDOUT_FILENO } };
        fflush(stdout);
        struct spawn_spec s = { .run = report_erased, .userdata = markers, .envp = envp,
                                .fds = fds, .n_fds = ELEMENTSOF(fds) };
        pid_t pid;
        if (spawn_process(&s, &pid) < 0)
                return 3;
        int wstatus;
        return waitpid(pid, &wstatus, 0) == pid && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 4;
}

/* ---- outside ---- */

/* Runs s, whose fd 1 should be the write end of a pipe, and returns what the child wrote
 * (malloc'd) and its wait status. */
static char *collect(struct spawn_spec *s, int out_w, int out_r, int *ret_wstatus) {
        pid_t pid;
        int r = spawn_process(s, &pid);
        safe_close(out_w);
        if (r < 0) {
                safe_close(out_r);
                return NULL;
        }
        char *buf = calloc(1, 65536);
        size_t len = 0;
        ssize_t n;
        while (buf && len < 65535 && (n = read(out_r, buf + len, 65535 - len)) > 0)
                len += (size_t) n;
        safe_close(out_r);
        (void) waitpid(pid, ret_wstatus, 0);
        return buf;
}

static char *line_of(const char *text, const char *key) {
        size_t k = strlen(key);
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, key, k) == 0 && (p[k] == ' ' || p[k] == '\n'))
                        return strndup(p + k + (p[k] == ' '), strcspn(p + k + (p[k] == ' '), "\n"));
        return NULL;
}

static char self_exe[4096];

TEST(exec_child_holds_only_what_it_is_given) {
        /* what a parent may hold: an fd without close-on-exec (as libcurl's sockets), an
         * ignored SIGPIPE and a blocked SIGUSR1 */
        int stray = open("/dev/null", O_RDONLY);
        int memfd = memfd_create("delivered", MFD_CLOEXEC);
        CHECK(stray >= 0 && memfd >= 0);
        signal(SIGPIPE, SIG_IGN);
        sigset_t usr1, saved;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        sigprocmask(SIG_BLOCK, &usr1, &saved);
        int out[2];
        CHECK(pipe2(out, O_CLOEXEC) == 0);
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        const struct spawn_fd fds[] = { { null_fd, 0 }, { out[1], 1 }, { out[1], 2 }, { memfd, 3 } };
        char *const argv[] = { self_exe, "probe", NULL };
        char *const envp[] = { "ONLY=this", NULL };
        struct spawn_spec s = { .argv = argv, .envp = envp, .fds = fds, .n_fds = ELEMENTSOF(fds),
                                .group = SPAWN_GROUP_NEW, .pdeathsig = SIGKILL };
        int wstatus = -1;
        _cleanup_free_ char *got = collect(&s, out[1], out[0], &wstatus);
        CHECK(got != NULL);
        CHECK_EQ_INT(wstatus, 0);
        _cleanup_free_ char *f = line_of(got, "fds"), *e = line_of(got, "env"), *b = line_of(got, "blocked"),
                            *i = line_of(got, "ignored"), *g = line_of(got, "group"), *p = line_of(got, "pdeathsig");
        CHECK_EQ_STR(f, "0 1 2 3");
        CHECK_EQ_STR(e, "ONLY=this");
        CHECK_EQ_STR(b, "");
        CHECK_EQ_STR(i, "");
        CHECK_EQ_STR(g, "own");
        CHECK_EQ_STR(p, "9");
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &saved, NULL);
        safe_close(stray), safe_close(memfd), safe_close(null_fd);
}

TEST(exec_failure_is_an_errno_and_leaves_no_child) {
        char *const argv[] = { "/nonexistent/secrets-run-test", NULL };
        struct spawn_spec s = { .argv = argv };
        pid_t pid = -1;
        CHECK_EQ_INT(spawn_process(&s, &pid), -ENOENT);
        CHECK_EQ_INT(pid, -1);   /* untouched */
        CHECK_EQ_INT(waitpid(-1, NULL, WNOHANG), -1);
        CHECK_EQ_INT(errno, ECHILD);
}

static int refuse(void *userdata) {
        return -EPERM;
}

TEST(before_exec_failure_fails_the_spawn) {
        char *const argv[] = { "/bin/true", NULL };
        struct spawn_spec s = { .argv = argv, .before_exec = refuse };
        pid_t pid;
        /* told apart from an exec failure: a sandbox layer failed, not the command */
        int r = spawn_process(&s, &pid);
        CHECK(spawn_failed_before_exec(r));
        CHECK_EQ_INT(spawn_errno(r), EPERM);
        CHECK_EQ_INT(waitpid(-1, NULL, WNOHANG), -1);
        /* an exec failure is not one */
        char *const missing[] = { "/nonexistent/secrets-run-test", NULL };
        struct spawn_spec m = { .argv = missing, .before_exec = NULL };
        r = spawn_process(&m, &pid);
        CHECK(!spawn_failed_before_exec(r));
        CHECK_EQ_INT(r, -ENOENT);
}

TEST(child_that_does_not_exec_erases_its_environment) {
        int out[2];
        CHECK(pipe2(out, O_CLOEXEC) == 0);
        const struct spawn_fd fds[] = { { out[1], 1 } };
        char *const argv[] = { self_exe, "erase", NULL };
        char *const envp[] = { "MARK_BLOCK=block-value-5ec2e7", "MARK_KEPT=kept-value-b1ade5", NULL };
        struct spawn_spec s = { .argv = argv, .envp = envp, .fds = fds, .n_fds = ELEMENTSOF(fds) };
        int wstatus = -1;
        _cleanup_free_ char *got = collect(&s, out[1], out[0], &wstatus);
        CHECK(got != NULL);
        CHECK_EQ_INT(wstatus, 0);
        _cleanup_free_ char *block = line_of(got, "block-value-5ec2e7"), *heap = line_of(got, "heap-value-c0ffee"),
                            *kept = line_of(got, "kept-value-b1ade5"), *env = line_of(got, "environ");
        CHECK_EQ_STR(block, "gone");   /* unset, but still in the block the kernel shows */
        CHECK_EQ_STR(heap, "gone");
        CHECK_EQ_STR(kept, "gone");
        CHECK_EQ_STR(env, "GIVEN=1");
}

struct wiped_args {
        struct secret *s;
        size_t capacity;
};

static int report_wiped(void *userdata) {
        const struct wiped_args *a = userdata;
        const unsigned char *p = secret_data(a->s);
        bool zero = true;
        for (size_t i = 0; i < a->capacity; i++)
                zero = zero && p[i] == 0;
        sigset_t mask;
        sigprocmask(SIG_SETMASK, NULL, &mask);
        int fds = 0;
        DIR *d = opendir("/proc/self/fd");
        for (struct dirent *e; d && (e = readdir(d));)
                fds += e->d_name[0] != '.';
        if (d)
                closedir(d);
        /* 1 and the listing's own */
        return (zero && secret_len(a->s) == 0 ? 0 : 1) | (sigismember(&mask, SIGUSR2) && !sigismember(&mask, SIGUSR1) ? 0 : 2) |
               (fds == 2 ? 0 : 4);
}

TEST(wipe_secrets_and_blocked_signals) {
        struct secret *s = NULL;
        CHECK_EQ_INT(secret_from_bytes("not for the child", 17, &s), 0);
        int out[2];
        CHECK(pipe2(out, O_CLOEXEC) == 0);
        const struct spawn_fd fds[] = { { out[1], 1 } };
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        struct wiped_args a = { s, 17 };
        struct spawn_spec sp = { .run = report_wiped, .userdata = &a, .fds = fds, .n_fds = ELEMENTSOF(fds),
                                 .wipe_secrets = true, .blocked = &usr2 };
        int wstatus = -1;
        _cleanup_free_ char *got = collect(&sp, out[1], out[0], &wstatus);
        CHECK(got != NULL);
        CHECK(WIFEXITED(wstatus));
        CHECK_EQ_INT(WEXITSTATUS(wstatus), 0);
        CHECK_EQ_INT(secret_len(s), 17);   /* ours is untouched */
        CHECK(memcmp(secret_data(s), "not for the child", 17) == 0);
        secret_free(s);
}

TEST(bad_specs_are_refused) {
        pid_t pid;
        char *const argv[] = { "/bin/true", NULL };
        struct spawn_spec none = { .fds = NULL };
        CHECK_EQ_INT(spawn_process(&none, &pid), -EINVAL);   /* neither argv nor run */
        const struct spawn_fd high[] = { { 0, SPAWN_MAX_FDS } };
        struct spawn_spec s = { .argv = argv, .fds = high, .n_fds = 1 };
        CHECK_EQ_INT(spawn_process(&s, &pid), -EBADF);
}

int main(int argc, char **argv) {
        if (argc > 1 && streq(argv[1], "probe"))
                return probe_main();
        if (argc > 1 && streq(argv[1], "erase"))
                return erase_main();
        if (secret_init() < 0)
                return 1;
        ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
        if (n <= 0)
                return 1;
        self_exe[n] = '\0';
        RUN(exec_child_holds_only_what_it_is_given);
        RUN(exec_failure_is_an_errno_and_leaves_no_child);
        RUN(before_exec_failure_fails_the_spawn);
        RUN(child_that_does_not_exec_erases_its_environment);
        RUN(wipe_secrets_and_blocked_signals);
        RUN(bad_specs_are_refused);
        return tap_finish();
}
