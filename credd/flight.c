/*
 * flight.c - refreshes (see flight.h): single flight per (user, scope),
 * a user's flights one at a time, each with the newest refresh token
 * (read again under the cluster lock, or from the store when the record
 * was evicted), the rotation stored before the token is handed out, the
 * error classes (REAUTH drops the refresh token; CONSENT starts a device
 * flow through flow.c; RETRY backs off and keeps serving a still-valid
 * token; a 429 holds the whole tenant), and the retry of a proactive
 * refresh once the backoff ends.
 *
 * Must never: use a refresh token older than the newest one stored,
 * hand out an access token before its rotated refresh token is written
 * (or pinned in memory when the store fails), or keep what comes back
 * for a user who logged out or was revoked meanwhile (epoch).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "apptoken.h"
#include "broker_int.h"
#include "cache.h"
#include "cae.h"
#include "clock.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "flight.h"
#include "flow.h"
#include "idp.h"
#include "log.h"
#include "oauth.h"
#include "record.h"
#include "refresh.h"
#include "reply.h"
#include "storeq.h"
#include "tokens.h"
#include "user.h"

#define OIDC_SCOPES "openid profile offline_access"

/* One refresh of (user, scope); a user's flights run one at a time. */
struct flight {
	TAILQ_ENTRY(flight) qlink;
	struct user *u;
	char *scope;  /* the cache key: the scope, or a CAE key (cae.h) */
	char *claims; /* a challenge's claims (compact JSON), or NULL */
	struct waiter_list waiters;
	struct idp_req *req;
	unsigned epoch; /* user epoch at start: stale results are dropped */
	int running;
	int locked; /* holds the cluster lock for this user */
	struct event_timer *lock_timer; /* lock busy elsewhere: try again */
	struct oauth_token
	    tok; /* the reply, held while the rotation is stored */
};

static void flight_run_next(struct broker *b, struct user *u);
static void flight_start(struct broker *b, struct flight *f);
static void refresh_saved(struct broker *b, struct user *u, void *ctx,
    int result);

/* A store failure for messages; a rollback in words. */
static const char *
store_reason(int r)
{
	if (r == RECORD_EROLLBACK)
		return "the stored record is older than this node has seen";
	return strerror(-r);
}

/* ---- a user's queue of flights ---- */

/* The flight of (u, scope, claims): claims NULL matches only NULL. */
static struct flight *
flight_find(struct user *u, const char *scope, const char *claims)
{
	struct flight *f;

	TAILQ_FOREACH(f, &u->flights, qlink)
	if (strcmp(f->scope, scope) == 0 &&
	    (f->claims == NULL ?
		    claims == NULL :
		    claims != NULL && strcmp(f->claims, claims) == 0))
		return f;
	return NULL;
}

static void
flight_free(struct broker *b, struct flight *f)
{
	b->idp->ops->cancel(b->idp, &f->req);
	clock_timer_cancel(b->clk, &f->lock_timer);
	oauth_token_clear(&f->tok);
	free(f->scope);
	free(f->claims);
	free(f);
}

/*
 * Answer one waiter after a failed refresh: a still-valid token, or the
 * error. Never the cached token after a claims refresh failed: the
 * resource has just refused it (is_claims).
 */
static void
reply_after_failure(struct broker *b, struct user *u, struct waiter *w,
    const char *scope, int is_claims, const struct oauth_error *err)
{
	struct cache_entry *e = cache_get(b->cache, u->name, scope);
	struct reply rep = { 0 };

	if (err->cls == OAUTH_RETRY && !is_claims && e != NULL &&
	    e->expires_on > clock_now(b->clk)) {
		b->n.stale_served++;
		waiter_finish(w, tokens_reply(b, u, w, scope, &rep), &rep);
		return;
	}
	user_audit("token_refused", u, w->caller->uid, "token", scope,
	    "refused", NULL, NULL, NULL, err);
	waiter_reply_json(w,
	    errmap_idp_error(err, b->throttle_until, clock_now(b->clk)));
}

