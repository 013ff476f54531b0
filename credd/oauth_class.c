/*
 * oauth_class.c - the classifier of IdP errors: which class (retry,
 * reauth, consent, policy, admin, the device-flow states) an error reply
 * falls in, from the HTTP status, error, suberror and error_codes,
 * through tables over ../shared/reference/entra-protocol.md's catalogue
 * (DESIGN section 5 wins where they differ); and the short reason logs
 * and audit lines carry.
 *
 * Must never: look at error_description (free text that can name the
 * user), or put anything in the reason but the error name, suberror,
 * first AADSTS code or HTTP status.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "oauth.h"

static const char *const class_names[OAUTH_CLASS_COUNT] = {
	[OAUTH_OK] = "ok",
	[OAUTH_PENDING] = "pending",
	[OAUTH_SLOW_DOWN] = "slow_down",
	[OAUTH_EXPIRED] = "expired",
	[OAUTH_DECLINED] = "declined",
	[OAUTH_BAD_CODE] = "bad_code",
	[OAUTH_REAUTH] = "reauth",
	[OAUTH_CONSENT] = "consent",
	[OAUTH_POLICY] = "policy",
	[OAUTH_RETRY] = "retry",
	[OAUTH_ADMIN] = "admin",
};

const char *
oauth_class_name(enum oauth_class cls)
{
	if ((unsigned)cls >= OAUTH_CLASS_COUNT)
		return "unknown";
	return class_names[cls];
}

struct name_class {
	const char *name;
	enum oauth_class cls;
};

/*
 * Error names that decide the class whatever codes come with them:
 * the device-flow states (RFC 8628 3.5), transient and client errors.
 */
static const struct name_class error_first[] = {
	{ "authorization_pending", OAUTH_PENDING },
	{ "slow_down", OAUTH_SLOW_DOWN },
	{ "expired_token", OAUTH_EXPIRED },
	{ "authorization_declined", OAUTH_DECLINED },
	{ "access_denied", OAUTH_DECLINED },
	{ "bad_verification_code", OAUTH_BAD_CODE },
	{ "temporarily_unavailable", OAUTH_RETRY },
	{ "invalid_client", OAUTH_ADMIN },
	{ "unauthorized_client", OAUTH_ADMIN },
};

/*
 * Suberrors that mean "app protection policy" (MSAL.NET does not treat
 * them as UI-required). They are checked before the codes, so a code
 * that would drop the refresh token cannot override them: POLICY keeps it.
 */
static const struct name_class suberror_policy[] = {
	{ "protection_policy_required", OAUTH_POLICY },
	{ "client_mismatch", OAUTH_POLICY },
};

/* AADSTS codes (reference section 3; DESIGN section 5 wins where they differ). */
static const struct {
	long code;
	enum oauth_class cls;
} code_table[] = {
	/* The refresh token is dead: drop it, new device flow. */
	{ 70008, OAUTH_REAUTH },  /* expired or revoked grant */
	{ 700082, OAUTH_REAUTH }, /* inactive for 90 days */
	{ 700084, OAUTH_REAUTH }, /* SPA refresh token 24 h limit */
	{ 50173,
	    OAUTH_REAUTH }, /* revoked (password reset, revokeSignInSessions) */
	{ 50132, OAUTH_REAUTH }, /* SSO artifact invalid or expired */
	{ 50133, OAUTH_REAUTH }, /* SSO artifact revoked */
	{ 70043, OAUTH_REAUTH }, /* CA sign-in frequency */
	/* This resource needs consent or MFA: keep the refresh token. */
	{ 65001, OAUTH_CONSENT }, { 50076, OAUTH_CONSENT },
	{ 50078, OAUTH_CONSENT },
	/* Conditional access: no sign-in here fixes it; keep the token. */
	{ 53003, OAUTH_POLICY }, { 50079, OAUTH_POLICY },
	/* Misconfiguration: no user action helps. */
	{ 700016, OAUTH_ADMIN },  /* app not found in tenant */
	{ 7000215, OAUTH_ADMIN }, /* invalid client secret */
	{ 7000222, OAUTH_ADMIN }, /* client secret expired */
	{ 7000218, OAUTH_ADMIN }, /* confidential app without credential */
	{ 700025, OAUTH_ADMIN },  /* public client sent a credential */
	{ 700027, OAUTH_ADMIN },  /* assertion signature invalid */
	{ 50012, OAUTH_ADMIN },	  /* assertion/certificate not authorised */
	{ 500011, OAUTH_ADMIN },  /* resource not in tenant */
	{ 28000, OAUTH_ADMIN },	  /* scopes span resources: our bug */
	{ 700022, OAUTH_ADMIN },  /* same, documented name */
	{ 70011, OAUTH_ADMIN },	  /* invalid scope */
	/* Transient. */
	{ 90055, OAUTH_RETRY }, /* tenant throttling */
	{ 50196, OAUTH_RETRY }, /* loop detected: back off */
};

