/*
 * broker.c - per-user state, the access-token cache and single-flight
 * refreshes (DESIGN.md §5). Device-code flows live in flow.c.
 *
 * A token request is answered from the cache when fresh. Otherwise it
 * joins the flight for (user, scope); a user's flights run one at a
 * time, each with the newest refresh token, because the refresh token
 * rotates. A rotated refresh token is written with compare-and-swap
 * before the new access token is handed out; when the store fails the
 * token is still handed out and the unwritten refresh token stays pinned
 * in memory (u->dirty) while a timer retries the write.
 *
 * Must never: block (the IdP is reached through http.c), log or audit
 * token material (fingerprints only), or hand one user's token to
 * another: every lookup is keyed by the caller's own login name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "broker.h"
#include "broker_int.h"
#include "cache.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "http.h"
#include "log.h"
#include "memtrim.h"
#include "notify.h"
#include "oauth.h"
#include "record.h"
#include "refresh.h"
#include "seal.h"
#include "store.h"
#include "storeq.h"
#include "tokens.h"

#define OIDC_SCOPES "openid profile offline_access"

static void flight_run_next(struct broker *b, struct user *u);
static void flight_start(struct broker *b, struct flight *f);
static void refresh_saved(struct broker *b, struct user *u, void *ctx, int result);
static void reload(struct broker *b, struct user *u);

/* ---- loading a user's record ---- */

/*
 * A LOAD finished. force: apply it even over a loaded record (another
 * node changed it) unless it is the version we hold already.
 */
static void
load_finish(struct storeq_job *j, int force)
{
	struct user *u = j->arg;
	struct broker *b = u->b;
	struct waiter *w;
	json_t *resp;
	int r = j->result;

	u->loading = 0;
	if (u->reload_pending) {
		/* A change was announced while this load ran: read it again. */
		u->reload_pending = 0;
		force = 1;
		reload(b, u);
	}
	user_store_note(b, u, j);
	if (r == 0 || r == -ENOENT) {
		u->rolled_back = 0;
		if (!u->dirty && (!user_resident(u) || (force && (j->rec == NULL ||
		    u->rec == NULL || j->rec->version != u->rec->version)))) {
			user_apply(b, u, j->rec);
			j->rec = NULL; /* transferred */
			flow_record_changed(b, u);
		}
	} else if (r == RECORD_EROLLBACK) {
		/* Audited by user_store_note; what we hold stays. */
	} else {
		b->n.store_errors++;
		/* j->why names the key id a record needs that the ring lacks. */
		log_warnx("user \"%s\": cannot load the stored record: %s", u->name,
		    j->why[0] != '\0' ? j->why : strerror(-r));
		if (r == -EBADMSG || r == -ENOKEY)
			user_audit("record_unreadable", u, u->uid, NULL, NULL, "error",
			    NULL, NULL, j->why[0] != '\0' ? j->why : r == -ENOKEY ?
			    "sealed with an unknown key" :
			    "does not open for this user (tampered or moved)", NULL);
	}
	/* Run the parked requests again, now that the record is known. */
	while ((w = LIST_FIRST(&u->load_waiters)) != NULL) {
		user_unpark(w);
		if (!user_resident(u) && r == RECORD_EROLLBACK)
			resp = errmap_error(-EIO, "the store holds an older "
			    "copy of your consent than this node has seen; it "
			    "was refused: ask an administrator to revoke it, "
			    "then sign in again");
		else if (!user_resident(u))
			resp = errmap_error(r == -EBADMSG || r == -ENOKEY ? -EIO :
			    -ECONNREFUSED, "cannot read your stored consent");
		else
			resp = broker_resume(b, w);
		if (resp != NULL)
			waiter_reply(w, resp);
	}
	user_maybe_evict(b, u);
}

static void
load_done(struct storeq_job *j)
{
	load_finish(j, 0);
}

/*
 * Is u's record in memory? If not, park w until the store thread has
 * loaded it; the request is then run again (broker_resume). Returns 1
 * when loaded, 0 when parked, -ENOMEM.
 */
static int
load_or_park(struct broker *b, struct user *u, struct waiter *w)
{
	struct storeq_job *j;

	if (user_resident(u))
		return 1;
	if (!u->loading) {
		j = storeq_job_new(STOREQ_LOAD, u->name, load_done, u);
		if (j == NULL)
			return -ENOMEM;
		u->loading = 1;
		storeq_submit(b->q, j);
	}
	user_park(b, &u->load_waiters, w);
	return 0;
}

