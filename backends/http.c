/* libcurl underneath the Vault backend: one easy handle per client (keep-alive between
 * requests), bounded bodies collected into secure buffers, bounded retries.
 *
 * libcurl is loaded with dlopen the first time a client is made: linked normally it pulls
 * about thirty shared libraries (TLS, Kerberos, LDAP, ...) into every start of secrets-run,
 * which cost milliseconds on each run whether or not it talks to Vault. */
#define CURL_DISABLE_TYPECHECK   /* the calls below go through function pointers */
#include <curl/curl.h>
#include <dlfcn.h>
#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdatomic.h>
#include <time.h>

#include "http-private.h"

#define HTTP_BACKOFF_FIRST_MS 100
#define HTTP_BACKOFF_MAX_MS 2000

struct http_client {
        CURL *curl;
        char *base_url;
        char *namespace_header;        /* "X-Vault-Namespace: ..." or NULL */
        char *ca_cert, *ca_path;
        char *client_cert, *client_key, *unix_socket;
        bool bearer;
        void (*note)(void *userdata, const char *line);
        void *note_userdata;
};

static void note(const struct http_client *c, const char *fmt, ...) _printf_(2, 3);
static void note(const struct http_client *c, const char *fmt, ...) {
        if (!c->note)
                return;
        char line[1024];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        c->note(c->note_userdata, line);
}

/* ---- jansson's allocator: every block remembers its size and is wiped before free, since
 * parsed responses and built login bodies hold secret values and credentials ---- */

#define JSON_HEADER 16   /* keeps the payload 16-byte aligned */

static void *wiping_malloc(size_t n) {
        if (n > SIZE_MAX - JSON_HEADER)
                return NULL;
        unsigned char *p = malloc(n + JSON_HEADER);
        if (!p)
                return NULL;
        memcpy(p, &n, sizeof n);
        return p + JSON_HEADER;
}

static void wiping_free(void *p) {
        if (!p)
                return;
        unsigned char *h = (unsigned char *) p - JSON_HEADER;
        size_t n;
        memcpy(&n, h, sizeof n);
        sodium_memzero(h, n + JSON_HEADER);
        free(h);
}

void backends_init(void) {
        /* Must run before the first json_t exists: a block from the default allocator
         * handed to wiping_free would be misread. */
        json_set_alloc_funcs(wiping_malloc, wiping_free);
}

/* ---- libcurl, loaded on first use ---- */

static struct {
        void *handle;
        CURLcode (*global_init)(long);
        CURL *(*easy_init)(void);
        CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
        CURLcode (*easy_perform)(CURL *);
        CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
        void (*easy_reset)(CURL *);
        void (*easy_cleanup)(CURL *);
        const char *(*easy_strerror)(CURLcode);
        struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
        void (*slist_free_all)(struct curl_slist *);
        /* optional (curl_multi_poll needs libcurl >= 7.66): without them http_request_many()
         * says -EOPNOTSUPP and callers fall back to one request at a time */
        CURLM *(*multi_init)(void);
        CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
        CURLMcode (*multi_add_handle)(CURLM *, CURL *);
        CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
        CURLMcode (*multi_perform)(CURLM *, int *);
        CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int, int *);
        CURLMsg *(*multi_info_read)(CURLM *, int *);
        CURLMcode (*multi_cleanup)(CURLM *);
        bool have_multi;
} curl_lib;

/* curl.h defines the two variadic calls as argument-count-checking macros */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init curl_lib.global_init
#define curl_easy_init curl_lib.easy_init
#define curl_easy_setopt curl_lib.easy_setopt
#define curl_easy_perform curl_lib.easy_perform
#define curl_easy_getinfo curl_lib.easy_getinfo
#define curl_easy_reset curl_lib.easy_reset
#define curl_easy_cleanup curl_lib.easy_cleanup
#define curl_easy_strerror curl_lib.easy_strerror
#define curl_slist_append curl_lib.slist_append
#define curl_slist_free_all curl_lib.slist_free_all
#define curl_multi_init curl_lib.multi_init
#define curl_multi_setopt curl_lib.multi_setopt
#define curl_multi_add_handle curl_lib.multi_add_handle
#define curl_multi_remove_handle curl_lib.multi_remove_handle
#define curl_multi_perform curl_lib.multi_perform
#define curl_multi_poll curl_lib.multi_poll
#define curl_multi_info_read curl_lib.multi_info_read
#define curl_multi_cleanup curl_lib.multi_cleanup

