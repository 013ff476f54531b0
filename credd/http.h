/*
 * http.h - HTTPS POSTs to the IdP on libcurl's multi interface, driven
 * by the event loop (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), so the
 * loop never waits on the network, nor on DNS: libcurl resolves in its own
 * threads, and a transfer ended mid-lookup detaches its resolver thread
 * (CURLOPT_QUICK_EXIT) instead of joining it on the loop.
 *
 * HTTPS only (CURLOPT_PROTOCOLS_STR "https", redirects off), certificate
 * and host checks always on (ca_file replaces the system bundle when
 * set), proxy only from config (never the environment), a per-request
 * timeout, and a response-body cap enforced in the write callback
 * (Debian's libcurl 7.88 does not stop bodies of unknown length with
 * CURLOPT_MAXFILESIZE). Bodies are kept in wiped buffers. CURLOPT_VERBOSE
 * stays off. Nothing here logs request or response bodies.
 *
 * Host names are looked up by resolve.c, off the loop, with a bounded
 * number of threads; a request waits for its lookup outside libcurl, so
 * http_cancel and http_free never wait for a DNS server.
 *
 * http.c drives the transfers, http_req.c sets up each request's easy
 * handle, http_form.c builds form bodies.
 */
#ifndef CREDD_HTTP_H
#define CREDD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct event_loop;
struct resolve_ops;
struct secret;
struct http;
struct http_req;

#define HTTP_BODY_MAX (256 * 1024)

struct http_options {
	const char *ca_file; /* NULL: system bundle */
	const char *proxy;   /* NULL: none (the environment is ignored) */
	int timeout_sec;     /* whole request, the name lookup included */
	size_t max_body;     /* 0: HTTP_BODY_MAX */
	const struct resolve_ops
	    *resolver; /* NULL: getaddrinfo; tests fake it */
};

struct http_response {
	long status; /* HTTP status; 0 if no response */
	int error; /* 0, or -errno: -ETIMEDOUT, -ECONNRESET, -EHOSTUNREACH (name lookup), -EMSGSIZE (body over cap), -EPROTO (TLS), -EIO */
	const char *error_msg; /* static/curl text for logs, never a body */
	struct secret *
	    body; /* may be NULL when error != 0; owned by http, valid during the callback */
	int64_t retry_after; /* Retry-After seconds, -1 if absent */
	int64_t max_age;     /* Cache-Control max-age seconds, -1 if absent (or
			    no-store / no-cache) */
};

/* Called once on the loop thread, unless the request was cancelled. */
typedef void http_done_cb(void *arg, const struct http_response *resp);

/*
 * 0 or -errno. Copies the options. -ENOTSUP (logged) when the libcurl
 * loaded at run time has no asynchronous resolver or no CURLOPT_QUICK_EXIT.
 */
int http_new(struct event_loop *ev, const struct http_options *opt,
    struct http **out);
/* Cancels every request in flight (their callbacks are not called). */
void http_free(struct http *h);

/*
 * POST application/x-www-form-urlencoded body to url (https only, else
 * -EPROTONOSUPPORT), with Accept: application/json and a fresh
 * client-request-id. Returns 0 and a handle valid until the callback
 * runs or http_cancel. The body is copied (and wiped after sending).
 */
int http_post_form(struct http *h, const char *url, const struct secret *body,
    http_done_cb *cb, void *arg, struct http_req **out);
/*
 * POST "{}" (Content-Type: application/json) to url with
 * "Authorization: Bearer TOKEN": Microsoft Graph actions (offboard.c).
 * The header line is wiped when the request ends. As http_post_form;
 * -EINVAL for an empty token or one with CR/LF.
 */
int http_post_bearer(struct http *h, const char *url,
    const struct secret *token, http_done_cb *cb, void *arg,
    struct http_req **out);
/*
 * GET url (https only) with Accept: application/json and no body: the
 * OpenID discovery document (discovery.c). As http_post_form.
 */
int http_get(struct http *h, const char *url, http_done_cb *cb, void *arg,
    struct http_req **out);
/* Cancel; *r set to NULL; the callback will not run. NULL-safe. */
void http_cancel(struct http *h, struct http_req **r);
/* Requests in flight (stats). */
size_t http_inflight(const struct http *h);

struct http_stats {
	size_t inflight;	   /* as http_inflight */
	size_t resolving;	   /* of those, waiting for a name lookup */
	uint64_t curl_resolves;	   /* names libcurl looked up itself (0) */
	unsigned resolver_threads; /* lookup threads alive (bounded) */
	uint64_t lookups;	   /* name lookups started */
	uint64_t stale_answers;	   /* stale addresses served meanwhile */
	/* Every exchange with the IdP, from the request to its answer (or
	 * failure), name lookup included; the metrics page. */
	struct metrics_hist latency;
	/* The last contact (unix s, 0: none yet): an answer below 500, or a
	 * failure (no answer, or a 5xx), with its -errno or HTTP status;
	 * is_failing: the most recent one was a failure. */
	int64_t last_ok, last_fail;
	int is_failing;
	int last_error;
	long last_status;
};
void http_get_stats(const struct http *h, struct http_stats *st);

/* Append k=v (both percent-encoded) to a form body, '&'-separated. 0 or -ENOMEM. */
int http_form_add(struct secret **form, const char *k, const char *v);

#endif
