/*
 * callback.c - the platform sign-in callback listener (see callback.h):
 * libmicrohttpd on credd's loop (mhd_loop.h), its socket from
 * msi_listen.c (the same bind, squatted-port retry, socket activation
 * and EMFILE pause as the SDK endpoint; no uid proof, any address), the
 * request target parsed by callback_parse.c, the pages.
 *
 * The raw target comes from MHD's URI log callback, before MHD splits
 * and unescapes the query, and is parsed there and then (as a GET; the
 * method is checked once the headers are in): nothing copies the raw
 * target, and the code alone is held, in a struct secret, until the
 * headers are in and the request is answered; it is wiped right after
 * ops->redeem. A request held open by slow headers holds at most
 * CALLBACK_CODE_MAX bytes of secret memory. MHD keeps its own copy of the request line in the connection's memory
 * pool, which it does not wipe: the code stays there until the pool is
 * reused (the same limit as the SDK endpoint's X-IDENTITY-HEADER).
 *
 * A redemption suspends its connection until ops->redeem's callback
 * runs, or until CALLBACK_REQUEST_TIMEOUT, whichever comes first; the
 * callback's record (struct cb_pend) outlives a request that went away,
 * because the broker has no way to cancel one.
 *
 * Must never: log, audit or echo the target, the code, the state or a
 * link id; put unescaped text into a page; or block the loop.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <jansson.h>
#include <microhttpd.h>

#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "callback.h"
#include "callback_parse.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "mhd_loop.h"
#include "msi_listen.h"
#include "reply.h"

enum rq_state {
	RQ_NEW,	   /* headers in, body (if any) being read */
	RQ_PARKED, /* suspended, waiting for the redemption */
	RQ_READY,  /* page built */
	RQ_QUEUED  /* page queued with MHD */
};

struct cb_pend;

/* One request (MHD's request context, from uri_cb). */
struct cb_req {
	struct callback *c;
	struct MHD_Connection *conn;
	struct callback_target t; /* parsed in uri_cb; cleared once used */
	int rc;			  /* callback_parse's answer */
	int is_started;		  /* access_cb has seen the headers */
	int has_body;
	int is_parking; /* inside ops->redeem */
	enum rq_state state;
	struct cb_pend *pend; /* the redemption out, or NULL */
	struct event_timer *deadline;
	unsigned status;
	char *body; /* malloc'd page */
	size_t bodylen;
	char *location;			      /* 302 */
	char peer[2 * INET6_ADDRSTRLEN + 16]; /* "ADDR" or "ADDR for ADDR" */
	LIST_ENTRY(cb_req) link;
};

/* A redemption's callback record: lives until ops' cb runs. */
struct cb_pend {
	struct callback *c; /* NULL once the listener is freed */
	struct cb_req *r;   /* NULL once the request went away */
	LIST_ENTRY(cb_pend) link;
};

struct callback {
	struct event_loop *ev;
	const struct callback_ops *ops;
	void *ctx;
	struct callback_limits lim;
	struct MHD_Daemon *d;
	struct mhd_loop ml;
	struct msi_listen *l;
	LIST_HEAD(, cb_req) reqs;
	LIST_HEAD(, cb_pend) pends;
	unsigned nconns;
	struct {
		uint64_t requests;
		uint64_t redirects;	 /* login links answered 302 */
		uint64_t links_unknown;	 /* 404: expired or used */
		uint64_t signed_in;	 /* redemptions that succeeded */
		uint64_t failed;	 /* redemptions that failed */
		uint64_t state_mismatch; /* unknown, used or expired state */
		uint64_t refused;	 /* malformed, 4xx from the parser */
		uint64_t timeouts;	 /* no answer within request_timeout */
		uint64_t refused_conns;	 /* over the connection limit */
	} n;
};

/* ---- pages ---- */

/* Append s to buf[*len], HTML-escaped, within cap (truncates). */
static void
put_esc(char *buf, size_t cap, size_t *len, const char *s)
{
	const char *e;
	char one[2] = { 0, 0 };
	size_t n;

	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			one[0] = (unsigned char)*s < 0x20 ? '?' : *s;
			e = one;
			break;
		}
		n = strlen(e);
		if (*len + n >= cap)
			return;
		memcpy(buf + *len, e, n);
		*len += n;
		buf[*len] = '\0';
	}
}

static void
put_raw(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= cap)
		return;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

#define PAGE_MAX 8192

