/*
 * msi_req.c - one request of the SDK endpoint (see msi_req.h): the
 * request checks (msi_parse.c's verdicts, fed from what libmicrohttpd
 * parsed), the caller proof in the documented order (the uid's rate
 * limit, the request's shape, the endpoint secret, the socket's uid
 * proven at accept, the uid's name now), and the response: the broker's
 * answer shaped as App Service or IMDS send theirs, or an error as
 * {"error", "error_description"} with its status (errmap.h).
 *
 * Must never: act for a uid the kernel did not prove (the caller is the
 * connection's proof, never the request's), answer with another uid's
 * token, log a header value or a body, or leave a response body with a
 * token unwiped.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <microhttpd.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "msi_int.h"
#include "msi_parse.h"
#include "msi_req.h"
#include "reply.h"
#include "session.h"
#include "uidlimit.h"
#include "workload.h"

#define MSI_DESC_MAX 1024

/* ---- responses ---- */

static void
body_free(void *p)
{
	secret_wipe_str(p);
}

/* Take over body; set the status. */
static void
req_set(struct msi_req *r, unsigned status, char *body)
{
	if (r->body != NULL)
		secret_wipe_str(r->body);
	r->status = status;
	r->body = body;
	r->bodylen = body != NULL ? strlen(body) : 0;
}

/* {"error": code, "error_description": desc} as the body. */
void
msi_req_error(struct msi_req *r, unsigned status, const char *code,
    const char *desc)
{
	json_t *o =
	    json_pack("{s:s, s:s}", "error", code, "error_description", desc);
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	req_set(r, s != NULL ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, s);
}

/* A wire error (errmap.h) as the body, with its HTTP status. */
void
msi_req_wire_error(struct msi_req *r, int err, const char *desc)
{
	const char *code = errmap_code(err);

	msi_req_error(r, errmap_http_status(code), code, desc);
}

/*
 * Audit a refusal of the caller (not every 4xx: proof failures and
 * limits). A caller can repeat these at will, so they are coalesced per
 * (uid, op, reason) (audit_refusal). uid (uid_t)-1 means "the uid proven
 * at accept", the only one there is.
 */
static void
audit_refused(struct msi_req *r, uid_t uid, const char *user,
    const char *reason)
{
	struct audit_event ev = {
		.event = "request_refused",
		.uid = uid,
		.user = user,
		.op = r->is_imds ? "msi_imds" : "msi",
		.scope = r->resource,
		.outcome = "refused",
		.reason = reason,
	};

	if (uid == (uid_t)-1 && r->mc != NULL)
		ev.uid = r->mc->uid;
	r->m->n.refused++;
	audit_refusal(&ev, event_now_ms(r->m->ev));
}

int
msi_req_queue(struct msi_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	char ra[16];

	if (r->body == NULL) {
		r->body = strdup("{\"error\":\"internal\","
				 "\"error_description\":\"out of memory\"}");
		if (r->body == NULL)
			return MHD_NO;
		r->bodylen = strlen(r->body);
		r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	resp = MHD_create_response_from_buffer_with_free_callback(r->bodylen,
	    r->body, body_free);
	if (resp == NULL)
		return MHD_NO;
	r->body = NULL; /* transferred: wiped by body_free */
	/* MHD adds Content-Length itself (never chunked for a buffer). */
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json; charset=utf-8");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_PRAGMA, "no-cache");
	(void)MHD_add_response_header(resp, "X-Content-Type-Options",
	    "nosniff");
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    "GET");
	if (r->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", r->retry_after);
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
		    ra);
	}
	ok = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	r->state = REQ_QUEUED;
	return ok;
}

/* ---- broker answer -> HTTP ---- */

static const char *
jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * The error description: credd's message and, when a sign-in is
 * needed, the device-code message with the URL and the code, so the
 * SDK's exception shows the user what to do.
 */
static void
describe(char *buf, size_t sz, const char *code, const json_t *e)
{
	const char *msg = jstr(e, "message");
	const char *uri = jstr(e, "verification_uri");
	const char *uc = jstr(e, "user_code");

	if (uri != NULL && uc != NULL)
		snprintf(buf, sz,
		    "credd: %s: to sign in, open %s and enter the "
		    "code %s, then run this again (or run 'credctl login').",
		    code, uri, uc);
	else
		snprintf(buf, sz, "credd: %s: %s", code,
		    msg != NULL ? msg : "no details");
}

