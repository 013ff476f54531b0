/*
 * dispatch_bind.c - the admin ops of shared-uid containers (issue 14):
 * bind a cgroup to (user, workload) for an orchestrator that starts
 * containers itself, unbind it, list the bindings. A binding is a
 * session (service "bind") bound to that cgroup: a caller in it is that
 * user whatever its uid, until the cgroup is removed or emptied after it
 * held processes (cgwatch.h), or unbind.
 *
 * The orchestrator vouches for what runs in the cgroup, so the process
 * check of session_open is not made; every other check is
 * (cgroup_bind_check: not the root cgroup, below [sessions]
 * cgroup_prefix, cgroup.procs not writable by a non-root uid).
 *
 * Must never: bind for a caller that is not root or admin_group (the
 * method table checks), bind a cgroup bound to another user, or look a
 * user up on the loop (userdb's threads do).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entra/util.h"

#include "audit.h"
#include "config.h"
#include "dispatch_int.h"
#include "errmap.h"
#include "ident.h"
#include "session.h"
#include "userdb.h"

struct bind_job {
	struct dispatch *d;
	struct waiter *w;
	struct userdb_req *req;
	char *cgroup, *user;
	int kind;
};

static void
bind_job_free(struct bind_job *j)
{
	if (j == NULL)
		return;
	free(j->cgroup);
	free(j->user);
	free(j);
}

static void
audit_bind(const struct waiter *w, const char *event, const char *user,
    const char *cgroup, int kind, const char *session, const char *outcome,
    const char *why)
{
	struct audit_event ev = {
		.event = event,
		.uid = w->caller->uid,
		.user = user,
		.op = proto_op_name(w->op),
		.scope = cgroup, /* the cgroup path, where a scope would be */
		.outcome = outcome,
		.reason = why,
		.workload = kind >= 0 ? config_workload_name(kind) : NULL,
		.session = session,
	};

	audit_log(&ev);
}

static int
bind_run(struct bind_job *j, uid_t uid, struct reply *out)
{
	char id[SESSION_ID_LEN + 1];
	struct dispatch *d = j->d;
	const char *why = NULL;
	json_t *resp;
	int r, bad = 0;

	r = sessions_open(d->sessions, j->user, uid, "bind", NULL,
	    config_workload_name(j->kind), util_now(), id);
	if (r < 0)
		return errmap_reply(out, r, "cannot bind");
	r = ident_bind_cgroup(d->ident, j->cgroup, id, j->user, j->kind, &why);
	if (r < 0) {
		(void)sessions_close(d->sessions, j->user, id);
		audit_bind(j->w, "bind", j->user, j->cgroup, j->kind, NULL,
		    "refused", why != NULL ? why : strerror(-r));
		if (r == -ENOENT)
			return errmap_reply(out, -EBADMSG, "no such cgroup");
		if (r == -ENOMEM)
			return -ENOMEM;
		return errmap_reply(out, -EACCES,
		    why != NULL ? why : "the cgroup cannot be bound");
	}
	audit_bind(j->w, "bind", j->user, j->cgroup, j->kind, id, "ok", NULL);
	resp = proto_ok();
	reply_put(resp, "session", json_string(id), &bad);
	reply_put(resp, "cgroup", json_string(j->cgroup), &bad);
	reply_put(resp, "user", json_string(j->user), &bad);
	reply_put(resp, "workload", json_string(config_workload_name(j->kind)),
	    &bad);
	if (bad) {
		json_decref(resp);
		return -ENOMEM;
	}
	return reply_set_json(out, resp);
}

static void
bind_cancel(struct waiter *w)
{
	struct bind_job *j = w->parked_on;

	w->linked = 0;
	w->parked_on = NULL;
	userdb_cancel(j->d->db, j->req);
	bind_job_free(j);
}

static void
bind_named(void *arg, int result, uid_t uid, gid_t gid, const char *name)
{
	struct bind_job *j = arg;
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
		r = bind_run(j, uid, &rep);
	bind_job_free(j);
	waiter_finish(w, r, &rep);
}

int
dispatch_bind(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	struct bind_job *j;
	int kind;

	if (!util_valid_username(req->user))
		return errmap_reply(out, -EBADMSG, "invalid user name");
	if (req->cgroup[0] != '/' || strcmp(req->cgroup, "/") == 0 ||
	    strstr(req->cgroup, "/..") != NULL || strlen(req->cgroup) >= 1024)
		return errmap_reply(out, -EBADMSG,
		    "cgroup must be a cgroup v2 path below the root, "
		    "as in /proc/PID/cgroup (\"/kubepods.slice/pod1\")");
	kind = dispatch_request_kind(req);
	if (kind < 0)
		return errmap_reply(out, -EBADMSG, DISPATCH_UNKNOWN_WORKLOAD);
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->d = d;
	j->w = w;
	j->kind = kind;
	j->cgroup = strdup(req->cgroup);
	j->user = strdup(req->user);
	if (j->cgroup == NULL || j->user == NULL ||
	    (j->req = userdb_lookup_name(d->db, j->user, bind_named, j)) ==
		NULL) {
		bind_job_free(j);
		return -ENOMEM;
	}
	w->parked_on = j;
	w->cancel = bind_cancel;
	w->linked = 1;
	return WAITER_PARKED;
}

int
dispatch_unbind(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	size_t n;

	n = sessions_end_cgroup(d->sessions, req->cgroup, NULL, "unbind",
	    sessions_audit_end, d);
	ident_gc(d->ident);
	audit_bind(w, "unbind", NULL, req->cgroup, -1, NULL,
	    n > 0 ? "ok" : "error", n > 0 ? NULL : "no binding");
	if (n == 0)
		return errmap_reply(out, -EBADMSG,
		    "no binding for this cgroup");
	return reply_set_json(out, proto_ok());
}

struct list {
	json_t *arr;
	int bad;
};

static void
list_one(void *arg, const struct sessions_info *in)
{
	struct list *l = arg;
	json_t *o = json_object();

	reply_put(o, "cgroup", json_string(in->cgroup), &l->bad);
	reply_put(o, "user", json_string(in->user), &l->bad);
	reply_put(o, "workload", json_string(config_workload_name(in->kind)),
	    &l->bad);
	reply_put(o, "session", json_string(in->id), &l->bad);
	reply_put(o, "service",
	    in->service != NULL ? json_string(in->service) : json_null(),
	    &l->bad);
	if (o == NULL || json_array_append_new(l->arr, o) < 0)
		l->bad = 1;
}

int
dispatch_bindings(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	struct list l = { json_array(), 0 };
	json_t *resp = proto_ok();

	(void)w;
	(void)req;
	(void)sessions_list_bound(d->sessions, list_one, &l);
	reply_put(resp, "bindings", l.arr, &l.bad);
	reply_put(resp, "watched",
	    json_integer((json_int_t)ident_watched(d->ident)), &l.bad);
	if (resp == NULL || l.bad) {
		json_decref(resp);
		return -ENOMEM;
	}
	return reply_set_json(out, resp);
}