/*
 * After a transient failure, plan the next proactive attempt for a token
 * that is still valid, once the backoff (or the tenant breaker) ends.
 */
static void
retry_later(struct broker *b, struct user *u, const char *scope)
{
	struct cache_entry *e = cache_get(b->cache, u->name, scope);
	int64_t at = u->backoff_until > b->throttle_until ? u->backoff_until :
							    b->throttle_until;

	if (e == NULL || e->timer != NULL || e->expires_on <= clock_now(b->clk))
		return;
	e->refresh_at = at > clock_now(b->clk) ?
	    at :
	    clock_now(b->clk) + REFRESH_BACKOFF_MIN;
	tokens_arm(b, e);
}

/* Answer every waiter of f with resp built per waiter. */
static void
flight_finish(struct broker *b, struct flight *f, const struct oauth_error *err)
{
	struct user *u = f->u;
	struct waiter *w;

	while ((w = LIST_FIRST(&f->waiters)) != NULL) {
		struct reply rep = { 0 };

		user_unpark(w);
		if (err == NULL)
			waiter_finish(w, tokens_reply(b, u, w, f->scope, &rep),
			    &rep);
		else if (err->cls == OAUTH_CONSENT &&
		    w->app_identity == WAITER_USER_OR_APP &&
		    f->claims == NULL) {
			/* No consent any more: the app's token (issue 14). */
			waiter_finish(w,
			    apptoken_get(b, w, w->scope, w->min_valid, &rep),
			    &rep);
		} else if (err->cls == OAUTH_CONSENT && w->no_signin != NULL) {
			/* Its workload may not sign in (issue 14), as broker.c. */
			waiter_finish(w, flow_no_signin(w, -ENOKEY, &rep),
			    &rep);
		} else if (err->cls == OAUTH_CONSENT) {
			/* The consent flow answers them (consent_required + fields). */
			waiter_finish(w, flow_join(b, u, w, &rep), &rep);
		} else
			reply_after_failure(b, u, w, f->scope,
			    f->claims != NULL, err);
	}
	if (err != NULL && err->cls == OAUTH_RETRY)
		retry_later(b, u, f->scope);
	if (f->locked) {
		struct storeq_job *j =
		    storeq_job_new(STOREQ_UNLOCK, u->name, NULL, NULL);

		if (j != NULL)
			storeq_submit(b->q, j);
		f->locked = 0;
	}
	TAILQ_REMOVE(&u->flights, f, qlink);
	flight_free(b, f);
	flight_run_next(b, u);
	user_maybe_evict(b, u);
}

/*
 * May Entra's consent error on f start a sign-in? Not when every waiter's
 * workload forbids one (issue 14: a job or an app never starts a flow,
 * whichever way the need for consent shows); a proactive refresh (no
 * waiter) may, as before.
 */
static int
flight_may_sign_in(const struct flight *f)
{
	const struct waiter *w;

	if (LIST_EMPTY(&f->waiters))
		return 1;
	LIST_FOREACH(w, &f->waiters, link)
	if (w->no_signin == NULL && w->app_identity != WAITER_USER_OR_APP)
		return 1; /* user-or-app falls back to the app, no sign-in */
	return 0;
}

static void
handle_refresh_error(struct broker *b, struct user *u, struct flight *f,
    struct oauth_error *err)
{
	char q1[LOG_VALUE_MAX], q2[LOG_VALUE_MAX], kv[2 * LOG_VALUE_MAX + 96];
	char line[sizeof(kv) + 32], scope[PROTO_STR_MAX + 8];
	int64_t now = clock_now(b->clk);
	int r;