/* Keep the request in w so it can be run again after a load. */
static int
keep_request(struct waiter *w, const char *user, uid_t uid)
{
	if (w->user == NULL && (w->user = strdup(user)) == NULL)
		return -ENOMEM;
	w->uid = uid;
	return 0;
}

/*
 * The user and, if needed, a load: returns u when its record is in
 * memory; NULL with *resp = NULL when w was parked, or with *resp an
 * error reply.
 */
struct user *
broker_user_ready(struct broker *b, struct waiter *w, const char *name, uid_t uid,
    json_t **resp)
{
	struct user *u;
	int r;

	*resp = NULL;
	u = user_get(b, name, uid, &r);
	if (u == NULL || (w != NULL && keep_request(w, name, uid) < 0)) {
		*resp = errmap_error(-ENOMEM, "out of memory");
		return NULL;
	}
	r = w != NULL ? load_or_park(b, u, w) : user_resident(u);
	if (r < 0)
		*resp = errmap_error(r, "out of memory");
	return r == 1 ? u : NULL;
}

/* ---- store ---- */

/* A store failure for messages; a rollback in words. */
static const char *
store_reason(int r)
{
	if (r == RECORD_EROLLBACK)
		return "the stored record is older than this node has seen";
	return strerror(-r);
}

/* ---- refresh flights ---- */

static struct flight *
flight_find(struct user *u, const char *scope)
{
	struct flight *f;

	TAILQ_FOREACH(f, &u->flights, qlink)
		if (strcmp(f->scope, scope) == 0)
			return f;
	return NULL;
}

static void
flight_free(struct broker *b, struct flight *f)
{
	http_cancel(b->http, &f->req);
	event_timer_cancel(b->ev, &f->lock_timer);
	oauth_token_clear(&f->tok);
	free(f->scope);
	free(f);
}

/* Answer one waiter after a failed refresh: a still-valid token, or the error. */
static void
reply_after_failure(struct broker *b, struct user *u, struct waiter *w,
    const char *scope, const struct oauth_error *err)
{
	struct cache_entry *e = cache_get(b->cache, u->name, scope);

	if (err->cls == OAUTH_RETRY && e != NULL && e->expires_on > util_now()) {
		b->n.stale_served++;
		waiter_reply(w, tokens_reply(b, u, w, scope));
		return;
	}
	user_audit("token_refused", u, w->caller->uid, "token", scope, "refused",
	    NULL, NULL, NULL, err);
	waiter_reply(w, errmap_idp_error(err, b->throttle_until));
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

	if (e == NULL || e->timer != NULL || e->expires_on <= util_now())
		return;
	e->refresh_at = at > util_now() ? at : util_now() + REFRESH_BACKOFF_MIN;
	tokens_arm(b, e);
}

/* Answer every waiter of f with resp built per waiter. */
static void
flight_finish(struct broker *b, struct flight *f, const struct oauth_error *err)
{
	struct user *u = f->u;
	struct waiter *w;

	while ((w = LIST_FIRST(&f->waiters)) != NULL) {
		user_unpark(w);
		if (err == NULL)
			waiter_reply(w, tokens_reply(b, u, w, f->scope));
		else if (err->cls == OAUTH_CONSENT) {
			/* The consent flow answers them (consent_required + fields). */
			json_t *resp = flow_join(b, u, w);

			if (resp != NULL)
				waiter_reply(w, resp);
		} else
			reply_after_failure(b, u, w, f->scope, err);
	}
	if (err != NULL && err->cls == OAUTH_RETRY)
		retry_later(b, u, f->scope);
	if (f->locked) {
		struct storeq_job *j = storeq_job_new(STOREQ_UNLOCK, u->name, NULL, NULL);

		if (j != NULL)
			storeq_submit(b->q, j);
		f->locked = 0;
	}
	TAILQ_REMOVE(&u->flights, f, qlink);
	flight_free(b, f);
	flight_run_next(b, u);
	user_maybe_evict(b, u);
}

static void
handle_refresh_error(struct broker *b, struct user *u, struct flight *f,
    struct oauth_error *err)
{
	int64_t now = util_now();
	int r;

