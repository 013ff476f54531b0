/*
 * flow_code.c - the authorization code method of a consent flow
 * (RFC 6749 4.1 with RFC 7636 PKCE S256; flow_int.h): the verifier,
 * state and short-link id of a user's flow, the authorize URL with
 * login_hint and domain_hint, and the redemption of the code that comes
 * back, pasted by the user (public client, the nativeclient redirect) or
 * through the platform callback (confidential web client, [callback]
 * redirect_uri). The account checks and the storing of the consent are
 * flow.c's (flow_accept), the same as for a device code.
 *
 * state is 192 random bits, single use (wiped when a code or an error
 * comes back with it), bound to the user's flow and expiring with it;
 * the link id is 128 bits, single use.
 *
 * Cluster mode (docs/cluster.md): the flow is claimed in the user's
 * sealed record (flow_cluster.c), a callback flow's state and link
 * id carry the user sealed (flowref.h), and every redemption and link
 * first uses its key up in the record through the store's
 * compare-and-swap (STOREQ_FLOW_TAKE, flow_code_take.c), so any node
 * can finish the flow and two nodes racing the same callback redeem it
 * once.
 *
 * Must never: log or audit the code, the verifier, the state or the
 * link id; redeem a code whose state is not the flow's (compared in
 * constant time); let a state be used twice.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "authcode.h"
#include "broker_int.h"
#include "clientauth.h"
#include "clock.h"
#include "config.h"
#include "discovery_doc.h"
#include "errmap.h"
#include "event.h"
#include "flow.h"
#include "flow_int.h"
#include "flowref.h"
#include "idp.h"
#include "log.h"
#include "oauth.h"
#include "record.h"
#include "reply.h"
#include "storeq.h"
#include "user.h"

struct flow_code {
	struct secret *verifier;
	/* "" once used; a cluster callback flow's are flowrefs. */
	char state[FLOWREF_MAX + 1];
	char link[FLOWREF_MAX + 1]; /* "" once followed */
	int claimed;   /* in the user's record: redeemed only through it */
	int node_only; /* cluster, but no flowref (a name too long): kept
			  on this node, as on a single node */
	char *redirect_uri;
	char *authorize_url;
	char *signin_url; /* what the user opens: link or authorize URL */
	char *note;	  /* why this method (the fallback), or NULL */
};