/*
 * The page: title, then each of the paragraphs (escaped); link (escaped)
 * as the continue link when not NULL. Sets r's status and body.
 */
static void
page(struct cb_req *r, unsigned status, const char *title, const char *p1,
    const char *p2, const char *link)
{
	char *b;
	size_t n = 0;

	free(r->body);
	r->body = NULL;
	r->bodylen = 0;
	r->status = status;
	b = malloc(PAGE_MAX);
	if (b == NULL)
		return; /* answered without a body */
	b[0] = '\0';
	put_raw(b, PAGE_MAX, &n,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>");
	put_esc(b, PAGE_MAX, &n, title);
	put_raw(b, PAGE_MAX, &n, "</title></head><body><h1>");
	put_esc(b, PAGE_MAX, &n, title);
	put_raw(b, PAGE_MAX, &n, "</h1>\n<p>");
	put_esc(b, PAGE_MAX, &n, p1);
	put_raw(b, PAGE_MAX, &n, "</p>\n");
	if (p2 != NULL) {
		put_raw(b, PAGE_MAX, &n, "<p>");
		put_esc(b, PAGE_MAX, &n, p2);
		put_raw(b, PAGE_MAX, &n, "</p>\n");
	}
	if (link != NULL) {
		put_raw(b, PAGE_MAX, &n, "<p><a href=\"");
		put_esc(b, PAGE_MAX, &n, link);
		put_raw(b, PAGE_MAX, &n, "\">Continue to sign in</a></p>\n");
	}
	put_raw(b, PAGE_MAX, &n, "</body></html>\n");
	r->body = b;
	r->bodylen = n;
}

static void
page_unavailable(struct cb_req *r, const char *why)
{
	page(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in unavailable", why,
	    "Try again in a moment, or run credctl login again.", NULL);
}

/* ---- audit ---- */

static void
audit_refused(struct callback *c, const char *what, const char *peer)
{
	char reason[128];
	struct audit_event ev = {
		.event = "request_refused",
		.uid = (uid_t)-1,
		.op = "callback",
		.outcome = "refused",
		.reason = reason,
	};

	(void)snprintf(reason, sizeof(reason), "%s from %s", what, peer);
	audit_refusal(&ev, event_now_ms(c->ev));
}

/* ---- the redemption ---- */

static void
req_resume(struct cb_req *r)
{
	event_timer_cancel(r->c->ev, &r->deadline);
	r->state = RQ_READY;
	MHD_resume_connection(r->conn);
	mhd_loop_kick(&r->c->ml);
}

static void
pend_free(struct cb_pend *p)
{
	LIST_REMOVE(p, link);
	free(p);
}

/* The outcome's page on r. */
static void
redeemed(struct callback *c, struct cb_req *r, int rc, const char *user,
    const char *reason)
{
	char line[320];

	if (rc == 0) {
		c->n.signed_in++;
		(void)snprintf(line, sizeof(line), "Signed in as %s.",
		    user != NULL ? user : "your account");
		page(r, MHD_HTTP_OK, "Signed in", line,
		    "You can close this window and go back to your session.",
		    NULL);
		return;
	}
	if (rc == -ENOENT) {
		c->n.state_mismatch++;
		audit_refused(c, "state mismatch", r->peer);
		page(r, MHD_HTTP_BAD_REQUEST, "Sign-in link not valid",
		    "This sign-in link is not valid any more: it was "
		    "already used, or it expired.",
		    "Run credctl login again to get a new one.", NULL);
		return;
	}
	c->n.failed++;
	(void)snprintf(line, sizeof(line), "Sign-in failed: %s",
	    reason != NULL ? reason : strerror(-rc));
	page(r, MHD_HTTP_FORBIDDEN, "Sign-in failed", line,
	    "Run credctl login to try again.", NULL);
}

/* ops->redeem's callback: once, on the loop. */
static void
redeem_done(void *arg, int rc, const char *user, const char *reason)
{
	struct cb_pend *p = arg;
	struct cb_req *r = p->r;

	if (p->c == NULL) { /* the listener is gone */
		free(p);
		return;
	}
	if (r != NULL) {
		r->pend = NULL;
		redeemed(p->c, r, rc, user, reason);
		if (r->is_parking)
			r->state =
			    RQ_READY; /* inside ops->redeem: not suspended */
		else if (r->state == RQ_PARKED)
			req_resume(r);
	} else if (rc == -ENOENT) {
		p->c->n.state_mismatch++;
	} else if (rc == 0) {
		p->c->n.signed_in++;
	} else {
		p->c->n.failed++;
	}
	pend_free(p);
}

static void
deadline_cb(struct event_loop *ev, void *arg)
{
	struct cb_req *r = arg;

	(void)ev;
	r->deadline = NULL;
	if (r->pend != NULL) {
		r->pend->r = NULL; /* its outcome is counted, not shown */
		r->pend = NULL;
	}
	r->c->n.timeouts++;
	page(r, MHD_HTTP_GATEWAY_TIMEOUT, "Sign-in still running",
	    "The sign-in is taking longer than expected.",
	    "Run credctl status in your session to see whether it "
	    "completed.",
	    NULL);
	req_resume(r);
}

static void
do_redeem(struct callback *c, struct cb_req *r, const struct callback_target *t)
{
	struct cb_pend *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		page_unavailable(r, "credd is out of memory.");
		return;
	}
	p->c = c;
	p->r = r;
	LIST_INSERT_HEAD(&c->pends, p, link);
	r->pend = p;
	r->state = RQ_PARKED;
	r->is_parking = 1;
	rc = c->ops->redeem(c->ctx, t->state, t->code,
	    t->has_error ? t->error : NULL,
	    t->has_error && t->error_desc[0] != '\0' ? t->error_desc : NULL,
	    t->iss[0] != '\0' ? t->iss : NULL, redeem_done, p);
	r->is_parking = 0;
	if (rc < 0) {
		r->pend = NULL;
		pend_free(p);
		r->state = RQ_READY;
		if (rc == -ENOENT)
			redeemed(c, r, rc, NULL, NULL);
		else if (rc == -EPROTO)
			page_unavailable(r,
			    "This answer was sent by another identity "
			    "provider; nothing was redeemed.");
		else
			page_unavailable(r,
			    "The sign-in could not be "
			    "completed here.");
		return;
	}
	if (r->state != RQ_PARKED)
		return; /* answered before redeem returned */
	MHD_suspend_connection(r->conn);
	r->deadline = event_timer_in(c->ev,
	    (int64_t)c->lim.request_timeout * 1000, deadline_cb, r);
}

