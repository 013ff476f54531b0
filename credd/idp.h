/*
 * idp.h - the identity provider as the broker sees it: the few grants
 * it sends (a device code and its polls, a refresh token grant, the
 * app's own client credentials grant), each
 * asynchronous, answered once on the loop thread with the reply already
 * parsed and classified (oauth.h). The real one (idp_http.c) is Entra
 * over http.c and oauth.c; unit tests plug in a scripted one. Sign-in
 * methods are ops here (device code, auth code + PKCE), not HTTP code in
 * the broker; the app credential (clientauth.h) is the IdP's business:
 * the broker only says whether a grant is public or confidential.
 *
 * Must never: call a completion before the op that started it returned,
 * or after cancel; log a form body, a token or a device code.
 */
#ifndef CREDD_IDP_H
#define CREDD_IDP_H

#include <errno.h>
#include <stddef.h>

struct idp;
struct idp_req;
struct discovery;
struct event_loop;
struct http;
struct clientauth;
struct config;
struct secret;
struct oauth_token;
struct oauth_device;
struct oauth_error;

/*
 * A grant's answer: r 0 with *tok filled, or r < 0 with *err classified
 * (*tok empty). The callee may take what it keeps from *tok (leaving
 * NULL behind); the rest is wiped after it returns. The request handle
 * is gone once this runs.
 */
typedef void idp_token_cb(void *arg, int r, struct oauth_token *tok,
    const struct oauth_error *err);
/* The same for a device code: *dev filled (take what you keep), or *err. */
typedef void idp_device_cb(void *arg, int r, struct oauth_device *dev,
    const struct oauth_error *err);

/*
 * Which kind of client a grant is, by Entra's rule: the device code
 * flow, the paste-back code flow and their refreshes are public (no
 * credential: AADSTS700025 otherwise); the platform-callback code flow
 * and its refreshes are confidential (the configured credential). A
 * refresh token keeps the kind of the grant that obtained it (record.h).
 */
enum idp_client {
	IDP_CLIENT_PUBLIC = 0,
	IDP_CLIENT_CONFIDENTIAL = 1,
};

/*
 * An op's "the app credential cannot be made" (the federated token file
 * is missing or stale, signing failed): an admin's problem, logged by
 * the IdP; callers treat it as OAUTH_ADMIN and never drop the consent.
 */
#define IDP_ECREDENTIAL (-EKEYREJECTED)

/* What the endpoint op reads from the discovery document. */
enum idp_endpoint {
	IDP_EP_AUTHORIZE = 0,
	IDP_EP_ISSUER = 1,
	IDP_EP_ISSUER_TEMPLATE = 2, /* as the document says ({tenantid}) */
};

struct idp_ops {
	const char *name;
	/*
	 * Ask for a device code for scope (the full string to send). 0 with
	 * *out the request, or -errno (cb never runs).
	 */
	int (*device_start)(struct idp *idp, const char *scope,
	    idp_device_cb *cb, void *arg, struct idp_req **out);
	/* Poll the token endpoint with a device code. As device_start. */
	int (*device_poll)(struct idp *idp, const struct secret *device_code,
	    idp_token_cb *cb, void *arg, struct idp_req **out);
	/*
	 * Redeem refresh_token for scope (the full string), as the kind of
	 * client that obtained it. As device_start, and IDP_ECREDENTIAL.
	 */
	int (*refresh)(struct idp *idp, const struct secret *refresh_token,
	    const char *scope, enum idp_client kind, idp_token_cb *cb,
	    void *arg, struct idp_req **out);
	/*
	 * The refresh grant with a claims parameter (claims: JSON text, a
	 * challenge merged with the client capabilities, cae.h). As
	 * refresh (kind included). NULL in an IdP that cannot send claims: flight.c then
	 * answers a claims request with an error, never a stale token.
	 */
	int (*refresh_claims)(struct idp *idp,
	    const struct secret *refresh_token, const char *scope,
	    const char *claims, enum idp_client kind, idp_token_cb *cb,
	    void *arg, struct idp_req **out);
	/*
	 * A device-code poll with a claims parameter (a challenge the
	 * sign-in must satisfy, cae.h). As device_poll; NULL: the flow
	 * polls without the claims.
	 */
	int (*device_poll_claims)(struct idp *idp,
	    const struct secret *device_code, const char *claims,
	    idp_token_cb *cb, void *arg, struct idp_req **out);
	/*
	 * Redeem an authorization code (RFC 6749 4.1.3 with RFC 7636's
	 * code_verifier) sent to redirect_uri, for scope (the full string),
	 * as kind. As refresh.
	 */
	int (*code_redeem)(struct idp *idp, const struct secret *code,
	    const struct secret *verifier, const char *redirect_uri,
	    const char *scope, enum idp_client kind, idp_token_cb *cb,
	    void *arg, struct idp_req **out);
	/*
	 * The client credentials grant for scope (the full string, e.g.
	 * "https://storage.azure.com/.default"): the app's own token, no
	 * user (issue 14, identity = app). Always confidential. As refresh
	 * (IDP_ECREDENTIAL included). NULL in an IdP without it: an app
	 * token is then refused.
	 */
	int (*client_credentials)(struct idp *idp, const char *scope,
	    idp_token_cb *cb, void *arg, struct idp_req **out);
	/*
	 * The authorization endpoint (IDP_EP_AUTHORIZE) or the issuer an
	 * id_token of tenant tid must carry (IDP_EP_ISSUER; tid replaces
	 * "{tenantid}") from the discovery document in force, into dst. 0,
	 * -EAGAIN (no document yet: a fetch was started; the caller
	 * answers idp_unavailable), -ENOENT (the document has none),
	 * -EINVAL, -ENAMETOOLONG. NULL in an IdP without discovery: the
	 * callers use Entra's templates (oauth_url_authorize) and skip the
	 * issuer check.
	 */
	int (*endpoint)(struct idp *idp, enum idp_endpoint which,
	    const char *tid, char *dst, size_t dstsz);
	/* Cancel; *req set to NULL; its callback will not run. NULL-safe. */
	void (*cancel)(struct idp *idp, struct idp_req **req);
	/* Requests in flight (stats). */
	size_t (*inflight)(const struct idp *idp);
};

struct idp {
	const struct idp_ops *ops;
	void *priv;
};

/*
 * The real IdP: the endpoints of the discovery document in force (disc,
 * discovery.h; the IdP becomes its listener), or with disc NULL Entra's
 * v2.0 URL templates for cf's authority and tenant; sent through h;
 * client_id is read from cf at each request, and confidential grants are
 * decorated by ca (NULL: no credential). cf, ca and disc are borrowed
 * (disc outlives the IdP). 0 or -errno (-ENAMETOOLONG for an over-long
 * URL, -ENOMEM).
 */
int idp_http_new(struct event_loop *ev, struct http *h, struct discovery *disc,
    const struct config *cf, const struct clientauth *ca, struct idp **out);
/* After SIGHUP (the endpoints stay those of the first config). */
void idp_http_set_config(struct idp *idp, const struct config *cf);
/*
 * Cancels nothing (the broker cancels its requests first); stops
 * listening to the discovery. NULL-safe.
 */
void idp_http_free(struct idp *idp);

#endif