static int curl_load(void) {
        if (curl_lib.handle)
                return 0;
        void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return -ELIBACC;
        struct { const char *name; void **slot; } syms[] = {
                { "curl_global_init", (void **) &curl_lib.global_init },
                { "curl_easy_init", (void **) &curl_lib.easy_init },
                { "curl_easy_setopt", (void **) &curl_lib.easy_setopt },
                { "curl_easy_perform", (void **) &curl_lib.easy_perform },
                { "curl_easy_getinfo", (void **) &curl_lib.easy_getinfo },
                { "curl_easy_reset", (void **) &curl_lib.easy_reset },
                { "curl_easy_cleanup", (void **) &curl_lib.easy_cleanup },
                { "curl_easy_strerror", (void **) &curl_lib.easy_strerror },
                { "curl_slist_append", (void **) &curl_lib.slist_append },
                { "curl_slist_free_all", (void **) &curl_lib.slist_free_all },
        };
        for (size_t i = 0; i < ELEMENTSOF(syms); i++)
                if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
                        dlclose(h);
                        memset(&curl_lib, 0, sizeof curl_lib);
                        return -ELIBBAD;
                }
        struct { const char *name; void **slot; } optional[] = {
                { "curl_multi_init", (void **) &curl_lib.multi_init },
                { "curl_multi_setopt", (void **) &curl_lib.multi_setopt },
                { "curl_multi_add_handle", (void **) &curl_lib.multi_add_handle },
                { "curl_multi_remove_handle", (void **) &curl_lib.multi_remove_handle },
                { "curl_multi_perform", (void **) &curl_lib.multi_perform },
                { "curl_multi_poll", (void **) &curl_lib.multi_poll },
                { "curl_multi_info_read", (void **) &curl_lib.multi_info_read },
                { "curl_multi_cleanup", (void **) &curl_lib.multi_cleanup },
        };
        curl_lib.have_multi = true;
        for (size_t i = 0; i < ELEMENTSOF(optional); i++)
                if (!(*optional[i].slot = dlsym(h, optional[i].name)))
                        curl_lib.have_multi = false;
        if (curl_lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                dlclose(h);
                memset(&curl_lib, 0, sizeof curl_lib);
                return -ELIBBAD;
        }
        curl_lib.handle = h;
        return 0;
}

static char *escape(const char *s, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/'))
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        *o = '\0';
        return out;
}

char *http_url_escape(const char *s) {
        return escape(s, false);
}

char *http_path_escape(const char *path) {
        return escape(path, true);
}

int http_json_parse(const struct secret *body, json_t **ret) {
        json_error_t err;
        json_t *j = json_loadb((const char *) secret_data(body), secret_len(body), 0, &err);
        sodium_memzero(&err, sizeof err);   /* err.text may quote the input */
        if (!j)
                return -EBADMSG;
        *ret = j;
        return 0;
}

static int dump_to_secret(const char *buffer, size_t size, void *data) {
        return secret_append(data, buffer, size) < 0 ? -1 : 0;
}

int http_json_dump(const json_t *j, struct secret **ret) {
        _cleanup_secret_ struct secret *s = NULL;
        int r = secret_new(256, &s);
        if (r < 0)
                return r;
        if (json_dump_callback(j, dump_to_secret, s, JSON_COMPACT) < 0)
                return -ENOMEM;
        *ret = steal_pointer(&s);
        return 0;
}

/* ---- the client ---- */

struct http_client *http_client_free(struct http_client *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        free(c->base_url);
        free(c->namespace_header);
        free(c->ca_cert);
        free(c->ca_path);
        free(c->client_cert);
        free(c->client_key);
        free(c->unix_socket);
        free(c);
        return NULL;
}

