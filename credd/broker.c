/*
 * broker.c - the token life cycle's ops and the broker's life cycle
 * (DESIGN.md §5; see broker.h). An op finds its user (user.c) and, when
 * the user's record is not in memory, parks the request until the store
 * thread has loaded it and runs it again. A token request is answered
 * from the cache (tokens.c) when fresh; otherwise it joins the flight
 * for (user, scope) (flight.c), or, without a consent, the user's
 * device flow (flow.c). logout and admin_revoke drop what a user holds
 * here and answer once the store has it; admin_list pages the store;
 * stats adds the broker's counters. Another node's changes (notify.c)
 * reload the user at once.
 *
 * The parts below it share one context (broker_int.h) and call nothing
 * here: user.c <- tokens.c <- flow.c <- flight.c <- broker.c, with the
 * proactive refresh reaching flight.c through the b->refresh hook.
 *
 * Must never: block (the IdP is reached through idp.h, the store
 * through storeq.c), log or audit token material (fingerprints only),
 * or hand one user's token to another: every lookup is keyed by the
 * caller's own login name.
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

#include "broker.h"
#include "broker_int.h"
#include "cache.h"
#include "cae.h"
#include "clock.h"
#include "apptoken.h"
#include "audit.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "flight.h"
#include "flow.h"
#include "flow_int.h"
#include "idp.h"
#include "log.h"
#include "memtrim.h"
#include "notify.h"
#include "oauth.h"
#include "record.h"
#include "reply.h"
#include "storeq.h"
#include "tokens.h"
#include "user.h"

static void reload(struct broker *b, struct user *u);
static int broker_resume(struct broker *b, struct waiter *w, struct reply *out);

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
		if (!u->dirty &&
		    (!user_resident(u) ||
			(force &&
			    (j->rec == NULL || u->rec == NULL ||
				j->rec->version != u->rec->version)))) {
			user_apply(b, u, j->rec);
			j->rec = NULL; /* transferred */
			flow_cluster_record_changed(b, u);
		}
	} else if (r == RECORD_EROLLBACK) {
		/* Audited by user_store_note; what we hold stays. */
	} else {
		b->n.store_errors++;
		/* j->why names the key id a record needs that the ring lacks. */
		char q[LOG_VALUE_MAX], f[LOG_VALUE_MAX + 128];

		(void)snprintf(f, sizeof(f),
		    "event=store_read_failed user=%s error=%s",
		    log_value(q, u->name), log_errno_name(-r));
		log_event_warn(f,
		    "user \"%s\": cannot load the stored record: %s", u->name,
		    j->why[0] != '\0' ? j->why : strerror(-r));
		if (r == -EBADMSG || r == -ENOKEY)
			user_audit("record_unreadable", u, u->uid, NULL, NULL,
			    "error", NULL, NULL,
			    j->why[0] != '\0' ?
				j->why :
				r == -ENOKEY ?
				"sealed with an unknown key" :
				"does not open for this user (tampered or moved)",
			    NULL);
	}
	/* Run the parked requests again, now that the record is known. */
	while ((w = LIST_FIRST(&u->load_waiters)) != NULL) {
		struct reply rep = { 0 };
		int rr;

		user_unpark(w);
		if (!user_resident(u) && r == RECORD_EROLLBACK)
			rr = errmap_reply(&rep, -EIO,
			    "the store holds an older "
			    "copy of your consent than this node has seen; it "
			    "was refused: ask an administrator to revoke it, "
			    "then sign in again");
		else if (!user_resident(u))
			rr = errmap_reply(&rep,
			    r == -EBADMSG || r == -ENOKEY ? -EIO :
							    -ECONNREFUSED,
			    "cannot read your stored consent");
		else
			rr = broker_resume(b, w, &rep);
		waiter_finish(w, rr, &rep);
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

int
broker_keep_request(struct waiter *w, const char *user, uid_t uid)
{
	if (w->user == NULL && (w->user = strdup(user)) == NULL)
		return -ENOMEM;
	w->uid = uid;
	return 0;
}

/*
 * The user and, if needed, a load: 0 and *up when its record is in
 * memory; WAITER_PARKED when w was parked until it is; -ENOMEM.
 */
int
broker_user_ready(struct broker *b, struct waiter *w, const char *name,
    uid_t uid, struct user **up)
{
	struct user *u;
	int r;

	*up = NULL;
	u = user_get(b, name, uid, &r);
	if (u == NULL || (w != NULL && broker_keep_request(w, name, uid) < 0))
		return -ENOMEM;
	r = w != NULL ? load_or_park(b, u, w) : user_resident(u);
	if (r < 0)
		return r;
	if (r == 0)
		return WAITER_PARKED;
	*up = u;
	return 0;
}

/* ---- ops ---- */

int
broker_token(struct broker *b, struct waiter *w, const char *user, uid_t uid,
    const char *scope, int64_t min_valid, struct reply *out)
{
	return broker_token_cae(b, w, user, uid, scope, min_valid, 0, NULL,
	    out);
}

/*
 * A challenge for (u, key): refresh with its claims, join that refresh,
 * serve the token it got, or refuse within the window (cae.h).
 */
static int
claims_token(struct broker *b, struct user *u, struct waiter *w,
    const char *key, const char *claims, struct reply *out)
{
	struct cache_entry *e;
	int64_t now = clock_now(b->clk), since, retry_after;
	json_t *resp;
	int v;

	v = cae_marks_check(&u->cae_marks, key, claims, now, &since,
	    &retry_after);
	if (v < 0)
		return v;
	if (v == CAE_JOIN && !flight_pending(u, key, claims)) {
		/* The same challenge again: the token its refresh got. */
		e = cache_get(b->cache, u->name, key);
		if (e != NULL && e->issued_at >= since && e->expires_on > now)
			return tokens_reply_entry(b, u, w, e, key, out);
		retry_after = since + CAE_WINDOW - now;
		v = CAE_LIMITED;
	}
	if (v == CAE_LIMITED) {
		b->n.cae_limited++;
		resp = errmap_error(-EBUSY,
		    "a claims challenge for this scope was answered "
		    "less than 30 s ago; try again after retry_after seconds");
		if (resp != NULL &&
		    json_object_set_new(proto_error_obj(resp), "retry_after",
			json_integer(retry_after > 0 ? retry_after : 1)) != 0) {
			json_decref(resp);
			resp = NULL;
		}
		return reply_set_json(out, resp);
	}
	if (v == CAE_RUN)
		b->n.cae_refreshes++;
	if (flight_join_claims(b, u, key, claims, w) < 0)
		return -ENOMEM;
	return WAITER_PARKED;
}

int
broker_token_cae(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, const char *scope, int64_t min_valid, int cae,
    const char *claims, struct reply *out)
{
	struct cache_entry *e;
	struct user *u;
	int64_t now = clock_now(b->clk);
	char keybuf[PROTO_STR_MAX + sizeof(CAE_KEY_SUFFIX)];
	const char *key = scope; /* the hot path copies nothing */
	int r;

	if (w->app_identity == WAITER_APP) {
		/* The platform's own token (issue 14): no user, no store. */
		if (claims != NULL)
			return errmap_reply(out, -EBADMSG,
			    "a claims challenge is for a user's token; this "
			    "workload gets the app's");
		return apptoken_get(b, w, scope, min_valid, out);
	}
	/* CAE tokens only when the config declares the capability. */
	cae = cae && b->cf->client_capabilities != NULL;
	if (cae) {
		if (cae_key(scope, 1, keybuf, sizeof(keybuf)) < 0)
			return errmap_reply(out, -EDOM, "scope too long");
		key = keybuf;
	}
	u = user_find(b, user);
	/* The entries hold u->name itself: the lookup compares pointers. */
	e = cache_get(b->cache, u != NULL ? u->name : user, key);
	if (claims == NULL && e != NULL && u != NULL && u->uid == uid &&
	    u->loaded && cache_is_fresh(e, now, min_valid)) {
		b->n.cache_hits++;
		return tokens_reply_entry(b, u, w, e, key, out);
	}
	b->n.cache_misses++;
	if (w->scope == NULL && (w->scope = strdup(scope)) == NULL)
		return -ENOMEM;
	if (claims != NULL && w->claims == NULL &&
	    (w->claims = strdup(claims)) == NULL)
		return -ENOMEM;
	w->min_valid = min_valid;
	w->cae = cae;
	if (u != NULL && u->evicted != NULL && u->loaded && u->uid == uid &&
	    u->outcome == NULL) {
		/* Consented, record in the store: the refresh reads it. */
		if (broker_keep_request(w, user, uid) < 0)
			return -ENOMEM;
		if (claims != NULL)
			return claims_token(b, u, w, key, claims, out);
		if (flight_join(b, u, key, w) < 0)
			return -ENOMEM;
		return WAITER_PARKED;
	}
	r = broker_user_ready(b, w, user, uid, &u);
	if (r != 0)
		return r;
	if (u->outcome != NULL) {
		/* Report the last sign-in's outcome once. */
		const char *o = u->outcome;

		u->outcome = NULL;
		if (strcmp(o, "account_mismatch") == 0)
			return errmap_reply(out, -EKEYREJECTED,
			    "the sign-in used an "
			    "Entra account that is not allowed for this user");
		if (strcmp(o, "consent_declined") == 0)
			return errmap_reply(out, -ECANCELED,
			    "the sign-in was declined");
		if (strcmp(o, "issuer_mismatch") == 0)
			return errmap_reply(out, -EREMOTEIO,
			    FLOW_ISSUER_MISMATCH);
	}
	e = cache_get(b->cache, user, key);
	if (claims == NULL && e != NULL && user_has_consent(u) &&
	    cache_is_fresh(e, now, min_valid))
		return tokens_reply(b, u, w, key,
		    out); /* e.g. after a reload */
	if (!user_has_consent(u)) {
		if (w->app_identity == WAITER_USER_OR_APP && claims == NULL)
			return apptoken_get(b, w, scope, min_valid, out);
		if (w->no_signin != NULL) /* workload policy (issue 14) */
			return flow_no_signin(w, -ENOKEY, out);
		if (u->flow != NULL)
			return flow_join(b, u, w, out);
		r = flow_may_start(b, u, 0);
		if (r == 0)
			r = flow_start(b, u, NULL);
		if (r < 0) {
			if (u->rec != NULL && u->rec->oid != NULL &&
			    !u->logged_out)
				return errmap_reply(out, -EKEYEXPIRED,
				    "your sign-in "
				    "has expired or was revoked; run 'credctl login'");
			return errmap_reply(out, r == -EBUSY ? -EBUSY : -ENOKEY,
			    "sign-in required, but no new sign-in can start yet; "
			    "run 'credctl login'");
		}
		return flow_join(b, u, w, out);
	}
	if (claims != NULL)
		return claims_token(b, u, w, key, claims, out);
	r = flight_join(b, u, key, w);
	if (r < 0)
		return r;
	return WAITER_PARKED; /* answered by the flight, maybe already */
}

int
broker_login(struct broker *b, struct waiter *w, const char *user, uid_t uid,
    int64_t wait, struct reply *out)
{
	struct user *u;
	json_t *resp;
	int r, bad = 0;

	w->wait = wait;
	r = broker_user_ready(b, w, user, uid, &u);
	if (r != 0)
		return r;
	u->outcome = NULL; /* the user is asking again */
	if (user_has_consent(u)) {
		const char *account = user_account(u);

		resp = proto_ok();
		reply_put(resp, "state", json_string("ready"), &bad);
		reply_put(resp, "account",
		    account ? json_string(account) : json_null(), &bad);
		if (bad) {
			json_decref(resp);
			return -ENOMEM;
		}
		return reply_set_json(out, resp);
	}
	w->deadline_ms = clock_now_ms(b->clk) + wait * 1000;
	if (u->flow == NULL && w->no_signin != NULL)
		return flow_no_signin(w, -EACCES, out);
	if (u->flow == NULL) {
		r = flow_may_start(b, u, 1);
		if (r == 0)
			r = flow_start(b, u, NULL);
		if (r < 0)
			return errmap_reply(out, r == -EBUSY ? -EBUSY : r,
			    r == -EBUSY ?
				"too many sign-in attempts this hour; "
				"try again later" :
				"cannot start a sign-in");
	}
	return flow_join(b, u, w, out);
}

int
broker_session_open(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, int interactive, struct reply *out)
{
	struct user *u;
	int r;

	w->interactive = interactive;
	r = broker_user_ready(b, w, user, uid, &u);
	if (r != 0)
		return r;
	if (user_has_consent(u))
		return reply_set_json(out, flow_session_reply(w, u, "ready"));
	if (u->flow != NULL)
		return flow_join(b, u, w, out);
	if (!interactive || flow_may_start(b, u, 0) < 0 ||
	    flow_start(b, u, NULL) < 0) {
		/* Nobody would see a code (cron, batch), or none may start now. */
		return reply_set_json(out,
		    flow_session_reply(w, u, user_session_state(u)));
	}
	return flow_join(b, u, w, out);
}

/* A user's cached scopes (status, admin_list), failures remembered. */
struct scope_list {
	json_t *arr;
	int bad;
};

static void
status_scope(struct cache_entry *e, void *arg)
{
	struct scope_list *sl = arg;
	json_t *o = json_object();
	char scope[PROTO_STR_MAX + 8];
	int is_cae = cae_key_split(e->scope, scope, sizeof(scope));

	reply_put(o, "scope", json_string(is_cae >= 0 ? scope : e->scope),
	    &sl->bad);
	if (is_cae == 1)
		reply_put(o, "cae", json_true(), &sl->bad);
	reply_put(o, "expires_on", json_integer(e->expires_on), &sl->bad);
	reply_append(sl->arr, o, &sl->bad);
}

/* u's cached scopes as an array; NULL on ENOMEM. */
json_t *
broker_status_scopes(struct broker *b, const char *user)
{
	struct scope_list sl = { json_array(), 0 };

	if (sl.arr == NULL)
		return NULL;
	cache_foreach_user(b->cache, user, status_scope, &sl);
	if (sl.bad) {
		json_decref(sl.arr);
		return NULL;
	}
	return sl.arr;
}

int
broker_status(struct broker *b, struct waiter *w, const char *user, uid_t uid,
    struct reply *out)
{
	struct user *u;
	json_t *resp;
	int r, bad = 0;

	r = broker_user_ready(b, w, user, uid, &u);
	if (r != 0)
		return r;
	resp = proto_ok();
	reply_put(resp, "user", json_string(user), &bad);
	reply_put(resp, "state", json_string(user_state(u)), &bad);
	reply_put(resp, "account",
	    user_account(u) ? json_string(user_account(u)) : json_null(), &bad);
	reply_put(resp, "scopes", broker_status_scopes(b, user), &bad);
	reply_put(resp, "last_refresh",
	    u->last_refresh ? json_integer(u->last_refresh) : json_null(),
	    &bad);
	reply_put(resp, "store",
	    json_string(u->dirty   ? "refresh token not yet written" :
		    u->rolled_back ? "stored record rolled back (refused)" :
				     "ok"),
	    &bad);
	if (u->flow != NULL && flow_fields(u->flow, resp) < 0)
		bad = 1;
	if (bad) {
		json_decref(resp);
		return -ENOMEM;
	}
	return reply_set_json(out, resp);
}

static int
broker_resume(struct broker *b, struct waiter *w, struct reply *out)
{
	switch (w->op) {
	case PROTO_OP_TOKEN:
		return broker_token_cae(b, w, w->user, w->uid, w->scope,
		    w->min_valid, w->cae, w->claims, out);
	case PROTO_OP_LOGIN:
		return broker_login(b, w, w->user, w->uid, w->wait, out);
	case PROTO_OP_STATUS:
		return broker_status(b, w, w->user, w->uid, out);
	case PROTO_OP_LOGOUT:
		return broker_logout(b, w, w->user, w->uid, out);
	case PROTO_OP_SESSION_OPEN:
		return broker_session_open(b, w, w->user, w->uid,
		    w->interactive, out);
	case PROTO_OP_ADMIN_OFFBOARD:
		if (b->offboard_fn != NULL)
			return b->offboard_fn(b->offboard_arg, w, out);
		break;
	default:
		break;
	}
	return errmap_reply(out, -EIO, "cannot resume this request");
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
	struct storeq_job *j =
	    storeq_job_new(STOREQ_LOAD, u->name, reload_done, u);

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
		u->reload_pending = 1; /* the load in flight may predate it */
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
	b->db = d->db;
	b->clientauth = d->clientauth;
	if (d->clock != NULL)
		b->clk = d->clock;
	else {
		clock_init_real(&b->real_clock, b->ev);
		b->clk = &b->real_clock;
	}
	b->cache = cache_new();
	b->refresh = flight_join; /* tokens.c's proactive timers */
	LIST_INIT(&b->list_waiters);
	if (b->cache == NULL || user_table_init(b) < 0) {
		broker_free(b);
		return -ENOMEM;
	}
	b->idp = d->idp;
	b->http = d->http;
	if (b->idp == NULL) {
		r = idp_http_new(b->ev, d->http, d->disc, b->cf, b->clientauth,
		    &b->own_idp);
		if (r < 0) {
			broker_free(b);
			return r;
		}
		b->idp = b->own_idp;
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
	b->trim = memtrim_new(b->ev); /* NULL: no trimming, as before */
	*out = b;
	return 0;
}

void
broker_set_config(struct broker *b, const struct config *cf)
{
	b->cf = cf;
	if (b->own_idp != NULL)
		idp_http_set_config(b->own_idp, cf);
}

static void
cache_drop_timer(struct cache_entry *e, void *arg)
{
	struct broker *b = arg;

	clock_timer_cancel(b->clk, &e->timer);
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

	(void)arg;
	flow_cancel(b, u, -ECONNREFUSED, "credd is shutting down");
	flight_free_all(b, u);
	clock_timer_cancel(b->clk, &u->save_timer);
	if (u->dirty)
		log_warnx("user \"%s\": exiting with an unwritten "
			  "refresh token",
		    u->name);
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
		storeq_free(b->q); /* runs every pending callback */
		b->q = NULL;
	}
	user_foreach(b, shutdown_user, NULL);
	apptoken_free_all(b);
	user_table_free(b);
	flow_code_drop_tells(b); /* after the flows: they may add some */
	clock_timer_cancel(b->clk, &b->line_sweep);
	if (b->cache != NULL) {
		cache_foreach(b->cache, cache_drop_timer, b);
		cache_free(b->cache);
	}
	notify_free(b->notify);
	memtrim_free(b->trim);
	idp_http_free(b->own_idp); /* the flows and flights cancelled theirs */
	free(b->tokbuf);	   /* wiped after every use */
	free(b);
}

size_t
broker_store_pending(const struct broker *b)
{
	return storeq_pending(b->q);
}