/* ---- a request ---- */

static int
is_url(const char *u)
{
	size_t i;

	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		return 0;
	for (i = 0; u[i] != '\0'; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return 0;
	return i < 8192;
}

/* A link's answer on r (url borrowed). */
static void
linked(struct callback *c, struct cb_req *r, int rc, const char *url)
{
	if (rc == -ENOENT) {
		c->n.links_unknown++;
		audit_refused(c, "unknown sign-in link", r->peer);
		page(r, MHD_HTTP_NOT_FOUND, "Sign-in link expired",
		    "This sign-in link has expired or was already used.",
		    "Run credctl login again to get a new one.", NULL);
	} else if (rc < 0 || url == NULL || !is_url(url)) {
		if (rc == 0)
			log_warnx("callback: the sign-in link's address is "
				  "not a URL; not redirecting");
		page_unavailable(r, "The sign-in link could not be opened.");
	} else {
		c->n.redirects++;
		page(r, MHD_HTTP_FOUND, "Continue to sign in",
		    "Your browser should go on to the sign-in page.", NULL,
		    url);
		free(r->location);
		r->location = strdup(url);
		if (r->location == NULL)
			page_unavailable(r, "credd is out of memory.");
	}
}

/* ops->link's later answer (cluster): once, on the loop. */
static void
link_done(void *arg, int rc, const char *url)
{
	struct cb_pend *p = arg;
	struct cb_req *r = p->r;

	if (p->c == NULL) { /* the listener is gone */
		free(p);
		return;
	}
	if (r != NULL) { /* else the page (504) is gone: nothing to do */
		r->pend = NULL;
		linked(p->c, r, rc, url);
		if (r->state == RQ_PARKED)
			req_resume(r);
	}
	pend_free(p);
}

static void
do_login(struct callback *c, struct cb_req *r, const char *id)
{
	struct cb_pend *p;
	char *url = NULL;
	int rc;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		page_unavailable(r, "credd is out of memory.");
		return;
	}
	p->c = c;
	p->r = r;
	rc = c->ops->link(c->ctx, id, &url, link_done, p);
	if (rc != -EINPROGRESS) {
		free(p);
		linked(c, r, rc, url);
		free(url);
		return;
	}
	/* Looked up in the store (cluster): parked as a redemption is. */
	LIST_INSERT_HEAD(&c->pends, p, link);
	r->pend = p;
	r->state = RQ_PARKED;
	MHD_suspend_connection(r->conn);
	r->deadline = event_timer_in(c->ev,
	    (int64_t)c->lim.request_timeout * 1000, deadline_cb, r);
}

