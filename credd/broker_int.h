/*
 * broker_int.h - the context the broker's parts share: broker.c (the
 * ops and the life cycle), user.c, tokens.c, flight.c and flow.c. It
 * holds what they all reach through a struct broker (the loop, the
 * store thread, the IdP's client, the cache, the tenant-wide breaker,
 * the counters). Each part's own state stays in its file (struct
 * flight, struct flow) or in user.h (struct user); callbacks find the
 * context through their argument (u->b, f->u->b), never a global.
 *
 * Nothing outside those five files includes this: dispatch.c, msi.c and
 * main.c see the broker only through broker.h.
 */
#ifndef CREDD_BROKER_INT_H
#define CREDD_BROKER_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "oauth.h"
#include "waiter.h"

struct broker;
struct user;
struct cache;
struct notify;
struct memtrim;
struct event_timer;

struct broker_counters {
	uint64_t cache_hits, cache_misses;
	uint64_t refreshes, refresh_ok, stale_served, evictions;
	uint64_t idp_errors[OAUTH_CLASS_COUNT];
	uint64_t flows_started, flows_completed, flows_rejected, flows_expired;
	uint64_t store_errors, store_conflicts;
	uint64_t store_rollbacks, marks_errors;
};

/*
 * Starts (or joins) a refresh of (u, scope); w may be NULL. 0 or
 * -ENOMEM. flight_join, called through b->refresh by tokens.c (which
 * sits below flight.c).
 */
typedef int broker_refresh_fn(struct broker *b, struct user *u,
    const char *scope, struct waiter *w);

struct broker {
	/* Borrowed (broker_deps), all parts. */
	struct event_loop *ev;
	const struct config *cf;
	struct store *st; /* broker.c: the store thread, notifications */
	const struct seal *seal;
	struct http *http; /* flight.c, flow.c */
	const struct secret *client_secret;
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
	char token_url[512];
	char device_url[512];
	/* broker.c's own. */
	struct waiter_list
	    list_waiters; /* admin_list, answered by the store thread */
	uint64_t tickets;
	struct notify *notify; /* the store's change notifications */
};

#endif
