/*
 * idp_http.c - the real IdP (idp.h): Entra's v2.0 device code and token
 * endpoints, the form bodies from oauth.c, confidential grants decorated
 * with the app credential (clientauth.h), sent through http.c, the
 * replies parsed and classified by oauth.c before the caller sees them.
 * One small allocation per request ties http's answer to the caller's
 * callback. The endpoints come from the discovery document in force
 * (discovery.h): a request made before the first document arrives waits
 * (parked, its form kept) for that one fetch, and fails with the fetch's
 * class (RETRY: unavailable; ADMIN: the document was refused) when it
 * fails. Without a discovery (unit tests), Entra's URL templates.
 *
 * Must never: log or keep a form body, a reply body or a token (the
 * forms are wiped once http.c has copied them; parsed tokens go to the
 * caller, what it leaves is wiped); put a credential on a public grant;
 * send anything to an endpoint of a refused document.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entra/secret.h"

#include "clientauth.h"
#include "config.h"
#include "discovery.h"
#include "event.h"
#include "http.h"
#include "idp.h"
#include "log.h"
#include "oauth.h"

struct idp_http {
	struct idp idp;
	struct http *http;
	struct event_loop *ev;
	struct discovery *disc; /* NULL: the templates below */
	const struct config *cf;
	const struct clientauth *ca; /* confidential grants' credential */
	int64_t cred_logged;	     /* last "credential broken" line, unix s */
	char token_url[512];
	char device_url[512];
	struct idp_req *parked;	  /* waiting for the first document */
	struct event_timer *fail; /* fails the parked at once */
	int fail_r;		  /* with this (discovery_need's -errno) */
};

enum endpoint { EP_TOKEN, EP_DEVICE };

struct idp_req {
	struct http_req *req;
	idp_token_cb *token_cb; /* or */
	idp_device_cb *device_cb;
	void *arg;
	/* Parked until a document is in force: what to send, and how. */
	struct secret *form;
	enum endpoint ep;
	enum idp_client kind;
	bool is_parked;
	struct idp_req *prev, *next;
};

static struct idp_http *
to_http(struct idp *idp)
{
	return idp->priv;
}

static void
token_done(void *arg, const struct http_response *hr)
{
	struct idp_req *q = arg;
	idp_token_cb *cb = q->token_cb;
	void *cb_arg = q->arg;
	struct oauth_token tok = { 0 };
	struct oauth_error err = { 0 };
	int r;

	free(q); /* the handle is gone once the callback runs */
	r = oauth_parse_token(hr->status, hr->error ? NULL : hr->body,
	    hr->retry_after, &tok, &err);
	cb(cb_arg, r, &tok, &err);
	oauth_token_clear(&tok);
}

static void
device_done(void *arg, const struct http_response *hr)
{
	struct idp_req *q = arg;
	idp_device_cb *cb = q->device_cb;
	void *cb_arg = q->arg;
	struct oauth_device dev = { 0 };
	struct oauth_error err = { 0 };
	int r;

	free(q);
	r = oauth_parse_device(hr->status, hr->error ? NULL : hr->body,
	    hr->retry_after, &dev, &err);
	cb(cb_arg, r, &dev, &err);
	oauth_device_clear(&dev);
}

/* The URL of ep, from the document in force (or the templates). */
static const char *
endpoint_url(const struct idp_http *h, enum endpoint ep)
{
	const struct discovery_doc *doc;

	if (h->disc == NULL)
		return ep == EP_TOKEN ? h->token_url : h->device_url;
	doc = discovery_get(h->disc);
	if (doc == NULL)
		return NULL;
	return ep == EP_TOKEN ? doc->token_endpoint :
				doc->device_authorization_endpoint;
}

/*
 * Send q's form (taken, wiped here) to url: decorated first for a
 * confidential client (the assertion's aud is the token endpoint in
 * force). q stays the caller's on failure. IDP_ECREDENTIAL when the credential
 * cannot be made (logged here: the message names a file, never its
 * bytes).
 */