void
msi_req_from_broker(struct msi_req *r, const struct reply *rep)
{
	const struct config *cf = r->m->cf;
	json_t *resp = rep->json, *own = NULL;
	const char *code;
	char desc[MSI_DESC_MAX], n1[24], n2[24];
	json_t *e, *o, *tok, *ra;
	json_int_t exp, left;
	char *s;
	int bad = 0;

	/* Bytes are the same response as one protocol line. */
	if (resp == NULL && rep->bytes != NULL &&
	    proto_response_decode(rep->bytes, rep->len, &own) == 0)
		resp = own;
	code = proto_response_error(resp);
	if (resp == NULL) {
		msi_req_wire_error(r, -ENOMEM, "credd: out of memory");
		return;
	}
	if (code != NULL) {
		e = json_object_get(resp, "error");
		describe(desc, sizeof(desc), code, e);
		ra = json_object_get(e, "retry_after");
		if (json_is_integer(ra) && json_integer_value(ra) > 0 &&
		    json_integer_value(ra) < 86400)
			r->retry_after = (int)json_integer_value(ra);
		msi_req_error(r, errmap_http_status(code), code, desc);
		goto out;
	}
	tok = json_object_get(resp, "access_token");
	exp = json_integer_value(json_object_get(resp, "expires_on"));
	if (!json_is_string(tok)) {
		msi_req_wire_error(r, -EIO,
		    "credd: no token in the broker's answer");
		goto out;
	}
	left = exp - (json_int_t)util_now();
	if (left < 0)
		left = 0;
	/* Numbers as strings, as App Service and IMDS send them. */
	snprintf(n1, sizeof(n1), "%lld", (long long)exp);
	snprintf(n2, sizeof(n2), "%lld", (long long)left);
	o = json_object();
	if (o == NULL) {
		req_set(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
		goto out;
	}
	reply_put(o, "access_token", json_incref(tok), &bad);
	reply_put(o, "client_id", json_string(cf->client_id), &bad);
	reply_put(o, "expires_in", json_string(n2), &bad);
	reply_put(o, "expires_on", json_string(n1), &bad);
	if (r->is_imds)
		reply_put(o, "ext_expires_in", json_string(n2), &bad);
	reply_put(o, "resource", json_string(r->resource), &bad);
	reply_put(o, "token_type",
	    json_string(jstr(resp, "token_type") != NULL ?
		    jstr(resp, "token_type") :
		    "Bearer"),
	    &bad);
	s = bad ? NULL : json_dumps(o, JSON_COMPACT);
	json_decref(o); /* credd's jansson allocator wipes what it frees */
	req_set(r, s != NULL ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR, s);
out:
	json_decref(own);
}

/* ---- caller proof ---- */

/* MHD's parse of the request, fed to msi_scan_header and msi_scan_arg. */
static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	(void)kind;
	(void)value;
	msi_scan_header(cls, key);
	return MHD_YES;
}

static enum MHD_Result
scan_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	(void)value;
	msi_scan_arg(cls, key);
	return MHD_YES;
}

/*
 * The workload policy (issue 14) for an SDK endpoint caller. A TCP
 * caller's cgroup is unknown, so its kind is the kind of the session
 * whose secret it presented, else (IMDS, credctl env secrets) the
 * strictest of its uid's live sessions, bound or not (fail closed: an
 * app of that uid anywhere makes it an app caller), else default.
 * 0, or -1 with the refusal (naming the policy line) queued.
 */
static int
msi_req_policy(struct msi_req *r, const char *identity)
{
	char why[WORKLOAD_WHY_MAX + 128];
	const struct config *cf = r->m->cf;
	int kinds[64], kind = -1, i;
	size_t n;

	if (identity == NULL ||
	    sessions_secret_kind(r->m->sessions, identity, strlen(identity),
		&kind) < 0) {
		n = sessions_all_kinds(r->m->sessions, r->caller.uid, kinds,
		    sizeof(kinds) / sizeof(kinds[0]));
		i = workload_strictest(cf, kinds, n);
		kind = i < 0 ? CONFIG_WL_DEFAULT : kinds[i];
	}
	r->kind = kind;
	if (workload_check_sdk(cf, kind, why, sizeof(why)) == 0 &&
	    workload_check_token(cf, kind, r->scope, why, sizeof(why)) == 0)
		return 0;
	audit_refused(r, r->caller.uid, r->caller.user,
	    strstr(why, "[workload.") != NULL ? strstr(why, "[workload.") :
						why);
	msi_req_wire_error(r, -EACCES, why);
	return -1;
}

/*
 * Check the request (msi_parse_request) and prove the caller; on success
 * the caller, the resource and the scope are set and 0 is returned, else
 * the error response is set.
 */
