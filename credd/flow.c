/*
 * flow.c - device-code consent flows (RFC 8628 against Entra; see
 * flow.h), and how a request waiting on one is answered.
 *
 * At most one flow per user. A flow starts on an interactive
 * session_open, a login, or a token request without consent; a silent
 * session only reports the state. credd polls at the IdP's interval,
 * adds 5 s on slow_down, and stops on expired_token,
 * authorization_declined or its own deadline. The first consent pins the
 * Entra account (oid, tid); account_match is checked against the
 * id_token's preferred_username. Rejections are audited.
 *
 * Must never: log or audit the device code or the user code, or accept a
 * consent for an account other than the pinned one.
 */
#include <errno.h>
#include <stdbool.h>
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
#include "discovery_doc.h"
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

#define FLOW_RING 64 /* remembered device-flow start times per user */

static void accept_saved(struct broker *b, struct user *u, void *ctx,
    int result);
static void remote_expired_cb(struct event_loop *ev, void *arg);

int
flow_fields(const struct flow *f, json_t *obj)
{
	char msg[768];
	int bad = 0;

	if (f->state != FLOW_POLLING)
		return 0;
	if (f->method == FLOW_CODE)
		return flow_code_fields(f, obj);
	reply_put(obj, "method", json_string("device_code"), &bad);
	reply_put(obj, "verification_uri", json_string(f->dev.verification_uri),
	    &bad);
	reply_put(obj, "user_code", json_string(f->dev.user_code), &bad);
	reply_put(obj, "expires_on", json_integer(f->expires_on), &bad);
	if (f->dev.message != NULL)
		reply_put(obj, "message", json_string(f->dev.message), &bad);
	else {
		snprintf(msg, sizeof(msg),
		    "To sign in, use a web browser to open "
		    "the page %s and enter the code %s to authenticate.",
		    f->dev.verification_uri, f->dev.user_code);
		reply_put(obj, "message", json_string(msg), &bad);
	}
	return bad ? -ENOMEM : 0;
}

static void
flow_free(struct broker *b, struct flow *f)
{
	if (f == NULL)
		return;
	b->idp->ops->cancel(b->idp, &f->req);
	if (b->db != NULL)
		userdb_cancel(b->db, f->name_req);
	clock_timer_cancel(b->clk, &f->timer);
	oauth_device_clear(&f->dev);
	flow_code_free(f->code);
	oauth_token_clear(&f->tok);
	free(f->scope);
	free(f->claims);
	free(f);
}

int
flow_carry_claims(struct flow *f, const char *scope, const char *claims)
{
	if (f == NULL || f->remote || f->claims != NULL || claims == NULL ||
	    strcmp(f->scope, scope) != 0)
		return 0;
	f->claims = strdup(claims);
	return f->claims != NULL ? 0 : -ENOMEM;
}

json_t *
flow_session_reply(struct waiter *w, const struct user *u, const char *state)
{
	json_t *resp = proto_ok();
	const char *account = user_account(u);
	int bad = 0;

	reply_put(resp, "session", json_string(w->session ? w->session : ""),
	    &bad);
	reply_put(resp, "state", json_string(state), &bad);
	reply_put(resp, "account", account ? json_string(account) : json_null(),
	    &bad);
	if (bad) {
		json_decref(resp);
		return NULL;
	}
	return resp;
}

void
flow_login_deadline_cb(struct event_loop *ev, void *arg)
{
	struct waiter *w = arg;
	struct broker *b = w->parked_on; /* user_park sets it */
	struct user *u;
	json_t *resp;
	int bad = 0;

	(void)ev;
	w->timer = NULL;
	user_unpark(w);
	resp = proto_ok();
	reply_put(resp, "state", json_string("pending"), &bad);
	/* parked_on is the broker; the flow is still u->flow. */
	u = user_get(b, w->caller->user ? w->caller->user : "", w->caller->uid,
	    &(int){ 0 });
	if (u != NULL && u->flow != NULL && flow_fields(u->flow, resp) < 0)
		bad = 1;
	if (bad) {
		json_decref(resp);
		resp = NULL; /* answered "internal" */
	}
	waiter_reply_json(w, resp);
}

/*
 * Answer w for a flow whose fields are known. started: the flow was
 * started for this request (consent_required) rather than joined
 * (consent_pending).
 */