static int
send_req(struct idp_http *h, const char *url, struct idp_req *q)
{
	struct secret *form = q->form;
	char msg[512];
	int r;

	q->form = NULL;
	if (q->kind == IDP_CLIENT_CONFIDENTIAL) {
		r = clientauth_decorate(h->ca, url, (int64_t)time(NULL), &form,
		    msg, sizeof(msg));
		if (r < 0) {
			/* Once a minute: every user's refresh fails alike. */
			if (r != -ENOMEM && time(NULL) - h->cred_logged >= 60) {
				h->cred_logged = time(NULL);
				log_warnx(
				    "[entra] client_auth: %s; confidential "
				    "grants fail until it is fixed",
				    msg);
			}
			secret_free(form);
			return r == -ENOMEM ? r : IDP_ECREDENTIAL;
		}
	}
	r = http_post_form(h->http, url, form,
	    q->token_cb != NULL ? token_done : device_done, q, &q->req);
	secret_free(form);
	return r;
}

static void
park_unlink(struct idp_http *h, struct idp_req *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		h->parked = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	q->is_parked = false;
}

/*
 * Answer a parked request (unlinked, freed here) with an error of class
 * cls: RETRY (idp_unavailable) or ADMIN (idp_misconfigured).
 */
static void
fail_req(struct idp_req *q, int r, enum oauth_class cls, const char *why)
{
	struct oauth_error err = { 0 };
	struct oauth_token tok = { 0 };
	struct oauth_device dev = { 0 };
	idp_token_cb *tcb = q->token_cb;
	idp_device_cb *dcb = q->device_cb;
	void *arg = q->arg;

	secret_free(q->form);
	free(q);
	err.cls = cls;
	/* No Retry-After: discovery.c paces its own fetches. */
	err.retry_after = -1;
	(void)snprintf(err.reason, sizeof(err.reason), "%s", why);
	if (tcb != NULL)
		tcb(arg, r, &tok, &err);
	else
		dcb(arg, r, &dev, &err);
}

/* Send, or answer, a request that no longer waits for a document. */
static void
unpark(struct idp_http *h, struct idp_req *q, int r)
{
	const char *url = r == 0 ? endpoint_url(h, q->ep) : NULL;
	char why[DISCOVERY_WHY_MAX + 32];
	int rs;

	if (url == NULL) {
		(void)snprintf(why, sizeof(why), "%s",
		    discovery_why(h->disc)[0] != '\0' ?
			discovery_why(h->disc) :
			"discovery document unavailable");
		fail_req(q, -EPROTO, r == -EBADMSG ? OAUTH_ADMIN : OAUTH_RETRY,
		    why);
		return;
	}
	if (*url == '\0') {
		log_warnx("discovery: %s has no device_authorization_endpoint: "
			  "the device code flow cannot start",
		    discovery_url(h->disc));
		fail_req(q, -EPROTO, OAUTH_ADMIN,
		    "no device_authorization_endpoint in the discovery "
		    "document");
		return;
	}
	rs = send_req(h, url, q);
	if (rs == IDP_ECREDENTIAL)
		fail_req(q, rs, OAUTH_ADMIN, "client credential unavailable");
	else if (rs < 0)
		fail_req(q, rs, OAUTH_RETRY, "cannot send the request");
}

/* Every parked request, once a fetch ended (r as discovery_cb's). */
static void
flush_parked(struct idp_http *h, int r)
{
	struct idp_req *q;

	event_timer_cancel(h->ev, &h->fail);
	while ((q = h->parked) != NULL) {
		park_unlink(h, q);
		unpark(h, q, r);
	}
}

static void
on_discovered(void *arg, int r)
{
	flush_parked(arg, r);
}

static void
on_fail_timer(struct event_loop *ev, void *arg)
{
	struct idp_http *h = arg;

	(void)ev;
	h->fail = NULL;
	/* -EBADMSG (a refused document) stays an admin's problem. */
	flush_parked(h, discovery_get(h->disc) != NULL ? 0 : h->fail_r);
}

/*
 * Send q (its form, kind and ep set) to its endpoint, or park it until
 * the first document; *out is q either way, 0. -errno (q freed) when it
 * cannot be sent at all.
 */
static int
submit(struct idp_http *h, struct idp_req *q, struct idp_req **out)
{
	const char *url = endpoint_url(h, q->ep);
	int r;

	if (url != NULL && *url != '\0') {
		r = send_req(h, url, q);
		if (r < 0) {
			free(q);
			return r;
		}
		*out = q;
		return 0;
	}
	/* No document yet, or no device endpoint in it: answered later. */
	r = url == NULL ? discovery_need(h->disc) : -EBADMSG;
	q->is_parked = true;
	q->next = h->parked;
	if (h->parked != NULL)
		h->parked->prev = q;
	h->parked = q;
	if (r != -EINPROGRESS && h->fail == NULL) {
		h->fail_r = r;
		h->fail = event_timer_in(h->ev, 0, on_fail_timer, h);
		if (h->fail == NULL) {
			park_unlink(h, q);
			secret_free(q->form);
			free(q);
			return -ENOMEM;
		}
	}
	*out = q;
	return 0;
}

