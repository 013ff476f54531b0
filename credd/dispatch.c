/*
 * dispatch.c - the method table. Each op has a policy: ANY caller acting
 * on its own (SO_PEERCRED) identity, or ADMIN (uid 0 or admin_group).
 * Names in requests are never trusted for identity: a plain caller's
 * user is always the login name of its peer uid. No op returns another
 * user's token, to anyone, root included.
 *
 * Errors are named on the wire by errmap.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"
#include "entra/version.h"

#include "audit.h"
#include "broker.h"
#include "config.h"
#include "dispatch.h"
#include "errmap.h"
#include "log.h"
#include "msi.h"
#include "secmem.h"
#include "server.h"
#include "session.h"
#include "userdb.h"

enum policy { POLICY_ANY, POLICY_ADMIN };

typedef json_t *handler_fn(struct dispatch *d, struct waiter *w,
    const struct proto_request *req);

struct method {
	enum proto_op op;
	enum policy policy;
	handler_fn *fn;
};

static json_t *
need_own_user(const struct waiter *w)
{
	if (w->caller->user == NULL && w->caller->user_err < 0)
		return errmap_error(-ECONNREFUSED, "the user directory (NSS) "
		    "did not answer for your uid; try again");
	if (w->caller->user == NULL)
		return errmap_error(-EACCES, "your uid has no user name on this node");
	return NULL;
}

static json_t *
op_token(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	const char *scope;
	json_t *err;

	if ((err = need_own_user(w)) != NULL)
		return err;
	scope = config_scope_resolve(d->cf, req->scope);
	if (scope == NULL)
		return errmap_error(-EDOM, "unknown scope; ask for a configured alias "
		    "(see 'credctl status') or scope");
	return broker_token(d->broker, w, w->caller->user, w->caller->uid, scope,
	    req->min_valid);
}

static json_t *
op_login(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	json_t *err;

	if ((err = need_own_user(w)) != NULL)
		return err;
	return broker_login(d->broker, w, w->caller->user, w->caller->uid, req->wait);
}

/*
 * A status the broker parked (the record loading) is answered later
 * through w->reply; this wrapper adds the SDK endpoint's state first.
 * One dispatch and one loop thread, as for session_hook below.
 */
static struct {
	struct dispatch *d;
	void (*next)(struct waiter *, json_t *);
} status_hook;

static void
status_endpoint(struct dispatch *d, json_t *resp)
{
	if (resp != NULL && json_is_true(json_object_get(resp, "ok")))
		msi_report(d->msi, resp, 0);
}

static void
status_reply(struct waiter *w, json_t *resp)
{
	w->reply = status_hook.next;
	if (status_hook.d != NULL)
		status_endpoint(status_hook.d, resp);
	w->reply(w, resp);
}

static json_t *
op_status(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	json_t *err, *resp;

	(void)req;
	if ((err = need_own_user(w)) != NULL)
		return err;
	if (d->msi != NULL && w->reply != status_reply) {
		status_hook.d = d;
		status_hook.next = w->reply;
		w->reply = status_reply;
	}
	resp = broker_status(d->broker, w, w->caller->user, w->caller->uid);
	if (resp == NULL)
		return NULL;	/* parked: status_reply adds the endpoint */
	if (w->reply == status_reply)
		w->reply = status_hook.next;
	status_endpoint(d, resp);
	return resp;
}

static json_t *
op_logout(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	json_t *err;

	(void)req;
	if ((err = need_own_user(w)) != NULL)
		return err;
	return broker_logout(d->broker, w, w->caller->user, w->caller->uid);
}

/*
 * SDK endpoint fields of a session_open reply: endpoint and the
 * session's secret (when [msi] listen is set and the reply is ok).
 */
static void
session_endpoint_fields(struct dispatch *d, const char *session, json_t *resp)
{
	char ep[256], sec[SESSION_SECRET_LEN + 1];
	int64_t exp;

	if (resp == NULL || !json_is_true(json_object_get(resp, "ok")) ||
	    config_msi_endpoint(d->cf, ep, sizeof(ep)) < 0 ||
	    sessions_secret_of(d->sessions, session, sec, &exp) < 0)
		return;
	json_object_set_new(resp, "endpoint", json_string(ep));
	json_object_set_new(resp, "secret", json_string(sec));
	json_object_set_new(resp, "secret_expires_on", json_integer(exp));
	secret_wipe(sec, sizeof(sec));
}