static int
flow_answer(struct broker *b, struct flow *f, struct waiter *w, int started,
    struct reply *out)
{
	json_t *resp;
	int bad = 0;

	switch (w->op) {
	case PROTO_OP_LOGIN:
		if (w->deadline_ms > clock_now_ms(b->clk)) {
			user_park(b, &f->done_waiters, w);
			w->timer = clock_timer_at(b->clk, w->deadline_ms,
			    flow_login_deadline_cb, w);
			return WAITER_PARKED;
		}
		resp = proto_ok();
		reply_put(resp, "state", json_string("pending"), &bad);
		bad |= flow_fields(f, resp) < 0;
		break;
	case PROTO_OP_SESSION_OPEN:
		resp = flow_session_reply(w, f->u, "pending");
		bad |= flow_fields(f, resp) < 0;
		break;
	default:
		resp = errmap_error(started ? -ENOKEY : -EINPROGRESS,
		    started ?
			"sign-in required: a consent was started" :
			"sign-in pending: finish the sign-in in your browser");
		bad |= flow_fields(f, proto_error_obj(resp)) < 0;
		break;
	}
	if (bad) {
		json_decref(resp);
		return -ENOMEM;
	}
	return reply_set_json(out, resp);
}

/*
 * The workload policy forbids the sign-in a request would start (issue
 * 14): answered r with the refusal that names the policy line, audited
 * with the caller's kind and session. No flow starts.
 */
int
flow_no_signin(struct waiter *w, int r, struct reply *out)
{
	const char *line = strstr(w->no_signin, "[workload.");
	struct audit_event ev = {
		.event = "request_refused",
		.uid = w->caller->uid,
		.user = w->caller->user,
		.op = proto_op_name(w->op),
		.scope = w->scope,
		.outcome = "refused",
		.reason = line != NULL ? line : w->no_signin,
		.workload = config_workload_name(w->policy_kind),
		.session = w->policy_session,
	};

	audit_log(&ev);
	return errmap_reply(out, r, w->no_signin);
}

int
flow_join(struct broker *b, struct user *u, struct waiter *w, struct reply *out)
{
	struct flow *f = u->flow;

	if (f == NULL)
		return errmap_reply(out, -ENOKEY,
		    "sign-in required; run 'credctl login'");
	if (f->state == FLOW_STARTING || f->state == FLOW_CLAIMING) {
		user_park(b, &f->start_waiters, w);
		return WAITER_PARKED;
	}
	return flow_answer(b, f, w, 0, out);
}

/* A callback's redemption hears the outcome (secret-free words). */
static void
tell_redeemer(struct broker *b, struct flow *f, const struct user *u, int err,
    const char *msg, const struct oauth_error *oerr)
{
	broker_redeem_cb *cb = f->redeem_cb;

	if (cb == NULL)
		return;
	f->redeem_cb = NULL;
	if (oerr != NULL)
		flow_code_tell(b, cb, f->redeem_arg, errmap_idp_errno(oerr),
		    u->name, oerr->reason);
	else
		flow_code_tell(b, cb, f->redeem_arg, err, u->name,
		    err == 0 ? "signed in" :
			       (msg != NULL ? msg : "the sign-in failed"));
}