int http_client_new(const struct http_options *o, struct http_client **ret) {
        _cleanup_(http_client_freep) struct http_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        size_t len = strlen(o->base_url);
        while (len > 0 && o->base_url[len - 1] == '/')
                len--;
        if (!(c->base_url = strndup(o->base_url, len)))
                return -ENOMEM;
        if (o->namespace_ && !(c->namespace_header = strdup_printf("X-Vault-Namespace: %s", o->namespace_)))
                return -ENOMEM;
        if (o->ca_cert && !(c->ca_cert = strdup(o->ca_cert)))
                return -ENOMEM;
        if (o->ca_path && !(c->ca_path = strdup(o->ca_path)))
                return -ENOMEM;
        if ((o->client_cert && !(c->client_cert = strdup(o->client_cert))) ||
            (o->client_key && !(c->client_key = strdup(o->client_key))) ||
            (o->unix_socket && !(c->unix_socket = strdup(o->unix_socket))))
                return -ENOMEM;
        c->bearer = o->bearer;
        c->note = o->note;
        c->note_userdata = o->note_userdata;
        int k = curl_load();
        if (k < 0)
                return k;   /* the caller names the backend: "libcurl (libcurl.so.4) is not installed" */
        if (!(c->curl = curl_easy_init()))
                return -ENOMEM;
        *ret = steal_pointer(&c);
        return 0;
}

struct body_state {
        struct secret *body;
        bool too_big;
};

static size_t collect_body(char *p, size_t size, size_t n, void *data) {
        struct body_state *b = data;
        size_t len = size * n;
        if (secret_len(b->body) + len > HTTP_MAX_BODY) {
                b->too_big = true;
                return 0;   /* curl stops with CURLE_WRITE_ERROR */
        }
        return secret_append(b->body, p, len) < 0 ? 0 : len;
}

/* What an attempt leaves for the next: where a redirect sends it. */
struct header_state {
        char *redirect_url;    /* a 301/302/307's Location, absolute (libcurl resolves it) */
};

/* Wipes the header copies curl_slist_append made (one holds the token) before freeing. */
static void headers_free(struct curl_slist *l) {
        for (struct curl_slist *i = l; i; i = i->next)
                sodium_memzero(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

static int build_headers(struct http_client *c, const struct secret *token, bool json_body,
                         struct curl_slist **ret) {
        struct curl_slist *l = NULL, *t;
#define ADD(s) do { if (!(t = curl_slist_append(l, (s)))) { headers_free(l); return -ENOMEM; } l = t; } while (0)
        if (!c->bearer)
                ADD("X-Vault-Request: true");
        ADD("Accept: application/json");
        if (json_body)
                ADD("Content-Type: application/json");
        if (c->namespace_header && !c->bearer)
                ADD(c->namespace_header);
        if (token) {
                _cleanup_secret_ struct secret *h = NULL;
                const char *prefix = c->bearer ? "Authorization: Bearer " : "X-Vault-Token: ";
                int r = secret_from_bytes(prefix, strlen(prefix), &h);
                if (r < 0 || (r = secret_append(h, secret_data(token), secret_len(token))) < 0 ||
                    (r = secret_append(h, "", 1)) < 0) {
                        headers_free(l);
                        return r;
                }
                ADD((const char *) secret_data(h));
        }
#undef ADD
        *ret = l;
        return 0;
}

static bool curl_error_is_transient(CURLcode e) {
        switch (e) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return true;
        default:
                return false;
        }
}

/* As Vault's own client (api/client.go DefaultRetryPolicy over go-retryablehttp's
 * baseRetryPolicy): 429, every 5xx but 501 (not implemented: Vault is not initialized), and
 * 412, which a performance standby answers until it has replicated the state a request
 * needs. */
static bool status_is_transient(long status) {
        return status == 412 || status == 429 || (status >= 500 && status <= 599 && status != 501);
}

/* api/client.go follows one redirect (301, 302, 307: a standby sends the client to the
 * active node), never from https to http. */
static bool status_is_redirect(long status) {
        return status == 301 || status == 302 || status == 307;
}

/* The first of Vault's errors in body, printable, for a retry's message ("Vault is
 * sealed"): Vault's error texts name paths, never values. NULL if none. */
static char *error_text(const struct secret *body) {
        json_t *j = NULL;
        if (!body || secret_len(body) == 0 || http_json_parse(body, &j) < 0)
                return NULL;
        json_t *e = json_array_get(json_object_get(j, "errors"), 0);
        char *s = json_is_string(e) && json_string_length(e) ? strndup(json_string_value(e), 120) : NULL;
        json_decref(j);
        for (char *p = s; p && *p; p++)
                if (!isprint((unsigned char) *p))
                        *p = '?';
        return s;
}

/* Set by backends_interrupt(): a transfer under way stops at its next progress call (libcurl
 * makes one at least every second), a retry's wait ends, and no attempt starts. */
static atomic_bool interrupted;

void backends_interrupt(bool on) {
        atomic_store(&interrupted, on);
}

static int progress_interrupt(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                              curl_off_t ulnow) {
        (void) userdata, (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
        return atomic_load(&interrupted) ? 1 : 0;
}

/* Waits ms, in slices, so that an interruption ends the wait. */
static void sleep_ms(uint64_t ms) {
        uint64_t end = now_monotonic_ms() + ms;
        for (uint64_t now = now_monotonic_ms(); now < end && !atomic_load(&interrupted); now = now_monotonic_ms()) {
                uint64_t slice = end - now < 50 ? end - now : 50;
                struct timespec ts = { .tv_sec = 0, .tv_nsec = (long) slice * 1000000L };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
}

/* Sets up one attempt on h (reset first). */
static void transfer_setup(struct http_client *c, CURL *h, const char *method, const char *url,
                           struct curl_slist *headers, const struct secret *body, struct body_state *bs,
                           struct header_state *hs, char *errbuf, uint64_t remaining_ms) {
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, bs);
        (void) hs;
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_interrupt);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) remaining_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) remaining_ms);
        if (c->ca_cert)
                curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_cert);
        if (c->ca_path)
                curl_easy_setopt(h, CURLOPT_CAPATH, c->ca_path);
        if (c->client_cert)
                curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
        if (c->client_key)
                curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
        if (c->unix_socket)
                curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
        if (body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *) secret_data(body));
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) secret_len(body));
        } else if (streq(method, "POST")) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        }
}

