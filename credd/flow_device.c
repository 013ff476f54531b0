/*
 * flow_device.c - the device code method of a consent flow (flow.h), a
 * part of flow.c (flow_int.h): the device code asked for, its polls at
 * the interval (slowed by slow_down and the tenant's 429 breaker), its
 * expiry, and the fallback to the code flow when Conditional Access
 * blocks it (signin = device_code,auth_code).
 *
 * Must never: poll faster than Entra's interval, log the device code,
 * or fall back for a user who simply did not finish.
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
#include "broker_int.h"
#include "cae.h"
#include "clock.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "flow.h"
#include "flow_int.h"
#include "idp.h"
#include "log.h"
#include "oauth.h"
#include "record.h"
#include "reply.h"
#include "storeq.h"
#include "tokens.h"
#include "user.h"
#include "userdb.h"

static void poll_cb(struct event_loop *ev, void *arg);
static void poll_done(void *arg, int r, struct oauth_token *got,
    const struct oauth_error *got_err);

void
flow_device_arm_poll(struct broker *b, struct flow *f, int64_t delay_s)
{
	int64_t now = clock_now(b->clk);

	if (b->throttle_until > now && b->throttle_until - now > delay_s)
		delay_s = b->throttle_until - now;
	clock_timer_cancel(b->clk, &f->timer);
	f->timer = clock_timer_in(b->clk, delay_s * 1000, poll_cb, f);
}

/*
 * signin = device_code,auth_code: Conditional Access blocks the device
 * code flow (53003, at its start or its end), so the same flow goes on
 * as an authorization-code one, and says why.
 */
static void
fall_back(struct broker *b, struct user *u, struct flow *f,
    const struct oauth_error *err)
{
	struct waiter *w, *tmp;
	int r;

	user_audit("consent_fallback", u, u->uid, NULL, f->scope, "pending",
	    NULL, NULL, "device code flow blocked; auth_code instead", err);
	log_info("user \"%s\": the device code flow is blocked by "
		 "Conditional Access (%s); signing in with auth_code",
	    u->name, err->reason);
	if (!storeq_is_cluster(b->q) && u->rec != NULL &&
	    u->rec->flow != NULL && f->dev.user_code != NULL &&
	    strcmp(u->rec->flow->user_code, f->dev.user_code) == 0) {
		/* The other nodes stop showing the blocked device code. (On
		 * a cluster store the code flow's claim replaces it in one
		 * write, so they show the code flow instead.) */
		record_flow_free(u->rec->flow);
		u->rec->flow = NULL;
		user_save(b, u, 0, NULL, NULL);
	}
	r = flow_code_begin(b, u, f,
	    "Your organization blocks sign-in with a device code here; sign "
	    "in with a browser link instead.");
	if (r < 0) {
		flow_failed(b, u, f, err);
		return;
	}
	/* A login waiting for the outcome is told at once: it must show
	 * the new link (and credctl asks for the address). */
	for (w = LIST_FIRST(&f->done_waiters); w != NULL; w = tmp) {
		tmp = LIST_NEXT(w, link);
		if (w->op != PROTO_OP_LOGIN)
			continue;
		clock_timer_cancel(b->clk, &w->timer);
		flow_login_deadline_cb(b->ev, w);
	}
}

