/*
 * offboard.h - offboarding that reaches Entra: Microsoft Graph's
 * revokeSignInSessions for one user, with the [offboarding] app
 * credential (config.h), never the [entra] one that serves workloads.
 *
 * One revoke is: an app token from the client credentials grant (scope
 * GRAPH/.default; secret, certificate assertion or federated assertion),
 * cached until shortly before it expires and shared by every revoke,
 * then POST GRAPH/v1.0/users/{oid or UPN}/revokeSignInSessions with it
 * as a bearer token. Answers are classified (offboard_done_cb); 429 and
 * 5xx (and network failures) are retried, at most OFFBOARD_TRIES sends
 * per step, honouring Retry-After up to OFFBOARD_RETRY_MAX seconds.
 *
 * The transport (HTTP and a timer) sits behind struct offboard_ops, so
 * the logic has unit tests on a fixed clock (tests/unit/test_offboard.c).
 *
 * Must never: put the app token, the secret, an assertion or a body in a
 * log, an error text or argv (the why texts are fixed sentences plus
 * Graph's error code, checked printable and bounded); send the [entra]
 * credential; call a completion before offboard_revoke returned or after
 * offboard_cancel. It never logs: the caller audits the outcome.
 */
#ifndef CREDD_OFFBOARD_H
#define CREDD_OFFBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct secret;
struct assertion_key;
struct offboard;
struct offboard_req;

/* Sends per step (token grant, Graph call) before a RETRY class gives up. */
#define OFFBOARD_TRIES 3
/* Seconds a grant waits for the first discovery document. */
#define OFFBOARD_DISC_WAIT 15
/* Longest wait between sends, whatever Retry-After says (seconds). */
#define OFFBOARD_RETRY_MAX 30
/* The app token is renewed this long before it expires (seconds). */
#define OFFBOARD_TOKEN_MARGIN 300
/* Bounds of a user id sent to Graph (an oid or a UPN). */
#define OFFBOARD_ID_MAX 256
/* The why text of a completion. */
#define OFFBOARD_WHY_MAX 256
/* The permission Graph wants for revokeSignInSessions (application). */
#define OFFBOARD_PERMISSION "User.RevokeSessions.All"

/*
 * A transport answer, as http.h gives it (resp->body may be NULL). Runs
 * once, on the loop thread, unless cancelled.
 */
typedef void offboard_http_cb(void *arg, const struct http_response *resp);
typedef void offboard_timer_cb(void *arg);

struct offboard_ops {
	/* POST a form (the token endpoint). 0 and *req, or -errno. */
	int (*post_form)(void *ctx, const char *url, const struct secret *form,
	    offboard_http_cb *cb, void *arg, void **req);
	/*
	 * POST an empty JSON body ("{}") to url with "Authorization: Bearer
	 * TOKEN". 0 and *req, or -errno.
	 */
	int (*post_bearer)(void *ctx, const char *url,
	    const struct secret *token, offboard_http_cb *cb, void *arg,
	    void **req);
	/* Cancel a request; its callback will not run. *req set to NULL. */
	void (*cancel)(void *ctx, void **req);
	/* Call cb(arg) after sec seconds. 0 and *timer, or -errno. */
	int (*timer_start)(void *ctx, int64_t sec, offboard_timer_cb *cb,
	    void *arg, void **timer);
	void (*timer_stop)(void *ctx, void **timer);
	/* Unix seconds. */
	int64_t (*now)(void *ctx);
	/*
	 * The token endpoint in force (the discovery document's), or NULL
	 * when there is none yet (a fetch was started: asked again each
	 * second, OFFBOARD_DISC_WAIT times, then the revoke fails as
	 * unavailable). NULL op: the token_url given to offboard_new.
	 */
	const char *(*token_url)(void *ctx);
};

/* The app credential: exactly one of secret, key, assertion_file. */
struct offboard_cred {
	const char *client_id;
	struct secret *secret;	    /* client_auth = secret */
	struct assertion_key *key;  /* client_auth = certificate */
	const char *assertion_file; /* client_auth = federated */
};

/*
 * The outcome of one revoke. r:
 *   0             Graph revoked the user's sessions
 *   -EACCES       Graph refused (403): the app lacks OFFBOARD_PERMISSION
 *                 (or an admin role); why names it
 *   -ENOENT       no such user in the directory (404)
 *   -EKEYREJECTED the token endpoint refused the app credential (ADMIN
 *                 class: invalid_client, a stale federated token...)
 *   -EAGAIN       still 429/5xx/network after OFFBOARD_TRIES sends
 *   -EBADMSG      an answer we cannot read
 *   -EIO          another refusal (status and Graph's code in why)
 * why: a sentence for the admin and the audit, no secret in it.
 */
typedef void offboard_done_cb(void *arg, int r, const char *why);

/*
 * A new offboarder. The credential's secret and key are taken (freed
 * and wiped by offboard_free, even on failure); client_id and
 * assertion_file are copied. token_url: the [entra] authority's token
 * endpoint (oauth_url_token); graph_url: [offboarding] graph_url. 0 and
 * *out, -EINVAL (no credential, or more than one), -ENAMETOOLONG,
 * -ENOMEM.
 */
int offboard_new(const struct offboard_ops *ops, void *ctx,
    const char *token_url, const char *graph_url, struct offboard_cred *cred,
    struct offboard **out);
/* Cancels every revoke in flight (no callbacks). NULL-safe. */
void offboard_free(struct offboard *ob);

/*
 * Revoke the sign-in sessions of user_id (the record's pinned oid, or
 * the account_match UPN). 0 and *out (valid until cb runs or
 * offboard_cancel), or -EINVAL for an id Graph cannot take (empty,
 * over OFFBOARD_ID_MAX, or with '/', '?', '#', '%', spaces or control
 * characters), -ENOMEM; cb never runs then.
 */
int offboard_revoke(struct offboard *ob, const char *user_id,
    offboard_done_cb *cb, void *arg, struct offboard_req **out);
/* Cancel; *req set to NULL; its callback will not run. NULL-safe. */
void offboard_cancel(struct offboard *ob, struct offboard_req **req);

/* Wipe and free cred's secret and key (what offboard_new would take). */
void offboard_cred_clear(struct offboard_cred *cred);
/* The ctx given to offboard_new (its owner frees it after offboard_free). */
void *offboard_ctx(const struct offboard *ob);

/*
 * offboard_http.c: an offboarder on credd's loop: http.c for both
 * requests, event.c timers, the wall clock; the token endpoint of the
 * discovery document in force (disc, borrowed: it outlives the
 * offboarder). As offboard_new (cred taken).
 * offboard_http_free frees it and its transport; NULL-safe.
 */
struct event_loop;
struct discovery;
int offboard_http_new(struct event_loop *ev, struct http *h,
    struct discovery *disc, const char *graph_url, struct offboard_cred *cred,
    struct offboard **out);
void offboard_http_free(struct offboard *ob);

/* Revokes in flight; 1 when an app token is cached (tests, stats). */
size_t offboard_inflight(const struct offboard *ob);
int offboard_has_token(const struct offboard *ob);

#endif
