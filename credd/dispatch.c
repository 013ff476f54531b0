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
#include "broker_metrics.h"
#include "cae.h"
#include "config.h"
#include "dispatch.h"
#include "dispatch_int.h"
#include "errmap.h"
#include "ident.h"
#include "log.h"
#include "metrics.h"
#include "callback.h"
#include "msi.h"
#include "reply.h"
#include "scrape.h"
#include "secmem.h"
#include "server.h"
#include "session.h"
#include "userdb.h"
#include "workload.h"

/* ROOT: the peer's SO_PEERCRED uid is 0 (bind, unbind, bindings). */
enum policy { POLICY_ANY, POLICY_ADMIN, POLICY_ROOT };

/* As every op (waiter.h): 0 with *out filled in, WAITER_PARKED, -errno. */
typedef int handler_fn(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);

struct method {
	enum proto_op op;
	enum policy policy;
	handler_fn *fn;
};

/* The answer when the caller's uid has no name (w->caller->user NULL). */
int
dispatch_no_own_user(const struct waiter *w, struct reply *out)
{
	if (w->caller->user_err < 0)
		return errmap_reply(out, -ECONNREFUSED,
		    "the user directory (NSS) "
		    "did not answer for your uid; try again");
	return errmap_reply(out, -EACCES,
	    "your uid has no user name on this node");
}

int
dispatch_request_kind(const struct proto_request *req)
{
	return req->workload != NULL ? config_workload_kind(req->workload) :
				       CONFIG_WL_DEFAULT;
}

int
dispatch_lookup_failed(int result, struct reply *out)
{
	if (result == -ENOENT)
		return errmap_reply(out, -EBADMSG, "no such user on this node");
	return errmap_reply(out, -ECONNREFUSED,
	    "the user directory (NSS) did not answer; try again");
}

/*
 * A workload policy refused (issue 14): audited with the caller's kind
 * and session, the policy line as the reason (why holds the line after
 * "refused by "); answered -EACCES with why.
 */
int
dispatch_policy_refusal(struct dispatch *d, struct waiter *w, int kind,
    const char *session, const char *scope, const char *why, struct reply *out)
{
	const char *line = strstr(why, "[workload.");
	struct audit_event ev = {
		.event = "request_refused",
		.uid = w->caller->uid,
		.user = w->caller->user,
		.op = proto_op_name(w->op),
		.scope = scope,
		.outcome = "refused",
		.reason = line != NULL ? line : why,
		.workload = config_workload_name(kind),
		.session = session,
	};

	d->policy_refused++;
	audit_refusal(&ev, util_mono_ms()); /* a caller can repeat it */
	return errmap_reply(out, -EACCES, why);
}

/*
 * Callers in another user namespace are known only through a bound
 * cgroup: the uid number the kernel shows for them means nothing here.
 */
static int
foreign_unbound(struct dispatch *d, struct waiter *w, struct reply *out)
{
	struct audit_event ev = {
		.event = "request_refused",
		.uid = w->caller->uid,
		.op = proto_op_name(w->op),
		.outcome = "refused",
		.reason = "another user namespace, not in a bound cgroup",
	};

	d->forbidden++;
	audit_refusal(&ev, util_mono_ms());
	return errmap_reply(out, -EACCES,
	    "callers in another user namespace (a container) are known only "
	    "through a bound cgroup; ask the orchestrator to bind it "
	    "('credctl admin bind')");
}

/*
 * When kind may not start a sign-in, tell the broker so (w->no_signin,
 * with the refusal that names the policy line): a request that would
 * start one is refused instead. 0 or -ENOMEM.
 */
static int
no_signin_set(struct dispatch *d, struct waiter *w, int kind,
    const char *session)
{
	char why[WORKLOAD_WHY_MAX + 128];

	if (workload_check_signin(d->cf, kind, why, sizeof(why)) == 0)
		return 0;
	w->policy_kind = kind;
	w->no_signin = strdup(why);
	if (session != NULL)
		w->policy_session = strdup(session);
	if (w->no_signin == NULL ||
	    (session != NULL && w->policy_session == NULL))
		return -ENOMEM;
	return 0;
}

