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

#define STREAM_OUT_BUFFER 65536

struct stream {
        const char *name;  /* "stdout" / "stderr", for leak reports */
        int from;          /* the step's pipe; -1 once closed */
        int to;            /* our stdout or stderr */
        bool to_broken;    /* our side is gone (EPIPE): stop reading so the step sees it */
        struct redact_stream *filter;   /* NULL: pass through */
        /* what the filter released from one read, written at once after it: a line with a
         * mask in it is one write, not three (a secret on every line cost a write per piece) */
        size_t out_len;
        char out[STREAM_OUT_BUFFER];
};

static void stream_flush(struct stream *s) {
        if (s->out_len > 0 && !s->to_broken && write_all(s->to, s->out, s->out_len) < 0)
                s->to_broken = true;   /* reported by closing the step's pipe below */
        s->out_len = 0;
}

static int stream_write(void *userdata, const void *p, size_t n) {
        struct stream *s = userdata;
        if (s->to_broken)
                return 0;
        if (s->out_len + n > sizeof s->out)
                stream_flush(s);
        if (n >= sizeof s->out) {
                if (!s->to_broken && write_all(s->to, p, n) < 0)
                        s->to_broken = true;
                return 0;
        }
        memcpy(s->out + s->out_len, p, n);
        s->out_len += n;
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
        stream_flush(s);
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
                /* the step's raw output may hold values: not left behind on our stack */
                explicit_bzero(buf, (size_t) n);
                stream_flush(s);
                if (s->to_broken) {
                        /* like a shell pipeline: the writer learns its reader is gone */
                        stream_close(s);
                        return;
                }
        }
}

/* The loop's state: the step, its streams, and the deadlines that drive it. */
struct loop {
        struct child *c;
        int signal_fd;
        const struct supervise_timer *timer;
        struct stream streams[2];
        int input;                   /* our stdin, copied to the step's pty; -1 if none */
        int wake_fd;
        uint64_t timeout_at, kill_at, drain_until, tick_at;
        bool exited, timed_out;
        int wstatus;
};

static bool loop_streams_open(const struct loop *l) {
        return l->streams[0].from >= 0 || l->streams[1].from >= 0;
}

/* How long poll() may sleep: until the earliest deadline, or for ever. */
static int loop_wait_ms(const struct loop *l, uint64_t now) {
        uint64_t next = 0;
        if (l->timeout_at && !l->timed_out)
                next = l->timeout_at;
        if (l->kill_at && (!next || l->kill_at < next))
                next = l->kill_at;
        if (l->drain_until && (!next || l->drain_until < next))
                next = l->drain_until;
        if (l->tick_at && !l->exited && (!next || l->tick_at < next))
                next = l->tick_at;
        if (!next)
                return -1;
        return next > now ? (int) (next - now) : 0;
}

/* With a pty, what we read on stdin is typed into the step's terminal. */
static void loop_relay_input(struct loop *l) {
        char buf[4096];
        ssize_t n = read(l->input, buf, sizeof buf);
        if (n > 0)
                (void) write_all(l->c->pty_fd, buf, (size_t) n);
        else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (!isatty(l->input))
                        (void) write_all(l->c->pty_fd, "\x04", 1);   /* VEOF: end of input */
                l->input = -1;
        }
}

static void loop_forward_signals(struct loop *l) {
        struct signalfd_siginfo si;
        while (read(l->signal_fd, &si, sizeof si) == (ssize_t) sizeof si) {
                if ((int) si.ssi_signo == SIGCHLD)
                        continue;   /* reaped below */
                if ((int) si.ssi_signo == SIGWINCH) {
                        if (l->c->pty_fd >= 0)
                                pty_resize(l->c->pty_fd);
                        continue;
                }
                if (!l->exited)
                        child_signal(l->c, (int) si.ssi_signo);
        }
}

/* The step's end, its timers (renewals, --timeout's TERM then KILL), and the drain of output
 * that processes it left behind still hold open. */
