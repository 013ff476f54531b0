/*
 * flow.h - device-code consent flows (RFC 8628; DESIGN.md §5): at most
 * one per user (cluster-wide on a cluster store), started by a token
 * request without consent, a login or an interactive session_open, or
 * by a refresh that needs consent for one resource (flight.c).
 */
#ifndef CREDD_FLOW_H
#define CREDD_FLOW_H

#include <jansson.h>

/*
 * What a sign-in whose id_token does not carry the discovered issuer is
 * answered with (idp_misconfigured), once at its end and once more to
 * the user's next request.
 */
#define FLOW_ISSUER_MISMATCH                                                   \
	"the sign-in's id_token was not issued by the identity provider's "    \
	"discovered issuer (see credd's log); contact your administrator"

struct broker;
struct user;
struct waiter;
struct flow;
struct reply;

/*
 * Start a device flow for u asking for scope (NULL: the default). 0,
 * -EBUSY (over device_flows_per_hour), or -errno.
 */
int flow_start(struct broker *b, struct user *u, const char *scope);
/*
 * Attach w to u's flow: the answer (consent_required or _pending, a
 * pending login or session_open, with the device-code fields) in *out,
 * or WAITER_PARKED until the fields are known (or a login's wait ends).
 * -ENOMEM.
 */
int flow_join(struct broker *b, struct user *u, struct waiter *w,
    struct reply *out);
/* Add the device-code fields to obj (errors and replies). 0 or -ENOMEM. */
int flow_fields(const struct flow *f, json_t *obj);
/*
 * A claims challenge (compact JSON, cae.h) for scope that this node's
 * flow f must carry: its polls send it, so the sign-in satisfies the
 * challenge (MSAL's interactive retry with the same claims). Only when f
 * signs in for that scope; the first one stays. 0 or -ENOMEM.
 */
int flow_carry_claims(struct flow *f, const char *scope, const char *claims);
/* Cancel and free u's flow; waiters are answered with resp_code/err. */
void flow_cancel(struct broker *b, struct user *u, int err, const char *msg);
/* May a flow start automatically now (cooldown, per-hour limit)? 0 or -errno. */
int flow_may_start(struct broker *b, struct user *u, int user_asked);
/*
 * session_open's answer for u: session (w->session), state, account;
 * with "pending", the caller adds flow_fields. NULL on ENOMEM.
 */
json_t *flow_session_reply(struct waiter *w, const struct user *u,
    const char *state);
/* u's record changed (reload): end a remote flow that ended elsewhere. */
void flow_cluster_record_changed(struct broker *b, struct user *u);

/*
 * The workload policy forbids the sign-in w's request would need (issue
 * 14): answered r with the refusal naming the policy line (w->no_signin),
 * audited with the caller's kind and session. No flow starts.
 */
int flow_no_signin(struct waiter *w, int r, struct reply *out);

#endif
