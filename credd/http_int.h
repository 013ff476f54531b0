/*
 * http_int.h - what http.c shares with http_req.c, which sets up one
 * request's easy handle: the client and request structs. Private to
 * credd/http*.c.
 */
#ifndef CREDD_HTTP_INT_H
#define CREDD_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http.h"

/* CURLOPT_QUICK_EXIT came in 7.87.0; Debian 12 has 7.88.1. */
#if LIBCURL_VERSION_NUM < 0x075700
#error "credd needs libcurl 7.87.0 or later (CURLOPT_QUICK_EXIT)"
#endif

struct event_loop;
struct event_timer;
struct http_sock;
struct resolve;
struct resolve_query;

struct http_req {
	struct http *h;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *resolve; /* CURLOPT_RESOLVE: the name's addresses */
	struct resolve_query *rq;   /* waiting for a lookup, not in curl */
	char *host; /* what libcurl would look up, and its port */
	int port;
	bool is_literal;     /* an address: nothing to look up */
	bool is_idn;	     /* a non-ASCII name: libcurl's to look up */
	int64_t deadline;    /* loop ms: http_post_form + timeout */
	struct secret *body; /* request body, wiped when done */
	bool is_get;	     /* a GET: no body at all */
	char *buf;	     /* response body, NUL-terminated, wiped */
	size_t len, cap;
	bool is_over_cap;
	int64_t retry_after;
	int64_t max_age;   /* Cache-Control max-age, -1 if absent */
	uint64_t start_us; /* metrics_now_us at http_post_form */
	http_done_cb *cb;
	void *arg;
	struct http_req *prev, *next;
};

struct http {
	struct event_loop *ev;
	CURLM *multi;
	struct resolve *res;
	uint64_t ncurl_resolves; /* libcurl looked a name up itself */
	struct event_timer *timer;
	char *ca_file;
	char *proxy;
	int timeout_sec;
	size_t max_body;
	struct http_req *reqs;
	size_t ninflight;
	struct metrics_hist latency; /* see http_stats */
	int64_t last_ok, last_fail;
	int is_failing;
	int last_error;
	long last_status;
	struct http_sock *socks;     /* fds registered with the loop */
	struct http_req *completing; /* request whose callback runs */
	bool is_closing;
};

/*
 * http_req.c. Set req's headers (Content-Type, Accept, x-client-SKU, no
 * Expect, a new client-request-id; with bearer, Content-Type JSON and
 * "Authorization: Bearer TOKEN"), then every option of its easy handle
 * for url. 0 or -errno (-EINVAL when libcurl refuses an option).
 */
int http_req_headers(struct http_req *req, const struct secret *bearer);
/* Wipe every header line (one may carry a bearer token), then free them. */
void http_req_headers_free(struct http_req *req);
int http_req_setup(struct http *h, struct http_req *req, const char *url);
/* Wipe and free req's response body buffer. */
void http_req_buf_free(struct http_req *req);

#endif
