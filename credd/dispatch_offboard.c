/*
 * dispatch_offboard.c - the admin op admin_offboard (issue 17 part 3),
 * a part of dispatch.c (dispatch_int.h): Graph's revokeSignInSessions for
 * one user with the [offboarding] app (offboard.h), the user's Entra id
 * from the pinned oid in its record (loaded first on a node that never
 * served the user) or account_match.
 *
 * Must never: purge anything itself (admin_revoke does), answer an
 * admin before Graph did, or put the app token or credential in an
 * answer, a log line or an audit record.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entra/proto.h"
#include "entra/util.h"

#include "audit.h"
#include "broker.h"
#include "config.h"
#include "dispatch.h"
#include "dispatch_int.h"
#include "errmap.h"
#include "log.h"
#include "offboard.h"
#include "reply.h"
#include "waiter.h"

/*
 * admin_offboard: Graph's revokeSignInSessions for one user, with the
 * [offboarding] app (offboard.h). The answer is always ok with an
 * "entra" outcome and a message (credctl reports it beside the local
 * revoke, which it asks for too): revoked, not_configured, no_account,
 * refused (403: the permission), no_such_user, credential_rejected,
 * unavailable, failed. Each outcome is audited (event offboard).
 */
struct offboard_wait {
	struct waiter *w;
	struct offboard *ob;
	struct offboard_req *q;
	uid_t by_uid;
	char user[256]; /* util_valid_username: at most 32 */
	char id[OFFBOARD_ID_MAX + 1];
};

static json_t *
offboard_answer(const char *outcome, const char *message)
{
	json_t *o = proto_ok();

	if (o == NULL ||
	    json_object_set_new(o, "entra", json_string(outcome)) < 0 ||
	    json_object_set_new(o, "message", json_string(message)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void
offboard_audit(uid_t by_uid, const char *user, const char *id,
    const char *outcome, const char *reason)
{
	struct audit_event ev = { 0 };

	ev.event = "offboard";
	ev.uid = by_uid;
	ev.user = user;
	ev.op = "admin_offboard";
	ev.outcome = strcmp(outcome, "revoked") == 0 ? "ok" : "error";
	ev.cls = outcome;
	ev.oid = id;
	ev.reason = reason;
	audit_log(&ev);
}

static const char *
offboard_outcome(int r)
{
	switch (r) {
	case 0:
		return "revoked";
	case -EACCES:
		return "refused";
	case -ENOENT:
		return "no_such_user";
	case -EKEYREJECTED:
		return "credential_rejected";
	case -EAGAIN:
		return "unavailable";
	default:
		return "failed";
	}
}

static void
offboard_done(void *arg, int r, const char *why)
{
	struct offboard_wait *ow = arg;
	struct waiter *w = ow->w;
	const char *outcome = offboard_outcome(r);

	offboard_audit(ow->by_uid, ow->user, ow->id, outcome, why);
	if (r < 0)
		log_warnx("admin_offboard \"%s\": %s", ow->user, why);
	free(ow);
	w->parked_on = NULL;
	waiter_reply_json(w, offboard_answer(outcome, why));
}

/* The admin went away: the Graph call is dropped (never half-answered). */
static void
offboard_wait_cancel(struct waiter *w)
{
	struct offboard_wait *ow = w->parked_on;

	w->linked = 0;
	w->parked_on = NULL;
	if (ow == NULL)
		return;
	offboard_audit(ow->by_uid, ow->user, ow->id, "cancelled",
	    "the admin's connection closed before Graph answered");
	offboard_cancel(ow->ob, &ow->q);
	free(ow);
}

/* The Graph call for user, its record loaded (or absent). */
static int
offboard_start(struct dispatch *d, struct waiter *w, const char *user,
    struct reply *out)
{
	struct offboard_wait *ow;
	const char *why;
	int r;

	ow = calloc(1, sizeof(*ow));
	if (ow == NULL)
		return -ENOMEM;
	ow->w = w;
	ow->ob = d->offboard;
	ow->by_uid = w->caller->uid;
	(void)snprintf(ow->user, sizeof(ow->user), "%s", user);
	/* The pinned oid names the account for sure; else account_match. */
	r = broker_pinned_oid(d->broker, user, ow->id, sizeof(ow->id));
	if (r < 0)
		r = config_account_match(d->cf, user, ow->id, sizeof(ow->id));
	if (r < 0) {
		free(ow);
		why = "no Entra account is known for this user (no pinned "
		      "oid in the store and no account_match)";
		offboard_audit(w->caller->uid, user, NULL, "no_account", why);
		return reply_set_json(out, offboard_answer("no_account", why));
	}
	r = offboard_revoke(d->offboard, ow->id, offboard_done, ow, &ow->q);
	if (r < 0) {
		free(ow);
		why = r == -EINVAL ? "the user's Entra id cannot be sent to "
				     "Microsoft Graph" :
				     "cannot start the Graph call";
		offboard_audit(w->caller->uid, user, NULL, "failed", why);
		return reply_set_json(out, offboard_answer("failed", why));
	}
	w->parked_on = ow;
	w->cancel = offboard_wait_cancel;
	w->linked = 1;
	return WAITER_PARKED;
}

int
dispatch_offboard_resume(void *arg, struct waiter *w, struct reply *out)
{
	return offboard_start(arg, w, w->user, out);
}

int
dispatch_admin_offboard(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out)
{
	const char *why;
	int r;

	if (!util_valid_username(req->user))
		return errmap_reply(out, -EBADMSG, "invalid user name");
	if (d->offboard == NULL) {
		why = "offboarding is not configured (no [offboarding] "
		      "client_id; credd is a public client): Entra was not "
		      "asked to revoke the user's sessions";
		offboard_audit(w->caller->uid, req->user, NULL,
		    "not_configured", why);
		return reply_set_json(out,
		    offboard_answer("not_configured", why));
	}
	/* The pinned oid is in the record: load it on a node that never
	 * served the user (any node of a cluster may run the command). */
	r = broker_load_user(d->broker, w, req->user);
	if (r != 0)
		return r; /* WAITER_PARKED: dispatch_offboard_resume later */
	return offboard_start(d, w, req->user, out);
}