/* Parse and answer a request whose headers (and no body) are in. */
static void
handle(struct callback *c, struct cb_req *r, const char *method)
{
	struct callback_target *t = &r->t;
	int is_get, is_head;

	r->state = RQ_READY;
	is_get = method != NULL && strcmp(method, "GET") == 0;
	is_head = method != NULL && strcmp(method, "HEAD") == 0;
	if (r->has_body) {
		c->n.refused++;
		page(r, MHD_HTTP_BAD_REQUEST, "Bad request",
		    "A sign-in request has no body.", NULL, NULL);
	} else if (!is_get && !is_head && t->status != 404) {
		/* callback_parse's order: the path, then the method. */
		c->n.refused++;
		page(r, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
		    "only GET is served", NULL, NULL);
	} else if (r->rc < 0) {
		c->n.refused++;
		page(r, t->status,
		    t->status == 404 ? "Not found" : "Bad request", t->why,
		    NULL, NULL);
	} else if (is_head)
		page(r, MHD_HTTP_OK, "Sign-in",
		    "Open this address with GET to continue.", NULL, NULL);
	else if (t->kind == CALLBACK_LOGIN)
		do_login(c, r, t->id);
	else
		do_redeem(c, r, t);
	callback_target_clear(t); /* the code is wiped here */
}

static const char *const sec_headers[][2] = {
	{ MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8" },
	{ MHD_HTTP_HEADER_CACHE_CONTROL, "no-store" },
	{ MHD_HTTP_HEADER_PRAGMA, "no-cache" },
	{ "Referrer-Policy", "no-referrer" },
	{ "X-Content-Type-Options", "nosniff" },
	{ "X-Frame-Options", "DENY" },
	{ "Content-Security-Policy",
	    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
	    "form-action 'none'" },
};

static enum MHD_Result
queue(struct cb_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	size_t i;

	r->state = RQ_QUEUED;
	resp = MHD_create_response_from_buffer_with_free_callback(r->bodylen,
	    r->body, free);
	if (resp == NULL)
		return MHD_NO;
	r->body = NULL; /* transferred */
	for (i = 0; i < sizeof(sec_headers) / sizeof(sec_headers[0]); i++)
		(void)MHD_add_response_header(resp, sec_headers[i][0],
		    sec_headers[i][1]);
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    "GET, HEAD");
	if (r->location != NULL &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
		r->location) != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ok = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	log_debug("callback: %s -> %u", r->peer, r->status);
	return ok;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t sz);

static void
peer_text(struct MHD_Connection *conn, char *buf, size_t sz)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		(void)snprintf(buf, sz, "unknown");
	else
		addr_text(ci->client_addr, buf, sz);
}

/*
 * Behind the reverse proxy every peer is the proxy: the audit names the
 * browser too when the last X-Forwarded-For entry (the one the proxy
 * added; earlier ones are the client's word) is an IP literal. Nothing
 * else is taken from it.
 */
static void
add_forwarded(struct MHD_Connection *conn, char *peer, size_t sz)
{
	unsigned char bin[sizeof(struct in6_addr)];
	const char *v, *last;
	char a[INET6_ADDRSTRLEN];
	size_t n, used;

	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "X-Forwarded-For");
	if (v == NULL)
		return;
	last = strrchr(v, ',');
	last = last != NULL ? last + 1 : v;
	last += strspn(last, " \t");
	n = strcspn(last, " \t");
	if (n == 0 || n >= sizeof(a) || last[n] != '\0')
		return;
	memcpy(a, last, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, bin) != 1 && inet_pton(AF_INET6, a, bin) != 1)
		return;
	used = strlen(peer);
	(void)snprintf(peer + used, sz - used, " for %s", a);
}

/* The headers say a body follows (any length but 0, or chunked). */
static int
announces_body(struct MHD_Connection *conn)
{
	const char *cl, *te;

	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	return te != NULL || (cl != NULL && strcmp(cl, "0") != 0);
}