	/* The fields of the log lines below (docs/operations.md). */
	(void)snprintf(kv, sizeof(kv), "user=%s class=%s http=%ld reason=%s",
	    log_value(q1, u->name), oauth_class_name(err->cls),
	    err->http_status, log_value(q2, err->reason));
	b->n.idp_errors[err->cls]++;
	b->n.refresh_errors[err->cls]++;
	user_audit("refresh_failed", u, u->uid, NULL, f->scope, "error", NULL,
	    NULL, NULL, err);
	switch (err->cls) {
	case OAUTH_RETRY:
		u->failures++;
		u->backoff_until = now +
		    refresh_backoff(u->failures, err->retry_after,
			randombytes_random());
		if (err->is_throttled) {
			/* One client id serves the node: slow every user down. */
			int64_t ra =
			    err->retry_after > 0 ? err->retry_after : 5;

			if (now + ra > b->throttle_until)
				b->throttle_until = now + ra;
		}
		(void)snprintf(line, sizeof(line), "event=refresh_failed %s",
		    kv);
		log_event_info(line,
		    "user \"%s\": refresh failed, retrying later (%s)", u->name,
		    err->reason);
		break;
	case OAUTH_REAUTH:
		(void)snprintf(line, sizeof(line), "event=refresh_rejected %s",
		    kv);
		log_event_info(line,
		    "user \"%s\": refresh token rejected (%s); sign-in required",
		    u->name, err->reason);
		secret_free(u->rec->refresh_token);
		u->rec->refresh_token = NULL;
		u->rec->updated = now;
		user_purge_cache(b, u);
		u->epoch++;
		user_save(b, u, 0, NULL, NULL);
		break;
	case OAUTH_CONSENT:
		/* The sign-in asks for the scope (never a CAE key). */
		scope[0] = '\0';
		r = cae_key_split(f->scope, scope, sizeof(scope));
		if (r >= 0 && !flight_may_sign_in(f))
			break; /* its waiters are refused by their policy */
		if (r >= 0)
			r = flow_may_start(b, u, 0);
		if (r == 0 && u->flow == NULL)
			r = flow_start(b, u, scope);
		/*
		 * The sign-in carries the challenge (not the capability: its
		 * token is cached under the ordinary key), so its token
		 * satisfies what the resource asked for.
		 */
		if (u->flow != NULL && f->claims != NULL &&
		    flow_carry_claims(u->flow, scope, f->claims) < 0)
			log_warnx("user \"%s\": out of memory: the sign-in "
				  "does not carry the claims challenge",
			    u->name);
		if (r < 0 && u->flow == NULL) {
			/* No flow possible now: answer with the error itself. */
			err->cls = OAUTH_RETRY;
			snprintf(err->reason, sizeof(err->reason),
			    "consent required but no new sign-in can start yet");
		}
		break;
	case OAUTH_ADMIN:
		(void)snprintf(line, sizeof(line),
		    "event=idp_config_rejected %s", kv);
		log_event_warn(line,
		    "IdP rejected credd's configuration (%s): check tenant, "
		    "client_id and client secret",
		    err->reason);
		break;
	default:
		break;
	}
}

static void
refresh_done(void *arg, int r, struct oauth_token *got,
    const struct oauth_error *got_err)
{
	struct flight *f = arg;
	struct user *u = f->u;
	struct broker *b = u->b;
	struct oauth_token tok = *got;
	struct oauth_error err = *got_err;

	f->req = NULL;
	memset(got, 0, sizeof(*got)); /* taken */
	if (f->epoch != u->epoch || u->rec == NULL) {
		/* Logged out or revoked meanwhile: drop what came back. */
		oauth_token_clear(&tok);
		err.cls = OAUTH_REAUTH;
		snprintf(err.reason, sizeof(err.reason),
		    "signed out meanwhile");
		flight_finish(b, f, &err);
		return;
	}
	if (r < 0) {
		handle_refresh_error(b, u, f, &err);
		flight_finish(b, f, &err);
		return;
	}
	b->n.refresh_ok++;
	u->failures = 0;
	u->backoff_until = 0;
	u->last_refresh = clock_now(b->clk);
	f->tok = tok; /* held until the rotation is stored */
	memset(&tok, 0, sizeof(tok));
	if (f->tok.refresh_token != NULL) {
		/* Rotation: store the new refresh token before handing out. */
		secret_free(u->rec->refresh_token);
		u->rec->refresh_token = f->tok.refresh_token;
		f->tok.refresh_token = NULL; /* transferred */
		u->rec->last_refresh = u->last_refresh;
		u->rec->updated = u->last_refresh;
		user_save(b, u, 0, refresh_saved, f);
		return;
	}
	refresh_saved(b, u, f, 0);
}