void
flow_end(struct broker *b, struct user *u, int err, const char *msg,
    const struct oauth_error *oerr)
{
	struct flow *f = u->flow;
	struct waiter *w;
	json_t *resp;
	int bad;

	if (f == NULL)
		return;
	u->flow = NULL;
	tell_redeemer(b, f, u, err, msg, oerr);
	if (!f->remote && !b->closing && u->rec != NULL &&
	    u->rec->flow != NULL && f->dev.user_code != NULL &&
	    strcmp(u->rec->flow->user_code, f->dev.user_code) == 0) {
		/* Our shared flow ended: the other nodes stop showing it. */
		record_flow_free(u->rec->flow);
		u->rec->flow = NULL;
		user_save(b, u, 0, NULL, NULL);
	} else if (!f->remote && !b->closing && u->rec != NULL &&
	    flow_code_is_shared(f) && flow_code_same(f, u->rec->cflow)) {
		/* The same for a code flow (started or redeemed here). */
		record_flow_code_free(u->rec->cflow);
		u->rec->cflow = NULL;
		user_save(b, u, 0, NULL, NULL);
	}
	while ((w = LIST_FIRST(&f->start_waiters)) != NULL ||
	    (w = LIST_FIRST(&f->done_waiters)) != NULL) {
		user_unpark(w);
		bad = 0;
		if (w->op == PROTO_OP_SESSION_OPEN &&
		    (oerr != NULL || err != 0)) {
			/* The session is open whatever the sign-in did: say so,
			 * with the reason, so the module can close it later. */
			resp = flow_session_reply(w, u, user_session_state(u));
			reply_put(resp, "warning",
			    json_string(oerr != NULL ? oerr->reason : msg),
			    &bad);
		} else if (oerr != NULL)
			resp = errmap_idp_error(oerr, b->throttle_until,
			    clock_now(b->clk));
		else if (err == 0) {
			if (w->op == PROTO_OP_SESSION_OPEN)
				resp = flow_session_reply(w, u, "ready");
			else {
				const char *account = user_account(u);

				resp = proto_ok();
				reply_put(resp, "state", json_string("ready"),
				    &bad);
				reply_put(resp, "account",
				    account ? json_string(account) :
					      json_null(),
				    &bad);
			}
		} else
			resp = errmap_error(err, msg);
		if (bad) {
			json_decref(resp);
			resp = NULL; /* answered "internal" */
		}
		waiter_reply_json(w, resp);
	}
	flow_free(b, f);
}

void
flow_cancel(struct broker *b, struct user *u, int err, const char *msg)
{
	flow_end(b, u, err, msg, NULL);
}

int
flow_may_start(struct broker *b, struct user *u, int user_asked)
{
	int64_t now = clock_now(b->clk);
	unsigned i, recent = 0, n;

	n = u->nflow_starts < FLOW_RING ? u->nflow_starts : FLOW_RING;
	if (u->flow_starts == NULL)
		n = 0;
	for (i = 0; i < n; i++)
		if (now - u->flow_starts[i] < 3600)
			recent++;
	if (recent >= (unsigned)b->cf->device_flows_per_hour) {
		log_info("user \"%s\": device_flows_per_hour reached", u->name);
		return -EBUSY;
	}
	if (!user_asked && now < u->flow_unused_until)
		return -EAGAIN;
	return 0;
}

/*
 * The id_token's iss is the discovery document's issuer (its
 * "{tenantid}" replaced by the token's tid): OIDC Core 3.1.3.7 (2). An
 * IdP without discovery (unit tests' scripted one) has none to compare.
 * Logged here when not.
 */
static bool
is_issuer_ok(struct broker *b, const struct user *u,
    const struct oauth_account *acct)
{
	char want[DISCOVERY_URL_MAX], q1[LOG_VALUE_MAX], q2[LOG_VALUE_MAX];
	int r;

	if (b->idp->ops->endpoint == NULL)
		return true;
	r = b->idp->ops->endpoint(b->idp, IDP_EP_ISSUER, acct->tid, want,
	    sizeof(want));
	if (r == -ENOENT)
		return true;
	if (r == 0 && acct->iss != NULL && strcmp(acct->iss, want) == 0)
		return true;
	log_warnx("user \"%s\": consent refused: the id_token's issuer %s "
		  "is not the discovered issuer %s",
	    u->name, log_value(q1, acct->iss != NULL ? acct->iss : "(none)"),
	    r == 0 ? log_value(q2, want) : "(none in force)");
	return false;
}

/*
 * A grant answered with *tok: check the account (account_match, the
 * pinned oid), store the consent (the refresh token as f->client's),
 * then hand out the first token. 0 (the flow ends when stored), or
 * -EKEYREJECTED (another account) / -EPROTO (the id_token's issuer is
 * not the discovered one) / -EREMOTEIO / -ENOMEM (the caller ends it).
 */
static int
flow_accept(struct broker *b, struct user *u, struct flow *f,
    struct oauth_token *tok)
{
	struct oauth_account acct = { 0 };
	char want[256];
	int64_t now = clock_now(b->clk);
	int r;

