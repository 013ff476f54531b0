/*
 * flow_code_take.c - a code flow's key used up in the cluster (docs/
 * cluster.md, "Code flows across nodes"): a state or a link id that
 * reaches this node (a callback, a short link, a paste) is first used up
 * in the user's sealed record through the store's compare-and-swap
 * (STOREQ_FLOW_TAKE), then the link is answered or the code redeemed here
 * (flow_code.c's flow_code_finish), on the flow this node had or one made
 * from the record. A key the record refuses (used, unknown, expired) is
 * answered as used, and audited.
 *
 * Must never: log or audit the code, the state or the link id; redeem a
 * code whose key the record did not give up to this node.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "audit.h"
#include "broker_int.h"
#include "flow.h"
#include "flow_int.h"
#include "record.h"
#include "storeq.h"
#include "user.h"

struct code_take {
	struct broker *b;
	struct secret *code;  /* a callback's or paste's (owned) */
	char *error, *desc;   /* or Entra's error (owned) */
	uintptr_t seq;	      /* a paste: the flow its waiter is parked on */
	broker_redeem_cb *cb; /* a callback's */
	void *arg;
	broker_link_cb *lcb; /* a link's */
	void *larg;
};

static void
take_free(struct code_take *t)
{
	if (t == NULL)
		return;
	secret_free(t->code);
	free(t->error);
	free(t->desc);
	free(t);
}

/* The flow u redeems a taken code with: its own, or one made for it. */
static struct flow *
take_flow(struct broker *b, struct user *u, const struct record_cflow *rf,
    uintptr_t seq)
{
	struct flow *f = u->flow;

	if (f != NULL && (seq != 0 ? f->seq == seq : flow_code_same(f, rf)) &&
	    f->req == NULL && flow_code_adopt(f, rf, 0) == 0)
		return f;
	if (seq != 0)
		return NULL; /* the paste's flow ended meanwhile */
	if (f != NULL)
		flow_cancel(b, u, -ECANCELED,
		    "the sign-in was finished through another sign-in link");
	f = flow_new(b, u, rf->scope);
	if (f == NULL)
		return NULL;
	if (flow_code_adopt(f, rf, 0) < 0) {
		flow_discard(b, f);
		return NULL;
	}
	u->flow = f;
	return f;
}

/* The key was refused by the record (used, unknown, expired). */
static void
take_refused(struct broker *b, struct code_take *t, const char *user, int r)
{
	struct user *u = user_find(b, user);
	struct flow *f = u != NULL ? u->flow : NULL;

	flow_code_refused(t->lcb != NULL ? "signin_link" : "signin_callback",
	    r == -ENOENT ? "used, unknown or expired sign-in (cluster)" :
			   "the store did not answer");
	if (t->lcb != NULL)
		t->lcb(t->larg, r == -ENOENT ? -ENOENT : -EIO, NULL);
	else if (t->cb != NULL)
		t->cb(t->arg, r == -ENOENT ? -ENOENT : r, user,
		    r == -ENOENT ? "this sign-in was already used" :
				   "the sign-in could not be looked up");
	else if (f != NULL && f->seq == t->seq && f->req == NULL && !b->closing)
		flow_end(b, u, r == -ENOENT ? -EBADMSG : r,
		    r == -ENOENT ? "that sign-in address was already used" :
				   "the sign-in could not be looked up; try "
				   "again",
		    NULL);
}

static void
take_done(struct storeq_job *j)
{
	struct code_take *t = j->arg;
	struct broker *b = t->b;
	struct user *u;
	struct flow *f;
	int err = 0;

	u = j->rec != NULL ? user_get(b, j->user, j->rec->uid, &err) :
			     user_find(b, j->user);
	if (u != NULL)
		user_store_note(b, u, j);
	if (j->result < 0 || b->closing || u == NULL) {
		take_refused(b, t, j->user,
		    j->result < 0 ? j->result : -ECANCELED);
		goto out;
	}
	if (!u->dirty) {
		user_apply(b, u, j->rec);
		j->rec = NULL; /* transferred */
	}
	if (t->lcb != NULL) {
		user_audit("signin_link", u, u->uid, NULL, j->cflow->scope,
		    "ok", NULL, NULL, "cluster", NULL);
		t->lcb(t->larg, 0, j->cflow->authorize_url);
		goto out;
	}
	f = take_flow(b, u, j->cflow, t->seq);
	if (f == NULL) {
		take_refused(b, t, j->user, -ENOMEM);
		goto out;
	}
	flow_code_taken(b, f); /* used up: here as in the record */
	if (t->cb != NULL) {
		f->redeem_cb = t->cb;
		f->redeem_arg = t->arg;
		user_audit("signin_callback", u, u->uid, NULL, f->scope,
		    "pending", NULL, NULL,
		    t->code != NULL ? "code (cluster)" : "error (cluster)",
		    NULL);
	}
	flow_code_finish(b, u, f, t->code, t->code != NULL ? NULL : t->error,
	    t->code != NULL ? NULL : t->desc);
out:
	take_free(t);
}

int
flow_code_take_submit(struct broker *b, const char *user, const char *key,
    int is_link, const struct secret *code, const char *error, const char *desc,
    uintptr_t seq, broker_redeem_cb *cb, void *arg, broker_link_cb *lcb,
    void *larg)
{
	struct code_take *t = calloc(1, sizeof(*t));
	struct storeq_job *j = NULL;

	if (t == NULL)
		return -ENOMEM;
	t->b = b;
	t->seq = seq;
	t->cb = cb;
	t->arg = arg;
	t->lcb = lcb;
	t->larg = larg;
	if ((code != NULL && (t->code = secret_dup(code)) == NULL) ||
	    (error != NULL && *error != '\0' &&
		(t->error = strdup(error)) == NULL) ||
	    (desc != NULL && (t->desc = strdup(desc)) == NULL))
		goto fail;
	j = storeq_job_new(STOREQ_FLOW_TAKE, user, take_done, t);
	if (j == NULL || (j->key = strdup(key)) == NULL)
		goto fail;
	j->take_link = is_link;
	storeq_submit(b->q, j);
	return 0;
fail:
	storeq_job_free(j);
	take_free(t);
	return -ENOMEM;
}
