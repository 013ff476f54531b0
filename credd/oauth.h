/*
 * oauth.h - Entra v2.0 OAuth: request bodies, response parsing and the
 * error classifier. No sockets here (http.c sends), no logging of
 * bodies. Parsing follows ../shared/reference/entra-protocol.md:
 * numbers may arrive as strings, error_codes is an array of ints,
 * classification uses error, suberror and error_codes, never the
 * description text. oauth.c builds and parses, oauth_class.c classifies,
 * oauth_id_token.c reads the id_token's account.
 */
#ifndef CREDD_OAUTH_H
#define CREDD_OAUTH_H

#include <stddef.h>
#include <stdint.h>

struct secret;

enum oauth_class {
	OAUTH_OK = 0,
	OAUTH_PENDING,	 /* authorization_pending: poll again */
	OAUTH_SLOW_DOWN, /* slow_down: interval += 5 */
	OAUTH_EXPIRED,	 /* expired_token: device code expired */
	OAUTH_DECLINED,	 /* authorization_declined / access_denied */
	OAUTH_BAD_CODE,	 /* bad_verification_code */
	OAUTH_REAUTH,	 /* refresh token dead: drop it */
	OAUTH_CONSENT,	 /* consent or MFA needed for this resource */
	OAUTH_POLICY,	 /* conditional access blocks; keep RT */
	OAUTH_RETRY,	 /* transient: 429, 5xx, network, malformed body */
	OAUTH_ADMIN,	 /* misconfiguration */
	OAUTH_CLASS_COUNT
};

#define OAUTH_CODES_MAX 8

struct oauth_error {
	enum oauth_class cls;
	long http_status; /* 0 for network errors */
	char error[64];	  /* "invalid_grant", or "" */
	char suberror[64];
	long codes[OAUTH_CODES_MAX];
	size_t ncodes;
	char trace_id[64];
	char correlation_id[64];
	int64_t retry_after; /* seconds from Retry-After, -1 if none */
	int is_throttled;    /* HTTP 429: tenant-wide slowdown */
	int is_local; /* RETRY caused by credd's side (the store), not the IdP */
	char reason
	    [96]; /* safe summary for logs/audit: "invalid_grant AADSTS50173" */
};

struct oauth_token {
	struct secret *access_token;
	struct secret *refresh_token; /* NULL when absent: keep the old one */
	struct secret *id_token;      /* NULL when absent */
	char token_type[32];
	int64_t expires_in;	/* default 600 if absent (as MSAL) */
	int64_t ext_expires_in; /* -1 if absent */
	int64_t refresh_in;	/* -1 if absent */
	char *scope;		/* granted scopes or NULL */
};

struct oauth_device {
	struct secret *device_code;
	char *user_code;
	char *verification_uri; /* also accepts v1 "verification_url" */
	char *message;		/* NULL if absent */
	int64_t expires_in;	/* default 900 */
	int64_t interval;	/* default 5 */
};

struct oauth_account {
	char *oid;
	char *tid;
	char *preferred_username; /* may be NULL */
	char *upn;		  /* may be NULL */
	char *iss;		  /* may be NULL (checked by flow.c) */
};

void oauth_token_clear(struct oauth_token *t);
void oauth_device_clear(struct oauth_device *d);
void oauth_account_clear(struct oauth_account *a);

/* Endpoint URLs: authority "/" tenant "/oauth2/v2.0/devicecode" | "/oauth2/v2.0/token". */
int oauth_url_devicecode(const char *authority, const char *tenant, char *dst,
    size_t dstsz);
int oauth_url_token(const char *authority, const char *tenant, char *dst,
    size_t dstsz);
/* authority "/" tenant "/oauth2/v2.0/authorize". */
int oauth_url_authorize(const char *authority, const char *tenant, char *dst,
    size_t dstsz);

/*
 * Form bodies (new secrets). client_secret may be NULL (public client).
 * scope is the full space-separated scope string to send.
 */
int oauth_form_devicecode(const char *client_id, const char *scope,
    struct secret **out);
int oauth_form_device_poll(const char *client_id,
    const struct secret *device_code, const struct secret *client_secret,
    struct secret **out);
int oauth_form_refresh(const char *client_id,
    const struct secret *refresh_token, const char *scope,
    const struct secret *client_secret, struct secret **out);

/*
 * The client credentials grant (RFC 6749 4.4): the app's own token for
 * scope (a resource's "/.default"). No credential: clientauth.h adds
 * the app's, and the grant is always confidential.
 */
int oauth_form_client_credentials(const char *client_id, const char *scope,
    struct secret **out);

/*
 * The authorization_code grant (RFC 6749 4.1.3, RFC 7636 4.5): code,
 * code_verifier, the redirect_uri of the authorize request, scope. No
 * credential (clientauth.h adds one for a confidential client).
 */
int oauth_form_authcode(const char *client_id, const struct secret *code,
    const struct secret *verifier, const char *redirect_uri, const char *scope,
    struct secret **out);

/*
 * Append a client assertion (RFC 7523 section 2.2: certificate or
 * federated, assertion.h) to a token-request form built above with
 * client_secret NULL: client_assertion_type=...jwt-bearer and
 * client_assertion. *form is grown in place (still a secret). 0,
 * -EINVAL (no assertion, or the form already has a client_secret),
 * -ENOMEM (the form is then wiped and freed, *form NULL).
 */
int oauth_form_add_assertion(struct secret **form,
    const struct secret *assertion);

/*
 * Append claims=JSON (a claims challenge merged with the client
 * capabilities, cae.h) to a token-request form. 0, -EINVAL (no form or
 * claims), -ENOMEM (the form is then wiped and freed, *form NULL).
 */
int oauth_form_add_claims(struct secret **form, const char *claims);

/*
 * Parse a token-endpoint reply. Returns 0 and fills *tok on a 200 with an
 * access token; otherwise returns -EPROTO and fills *err (classified).
 * A network failure is passed as status 0 / body NULL and is RETRY.
 * retry_after: from the Retry-After header, -1 if none.
 */
int oauth_parse_token(long status, const struct secret *body,
    int64_t retry_after, struct oauth_token *tok, struct oauth_error *err);
/* Same for the devicecode endpoint. */
int oauth_parse_device(long status, const struct secret *body,
    int64_t retry_after, struct oauth_device *dev, struct oauth_error *err);

/*
 * Classify an error from its fields (table over the reference catalogue).
 * Fills err->cls and err->reason from the other fields.
 */
void oauth_classify(struct oauth_error *err);
const char *oauth_class_name(enum oauth_class cls);

/*
 * Read oid, tid, preferred_username (and upn, iss) from an id_token
 * payload. The id_token came straight from the token endpoint over
 * verified TLS (OIDC Core 3.1.3.7 (6)), so the signature is not checked;
 * aud must equal client_id and tid must equal tenant. -EBADMSG otherwise.
 * tenant NULL: a generic OpenID provider's token ([entra] provider =
 * oidc): oid is its sub, preferred_username its preferred_username or
 * email, tid is left NULL.
 */
int oauth_id_token_account(const struct secret *id_token, const char *client_id,
    const char *tenant, struct oauth_account *out);

/* Resource part of a scope ("https://storage.azure.com/.default" -> "https://storage.azure.com"). */
int oauth_scope_resource(const char *scope, char *dst, size_t dstsz);

#endif