	r = oauth_id_token_account(tok->id_token, b->cf->client_id,
	    b->cf->provider == CONFIG_PROVIDER_OIDC ? NULL : b->cf->tenant,
	    &acct);
	if (r == 0 && acct.tid == NULL) {
		/* A generic provider has no tenant: this deployment's name. */
		acct.tid = strdup(b->cf->tenant);
		if (acct.tid == NULL)
			r = -ENOMEM;
	}
	if (r < 0 || tok->refresh_token == NULL) {
		user_audit("consent_rejected", u, u->uid, NULL, f->scope,
		    "refused", NULL, NULL,
		    r < 0 ? "no usable id_token" :
			    "no refresh token "
			    "(offline_access not granted)",
		    NULL);
		oauth_account_clear(&acct);
		return -EREMOTEIO;
	}
	if (!is_issuer_ok(b, u, &acct)) {
		user_audit("consent_rejected", u, u->uid, NULL, f->scope,
		    "refused", NULL, NULL,
		    "id_token issuer is not the discovered issuer", NULL);
		oauth_account_clear(&acct);
		return -EPROTO;
	}
	if (config_account_match(b->cf, u->name, want, sizeof(want)) == 0 &&
	    (acct.preferred_username == NULL ||
		strcasecmp(acct.preferred_username, want) != 0)) {
		user_audit("consent_rejected", u, u->uid, NULL, f->scope,
		    "refused", NULL, NULL,
		    "account_match: signed in as another account", NULL);
		log_warnx(
		    "user \"%s\": consent by an account that does not match "
		    "account_match was rejected",
		    u->name);
		oauth_account_clear(&acct);
		return -EKEYREJECTED;
	}
	if (u->rec != NULL && u->rec->oid != NULL &&
	    (strcmp(u->rec->oid, acct.oid) != 0 ||
		(u->rec->tid != NULL && strcmp(u->rec->tid, acct.tid) != 0))) {
		user_audit("consent_rejected", u, u->uid, NULL, f->scope,
		    "refused", NULL, NULL,
		    "account pinned to another oid; an admin must revoke "
		    "first",
		    NULL);
		log_warnx(
		    "user \"%s\": consent by a different Entra account was "
		    "rejected (account pinned)",
		    u->name);
		oauth_account_clear(&acct);
		return -EKEYREJECTED;
	}
	if (u->rec == NULL) {
		u->rec = record_new(u->name, u->uid);
		if (u->rec == NULL) {
			oauth_account_clear(&acct);
			return -ENOMEM;
		}
		u->rec->created = now;
	}
	if (u->rec->oid == NULL) {
		u->rec->oid = acct.oid;
		u->rec->tid = acct.tid;
		acct.oid = acct.tid = NULL; /* transferred */
	}
	free(u->rec->username);
	u->rec->username = acct.preferred_username;
	acct.preferred_username = NULL; /* transferred */
	oauth_account_clear(&acct);
	secret_free(u->rec->refresh_token);
	u->rec->refresh_token = tok->refresh_token;
	tok->refresh_token = NULL;  /* transferred */
	u->rec->client = f->client; /* its refreshes carry what it did */
	if (tok->scope != NULL)
		(void)record_set_scopes(u->rec, tok->scope);
	u->rec->updated = u->rec->last_refresh = now;
	u->last_refresh = now;
	u->logged_out = 0;
	u->failures = 0;
	u->backoff_until = 0;
	record_flow_free(u->rec->flow); /* the shared flow is over */
	u->rec->flow = NULL;
	record_flow_code_free(u->rec->cflow);
	u->rec->cflow = NULL;
	/* Stored before the first token is handed out; see accept_saved. */
	f->tok = *tok;
	memset(tok, 0, sizeof(*tok));
	f->state = FLOW_SAVING;
	user_save(b, u, 1, accept_saved, (void *)f->seq);
	return 0;
}

/* The new consent is stored (or pinned in memory): the flow is done. */
static void
accept_saved(struct broker *b, struct user *u, void *ctx, int result)
{
	struct flow *f = u->flow;

	(void)result;
	if (f == NULL || f->seq != (uintptr_t)ctx || f->state != FLOW_SAVING)
		return; /* cancelled meanwhile (logout, revoke) */
	tokens_put(b, u, f->scope, &f->tok);
	oauth_token_clear(&f->tok);
	/* A new sign-in: a challenge may be answered again at once. */
	cae_marks_clear(&u->cae_marks);
	b->n.flows_completed++;
	user_audit("consent_completed", u, u->uid, NULL, f->scope, "ok", NULL,
	    NULL, NULL, NULL);
	u->outcome = NULL;
	flow_end(b, u, 0, NULL, NULL);
}

