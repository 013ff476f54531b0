/*
 * discovery.h - the IdP's OpenID discovery document, fetched on the loop
 * through http.c (libcurl multi: the loop never waits), checked by
 * discovery_doc.c, cached with a TTL from Cache-Control max-age (clamped,
 * discovery_doc.h) and refetched behind before it expires.
 *
 * - Single flight: one fetch at a time, whoever needs the document.
 * - Stale-while-error: a failed or refused refetch keeps the last good
 *   document in force (logged once per outage) and retries with backoff.
 * - No document yet: discovery_need() starts the one fetch (or answers
 *   at once when the last one failed under a second ago); the listener
 *   hears how every fetch ended and answers what waited.
 *
 * Not persisted: a restart fetches afresh (the document and the token
 * endpoint live on the same service, so an IdP that cannot serve the one
 * cannot redeem a refresh token either).
 *
 * Must never: hand out an endpoint from a document discovery_doc.c
 * refused, block the loop, or log a body.
 */
#ifndef CREDD_DISCOVERY_H
#define CREDD_DISCOVERY_H

#include <stdint.h>

#include "discovery_doc.h"

struct clock;
struct discovery;
struct http;
struct http_response;

/*
 * How the document is fetched: a GET whose answer comes once, later, on
 * the loop (http.c's http_get; unit tests script it). get: 0 and *req,
 * or -errno (cb never runs). cancel: *req set to NULL, cb will not run.
 */
struct discovery_fetch_ops {
	int (*get)(void *ctx, const char *url,
	    void (*cb)(void *arg, const struct http_response *hr), void *arg,
	    void **req);
	void (*cancel)(void *ctx, void **req);
};

/* The real one: http_get on the struct http passed as ctx. */
extern const struct discovery_fetch_ops discovery_http_ops;

/*
 * How a fetch ended: 0 (discovery_get is a document), -EBADMSG (the
 * document was refused: an admin's problem; discovery_why says which
 * rule), or another -errno (the IdP did not answer with a document).
 */
typedef void discovery_cb(void *arg, int r);

/*
 * Fetch through ops with ctx (discovery_http_ops and a struct http, as
 * credd runs), on clk's time and timers (clock.h). clk, ops and ctx are
 * borrowed; rules' strings are copied; min_ttl: [entra]
 * discovery_min_ttl (<= 0: DISCOVERY_TTL_MIN). Nothing is fetched until
 * discovery_start or discovery_need. 0, -EINVAL (rules give no URL),
 * -ENOMEM.
 */
int discovery_new(const struct clock *clk,
    const struct discovery_fetch_ops *ops, void *ctx,
    const struct discovery_rules *rules, int64_t min_ttl,
    struct discovery **out);
/* Cancels the fetch in flight and the timers. NULL-safe. */
void discovery_free(struct discovery *d);

/* The one listener (idp_http.c): told how each fetch ended. */
void discovery_set_listener(struct discovery *d, discovery_cb *cb, void *arg);

/* Start fetching now unless a fetch runs (the start of credd). */
void discovery_start(struct discovery *d);

/* The document in force (possibly stale), or NULL before the first. */
const struct discovery_doc *discovery_get(const struct discovery *d);

/*
 * A request needs the document and discovery_get gave none: -EINPROGRESS
 * when a fetch runs (started now if need be; the listener hears its end),
 * or the last fetch's error when it failed under a second ago (the
 * caller fails at once: one fetch per second at most while the IdP is
 * down, however many requests come).
 */
int discovery_need(struct discovery *d);

/*
 * Why the last fetch failed ("" after a success): a fixed text, at most
 * DISCOVERY_WHY_MAX, with no body in it. For answers, logs and doctor.
 */
const char *discovery_why(const struct discovery *d);

/* The document's URL. */
const char *discovery_url(const struct discovery *d);

/*
 * When the document in force was fetched and when it expires (unix
 * seconds; 0 when none), and whether the last refetch failed (stale).
 */
void discovery_times(const struct discovery *d, int64_t *fetched,
    int64_t *expires, int *is_stale);

#endif
