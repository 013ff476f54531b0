/*
 * broker.h - the token life cycle (DESIGN.md §5): per-user state, the
 * access-token cache, single-flight refreshes (one at a time per user,
 * each with the newest refresh token), device-code flows, rotation
 * stored by compare-and-swap before a token is handed out, error
 * classes, backoff and the tenant-wide 429 breaker.
 *
 * Everything runs on the event loop; IdP calls go through the IdP's ops
 * (idp.h; Entra over http.c unless a test plugs in another), time comes
 * from a clock (clock.h), and store calls through the store thread (storeq.c), so nothing blocks.
 * Every op answers as waiter.h says: 0 with *out filled in (a success
 * or an error reply), WAITER_PARKED (w is parked and answered through
 * waiter_reply() later), or a negative errno when no answer could be
 * built (-ENOMEM; the caller answers "internal" through errmap.h). *out
 * must be empty. A waiter parked until its user's record is loaded is
 * run again from the parameters kept in it, so w->op must name the op
 * (PROTO_OP_TOKEN for the SDK endpoint too).
 *
 * Users are login names; uid is the caller's (or the session's) uid
 * now, compared with the uid at consent (a reused name starts clean).
 *
 * broker.c holds the ops and the life cycle; the parts below it are
 * flight.c, flow.c, tokens.c and user.c, sharing broker_int.h (see
 * docs/design.md, "Module map").
 */
#ifndef CREDD_BROKER_H
#define CREDD_BROKER_H

#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

struct event_loop;
struct config;
struct marks;
struct userdb;
struct store;
struct seal;
struct http;
struct idp;
struct clock;
struct secret;
struct clientauth;
struct waiter;
struct reply;
struct broker;

struct discovery;

struct broker_deps {
	struct event_loop *ev;
	const struct config *cf;
	struct store *st;
	const struct seal *seal;
	struct http *http;
	/*
	 * The app credential for confidential grants (clientauth.h); NULL:
	 * none (public client only). Borrowed.
	 */
	const struct clientauth *clientauth;
	struct marks *marks; /* store thread only; NULL: no rollback check */
	struct userdb
	    *db; /* a sign-in re-checks the uid's name; NULL: no check */
	/*
	 * The IdP's grants (idp.h); NULL: Entra over http with cf's
	 * endpoints and client_secret (idp_http.c), as credd runs. Borrowed.
	 */
	struct idp *idp;
	/*
	 * The discovery document (discovery.h) the real IdP takes its
	 * endpoints from; NULL: Entra's URL templates. Borrowed.
	 */
	struct discovery *disc;
	/* The time (clock.h); NULL: the real clock over ev. Borrowed. */
	const struct clock *clock;
};

int broker_new(const struct broker_deps *d, struct broker **out);
/* Cancels flows, flights and timers; wipes every token. */
void broker_free(struct broker *b);
/* After SIGHUP: new scopes and limits (cf must outlive the broker or the next call). */
void broker_set_config(struct broker *b, const struct config *cf);

/* token op: scope is a configured scope string (resolved by dispatch). */
int broker_token(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, const char *scope, int64_t min_valid, struct reply *out);
/*
 * The same with the CAE fields (docs/protocol.md): cae asks for a CAE
 * token (an ordinary one when [entra] client_capabilities is unset);
 * claims (compact JSON from cae_claims_parse, or NULL) is a challenge:
 * the cache is bypassed and one refresh per (user, scope) per
 * CAE_WINDOW carries it (the same claims join it; others get
 * rate_limited with retry_after).
 */
int broker_token_cae(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, const char *scope, int64_t min_valid, int cae,
    const char *claims, struct reply *out);
int broker_login(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, int64_t wait, struct reply *out);
int broker_status(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, struct reply *out);
int broker_logout(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, struct reply *out);
/*
 * session_open: report the user's state; an interactive session starts a
 * device flow when no consent exists. w->session holds the session id.
 */
int broker_session_open(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, int interactive, struct reply *out);
/*
 * The Entra oid pinned for user when this node holds the user's record
 * in memory (credctl admin revoke --entra names the user to Graph by it;
 * broker_load_user first).
 * 0 with dst filled, -ENOENT (not known here), -ENAMETOOLONG.
 */
int broker_pinned_oid(struct broker *b, const char *user, char *dst,
    size_t dstsz);
/*
 * admin_offboard needs the user's record in memory (its pinned oid),
 * also on a node that never served the user. broker_load_user: 0 when it
 * is (or the store has none), WAITER_PARKED when w waits for the store
 * thread; fn(arg, w, out) then runs the request again, as a handler
 * would (broker_set_offboard registers it). -ENOMEM.
 */
typedef int broker_resume_fn(void *arg, struct waiter *w, struct reply *out);
void broker_set_offboard(struct broker *b, broker_resume_fn *fn, void *arg);
int broker_load_user(struct broker *b, struct waiter *w, const char *user);
int broker_revoke(struct broker *b, struct waiter *w, const char *user,
    uid_t by_uid, struct reply *out);
int broker_list(struct broker *b, struct waiter *w, const char *cursor,
    int64_t limit, struct reply *out);
/*
 * Authorization-code sign-in ([entra] signin with auth_code;
 * docs/signin.md). The user's pending flow lives in the broker like a
 * device flow; these finish it.
 *
 * login_code op: the address the user's browser landed on (paste-back,
 * text[0..len), a secret: the caller wipes it). Only the caller's own
 * flow; its state must match. As the ops above: the outcome (ready, or
 * an error) when the code is redeemed.
 */
int broker_signin_paste(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, const char *text, size_t len, struct reply *out);
/*
 * A short sign-in link's id (callback path /entra/login/<id>) -> the
 * authorize URL (malloc'd, caller frees). Single use: a second call for
 * the same id is -ENOENT; also -ENOENT unknown/expired (audited,
 * coalesced). -ENOMEM. In cluster mode, a link of a flow this node does
 * not hold is looked up in its user's record: -EINPROGRESS, and cb runs
 * once later on the loop (never before this returns) with 0 and the
 * URL (borrowed for the call), or -ENOENT / -errno and NULL.
 */
typedef void broker_link_cb(void *arg, int r, const char *authorize_url);
int broker_signin_link(struct broker *b, const char *id, char **authorize_url,
    broker_link_cb *cb, void *arg);
/*
 * The callback's query, already split: state and code (code NULL when
 * Entra sent error=; then err/err_desc set). Redeems asynchronously with
 * the confidential credential; cb runs once on the loop thread, never
 * before this returns, with r 0 (signed in; user is the Unix user) or
 * r < 0 (a negative errno as errmap.h names it) and a short, secret-free
 * reason for the page. -ENOENT for an unknown/used/expired state (cb
 * does not run); an audit record in every case. code is borrowed. In
 * cluster mode a state this node does not hold is used up in its user's
 * record first (another node may have started the flow); when the
 * record refuses it (used, e.g. by a node that raced this one), cb runs
 * with -ENOENT.
 */
typedef void broker_redeem_cb(void *arg, int r, const char *user,
    const char *reason);
/*
 * 1 when iss (RFC 9207's, from a callback's answer) is the discovered
 * issuer (an IdP without discovery: always); else 0, logged and audited
 * (request_refused, op signin_callback): the caller redeems nothing.
 */
int broker_signin_iss_ok(struct broker *b, const char *iss);
int broker_signin_redeem(struct broker *b, const char *state,
    const struct secret *code, const char *err, const char *err_desc,
    broker_redeem_cb *cb, void *arg);

/* Store jobs queued or running (a test waits for them to drain). */
size_t broker_store_pending(const struct broker *b);

#endif
