/* Lease renewal while the step runs, on a thread of its own so a slow Vault does not pause
 * the step's output; its events are queued for the main thread, which writes the audit log. */
#include <pthread.h>
#include <sys/eventfd.h>

#include "run.h"

/* Lease renewal on a thread of its own while the step runs, so that a slow Vault does not
 * pause the step's output (the supervisor's loop relays it meanwhile). The thread does
 * nothing but renew: the backends are not touched by the main thread until it is joined,
 * and the events it produces are queued here, under the lock, for the main thread to write
 * (the audit log is not shared between threads), which the eventfd wakes. */
struct renewer {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;            /* on CLOCK_MONOTONIC: stop, or a renewal is due */
        bool stop;
        int event_fd;                   /* readable: events are queued */
        json_t *queue;                  /* [{event, fields}] */
};

/* The supervisor's timer while the step runs: leases (and login tokens) are renewed at
 * about two thirds of their TTL; returns the earliest next renewal, 0 if none. */
static uint64_t renew_leases(void *userdata, uint64_t now_ms) {
        struct run *r = userdata;
        return sources_renew(&r->sources, now_ms);
}

/* Writes what the renewal thread queued (on the main thread). */
static void renewer_drain(struct run *r, struct renewer *w) {
        uint64_t n;
        (void) !read(w->event_fd, &n, sizeof n);
        pthread_mutex_lock(&w->lock);
        json_t *queued = w->queue, *fresh = json_array();
        if (fresh)
                w->queue = fresh;
        pthread_mutex_unlock(&w->lock);
        if (!fresh)
                return;   /* left queued for the next wake-up */
        size_t i;
        json_t *item;
        json_array_foreach(queued, i, item)
                run_audit_record(r, json_string_value(json_object_get(item, "event")),
                                   json_incref(json_object_get(item, "fields")));
        json_decref(queued);
}

static void renewer_wake(void *userdata) {
        struct run *r = userdata;
        if (r->renewer)
                renewer_drain(r, r->renewer);
}

static void *renewer_main(void *userdata) {
        struct run *r = userdata;
        struct renewer *w = r->renewer;
        pthread_mutex_lock(&w->lock);
        while (!w->stop) {
                pthread_mutex_unlock(&w->lock);
                uint64_t next = renew_leases(r, now_monotonic_ms());
                pthread_mutex_lock(&w->lock);
                while (!w->stop && next) {
                        if (now_monotonic_ms() >= next)
                                break;
                        struct timespec at = { .tv_sec = (time_t) (next / 1000),
                                               .tv_nsec = (long) (next % 1000) * 1000000 };
                        (void) pthread_cond_timedwait(&w->cond, &w->lock, &at);
                }
                while (!w->stop && !next)
                        pthread_cond_wait(&w->cond, &w->lock);   /* nothing left to renew */
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Starts the renewal thread if any backend has something to renew (asking with now = 0 only
 * reports when, it renews nothing). 0 without a thread: nothing to renew; < 0: the caller
 * renews from the supervisor's loop instead. */
static int renewer_start_thread(struct run *r, struct renewer *w) {
        if (!renew_leases(r, 0))
                return 0;
        *w = (struct renewer) { .event_fd = -1 };
        pthread_condattr_t attr;
        int k = -pthread_condattr_init(&attr);
        if (k < 0)
                return k;
        (void) pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* now_monotonic_ms()'s clock */
        k = -pthread_cond_init(&w->cond, &attr);
        pthread_condattr_destroy(&attr);
        if (k < 0)
                return k;
        if ((k = -pthread_mutex_init(&w->lock, NULL)) < 0)
                goto out_cond;
        w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->event_fd < 0) {
                k = -errno;
                goto out_mutex;
        }
        if (!(w->queue = json_array())) {
                k = -ENOMEM;
                goto out_fd;
        }
        r->renewer = w;
        if ((k = -pthread_create(&w->thread, NULL, renewer_main, r)) < 0) {
                r->renewer = NULL;
                json_decref(w->queue);
                goto out_fd;
        }
        return 1;
out_fd:
        close(w->event_fd);
out_mutex:
        pthread_mutex_destroy(&w->lock);
out_cond:
        pthread_cond_destroy(&w->cond);
        return k;
}

void renewer_start(struct run *r, struct supervise_timer *ret_timer) {
        struct renewer *w = calloc(1, sizeof(*w));
        int threaded = w ? renewer_start_thread(r, w) : -ENOMEM;
        if (threaded <= 0)
                free(w);
        if (threaded < 0) {
                log_warning("lease renewal thread: %s; renewing from the output loop", strerror(-threaded));
                *ret_timer = (struct supervise_timer) { .tick = renew_leases, .userdata = r };
                return;
        }
        *ret_timer = (struct supervise_timer) { .wake = renewer_wake, .wake_fd = threaded > 0 ? w->event_fd : -1,
                                                .userdata = r };
}

bool renewer_queue(struct run *r, const char *event, json_t *fields) {
        struct renewer *w = r->renewer;
        if (!w)
                return false;
        json_t *item = fields ? json_pack("{s:s, s:o}", "event", event, "fields", fields) : NULL;
        pthread_mutex_lock(&w->lock);
        /* a record that could not even be queued is a failed write: NULL stands for it */
        json_array_append_new(w->queue, item ? item : json_null());
        pthread_mutex_unlock(&w->lock);
        uint64_t one = 1;
        (void) !write(w->event_fd, &one, sizeof one);
        return true;
}

/* Stops and joins the thread (a renewal under way is interrupted), then writes what it left
 * queued. */
void renewer_stop(struct run *r) {
        struct renewer *w = r->renewer;
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        /* a renewal waiting on a slow Vault is cut short: the step is over and its leases are
         * revoked next (a cancel in CI allows seconds, not a backend timeout) */
        backends_interrupt(true);
        pthread_join(w->thread, NULL);
        backends_interrupt(false);
        r->renewer = NULL;
        renewer_drain(r, w);
        json_decref(w->queue);
        close(w->event_fd);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
}