/*
 * The rotated refresh token is written (or pinned in memory when the
 * store failed: the token is handed out anyway, DESIGN §5).
 */
static void
refresh_saved(struct broker *b, struct user *u, void *ctx, int result)
{
	struct flight *f = ctx;
	struct cache_entry *e;

	if (result == -ENOENT) {
		/* Revoked on another node while we refreshed: hand out nothing. */
		struct oauth_error err = { .cls = OAUTH_REAUTH };

		snprintf(err.reason, sizeof(err.reason), "revoked meanwhile");
		oauth_token_clear(&f->tok);
		flight_finish(b, f, &err);
		return;
	}
	tokens_put(b, u, f->scope, &f->tok);
	e = cache_get(b->cache, u->name, f->scope);
	user_audit("refresh_ok", u, u->uid, NULL, f->scope, "ok", NULL,
	    e != NULL ? e->fp : NULL, NULL, NULL);
	oauth_token_clear(&f->tok);
	flight_finish(b, f, NULL);
}

/*
 * The scope string to send for f (its scope, never a CAE key, with the
 * OIDC scopes) and the claims parameter (*claims malloc'd, NULL: none):
 * a CAE key declares the configured capability, a challenge adds its
 * claims. 0, -ENOTSUP (claims, but the IdP cannot send them), -ENOMEM,
 * -ENAMETOOLONG.
 */
static int
send_scope(struct broker *b, struct flight *f, char *scope, size_t sz,
    char **claims)
{
	const char *caps = NULL;
	char base[PROTO_STR_MAX + 8];
	int r;

	*claims = NULL;
	r = cae_key_split(f->scope, base, sizeof(base));
	if (r < 0)
		return r;
	if (r == 1)
		caps = b->cf->client_capabilities; /* NULL: CAE turned off */
	if ((size_t)snprintf(scope, sz, "%s %s", base, OIDC_SCOPES) >= sz)
		return -ENAMETOOLONG;
	r = cae_claims_merge(f->claims, caps, claims);
	if (r == 0 && *claims != NULL && b->idp->ops->refresh_claims == NULL) {
		free(*claims);
		*claims = NULL;
		r = -ENOTSUP;
	}
	return r;
}

/* Send the refresh grant with the newest refresh token. */
static void
flight_send(struct broker *b, struct flight *f)
{
	struct user *u = f->u;
	struct oauth_error err = { 0 };
	char scope[PROTO_STR_MAX + 64];
	char *claims = NULL;
	enum idp_client kind;
	int r;

	if (!user_has_consent(u)) {
		err.cls = OAUTH_REAUTH;
		snprintf(err.reason, sizeof(err.reason), "no consent");
		flight_finish(b, f, &err);
		return;
	}
	kind = u->rec->client ? IDP_CLIENT_CONFIDENTIAL : IDP_CLIENT_PUBLIC;
	r = send_scope(b, f, scope, sizeof(scope), &claims);
	if (r == 0 && claims != NULL)
		r = b->idp->ops->refresh_claims(b->idp, u->rec->refresh_token,
		    scope, claims, kind, refresh_done, f, &f->req);
	else if (r == 0)
		r = b->idp->ops->refresh(b->idp, u->rec->refresh_token, scope,
		    kind, refresh_done, f, &f->req);
	free(claims);
	if (r == IDP_ECREDENTIAL) {
		/* The app credential is broken (logged): an admin's problem
		 * that never drops the consent. */
		err.cls = OAUTH_ADMIN;
		snprintf(err.reason, sizeof(err.reason),
		    "client credential unavailable");
		b->n.idp_errors[OAUTH_ADMIN]++;
		b->n.refresh_errors[OAUTH_ADMIN]++;
		user_audit("refresh_failed", u, u->uid, NULL, f->scope, "error",
		    NULL, NULL, NULL, &err);
		flight_finish(b, f, &err);
		return;
	}
	if (r < 0) {
		err.cls = OAUTH_RETRY;
		snprintf(err.reason, sizeof(err.reason), "cannot send: %s",
		    strerror(-r));
		flight_finish(b, f, &err);
		return;
	}
	b->n.refreshes++;
}