/*
 * A session_open the broker parked (a device flow starting, the user's
 * record loading) is answered later through w->reply; this wrapper adds
 * the endpoint fields first, or ends the session when the answer is an
 * error (nobody will learn its id, so nobody could close it). If the
 * caller goes away before the answer (the PAM module's timeout closes
 * its connection), the server calls w->abandon, which ends the session
 * too. struct waiter has no room for our context, so it sits here:
 * credd has one dispatch and one loop thread, and every socket waiter
 * shares the same reply function (the server resets w->reply per
 * request).
 */
static struct {
	struct dispatch *d;
	void (*next)(struct waiter *, json_t *);
} session_hook;

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

static void
session_open_reply(struct waiter *w, json_t *resp)
{
	struct dispatch *d = session_hook.d;

	w->reply = session_hook.next;
	w->abandon = NULL;
	if (proto_response_error(resp) != NULL)
		session_open_undo(d, w, "session_open failed");
	else
		session_endpoint_fields(d, w->session, resp);
	free(w->session);
	w->session = NULL;
	w->reply(w, resp);
}

static void
session_open_abandon(struct waiter *w)
{
	w->abandon = NULL;
	if (session_hook.d != NULL)
		session_open_undo(session_hook.d, w, "caller went away");
}

/* A session_open, kept while the user's uid is looked up (userdb.h). */
struct session_open_job {
	struct dispatch *d;
	struct waiter *w;
	struct userdb_req *req;
	char *user, *service, *tty, *workload;
	int interactive;
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

/* The second half: user's uid is known. NULL when the broker parked w. */
static json_t *
session_open_run(struct session_open_job *j, uid_t uid)
{
	char id[SESSION_ID_LEN + 1], sec[SESSION_SECRET_LEN + 1];
	struct audit_event ev = { 0 };
	struct dispatch *d = j->d;
	struct waiter *w = j->w;
	json_t *resp;
	int64_t exp;
	int r;

	r = sessions_open(d->sessions, j->user, uid, j->service, j->tty,
	    j->workload, util_now(), id);
	if (r < 0)
		return errmap_error(r, "cannot open a session");
	if (d->cf->msi_listen != NULL) {
		/* The session's IDENTITY_HEADER: ends with the session, or at
		 * its TTL. */
		r = sessions_secret_mint(d->sessions, j->user, uid, id,
		    util_now(), d->cf->msi_secret_ttl, 0, sec, &exp);
		secret_wipe(sec, sizeof(sec));
		if (r < 0) {
			(void)sessions_close(d->sessions, j->user, id);
			return errmap_error(r, "cannot open a session");
		}
	}
	w->session = strdup(id);
	if (w->session == NULL) {
		(void)sessions_close(d->sessions, j->user, id);
		return errmap_error(-ENOMEM, "cannot open a session");
	}
	ev.event = "session_open";
	ev.uid = w->caller->uid;
	ev.user = j->user;
	ev.op = "session_open";
	ev.outcome = "ok";
	ev.reason = j->service;
	audit_log(&ev);
	if (w->reply != session_open_reply) {
		session_hook.d = d;
		session_hook.next = w->reply;
		w->reply = session_open_reply;
	}
	w->abandon = session_open_abandon;
	resp = broker_session_open(d->broker, w, j->user, uid, j->interactive);
	if (resp == NULL)
		return NULL;	/* parked: session_open_reply finishes it */
	w->reply = session_hook.next;
	w->abandon = NULL;
	if (proto_response_error(resp) != NULL)
		session_open_undo(d, w, "session_open failed");
	else
		session_endpoint_fields(d, id, resp);
	return resp;
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
	json_t *resp;

	(void)gid;
	(void)name;
	w->linked = 0;
	w->parked_on = NULL;
	w->cancel = NULL;
	if (result == -ENOENT)
		resp = errmap_error(-EBADMSG, "no such user on this node");
	else if (result < 0)
		resp = errmap_error(-ECONNREFUSED, "the user directory (NSS) "
		    "did not answer; try again");
	else
		resp = session_open_run(j, uid);
	session_open_job_free(j);
	if (resp != NULL)
		waiter_reply(w, resp);
}

/*
 * session_open: the named user's uid comes from the resolver thread
 * (never a blocking getpwnam on the loop; always a fresh lookup, since a
 * session binds a user). w waits for it, then session_open_run goes on.
 */
static json_t *
op_session_open(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	struct session_open_job *j;

	if (!util_valid_username(req->user))
		return errmap_error(-EBADMSG, "invalid user name");
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return errmap_error(-ENOMEM, "cannot open a session");
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
		return errmap_error(-ENOMEM, "cannot open a session");
	}
	w->parked_on = j;
	w->cancel = session_open_cancel;
	w->linked = 1;
	return NULL;
}