static void loop_deadlines(struct loop *l, uint64_t now) {
        if (!l->exited) {
                pid_t group = l->c->pid;
                if (child_reap(l->c, &l->wstatus) > 0) {
                        l->exited = true;
                        /* the step is over: whatever it left running in its group had its
                         * secrets and would hold our pipes open (in a pid namespace the
                         * kernel has killed it already) */
                        if (!l->c->init)
                                (void) kill(-group, SIGKILL);
                        l->drain_until = now + DRAIN_AFTER_EXIT_MS;
                        l->kill_at = 0;
                }
        }
        if (!l->exited && l->tick_at && now >= l->tick_at)
                l->tick_at = l->timer->tick(l->timer->userdata, now);
        if (!l->exited && l->timeout_at && !l->timed_out && now >= l->timeout_at) {
                l->timed_out = true;
                child_signal(l->c, SIGTERM);
                child_signal(l->c, SIGCONT);   /* a stopped step must see TERM */
                l->kill_at = now + KILL_GRACE_MS;
        }
        if (!l->exited && l->kill_at && now >= l->kill_at) {
                child_kill(l->c);
                l->kill_at = 0;
        }
        if (l->exited && l->drain_until && now >= l->drain_until && loop_streams_open(l)) {
                log_warning("a process started by the step still holds its output open; not waiting for it");
                for (int i = 0; i < 2; i++)
                        if (l->streams[i].from >= 0)
                                stream_close(&l->streams[i]);
        }
}

static int loop_run(struct loop *l) {
        while (!l->exited || loop_streams_open(l)) {
                struct pollfd p[5] = {
                        { .fd = l->streams[0].from, .events = POLLIN },
                        { .fd = l->streams[1].from, .events = POLLIN },
                        { .fd = l->signal_fd, .events = POLLIN },
                        { .fd = l->exited ? -1 : l->input, .events = POLLIN },
                        { .fd = l->wake_fd, .events = POLLIN },
                };
                if (poll(p, 5, loop_wait_ms(l, now_monotonic_ms())) < 0 && errno != EINTR)
                        return -errno;
                for (int i = 0; i < 2; i++)
                        if (l->streams[i].from >= 0 && p[i].revents)
                                stream_pump(&l->streams[i]);
                if (p[4].revents)
                        l->timer->wake(l->timer->userdata);
                if (p[3].revents)
                        loop_relay_input(l);
                if (p[2].revents & POLLIN)
                        loop_forward_signals(l);
                if (l->timer && l->timer->after_output && (p[0].revents || p[1].revents))
                        l->timer->after_output(l->timer->userdata);
                loop_deadlines(l, now_monotonic_ms());
        }
        return 0;
}

int supervise(struct child *c, int signal_fd, uint64_t timeout_ms, const struct redactor *redactor,
              const struct supervise_timer *timer, struct supervise_result *ret) {
        uint64_t start = now_monotonic_ms();
        struct loop l = {
                .c = c, .signal_fd = signal_fd, .timer = timer,
                .streams = {
                        { .name = c->merged ? "stdout+stderr" : "stdout", .from = c->stdout_fd, .to = STDOUT_FILENO },
                        { .name = "stderr", .from = c->stderr_fd, .to = STDERR_FILENO },
                },
                .input = c->pty_fd >= 0 ? STDIN_FILENO : -1,
                .wake_fd = timer && timer->wake ? timer->wake_fd : -1,
                .timeout_at = timeout_ms ? start + timeout_ms : 0,
        };
        c->stdout_fd = c->stderr_fd = -1;   /* owned by the streams now */
        int k = 0;
        for (int i = 0; redactor && i < 2 && k >= 0; i++)
                k = redact_stream_new(redactor, &l.streams[i].filter);
        if (k >= 0) {
                l.tick_at = timer && timer->tick ? timer->tick(timer->userdata, start) : 0;
                k = loop_run(&l);
        }
        /* the streams' ends decide what they held back: on record with the rest */
        for (int i = 0; i < 2; i++)
                if (l.streams[i].from >= 0)
                        stream_close(&l.streams[i]);
        if (timer && timer->after_output)
                timer->after_output(timer->userdata);
        uint64_t leaks = 0;
        for (int i = 0; i < 2; i++) {
                if (l.streams[i].filter)
                        leaks += redact_stream_leak_count(l.streams[i].filter);
                redact_stream_free(l.streams[i].filter);
        }
        if (k < 0)
                return k;
        *ret = (struct supervise_result) { .wstatus = l.wstatus, .timed_out = l.timed_out, .leaks = leaks };
        return 0;
}
