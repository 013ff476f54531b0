/*
 * broker_int.h - the context the broker's parts share: broker.c (the
 * ops and the life cycle), broker_forget.c (logout, revoke, list),
 * user.c, tokens.c, flight.c, flow.c and apptoken.c. It
 * holds what they all reach through a struct broker (the loop, the
 * store thread, the IdP (idp.h) and the clock (clock.h), the cache, the tenant-wide breaker,
 * the counters). Each part's own state stays in its file (struct
 * flight, struct flow) or in user.h (struct user); callbacks find the
 * context through their argument (u->b, f->u->b), never a global.
 *
 * broker_metrics.c reads the counters for the metrics page and health.
 * Nothing outside those files includes this: dispatch.c, msi.c and
 * main.c see the broker only through broker.h.
 */
#ifndef CREDD_BROKER_INT_H
#define CREDD_BROKER_INT_H

#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "clock.h"
#include "oauth.h"
#include "waiter.h"

struct broker;
struct user;
struct cache;
struct notify;
struct memtrim;
struct http;
struct idp;
struct event_timer;
struct flow_tell;
struct app_entry;

struct broker_counters {
	uint64_t cache_hits, cache_misses;
	uint64_t cae_refreshes, cae_limited; /* claims challenges (cae.h) */
	uint64_t refreshes, refresh_ok, stale_served, evictions;
	uint64_t idp_errors[OAUTH_CLASS_COUNT];
	uint64_t flows_started, flows_completed, flows_rejected, flows_expired;
	uint64_t store_errors, store_conflicts;
	uint64_t store_rollbacks, marks_errors;
	uint64_t refresh_errors[OAUTH_CLASS_COUNT]; /* refresh grants only */
	/* apptoken.c (identity = app): answers from its cache, requests
	 * that waited, client credentials grants sent, ok, failed. */
	uint64_t app_hits, app_misses, app_grants, app_grant_ok;
	uint64_t app_grant_errors;
	/* Health (broker_metrics.c): the store's last answer (unix s, 0:
	 * none yet; a conflict or a missing record is an answer too) and the
	 * last record sealed with a key the ring lacks. */
	int64_t store_last_ok, store_last_fail, key_missing_at;
	int store_failing; /* the store's last answer was a failure */
	int store_last_error;
};

/*
 * Starts (or joins) a refresh of (u, scope); w may be NULL. 0 or
 * -ENOMEM. flight_join, called through b->refresh by tokens.c (which
 * sits below flight.c).
 */
typedef int broker_refresh_fn(struct broker *b, struct user *u,
    const char *scope, struct waiter *w);

struct broker {
	/* admin_offboard, run again once its user's record is loaded. */
	int (*offboard_fn)(void *arg, struct waiter *w, struct reply *out);
	void *offboard_arg;
	/* Borrowed (broker_deps), all parts. */
	struct event_loop *ev;
	const struct config *cf;
	struct store *st; /* broker.c: the store thread, notifications */
	const struct seal *seal;
	struct idp *idp;	 /* flight.c, flow.c: the grants (idp.h) */
	const struct clock *clk; /* every part: the time and its timers */
	const struct clientauth
	    *clientauth;   /* flows: may a grant be confidential */
	struct userdb *db; /* flow.c: a sign-in re-checks the uid's name */
	/* Owned. */
	struct storeq *q; /* the store thread: every store call goes there */
	int closing;
	struct user **users; /* user.c's table */
	size_t nbuckets, nusers;
	struct cache *cache;
	broker_refresh_fn *refresh; /* flight_join */
	char *tokbuf; /* tokens.c: a token unpacked for a reply; wiped after */
	size_t tokbuf_len;
	struct event_timer *line_sweep; /* tokens.c: idle reply lines go */
	int64_t throttle_until;		/* tenant-wide 429 breaker, unix s */
	uintptr_t flow_seq;   /* names flows to the store thread's callbacks */
	struct memtrim *trim; /* malloc_trim after churn; NULL: none */
	struct broker_counters n;
	struct idp *own_idp; /* broker.c: the real one, when deps gave none */
	/* The IdP's transport, read for its counters only (broker_metrics.c);
	 * NULL under a fake IdP. */
	struct http *http;
	struct clock real_clock; /* broker.c: the clock, when deps gave none */
	/* broker.c's own. */
	struct waiter_list
	    list_waiters; /* admin_list, answered by the store thread */
	uint64_t tickets;
	struct notify *notify; /* the store's change notifications */
	/* flow_code.c: callback outcomes not yet told (told from a timer,
	 * never inside broker_signin_redeem); dropped by broker_free. */
	struct flow_tell *tells;
	/* apptoken.c: the app's tokens, one entry per scope (issue 14). */
	struct app_entry *apps;
};

/* Keep the request in w so it can be run again after a load (broker.c). */
int broker_keep_request(struct waiter *w, const char *user, uid_t uid);

/*
 * The user and, if needed, a load: 0 and *up when its record is in
 * memory; WAITER_PARKED when w was parked until it is; -ENOMEM
 * (broker.c).
 */
int broker_user_ready(struct broker *b, struct waiter *w, const char *name,
    uid_t uid, struct user **up);
/* user's cached scopes as a JSON array; NULL on ENOMEM (broker.c). */
json_t *broker_status_scopes(struct broker *b, const char *user);

#endif