int
msi_req_check(struct msi_req *r, const char *url, const char *method)
{
	struct MHD_Connection *conn = r->conn;
	const struct config *cf = r->m->cf;
	struct msi_request in = { 0 };
	struct msi_parsed p;
	const char *user = NULL;
	uid_t suid = (uid_t)-1, puid = (uid_t)-1;
	int rc;

	in.url = url;
	in.method = method;
	in.has_body = r->has_body;
	in.port = r->m->port;
	(void)MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header,
	    &in.scan);
	(void)MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, scan_arg,
	    &in.scan);
	in.host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	in.metadata =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Metadata");
	in.identity = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "X-IDENTITY-HEADER");
	in.api_version = MHD_lookup_connection_value(conn,
	    MHD_GET_ARGUMENT_KIND, "api-version");
	in.resource = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
	    "resource");
	(void)msi_parse_request(&in, cf, &p);
	r->is_imds = p.is_imds;
	/* The Unix socket's rate limit, per uid, on every request. */
	if (r->mc != NULL && r->mc->ul != NULL &&
	    !uidlimit_allow(r->m->limits, r->mc->ul)) {
		r->m->n.rate_limited++;
		audit_refused(r, (uid_t)-1, NULL, "rate limited");
		r->retry_after = 1;
		msi_req_wire_error(r, -EBUSY,
		    "credd: too many requests from this user; slow down");
		return -1;
	}
	if (p.pre.status != 0) {
		if (p.pre.audit != NULL)
			audit_refused(r, (uid_t)-1, NULL, p.pre.audit);
		msi_req_error(r, p.pre.status, p.pre.error, p.pre.desc);
		return -1;
	}
	if (!r->is_imds) {
		rc = sessions_secret_check(r->m->sessions, p.identity,
		    strlen(p.identity), util_now(), &suid, &user);
		if (rc < 0) {
			audit_refused(r, (uid_t)-1, NULL,
			    rc == -EKEYEXPIRED ? "expired endpoint secret" :
						 "unknown endpoint secret");
			msi_req_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
			    rc == -EKEYEXPIRED ?
				"credd: IDENTITY_HEADER has "
				"expired; run eval \"$(credctl env)\" or log in again" :
				"credd: IDENTITY_HEADER is not valid (ended with its "
				"session?); run eval \"$(credctl env)\"");
			return -1;
		}
	}
	/* Proven once, at accept (msi_listen.c); never from the request. */
	if (r->mc == NULL || r->mc->unproven != NULL) {
		audit_refused(r, (uid_t)-1, user,
		    r->mc != NULL ? r->mc->unproven : "caller uid unknown");
		msi_req_wire_error(r, -EACCES,
		    "credd: cannot tell which user is calling");
		return -1;
	}
	puid = r->mc->uid;
	if (!r->is_imds && puid != suid) {
		audit_refused(r, puid, user, "IDENTITY_HEADER of another uid");
		msi_req_wire_error(r, -EACCES,
		    "credd: this "
		    "IDENTITY_HEADER belongs to another user");
		return -1;
	}
	/* The uid's name now (looked up at accept, off the loop). */
	if (r->mc->user == NULL && r->mc->user_err != -ENOENT) {
		r->retry_after = 5;
		msi_req_wire_error(r, -ECONNREFUSED,
		    "credd: the user directory did not answer for your uid; "
		    "try again");
		return -1;
	}
	if (r->mc->user == NULL) {
		audit_refused(r, puid, user, "uid has no user name");
		msi_req_wire_error(r, -EACCES,
		    "credd: your uid has no user name on this node");
		return -1;
	}
	/* A secret minted for an account whose uid now names another. */
	if (user != NULL && strcmp(user, r->mc->user) != 0) {
		audit_refused(r, puid, user,
		    "IDENTITY_HEADER of another account "
		    "of this uid");
		msi_req_wire_error(r, -EACCES,
		    "credd: this "
		    "IDENTITY_HEADER belongs to another user");
		return -1;
	}
	r->caller.uid = puid;
	r->caller.gid = (gid_t)-1;
	r->caller.user = strdup(r->mc->user);
	if (r->caller.user == NULL) {
		msi_req_wire_error(r, -ENOMEM, "credd: out of memory");
		return -1;
	}
	if (p.resource != NULL) {
		r->resource = strdup(p.resource);
		if (r->resource == NULL) {
			msi_req_wire_error(r, -ENOMEM, "credd: out of memory");
			return -1;
		}
	}
	if (p.post.status != 0) {
		msi_req_error(r, p.post.status, p.post.error, p.post.desc);
		return -1;
	}
	memcpy(r->scope, p.scope, sizeof(r->scope));
	return msi_req_policy(r, r->is_imds ? NULL : p.identity);
}