/*
 * sdk_env (credctl env): a fresh endpoint secret for the caller's own
 * uid, for shells and jobs that start outside PAM. Not bound to a
 * session: it ends after [msi] secret_ttl; a uid holds at most
 * [msi] secrets_per_uid of them (the oldest goes).
 */
static json_t *
op_sdk_env(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	char ep[256], sec[SESSION_SECRET_LEN + 1];
	struct audit_event ev = { 0 };
	json_t *resp, *err;
	int64_t exp;
	int r;

	(void)req;
	if ((err = need_own_user(w)) != NULL)
		return err;
	if (config_msi_endpoint(d->cf, ep, sizeof(ep)) < 0)
		return errmap_error(-ECONNREFUSED, "the SDK endpoint is not "
		    "enabled on this node ([msi] listen in credd.conf)");
	r = sessions_secret_mint(d->sessions, w->caller->user, w->caller->uid,
	    NULL, util_now(), d->cf->msi_secret_ttl,
	    (size_t)d->cf->msi_secrets_per_uid, sec, &exp);
	if (r < 0)
		return errmap_error(r, "cannot mint an endpoint secret");
	resp = proto_ok();
	json_object_set_new(resp, "endpoint", json_string(ep));
	json_object_set_new(resp, "secret", json_string(sec));
	json_object_set_new(resp, "expires_on", json_integer(exp));
	secret_wipe(sec, sizeof(sec));
	ev.event = "sdk_secret_issued";
	ev.uid = w->caller->uid;
	ev.user = w->caller->user;
	ev.op = "sdk_env";
	ev.outcome = "ok";
	audit_log(&ev);
	return resp;
}

static json_t *
op_session_close(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	int r;

	r = sessions_close(d->sessions, req->user, req->session);
	(void)w;
	if (r < 0)
		return errmap_error(-EBADMSG, "no such session");
	return proto_ok();
}

static json_t *
op_admin_list(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	(void)w;
	return broker_list(d->broker, w, req->cursor, req->limit);
}

static json_t *
op_admin_revoke(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	if (!util_valid_username(req->user))
		return errmap_error(-EBADMSG, "invalid user name");
	return broker_revoke(d->broker, w, req->user, w->caller->uid);
}

/* Why credd ended sessions itself (docs/protocol.md, stats). */
static void
sessions_stats(const struct sessions *ss, json_t *o)
{
	const struct sessions_counters *n = sessions_counters(ss);

	json_object_set_new(o, "sessions_ended_idle",
	    json_integer((json_int_t)n->ended_idle));
	json_object_set_new(o, "sessions_ended_no_process",
	    json_integer((json_int_t)n->ended_no_process));
	json_object_set_new(o, "sessions_ended_account",
	    json_integer((json_int_t)n->ended_account));
	json_object_set_new(o, "sessions_dropped",
	    json_integer((json_int_t)n->dropped));
	json_object_set_new(o, "sdk_secrets_ended_account",
	    json_integer((json_int_t)n->secrets_ended_account));
}

/* Locked secret memory (secmem.h) and the process's VmLck, in bytes. */
static void
stats_secmem(struct dispatch *d, json_t *resp)
{
	struct secmem_stats ms;
	size_t vm = 0;

	secmem_stats(d->secmem, &ms);
	(void)secmem_vm_locked(&vm);
	json_object_set_new(resp, "locked_memory_limit",
	    json_integer((json_int_t)ms.limit));
	json_object_set_new(resp, "locked_memory",
	    json_integer((json_int_t)ms.locked));
	json_object_set_new(resp, "locked_memory_in_use",
	    json_integer((json_int_t)ms.in_use));
	json_object_set_new(resp, "locked_secrets",
	    json_integer((json_int_t)ms.live));
	json_object_set_new(resp, "unlocked_secret_allocs",
	    json_integer((json_int_t)ms.unlocked_allocs));
	json_object_set_new(resp, "vm_locked", json_integer((json_int_t)vm));
}