static void
lock_retry_cb(struct event_loop *ev, void *arg)
{
	struct flight *f = arg;

	(void)ev;
	f->lock_timer = NULL;
	f->running = 0;
	flight_start(f->u->b, f);
}

/*
 * Cluster backends: the user's lock is held (or busy on another node).
 * Under the lock, adopt the stored record when another node rotated the
 * refresh token since we last read it, so we never use a superseded one.
 */
static void
lock_done(struct storeq_job *j)
{
	struct flight *f = j->arg;
	struct user *u = f->u;
	struct broker *b = u->b;
	struct oauth_error err = { 0 };

	if (j->result == -EAGAIN) {
		f->lock_timer = clock_timer_in(b->clk,
		    100 + randombytes_uniform(200), lock_retry_cb, f);
		return;
	}
	f->locked = j->locked; /* flight_finish unlocks, whatever follows */
	user_store_note(b, u, j);
	if (j->result == RECORD_EROLLBACK && user_resident(u)) {
		/* An older row was put back: refresh with the newer record we
		 * hold; the rotation is then written over that row. */
		flight_send(b, f);
		return;
	}
	if (j->result < 0 && j->result != -ENOENT) {
		err.cls = OAUTH_RETRY;
		err.is_local = 1;
		snprintf(err.reason, sizeof(err.reason),
		    "store unavailable: %s", store_reason(j->result));
		flight_finish(b, f, &err);
		return;
	}
	u->rolled_back = 0;
	if (!u->dirty &&
	    (j->rec == NULL || u->rec == NULL ||
		j->rec->version > u->rec->version)) {
		if (j->rec == NULL || j->rec->refresh_token == NULL)
			user_purge_cache(b, u);
		user_apply(b, u, j->rec);
		j->rec = NULL; /* transferred */
		flow_cluster_record_changed(b, u);
	}
	flight_send(b, f);
}

/* An evicted record, read again for this flight (file store). */
static void
flight_loaded(struct storeq_job *j)
{
	struct flight *f = j->arg;
	struct user *u = f->u;
	struct broker *b = u->b;
	struct oauth_error err = { 0 };

	user_store_note(b, u, j);
	if (j->result < 0 && j->result != -ENOENT) {
		if (j->result != RECORD_EROLLBACK)
			b->n.store_errors++;
		err.cls = OAUTH_RETRY;
		err.is_local = 1;
		snprintf(err.reason, sizeof(err.reason),
		    "cannot read the stored "
		    "consent: %s",
		    store_reason(j->result));
		flight_finish(b, f, &err);
		return;
	}
	u->rolled_back = 0;
	if (!u->dirty && u->evicted != NULL) {
		user_apply(b, u, j->rec);
		j->rec = NULL; /* transferred */
		flow_cluster_record_changed(b, u);
	}
	flight_send(b, f);
}

