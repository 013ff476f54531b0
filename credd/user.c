/*
 * user.c - the broker's users (user.h): the table by login name; each
 * user's record in memory, applied from the store and, with many users
 * known, evicted to it once written; writes to the store
 * (compare-and-swap on the store thread, retried with backoff while the
 * unwritten refresh token stays pinned in memory); the lists requests
 * park on; a user's cached tokens purged; the audit lines about a user.
 *
 * Must never: call up into flows, flights or ops (they call here, and
 * whoever applies a record tells flow.c itself), let cached tokens
 * outlive a change of the user's uid or account, or let an unwritten
 * refresh token leave memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "broker_int.h"
#include "clock.h"
#include "cache.h"
#include "cae.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "memtrim.h"
#include "oauth.h"
#include "record.h"
#include "refresh.h"
#include "storeq.h"
#include "user.h"

/* ---- the table ---- */

static size_t
hash_name(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int
users_grow(struct broker *b)
{
	size_t n = b->nbuckets ? b->nbuckets * 2 : 256, i;
	struct user **nb, *u, *next;

	nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return -ENOMEM;
	for (i = 0; i < b->nbuckets; i++)
		for (u = b->users[i]; u != NULL; u = next) {
			next = u->hnext;
			u->hnext = nb[u->hash % n];
			nb[u->hash % n] = u;
		}
	free(b->users);
	b->users = nb;
	b->nbuckets = n;
	return 0;
}

struct user *
user_find(struct broker *b, const char *name)
{
	struct user *u;
	size_t h;

	if (b->nbuckets == 0)
		return NULL;
	h = hash_name(name);
	for (u = b->users[h % b->nbuckets]; u != NULL; u = u->hnext)
		if (u->hash == h && strcmp(u->name, name) == 0)
			return u;
	return NULL;
}

/* The first table; 0 or -ENOMEM. */
int
user_table_init(struct broker *b)
{
	return users_grow(b);
}

void
user_foreach(struct broker *b, void (*fn)(struct user *u, void *arg), void *arg)
{
	struct user *u, *next;
	size_t i;

	for (i = 0; i < b->nbuckets; i++)
		for (u = b->users[i]; u != NULL; u = next) {
			next = u->hnext;
			fn(u, arg);
		}
}

size_t
user_count(const struct broker *b)
{
	return b->nusers;
}

void
user_table_free(struct broker *b)
{
	struct user *u, *next;
	size_t i;

	for (i = 0; i < b->nbuckets; i++)
		for (u = b->users[i]; u != NULL; u = next) {
			next = u->hnext;
			record_free(u->rec);
			user_forget_evicted(u);
			free(u->flow_starts);
			cae_marks_free(u->cae_marks);
			free(u);
		}
	free(b->users);
	b->users = NULL;
	b->nbuckets = b->nusers = 0;
}

/*
 * Apply a record loaded from the store (or NULL: none) to u. The caller
 * then tells flow_cluster.c (flow_cluster_record_changed), which sits above this file.
 */
void
user_apply(struct broker *b, struct user *u, struct record *rec)
{
	const char *held = u->rec != NULL ? u->rec->oid : u->evicted;

	/* Logged out, revoked or consented again elsewhere: the cached
	 * tokens go. A rotation elsewhere leaves them valid. */
	if (rec == NULL || rec->refresh_token == NULL ||
	    (held != NULL && (rec->oid == NULL || strcmp(rec->oid, held) != 0)))
		user_purge_cache(b, u);
	record_free(u->rec);
	user_forget_evicted(u);
	u->rec = rec;
	if (rec != NULL && rec->uid != u->uid && u->uid != (uid_t)-1) {
		/* A reused login name: the consent belonged to another uid. */
		log_info("user \"%s\": record was made for uid %u, now uid %u; "
			 "starting clean",
		    u->name, (unsigned)rec->uid, (unsigned)u->uid);
		secret_free(rec->refresh_token);
		rec->refresh_token = NULL;
		free(rec->oid);
		free(rec->tid);
		free(rec->username);
		rec->oid = rec->tid = rec->username = NULL;
		rec->uid = u->uid;
	}
	if (rec != NULL)
		u->last_refresh = rec->last_refresh;
	u->loaded = 1;
}

struct user *
user_get(struct broker *b, const char *name, uid_t uid, int *err)
{
	struct user *u;
	size_t h;

	*err = 0;
	u = user_find(b, name);
	if (u == NULL) {
		if (b->nusers >= b->nbuckets && users_grow(b) < 0) {
			*err = -ENOMEM;
			return NULL;
		}
		u = calloc(1, sizeof(*u) + strlen(name) + 1);
		if (u == NULL) {
			*err = -ENOMEM;
			return NULL;
		}
		memcpy(u->name, name, strlen(name) + 1);
		u->hash = hash_name(name);
		u->b = b;
		u->uid = uid;
		TAILQ_INIT(&u->flights);
		LIST_INIT(&u->load_waiters);
		LIST_INIT(&u->store_waiters);
		h = u->hash % b->nbuckets;
		u->hnext = b->users[h];
		b->users[h] = u;
		b->nusers++;
	}
	if (u->uid != uid && uid != (uid_t)-1) {
		/* The name now maps to another uid: forget what we held,
		 * cached tokens first, so the new uid never sees them. */
		user_purge_cache(b, u);
		u->epoch++;
		u->uid = uid;
		u->loaded = 0;
	}
	return u;
}

int
user_has_consent(const struct user *u)
{
	if (u->evicted != NULL)
		return 1; /* only consents are evicted */
	return u->rec != NULL && u->rec->refresh_token != NULL;
}

const char *
user_account(const struct user *u)
{
	const char *name;

	if (u->evicted != NULL) {
		name = u->evicted + strlen(u->evicted) + 1;
		return name[0] != '\0' ? name : u->evicted;
	}
	if (u->rec == NULL)
		return NULL;
	return u->rec->username != NULL ? u->rec->username : u->rec->oid;
}

/* ---- records out of memory ----
 *
 * With more users known than [store] records_in_memory, the record of a
 * user with nothing in progress leaves memory once it is written: only
 * the account pin stays (for replies and audit), and the next refresh,
 * status or sign-in reads it from the store again. Cached tokens stay.
 * An unwritten refresh token never leaves (DESIGN §5).
 */

/* Is u's record in memory and current (or held because unwritten)? */
int
user_resident(const struct user *u)
{
	return (u->loaded && u->evicted == NULL) || u->dirty;
}

void
user_forget_evicted(struct user *u)
{
	free(u->evicted);
	u->evicted = NULL;
}

void
user_maybe_evict(struct broker *b, struct user *u)
{
	const struct record *r = u->rec;
	size_t lo, ln;
	char *pin;

	if (b->nusers <= (size_t)b->cf->records_in_memory || b->closing ||
	    r == NULL || r->refresh_token == NULL || r->oid == NULL ||
	    r->flow != NULL || r->cflow != NULL || r->uid != u->uid ||
	    !u->loaded || u->dirty || u->saves > 0 || u->loading ||
	    u->reload_pending || u->logged_out || u->flow != NULL ||
	    !TAILQ_EMPTY(&u->flights) || !LIST_EMPTY(&u->load_waiters) ||
	    !LIST_EMPTY(&u->store_waiters))
		return;
	lo = strlen(r->oid);
	ln = r->username != NULL ? strlen(r->username) : 0;
	if ((pin = malloc(lo + ln + 2)) == NULL)
		return; /* keep it resident */
	memcpy(pin, r->oid, lo + 1);
	if (ln > 0)
		memcpy(pin + lo + 1, r->username, ln);
	pin[lo + 1 + ln] = '\0';
	record_free(u->rec);
	u->rec = NULL;
	u->evicted = pin;
	b->n.evictions++;
	memtrim_note(b->trim, 1);
}

/* ---- parking waiters ---- */

void
user_park(struct broker *b, struct waiter_list *l, struct waiter *w)
{
	LIST_INSERT_HEAD(l, w, link);
	w->linked = 1;
	w->parked_on = b;
	w->cancel = user_unpark; /* the requester went away */
}

void
user_unpark(struct waiter *w)
{
	struct broker *b = w->parked_on;

	if (w->linked) {
		LIST_REMOVE(w, link);
		w->linked = 0;
	}
	if (b != NULL)
		clock_timer_cancel(b->clk, &w->timer);
}

/* ---- audit ---- */

void
user_audit(const char *event, const struct user *u, uid_t uid, const char *op,
    const char *scope, const char *outcome, const char *cls, const char *fp,
    const char *reason, const struct oauth_error *err)
{
	struct audit_event ev = {
		.event = event,
		.uid = uid,
		.user = u != NULL ? u->name : NULL,
		.op = op,
		.scope = scope,
		.outcome = outcome,
		.cls = cls,
		.oid = u == NULL   ? NULL :
		    u->rec != NULL ? u->rec->oid :
				     u->evicted,
		.fp = fp,
		.reason = reason,
	};

	if (err != NULL) {
		ev.trace_id = err->trace_id[0] ? err->trace_id : NULL;
		ev.correlation_id =
		    err->correlation_id[0] ? err->correlation_id : NULL;
		if (ev.cls == NULL)
			ev.cls = oauth_class_name(err->cls);
		if (ev.reason == NULL)
			ev.reason = err->reason;
	}
	audit_log(&ev);
}

/* ---- store ---- */

void
user_store_note(struct broker *b, struct user *u, const struct storeq_job *j)
{
	const struct record_rollback *rb = &j->rb;
	char reason[256], q[LOG_VALUE_MAX], f[LOG_VALUE_MAX + 64];
	int n;

	/* Health: did the store answer? A conflict, a missing record or a
	 * refused row is an answer; an unreadable record is the ring's. */
	if (j->result == -ENOKEY)
		b->n.key_missing_at = clock_now(b->clk);
	else if (j->result >= 0 || j->result == -ENOENT ||
	    j->result == -EAGAIN || j->result == -EBADMSG ||
	    j->result == RECORD_EROLLBACK) {
		b->n.store_last_ok = clock_now(b->clk);
		b->n.store_failing = 0;
	} else {
		b->n.store_last_fail = clock_now(b->clk);
		b->n.store_failing = 1;
		b->n.store_last_error = j->result;
	}
	if (j->marks_err < 0) {
		b->n.marks_errors++;
		log_warnx("user \"%s\": cannot write its high-water mark (%s); "
			  "it holds in memory until the next write",
		    u->name, strerror(-j->marks_err));
	}
	if (j->rollback == 0)
		return;
	b->n.store_rollbacks++;
	if (j->rollback == 1 && u->rolled_back)
		return; /* audited when first seen; retries add no lines */
	if (rb->mark.deleted)
		n = snprintf(reason, sizeof(reason),
		    "stored epoch %llu gen "
		    "%llu: this node saw epoch %llu deleted",
		    (unsigned long long)rb->epoch, (unsigned long long)rb->gen,
		    (unsigned long long)rb->mark.epoch);
	else
		n = snprintf(reason, sizeof(reason),
		    "stored epoch %llu gen "
		    "%llu is older than this node's mark, epoch %llu gen %llu",
		    (unsigned long long)rb->epoch, (unsigned long long)rb->gen,
		    (unsigned long long)rb->mark.epoch,
		    (unsigned long long)rb->mark.gen);
	if (n > 0 && (size_t)n < sizeof(reason))
		snprintf(reason + n, sizeof(reason) - (size_t)n, "; %s",
		    j->rollback == 2 ?
			"overwritten by this node's newer record" :
			"refused");
	(void)snprintf(f, sizeof(f), "event=store_rollback user=%s",
	    log_value(q, u->name));
	log_event_warn(f, "user \"%s\": rolled-back record in the store: %s",
	    u->name, reason);
	user_audit("record_rollback", u, u->uid, NULL, NULL, "refused", NULL,
	    NULL, reason, NULL);
	if (j->rollback == 1)
		u->rolled_back = 1;
}

static void save_retry_cb(struct event_loop *ev, void *arg);

struct save_ctx {
	struct user *u;
	user_saved_fn *then;
	void *ctx;
};

static void
save_done(struct storeq_job *j)
{
	struct save_ctx *sc = j->arg;
	struct user *u = sc->u;
	struct broker *b = u->b;
	int r = j->result;

	u->saves--;
	user_store_note(b, u, j);
	if (r == -ENOENT) {
		/* Deleted elsewhere (admin revoke): that wins over our write. */
		log_info(
		    "user \"%s\": record was revoked meanwhile; not written",
		    u->name);
		if (u->rec != NULL) {
			record_free(u->rec);
			u->rec = NULL;
			u->epoch++;
			user_purge_cache(b, u);
		}
		u->dirty = 0;
		u->save_failures = 0;
		clock_timer_cancel(b->clk, &u->save_timer);
	} else if (r == 0) {
		if (j->replaced) {
			/* Another node pinned another account: theirs wins. */
			log_warnx(
			    "user \"%s\": another node stored a consent by "
			    "another account; keeping theirs",
			    u->name);
			record_free(u->rec);
			u->rec = j->rec;
			j->rec = NULL; /* transferred */
			u->epoch++;
			user_purge_cache(b, u);
		} else if (u->rec != NULL) {
			u->rec->version = j->rec->version;
			u->rec->epoch = j->rec->epoch;
			u->rec->gen = j->rec->gen;
		}
		u->rolled_back = 0;
		if (u->dirty && u->saves == 0) {
			log_info("user \"%s\": pending refresh token written",
			    u->name);
			u->dirty = 0;
		}
		u->save_failures = 0;
		if (u->saves == 0)
			clock_timer_cancel(b->clk, &u->save_timer);
	} else {
		b->n.store_errors++;
		if (!u->dirty) {
			char q[LOG_VALUE_MAX], f[LOG_VALUE_MAX + 128];

			(void)snprintf(f, sizeof(f),
			    "event=store_write_failed user=%s error=%s",
			    log_value(q, u->name), log_errno_name(-r));
			log_event_warn(f,
			    "user \"%s\": cannot write the record (%s); keeping "
			    "the refresh token in memory and retrying",
			    u->name, strerror(-r));
		}
		u->dirty = 1;
		u->save_failures++;
		if (u->save_timer == NULL && !b->closing)
			u->save_timer = clock_timer_in(b->clk,
			    refresh_backoff(u->save_failures, -1,
				randombytes_random()) *
				1000,
			    save_retry_cb, u);
	}
	if (sc->then != NULL)
		sc->then(b, u, sc->ctx, r);
	free(sc);
	user_maybe_evict(b, u);
}

/*
 * Write a copy of u->rec on the store thread (CAS; a lost race for the
 * same account is merged there). then(ctx, result) runs on the loop once
 * it is written or has failed; on failure the record stays in memory
 * (u->dirty) and a timer retries with backoff.
 */
void
user_save(struct broker *b, struct user *u, int may_create, user_saved_fn *then,
    void *ctx)
{
	struct storeq_job *j;
	struct save_ctx *sc;

	if (u->rec == NULL) {
		if (then != NULL)
			then(b, u, ctx, 0);
		return;
	}
	sc = calloc(1, sizeof(*sc));
	j = storeq_job_new(STOREQ_SAVE, u->name, save_done, sc);
	if (sc == NULL || j == NULL || (j->rec = record_dup(u->rec)) == NULL) {
		free(sc);
		storeq_job_free(j);
		u->dirty = 1;
		if (then != NULL)
			then(b, u, ctx, -ENOMEM);
		return;
	}
	sc->u = u;
	sc->then = then;
	sc->ctx = ctx;
	j->may_create = may_create;
	u->saves++;
	storeq_submit(b->q, j);
}

static void
save_retry_cb(struct event_loop *ev, void *arg)
{
	struct user *u = arg;

	(void)ev;
	u->save_timer = NULL;
	if (u->dirty)
		user_save(u->b, u, 0, NULL, NULL);
}

/* ---- cached tokens ---- */

struct purge_arg {
	struct broker *b;
	const char *user;
};

static void
purge_cb(struct cache_entry *e, void *arg)
{
	struct purge_arg *pa = arg;

	if (strcmp(e->user, pa->user) != 0)
		return;
	clock_timer_cancel(pa->b->clk, &e->timer);
	cache_del(pa->b->cache, e);
}

/* O(cached tokens); logout, revoke and REAUTH are rare. */
void
user_purge_cache(struct broker *b, struct user *u)
{
	struct purge_arg pa = { b, u->name };

	cache_foreach(b->cache, purge_cb, &pa);
	/* A new consent may answer a challenge at once. */
	cae_marks_clear(&u->cae_marks);
}

/* ---- states ---- */

/* status, admin_list: "pending" while a sign-in runs. */
const char *
user_state(const struct user *u)
{
	if (u->flow != NULL)
		return "pending";
	if (user_has_consent(u))
		return "ready";
	if (u->rec != NULL && u->rec->oid != NULL && !u->logged_out)
		return "reauth_required";
	return "none";
}

/* A session's state when no sign-in is running. */
const char *
user_session_state(const struct user *u)
{
	if (user_has_consent(u))
		return "ready";
	if (u->rec != NULL && u->rec->oid != NULL && !u->logged_out)
		return "reauth_required";
	return "none";
}

int
user_pinned_oid(struct broker *b, const char *name, char *dst, size_t dstsz)
{
	struct user *u = user_find(b, name);
	int n;

	if (u == NULL || u->rec == NULL || u->rec->oid == NULL)
		return -ENOENT;
	n = snprintf(dst, dstsz, "%s", u->rec->oid);
	return n < 0 || (size_t)n >= dstsz ? -ENAMETOOLONG : 0;
}