void
flow_got_token(struct broker *b, struct user *u, struct flow *f,
    struct oauth_token *tok)
{
	int r = flow_accept(b, u, f, tok);

	oauth_token_clear(tok);
	if (r >= 0)
		return;
	b->n.flows_rejected++;
	if (r == -EPROTO) {
		/* Said to the next request too: a new sign-in would not help. */
		u->outcome = "issuer_mismatch";
		flow_end(b, u, -EREMOTEIO, FLOW_ISSUER_MISMATCH, NULL);
		return;
	}
	u->outcome = r == -EKEYREJECTED ? "account_mismatch" : NULL;
	flow_end(b, u, r,
	    r == -EKEYREJECTED ? "the sign-in used an Entra account that is "
				 "not allowed for this user" :
				 "the sign-in did not yield a usable consent",
	    NULL);
}

void
flow_failed(struct broker *b, struct user *u, struct flow *f,
    const struct oauth_error *err)
{
	b->n.idp_errors[err->cls]++;
	user_audit("consent_failed", u, u->uid, NULL, f->scope, "error", NULL,
	    NULL, NULL, err);
	if (err->cls == OAUTH_ADMIN)
		log_warnx("sign-in rejected by the IdP (%s): check the app "
			  "registration",
		    err->reason);
	flow_end(b, u, 0, NULL, err);
}

void
flow_begin(struct broker *b, struct user *u, struct flow *f)
{
	struct waiter *w;

	f->state = FLOW_POLLING;
	if (f->method == FLOW_CODE)
		flow_code_wait(b, u, f);
	else if (f->remote) {
		clock_timer_cancel(b->clk, &f->timer);
		f->timer = clock_timer_in(b->clk,
		    (f->expires_on - clock_now(b->clk)) * 1000,
		    remote_expired_cb, f);
	} else {
		flow_device_arm_poll(b, f, f->interval);
		user_audit("consent_started", u, u->uid, NULL, f->scope,
		    "pending", NULL, NULL, NULL, NULL);
	}
	while ((w = LIST_FIRST(&f->start_waiters)) != NULL) {
		struct reply rep = { 0 };

		user_unpark(w);
		waiter_finish(w, flow_answer(b, f, w, !f->remote, &rep), &rep);
	}
}

static void
remote_expired_cb(struct event_loop *ev, void *arg)
{
	struct flow *f = arg;

	(void)ev;
	f->timer = NULL;
	flow_end(f->u->b, f->u, -ENOKEY,
	    "the sign-in code expired; run "
	    "'credctl login' for a new one",
	    NULL);
}

struct flow *
flow_new(struct broker *b, struct user *u, const char *scope)
{
	struct flow *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->scope = strdup(scope)) == NULL) {
		free(f);
		return NULL;
	}
	f->u = u;
	f->epoch = u->epoch;
	f->seq = ++b->flow_seq;
	LIST_INIT(&f->start_waiters);
	LIST_INIT(&f->done_waiters);
	return f;
}

void
flow_discard(struct broker *b, struct flow *f)
{
	flow_free(b, f);
}

/* The record names a flow another node is running (its code flow cf,
 * or else its device flow): show that one. */
static int
flow_adopt(struct broker *b, struct user *u, const char *scope,
    const struct record_cflow *cf)
{
	struct flow *f = flow_new(b, u, cf != NULL ? cf->scope : scope);

	if (f == NULL)
		return -ENOMEM;
	if ((cf != NULL ? flow_code_adopt(f, cf, 1) :
			  flow_cluster_adopt_fields(f, u->rec->flow)) < 0) {
		flow_free(b, f);
		return -ENOMEM;
	}
	u->flow = f;
	flow_begin(b, u, f);
	return 0;
}

/*
 * Ask Entra for a device code (FLOW_STARTING goes on in
 * flow_device_started),
 * or, with signin = auth_code, begin the code flow at once.
 */
static int
flow_post(struct broker *b, struct flow *f)
{
	char full[PROTO_STR_MAX + 64];

	if (b->cf->signin == CONFIG_SIGNIN_AUTH_CODE)
		return flow_code_begin(b, f->u, f, NULL);
	snprintf(full, sizeof(full), "%s %s", OIDC_SCOPES, f->scope);
	return b->idp->ops->device_start(b->idp, full, flow_device_started, f,
	    &f->req);
}