/* A new request for form (taken): a token grant or a device code. */
static int
request(struct idp_http *h, struct secret *form, enum endpoint ep,
    enum idp_client kind, idp_token_cb *tcb, idp_device_cb *dcb, void *arg,
    struct idp_req **out)
{
	struct idp_req *q;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		secret_free(form);
		return -ENOMEM;
	}
	q->form = form;
	q->ep = ep;
	q->kind = kind;
	q->token_cb = tcb;
	q->device_cb = dcb;
	q->arg = arg;
	return submit(h, q, out);
}

static int
http_device_start(struct idp *idp, const char *scope, idp_device_cb *cb,
    void *arg, struct idp_req **out)
{
	struct idp_http *h = to_http(idp);
	struct secret *form = NULL;
	int r;

	*out = NULL;
	r = oauth_form_devicecode(h->cf->client_id, scope, &form);
	if (r < 0)
		return r;
	return request(h, form, EP_DEVICE, IDP_CLIENT_PUBLIC, NULL, cb, arg,
	    out);
}

/* A token-endpoint grant: form (taken) sent as kind. */
static int
post_grant(struct idp_http *h, struct secret *form, enum idp_client kind,
    idp_token_cb *cb, void *arg, struct idp_req **out)
{
	return request(h, form, EP_TOKEN, kind, cb, NULL, arg, out);
}

/*
 * A device-code poll: a public-client grant, never a credential
 * (AADSTS700025); with claims (a challenge, cae.h) when not NULL.
 */
static int
device_poll(struct idp_http *h, const struct secret *device_code,
    const char *claims, idp_token_cb *cb, void *arg, struct idp_req **out)
{
	struct secret *form = NULL;
	int r;

	*out = NULL;
	r = oauth_form_device_poll(h->cf->client_id, device_code, NULL, &form);
	if (r == 0 && claims != NULL)
		r = oauth_form_add_claims(&form, claims); /* frees on error */
	if (r < 0) {
		secret_free(form);
		return r;
	}
	return post_grant(h, form, IDP_CLIENT_PUBLIC, cb, arg, out);
}

static int
http_device_poll(struct idp *idp, const struct secret *device_code,
    idp_token_cb *cb, void *arg, struct idp_req **out)
{
	return device_poll(to_http(idp), device_code, NULL, cb, arg, out);
}

static int
http_device_poll_claims(struct idp *idp, const struct secret *device_code,
    const char *claims, idp_token_cb *cb, void *arg, struct idp_req **out)
{
	return device_poll(to_http(idp), device_code, claims, cb, arg, out);
}

/* The refresh grant as kind; with claims (CAE, cae.h) when not NULL. */
static int
refresh(struct idp_http *h, const struct secret *refresh_token,
    const char *scope, const char *claims, enum idp_client kind,
    idp_token_cb *cb, void *arg, struct idp_req **out)
{
	struct secret *form = NULL;
	int r;

	*out = NULL;
	r = oauth_form_refresh(h->cf->client_id, refresh_token, scope, NULL,
	    &form);
	if (r == 0 && claims != NULL)
		r = oauth_form_add_claims(&form, claims);
	if (r < 0) {
		secret_free(form);
		return r;
	}
	return post_grant(h, form, kind, cb, arg, out);
}

static int
http_refresh(struct idp *idp, const struct secret *refresh_token,
    const char *scope, enum idp_client kind, idp_token_cb *cb, void *arg,
    struct idp_req **out)
{
	return refresh(to_http(idp), refresh_token, scope, NULL, kind, cb, arg,
	    out);
}

static int
http_refresh_claims(struct idp *idp, const struct secret *refresh_token,
    const char *scope, const char *claims, enum idp_client kind,
    idp_token_cb *cb, void *arg, struct idp_req **out)
{
	return refresh(to_http(idp), refresh_token, scope, claims, kind, cb,
	    arg, out);
}

static int
http_code_redeem(struct idp *idp, const struct secret *code,
    const struct secret *verifier, const char *redirect_uri, const char *scope,
    enum idp_client kind, idp_token_cb *cb, void *arg, struct idp_req **out)
{
	struct idp_http *h = to_http(idp);
	struct secret *form = NULL;
	int r;

