/*
 * callback.h - the platform sign-in callback listener ([callback]
 * listen, issue 13): plain HTTP behind the platform's reverse proxy,
 * libmicrohttpd on credd's loop, serving two pages (callback_parse.h):
 *   GET /entra/login/<id>   a short sign-in link: 302 to the authorize
 *     URL that ops->link gives for id (single use), or 404 "this link
 *     has expired or was already used; run credctl login again";
 *   GET /entra/callback?... where Entra sends the browser back: the
 *     state and the code (or error) go to ops->redeem, and the page
 *     says what came of it once its callback runs: signed in as USER,
 *     failed: REASON, or "this sign-in link is not valid any more" for
 *     a state nobody knows (audited with the peer address).
 * HEAD answers the headers and changes nothing (a link preview must not
 * use up a link). Every answer carries Cache-Control: no-store,
 * Referrer-Policy: no-referrer, X-Content-Type-Options: nosniff,
 * X-Frame-Options: DENY and a Content-Security-Policy of
 * default-src 'none'.
 *
 * The broker is reached only through struct callback_ops (the lead
 * plugs broker_signin_link/broker_signin_redeem in through
 * callback_broker.c), so this file has unit tests with a fake.
 *
 * Bounds: CALLBACK_MAX_CONNS connections, CALLBACK_MAX_CONNS_PER_PEER
 * from one address (a reverse proxy is one address: its limit is the
 * total's), CALLBACK_CONN_TIMEOUT s of silence (slowloris),
 * CALLBACK_REQUEST_TIMEOUT s for a redemption before the page says so,
 * CALLBACK_MEMORY_LIMIT bytes of request line and headers, no body.
 *
 * Must never: log or audit a code, a state or a link id; answer a page
 * that a browser may cache, frame or pass on as a Referer; call the
 * ops for a HEAD request; or block the loop.
 */
#ifndef CREDD_CALLBACK_H
#define CREDD_CALLBACK_H

#include <stddef.h>
#include <jansson.h>

struct callback;
struct config;
struct event_loop;
struct msi_listen_sock;
struct secret;

#define CALLBACK_LISTEN_FDNAME "credd-callback" /* LISTEN_FDNAMES */
#define CALLBACK_MAX_CONNS 256
#define CALLBACK_MAX_CONNS_PER_PEER 64
#define CALLBACK_CONN_TIMEOUT 10    /* s of silence before a drop */
#define CALLBACK_REQUEST_TIMEOUT 60 /* s for a redemption's answer */
#define CALLBACK_MEMORY_LIMIT (32 * 1024)

/*
 * A redemption's outcome, once, on the loop thread: r 0 with the Unix
 * user signed in, or -errno with reason (a sentence for the user; NULL
 * for none); -ENOENT: the state is unknown, used or expired.
 */
typedef void callback_done_cb(void *arg, int r, const char *user,
    const char *reason);

/* A short link's authorize URL looked up later (ops->link). */
typedef void callback_link_cb(void *arg, int r, const char *url);

struct callback_ops {
	/* A link id's authorize URL (*url malloc'd); single use;
	 * -ENOENT when unknown, used or expired; -EINPROGRESS: cb runs
	 * once later (never before this returns) with 0 and the URL
	 * (borrowed for the call), or -errno and NULL. */
	int (*link)(void *ctx, const char *id, char **url, callback_link_cb *cb,
	    void *arg);
	/*
	 * Redeem state with code (err NULL), or report err and err_desc
	 * (code NULL); iss: the answer's RFC 9207 issuer, or NULL. Every
	 * argument is borrowed for the call. 0: cb runs once later (or
	 * before this returns); -ENOENT: unknown, used or expired state;
	 * -EPROTO: iss is not the discovered issuer (nothing redeemed);
	 * other -errno: failed. cb is not run on failure.
	 */
	int (*redeem)(void *ctx, const char *state, const struct secret *code,
	    const char *err, const char *err_desc, const char *iss,
	    callback_done_cb *cb, void *arg);
};

/* Limits (tests shrink them); callback_new with NULL takes the above. */
struct callback_limits {
	unsigned max_conns;
	unsigned max_conns_per_peer;
	unsigned conn_timeout;	  /* s */
	unsigned request_timeout; /* s */
};

/*
 * Find the listener's socket for cf->callback_listen before privileges
 * are dropped, as msi_listen_open does for the SDK endpoint: the passed
 * socket named CALLBACK_LISTEN_FDNAME or listening on that address, else
 * bound here. *used: the passed fd taken, or -1. 0 (out->fd -1 with the
 * listener off), or -errno with out->err and err: it starts down and
 * binds again on a timer.
 */
int callback_listen_open(const struct config *cf, const int *fds,
    char *const *names, size_t nfds, struct msi_listen_sock *out, int *used,
    char *err, size_t errsz);

/*
 * Serve on sock (taken over; -1 starts down and retries binding listen,
 * "ADDR:PORT"). ops and ctx are borrowed and must outlive the listener;
 * lim NULL: the defaults. 0, -EINVAL, -ENOMEM or -EIO (MHD refused).
 */
int callback_new(struct event_loop *ev, const struct msi_listen_sock *sock,
    const char *listen, const struct callback_ops *ops, void *ctx,
    const struct callback_limits *lim, struct callback **out);
/*
 * Answer parked requests with 503 and close every connection. A
 * redemption still out keeps a small record until its cb runs (the
 * broker runs or drops every cb before it is freed). NULL is fine.
 */
void callback_free(struct callback *c);
/* 1 while listening. */
int callback_is_up(const struct callback *c);

/*
 * o's "callback" object: state ("up", "down"; "off" when c is NULL, in
 * stats only), listen, socket, error, since; with is_stats also the
 * counters (docs/protocol.md). 0, or -ENOMEM.
 */
int callback_report(const struct callback *c, json_t *o, int is_stats);

#endif