/* What a finished attempt means, by the retry rules: 1 = a final status (*ret_status), 0 = try
 * again after *ret_wait ms (*last says why), 2 = follow the redirect in hs->redirect_url now
 * (the first only: *redirected), < 0 = failed for good (*ret_why says why). */
static int transfer_outcome(CURL *h, CURLcode e, const char *method, const char *path, const char *url,
                            const struct body_state *bs, struct header_state *hs, const char *errbuf,
                            char **last, uint64_t *backoff, bool *redirected, long *ret_status, uint64_t *ret_wait,
                            char **ret_why) {
        uint64_t wait = 0;
        if (e == CURLE_WRITE_ERROR && bs->too_big)
                return backend_fail(ret_why, -EFBIG, "%s %s: the response is larger than %d bytes",
                                    method, path, HTTP_MAX_BODY);
        if (e != CURLE_OK) {
                free(*last);
                *last = strdup_printf("%s", errbuf[0] ? errbuf : curl_easy_strerror(e));
                if (!curl_error_is_transient(e))
                        return backend_fail(ret_why, -EIO, "%s %s: %s", method, path, *last ? *last : "request failed");
        } else {
                long status = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
                if (status_is_redirect(status) && !*redirected) {
                        char *to = NULL;
                        if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &to) != CURLE_OK || !to)
                                return backend_fail(ret_why, -EPROTO, "%s %s: HTTP %ld without a Location", method, path,
                                                    status);
                        if (strncasecmp(url, "https://", 8) == 0 && strncasecmp(to, "https://", 8) != 0)
                                return backend_fail(ret_why, -EPERM, "%s %s: HTTP %ld to a plain http:// address: refused (a protocol downgrade)",
                                                    method, path, status);
                        free(hs->redirect_url);
                        if (!(hs->redirect_url = strdup(to)))
                                return -ENOMEM;
                        *redirected = true;
                        return 2;
                }
                if (!status_is_transient(status)) {
                        *ret_status = status;
                        return 1;
                }
                _cleanup_free_ char *text = error_text(bs->body);
                free(*last);
                *last = strdup_printf("HTTP %ld%s%s", status, text ? ": " : "", text ? text : "");
                /* Retry-After in either of its forms (seconds, or an HTTP date): libcurl
                 * reads both (CURLINFO_RETRY_AFTER, 7.66) */
                curl_off_t after = 0;
                if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
                        wait = (uint64_t) after * 1000;
        }
        if (wait == 0) {
                /* exponential backoff with jitter: somewhere in [backoff/2, backoff] */
                wait = *backoff / 2 + randombytes_uniform((uint32_t) (*backoff / 2 + 1));
                *backoff = *backoff * 2 > HTTP_BACKOFF_MAX_MS ? HTTP_BACKOFF_MAX_MS : *backoff * 2;
        }
        *ret_wait = wait;
        return 0;
}

