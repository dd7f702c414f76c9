/* The exec backend: any provider command (summon-compatible). The reference's path is the
 * last argument; the value is its stdout minus one trailing newline; a non-zero exit is an
 * error carrying its stderr; the whole call is bounded by the backend's timeout. */
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "backend-private.h"

#define EXEC_MAX_VALUE (1024 * 1024)
#define EXEC_MAX_STDERR 512

struct exec_state {
        backend_spawn_fn spawn;
};

static int exec_open(struct backend *b, char **ret_why) {
        if (!b->command || !b->command[0])
                return backend_fail(ret_why, -EINVAL, "backend '%s' (exec): 'command' is empty", b->name);
        if (!b->config->spawn)
                return backend_fail(ret_why, -EINVAL, "backend '%s' (exec): no way to start a provider was given", b->name);
        struct exec_state *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->spawn = b->config->spawn;
        b->data = st;
        return 0;
}

static void exec_close(struct backend *b) {
        free(b->data);
        b->data = NULL;
}

/* Flattens provider stderr into one line (it becomes part of an error message): line breaks
 * and tabs become spaces (a multi-line value's whitespace form still matches them), other
 * control characters '?'. Bytes of UTF-8 text stay as they are, so the agent's masker still
 * recognises a value quoted in it. */
static void one_line(char *s) {
        size_t len = strlen(s);
        while (len > 0 && isspace((unsigned char) s[len - 1]))
                s[--len] = '\0';
        for (unsigned char *p = (unsigned char *) s; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
                else if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
}

/* The provider's stderr may quote its value: the copy is wiped on every way out. */
static void errbuf_wipe(char (*buf)[EXEC_MAX_STDERR + 1]) {
        explicit_bzero(*buf, sizeof *buf);
}

static int exec_fetch(struct backend *b, const struct secret_ref *ref,
                      struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why) {
        if (ref->field)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (exec) has no fields ('#%s')",
                                    ref->secret_name, b->name, ref->field);

        size_t n = strv_length(b->command);
        _cleanup_free_ char **argv = calloc(n + 2, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        memcpy(argv, b->command, n * sizeof(char *));
        argv[n] = (char *) ref->path;

        int out[2] = { -1, -1 }, err[2] = { -1, -1 };
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                int e = -errno;
                for (int i = 0; i < 2; i++)
                        safe_close(out[i]), safe_close(err[i]);
                return e;
        }
        _cleanup_close_ int out_r = out[0], err_r = err[0];

        /* only the pipes' write ends reach the provider (never, say, libcurl's connection to
         * Vault, which is not close-on-exec), in a process group of its own */
        const struct exec_state *st = b->data;
        pid_t pid;
        int r = st->spawn(argv, out[1], err[1], &pid);
        safe_close(out[1]), safe_close(err[1]);
        if (r < 0)
                return backend_fail(ret_why, r, "secret %s: backend '%s' (exec): cannot run '%s': %s",
                                    ref->secret_name, b->name, argv[0], strerror(-r));

        _cleanup_secret_ struct secret *value = NULL;
        r = secret_new(256, &value);
        if (r < 0) {
                kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        _cleanup_(errbuf_wipe) char errbuf[EXEC_MAX_STDERR + 1] = "";
        size_t errlen = 0;
        uint64_t deadline = now_monotonic_ms() + b->timeout_ms;
        bool timed_out = false, too_big = false;
        (void) fd_set_nonblock(out_r, true);
        (void) fd_set_nonblock(err_r, true);

        while (out_r >= 0 || err_r >= 0) {
                struct pollfd p[2] = { { .fd = out_r, .events = POLLIN }, { .fd = err_r, .events = POLLIN } };
                uint64_t now = now_monotonic_ms();
                if (now >= deadline) {
                        timed_out = true;
                        break;
                }
                int pr = poll(p, 2, (int) (deadline - now));
                if (pr < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                if (p[0].revents) {
                        size_t before = secret_len(value);
                        int rr = secret_read_fd(value, out_r, EXEC_MAX_VALUE);
                        if (rr == -EFBIG) {
                                too_big = true;
                                break;
                        }
                        if (rr == 0)
                                out_r = safe_close(out_r);     /* EOF */
                        else if (rr != -EAGAIN && secret_len(value) == before) {
                                r = rr;
                                break;
                        }
                }
                if (p[1].revents) {
                        char tmp[1024];
                        ssize_t m = read(err_r, tmp, sizeof tmp);
                        if (m > 0) {
                                size_t take = (size_t) m;
                                if (take > EXEC_MAX_STDERR - errlen)
                                        take = EXEC_MAX_STDERR - errlen;
                                memcpy(errbuf + errlen, tmp, take);
                                errlen += take;
                                explicit_bzero(tmp, (size_t) m);
                        } else if (m == 0 || errno != EAGAIN)
                                err_r = safe_close(err_r);
                }
        }

        int wstatus = 0;
        if (timed_out || too_big || r < 0) {
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
        } else {
                /* stdout closed; the provider still has the rest of the timeout to exit */
                for (;;) {
                        pid_t w = waitpid(pid, &wstatus, WNOHANG);
                        if (w == pid)
                                break;
                        if (now_monotonic_ms() >= deadline) {
                                timed_out = true;
                                kill(-pid, SIGKILL);
                                kill(pid, SIGKILL);
                                break;
                        }
                        usleep(2000);
                }
        }
        if (timed_out || too_big || r < 0)
                (void) waitpid(pid, &wstatus, 0);

        if (r < 0)
                return backend_fail(ret_why, r, "secret %s: backend '%s' (exec): %s",
                                    ref->secret_name, b->name, strerror(-r));
        if (timed_out) {
                char d[32];
                return backend_fail(ret_why, -ETIMEDOUT, "secret %s: backend '%s' (exec): '%s' timed out after %s",
                                    ref->secret_name, b->name, argv[0],
                                    format_duration((b->timeout_ms + 999) / 1000, d, sizeof d));
        }
        if (too_big)
                return backend_fail(ret_why, -EFBIG, "secret %s: backend '%s' (exec): value larger than 1 MiB",
                                    ref->secret_name, b->name);

        errbuf[errlen] = '\0';
        one_line(errbuf);
        secret_chomp(value);
        if (WIFSIGNALED(wstatus) || WEXITSTATUS(wstatus) != 0) {
                /* what it printed before failing is as good as its value: masked under the
                 * secret's name in every message, the one quoting its stderr below included */
                backend_credential(b, ref->secret_name, value);
                r = WIFSIGNALED(wstatus)
                        ? backend_fail(ret_why, -EIO, "secret %s: backend '%s' (exec): '%s %s' killed by signal %d%s%s",
                                       ref->secret_name, b->name, argv[0], ref->path, WTERMSIG(wstatus),
                                       *errbuf ? ": " : "", errbuf)
                        : backend_fail(ret_why, -EIO, "secret %s: backend '%s' (exec): '%s %s' exited with status %d%s%s",
                                       ref->secret_name, b->name, argv[0], ref->path, WEXITSTATUS(wstatus),
                                       *errbuf ? ": " : "", errbuf);
                return r;
        }
        *ret_value = steal_pointer(&value);
        return 0;
}

const struct backend_ops exec_backend_ops = {
        .open = exec_open,
        .fetch = exec_fetch,
        .close = exec_close,
};
