/*
 * user.h - the broker's users: one struct user per login name known on
 * this node (DESIGN.md §3: the user is the login name), with its record
 * in memory (or only its account pin, once evicted), its flights and
 * flow, and the lists its requests wait on. user.c owns the table, the
 * record's life in memory and in the store, parking, purging a user's
 * cached tokens, and the audit lines about a user. flow.c, flight.c,
 * tokens.c and broker.c use it; it calls none of them.
 *
 * Loop only; nothing here blocks (store calls go to the store thread).
 */
#ifndef CREDD_USER_H
#define CREDD_USER_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "waiter.h"

struct broker;
struct record;
struct flight;
struct flow;
struct storeq_job;
struct oauth_error;
struct event_timer;
struct cae_marks;

TAILQ_HEAD(flight_queue, flight);

struct user {
	struct user *hnext;
	size_t hash;	  /* of name: a chain is walked without reading names */
	struct broker *b; /* back-pointer for callbacks (timers, jobs) */
	uid_t uid;
	unsigned epoch;	    /* bumped by logout/revoke/remote change */
	struct record *rec; /* NULL: no record, or evicted */
	char *evicted;	    /* record left memory (idle, written, consented):
				 * "oid\0username\0" kept for replies; NULL */
	struct waiter_list load_waiters; /* requests run again once loaded */
	struct waiter_list
	    store_waiters; /* logout/revoke: answered once written */
	struct flight_queue flights;
	struct flow *flow;
	struct event_timer *save_timer;
	const char *outcome;   /* last flow outcome to report once, or NULL */
	int64_t backoff_until; /* unix s */
	int64_t flow_unused_until; /* cooldown after an unused flow expired */
	int64_t *
	    flow_starts; /* flow.c's ring of start times, allocated at the first flow */
	int64_t last_refresh;
	struct cae_marks *cae_marks; /* claims-driven refreshes (cae.h) */
	unsigned saves;		     /* SAVE jobs in flight */
	unsigned save_failures;
	unsigned failures; /* consecutive RETRY failures */
	unsigned nflow_starts;
	/* Flags as bits: 100k users are worth a few bytes each. */
	unsigned loaded : 1;
	unsigned loading : 1; /* a LOAD is queued on the store thread */
	unsigned
	    reload_pending : 1;	  /* another node changed it during that LOAD */
	unsigned logged_out : 1;  /* record kept for the account pin only */
	unsigned dirty : 1;	  /* rec holds a refresh token not yet stored */
	unsigned rolled_back : 1; /* the stored row is older than this node's
				   * mark and was refused (status, stats) */
	char name[];		  /* the login name, in the same allocation */
};

/* ---- the table (struct broker's users, nbuckets, nusers) ---- */

/* The first buckets, at broker_new. 0 or -ENOMEM. */
int user_table_init(struct broker *b);
/* Free every user (flows, flights and timers must be gone already). */
void user_table_free(struct broker *b);
/* The user named name, or NULL. */
struct user *user_find(struct broker *b, const char *name);
/*
 * The Entra oid pinned in name's record when this node holds it in
 * memory, copied into dst. 0, -ENOENT (not known here), -ENAMETOOLONG.
 */
int user_pinned_oid(struct broker *b, const char *name, char *dst,
    size_t dstsz);
/*
 * Find or create u (no store access). NULL on ENOMEM (*err). A name
 * whose uid changed drops what it held (cached tokens first) and must
 * be loaded again; uid (uid_t)-1 keeps the uid known.
 */
struct user *user_get(struct broker *b, const char *name, uid_t uid, int *err);
/* Call fn for every user (fn may not add or free users). */
void user_foreach(struct broker *b, void (*fn)(struct user *u, void *arg),
    void *arg);
size_t user_count(const struct broker *b);

/* ---- the record ---- */

/*
 * Apply a record read from the store (NULL: none) to u; takes rec. The
 * caller then calls flow_cluster_record_changed (a remote flow may have ended).
 */
void user_apply(struct broker *b, struct user *u, struct record *rec);
/* Is u's record in memory and current (or held because unwritten)? */
int user_resident(const struct user *u);
/* Let go of the account pin an evicted record left. */
void user_forget_evicted(struct user *u);
/*
 * With more users than [store] records_in_memory, let u's record leave
 * memory if it is written and nothing of u is in progress.
 */
void user_maybe_evict(struct broker *b, struct user *u);
int user_has_consent(const struct user *u);
/* preferred_username, else oid; NULL when none is known. */
const char *user_account(const struct user *u);
/* status and admin_list: pending, ready, reauth_required or none. */
const char *user_state(const struct user *u);
/* The same without a sign-in running (session_open's answer). */
const char *user_session_state(const struct user *u);

/* ---- the store ---- */

typedef void user_saved_fn(struct broker *b, struct user *u, void *ctx,
    int result);
/*
 * After a store job for u: audit a row refused as rolled back (never
 * adopted; once until u's store reads or writes cleanly again) and count
 * a mark that could not be written. Loop only.
 */
void user_store_note(struct broker *b, struct user *u,
    const struct storeq_job *j);
/*
 * Write u->rec on the store thread; then(ctx, result) when done (may be
 * NULL). may_create: write it even if the stored record was deleted
 * meanwhile (a new consent); otherwise a deletion elsewhere (admin revoke)
 * wins and result is -ENOENT.
 */
void user_save(struct broker *b, struct user *u, int may_create,
    user_saved_fn *then, void *ctx);

/* ---- cached tokens, waiters, audit ---- */

/* Drop u's cached access tokens (and their refresh timers). */
void user_purge_cache(struct broker *b, struct user *u);
/* Park w on l; the requester going away unparks it (w->cancel). */
void user_park(struct broker *b, struct waiter_list *l, struct waiter *w);
/* Off its list, its deadline timer cancelled. */
void user_unpark(struct waiter *w);
/* One audit line about u (audit.h); err adds Entra's ids and class. */
void user_audit(const char *event, const struct user *u, uid_t uid,
    const char *op, const char *scope, const char *outcome, const char *cls,
    const char *fp, const char *reason, const struct oauth_error *err);

#endif