static int
op_token(struct dispatch *d, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	char why[WORKLOAD_WHY_MAX + 128];
	const char *scope, *session;
	int kind;

	if (w->caller->user == NULL)
		return dispatch_no_own_user(w, out);
	scope = config_scope_resolve(d->cf, req->scope);
	if (scope == NULL)
		return errmap_reply(out, -EDOM,
		    "unknown scope; ask for a configured "
		    "alias (see 'credctl status') or scope");
	kind = ident_kind(d->ident, w->caller, &session);
	if (workload_check_token(d->cf, kind, scope, why, sizeof(why)) < 0)
		return dispatch_policy_refusal(d, w, kind, session, scope, why,
		    out);
	if (no_signin_set(d, w, kind, session) < 0)
		return -ENOMEM;
	switch (d->cf->workload[kind].identity) {
	case CONFIG_IDENTITY_APP:
		w->app_identity = WAITER_APP;
		break;
	case CONFIG_IDENTITY_USER_OR_APP:
		w->app_identity = WAITER_USER_OR_APP;
		break;
	default:
		w->app_identity = 0;
	}
	if (w->app_identity != 0) {
		/* The audit record of an app token names kind and session. */
		w->policy_kind = kind;
		if (session != NULL && w->policy_session == NULL &&
		    (w->policy_session = strdup(session)) == NULL)
			return -ENOMEM;
	}
	if (req->claims != NULL) {
		const char *bad;
		char *claims;
		int r;

		/* A resource's challenge: checked here, never echoed. */
		r = cae_claims_parse(req->claims, &claims, &bad);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return errmap_reply(out, -EBADMSG, bad);
		r = broker_token_cae(d->broker, w, w->caller->user,
		    w->caller->uid, scope, req->min_valid, req->cae, claims,
		    out);
		free(claims);
		return r;
	}
	return broker_token_cae(d->broker, w, w->caller->user, w->caller->uid,
	    scope, req->min_valid, req->cae, NULL, out);
}

static int
op_login(struct dispatch *d, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	const char *session;
	int kind;

	if (w->caller->user == NULL)
		return dispatch_no_own_user(w, out);
	kind = ident_kind(d->ident, w->caller, &session);
	if (no_signin_set(d, w, kind, session) < 0)
		return -ENOMEM;
	return broker_login(d->broker, w, w->caller->user, w->caller->uid,
	    req->wait, out);
}

/* The address a paste-back sign-in ended on: the caller's own flow. */
static int
op_login_code(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	if (w->caller->user == NULL)
		return dispatch_no_own_user(w, out);
	if (req->url == NULL) /* the decoder requires it; never trust one */
		return errmap_reply(out, -EBADMSG, "missing \"url\"");
	return broker_signin_paste(d->broker, w, w->caller->user,
	    w->caller->uid, req->url, req->url_len, out);
}

/*
 * An ok status reply carries the SDK endpoint's and the sign-in
 * callback's state. 0, or -ENOMEM
 * (rep emptied: answered "internal").
 */
/*
 * The caller's session, workload kind and effective policy (issue 14):
 * "session" (id or null), "workload", "cgroup" (the caller's, or null),
 * "bound" (the caller sits in its session's cgroup), "unbound_reason"
 * (why its session has no cgroup), "policy" {identity, scopes,
 * start_signin, sdk}. 0 or -ENOMEM.
 */
