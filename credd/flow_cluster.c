/*
 * flow_cluster.c - a consent flow shared by the nodes of a cluster
 * (docs/cluster.md): the claim that makes a flow the user's one flow in
 * the sealed record (a device flow's code, or a code flow's state, link
 * and verifier: STOREQ_FLOW_CLAIM), joining the flow another node claimed
 * first, and what a changed record means for a flow shown here (it ended
 * or was redeemed elsewhere, or a code flow took a device flow's place).
 * A part of flow (flow_int.h); the flows themselves are flow.c's,
 * flow_device.c's and flow_code.c's.
 *
 * Must never: log the device code, the verifier, the state or the link
 * id; start a second flow for a user while another node's is pending.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"

#include "broker_int.h"
#include "clock.h"
#include "config.h"
#include "flow.h"
#include "flow_int.h"
#include "log.h"
#include "oauth.h"
#include "record.h"
#include "storeq.h"
#include "user.h"

/* Show another node's pending device flow here (the record's fields). */
int
flow_cluster_adopt_fields(struct flow *f, const struct record_flow *rf)
{
	oauth_device_clear(&f->dev);
	f->dev.user_code = strdup(rf->user_code);
	f->dev.verification_uri = strdup(rf->verification_uri);
	f->dev.message = rf->message != NULL ? strdup(rf->message) : NULL;
	if (f->dev.user_code == NULL || f->dev.verification_uri == NULL)
		return -ENOMEM;
	f->expires_on = rf->expires_on;
	f->interval = rf->interval;
	f->remote = 1;
	return 0;
}

/* rec's code flow when another node runs it and it is pending. */
static const struct record_cflow *
foreign_cflow(struct broker *b, const struct record *rec)
{
	const struct record_cflow *cf = rec != NULL ? rec->cflow : NULL;

	return cf != NULL && cf->expires_on > clock_now(b->clk) &&
		strcmp(cf->node, b->cf->node) != 0 ?
	    cf :
	    NULL;
}

static void
claim_done(struct storeq_job *j)
{
	struct user *u = j->arg;
	struct flow *f = u->flow;
	struct broker *b = u->b;
	const struct record_cflow *cf;

	user_store_note(b, u, j);
	if (f == NULL || f->state != FLOW_CLAIMING)
		return; /* cancelled meanwhile */
	if (j->result < 0) {
		/* The store is unavailable: this node's code still works. */
		log_warnx(
		    "user \"%s\": cannot share the sign-in with other nodes "
		    "(%s)",
		    u->name, strerror(-j->result));
		flow_begin(b, u, f);
		return;
	}
	cf = foreign_cflow(b, j->rec);
	if (j->claimed)
		flow_code_claimed(f); /* redeemed only through the record */
	else if (cf == NULL && j->rec->flow == NULL) {
		flow_begin(b, u, f); /* nothing to join after all: ours */
		return;
	} else if ((cf != NULL ?
			   flow_code_adopt(f, cf, 1) :
			   flow_cluster_adopt_fields(f, j->rec->flow)) < 0) {
		flow_end(b, u, -ENOMEM, "out of memory", NULL);
		return;
	}
	if (!u->dirty) {
		user_apply(b, u, j->rec);
		j->rec = NULL; /* transferred */
		flow_cluster_record_changed(b, u);
	}
	if (u->flow == f)
		flow_begin(b, u, f);
}

/* flow_cluster_claim of a code flow: its record_cflow (flow_code.c). */
static int
claim_code(struct broker *b, struct user *u, struct flow *f)
{
	struct storeq_job *j;

	j = storeq_job_new(STOREQ_FLOW_CLAIM, u->name, claim_done, u);
	if (j == NULL)
		return -ENOMEM;
	j->uid = u->uid;
	j->cflow = flow_code_to_record(b, f);
	j->node = strdup(b->cf->node);
	if (j->cflow == NULL || j->node == NULL) {
		storeq_job_free(j);
		return -ENOMEM;
	}
	f->state = FLOW_CLAIMING;
	storeq_submit(b->q, j);
	return 0;
}

/* Cluster: make ours the user's one flow, or learn the one pending. */
int
flow_cluster_claim(struct broker *b, struct user *u, struct flow *f)
{
	struct record_flow *rf;
	struct storeq_job *j;

	if (f->method == FLOW_CODE)
		return claim_code(b, u, f);
	rf = calloc(1, sizeof(*rf));
	j = storeq_job_new(STOREQ_FLOW_CLAIM, u->name, claim_done, u);
	if (rf == NULL || j == NULL)
		goto fail;
	j->flow = rf;
	j->uid = u->uid;
	j->node = strdup(b->cf->node); /* NULL: every code flow is foreign */
	rf->device_code = secret_dup(f->dev.device_code);
	rf->user_code = strdup(f->dev.user_code);
	rf->verification_uri = strdup(f->dev.verification_uri);
	rf->message = f->dev.message ? strdup(f->dev.message) : NULL;
	rf->scope = strdup(f->scope);
	rf->node = strdup(b->cf->node);
	rf->expires_on = f->expires_on;
	rf->interval = f->interval;
	if (rf->device_code == NULL || rf->user_code == NULL ||
	    rf->verification_uri == NULL || rf->scope == NULL ||
	    rf->node == NULL)
		goto fail;
	f->state = FLOW_CLAIMING;
	storeq_submit(b->q, j);
	return 0;
fail:
	storeq_job_free(j); /* frees rf through j->flow */
	if (j == NULL)
		record_flow_free(rf);
	return -ENOMEM;
}

void
flow_cluster_record_changed(struct broker *b, struct user *u)
{
	const struct record_cflow *cf;
	struct flow *f = u->flow;

	if (f == NULL || f->state != FLOW_POLLING)
		return;
	if (f->method == FLOW_CODE) {
		/* A shared code flow ends where it is redeemed (or where it
		 * started, when it expires): here, when it leaves the record.
		 * One this node is redeeming is its own to end. */
		if (!flow_code_is_shared(f) || f->req != NULL ||
		    (u->rec != NULL && flow_code_same(f, u->rec->cflow)))
			return;
	} else if (!f->remote)
		return;
	else if (u->rec != NULL && u->rec->flow != NULL &&
	    strcmp(u->rec->flow->user_code, f->dev.user_code) == 0)
		return; /* still pending on the other node */
	cf = foreign_cflow(b, u->rec);
	if (cf != NULL && f->remote && flow_code_adopt(f, cf, 1) == 0) {
		/* Another node's code flow took its place (the fallback from
		 * a blocked device flow): shown here instead. */
		flow_begin(b, u, f);
		return;
	}
	if (user_has_consent(u))
		flow_end(b, u, 0, NULL, NULL);
	else
		flow_end(b, u, -ENOKEY,
		    "the sign-in ended on another node without "
		    "a consent; run 'credctl login'",
		    NULL);
}
