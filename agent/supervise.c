/* The supervisor loop: pumps the step's stdout and stderr to ours, forwards signals to the
 * step's process group, enforces --timeout (TERM, grace, KILL), and collects the status.
 * The redaction filter sits on the two output streams. */
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "agent.h"
#include "output.h"
#include "redact.h"
#include "sandbox.h"

struct stream {
        const char *name;  /* "stdout" / "stderr", for leak reports */
        int from;          /* the step's pipe; -1 once closed */
        int to;            /* our stdout or stderr */
        bool to_broken;    /* our side is gone (EPIPE): stop reading so the step sees it */
        struct redact_stream *filter;   /* NULL: pass through */
};

static int stream_write(void *userdata, const void *p, size_t n) {
        struct stream *s = userdata;
        if (s->to_broken)
                return 0;
        if (write_all(s->to, p, n) < 0)
                s->to_broken = true;   /* reported by closing the step's pipe below */
        return 0;
}

static void stream_leak(void *userdata, const struct redact_leak *leak) {
        struct stream *s = userdata;
        report_leak(leak, s->name);
}

static void stream_close(struct stream *s) {
        s->from = safe_close(s->from);
        if (s->filter) {
                /* end of stream: what was held back is decided now */
                struct redact_sink sink = { stream_write, stream_leak, s };
                (void) redact_stream_finish(s->filter, &sink);
        }
}

/* Moves what is available now; closes the pipe at EOF or when our side is broken. */
static void stream_pump(struct stream *s) {
        char buf[65536];
        struct redact_sink sink = { stream_write, stream_leak, s };
        for (;;) {
                ssize_t n = read(s->from, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        stream_close(s);
                        return;
                }
                if (s->filter) {
                        if (redact_stream_feed(s->filter, buf, (size_t) n, &sink) < 0)
                                s->to_broken = true;
                } else
                        (void) stream_write(s, buf, (size_t) n);
                if (s->to_broken) {
                        /* like a shell pipeline: the writer learns its reader is gone */
                        stream_close(s);
                        return;
                }
        }
}

int supervise(struct child *c, int signal_fd, uint64_t timeout_ms, const struct redactor *redactor,
              const struct supervise_timer *timer, struct supervise_result *ret) {
        struct stream streams[2] = {
                { .name = "stdout", .from = c->stdout_fd, .to = STDOUT_FILENO },
                { .name = "stderr", .from = c->stderr_fd, .to = STDERR_FILENO },
        };
        c->stdout_fd = c->stderr_fd = -1;   /* owned by streams[] now */
        for (int i = 0; redactor && i < 2; i++) {
                int k = redact_stream_new(redactor, &streams[i].filter);
                if (k < 0) {
                        for (int j = 0; j < 2; j++) {
                                safe_close(streams[j].from);
                                redact_stream_free(streams[j].filter);
                        }
                        return k;
                }
        }
        uint64_t start = now_monotonic_ms();
        uint64_t timeout_at = timeout_ms ? start + timeout_ms : 0;
        uint64_t kill_at = 0, drain_until = 0;
        bool exited = false, timed_out = false;
        int wstatus = 0;
        uint64_t tick_at = timer && timer->tick ? timer->tick(timer->userdata, start) : 0;
        int wake_fd = timer && timer->wake ? timer->wake_fd : -1;

        /* with a pty, what we read on stdin is typed into the step's terminal */
        int input = c->pty_fd >= 0 ? STDIN_FILENO : -1;

        while (!exited || streams[0].from >= 0 || streams[1].from >= 0) {
                struct pollfd p[5] = {
                        { .fd = streams[0].from, .events = POLLIN },
                        { .fd = streams[1].from, .events = POLLIN },
                        { .fd = signal_fd, .events = POLLIN },
                        { .fd = exited ? -1 : input, .events = POLLIN },
                        { .fd = wake_fd, .events = POLLIN },
                };
                uint64_t now = now_monotonic_ms(), next = 0;
                if (timeout_at && !timed_out)
                        next = timeout_at;
                if (kill_at && (!next || kill_at < next))
                        next = kill_at;
                if (drain_until && (!next || drain_until < next))
                        next = drain_until;
                if (tick_at && !exited && (!next || tick_at < next))
                        next = tick_at;
                int wait_ms = -1;
                if (next)
                        wait_ms = next > now ? (int) (next - now) : 0;

                int r = poll(p, 5, wait_ms);
                if (r < 0 && errno != EINTR)
                        return -errno;
                now = now_monotonic_ms();

                for (int i = 0; i < 2; i++)
                        if (streams[i].from >= 0 && p[i].revents)
                                stream_pump(&streams[i]);

                if (p[4].revents)
                        timer->wake(timer->userdata);

                if (p[3].revents) {
                        char buf[4096];
                        ssize_t n = read(input, buf, sizeof buf);
                        if (n > 0)
                                (void) write_all(c->pty_fd, buf, (size_t) n);
                        else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                                if (!isatty(input))
                                        (void) write_all(c->pty_fd, "\x04", 1);   /* VEOF: end of input */
                                input = -1;
                        }
                }

                if (p[2].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(signal_fd, &si, sizeof si) == (ssize_t) sizeof si) {
                                if ((int) si.ssi_signo == SIGCHLD)
                                        continue;   /* reaped below */
                                if ((int) si.ssi_signo == SIGWINCH) {
                                        if (c->pty_fd >= 0)
                                                pty_resize(c->pty_fd);
                                        continue;
                                }
                                if (!exited)
                                        child_signal(c, (int) si.ssi_signo);
                        }
                }

                if (!exited) {
                        pid_t group = c->pid;
                        if (child_reap(c, &wstatus) > 0) {
                                exited = true;
                                /* the step is over: whatever it left running in its group
                                 * had its secrets and would hold our pipes open (in a pid
                                 * namespace the kernel has killed it already) */
                                if (!c->init)
                                        (void) kill(-group, SIGKILL);
                                drain_until = now + DRAIN_AFTER_EXIT_MS;
                                kill_at = 0;
                        }
                }

                if (!exited && tick_at && now >= tick_at)
                        tick_at = timer->tick(timer->userdata, now);
                if (!exited && timeout_at && !timed_out && now >= timeout_at) {
                        timed_out = true;
                        child_signal(c, SIGTERM);
                        child_signal(c, SIGCONT);   /* a stopped step must see TERM */
                        kill_at = now + KILL_GRACE_MS;
                }
                if (!exited && kill_at && now >= kill_at) {
                        child_kill(c);
                        kill_at = 0;
                }
                if (exited && drain_until && now >= drain_until &&
                    (streams[0].from >= 0 || streams[1].from >= 0)) {
                        log_warning("a process started by the step still holds its output open; not waiting for it");
                        for (int i = 0; i < 2; i++)
                                if (streams[i].from >= 0)
                                        stream_close(&streams[i]);
                }
        }
        uint64_t leaks = 0;
        for (int i = 0; i < 2; i++) {
                if (streams[i].filter)
                        leaks += redact_stream_leak_count(streams[i].filter);
                redact_stream_free(streams[i].filter);
        }
        *ret = (struct supervise_result) { .wstatus = wstatus, .timed_out = timed_out, .leaks = leaks };
        return 0;
}