static int gave_up(char **ret_why, const char *method, const char *path, unsigned attempts, const char *last) {
        return backend_fail(ret_why, -ETIMEDOUT, "%s %s: gave up after %u attempt%s within the timeout (last: %s)",
                            method, path, attempts, attempts == 1 ? "" : "s", last ? last : "no answer");
}

int http_request(struct http_client *c, const char *method, const char *path,
                 const struct secret *token, const struct secret *body, uint64_t deadline_ms,
                 long *ret_status, struct secret **ret_body, char **ret_why) {
        _cleanup_free_ char *url = strdup_printf("%s%s", c->base_url, path);
        if (!url)
                return -ENOMEM;
        struct curl_slist *headers = NULL;
        int r = build_headers(c, token, body != NULL, &headers);
        if (r < 0)
                return r;

        _cleanup_free_ char *last = NULL;     /* why the previous attempt failed */
        uint64_t backoff = HTTP_BACKOFF_FIRST_MS;
        bool redirected = false;
        for (unsigned attempt = 1;; attempt++) {
                uint64_t now = now_monotonic_ms();
                if (atomic_load(&interrupted)) {
                        r = backend_fail(ret_why, -ECANCELED, "%s %s: interrupted", method, path);
                        break;
                }
                if (now >= deadline_ms) {
                        r = gave_up(ret_why, method, path, attempt - 1, last);
                        break;
                }
                _cleanup_secret_ struct secret *resp = NULL;
                if ((r = secret_new(1024, &resp)) < 0)
                        break;
                struct header_state hs = {};
                struct body_state bs = { .body = resp };
                char errbuf[CURL_ERROR_SIZE] = "";
                transfer_setup(c, c->curl, method, url, headers, body, &bs, &hs, errbuf, deadline_ms - now);
                CURLcode e = curl_easy_perform(c->curl);
                if (e == CURLE_ABORTED_BY_CALLBACK) {
                        r = backend_fail(ret_why, -ECANCELED, "%s %s: interrupted", method, path);
                        break;
                }
                uint64_t wait = 0;
                r = transfer_outcome(c->curl, e, method, path, url, &bs, &hs, errbuf, &last, &backoff, &redirected,
                                     ret_status, &wait, ret_why);
                if (r < 0)
                        break;
                if (r == 2) {
                        note(c, "%s %s: redirected to the active node, following", method, path);
                        free(url);
                        url = steal_pointer(&hs.redirect_url);
                        attempt--;
                        continue;
                }
                if (r > 0) {
                        *ret_body = steal_pointer(&resp);
                        r = 0;
                        break;
                }
                now = now_monotonic_ms();
                if (now + wait >= deadline_ms) {
                        r = gave_up(ret_why, method, path, attempt, last);
                        break;
                }
                note(c, "%s %s: %s, retrying in %" PRIu64 " ms", method, path, last ? last : "failed", wait);
                sleep_ms(wait);
        }
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        headers_free(headers);
        return r;
}

/* ---- many GETs at once: one easy handle per request on one multi handle (its connection
 * pool keeps connections alive between transfers) ---- */

struct transfer {
        CURL *h;
        char *url;
        const char *path;
        struct secret *resp;
        struct body_state bs;
        struct header_state hs;
        bool redirected;
        char errbuf[CURL_ERROR_SIZE];
        char *last;
        uint64_t backoff;
        unsigned attempts;
        uint64_t start_at;             /* monotonic: not before (a retry's wait) */
        bool running, done;
};

void http_result_done(struct http_result *r) {
        secret_free(r->body);
        free(r->why);
        *r = (struct http_result) {};
}

