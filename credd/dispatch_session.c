/*
 * dispatch_session.c - the session ops: session_open (pam_entra, as
 * root or admin: the user's name looked up off the loop, the session and
 * its cgroup bound, the SDK endpoint's secret minted, the broker asked
 * whether a sign-in should start), session_close, and sdk_env (a user's
 * own SDK endpoint variables outside a PAM session). The method table
 * and its policies are dispatch.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "broker.h"
#include "config.h"
#include "dispatch.h"
#include "dispatch_int.h"
#include "errmap.h"
#include "ident.h"
#include "reply.h"
#include "session.h"
#include "userdb.h"
#include "workload.h"

/*
 * SDK endpoint fields of a session_open reply: endpoint and the
 * session's secret (when [msi] listen is set and the reply is ok).
 * 0 or -ENOMEM.
 */
static int
session_endpoint_fields(struct dispatch *d, const char *session, json_t *resp)
{
	char ep[256], sec[SESSION_SECRET_LEN + 1];
	struct sessions_info in;
	int64_t exp;
	int bad = 0;

	if (resp == NULL || !json_is_true(json_object_get(resp, "ok")))
		return 0;
	/* Issue 14: the session's kind, and its cgroup or why it has none. */
	if (sessions_info(d->sessions, session, &in) == 0) {
		reply_put(resp, "workload",
		    json_string(config_workload_name(in.kind)), &bad);
		reply_put(resp, "cgroup",
		    in.cgroup != NULL ? json_string(in.cgroup) : json_null(),
		    &bad);
		if (in.why != NULL)
			reply_put(resp, "unbound_reason", json_string(in.why),
			    &bad);
	}
	if (bad)
		return -ENOMEM;
	if (config_msi_endpoint(d->cf, ep, sizeof(ep)) < 0 ||
	    sessions_secret_of(d->sessions, session, sec, &exp) < 0)
		return 0;
	reply_put(resp, "endpoint", json_string(ep), &bad);
	reply_put(resp, "secret", json_string(sec), &bad);
	reply_put(resp, "secret_expires_on", json_integer(exp), &bad);
	secret_wipe(sec, sizeof(sec));
	return bad ? -ENOMEM : 0;
}

/* End a session whose opener will never hear of it, and say why. */
static void
session_open_undo(struct dispatch *d, struct waiter *w, const char *reason)
{
	struct audit_event ev = { 0 };

	if (w->session == NULL || sessions_drop(d->sessions, w->session) < 0)
		return;
	ev.event = "session_end";
	ev.uid = w->caller->uid;
	ev.user = w->user;
	ev.op = "session_open";
	ev.outcome = "error";
	ev.reason = reason;
	audit_log(&ev);
}

/*
 * The broker's answer to a session_open, now or after it was parked (a
 * device flow starting, the user's record loading): add the endpoint
 * fields, or end the session when the answer is an error or cannot be
 * built (nobody will learn its id, so nobody could close it).
 */
static void
session_open_finish(struct dispatch *d, struct waiter *w, struct reply *rep)
{
	w->abandon = NULL;
	if (rep->json == NULL || proto_response_error(rep->json) != NULL)
		session_open_undo(d, w, "session_open failed");
	else if (session_endpoint_fields(d, w->session, rep->json) < 0) {
		session_open_undo(d, w, "session_open failed");
		reply_clear(rep); /* answered "internal" */
	}
	free(w->session);
	w->session = NULL;
}

static void
session_open_hook(struct waiter *w, struct reply *rep)
{
	session_open_finish(w->hook_arg, w, rep);
}

/*
 * The caller went away before the answer (the PAM module's timeout
 * closes its connection): the server calls w->abandon, which ends the
 * session too.
 */
static void
session_open_abandon(struct waiter *w)
{
	w->abandon = NULL;
	if (w->hook_arg != NULL)
		session_open_undo(w->hook_arg, w, "caller went away");
}

