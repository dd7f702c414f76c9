/* A small HTTP(S) client for the network backends (Vault): JSON requests with retries and a
 * total deadline, response bodies kept in secure buffers. Private to backends/. */
#pragma once

#include <jansson.h>

#include "backend-private.h"

#define HTTP_MAX_BODY (1024 * 1024)

struct http_client;

struct http_options {
        const char *base_url;          /* "https://vault.example:8200", no trailing path */
        const char *namespace_;        /* X-Vault-Namespace; NULL if none */
        const char *ca_cert, *ca_path; /* extra trust; TLS verification is always on */
        const char *client_cert, *client_key;   /* PEM files: a TLS client certificate; NULL: none */
        const char *unix_socket;       /* connect here instead (base_url names no host then) */
        bool bearer;                   /* not Vault: the token goes in Authorization: Bearer,
                                        * no X-Vault-* headers */
        /* Told of each retry, one line naming method, path and cause (never a value or a
         * token), since this client prints nothing; NULL: nobody is told. */
        void (*note)(void *userdata, const char *line);
        void *note_userdata;
};

int http_client_new(const struct http_options *o, struct http_client **ret);
struct http_client *http_client_free(struct http_client *c);
static inline void http_client_freep(struct http_client **c) { http_client_free(*c); }
#define _cleanup_http_client_ _cleanup_(http_client_freep)

/* One request to base_url + path ("/v1/..."; "" for base_url itself), retried as Vault's own
 * client retries (connection errors, 412, 429 honouring Retry-After, every 5xx but 501) with
 * exponential backoff and jitter until deadline_ms (monotonic); one redirect (301, 302,
 * 307) followed, never from https to http. token (may be NULL) goes in X-Vault-Token; body (may be NULL) is sent as the
 * JSON request body of a POST. The final status and the response body are returned; a
 * non-retryable HTTP status is not an error here. *ret_why never holds a value or token. */
int http_request(struct http_client *c, const char *method, const char *path,
                 const struct secret *token, const struct secret *body, uint64_t deadline_ms,
                 long *ret_status, struct secret **ret_body, char **ret_why);

/* The outcome of one request of http_get_many(): r < 0 with why (never a value or token), or
 * the final status and body. */
struct http_result {
        int r;
        long status;
        struct secret *body;
        char *why;
};
void http_result_done(struct http_result *r);

/* GETs base_url + paths[i] for all i at once (at most max_connections connections to the
 * host, kept alive), each with http_request's retry rules and body cap, all until
 * deadline_ms. results[i] gets each outcome. Returns < 0 only if nothing could be done
 * (-EOPNOTSUPP: this libcurl has no multi interface; -ENOMEM); results are then empty. */
int http_get_many(struct http_client *c, const char *const *paths, size_t n, const struct secret *token,
                  uint64_t deadline_ms, unsigned max_connections, struct http_result *results);

/* Percent-encodes s for a URL query (RFC 3986 unreserved characters stay); malloc'd. */
char *http_url_escape(const char *s);
/* The same for a path: each segment escaped, the '/' between them kept ("a b/c" -> "a%20b/c"). */
char *http_path_escape(const char *path);

/* Parses a response body (it may hold secret values: jansson's allocator wipes on free). */
int http_json_parse(const struct secret *body, json_t **ret);
/* Serializes j (which may hold credentials) into a secure buffer. */
int http_json_dump(const json_t *j, struct secret **ret);