	b->n.idp_errors[err->cls]++;
	user_audit("refresh_failed", u, u->uid, NULL, f->scope, "error", NULL,
	    NULL, NULL, err);
	switch (err->cls) {
	case OAUTH_RETRY:
		u->failures++;
		u->backoff_until = now + refresh_backoff(u->failures,
		    err->retry_after, randombytes_random());
		if (err->is_throttled) {
			/* One client id serves the node: slow every user down. */
			int64_t ra = err->retry_after > 0 ? err->retry_after : 5;

			if (now + ra > b->throttle_until)
				b->throttle_until = now + ra;
		}
		log_info("user \"%s\": refresh failed, retrying later (%s)", u->name,
		    err->reason);
		break;
	case OAUTH_REAUTH:
		log_info("user \"%s\": refresh token rejected (%s); sign-in required",
		    u->name, err->reason);
		secret_free(u->rec->refresh_token);
		u->rec->refresh_token = NULL;
		u->rec->updated = now;
		user_purge_cache(b, u);
		u->epoch++;
		user_save(b, u, 0, NULL, NULL);
		break;
	case OAUTH_CONSENT:
		r = flow_may_start(b, u, 0);
		if (r == 0 && u->flow == NULL)
			r = flow_start(b, u, f->scope);
		if (r < 0 && u->flow == NULL) {
			/* No flow possible now: answer with the error itself. */
			err->cls = OAUTH_RETRY;
			snprintf(err->reason, sizeof(err->reason),
			    "consent required but no new sign-in can start yet");
		}
		break;
	case OAUTH_ADMIN:
		log_warnx("IdP rejected credd's configuration (%s): check tenant, "
		    "client_id and client secret", err->reason);
		break;
	default:
		break;
	}
}