/* MHD: a request line arrived; its raw target, before any unescaping. */
static void *
uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct callback *c = cls;
	struct cb_req *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL; /* access_cb drops the connection */
	r->c = c;
	r->conn = conn;
	/* As a GET: handle() checks the method once it is known. */
	r->rc = callback_parse("GET", uri, &r->t);
	peer_text(conn, r->peer, sizeof(r->peer));
	c->n.requests++;
	LIST_INSERT_HEAD(&c->reqs, r, link);
	return r;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct callback *c = cls;
	struct cb_req *r = *con_cls;

	(void)url;
	(void)version;
	(void)upload_data;
	if (r == NULL)
		return MHD_NO; /* out of memory in uri_cb */
	if (!r->is_started) {
		r->is_started = 1;
		add_forwarded(conn, r->peer, sizeof(r->peer));
		if (!announces_body(conn))
			return MHD_YES; /* called again for the end */
		/* Refused before a byte of it is read: a body trickled in
		 * slowly would otherwise hold the connection past any
		 * timeout. MHD closes the connection after this answer. */
		r->has_body = 1;
		handle(c, r, method);
		return queue(r);
	}
	if (*upload_data_size > 0) {
		r->has_body = 1; /* refused at the end; never kept */
		*upload_data_size = 0;
		return MHD_YES;
	}
	switch (r->state) {
	case RQ_NEW:
		handle(c, r, method);
		if (r->state == RQ_PARKED)
			return MHD_YES;
		return queue(r);
	case RQ_READY:
		return queue(r);
	case RQ_PARKED:
	case RQ_QUEUED:
		break;
	}
	return MHD_YES;
}

static void
req_free(struct cb_req *r)
{
	if (r == NULL)
		return;
	if (r->pend != NULL)
		r->pend->r = NULL;
	event_timer_cancel(r->c->ev, &r->deadline);
	LIST_REMOVE(r, link);
	callback_target_clear(&r->t);
	free(r->body);
	free(r->location);
	free(r);
}

/* mhd_loop_completed's hook. */
static void
req_free_cb(void *r)
{
	req_free(r);
}

static void
notify_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct callback *c = cls;

	(void)conn;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		c->nconns++;
	else
		c->nconns--;
}

/* The peer's address as text (for the audit), "unknown" when not IP. */
static void
addr_text(const struct sockaddr *sa, char *buf, size_t sz)
{
	const void *a = NULL;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a == NULL ||
	    inet_ntop(sa->sa_family, a, buf, (socklen_t)sz) == NULL)
		(void)snprintf(buf, sz, "unknown");
}

/*
 * msi_listen's accept: nothing proven. Over the total it is closed here,
 * over the per-address limit by MHD; both audited (coalesced).
 */
static void
conn_cb(void *arg, int fd, const struct sockaddr *peer, socklen_t peerlen,
    uid_t uid, const char *unproven)
{
	struct callback *c = arg;
	char a[INET6_ADDRSTRLEN + 8];

	(void)uid;
	(void)unproven;
	if (c->nconns >= c->lim.max_conns) {
		c->n.refused_conns++;
		addr_text(peer, a, sizeof(a));
		audit_refused(c, "over the connection limit", a);
		close(fd);
		return;
	}
	/* MHD owns fd from here, and closes it when it refuses. */
	if (MHD_add_connection(c->d, fd, peer, peerlen) != MHD_YES) {
		c->n.refused_conns++;
		addr_text(peer, a, sizeof(a));
		audit_refused(c, "over the per-address limit", a);
	}
	mhd_loop_kick(&c->ml);
}

/* ---- life ---- */

static void
callback_spec(const char *listen, struct msi_listen_spec *sp)
{
	sp->listen = listen;
	sp->key = "[callback] listen";
	sp->fdname = CALLBACK_LISTEN_FDNAME;
	sp->tag = "callback";
	sp->what = "sign-in callback";
	sp->event = "callback";
	sp->path = CALLBACK_REDIRECT_PATH;
	sp->unit = "credd-callback.socket";
	sp->doc = "docs/signin.md";
	sp->is_public = 1;
}

int
callback_listen_open(const struct config *cf, const int *fds,
    char *const *names, size_t nfds, struct msi_listen_sock *out, int *used,
    char *err, size_t errsz)
{
	struct msi_listen_spec sp;

	callback_spec(cf->callback_listen, &sp);
	return msi_listen_open_spec(&sp, fds, names, nfds, out, used, err,
	    errsz);
}