	*out = NULL;
	r = oauth_form_authcode(h->cf->client_id, code, verifier, redirect_uri,
	    scope, &form);
	if (r < 0)
		return r;
	return post_grant(h, form, kind, cb, arg, out);
}

/* The app's own token (identity = app): always confidential. */
static int
http_client_credentials(struct idp *idp, const char *scope, idp_token_cb *cb,
    void *arg, struct idp_req **out)
{
	struct idp_http *h = to_http(idp);
	struct secret *form = NULL;
	int r;

	*out = NULL;
	r = oauth_form_client_credentials(h->cf->client_id, scope, &form);
	if (r < 0)
		return r;
	return post_grant(h, form, IDP_CLIENT_CONFIDENTIAL, cb, arg, out);
}

static void
http_cancel_req(struct idp *idp, struct idp_req **req)
{
	struct idp_http *h = to_http(idp);

	if (req == NULL || *req == NULL)
		return;
	if ((*req)->is_parked)
		park_unlink(h, *req);
	else
		http_cancel(h->http, &(*req)->req);
	secret_free((*req)->form);
	free(*req);
	*req = NULL;
}

static size_t
http_inflight_reqs(const struct idp *idp)
{
	const struct idp_http *h = idp->priv;
	const struct idp_req *q;
	size_t n = 0;

	for (q = h->parked; q != NULL; q = q->next)
		n++;
	return http_inflight(h->http) + n;
}

static int
http_endpoint(struct idp *idp, enum idp_endpoint which, const char *tid,
    char *dst, size_t dstsz)
{
	struct idp_http *h = to_http(idp);
	const struct discovery_doc *doc = discovery_get(h->disc);
	int n;

	if (h->disc == NULL) {
		if (which == IDP_EP_AUTHORIZE)
			return oauth_url_authorize(h->cf->authority,
			    h->cf->tenant, dst, dstsz);
		return -ENOENT;
	}
	if (doc == NULL) {
		(void)discovery_need(h->disc);
		return -EAGAIN;
	}
	if (which == IDP_EP_ISSUER)
		return discovery_doc_issuer(doc, tid, dst, dstsz);
	if (which == IDP_EP_ISSUER_TEMPLATE)
		n = snprintf(dst, dstsz, "%s", doc->issuer);
	else if (doc->authorization_endpoint[0] == '\0')
		return -ENOENT;
	else
		n = snprintf(dst, dstsz, "%s", doc->authorization_endpoint);
	return n < 0 || (size_t)n >= dstsz ? -ENAMETOOLONG : 0;
}

static const struct idp_ops idp_http_ops = {
	.name = "entra",
	.device_start = http_device_start,
	.device_poll = http_device_poll,
	.refresh = http_refresh,
	.refresh_claims = http_refresh_claims,
	.device_poll_claims = http_device_poll_claims,
	.code_redeem = http_code_redeem,
	.client_credentials = http_client_credentials,
	.endpoint = http_endpoint,
	.cancel = http_cancel_req,
	.inflight = http_inflight_reqs,
};

int
idp_http_new(struct event_loop *ev, struct http *http, struct discovery *disc,
    const struct config *cf, const struct clientauth *ca, struct idp **out)
{
	struct idp_http *h;
	int r;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->ev = ev;
	h->http = http;
	h->disc = disc;
	h->cf = cf;
	h->ca = ca;
	r = oauth_url_token(cf->authority, cf->tenant, h->token_url,
	    sizeof(h->token_url));
	if (r == 0)
		r = oauth_url_devicecode(cf->authority, cf->tenant,
		    h->device_url, sizeof(h->device_url));
	if (r < 0) {
		free(h);
		return r;
	}
	h->idp.ops = &idp_http_ops;
	h->idp.priv = h;
	if (disc != NULL)
		discovery_set_listener(disc, on_discovered, h);
	*out = &h->idp;
	return 0;
}

void
idp_http_set_config(struct idp *idp, const struct config *cf)
{
	to_http(idp)->cf = cf;
}

void
idp_http_free(struct idp *idp)
{
	struct idp_http *h;

	if (idp == NULL)
		return;
	h = to_http(idp);
	if (h->disc != NULL)
		discovery_set_listener(h->disc, NULL, NULL);
	event_timer_cancel(h->ev, &h->fail);
	while (h->parked != NULL) { /* none: the broker cancelled them */
		struct idp_req *q = h->parked;

		park_unlink(h, q);
		secret_free(q->form);
		free(q);
	}
	free(h);
}