static void
flight_start(struct broker *b, struct flight *f)
{
	struct user *u = f->u;
	struct oauth_error err = { 0 };
	struct storeq_job *j;
	int64_t now = clock_now(b->clk);

	f->running = 1;
	f->epoch = u->epoch;
	if (b->closing || !user_has_consent(u)) {
		err.cls = b->closing ? OAUTH_RETRY : OAUTH_REAUTH;
		snprintf(err.reason, sizeof(err.reason),
		    b->closing ? "shutting down" : "no consent");
		flight_finish(b, f, &err);
		return;
	}
	if (b->throttle_until > now || u->backoff_until > now) {
		err.cls = OAUTH_RETRY;
		err.is_throttled = b->throttle_until > now;
		err.retry_after =
		    (b->throttle_until > u->backoff_until ? b->throttle_until :
							    u->backoff_until) -
		    now;
		snprintf(err.reason, sizeof(err.reason), "backing off");
		flight_finish(b, f, &err);
		return;
	}
	if (!storeq_is_cluster(b->q)) {
		if (u->evicted == NULL) {
			flight_send(b, f);
			return;
		}
		/* The refresh token is in the store only: read it first. */
		j = storeq_job_new(STOREQ_LOAD, u->name, flight_loaded, f);
	} else
		j = storeq_job_new(STOREQ_LOCK, u->name, lock_done, f);
	if (j == NULL) {
		err.cls = OAUTH_RETRY;
		snprintf(err.reason, sizeof(err.reason), "out of memory");
		flight_finish(b, f, &err);
		return;
	}
	storeq_submit(b->q, j);
}

static void
flight_run_next(struct broker *b, struct user *u)
{
	struct flight *f = TAILQ_FIRST(&u->flights);

	if (f != NULL && !f->running)
		flight_start(b, f);
}

/* Queue a refresh of (u, scope), or join the one queued; w may be NULL. */
int
flight_join(struct broker *b, struct user *u, const char *scope,
    struct waiter *w)
{
	return flight_join_claims(b, u, scope, NULL, w);
}

int
flight_pending(struct user *u, const char *scope, const char *claims)
{
	return flight_find(u, scope, claims) != NULL;
}

int
flight_join_claims(struct broker *b, struct user *u, const char *scope,
    const char *claims, struct waiter *w)
{
	struct flight *f = flight_find(u, scope, claims);

	if (f == NULL) {
		f = calloc(1, sizeof(*f));
		if (f == NULL || (f->scope = strdup(scope)) == NULL ||
		    (claims != NULL && (f->claims = strdup(claims)) == NULL)) {
			if (f != NULL)
				free(f->scope);
			free(f);
			return -ENOMEM;
		}
		f->u = u;
		LIST_INIT(&f->waiters);
		TAILQ_INSERT_TAIL(&u->flights, f, qlink);
	}
	if (w != NULL)
		user_park(b, &f->waiters, w);
	flight_run_next(b, u); /* may finish at once and answer w */
	return 0;
}

/*
 * End u's flights that are not running yet: their waiters are answered
 * with err (logout, revoke). A running flight ends by itself, and drops
 * what it gets back (the user's epoch moved on).
 */
void
flight_end_queued(struct broker *b, struct user *u, int err, const char *msg)
{
	struct flight *f, *prev;

	for (f = TAILQ_LAST(&u->flights, flight_queue); f != NULL; f = prev) {
		struct waiter *w;

		prev = TAILQ_PREV(f, flight_queue, qlink);
		if (f->running)
			continue;
		while ((w = LIST_FIRST(&f->waiters)) != NULL) {
			user_unpark(w);
			waiter_reply_json(w, errmap_error(err, msg));
		}
		TAILQ_REMOVE(&u->flights, f, qlink);
		flight_free(b, f);
	}
}

/* Shutdown: free u's flights; their waiters are unparked unanswered. */
void
flight_free_all(struct broker *b, struct user *u)
{
	struct flight *f;

	while ((f = TAILQ_FIRST(&u->flights)) != NULL) {
		struct waiter *w;

		while ((w = LIST_FIRST(&f->waiters)) != NULL)
			user_unpark(w);
		TAILQ_REMOVE(&u->flights, f, qlink);
		flight_free(b, f);
	}
}