/* Suberrors that, with invalid_grant, ask for an interactive sign-in. */
static const char *const suberror_consent[] = {
	"consent_required",
	"basic_action",
	"additional_action",
};

/* Error names checked after the codes and suberrors. */
static const struct name_class error_last[] = {
	{ "interaction_required", OAUTH_CONSENT },
	{ "invalid_scope", OAUTH_ADMIN },
	{ "invalid_resource", OAUTH_ADMIN },
	{ "invalid_request", OAUTH_ADMIN },
	{ "unsupported_grant_type", OAUTH_ADMIN },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static bool
lookup_name(const struct name_class *t, size_t n, const char *name,
    enum oauth_class *cls)
{
	size_t i;

	if (name[0] == '\0')
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0) {
			*cls = t[i].cls;
			return true;
		}
	return false;
}

/* The first code of error_codes that the table knows. */
static bool
lookup_codes(const struct oauth_error *err, enum oauth_class *cls)
{
	size_t i, j;

	for (i = 0; i < err->ncodes && i < OAUTH_CODES_MAX; i++)
		for (j = 0; j < NELEM(code_table); j++)
			if (code_table[j].code == err->codes[i]) {
				*cls = code_table[j].cls;
				return true;
			}
	return false;
}

static enum oauth_class
classify_class(struct oauth_error *err)
{
	enum oauth_class cls;
	size_t i;

	/* Transport first: the body of a 429 or 5xx proves nothing. */
	if (err->http_status == 0)
		return OAUTH_RETRY;
	if (err->http_status == 429) {
		err->is_throttled = 1;
		return OAUTH_RETRY;
	}
	if (err->http_status >= 500 || err->http_status == 408)
		return OAUTH_RETRY;
	/* A 2xx that did not parse as a token: the reply was mangled. */
	if (err->http_status >= 200 && err->http_status < 300 &&
	    err->error[0] == '\0')
		return OAUTH_RETRY;

	if (lookup_name(error_first, NELEM(error_first), err->error, &cls))
		return cls;
	if (lookup_name(suberror_policy, NELEM(suberror_policy), err->suberror,
		&cls))
		return cls;
	if (lookup_codes(err, &cls))
		return cls;
	if (strcmp(err->error, "invalid_grant") == 0) {
		for (i = 0; i < NELEM(suberror_consent); i++)
			if (strcmp(err->suberror, suberror_consent[i]) == 0)
				return OAUTH_CONSENT;
		/*
		 * invalid_grant without error_codes comes from a generic
		 * OpenID provider: its refresh token is dead (RFC 6749 5.2),
		 * so REAUTH. With a code we do not know, Entra is speaking:
		 * it uses invalid_grant for "dead token" and for "this
		 * resource wants more" alike, and the dead-token codes are
		 * all in the table. CONSENT keeps the refresh token and a new
		 * sign-in fixes either case; REAUTH would throw away a token
		 * that may still work for the other resources.
		 */
		return err->ncodes == 0 ? OAUTH_REAUTH : OAUTH_CONSENT;
	}
	if (lookup_name(error_last, NELEM(error_last), err->error, &cls))
		return cls;
	/*
	 * Anything else (an unknown 4xx error, a 3xx since redirects are
	 * off, a 4xx without a JSON body): ADMIN. RETRY would loop on a
	 * reply that will not change by itself, and REAUTH would drop a
	 * refresh token over a reply we do not understand.
	 */
	return OAUTH_ADMIN;
}

/* Append to reason; returns false when it had to be cut. */
static bool
reason_add(char *dst, size_t dstsz, const char *s)
{
	size_t len = strlen(dst);
	int n;

	n = snprintf(dst + len, dstsz - len, "%s%s", len > 0 ? " " : "", s);
	return n >= 0 && (size_t)n < dstsz - len;
}

void
oauth_classify(struct oauth_error *err)
{
	char code[24];
	int n;

	err->is_throttled = 0;
	err->cls = classify_class(err);
	err->reason[0] = '\0';
	if (err->error[0] != '\0') {
		/* "error [suberror] AADSTSnnnnn": never the description. */
		(void)reason_add(err->reason, sizeof(err->reason), err->error);
		if (err->suberror[0] != '\0')
			(void)reason_add(err->reason, sizeof(err->reason),
			    err->suberror);
		if (err->ncodes > 0) {
			n = snprintf(code, sizeof(code), "AADSTS%ld",
			    err->codes[0]);
			if (n > 0 && (size_t)n < sizeof(code))
				(void)reason_add(err->reason,
				    sizeof(err->reason), code);
		}
	} else if (err->http_status == 0) {
		(void)reason_add(err->reason, sizeof(err->reason),
		    "network error");
	} else if (err->http_status >= 200 && err->http_status < 300) {
		(void)reason_add(err->reason, sizeof(err->reason),
		    "malformed response");
	} else {
		n = snprintf(code, sizeof(code), "HTTP %ld", err->http_status);
		if (n > 0 && (size_t)n < sizeof(code))
			(void)reason_add(err->reason, sizeof(err->reason),
			    code);
	}
}
