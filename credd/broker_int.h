/*
 * broker_int.h - state shared by broker.c (users, cache, refreshes) and
 * flow.c (device-code flows). Private to those two files.
 */
#ifndef CREDD_BROKER_INT_H
#define CREDD_BROKER_INT_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <jansson.h>

#include "broker.h"
#include "oauth.h"
#include "user.h"
#include "waiter.h"

#define FLOW_RING 64 /* remembered device-flow start times per user */

struct user;
struct cache;
struct storeq_job;
struct http_req;
struct userdb_req;
struct event_timer;
struct notify;
struct memtrim;

enum flow_state { FLOW_STARTING, FLOW_CLAIMING, FLOW_POLLING, FLOW_SAVING };

/* A device-code flow; at most one per user. */
struct flow {
	struct user *u;
	enum flow_state state;
	char *scope;		/* resource scope the consent asks for */
	struct oauth_device dev;
	int64_t expires_on;	/* unix s */
	int64_t interval;	/* seconds; +5 on slow_down */
	struct http_req *req;
	struct userdb_req *name_req;	/* FLOW_STARTING: the uid's name, afresh */
	struct event_timer *timer;
	struct waiter_list start_waiters; /* want the device-code fields */
	struct waiter_list done_waiters;  /* login wait: want the outcome */
	unsigned epoch;
	uintptr_t seq;		/* names this flow to the store thread's callback */
	int remote;		/* another node's flow: shown here, polled there */
	struct oauth_token tok;	/* FLOW_SAVING: the first token, held until stored */
};


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
 * -ENOMEM. flight_join, called through b->refresh by tokens.c.
 */
typedef int broker_refresh_fn(struct broker *b, struct user *u,
    const char *scope, struct waiter *w);

struct broker {
	struct event_loop *ev;
	struct storeq *q;	/* the store thread: every store call goes there */
	int closing;
	struct waiter_list list_waiters; /* admin_list, answered by the store thread */
	uint64_t tickets;
	const struct config *cf;
	struct store *st;
	const struct seal *seal;
	struct http *http;
	const struct secret *client_secret;
	struct userdb *db;
	struct user **users;
	size_t nbuckets, nusers;
	struct cache *cache;
	broker_refresh_fn *refresh;	/* flight_join */
	char *tokbuf;		/* a token unpacked for a reply; wiped after */
	size_t tokbuf_len;
	int64_t throttle_until;	/* tenant-wide 429 breaker, unix s */
	struct notify *notify;	/* the store's change notifications */
	struct memtrim *trim;	/* malloc_trim after churn; NULL: none */
	uintptr_t flow_seq;	/* names flows to the store thread's callbacks */
	struct broker_counters n;
	char token_url[512];
	char device_url[512];
};

/* broker.c */
/*
 * u with its record in memory; or NULL and *resp: NULL when w was parked
 * until the store thread loads it (the op then runs again through
 * broker_resume), else an error reply.
 */
struct user *broker_user_ready(struct broker *b, struct waiter *w, const char *name,
    uid_t uid, json_t **resp);
/* Run a parked request again (its parameters are kept in w). */
json_t *broker_resume(struct broker *b, struct waiter *w);

#endif