int http_get_many(struct http_client *c, const char *const *paths, size_t n, const struct secret *token,
                  uint64_t deadline_ms, unsigned max_connections, struct http_result *results) {
        if (!curl_lib.have_multi)
                return -EOPNOTSUPP;
        for (size_t i = 0; i < n; i++)
                results[i] = (struct http_result) {};
        if (n == 0)
                return 0;
        struct curl_slist *headers = NULL;
        int r = build_headers(c, token, false, &headers);
        if (r < 0)
                return r;
        CURLM *m = curl_multi_init();
        struct transfer *t = calloc(n, sizeof(*t));
        if (!m || !t) {
                r = -ENOMEM;
                goto finish;
        }
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long) max_connections);
        for (size_t i = 0; i < n; i++) {
                t[i].path = paths[i];
                t[i].backoff = HTTP_BACKOFF_FIRST_MS;
                if (!(t[i].h = curl_easy_init()) || !(t[i].url = strdup_printf("%s%s", c->base_url, paths[i]))) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        size_t left = n;
        while (left > 0) {
                uint64_t now = now_monotonic_ms();
                for (size_t i = 0; i < n; i++) {
                        struct transfer *x = &t[i];
                        if (x->done || x->running || x->start_at > now)
                                continue;
                        if (now >= deadline_ms) {
                                results[i].r = gave_up(&results[i].why, "GET", x->path, x->attempts, x->last);
                                x->done = true;
                                left--;
                                continue;
                        }
                        secret_free(x->resp);
                        x->resp = NULL;
                        if ((r = secret_new(1024, &x->resp)) < 0)
                                goto finish;
                        x->bs = (struct body_state) { .body = x->resp };
                        x->hs = (struct header_state) {};
                        x->errbuf[0] = '\0';
                        transfer_setup(c, x->h, "GET", x->url, headers, NULL, &x->bs, &x->hs, x->errbuf, deadline_ms - now);
                        if (curl_multi_add_handle(m, x->h) != CURLM_OK) {
                                r = -EIO;
                                goto finish;
                        }
                        x->running = true;
                        x->attempts++;
                }
                int still = 0;
                if (curl_multi_perform(m, &still) != CURLM_OK) {
                        r = -EIO;
                        goto finish;
                }
                CURLMsg *msg;
                int queued;
                while ((msg = curl_multi_info_read(m, &queued))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        CURL *h = msg->easy_handle;
                        CURLcode e = msg->data.result;
                        size_t i = 0;
                        while (i < n && t[i].h != h)
                                i++;
                        if (i == n)
                                continue;
                        struct transfer *x = &t[i];
                        curl_multi_remove_handle(m, h);
                        x->running = false;
                        uint64_t wait = 0;
                        int k = transfer_outcome(h, e, "GET", x->path, x->url, &x->bs, &x->hs, x->errbuf, &x->last,
                                                 &x->backoff, &x->redirected, &results[i].status, &wait,
                                                 &results[i].why);
                        if (k == 2) {
                                note(c, "GET %s: redirected to the active node, following", x->path);
                                free(x->url);
                                x->url = steal_pointer(&x->hs.redirect_url);
                                x->attempts--;
                                x->start_at = 0;
                                continue;
                        }
                        if (k == -ENOMEM) {
                                r = k;
                                goto finish;
                        }
                        if (k == 0) {
                                uint64_t t_now = now_monotonic_ms();
                                if (t_now + wait >= deadline_ms)
                                        k = gave_up(&results[i].why, "GET", x->path, x->attempts, x->last);
                                else {
                                        note(c, "GET %s: %s, retrying in %" PRIu64 " ms", x->path,
                                             x->last ? x->last : "failed", wait);
                                        x->start_at = t_now + wait;
                                        continue;
                                }
                        }
                        if (k > 0)
                                results[i].body = steal_pointer(&x->resp);
                        else
                                results[i].r = k;
                        x->done = true;
                        left--;
                }
                if (left == 0)
                        break;
                /* sleep until curl has something, or the next retry is due */
                now = now_monotonic_ms();
                uint64_t wake = deadline_ms > now ? deadline_ms - now : 0;
                for (size_t i = 0; i < n; i++)
                        if (!t[i].done && !t[i].running) {
                                if (t[i].start_at <= now)
                                        wake = 0;
                                else if (t[i].start_at - now < wake)
                                        wake = t[i].start_at - now;
                        }
                if (wake > 1000)
                        wake = 1000;
                if (wake > 0 && curl_multi_poll(m, NULL, 0, (int) wake, NULL) != CURLM_OK) {
                        r = -EIO;
                        goto finish;
                }
        }
        r = 0;
finish:
        for (size_t i = 0; t && i < n; i++) {
                if (t[i].h) {
                        if (t[i].running)
                                curl_multi_remove_handle(m, t[i].h);
                        curl_easy_cleanup(t[i].h);
                }
                free(t[i].url);
                free(t[i].last);
                secret_free(t[i].resp);
        }
        free(t);
        if (m)
                curl_multi_cleanup(m);
        headers_free(headers);
        if (r < 0)
                for (size_t i = 0; i < n; i++)
                        http_result_done(&results[i]);
        return r;
}