static void
refresh_done(void *arg, const struct http_response *hr)
{
	struct flight *f = arg;
	struct user *u = f->u;
	struct broker *b = u->b;
	struct oauth_token tok = { 0 };
	struct oauth_error err = { 0 };
	int r;

	f->req = NULL;
	r = oauth_parse_token(hr->status, hr->error ? NULL : hr->body,
	    hr->retry_after, &tok, &err);
	if (f->epoch != u->epoch || u->rec == NULL) {
		/* Logged out or revoked meanwhile: drop what came back. */
		oauth_token_clear(&tok);
		err.cls = OAUTH_REAUTH;
		snprintf(err.reason, sizeof(err.reason), "signed out meanwhile");
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
	u->last_refresh = util_now();
	f->tok = tok;	/* held until the rotation is stored */
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

/* Send the refresh grant with the newest refresh token. */
static void
flight_send(struct broker *b, struct flight *f)
{
	struct user *u = f->u;
	struct oauth_error err = { 0 };
	struct secret *form = NULL;
	char scope[PROTO_STR_MAX + 64];
	int r;

	if (!user_has_consent(u)) {
		err.cls = OAUTH_REAUTH;
		snprintf(err.reason, sizeof(err.reason), "no consent");
		flight_finish(b, f, &err);
		return;
	}
	snprintf(scope, sizeof(scope), "%s %s", f->scope, OIDC_SCOPES);
	r = oauth_form_refresh(b->cf->client_id, u->rec->refresh_token, scope,
	    b->client_secret, &form);
	if (r == 0)
		r = http_post_form(b->http, b->token_url, form, refresh_done, f, &f->req);
	secret_free(form);
	if (r < 0) {
		err.cls = OAUTH_RETRY;
		snprintf(err.reason, sizeof(err.reason), "cannot send: %s", strerror(-r));
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
		f->lock_timer = event_timer_in(b->ev, 100 + randombytes_uniform(200),
		    lock_retry_cb, f);
		return;
	}
	f->locked = j->locked;	/* flight_finish unlocks, whatever follows */
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
		snprintf(err.reason, sizeof(err.reason), "store unavailable: %s",
		    store_reason(j->result));
		flight_finish(b, f, &err);
		return;
	}
	u->rolled_back = 0;
	if (!u->dirty && (j->rec == NULL || u->rec == NULL ||
	    j->rec->version > u->rec->version)) {
		if (j->rec == NULL || j->rec->refresh_token == NULL)
			user_purge_cache(b, u);
		user_apply(b, u, j->rec);
		j->rec = NULL; /* transferred */
		flow_record_changed(b, u);
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
		snprintf(err.reason, sizeof(err.reason), "cannot read the stored "
		    "consent: %s", store_reason(j->result));
		flight_finish(b, f, &err);
		return;
	}
	u->rolled_back = 0;
	if (!u->dirty && u->evicted != NULL) {
		user_apply(b, u, j->rec);
		j->rec = NULL; /* transferred */
		flow_record_changed(b, u);
	}
	flight_send(b, f);
}

static void
flight_start(struct broker *b, struct flight *f)
{
	struct user *u = f->u;
	struct oauth_error err = { 0 };
	struct storeq_job *j;
	int64_t now = util_now();

	f->running = 1;
	f->epoch = u->epoch;
	if (b->closing || !user_has_consent(u)) {
		err.cls = b->closing ? OAUTH_RETRY : OAUTH_REAUTH;
		snprintf(err.reason, sizeof(err.reason), b->closing ?
		    "shutting down" : "no consent");
		flight_finish(b, f, &err);
		return;
	}
	if (b->throttle_until > now || u->backoff_until > now) {
		err.cls = OAUTH_RETRY;
		err.is_throttled = b->throttle_until > now;
		err.retry_after = (b->throttle_until > u->backoff_until ?
		    b->throttle_until : u->backoff_until) - now;
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
static int
flight_join(struct broker *b, struct user *u, const char *scope, struct waiter *w)
{
	struct flight *f = flight_find(u, scope);

	if (f == NULL) {
		f = calloc(1, sizeof(*f));
		if (f == NULL || (f->scope = strdup(scope)) == NULL) {
			free(f);
			return -ENOMEM;
		}
		f->u = u;
		LIST_INIT(&f->waiters);
		TAILQ_INSERT_TAIL(&u->flights, f, qlink);
	}
	if (w != NULL)
		user_park(b, &f->waiters, w);
	flight_run_next(b, u);	/* may finish at once and answer w */
	return 0;
}

/* ---- ops ---- */

json_t *
broker_token(struct broker *b, struct waiter *w, const char *user, uid_t uid,
    const char *scope, int64_t min_valid)
{
	struct cache_entry *e;
	struct user *u;
	json_t *resp;
	int64_t now = util_now();
	int r;

	e = cache_get(b->cache, user, scope);
	u = user_find(b, user);
	if (e != NULL && u != NULL && u->uid == uid && u->loaded &&
	    cache_is_fresh(e, now, min_valid)) {
		b->n.cache_hits++;
		return tokens_reply(b, u, w, scope);
	}
	b->n.cache_misses++;
	if (w->scope == NULL && (w->scope = strdup(scope)) == NULL)
		return errmap_error(-ENOMEM, "out of memory");
	w->min_valid = min_valid;
	if (u != NULL && u->evicted != NULL && u->loaded && u->uid == uid &&
	    u->outcome == NULL) {
		/* Consented, record in the store: the refresh reads it. */
		if (keep_request(w, user, uid) < 0 ||
		    (r = flight_join(b, u, scope, w)) < 0)
			return errmap_error(-ENOMEM, "out of memory");
		return NULL;
	}
	u = broker_user_ready(b, w, user, uid, &resp);
	if (u == NULL)
		return resp;
	if (u->outcome != NULL) {
		/* Report the last sign-in's outcome once. */
		const char *o = u->outcome;

		u->outcome = NULL;
		if (strcmp(o, "account_mismatch") == 0)
			return errmap_error(-EKEYREJECTED, "the sign-in used an Entra "
			    "account that is not allowed for this user");
		if (strcmp(o, "consent_declined") == 0)
			return errmap_error(-ECANCELED, "the sign-in was declined");
	}
	e = cache_get(b->cache, user, scope);
	if (e != NULL && user_has_consent(u) && cache_is_fresh(e, now, min_valid))
		return tokens_reply(b, u, w, scope); /* e.g. after a reload */
	if (!user_has_consent(u)) {
		if (u->flow != NULL)
			return flow_join(b, u, w);
		r = flow_may_start(b, u, 0);
		if (r == 0)
			r = flow_start(b, u, NULL);
		if (r < 0) {
			if (u->rec != NULL && u->rec->oid != NULL && !u->logged_out)
				return errmap_error(-EKEYEXPIRED, "your sign-in has "
				    "expired or was revoked; run 'credctl login'");
			return errmap_error(r == -EBUSY ? -EBUSY : -ENOKEY,
			    "sign-in required, but no new sign-in can start yet; "
			    "run 'credctl login'");
		}
		return flow_join(b, u, w);
	}
	r = flight_join(b, u, scope, w);
	if (r < 0)
		return errmap_error(r, "out of memory");
	return NULL;
}

static void
status_scope(struct cache_entry *e, void *arg)
{
	json_t *arr = arg;
	json_t *o = json_object();

	json_object_set_new(o, "scope", json_string(e->scope));
	json_object_set_new(o, "expires_on", json_integer(e->expires_on));
	json_array_append_new(arr, o);
}

json_t *
broker_status(struct broker *b, struct waiter *w, const char *user, uid_t uid)
{
	struct user *u;
	json_t *resp, *scopes;

	u = broker_user_ready(b, w, user, uid, &resp);
	if (u == NULL)
		return resp;
	resp = proto_ok();
	json_object_set_new(resp, "user", json_string(user));
	json_object_set_new(resp, "state", json_string(user_state(u)));
	json_object_set_new(resp, "account", user_account(u) ?
	    json_string(user_account(u)) : json_null());
	scopes = json_array();
	cache_foreach_user(b->cache, user, status_scope, scopes);
	json_object_set_new(resp, "scopes", scopes);
	json_object_set_new(resp, "last_refresh", u->last_refresh ?
	    json_integer(u->last_refresh) : json_null());
	json_object_set_new(resp, "store", json_string(u->dirty ?
	    "refresh token not yet written" : u->rolled_back ?
	    "stored record rolled back (refused)" : "ok"));
	if (u->flow != NULL)
		flow_fields(u->flow, resp);
	return resp;
}

/* Drop u's tokens, flow and queued flights (not the record). */
static void
drop_user_state(struct broker *b, struct user *u)
{
	struct flight *f, *prev;

	u->epoch++;
	user_purge_cache(b, u);
	flow_cancel(b, u, -EKEYREVOKED, "signed out");
	/* Queued flights that are not running yet end now. */
	for (f = TAILQ_LAST(&u->flights, flight_queue); f != NULL; f = prev) {
		struct waiter *w;

		prev = TAILQ_PREV(f, flight_queue, qlink);
		if (f->running)
			continue;
		while ((w = LIST_FIRST(&f->waiters)) != NULL) {
			user_unpark(w);
			waiter_reply(w, errmap_error(-EKEYREVOKED, "signed out"));
		}
		TAILQ_REMOVE(&u->flights, f, qlink);
		flight_free(b, f);
	}
	u->outcome = NULL;
}

/* Answer the logout/revoke parked on u once the store has it. */
static void
forget_done(struct broker *b, struct user *u, int r)
{
	struct waiter *w;
	json_t *resp;

	while ((w = LIST_FIRST(&u->store_waiters)) != NULL) {
		user_unpark(w);
		user_audit(w->op == PROTO_OP_LOGOUT ? "logout" : "revoke", u,
		    w->caller->uid, proto_op_name(w->op), NULL, r < 0 ? "error" : "ok",
		    NULL, NULL, r < 0 ? "store not updated yet; retrying" : NULL, NULL);
		/* On a store error the pin-only record stays dirty and is
		 * retried; the tokens are already gone from this node. */
		resp = r < 0 && w->op == PROTO_OP_ADMIN_REVOKE ?
		    errmap_error(r, "cannot update the store") : proto_ok();
		waiter_reply(w, resp);
	}
}

static void
logout_saved(struct broker *b, struct user *u, void *ctx, int r)
{
	(void)ctx;
	forget_done(b, u, r);
}

static void
revoke_deleted(struct storeq_job *j)
{
	struct user *u = j->arg;

	user_store_note(u->b, u, j);
	if (j->result == 0)
		u->rolled_back = 0;
	forget_done(u->b, u, j->result);
}

json_t *
broker_logout(struct broker *b, struct waiter *w, const char *user, uid_t uid)
{
	struct user *u;
	json_t *resp;

	u = broker_user_ready(b, w, user, uid, &resp);
	if (u == NULL)
		return resp;
	drop_user_state(b, u);
	if (u->rec == NULL) {
		user_audit("logout", u, uid, "logout", NULL, "ok", NULL, NULL, NULL,
		    NULL);
		return proto_ok();
	}
	/* Keep the record for its account pin, without the refresh token. */
	secret_free(u->rec->refresh_token);
	u->rec->refresh_token = NULL;
	u->rec->updated = util_now();
	u->logged_out = 1;
	user_park(b, &u->store_waiters, w);
	user_save(b, u, 0, logout_saved, NULL);
	return NULL;
}

json_t *
broker_revoke(struct broker *b, struct waiter *w, const char *user, uid_t by_uid)
{
	struct storeq_job *j;
	struct user *u;
	int r;

	u = user_find(b, user);
	if (u == NULL) {
		/* Not seen on this node: the store is all there is. */
		u = user_get(b, user, (uid_t)-1, &r);
		if (u == NULL)
			return errmap_error(r, "out of memory");
	}
	(void)by_uid;
	if (keep_request(w, user, u->uid) < 0)
		return errmap_error(-ENOMEM, "out of memory");
	drop_user_state(b, u);
	record_free(u->rec);
	u->rec = NULL;
	user_forget_evicted(u);
	u->dirty = 0;
	u->logged_out = 0;
	u->loaded = 1;	/* known now: nothing */
	event_timer_cancel(b->ev, &u->save_timer);
	j = storeq_job_new(STOREQ_DELETE, u->name, revoke_deleted, u);
	if (j == NULL)
		return errmap_error(-ENOMEM, "out of memory");
	user_park(b, &u->store_waiters, w);
	storeq_submit(b->q, j);
	return NULL;
}

/* A LIST job names its admin by ticket: the admin may be gone by then. */
struct list_ctx {
	struct broker *b;
	uint64_t ticket;
};

static void
list_done(struct storeq_job *j)
{
	struct list_ctx *lc = j->arg;
	struct broker *b = lc->b;
	uint64_t ticket = lc->ticket;
	struct waiter *w;
	json_t *resp, *arr;
	size_t i;

	free(lc);
	/* The job names its waiter by ticket: the admin may be gone. */
	LIST_FOREACH(w, &b->list_waiters, link)
		if (w->ticket == ticket)
			break;
	if (w == NULL)
		return;
	user_unpark(w);
	if (j->result < 0) {
		waiter_reply(w, errmap_error(j->result, "cannot list the store"));
		return;
	}
	arr = json_array();
	for (i = 0; i < j->nitems; i++) {
		const struct storeq_item *it = &j->items[i];
		struct user *u = user_find(b, it->user);
		json_t *o = json_object();

		json_object_set_new(o, "user", json_string(it->user));
		if (it->readable && it->rolled_back) {
			json_object_set_new(o, "account", it->account ?
			    json_string(it->account) : json_null());
			json_object_set_new(o, "state",
			    json_string("rolled_back"));
		} else if (it->readable) {
			json_object_set_new(o, "account", it->account ?
			    json_string(it->account) : json_null());
			json_object_set_new(o, "last_refresh",
			    json_integer(it->last_refresh));
			json_object_set_new(o, "state", json_string(u != NULL &&
			    u->loaded ? user_state(u) : it->has_refresh_token ?
			    "ready" : "reauth_required"));
		} else
			json_object_set_new(o, "state", json_string("unreadable"));
		if (u != NULL) {
			json_t *scopes = json_array();

			cache_foreach_user(b->cache, u->name, status_scope, scopes);
			json_object_set_new(o, "scopes", scopes);
		}
		json_array_append_new(arr, o);
	}
	resp = proto_ok();
	json_object_set_new(resp, "users", arr);
	json_object_set_new(resp, "next_cursor", j->next ? json_string(j->next) :
	    json_null());
	waiter_reply(w, resp);
}

json_t *
broker_list(struct broker *b, struct waiter *w, const char *cursor, int64_t limit)
{
	struct list_ctx *lc;
	struct storeq_job *j;

	w->ticket = ++b->tickets;
	lc = malloc(sizeof(*lc));
	if (lc == NULL)
		return errmap_error(-ENOMEM, "out of memory");
	lc->b = b;
	lc->ticket = w->ticket;
	j = storeq_job_new(STOREQ_LIST, NULL, list_done, lc);
	if (j == NULL || (cursor != NULL && (j->cursor = strdup(cursor)) == NULL)) {
		storeq_job_free(j);	/* its done never runs */
		free(lc);
		return errmap_error(-ENOMEM, "out of memory");
	}
	j->limit = (size_t)limit;
	user_park(b, &b->list_waiters, w);
	storeq_submit(b->q, j);
	return NULL;
}

/* Users with an unwritten refresh token, a record in memory, a row refused. */
struct user_tally {
	uint64_t unsaved, resident, rolled;
};

static void
tally_user(struct user *u, void *arg)
{
	struct user_tally *t = arg;

	t->unsaved += u->dirty != 0;
	t->resident += u->rec != NULL;
	t->rolled += u->rolled_back != 0;
}

void
broker_stats(struct broker *b, json_t *o)
{
	json_t *idp = json_object();
	struct user_tally t = { 0 };
	size_t i;

	json_object_set_new(o, "cache_hits", json_integer((json_int_t)b->n.cache_hits));
	json_object_set_new(o, "cache_misses", json_integer((json_int_t)b->n.cache_misses));
	json_object_set_new(o, "cached_tokens", json_integer((json_int_t)cache_count(b->cache)));
	json_object_set_new(o, "refreshes", json_integer((json_int_t)b->n.refreshes));
	json_object_set_new(o, "refresh_ok", json_integer((json_int_t)b->n.refresh_ok));
	json_object_set_new(o, "stale_served", json_integer((json_int_t)b->n.stale_served));
	json_object_set_new(o, "records_evicted", json_integer((json_int_t)b->n.evictions));
	for (i = 1; i < OAUTH_CLASS_COUNT; i++)
		json_object_set_new(idp, oauth_class_name((enum oauth_class)i),
		    json_integer((json_int_t)b->n.idp_errors[i]));
	json_object_set_new(o, "idp_errors", idp);
	json_object_set_new(o, "device_flows_started", json_integer((json_int_t)b->n.flows_started));
	json_object_set_new(o, "device_flows_completed", json_integer((json_int_t)b->n.flows_completed));
	json_object_set_new(o, "device_flows_rejected", json_integer((json_int_t)b->n.flows_rejected));
	json_object_set_new(o, "device_flows_expired", json_integer((json_int_t)b->n.flows_expired));
	json_object_set_new(o, "idp_requests_in_flight", json_integer((json_int_t)http_inflight(b->http)));
	json_object_set_new(o, "users", json_integer((json_int_t)user_count(b)));
	user_foreach(b, tally_user, &t);
	json_object_set_new(o, "records_in_memory", json_integer((json_int_t)t.resident));
	json_object_set_new(o, "store", json_string(t.unsaved ?
	    "refresh tokens not yet written" : "ok"));
	json_object_set_new(o, "store_unwritten_users", json_integer((json_int_t)t.unsaved));
	json_object_set_new(o, "store_errors", json_integer((json_int_t)b->n.store_errors));
	json_object_set_new(o, "store_conflicts", json_integer((json_int_t)b->n.store_conflicts));
	json_object_set_new(o, "store_rollbacks", json_integer((json_int_t)b->n.store_rollbacks));
	json_object_set_new(o, "store_rollback_users", json_integer((json_int_t)t.rolled));
	json_object_set_new(o, "marks_errors", json_integer((json_int_t)b->n.marks_errors));
	json_object_set_new(o, "throttled_until", b->throttle_until > util_now() ?
	    json_integer(b->throttle_until) : json_null());
}

json_t *
broker_resume(struct broker *b, struct waiter *w)
{
	switch (w->op) {
	case PROTO_OP_TOKEN:
		return broker_token(b, w, w->user, w->uid, w->scope, w->min_valid);
	case PROTO_OP_LOGIN:
		return broker_login(b, w, w->user, w->uid, w->wait);
	case PROTO_OP_STATUS:
		return broker_status(b, w, w->user, w->uid);
	case PROTO_OP_LOGOUT:
		return broker_logout(b, w, w->user, w->uid);
	case PROTO_OP_SESSION_OPEN:
		return broker_session_open(b, w, w->user, w->uid, w->interactive);
	default:
		return errmap_error(-EIO, "cannot resume this request");
	}
}

/* ---- cluster change notifications ---- */

static void
reload_done(struct storeq_job *j)
{
	load_finish(j, 1);
}

/*
 * Another node changed u: reload now, so a logout or revoke there stops
 * this node serving within a round trip, not at the next cache miss.
 */
static void
reload(struct broker *b, struct user *u)
{
	struct storeq_job *j = storeq_job_new(STOREQ_LOAD, u->name, reload_done, u);

	if (j == NULL) {
		u->loaded = 0;
		return;
	}
	u->loading = 1;
	storeq_submit(b->q, j);
}

static void
resync_user(struct user *u, void *arg)
{
	(void)arg;
	if (!u->dirty)
		u->loaded = 0;
}

/* notify.c: another node changed user name (NULL: we reconnected). */
static void
store_changed(void *arg, const char *name)
{
	struct broker *b = arg;
	struct user *u;

	if (name == NULL) {
		/* Reconnected: changes may have been missed. Resync all. */
		user_foreach(b, resync_user, NULL);
		return;
	}
	u = user_find(b, name);
	if (u != NULL && u->loading)
		u->reload_pending = 1;	/* the load in flight may predate it */
	else if (u != NULL && !u->dirty)
		reload(b, u);
}

/* ---- life cycle ---- */

int
broker_new(const struct broker_deps *d, struct broker **out)
{
	struct broker *b;
	int r;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->ev = d->ev;
	b->cf = d->cf;
	b->st = d->st;
	b->seal = d->seal;
	b->http = d->http;
	b->db = d->db;
	b->client_secret = d->client_secret;
	b->cache = cache_new();
	b->refresh = flight_join;	/* tokens.c's proactive timers */
	LIST_INIT(&b->list_waiters);
	if (b->cache == NULL || user_table_init(b) < 0) {
		broker_free(b);
		return -ENOMEM;
	}
	r = oauth_url_token(b->cf->authority, b->cf->tenant, b->token_url,
	    sizeof(b->token_url));
	if (r == 0)
		r = oauth_url_devicecode(b->cf->authority, b->cf->tenant,
		    b->device_url, sizeof(b->device_url));
	if (r < 0) {
		broker_free(b);
		return r;
	}
	r = storeq_new(b->ev, b->st, b->seal, d->marks, b->cf->tenant, &b->q);
	if (r < 0) {
		broker_free(b);
		return r;
	}
	r = notify_new(b->ev, b->st, store_changed, b, &b->notify);
	if (r < 0) {
		broker_free(b);
		return r;
	}
	b->trim = memtrim_new(b->ev);	/* NULL: no trimming, as before */
	*out = b;
	return 0;
}

void
broker_set_config(struct broker *b, const struct config *cf)
{
	b->cf = cf;
}

static void
cache_drop_timer(struct cache_entry *e, void *arg)
{
	struct broker *b = arg;

	event_timer_cancel(b->ev, &e->timer);
}

static void
save_unwritten(struct user *u, void *arg)
{
	(void)arg;
	if (u->dirty)
		user_save(u->b, u, 0, NULL, NULL);
}

/* Cancel u's flow and flights (waiters unparked, unanswered), timers. */
static void
shutdown_user(struct user *u, void *arg)
{
	struct broker *b = u->b;
	struct flight *f;

	(void)arg;
	flow_cancel(b, u, -ECONNREFUSED, "credd is shutting down");
	while ((f = TAILQ_FIRST(&u->flights)) != NULL) {
		struct waiter *w;

		while ((w = LIST_FIRST(&f->waiters)) != NULL)
			user_unpark(w);
		TAILQ_REMOVE(&u->flights, f, qlink);
		flight_free(b, f);
	}
	event_timer_cancel(b->ev, &u->save_timer);
	if (u->dirty)
		log_warnx("user \"%s\": exiting with an unwritten "
		    "refresh token", u->name);
}

void
broker_free(struct broker *b)
{
	if (b == NULL)
		return;
	b->closing = 1;
	if (b->q != NULL) {
		/* A last try for refresh tokens the store has not taken yet. */
		user_foreach(b, save_unwritten, NULL);
		storeq_free(b->q);	/* runs every pending callback */
		b->q = NULL;
	}
	user_foreach(b, shutdown_user, NULL);
	user_table_free(b);
	if (b->cache != NULL) {
		cache_foreach(b->cache, cache_drop_timer, b);
		cache_free(b->cache);
	}
	notify_free(b->notify);
	memtrim_free(b->trim);
	free(b->tokbuf);	/* wiped after every use */
	free(b);
}