static void
poll_done(void *arg, int r, struct oauth_token *got,
    const struct oauth_error *got_err)
{
	struct flow *f = arg;
	struct user *u = f->u;
	struct broker *b = u->b;
	struct oauth_token tok = *got;
	struct oauth_error err = *got_err;

	f->req = NULL;
	memset(got, 0, sizeof(*got)); /* taken */
	if (r == 0) {
		flow_got_token(b, u, f, &tok);
		return;
	}
	switch (err.cls) {
	case OAUTH_PENDING:
		flow_device_arm_poll(b, f, f->interval);
		return;
	case OAUTH_SLOW_DOWN:
		f->interval += 5;
		flow_device_arm_poll(b, f, f->interval);
		return;
	case OAUTH_RETRY:
		b->n.idp_errors[err.cls]++;
		if (err.is_throttled && err.retry_after > 0 &&
		    clock_now(b->clk) + err.retry_after > b->throttle_until)
			b->throttle_until = clock_now(b->clk) + err.retry_after;
		flow_device_arm_poll(b, f,
		    err.retry_after > f->interval ? err.retry_after :
						    f->interval);
		return;
	case OAUTH_EXPIRED:
		b->n.flows_expired++;
		u->flow_unused_until =
		    clock_now(b->clk) + b->cf->device_flow_cooldown;
		user_audit("consent_expired", u, u->uid, NULL, f->scope,
		    "error", NULL, NULL, NULL, &err);
		flow_end(b, u, -ENOKEY,
		    "the sign-in code expired; run 'credctl "
		    "login' for a new one",
		    NULL);
		return;
	case OAUTH_DECLINED:
		user_audit("consent_rejected", u, u->uid, NULL, f->scope,
		    "refused", NULL, NULL, "declined by the user", &err);
		u->outcome = "consent_declined";
		flow_end(b, u, -ECANCELED, "the sign-in was declined", NULL);
		return;
	default:
		if (flow_code_is_ca_block(&err) &&
		    b->cf->signin == CONFIG_SIGNIN_DEVICE_THEN_CODE) {
			fall_back(b, u, f, &err);
			return;
		}
		flow_failed(b, u, f, &err);
		return;
	}
}

static void
poll_cb(struct event_loop *ev, void *arg)
{
	struct flow *f = arg;
	struct broker *b = f->u->b;
	int64_t now = clock_now(b->clk);
	int r;

	(void)ev;
	f->timer = NULL;
	if (now >= f->expires_on) {
		struct user *u = f->u;

		b->n.flows_expired++;
		u->flow_unused_until = now + b->cf->device_flow_cooldown;
		user_audit("consent_expired", u, u->uid, NULL, f->scope,
		    "error", NULL, NULL, "device code expired unused", NULL);
		flow_end(b, u, -ENOKEY,
		    "the sign-in code expired; run 'credctl "
		    "login' for a new one",
		    NULL);
		return;
	}
	if (b->throttle_until > now) {
		flow_device_arm_poll(b, f, b->throttle_until - now);
		return;
	}
	if (f->claims != NULL && b->idp->ops->device_poll_claims != NULL)
		r = b->idp->ops->device_poll_claims(b->idp, f->dev.device_code,
		    f->claims, poll_done, f, &f->req);
	else
		r = b->idp->ops->device_poll(b->idp, f->dev.device_code,
		    poll_done, f, &f->req);
	if (r < 0)
		flow_device_arm_poll(b, f, f->interval);
}

void
flow_device_started(void *arg, int r, struct oauth_device *dev,
    const struct oauth_error *got_err)
{
	struct flow *f = arg;
	struct user *u = f->u;
	struct broker *b = u->b;
	struct oauth_error err = *got_err;

	f->req = NULL;
	oauth_device_clear(&f->dev);
	f->dev = *dev;
	memset(dev, 0, sizeof(*dev)); /* taken */
	if (r < 0 && flow_code_is_ca_block(&err) &&
	    b->cf->signin == CONFIG_SIGNIN_DEVICE_THEN_CODE) {
		fall_back(b, u, f, &err);
		return;
	}
	if (r < 0) {
		b->n.idp_errors[err.cls]++;
		if (err.is_throttled && err.retry_after > 0)
			b->throttle_until = clock_now(b->clk) + err.retry_after;
		user_audit("consent_failed", u, u->uid, NULL, f->scope, "error",
		    NULL, NULL, NULL, &err);
		if (err.cls == OAUTH_ADMIN)
			log_warnx(
			    "devicecode request rejected by the IdP (%s): check "
			    "the app registration (public client flows allowed?)",
			    err.reason);
		flow_end(b, u, 0, NULL, &err);
		return;
	}
	f->expires_on = clock_now(b->clk) + f->dev.expires_in;
	f->interval = f->dev.interval > 0 ? f->dev.interval : 5;
	if (storeq_is_cluster(b->q) && flow_cluster_claim(b, u, f) == 0)
		return; /* claim_done goes on */
	flow_begin(b, u, f);
}
