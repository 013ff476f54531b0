/*
 * broker_signin.c - the broker's entry points for authorization-code
 * sign-ins (broker.h): the login_code op (the address a user pastes
 * back), and what the platform-callback listener calls (a short link's
 * authorize URL, a callback's code or error). The flow itself is
 * flow_code.c's; this file finds the caller's user and hands over.
 *
 * Must never: log the pasted address, a code or a state; act on a flow
 * other than the caller's own (paste) or the state's (callback).
 */
#include <errno.h>

#include "entra/util.h"

#include "audit.h"
#include "broker.h"
#include "broker_int.h"
#include "discovery_doc.h"
#include "errmap.h"
#include "flow_int.h"
#include "idp.h"
#include "log.h"
#include "user.h"

int
broker_signin_paste(struct broker *b, struct waiter *w, const char *user,
    uid_t uid, const char *text, size_t len, struct reply *out)
{
	struct user *u = user_find(b, user);

	/* A code flow's user is in memory while it runs; a name whose uid
	 * changed has no flow of this caller's. */
	if (u == NULL || u->uid != uid || u->flow == NULL)
		return errmap_reply(out, -ENOKEY,
		    "no sign-in link is waiting for an address; run 'credctl "
		    "login'");
	return flow_code_paste(b, u, w, text, len, out);
}

int
broker_signin_link(struct broker *b, const char *id, char **authorize_url,
    broker_link_cb *cb, void *arg)
{
	return flow_code_link(b, id, authorize_url, cb, arg);
}

int
broker_signin_iss_ok(struct broker *b, const char *iss)
{
	char want[DISCOVERY_URL_MAX], q1[LOG_VALUE_MAX], q2[LOG_VALUE_MAX];
	struct audit_event ev = {
		.event = "request_refused",
		.uid = (uid_t)-1,
		.op = "signin_callback",
		.outcome = "refused",
		.reason = "iss is not the discovered issuer",
	};
	int r;

	if (b->idp->ops->endpoint == NULL)
		return 1;
	r = b->idp->ops->endpoint(b->idp, IDP_EP_ISSUER_TEMPLATE, NULL, want,
	    sizeof(want));
	if (r == -ENOENT || (r == 0 && discovery_doc_issuer_matches(want, iss)))
		return 1;
	log_warnx("sign-in callback refused: its iss %s is not the discovered "
		  "issuer %s",
	    log_value(q1, iss), r == 0 ? log_value(q2, want) : "(none)");
	audit_refusal(&ev, util_mono_ms()); /* a peer can repeat it */
	return 0;
}

int
broker_signin_redeem(struct broker *b, const char *state,
    const struct secret *code, const char *err, const char *err_desc,
    broker_redeem_cb *cb, void *arg)
{
	return flow_code_callback(b, state, code, err, err_desc, cb, arg);
}