int
callback_new(struct event_loop *ev, const struct msi_listen_sock *sock,
    const char *listen, const struct callback_ops *ops, void *ctx,
    const struct callback_limits *lim, struct callback **out)
{
	struct MHD_OptionItem opts[MHD_LOOP_LIMITS_N];
	struct msi_listen_spec sp;
	struct callback *c;
	int r = -ENOMEM;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->ev = ev;
	c->ops = ops;
	c->ctx = ctx;
	c->ml.epfd = -1;
	c->ml.req_free = req_free_cb;
	LIST_INIT(&c->reqs);
	LIST_INIT(&c->pends);
	if (lim != NULL)
		c->lim = *lim;
	else
		c->lim = (struct callback_limits){ CALLBACK_MAX_CONNS,
			CALLBACK_MAX_CONNS_PER_PEER, CALLBACK_CONN_TIMEOUT,
			CALLBACK_REQUEST_TIMEOUT };
	mhd_loop_limits(opts, c->lim.conn_timeout,
	    (size_t)CALLBACK_MEMORY_LIMIT, c->lim.max_conns,
	    c->lim.max_conns_per_peer);
	c->d = MHD_start_daemon(MHD_LOOP_FLAGS, 0, NULL, NULL, access_cb, c,
	    MHD_OPTION_ARRAY, opts, MHD_OPTION_URI_LOG_CALLBACK, uri_cb, c,
	    MHD_OPTION_NOTIFY_COMPLETED, mhd_loop_completed, &c->ml,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_cb, c, MHD_OPTION_END);
	r = -EIO;
	if (c->d == NULL)
		goto fail;
	r = mhd_loop_start(&c->ml, ev, c->d);
	if (r < 0)
		goto fail;
	/* Last: it takes sock->fd (and closes it when it fails). */
	callback_spec(listen, &sp);
	r = msi_listen_new_spec(ev, &sp, sock, conn_cb, c, &c->l);
	if (r < 0)
		goto fail_listen;
	*out = c;
	return 0;
fail:
	if (sock->fd >= 0)
		close(sock->fd);
fail_listen:
	if (c != NULL) {
		mhd_loop_close(&c->ml, c->d);
		free(c);
	}
	return r;
}

void
callback_free(struct callback *c)
{
	struct cb_pend *p;
	struct cb_req *r;

	if (c == NULL)
		return;
	msi_listen_free(c->l); /* no new connections from here */
	/* MHD cannot stop with suspended connections: answer them first. */
	LIST_FOREACH(r, &c->reqs, link)
	{
		if (r->state != RQ_PARKED)
			continue;
		page_unavailable(r, "credd is shutting down.");
		event_timer_cancel(c->ev, &r->deadline);
		r->state = RQ_READY;
		MHD_resume_connection(r->conn);
	}
	/* Outcomes still out: their records wait for the broker's cb. */
	while ((p = LIST_FIRST(&c->pends)) != NULL) {
		LIST_REMOVE(p, link);
		if (p->r != NULL)
			p->r->pend = NULL;
		p->c = NULL;
		p->r = NULL;
	}
	mhd_loop_close(&c->ml, c->d); /* completes (frees) every request */
	free(c);
}

int
callback_is_up(const struct callback *c)
{
	return c != NULL && msi_listen_is_up(c->l);
}

int
callback_report(const struct callback *c, json_t *o, int is_stats)
{
	const struct msi_listen_count n[] = {
		{ "connections_open", c != NULL ? c->nconns : 0 },
		{ "connections_refused", c != NULL ? c->n.refused_conns : 0 },
		{ "requests", c != NULL ? c->n.requests : 0 },
		{ "redirects", c != NULL ? c->n.redirects : 0 },
		{ "links_unknown", c != NULL ? c->n.links_unknown : 0 },
		{ "signed_in", c != NULL ? c->n.signed_in : 0 },
		{ "failed", c != NULL ? c->n.failed : 0 },
		{ "state_mismatch", c != NULL ? c->n.state_mismatch : 0 },
		{ "refused", c != NULL ? c->n.refused : 0 },
		{ "timeouts", c != NULL ? c->n.timeouts : 0 },
	};

	return msi_listen_report_in(c != NULL ? c->l : NULL, c != NULL, o,
	    "callback", is_stats, n, sizeof(n) / sizeof(n[0]));
}