static json_t *
op_stats(struct dispatch *d, struct waiter *w, const struct proto_request *req)
{
	const struct server_stats *ss = server_stats(d->server);
	json_t *resp = proto_ok(), *ops = json_object();
	int i;

	(void)w;
	(void)req;
	for (i = 1; i < PROTO_OP_COUNT; i++)
		json_object_set_new(ops, proto_op_name((enum proto_op)i),
		    json_integer((json_int_t)d->by_op[i]));
	json_object_set_new(resp, "version", json_string(ENTRA_VERSION));
	json_object_set_new(resp, "requests", json_integer((json_int_t)ss->requests));
	json_object_set_new(resp, "requests_by_op", ops);
	json_object_set_new(resp, "connections", json_integer((json_int_t)ss->connections));
	json_object_set_new(resp, "connections_open", json_integer((json_int_t)ss->open));
	json_object_set_new(resp, "connections_refused", json_integer((json_int_t)ss->refused_conns));
	json_object_set_new(resp, "rate_limited", json_integer((json_int_t)ss->rate_limited));
	json_object_set_new(resp, "bad_requests", json_integer((json_int_t)ss->bad_requests));
	json_object_set_new(resp, "output_bytes", json_integer((json_int_t)ss->output_bytes));
	json_object_set_new(resp, "output_bytes_peak", json_integer((json_int_t)ss->output_bytes_peak));
	json_object_set_new(resp, "output_stalls", json_integer((json_int_t)ss->output_stalls));
	json_object_set_new(resp, "accept_pauses", json_integer((json_int_t)ss->accept_pauses));
	json_object_set_new(resp, "forbidden", json_integer((json_int_t)d->forbidden));
	json_object_set_new(resp, "sessions", json_integer((json_int_t)sessions_count(d->sessions)));
	json_object_set_new(resp, "sdk_secrets",
	    json_integer((json_int_t)sessions_secret_count(d->sessions)));
	sessions_stats(d->sessions, resp);
	broker_stats(d->broker, resp);
	msi_report(d->msi, resp, 1);
	stats_secmem(d, resp);
	return resp;
}

static const struct method methods[] = {
	{ PROTO_OP_TOKEN, POLICY_ANY, op_token },
	{ PROTO_OP_LOGIN, POLICY_ANY, op_login },
	{ PROTO_OP_STATUS, POLICY_ANY, op_status },
	{ PROTO_OP_LOGOUT, POLICY_ANY, op_logout },
	{ PROTO_OP_SESSION_OPEN, POLICY_ADMIN, op_session_open },
	{ PROTO_OP_SESSION_CLOSE, POLICY_ADMIN, op_session_close },
	{ PROTO_OP_ADMIN_LIST, POLICY_ADMIN, op_admin_list },
	{ PROTO_OP_ADMIN_REVOKE, POLICY_ADMIN, op_admin_revoke },
	{ PROTO_OP_STATS, POLICY_ADMIN, op_stats },
	{ PROTO_OP_SDK_ENV, POLICY_ANY, op_sdk_env },
};

json_t *
dispatch_request(void *arg, struct waiter *w, const struct proto_request *req)
{
	struct dispatch *d = arg;
	const struct method *m = NULL;
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].op == req->op)
			m = &methods[i];
	if (m == NULL)
		return errmap_error(-EBADMSG, "unknown op");
	d->by_op[req->op]++;
	if (m->policy == POLICY_ADMIN && !w->caller->is_admin) {
		struct audit_event ev = {
			.event = "request_refused",
			.uid = w->caller->uid,
			.user = w->caller->user,
			.op = proto_op_name(req->op),
			.outcome = "refused",
			.reason = "not root or admin_group",
		};

		d->forbidden++;
		audit_refusal(&ev, util_mono_ms());	/* a peer can repeat it at will */
		return errmap_error(-EACCES, "this operation needs root or "
		    "membership of admin_group");
	}
	return m->fn(d, w, req);
}