static int
status_workload(struct dispatch *d, const struct caller *c, json_t *resp)
{
	const struct config_workload *p;
	struct sessions_info in;
	const char *session;
	json_t *pol = json_object();
	int kind, bad = 0;

	kind = ident_kind(d->ident, c, &session);
	p = &d->cf->workload[kind];
	reply_put(resp, "session", session ? json_string(session) : json_null(),
	    &bad);
	reply_put(resp, "workload", json_string(config_workload_name(kind)),
	    &bad);
	reply_put(resp, "cgroup",
	    c->cgroup != NULL ? json_string(c->cgroup) : json_null(), &bad);
	reply_put(resp, "bound", json_boolean(c->session != NULL), &bad);
	if (session != NULL && c->session == NULL &&
	    sessions_info(d->sessions, session, &in) == 0 && in.why != NULL)
		reply_put(resp, "unbound_reason", json_string(in.why), &bad);
	reply_put(pol, "identity",
	    json_string(workload_identity_name(p->identity)), &bad);
	reply_put(pol, "scopes", json_string(p->scopes ? p->scopes : "*"),
	    &bad);
	reply_put(pol, "start_signin", json_boolean(p->start_signin), &bad);
	reply_put(pol, "sdk", json_boolean(p->sdk), &bad);
	reply_put(resp, "policy", pol, &bad);
	return bad ? -ENOMEM : 0;
}

static int
status_endpoint(struct dispatch *d, const struct caller *c, struct reply *rep)
{
	json_t *resp = rep->json;

	if (resp == NULL || !json_is_true(json_object_get(resp, "ok")))
		return 0;
	if (status_workload(d, c, resp) == 0 &&
	    msi_report(d->msi, resp, 0) == 0 &&
	    callback_report(d->callback, resp, 0) == 0)
		return 0;
	reply_clear(rep);
	return -ENOMEM;
}

/* A status the broker parked (the record loading) gets it here. */
static void
status_hook(struct waiter *w, struct reply *rep)
{
	(void)status_endpoint(w->hook_arg, w->caller, rep);
}

static int
op_status(struct dispatch *d, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	int r;

	(void)req;
	if (w->caller->user == NULL)
		return dispatch_no_own_user(w, out);
	w->hook = status_hook;
	w->hook_arg = d;
	r = broker_status(d->broker, w, w->caller->user, w->caller->uid, out);
	if (r == WAITER_PARKED)
		return r; /* status_hook adds the workload and endpoint */
	w->hook = NULL;
	if (r == 0)
		r = status_endpoint(d, w->caller, out);
	return r;
}

static int
op_logout(struct dispatch *d, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	(void)req;
	if (w->caller->user == NULL)
		return dispatch_no_own_user(w, out);
	return broker_logout(d->broker, w, w->caller->user, w->caller->uid,
	    out);
}

static int
op_admin_list(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	return broker_list(d->broker, w, req->cursor, req->limit, out);
}

static int
op_admin_revoke(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	if (!util_valid_username(req->user))
		return errmap_reply(out, -EBADMSG, "invalid user name");
	return broker_revoke(d->broker, w, req->user, w->caller->uid, out);
}

/* Why credd ended sessions itself (docs/protocol.md, stats). */
static void
sessions_stats(const struct sessions *ss, json_t *o, int *bad)
{
	const struct sessions_counters *n = sessions_counters(ss);

	reply_put(o, "sessions_ended_idle",
	    json_integer((json_int_t)n->ended_idle), bad);
	reply_put(o, "sessions_ended_no_process",
	    json_integer((json_int_t)n->ended_no_process), bad);
	reply_put(o, "sessions_ended_account",
	    json_integer((json_int_t)n->ended_account), bad);
	reply_put(o, "sessions_dropped", json_integer((json_int_t)n->dropped),
	    bad);
	reply_put(o, "sdk_secrets_ended_account",
	    json_integer((json_int_t)n->secrets_ended_account), bad);
}

/*
 * Issue 14: connections whose cgroup was resolved or not, identified by
 * a binding, the mean resolution cost, and sessions ended by their cgroup.
 */
static void
ident_report(const struct ident *id, json_t *o, int *bad)
{
	const struct ident_stats *st;

	if (id == NULL)
		return;
	st = ident_stats(id);
	reply_put(o, "cgroup_resolved", json_integer((json_int_t)st->resolved),
	    bad);
	reply_put(o, "cgroup_unresolved",
	    json_integer((json_int_t)st->unresolved), bad);
	reply_put(o, "cgroup_bound_connections",
	    json_integer((json_int_t)st->bound_conns), bad);
	reply_put(o, "cgroup_resolve_us_mean",
	    json_real(st->resolved + st->unresolved > 0 ?
		    (double)st->resolve_ns / 1e3 /
			(double)(st->resolved + st->unresolved) :
		    0.0),
	    bad);
	reply_put(o, "sessions_ended_cgroup",
	    json_integer((json_int_t)st->ended_cgroup), bad);
}

