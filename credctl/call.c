/*
 * call.c - credctl's calls to credd: connect once per run (checking that
 * the server is root or the credd user, in lib/client.c), send one
 * request, read its reply before a deadline; a transport failure or an
 * error reply becomes one line on stderr and an exit code.
 *
 * Must never: retry a request on its own (the caller decides), print a
 * reply's token, or print more than one line for one failure. It knows
 * no command; it sits on out.c and lib/ only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "entra/client.h"
#include "entra/paths.h"
#include "entra/proto.h"
#include "entra/util.h"

#include "call.h"
#include "exit.h"
#include "out.h"

/* Connect once per run; a clear line and exit code when it fails. */
static int
ctx_connect(struct ctx *c)
{
	int fd;

	if (c->fd >= 0)
		return EXIT_OK;
	fd = client_connect(c->socket, NULL, util_mono_ms() + CALL_DEADLINE_MS);
	if (fd >= 0) {
		c->fd = fd;
		return EXIT_OK;
	}
	switch (fd) {
	case -ENOENT:
	case -ECONNREFUSED:
		out_errorf("credd is not running (socket %s): %s; start it "
			   "(systemctl start credd) or ask your administrator",
		    c->socket, strerror(-fd));
		return EXIT_UNAVAIL;
	case -ETIMEDOUT:
	case -EAGAIN:
		out_errorf("credd did not accept the connection within %d s "
			   "(socket %s); try again later",
		    CALL_DEADLINE_MS / 1000, c->socket);
		return EXIT_UNAVAIL;
	case -EPERM:
		out_errorf(
		    "refusing to talk to %s: it is not served by root or "
		    "the %s user; check the socket path",
		    c->socket, ENTRA_CREDD_USER);
		return EXIT_ERR;
	default:
		out_errorf("cannot connect to credd (socket %s): %s", c->socket,
		    strerror(-fd));
		return EXIT_UNAVAIL;
	}
}

/* A round trip's failure r: its one line, the connection closed. */
static int
transport_error(struct ctx *c, int r, int64_t extra_ms)
{
	util_closep(&c->fd);
	switch (r) {
	case -ETIMEDOUT:
		out_errorf(
		    "credd did not answer within %lld s; try again later",
		    (long long)(CALL_DEADLINE_MS + extra_ms) / 1000);
		return EXIT_UNAVAIL;
	case -ECONNRESET:
		out_errorf(
		    "credd closed the connection (socket %s); try again, "
		    "and check credd's log if it persists",
		    c->socket);
		return EXIT_UNAVAIL;
	case -EBADMSG:
		out_errorf("credd sent a malformed reply; check that credd and "
			   "credctl are the same release");
		return EXIT_ERR;
	case -EMSGSIZE:
		out_errorf("request too large");
		return EXIT_USAGE;
	default:
		out_errorf("talking to credd failed: %s", strerror(-r));
		return EXIT_UNAVAIL;
	}
}

/* Send req, get *resp. Transport failures print their line here. */
int
call_raw(struct ctx *c, const json_t *req, json_t **resp, int64_t extra_ms)
{
	int r;

	*resp = NULL;
	r = ctx_connect(c);
	if (r != EXIT_OK)
		return r;
	r = client_call(c->fd, req, resp,
	    util_mono_ms() + CALL_DEADLINE_MS + extra_ms);
	if (r == 0)
		return EXIT_OK;
	return transport_error(c, r, extra_ms);
}

/* ---- wire errors -> one line and an exit code ---- */

static int
report_act(const char *code, const json_t *e, const char *msg)
{
	char dev[2 * OUT_MSG_MAX];
	int has_dev = out_device_clause(dev, sizeof(dev), e);

	if (strcmp(code, "consent_declined") == 0) {
		out_errorf(
		    "the sign-in was declined (%s); run 'credctl login' to "
		    "try again",
		    msg);
	} else if (strcmp(code, "reauth_required") == 0) {
		if (has_dev)
			out_errorf(
			    "your sign-in expired or was revoked: %s, then "
			    "run the command again",
			    dev);
		else
			out_errorf(
			    "your sign-in expired or was revoked (%s); run "
			    "'credctl login' to sign in again",
			    msg);
	} else if (!has_dev && out_jstr(e, "signin_url") != NULL &&
	    !json_is_true(json_object_get(e, "paste_back"))) {
		/* A platform callback's short link: opening it is all. */
		char link[OUT_MSG_MAX];

		out_errorf("%s: open %s in a browser, then run the command "
			   "again",
		    strcmp(code, "consent_pending") == 0 ? "sign-in pending" :
							   "consent required",
		    out_clean(link, sizeof(link), out_jstr(e, "signin_url")));
	} else if (has_dev) {
		out_errorf("%s: %s, then run the command again",
		    strcmp(code, "consent_pending") == 0 ? "sign-in pending" :
							   "consent required",
		    dev);
	} else {
		out_errorf("%s (%s); run 'credctl login' to sign in",
		    strcmp(code, "consent_pending") == 0 ? "sign-in pending" :
							   "consent required",
		    msg);
	}
	return EXIT_ACT;
}

