/*
 * errmap.c - the errno -> wire code -> HTTP status table (see errmap.h),
 * the error replies built from it, and the IdP's error classes mapped
 * onto it. dispatch.c, server.c, msi.c and the broker's parts all name
 * their errors here, and nowhere else.
 *
 * Must never: log (the caller decides what is worth a line), or put
 * user data in a message: messages are ours, or the caller's own
 * constant text, plus strerror for "internal".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/util.h"

#include "errmap.h"
#include "oauth.h"
#include "reply.h"

static const struct {
	int err;
	const char *code;
	unsigned status; /* over HTTP (the SDK endpoint) */
} errmap[] = {
	{ -EACCES, "forbidden", 403 },
	{ -EBADMSG, "bad_request", 400 },
	{ -EMSGSIZE, "too_large", 500 },
	{ -EPROTONOSUPPORT, "unsupported_version", 500 },
	{ -EDOM, "unknown_scope", 400 },
	{ -ENOKEY, "consent_required", 401 },
	{ -EINPROGRESS, "consent_pending", 401 },
	{ -ECANCELED, "consent_declined", 401 },
	{ -EKEYREJECTED, "account_mismatch", 403 },
	{ -EKEYEXPIRED, "reauth_required", 401 },
	{ -EKEYREVOKED, "reauth_required", 401 },
	{ -EPERM, "policy_blocked", 403 },
	{ -EBUSY, "rate_limited", 429 },
	{ -EHOSTUNREACH, "idp_unavailable", 503 },
	{ -EREMOTEIO, "idp_misconfigured", 500 },
	{ -ECONNREFUSED, "unavailable", 503 },
};

const char *
errmap_code(int err)
{
	size_t i;

	for (i = 0; i < sizeof(errmap) / sizeof(errmap[0]); i++)
		if (errmap[i].err == err)
			return errmap[i].code;
	return "internal";
}

unsigned
errmap_http_status(const char *code)
{
	size_t i;

	for (i = 0; i < sizeof(errmap) / sizeof(errmap[0]); i++)
		if (strcmp(errmap[i].code, code) == 0)
			return errmap[i].status;
	return 500;
}

json_t *
errmap_error(int err, const char *msg)
{
	const char *code = errmap_code(err);
	char buf[256];

	if (msg == NULL)
		msg = err == -ENOMEM ? "out of memory" : "request failed";
	if (strcmp(code, "internal") == 0) {
		/* Name the cause for support, never user data. */
		snprintf(buf, sizeof(buf), "%s (%s)", msg,
		    strerror(err < 0 ? -err : err));
		msg = buf;
	}
	return proto_error(code, msg);
}

int
errmap_reply(struct reply *out, int err, const char *msg)
{
	return reply_set_json(out, errmap_error(err, msg));
}

const char *
errmap_nomem_line(size_t *len)
{
	static const char line[] =
	    "{\"ok\":false,\"error\":{\"code\":"
	    "\"internal\",\"message\":\"out of memory\"}}\n";

	*len = sizeof(line) - 1;
	return line;
}

int
errmap_idp_errno(const struct oauth_error *err)
{
	switch (err->cls) {
	case OAUTH_REAUTH:
		return -EKEYEXPIRED;
	case OAUTH_CONSENT:
		return -ENOKEY;
	case OAUTH_POLICY:
		return -EPERM;
	case OAUTH_RETRY:
		if (err->is_local)
			return -ECONNREFUSED; /* unavailable: credd's store */
		return err->is_throttled ? -EBUSY : -EHOSTUNREACH;
	case OAUTH_DECLINED:
		return -ECANCELED;
	default:
		return -EREMOTEIO;
	}
}

/*
 * What an admin should change when Entra refuses the app credential
 * (the 700025 / 7000218 / 700027 family: the configuration and the app
 * registration disagree), or NULL. Never a re-consent: no sign-in fixes
 * these.
 */
static const char *
client_auth_hint(const struct oauth_error *err)
{
	size_t i;

	if (err->reason[0] != '\0' &&
	    strcmp(err->reason, "client credential unavailable") == 0)
		return "the app credential of [entra] client_auth cannot be "
		       "made (see credd's log: file missing or stale?)";
	for (i = 0; i < err->ncodes; i++) {
		switch (err->codes[i]) {
		case 700025:
			return "Entra treats this app as a public client but a "
			       "credential was sent: check the redirect URI's "
			       "platform (web vs mobile/desktop) and "
			       "[entra] client_auth";
		case 7000218:
			return "the app registration requires a client "
			       "credential: set [entra] client_auth, or turn on "
			       "'Allow public client flows'";
		case 700027:
			return "Entra refused the client assertion: check the "
			       "certificate (thumbprint) or the federated "
			       "credential's issuer, subject and audience in the "
			       "app registration";
		case 7000215:
		case 7000222:
			return "the client secret is wrong or expired: update "
			       "client_secret_file";
		}
	}
	return NULL;
}

/* An error reply for an IdP failure, with retry_after where useful. */
json_t *
errmap_idp_error(const struct oauth_error *err, int64_t throttle_until,
    int64_t now)
{
	char msg[384];
	json_t *resp, *eo;
	int e = errmap_idp_errno(err), bad = 0;

	switch (err->cls) {
	case OAUTH_POLICY:
		snprintf(msg, sizeof(msg),
		    "access blocked by a conditional-access "
		    "policy (%s); no sign-in here can fix it",
		    err->reason);
		break;
	case OAUTH_RETRY:
		snprintf(msg, sizeof(msg),
		    err->is_local ? "credd cannot reach its "
				    "store (%s); try again later" :
				    "Entra ID is unavailable (%s); "
				    "try again later",
		    err->reason);
		break;
	case OAUTH_REAUTH:
		snprintf(msg, sizeof(msg),
		    "your sign-in has expired or was revoked; "
		    "run 'credctl login'");
		break;
	default:
		if (err->cls == OAUTH_ADMIN && client_auth_hint(err) != NULL)
			snprintf(msg, sizeof(msg),
			    "credd is misconfigured for Entra ID (%s): %s; "
			    "contact your administrator",
			    err->reason, client_auth_hint(err));
		else
			snprintf(msg, sizeof(msg),
			    "credd is misconfigured for Entra ID (%s); "
			    "contact your administrator",
			    err->reason);
		break;
	}
	resp = errmap_error(e, msg);
	eo = proto_error_obj(resp);
	if (err->cls == OAUTH_RETRY) {
		int64_t ra = 5;

		if (throttle_until > now)
			ra = throttle_until - now;
		if (err->retry_after > ra)
			ra = err->retry_after;
		reply_put(eo, "retry_after", json_integer(ra), &bad);
	}
	if (err->cls == OAUTH_POLICY)
		reply_put(eo, "reason", json_string(err->reason), &bad);
	if (err->trace_id[0])
		reply_put(eo, "trace_id", json_string(err->trace_id), &bad);
	if (err->correlation_id[0])
		reply_put(eo, "correlation_id",
		    json_string(err->correlation_id), &bad);
	if (bad || eo == NULL) {
		json_decref(resp);
		return NULL;
	}
	return resp;
}