/* Locked secret memory (secmem.h) and the process's VmLck, in bytes. */
static void
stats_secmem(struct dispatch *d, json_t *resp, int *bad)
{
	struct secmem_stats ms;
	size_t vm = 0;

	secmem_stats(d->secmem, &ms);
	(void)secmem_vm_locked(&vm);
	reply_put(resp, "locked_memory_limit",
	    json_integer((json_int_t)ms.limit), bad);
	reply_put(resp, "locked_memory", json_integer((json_int_t)ms.locked),
	    bad);
	reply_put(resp, "locked_memory_in_use",
	    json_integer((json_int_t)ms.in_use), bad);
	reply_put(resp, "locked_secrets", json_integer((json_int_t)ms.live),
	    bad);
	reply_put(resp, "unlocked_secret_allocs",
	    json_integer((json_int_t)ms.unlocked_allocs), bad);
	reply_put(resp, "vm_locked", json_integer((json_int_t)vm), bad);
}

static int
op_stats(struct dispatch *d, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	const struct server_stats *ss = server_stats(d->server);
	json_t *resp = proto_ok(), *ops = json_object();
	int i, bad = 0;

	(void)w;
	(void)req;
	for (i = 1; i < PROTO_OP_COUNT; i++)
		reply_put(ops, proto_op_name((enum proto_op)i),
		    json_integer((json_int_t)d->by_op[i]), &bad);
	reply_put(resp, "version", json_string(ENTRA_VERSION), &bad);
	reply_put(resp, "requests", json_integer((json_int_t)ss->requests),
	    &bad);
	reply_put(resp, "requests_by_op", ops, &bad);
	reply_put(resp, "connections",
	    json_integer((json_int_t)ss->connections), &bad);
	reply_put(resp, "connections_open", json_integer((json_int_t)ss->open),
	    &bad);
	reply_put(resp, "connections_refused",
	    json_integer((json_int_t)ss->refused_conns), &bad);
	reply_put(resp, "rate_limited",
	    json_integer((json_int_t)ss->rate_limited), &bad);
	reply_put(resp, "bad_requests",
	    json_integer((json_int_t)ss->bad_requests), &bad);
	reply_put(resp, "output_bytes",
	    json_integer((json_int_t)ss->output_bytes), &bad);
	reply_put(resp, "output_bytes_peak",
	    json_integer((json_int_t)ss->output_bytes_peak), &bad);
	reply_put(resp, "output_stalls",
	    json_integer((json_int_t)ss->output_stalls), &bad);
	reply_put(resp, "accept_pauses",
	    json_integer((json_int_t)ss->accept_pauses), &bad);
	reply_put(resp, "forbidden", json_integer((json_int_t)d->forbidden),
	    &bad);
	reply_put(resp, "sessions",
	    json_integer((json_int_t)sessions_count(d->sessions)), &bad);
	reply_put(resp, "sdk_secrets",
	    json_integer((json_int_t)sessions_secret_count(d->sessions)), &bad);
	sessions_stats(d->sessions, resp, &bad);
	ident_report(d->ident, resp, &bad);
	reply_put(resp, "policy_refused",
	    json_integer((json_int_t)d->policy_refused), &bad);
	if (broker_metrics_stats(d->broker, resp) < 0 ||
	    msi_report(d->msi, resp, 1) < 0 ||
	    callback_report(d->callback, resp, 1) < 0)
		bad = 1;
	stats_secmem(d, resp, &bad);
	if (bad) {
		json_decref(resp);
		return -ENOMEM;
	}
	return reply_set_json(out, resp);
}