#define FLOW_DISC_STEP_MS 250

static void flow_try_post(struct broker *b, struct flow *f);

static void
flow_post_again(struct event_loop *ev, void *arg)
{
	struct flow *f = arg;

	(void)ev;
	f->timer = NULL;
	flow_try_post(f->u->b, f);
}

/*
 * Post f's first request. The code flow needs the authorize endpoint now
 * (its link is the answer): with no discovery document yet (just
 * started, its fetch running), look again every FLOW_DISC_STEP_MS, for
 * at most about the IdP timeout; the device flow's request waits in the
 * IdP by itself.
 */
static void
flow_try_post(struct broker *b, struct flow *f)
{
	struct user *u = f->u;
	int r = flow_post(b, f);

	if (r == -EHOSTUNREACH &&
	    f->disc_waits++ * FLOW_DISC_STEP_MS <
		(unsigned)b->cf->timeout * 1000u) {
		f->timer = clock_timer_in(b->clk, FLOW_DISC_STEP_MS,
		    flow_post_again, f);
		if (f->timer != NULL)
			return;
	}
	if (r < 0)
		flow_end(b, u, r,
		    r == -EHOSTUNREACH ?
			"the identity provider's discovery document is not "
			"in force (see credd's log); try again" :
			"cannot start a sign-in",
		    NULL);
}

/*
 * The uid's name, looked up afresh: a sign-in binds an Entra account to
 * this user, so the name must be the uid's now, not a cached one that a
 * deleted account left behind (its uid reused by another).
 */
static void
flow_named(void *arg, int result, uid_t uid, gid_t gid, const char *name)
{
	struct flow *f = arg;
	struct user *u = f->u;
	struct broker *b = u->b;

	(void)uid;
	(void)gid;
	f->name_req = NULL;
	if (result < 0 || strcmp(name, u->name) != 0) {
		log_warnx("user \"%s\": uid %u %s; no sign-in started", u->name,
		    (unsigned)u->uid,
		    result == 0		  ? "now belongs to another "
					    "account" :
			result == -ENOENT ? "has no account any more" :
					    "cannot be looked up");
		flow_end(b, u,
		    result < 0 && result != -ENOENT ? -ECONNREFUSED : -EACCES,
		    result < 0 && result != -ENOENT ?
			"the user directory "
			"(NSS) did not answer; try again" :
			"your uid names another "
			"user now; run the command again",
		    NULL);
		return;
	}
	flow_try_post(b, f);
}

int
flow_start(struct broker *b, struct user *u, const char *scope)
{
	struct flow *f;
	int r;

	if (u->flow != NULL)
		return 0;
	if (scope == NULL)
		scope = config_default_scope(b->cf);
	if (u->rec != NULL && u->rec->flow != NULL &&
	    u->rec->flow->expires_on > clock_now(b->clk) + 5 &&
	    strcmp(u->rec->flow->node, b->cf->node) != 0)
		return flow_adopt(b, u, scope, NULL);
	if (u->rec != NULL && u->rec->cflow != NULL &&
	    u->rec->cflow->expires_on > clock_now(b->clk) + 5 &&
	    strcmp(u->rec->cflow->node, b->cf->node) != 0)
		return flow_adopt(b, u, scope, u->rec->cflow);
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->scope = strdup(scope)) == NULL) {
		free(f);
		return -ENOMEM;
	}
	f->u = u;
	f->state = FLOW_STARTING;
	f->epoch = u->epoch;
	f->seq = ++b->flow_seq;
	LIST_INIT(&f->start_waiters);
	LIST_INIT(&f->done_waiters);
	if (b->db != NULL) {
		f->name_req = userdb_lookup_uid(b->db, u->uid, flow_named, f);
		r = f->name_req != NULL ? 0 : -ENOMEM;
	} else
		r = flow_post(b, f);
	if (r < 0) {
		flow_free(b, f);
		return r;
	}
	u->flow = f;
	if (u->flow_starts == NULL)
		u->flow_starts = calloc(FLOW_RING, sizeof(*u->flow_starts));
	if (u->flow_starts != NULL) /* most users never start a second flow */
		u->flow_starts[u->nflow_starts++ % FLOW_RING] =
		    clock_now(b->clk);
	u->flow_unused_until = 0;
	b->n.flows_started++;
	return 0;
}
