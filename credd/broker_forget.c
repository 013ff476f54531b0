/*
 * broker_forget.c - a user's consent ends (broker.h): logout (the user's
 * own), admin revoke (cluster-wide: the record deleted), the admin's list
 * of users, and what offboarding needs of the broker (the pinned oid, a
 * record loaded on a node that never served the user). A part of broker
 * (broker_int.h).
 *
 * Must never: answer before the store has the change, or leave a token,
 * a flow or a queued refresh of the user behind.
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

/* Drop u's tokens, flow and queued flights (not the record). */
static void
drop_user_state(struct broker *b, struct user *u)
{
	u->epoch++;
	user_purge_cache(b, u);
	flow_cancel(b, u, -EKEYREVOKED, "signed out");
	/* Queued flights that are not running yet end now. */
	flight_end_queued(b, u, -EKEYREVOKED, "signed out");
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
		    w->caller->uid, proto_op_name(w->op), NULL,
		    r < 0 ? "error" : "ok", NULL, NULL,
		    r < 0 ? "store not updated yet; retrying" : NULL, NULL);
		/* On a store error the pin-only record stays dirty and is
		 * retried; the tokens are already gone from this node. */
		resp = r < 0 && w->op == PROTO_OP_ADMIN_REVOKE ?
		    errmap_error(r, "cannot update the store") :
		    proto_ok();
		waiter_reply_json(w, resp);
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

int
broker_logout(struct broker *b, struct waiter *w, const char *user, uid_t uid,
    struct reply *out)
{
	struct user *u;
	int r;

	r = broker_user_ready(b, w, user, uid, &u);
	if (r != 0)
		return r;
	drop_user_state(b, u);
	if (u->rec == NULL) {
		user_audit("logout", u, uid, "logout", NULL, "ok", NULL, NULL,
		    NULL, NULL);
		return reply_set_json(out, proto_ok());
	}
	/* Keep the record for its account pin, without the refresh token. */
	secret_free(u->rec->refresh_token);
	u->rec->refresh_token = NULL;
	u->rec->updated = clock_now(b->clk);
	u->logged_out = 1;
	user_park(b, &u->store_waiters, w);
	user_save(b, u, 0, logout_saved, NULL);
	return WAITER_PARKED; /* answered once written, maybe already */
}

int
broker_pinned_oid(struct broker *b, const char *user, char *dst, size_t dstsz)
{
	return user_pinned_oid(b, user, dst, dstsz);
}

void
broker_set_offboard(struct broker *b, broker_resume_fn *fn, void *arg)
{
	b->offboard_fn = fn;
	b->offboard_arg = arg;
}

int
broker_load_user(struct broker *b, struct waiter *w, const char *user)
{
	struct user *u;

	return broker_user_ready(b, w, user, (uid_t)-1, &u);
}

int
broker_revoke(struct broker *b, struct waiter *w, const char *user,
    uid_t by_uid, struct reply *out)
{
	struct storeq_job *j;
	struct user *u;
	int r;

	u = user_find(b, user);
	if (u == NULL) {
		/* Not seen on this node: the store is all there is. */
		u = user_get(b, user, (uid_t)-1, &r);
		if (u == NULL)
			return r;
	}
	(void)by_uid;
	(void)out; /* always parked: answered once the store has it */
	if (broker_keep_request(w, user, u->uid) < 0)
		return -ENOMEM;
	drop_user_state(b, u);
	record_free(u->rec);
	u->rec = NULL;
	user_forget_evicted(u);
	u->dirty = 0;
	u->logged_out = 0;
	u->loaded = 1; /* known now: nothing */
	clock_timer_cancel(b->clk, &u->save_timer);
	j = storeq_job_new(STOREQ_DELETE, u->name, revoke_deleted, u);
	if (j == NULL)
		return -ENOMEM;
	user_park(b, &u->store_waiters, w);
	storeq_submit(b->q, j);
	return WAITER_PARKED;
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
	int bad = 0;

	free(lc);
	/* The job names its waiter by ticket: the admin may be gone. */
	LIST_FOREACH(w, &b->list_waiters, link)
	if (w->ticket == ticket)
		break;
	if (w == NULL)
		return;
	user_unpark(w);
	if (j->result < 0) {
		waiter_reply_json(w,
		    errmap_error(j->result, "cannot list the store"));
		return;
	}
	arr = json_array();
	for (i = 0; i < j->nitems; i++) {
		const struct storeq_item *it = &j->items[i];
		struct user *u = user_find(b, it->user);
		json_t *o = json_object();

		reply_put(o, "user", json_string(it->user), &bad);
		if (it->readable && it->rolled_back) {
			reply_put(o, "account",
			    it->account ? json_string(it->account) :
					  json_null(),
			    &bad);
			reply_put(o, "state", json_string("rolled_back"), &bad);
		} else if (it->readable) {
			reply_put(o, "account",
			    it->account ? json_string(it->account) :
					  json_null(),
			    &bad);
			reply_put(o, "last_refresh",
			    json_integer(it->last_refresh), &bad);
			reply_put(o, "state",
			    json_string(u != NULL && u->loaded ? user_state(u) :
				    it->has_refresh_token      ? "ready" :
							    "reauth_required"),
			    &bad);
		} else
			reply_put(o, "state", json_string("unreadable"), &bad);
		if (u != NULL)
			reply_put(o, "scopes", broker_status_scopes(b, u->name),
			    &bad);
		reply_append(arr, o, &bad);
	}
	resp = proto_ok();
	reply_put(resp, "users", arr, &bad);
	reply_put(resp, "next_cursor",
	    j->next ? json_string(j->next) : json_null(), &bad);
	if (bad) {
		json_decref(resp);
		resp = NULL; /* answered "internal" */
	}
	waiter_reply_json(w, resp);
}

int
broker_list(struct broker *b, struct waiter *w, const char *cursor,
    int64_t limit, struct reply *out)
{
	struct list_ctx *lc;
	struct storeq_job *j;

	(void)out; /* always parked: the store thread lists */
	w->ticket = ++b->tickets;
	lc = malloc(sizeof(*lc));
	if (lc == NULL)
		return -ENOMEM;
	lc->b = b;
	lc->ticket = w->ticket;
	j = storeq_job_new(STOREQ_LIST, NULL, list_done, lc);
	if (j == NULL ||
	    (cursor != NULL && (j->cursor = strdup(cursor)) == NULL)) {
		storeq_job_free(j); /* its done never runs */
		free(lc);
		return -ENOMEM;
	}
	j->limit = (size_t)limit;
	user_park(b, &b->list_waiters, w);
	storeq_submit(b->q, j);
	return WAITER_PARKED;
}
