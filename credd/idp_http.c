/*
 * idp_http.c - the real IdP (idp.h): Entra's v2.0 device code and token
 * endpoints, the form bodies from oauth.c, confidential grants decorated
 * with the app credential (clientauth.h), sent through http.c, the
 * replies parsed and classified by oauth.c before the caller sees them.
 * One small allocation per request ties http's answer to the caller's
 * callback.
 *
 * Must never: log or keep a form body, a reply body or a token (the
 * forms are wiped once http.c has copied them; parsed tokens go to the
 * caller, what it leaves is wiped); put a credential on a public grant.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entra/secret.h"

#include "clientauth.h"
#include "config.h"
#include "http.h"
#include "idp.h"
#include "log.h"
#include "oauth.h"

struct idp_http {
	struct idp idp;
	struct http *http;
	const struct config *cf;
	const struct clientauth *ca; /* confidential grants' credential */
	int64_t cred_logged;	     /* last "credential broken" line, unix s */
	char token_url[512];
	char device_url[512];
};

struct idp_req {
	struct http_req *req;
	idp_token_cb *token_cb; /* or */
	idp_device_cb *device_cb;
	void *arg;
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

/* Post form (wiped here) to url; q is freed on failure. */
static int
post(struct idp_http *h, const char *url, struct secret *form,
    struct idp_req *q, struct idp_req **out)
{
	int r;

	r = http_post_form(h->http, url, form,
	    q->token_cb != NULL ? token_done : device_done, q, &q->req);
	secret_free(form);
	if (r < 0) {
		free(q);
		return r;
	}
	*out = q;
	return 0;
}

static int
http_device_start(struct idp *idp, const char *scope, idp_device_cb *cb,
    void *arg, struct idp_req **out)
{
	struct idp_http *h = to_http(idp);
	struct secret *form = NULL;
	struct idp_req *q;
	int r;

	*out = NULL;
	r = oauth_form_devicecode(h->cf->client_id, scope, &form);
	if (r < 0)
		return r;
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		secret_free(form);
		return -ENOMEM;
	}
	q->device_cb = cb;
	q->arg = arg;
	return post(h, h->device_url, form, q, out);
}

/*
 * A token-endpoint grant: form (taken) decorated for a confidential
 * client, then posted. IDP_ECREDENTIAL when the credential cannot be
 * made (logged here: the message names a file, never its bytes).
 */
static int
post_grant(struct idp_http *h, struct secret *form, enum idp_client kind,
    idp_token_cb *cb, void *arg, struct idp_req **out)
{
	struct idp_req *q;
	char msg[512];
	int r;

	if (kind == IDP_CLIENT_CONFIDENTIAL) {
		r = clientauth_decorate(h->ca, h->token_url,
		    (int64_t)time(NULL), &form, msg, sizeof(msg));
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
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		secret_free(form);
		return -ENOMEM;
	}
	q->token_cb = cb;
	q->arg = arg;
	return post(h, h->token_url, form, q, out);
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
	if (req == NULL || *req == NULL)
		return;
	http_cancel(to_http(idp)->http, &(*req)->req);
	free(*req);
	*req = NULL;
}

static size_t
http_inflight_reqs(const struct idp *idp)
{
	const struct idp_http *h = idp->priv;

	return http_inflight(h->http);
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
	.cancel = http_cancel_req,
	.inflight = http_inflight_reqs,
};

int
idp_http_new(struct http *http, const struct config *cf,
    const struct clientauth *ca, struct idp **out)
{
	struct idp_http *h;
	int r;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->http = http;
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
	if (idp == NULL)
		return;
	free(to_http(idp));
}