/* Print the one line for an error reply and return its exit code. */
static int
report_error(const json_t *resp)
{
	const json_t *e = json_object_get(resp, "error");
	const char *code = proto_response_error(resp);
	char msg[OUT_MSG_MAX], c[64];
	int64_t retry;

	out_clean(msg, sizeof(msg), out_jstr(e, "message"));
	if (msg[0] == '\0')
		snprintf(msg, sizeof(msg), "no details");
	if (code == NULL)
		return EXIT_OK;
	retry = out_jint(e, "retry_after", -1);
	if (strcmp(code, "consent_required") == 0 ||
	    strcmp(code, "consent_pending") == 0 ||
	    strcmp(code, "reauth_required") == 0 ||
	    strcmp(code, "consent_declined") == 0)
		return report_act(code, e, msg);
	if (strcmp(code, "unavailable") == 0) {
		out_errorf("credd is unavailable (%s); try again later", msg);
		return EXIT_UNAVAIL;
	}
	if (strcmp(code, "idp_unavailable") == 0 ||
	    strcmp(code, "rate_limited") == 0) {
		if (retry > 0)
			out_errorf("%s (%s); try again in %lld s",
			    code[0] == 'i' ? "Entra ID is unavailable" :
					     "too many requests",
			    msg, (long long)retry);
		else
			out_errorf("%s (%s); try again later",
			    code[0] == 'i' ? "Entra ID is unavailable" :
					     "too many requests",
			    msg);
		return EXIT_UNAVAIL;
	}
	if (strcmp(code, "forbidden") == 0) {
		out_errorf("not allowed (%s); admin commands need root or the "
			   "admin group, ask your administrator for access",
		    msg);
		return EXIT_REFUSED;
	}
	if (strcmp(code, "policy_blocked") == 0) {
		out_errorf("blocked by policy (%s); signing in again will not "
			   "help, contact your administrator",
		    msg);
		return EXIT_REFUSED;
	}
	if (strcmp(code, "account_mismatch") == 0) {
		out_errorf(
		    "wrong account (%s); sign in with the account already "
		    "bound to this user, or ask an administrator to run "
		    "'credctl admin revoke' first",
		    msg);
		return EXIT_REFUSED;
	}
	if (strcmp(code, "unknown_scope") == 0) {
		out_errorf(
		    "unknown scope (%s); use an alias or scope configured "
		    "in credd.conf, or ask your administrator to add it",
		    msg);
		return EXIT_REFUSED;
	}
	if (strcmp(code, "idp_misconfigured") == 0) {
		out_errorf("credd's Entra ID configuration is broken (%s); "
			   "contact your administrator",
		    msg);
		return EXIT_MISCONF;
	}
	out_errorf("credd refused the request: %s (%s)",
	    out_clean(c, sizeof(c), code), msg);
	return EXIT_ERR;
}

/* Build {"v":1,"op":op}; prints on ENOMEM. */
json_t *
call_new_request(const char *op)
{
	json_t *req = client_request(op);

	if (req == NULL)
		out_errorf("out of memory");
	return req;
}

/*
 * One round trip: request -> ok reply in *resp, or the exit code with
 * the error line already printed.
 */
int
call_roundtrip(struct ctx *c, json_t *req, json_t **resp, int64_t extra_ms)
{
	int r;

	r = call_raw(c, req, resp, extra_ms);
	if (r != EXIT_OK)
		return r;
	if (proto_response_error(*resp) != NULL) {
		r = report_error(*resp);
		json_decref(*resp);
		*resp = NULL;
	}
	return r;
}

int
call_op(struct ctx *c, const char *op, json_t **resp)
{
	json_t *req;
	int r;

	*resp = NULL;
	req = call_new_request(op);
	if (req == NULL)
		return EXIT_ERR;
	r = call_roundtrip(c, req, resp, 0);
	json_decref(req);
	return r;
}

/*
 * One token request. Returns EXIT_OK with *resp ok, or an exit code;
 * error replies stay in *err_resp (for the caller to word) when it is
 * not NULL, else they are printed.
 */
int
call_token(struct ctx *c, const char *scope, int64_t min_valid, json_t **resp,
    json_t **err_resp)
{
	return call_token_claims(c, scope, min_valid, NULL, resp, err_resp);
}

int
call_token_claims(struct ctx *c, const char *scope, int64_t min_valid,
    const char *claims, json_t **resp, json_t **err_resp)
{
	json_t *req;
	int r;

	*resp = NULL;
	if (err_resp != NULL)
		*err_resp = NULL;
	req = call_new_request("token");
	if (req == NULL)
		return EXIT_ERR;
	if ((scope != NULL &&
		json_object_set_new(req, "scope", json_string(scope)) < 0) ||
	    json_object_set_new(req, "min_valid", json_integer(min_valid)) <
		0 ||
	    (claims != NULL &&
		json_object_set_new(req, "claims", json_string(claims)) < 0)) {
		json_decref(req);
		out_errorf("out of memory");
		return EXIT_ERR;
	}
	if (err_resp == NULL) {
		r = call_roundtrip(c, req, resp, 0);
		json_decref(req);
		return r;
	}
	r = call_raw(c, req, resp, 0);
	json_decref(req);
	if (r != EXIT_OK)
		return r;
	if (proto_response_error(*resp) != NULL) {
		*err_resp = *resp;
		*resp = NULL;
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/*
 * The token request without a JSON tree (client_token_call): the usual
 * reply comes back in *tok as bytes, anything else ok in *resp; errors
 * are printed (report_error), as call_roundtrip does.
 */
int
call_token_bytes(struct ctx *c, const char *scope, int64_t min_valid,
    struct client_token *tok, json_t **resp)
{
	int r;

	memset(tok, 0, sizeof(*tok));
	*resp = NULL;
	r = ctx_connect(c);
	if (r != EXIT_OK)
		return r;
	r = client_token_call(c->fd, scope, min_valid, tok, resp,
	    util_mono_ms() + CALL_DEADLINE_MS);
	if (r < 0)
		return transport_error(c, r, 0);
	if (*resp != NULL && proto_response_error(*resp) != NULL) {
		r = report_error(*resp);
		json_decref(*resp);
		*resp = NULL;
		return r;
	}
	return EXIT_OK;
}