void
flow_code_free(struct flow_code *c)
{
	if (c == NULL)
		return;
	secret_free(c->verifier);
	free(c->redirect_uri);
	free(c->authorize_url);
	free(c->signin_url);
	free(c->note);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

int
flow_code_is_ca_block(const struct oauth_error *err)
{
	size_t i;

	for (i = 0; i < err->ncodes; i++)
		if (err->codes[i] == 53003)
			return 1;
	return 0;
}

/* The platform callback's short link: the redirect URI's origin. */
static char *
short_link(const char *redirect_uri, const char *id)
{
	const char *host = strstr(redirect_uri, "://");
	size_t ol, n;
	char *s;

	if (host == NULL)
		return NULL;
	ol = (size_t)(host + 3 - redirect_uri) + strcspn(host + 3, "/");
	n = ol + sizeof("/entra/login/") + strlen(id);
	s = malloc(n);
	if (s != NULL)
		(void)snprintf(s, n, "%.*s/entra/login/%s", (int)ol,
		    redirect_uri, id);
	return s;
}

/*
 * The authorization endpoint of the discovery document in force (the
 * IdP's; Entra's template for an IdP without discovery) into dst. 0,
 * -EHOSTUNREACH (no document yet: idp_unavailable, and the fetch was
 * started), -EREMOTEIO (the document has none: idp_misconfigured).
 */
static int
authorize_endpoint(struct broker *b, char *dst, size_t dstsz)
{
	int r;

	if (b->idp->ops->endpoint == NULL)
		return oauth_url_authorize(b->cf->authority, b->cf->tenant, dst,
		    dstsz);
	r = b->idp->ops->endpoint(b->idp, IDP_EP_AUTHORIZE, NULL, dst, dstsz);
	if (r == -EAGAIN)
		return -EHOSTUNREACH;
	if (r == -ENOENT) {
		log_warnx("discovery: the document has no "
			  "authorization_endpoint: the code flow cannot start");
		return -EREMOTEIO;
	}
	return r;
}

/* Everything an authorize request needs; c filled, or -errno. */
static int
code_prepare(struct broker *b, struct user *u, struct flow *f,
    struct flow_code *c, int confidential)
{
	char challenge[AUTHCODE_VERIFIER_LEN + 1], ep[512], hint[256];
	char scope[PROTO_STR_MAX + 64], native[512];
	struct authcode_request rq = { 0 };
	int r;

	if (confidential)
		c->redirect_uri = strdup(b->cf->callback_redirect_uri);
	else if (authcode_nativeclient_uri(b->cf->authority, native,
		     sizeof(native)) == 0)
		c->redirect_uri = strdup(native);
	if (c->redirect_uri == NULL)
		return -ENOMEM;
	r = authcode_pkce(&c->verifier, challenge);
	if (r == 0 && confidential && storeq_is_cluster(b->q) &&
	    flowref_make(b->seal, b->cf->tenant, FLOWREF_STATE, u->name,
		c->state, sizeof(c->state)) == 0 &&
	    flowref_make(b->seal, b->cf->tenant, FLOWREF_LINK, u->name, c->link,
		sizeof(c->link)) == 0)
		; /* any node finds the user (flowref.h) */
	else if (r == 0) {
		/* A paste comes from the user's own credctl: no need. A
		 * callback flow without one stays on this node. */
		c->node_only = confidential && storeq_is_cluster(b->q);
		r = authcode_random(24, c->state, sizeof(c->state));
		if (r == 0)
			r = authcode_random(16, c->link, sizeof(c->link));
	}
	if (r == 0)
		r = authorize_endpoint(b, ep, sizeof(ep));
	if (r < 0)
		return r;
	(void)snprintf(scope, sizeof(scope), "%s %s", OIDC_SCOPES, f->scope);
	rq.authorize_url = ep;
	rq.client_id = b->cf->client_id;
	rq.redirect_uri = c->redirect_uri;
	rq.scope = scope;
	rq.state = c->state;
	rq.challenge = challenge;
	if (config_account_match(b->cf, u->name, hint, sizeof(hint)) == 0)
		rq.login_hint = hint;
	rq.domain_hint = b->cf->domain_hint;
	r = authcode_authorize_url(&rq, &c->authorize_url);
	if (r < 0)
		return r;
	c->signin_url = confidential ? short_link(c->redirect_uri, c->link) :
				       strdup(c->authorize_url);
	return c->signin_url != NULL ? 0 : -ENOMEM;
}

int
flow_code_begin(struct broker *b, struct user *u, struct flow *f,
    const char *note)
{
	struct flow_code *c = calloc(1, sizeof(*c));
	int confidential, r;

	oauth_device_clear(&f->dev);
	if (c == NULL)
		return -ENOMEM;
	/* The callback kind needs its URL and a credential to redeem with;
	 * without both the user pastes the address back (public). */
	confidential = b->cf->callback_redirect_uri != NULL &&
	    clientauth_is_configured(b->clientauth);
	r = code_prepare(b, u, f, c, confidential);
	if (r == 0 && note != NULL && (c->note = strdup(note)) == NULL)
		r = -ENOMEM;
	if (r < 0) {
		flow_code_free(c);
		return r;
	}
	b->idp->ops->cancel(b->idp, &f->req);
	flow_code_free(f->code);
	f->code = c;
	f->method = FLOW_CODE;
	f->client = confidential ? IDP_CLIENT_CONFIDENTIAL : IDP_CLIENT_PUBLIC;
	f->expires_on = clock_now(b->clk) + FLOW_CODE_LIFETIME;
	/* Cluster: shared through the record, so any node finishes it. */
	if (!(storeq_is_cluster(b->q) && !c->node_only &&
		flow_cluster_claim(b, u, f) == 0))
		flow_begin(b, u, f);
	return 0;
}

struct record_cflow *
flow_code_to_record(struct broker *b, const struct flow *f)
{
	const struct flow_code *c = f->code;
	struct record_cflow *rf = calloc(1, sizeof(*rf));

	if (rf == NULL)
		return NULL;
	rf->client = f->client;
	rf->expires_on = f->expires_on;
	rf->verifier = secret_dup(c->verifier);
	rf->state = strdup(c->state);
	rf->link = strdup(c->link);
	rf->redirect_uri = strdup(c->redirect_uri);
	rf->authorize_url = strdup(c->authorize_url);
	rf->signin_url = strdup(c->signin_url);
	rf->note = c->note != NULL ? strdup(c->note) : NULL;
	rf->scope = strdup(f->scope);
	rf->node = strdup(b->cf->node);
	if (rf->verifier == NULL || rf->state == NULL || rf->link == NULL ||
	    rf->redirect_uri == NULL || rf->authorize_url == NULL ||
	    rf->signin_url == NULL || (c->note != NULL && rf->note == NULL) ||
	    rf->scope == NULL || rf->node == NULL) {
		record_flow_code_free(rf);
		return NULL;
	}
	return rf;
}

void
flow_code_claimed(struct flow *f)
{
	if (f->code != NULL)
		f->code->claimed = 1;
}

int
flow_code_adopt(struct flow *f, const struct record_cflow *rf, int remote)
{
	struct flow_code *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -ENOMEM;
	c->claimed = 1;
	c->redirect_uri = strdup(rf->redirect_uri);
	c->authorize_url = strdup(rf->authorize_url);
	c->signin_url = strdup(rf->signin_url);
	c->note = rf->note != NULL ? strdup(rf->note) : NULL;
	/* Only the redeeming node holds the verifier outside the record. */
	c->verifier = remote ? NULL : secret_dup(rf->verifier);
	/* A paste on this node is matched here before the record is. */
	(void)snprintf(c->state, sizeof(c->state), "%s", rf->state);
	(void)snprintf(c->link, sizeof(c->link), "%s", rf->link);
	if (c->redirect_uri == NULL || c->authorize_url == NULL ||
	    c->signin_url == NULL || (rf->note != NULL && c->note == NULL) ||
	    (!remote && c->verifier == NULL)) {
		flow_code_free(c);
		return -ENOMEM;
	}
	oauth_device_clear(&f->dev);
	flow_code_free(f->code);
	f->code = c;
	f->method = FLOW_CODE;
	f->client = rf->client;
	f->expires_on = rf->expires_on;
	f->remote = remote;
	return 0;
}

int
flow_code_same(const struct flow *f, const struct record_cflow *rf)
{
	return f != NULL && f->method == FLOW_CODE && f->code != NULL &&
	    rf != NULL && strcmp(f->code->signin_url, rf->signin_url) == 0;
}

int
flow_code_is_shared(const struct flow *f)
{
	return f->method == FLOW_CODE && f->code != NULL && f->code->claimed;
}

/* An authorization-code sign-in nobody finished. */
static void
code_expired_cb(struct event_loop *ev, void *arg)
{
	struct flow *f = arg;
	struct user *u = f->u;
	struct broker *b = u->b;

	(void)ev;
	f->timer = NULL;
	if (f->req != NULL)
		return; /* a code is being redeemed: its answer ends it */
	b->n.flows_expired++;
	u->flow_unused_until = clock_now(b->clk) + b->cf->device_flow_cooldown;
	user_audit("consent_expired", u, u->uid, NULL, f->scope, "error", NULL,
	    NULL, "sign-in link expired unused", NULL);
	flow_end(b, u, -ENOKEY,
	    "the sign-in link expired; run 'credctl login' for a new one",
	    NULL);
}

void
flow_code_wait(struct broker *b, struct user *u, struct flow *f)
{
	clock_timer_cancel(b->clk, &f->timer);
	f->timer = clock_timer_in(b->clk,
	    (f->expires_on - clock_now(b->clk)) * 1000, code_expired_cb, f);
	if (f->remote)
		return; /* shown here, started (and audited) elsewhere */
	user_audit("consent_started", u, u->uid, NULL, f->scope, "pending",
	    NULL, NULL, "auth_code", NULL);
}

void
flow_code_taken(struct broker *b, struct flow *f)
{
	sodium_memzero(f->code->state, sizeof(f->code->state));
	sodium_memzero(f->code->link, sizeof(f->code->link));
	f->state = FLOW_POLLING;
	clock_timer_cancel(b->clk, &f->timer);
	f->timer = clock_timer_in(b->clk,
	    (f->expires_on - clock_now(b->clk)) * 1000, code_expired_cb, f);
}

int
flow_code_fields(const struct flow *f, json_t *obj)
{
	const struct flow_code *c = f->code;
	char msg[PROTO_STR_MAX];
	int bad = 0;

	/* PAM cannot take a pasted address: it says to run credctl login,
	 * which shows signin_url and asks for the address. A short link
	 * fits a PAM message as it is. */
	if (f->client == IDP_CLIENT_CONFIDENTIAL)
		(void)snprintf(msg, sizeof(msg),
		    "%s%sTo sign in, open %s in a web browser.",
		    c->note ? c->note : "", c->note ? " " : "", c->signin_url);
	else
		(void)snprintf(msg, sizeof(msg),
		    "%s%sTo sign in, run 'credctl login': it shows a link to "
		    "open in a web browser and asks for the address the "
		    "browser ends on.",
		    c->note ? c->note : "", c->note ? " " : "");
	reply_put(obj, "method", json_string("auth_code"), &bad);
	reply_put(obj, "signin_url", json_string(c->signin_url), &bad);
	/* credctl asks for the address only when there is one to paste. */
	reply_put(obj, "paste_back",
	    json_boolean(f->client == IDP_CLIENT_PUBLIC), &bad);
	reply_put(obj, "expires_on", json_integer(f->expires_on), &bad);
	reply_put(obj, "message", json_string(msg), &bad);
	return bad ? -ENOMEM : 0;
}

/* ---- redemption ---- */

static void
redeem_done(void *arg, int r, struct oauth_token *got,
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
	if (err.cls == OAUTH_POLICY || err.cls == OAUTH_ADMIN ||
	    err.cls == OAUTH_RETRY) {
		flow_failed(b, u, f, &err);
		return;
	}
	/* A used, expired or foreign code (54005, 70000, PKCE): this
	 * sign-in is over; a new one starts with credctl login. */
	b->n.idp_errors[err.cls]++;
	user_audit("consent_failed", u, u->uid, NULL, f->scope, "error", NULL,
	    NULL, "code refused", &err);
	flow_end(b, u, -ENOKEY,
	    "Entra ID refused the sign-in code; run 'credctl login' for a new "
	    "sign-in",
	    NULL);
}

/*
 * The state matched: use it up, then redeem code, or end the flow with
 * Entra's error. The outcome reaches the flow's waiters and callback.
 */
void
flow_code_finish(struct broker *b, struct user *u, struct flow *f,
    const struct secret *code, const char *error, const char *desc)
{
	struct flow_code *c = f->code;
	struct oauth_error err = { 0 };
	char scope[PROTO_STR_MAX + 64];
	int r;

	sodium_memzero(c->state, sizeof(c->state)); /* single use */
	sodium_memzero(c->link, sizeof(c->link));
	if (code == NULL) {
		/* Classified on error and the AADSTS code, as any reply. */
		err.http_status = 400;
		err.retry_after = -1;
		(void)snprintf(err.error, sizeof(err.error), "%s", error);
		err.codes[0] = authcode_desc_code(desc);
		err.ncodes = err.codes[0] != 0;
		oauth_classify(&err);
		if (err.cls == OAUTH_DECLINED && !flow_code_is_ca_block(&err)) {
			user_audit("consent_rejected", u, u->uid, NULL,
			    f->scope, "refused", NULL, NULL,
			    "declined by the user", &err);
			u->outcome = "consent_declined";
			flow_end(b, u, -ECANCELED, "the sign-in was declined",
			    NULL);
			return;
		}
		if (err.cls == OAUTH_DECLINED)
			err.cls = OAUTH_POLICY; /* 53003 as access_denied */
		flow_failed(b, u, f, &err);
		return;
	}
	(void)snprintf(scope, sizeof(scope), "%s %s", OIDC_SCOPES, f->scope);
	r = b->idp->ops->code_redeem(b->idp, code, c->verifier, c->redirect_uri,
	    scope, f->client, redeem_done, f, &f->req);
	if (r < 0) {
		err.cls = r == IDP_ECREDENTIAL ? OAUTH_ADMIN : OAUTH_RETRY;
		(void)snprintf(err.reason, sizeof(err.reason), "%s",
		    r == IDP_ECREDENTIAL ? "client credential unavailable" :
					   "cannot send the code");
		flow_failed(b, u, f, &err);
	}
}

/*
 * RFC 9207: an authorization response's iss is the discovered issuer
 * (a mix-up defence: an answer another IdP sent is refused before its
 * code goes anywhere). An IdP without discovery has none to compare.
 */
static bool
is_iss_ok(struct broker *b, const struct user *u, const char *iss)
{
	char want[DISCOVERY_URL_MAX], q1[LOG_VALUE_MAX], q2[LOG_VALUE_MAX];
	int r;

	if (b->idp->ops->endpoint == NULL)
		return true;
	r = b->idp->ops->endpoint(b->idp, IDP_EP_ISSUER_TEMPLATE, NULL, want,
	    sizeof(want));
	if (r == -ENOENT)
		return true;
	if (r == 0 && discovery_doc_issuer_matches(want, iss))
		return true;
	log_warnx("user \"%s\": pasted sign-in address refused: its iss %s is "
		  "not the discovered issuer %s",
	    u->name, log_value(q1, iss),
	    r == 0 ? log_value(q2, want) : "(none)");
	return false;
}

/* A pending code flow, its state still unused, waiting for the user. */
static int
is_open(const struct flow *f)
{
	return f != NULL && f->method == FLOW_CODE && f->code != NULL &&
	    f->state == FLOW_POLLING && f->req == NULL &&
	    (!f->remote || f->code->claimed) && f->code->state[0] != '\0';
}

/* An open flow this node may redeem by itself (not in the record). */
static int
is_local(const struct flow *f)
{
	return is_open(f) && !f->code->claimed;
}

int
flow_code_paste(struct broker *b, struct user *u, struct waiter *w,
    const char *text, size_t len, struct reply *out)
{
	struct flow *f = u->flow;
	struct authcode_reply rp;
	const char *why;
	int r;

	if (!is_open(f))
		return errmap_reply(out, -ENOKEY,
		    "no sign-in link is waiting for an address; run 'credctl "
		    "login'");
	if (f->client != IDP_CLIENT_PUBLIC)
		return errmap_reply(out, -EBADMSG,
		    "this sign-in ends in the browser (platform callback); "
		    "there is nothing to paste");
	r = authcode_parse_redirect(text, len, f->code->redirect_uri, &rp);
	if (r == -ENOMEM)
		return r;
	if (r == 0 &&
	    (strlen(f->code->state) != AUTHCODE_STATE_LEN ||
		sodium_memcmp(rp.state, f->code->state, AUTHCODE_STATE_LEN) !=
		    0))
		r = -ESTALE;
	if (r == 0 && rp.iss[0] != '\0' && !is_iss_ok(b, u, rp.iss))
		r = -EPROTO;
	if (r < 0) {
		why = r == -EXDEV  ? "not the sign-in's redirect address" :
		    r == -ESTALE   ? "state mismatch" :
		    r == -EPROTO   ? "iss is not the discovered issuer" :
		    r == -EMSGSIZE ? "too long" :
				     "malformed";
		user_audit("consent_rejected", u, u->uid, "login_code",
		    f->scope, "refused", NULL, NULL, why, NULL);
		authcode_reply_clear(&rp);
		return errmap_reply(out, -EBADMSG,
		    r == -EXDEV ?
			"that is not the address a sign-in ends "
			"on; paste the whole address your browser "
			"shows after signing in" :
			r == -ESTALE ?
			"that address belongs to another sign-in; "
			"use the link of the latest 'credctl login'" :
			r == -EPROTO ?
			"that address was sent by another identity provider "
			"(its iss is not the discovered issuer); nothing "
			"was redeemed" :
			"the pasted address is malformed or too long");
	}
	if (f->code->claimed) {
		/* Cluster: used up in the record first (any node's paste). */
		r = flow_code_take_submit(b, u->name, rp.state, 0, rp.code,
		    rp.error, rp.error_desc, f->seq, NULL, NULL, NULL, NULL);
		authcode_reply_clear(&rp);
		if (r < 0)
			return r;
		user_park(b, &f->done_waiters, w);
		f->state = FLOW_CLAIMING; /* nothing else uses it meanwhile */
		return WAITER_PARKED;
	}
	user_park(b, &f->done_waiters, w);
	flow_code_finish(b, u, f, rp.code, rp.error, rp.error_desc);
	authcode_reply_clear(&rp);
	return WAITER_PARKED;
}

struct code_find {
	const char *key; /* a state or a link id */
	size_t len;
	int is_link;
	struct user *found;
};

static void
find_cb(struct user *u, void *arg)
{
	struct code_find *cf = arg;
	const char *have;

	if (cf->found != NULL || !is_local(u->flow))
		return;
	have = cf->is_link ? u->flow->code->link : u->flow->code->state;
	if (strlen(have) == cf->len &&
	    sodium_memcmp(have, cf->key, cf->len) == 0)
		cf->found = u;
}

/*
 * The user whose open code flow has this state (or link id), or NULL.
 * O(users in memory): a flow's user is always resident.
 */
static struct user *
find_flow(struct broker *b, const char *key, int is_link)
{
	struct code_find cf = { key, key != NULL ? strlen(key) : 0, is_link,
		NULL };

	/* A flowref is found here too when the claim failed (the store was
	 * down at the start): then the flow is this node's alone. */
	if (cf.len != (is_link ? AUTHCODE_LINK_LEN : AUTHCODE_STATE_LEN) &&
	    (cf.len < FLOWREF_MIN || cf.len > FLOWREF_MAX))
		return NULL;
	user_foreach(b, find_cb, &cf);
	return cf.found;
}

void
flow_code_refused(const char *op, const char *reason)
{
	struct audit_event ev = {
		.event = "request_refused",
		.uid = (uid_t)-1,
		.op = op,
		.outcome = "refused",
		.reason = reason,
	};

	audit_refusal(&ev, util_mono_ms()); /* a peer can repeat it */
}

int
flow_code_link(struct broker *b, const char *id, char **authorize_url,
    broker_link_cb *cb, void *arg)
{
	struct user *u = find_flow(b, id, 1);
	char name[FLOWREF_USER_MAX + 1];
	struct flow_code *c;
	int r;

	*authorize_url = NULL;
	if (u == NULL && storeq_is_cluster(b->q) &&
	    flowref_open(b->seal, b->cf->tenant, FLOWREF_LINK, id, name,
		sizeof(name)) == 0) {
		r = flow_code_take_submit(b, name, id, 1, NULL, NULL, NULL, 0,
		    NULL, NULL, cb, arg);
		return r < 0 ? r : -EINPROGRESS;
	}
	if (u == NULL || u->flow->client != IDP_CLIENT_CONFIDENTIAL) {
		flow_code_refused("signin_link",
		    "unknown, used or expired link");
		return -ENOENT;
	}
	c = u->flow->code;
	*authorize_url = strdup(c->authorize_url);
	if (*authorize_url == NULL)
		return -ENOMEM;
	sodium_memzero(c->link, sizeof(c->link)); /* single use */
	user_audit("signin_link", u, u->uid, NULL, u->flow->scope, "ok", NULL,
	    NULL, NULL, NULL);
	return 0;
}

int
flow_code_callback(struct broker *b, const char *state,
    const struct secret *code, const char *err, const char *err_desc,
    broker_redeem_cb *cb, void *arg)
{
	struct user *u = find_flow(b, state, 0);
	char name[FLOWREF_USER_MAX + 1];
	struct flow *f;

	if (u == NULL && storeq_is_cluster(b->q) &&
	    (code != NULL || (err != NULL && *err != '\0')) &&
	    flowref_open(b->seal, b->cf->tenant, FLOWREF_STATE, state, name,
		sizeof(name)) == 0)
		return flow_code_take_submit(b, name, state, 0, code, err,
		    err_desc, 0, cb, arg, NULL, NULL);
	if (u == NULL || u->flow->client != IDP_CLIENT_CONFIDENTIAL ||
	    (code == NULL && (err == NULL || *err == '\0'))) {
		flow_code_refused("signin_callback",
		    "unknown, used or expired state");
		return -ENOENT;
	}
	f = u->flow;
	f->redeem_cb = cb;
	f->redeem_arg = arg;
	user_audit("signin_callback", u, u->uid, NULL, f->scope, "pending",
	    NULL, NULL, code != NULL ? "code" : "error", NULL);
	flow_code_finish(b, u, f, code, code != NULL ? NULL : err,
	    code != NULL ? NULL : err_desc);
	return 0;
}

/* ---- telling a callback's outcome ---- */

struct flow_tell {
	struct flow_tell *next;
	struct broker *b;
	struct event_timer *timer;
	broker_redeem_cb *cb;
	void *arg;
	int r;
	char user[PROTO_STR_MAX + 1];
	char reason[160];
};

static void
tell_unlink(struct flow_tell *t)
{
	struct flow_tell **pp;

	for (pp = &t->b->tells; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			return;
		}
}

static void
tell_cb(struct event_loop *ev, void *arg)
{
	struct flow_tell *t = arg;

	(void)ev;
	t->timer = NULL;
	tell_unlink(t);
	t->cb(t->arg, t->r, t->user, t->reason);
	free(t);
}

void
flow_code_tell(struct broker *b, broker_redeem_cb *cb, void *arg, int r,
    const char *user, const char *reason)
{
	struct flow_tell *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		t->timer = clock_timer_in(b->clk, 0, tell_cb, t);
		if (t->timer == NULL) {
			free(t);
			t = NULL;
		}
	}
	if (t == NULL) {
		log_warnx("user \"%s\": out of memory telling a sign-in "
			  "callback its outcome",
		    user);
		return;
	}
	t->b = b;
	t->cb = cb;
	t->arg = arg;
	t->r = r;
	(void)snprintf(t->user, sizeof(t->user), "%s", user);
	(void)snprintf(t->reason, sizeof(t->reason), "%s", reason);
	t->next = b->tells;
	b->tells = t;
}

void
flow_code_drop_tells(struct broker *b)
{
	struct flow_tell *t;

	while ((t = b->tells) != NULL) {
		b->tells = t->next;
		clock_timer_cancel(b->clk, &t->timer);
		free(t);
	}
}