/* metrics: the Prometheus text page (scrape.h) as "text". */
static int
op_metrics(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	struct scrape_sources src = { d->broker, d->server, d->sessions,
		d->msi };
	struct metrics_text t = { 0 };
	json_t *resp = NULL;
	int bad = 0;

	(void)w;
	(void)req;
	if (scrape_page(&src, &t) == 0) {
		resp = proto_ok();
		reply_put(resp, "content_type",
		    json_string("text/plain; version=0.0.4"), &bad);
		reply_put(resp, "text", json_stringn(t.buf, t.len), &bad);
	}
	metrics_text_free(&t);
	if (resp == NULL || bad) {
		json_decref(resp);
		return -ENOMEM;
	}
	return reply_set_json(out, resp);
}

/*
 * health: is the store, the IdP, the key ring usable (broker_metrics.h)?
 * Any caller: a monitoring agent runs unprivileged, and the answer names
 * no user and no secret.
 */
static int
op_health(struct dispatch *d, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	json_t *resp = proto_ok();

	(void)w;
	(void)req;
	if (resp == NULL || broker_metrics_health(d->broker, resp) < 0) {
		json_decref(resp);
		return -ENOMEM;
	}
	return reply_set_json(out, resp);
}

static const struct method methods[] = {
	{ PROTO_OP_TOKEN, POLICY_ANY, op_token },
	{ PROTO_OP_LOGIN, POLICY_ANY, op_login },
	{ PROTO_OP_STATUS, POLICY_ANY, op_status },
	{ PROTO_OP_LOGOUT, POLICY_ANY, op_logout },
	{ PROTO_OP_SESSION_OPEN, POLICY_ADMIN, dispatch_session_open },
	{ PROTO_OP_SESSION_CLOSE, POLICY_ADMIN, dispatch_session_close },
	{ PROTO_OP_ADMIN_LIST, POLICY_ADMIN, op_admin_list },
	{ PROTO_OP_ADMIN_REVOKE, POLICY_ADMIN, op_admin_revoke },
	{ PROTO_OP_ADMIN_OFFBOARD, POLICY_ADMIN, dispatch_admin_offboard },
	{ PROTO_OP_STATS, POLICY_ADMIN, op_stats },
	{ PROTO_OP_SDK_ENV, POLICY_ANY, dispatch_sdk_env },
	{ PROTO_OP_METRICS, POLICY_ADMIN, op_metrics },
	{ PROTO_OP_HEALTH, POLICY_ANY, op_health },
	{ PROTO_OP_BIND, POLICY_ROOT, dispatch_bind },
	{ PROTO_OP_UNBIND, POLICY_ROOT, dispatch_unbind },
	{ PROTO_OP_BINDINGS, POLICY_ROOT, dispatch_bindings },
	{ PROTO_OP_LOGIN_CODE, POLICY_ANY, op_login_code },
};

int
dispatch_request(void *arg, struct waiter *w, const struct proto_request *req,
    struct reply *out)
{
	struct dispatch *d = arg;
	const struct method *m = NULL;
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].op == req->op)
			m = &methods[i];
	if (m == NULL)
		return errmap_reply(out, -EBADMSG, "unknown op");
	d->by_op[req->op]++;
	if ((m->policy == POLICY_ADMIN && !w->caller->is_admin) ||
	    (m->policy == POLICY_ROOT && !w->caller->is_root)) {
		struct audit_event ev = {
			.event = "request_refused",
			.uid = w->caller->uid,
			.user = w->caller->user,
			.op = proto_op_name(req->op),
			.outcome = "refused",
			.reason = m->policy == POLICY_ROOT ?
			    "not root" :
			    "not root or admin_group",
		};

		d->forbidden++;
		audit_refusal(&ev,
		    util_mono_ms()); /* a peer can repeat it at will */
		return errmap_reply(out, -EACCES,
		    m->policy == POLICY_ROOT ? "this operation needs root" :
					       "this operation needs root or "
					       "membership of admin_group");
	}
	if (m->policy == POLICY_ANY && req->op != PROTO_OP_HEALTH &&
	    w->caller->is_other_userns && w->caller->session == NULL)
		return foreign_unbound(d, w, out);
	return m->fn(d, w, req, out);
}