/* A session_open, kept while the user's uid is looked up (userdb.h). */
struct session_open_job {
	struct dispatch *d;
	struct waiter *w;
	struct userdb_req *req;
	char *user, *service, *tty, *workload;
	int interactive;
	int kind; /* of workload (config.h) */
};

static void
session_open_job_free(struct session_open_job *j)
{
	if (j == NULL)
		return;
	free(j->user);
	free(j->service);
	free(j->tty);
	free(j->workload);
	free(j);
}

/* The second half: user's uid is known. WAITER_PARKED when the broker parked w. */
static int
session_open_run(struct session_open_job *j, uid_t uid, struct reply *out)
{
	char id[SESSION_ID_LEN + 1], sec[SESSION_SECRET_LEN + 1];
	struct audit_event ev = { 0 };
	struct dispatch *d = j->d;
	struct waiter *w = j->w;
	const char *why = NULL;
	int64_t exp;
	int r;

	r = sessions_open(d->sessions, j->user, uid, j->service, j->tty,
	    j->workload, util_now(), id);
	if (r < 0)
		return errmap_reply(out, r, "cannot open a session");
	/* Bound to the opener's cgroup, or known by uid and why (issue 14). */
	r = ident_bind_session(d->ident, w->caller, id, j->user, uid, j->kind,
	    &why);
	if (r < 0) {
		(void)sessions_close(d->sessions, j->user, id);
		return errmap_reply(out, r, "cannot open a session");
	}
	if (d->cf->msi_listen != NULL && d->cf->workload[j->kind].sdk) {
		/* The session's IDENTITY_HEADER: ends with the session, or at
		 * its TTL. */
		r = sessions_secret_mint(d->sessions, j->user, uid, id,
		    util_now(), d->cf->msi_secret_ttl, 0, sec, &exp);
		secret_wipe(sec, sizeof(sec));
		if (r < 0) {
			(void)sessions_close(d->sessions, j->user, id);
			return errmap_reply(out, r, "cannot open a session");
		}
	}
	w->session = strdup(id);
	if (w->session == NULL) {
		(void)sessions_close(d->sessions, j->user, id);
		return errmap_reply(out, -ENOMEM, "cannot open a session");
	}
	ev.event = "session_open";
	ev.uid = w->caller->uid;
	ev.user = j->user;
	ev.op = "session_open";
	ev.outcome = "ok";
	ev.reason = j->service;
	ev.unbound = why;
	ev.workload = config_workload_name(j->kind);
	ev.session = id;
	audit_log(&ev);
	w->hook = session_open_hook;
	w->hook_arg = d;
	w->abandon = session_open_abandon;
	/* Nobody may be shown a code when the kind may not start a sign-in. */
	r = broker_session_open(d->broker, w, j->user, uid,
	    j->interactive && d->cf->workload[j->kind].start_signin &&
		d->cf->workload[j->kind].identity != CONFIG_IDENTITY_NONE,
	    out);
	if (r == WAITER_PARKED)
		return r; /* session_open_hook finishes it */
	w->hook = NULL;
	if (r < 0)
		r = errmap_reply(out, r, NULL);
	session_open_finish(d, w, out);
	return r;
}

/* The caller went away while the uid was looked up. */
static void
session_open_cancel(struct waiter *w)
{
	struct session_open_job *j = w->parked_on;

	w->linked = 0;
	w->parked_on = NULL;
	userdb_cancel(j->d->db, j->req);
	session_open_job_free(j);
}

static void
session_open_named(void *arg, int result, uid_t uid, gid_t gid,
    const char *name)
{
	struct session_open_job *j = arg;
	struct waiter *w = j->w;
	struct reply rep = { 0 };
	int r;

	(void)gid;
	(void)name;
	w->linked = 0;
	w->parked_on = NULL;
	w->cancel = NULL;
	if (result < 0)
		r = dispatch_lookup_failed(result, &rep);
	else
		r = session_open_run(j, uid, &rep);
	session_open_job_free(j);
	waiter_finish(w, r, &rep);
}

/*
 * session_open: the named user's uid comes from the resolver thread
 * (never a blocking getpwnam on the loop; always a fresh lookup, since a
 * session binds a user). w waits for it, then session_open_run goes on.
 */
int
dispatch_session_open(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	struct session_open_job *j;
	int kind;

	if (!util_valid_username(req->user))
		return errmap_reply(out, -EBADMSG, "invalid user name");
	kind = dispatch_request_kind(req);
	if (kind < 0)
		return errmap_reply(out, -EBADMSG, DISPATCH_UNKNOWN_WORKLOAD);
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return errmap_reply(out, -ENOMEM, "cannot open a session");
	j->kind = kind;
	j->d = d;
	j->w = w;
	j->interactive = req->interactive;
	j->user = strdup(req->user);
	j->service = req->service != NULL ? strdup(req->service) : NULL;
	j->tty = req->tty != NULL ? strdup(req->tty) : NULL;
	j->workload = req->workload != NULL ? strdup(req->workload) : NULL;
	if (j->user == NULL || (req->service != NULL && j->service == NULL) ||
	    (req->tty != NULL && j->tty == NULL) ||
	    (req->workload != NULL && j->workload == NULL) ||
	    (j->req = userdb_lookup_name(d->db, j->user, session_open_named,
		 j)) == NULL) {
		session_open_job_free(j);
		return errmap_reply(out, -ENOMEM, "cannot open a session");
	}
	w->parked_on = j;
	w->cancel = session_open_cancel;
	w->linked = 1;
	return WAITER_PARKED;
}

/*
 * sdk_env (credctl env): a fresh endpoint secret for the caller's own
 * uid, for shells and jobs that start outside PAM. Not bound to a
 * session: it ends after [msi] secret_ttl; a uid holds at most
 * [msi] secrets_per_uid of them (the oldest goes).
 */
int
dispatch_sdk_env(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	char ep[256], sec[SESSION_SECRET_LEN + 1];
	char why[WORKLOAD_WHY_MAX + 128];
	struct audit_event ev = { 0 };
	const char *session;
	json_t *resp;
	int64_t exp;
	int r, kind, bad = 0;

	(void)req;
	if (w->caller->user == NULL)
		return dispatch_no_own_user(w, out);
	kind = ident_kind(d->ident, w->caller, &session);
	if (workload_check_sdk(d->cf, kind, why, sizeof(why)) < 0)
		return dispatch_policy_refusal(d, w, kind, session, NULL, why,
		    out);
	if (config_msi_endpoint(d->cf, ep, sizeof(ep)) < 0)
		return errmap_reply(out, -ECONNREFUSED,
		    "the SDK endpoint is not "
		    "enabled on this node ([msi] listen in credd.conf)");
	r = sessions_secret_mint(d->sessions, w->caller->user, w->caller->uid,
	    NULL, util_now(), d->cf->msi_secret_ttl,
	    (size_t)d->cf->msi_secrets_per_uid, sec, &exp);
	if (r < 0)
		return errmap_reply(out, r, "cannot mint an endpoint secret");
	resp = proto_ok();
	reply_put(resp, "endpoint", json_string(ep), &bad);
	reply_put(resp, "secret", json_string(sec), &bad);
	reply_put(resp, "expires_on", json_integer(exp), &bad);
	secret_wipe(sec, sizeof(sec));
	if (bad) {
		json_decref(resp);
		return -ENOMEM; /* the secret stays until its TTL, unused */
	}
	ev.event = "sdk_secret_issued";
	ev.uid = w->caller->uid;
	ev.user = w->caller->user;
	ev.op = "sdk_env";
	ev.outcome = "ok";
	audit_log(&ev);
	return reply_set_json(out, resp);
}

int
dispatch_session_close(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	int r;

	r = sessions_close(d->sessions, req->user, req->session);
	(void)w;
	if (r < 0)
		return errmap_reply(out, -EBADMSG, "no such session");
	ident_gc(d->ident); /* its cgroup's watch, if nobody else holds it */
	return reply_set_json(out, proto_ok());
}
