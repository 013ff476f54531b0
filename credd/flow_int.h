/*
 * flow_int.h - what flow.c (the consent flow's life: start, answers,
 * accepting the consent, the device code) and flow_code.c (the
 * authorization code method: PKCE, state, paste-back and callback
 * redemption, the fallback from a blocked device flow) share. One flow
 * per user whatever its method: the same waiters, the same answers, the
 * same account checks (DESIGN §10: methods are variants of one consent
 * flow). broker_signin.c reaches code flows through flow_code_*.
 *
 * Nothing else includes this; the rest of the broker sees flow.h.
 */
#ifndef CREDD_FLOW_INT_H
#define CREDD_FLOW_INT_H

#include <stdint.h>

#include "broker.h"
#include "oauth.h"
#include "waiter.h"

#ifndef OIDC_SCOPES
#define OIDC_SCOPES "openid profile offline_access"
#endif
/* Seconds an authorization-code sign-in waits for the user. */
#define FLOW_CODE_LIFETIME 900

struct broker;
struct user;
struct secret;
struct event_timer;
struct userdb_req;
struct idp_req;
struct flow_code;
struct record_flow;

enum flow_state { FLOW_STARTING, FLOW_CLAIMING, FLOW_POLLING, FLOW_SAVING };
enum flow_method { FLOW_DEVICE, FLOW_CODE };

/* A consent flow; at most one per user. */
struct flow {
	struct user *u;
	enum flow_state state; /* FLOW_POLLING: fields known, user's turn */
	enum flow_method method;
	char *scope;  /* resource scope the consent asks for */
	char *claims; /* a challenge the polls carry (cae.h), or NULL */
	struct oauth_device dev; /* FLOW_DEVICE */
	struct flow_code *code;	 /* FLOW_CODE (flow_code.c) */
	int client;		 /* enum idp_client of the grant */
	int64_t expires_on;	 /* unix s */
	int64_t interval;	 /* seconds; +5 on slow_down */
	struct idp_req *req;
	struct userdb_req *name_req; /* FLOW_STARTING: the uid's name, afresh */
	struct event_timer *timer;
	unsigned disc_waits; /* FLOW_STARTING: waits for the discovery */
	struct waiter_list start_waiters; /* want the flow's fields */
	struct waiter_list done_waiters;  /* login wait, paste: the outcome */
	unsigned epoch;
	uintptr_t seq; /* names this flow to the store thread's callback */
	int remote;    /* another node's flow: shown here, polled there */
	struct oauth_token
	    tok; /* FLOW_SAVING: the first token, held until stored */
	/* A platform callback's redemption: told the outcome once. */
	broker_redeem_cb *redeem_cb;
	void *redeem_arg;
};

/* flow.c */
/* The fields are known: poll (device) or wait (code); answer starters. */
void flow_begin(struct broker *b, struct user *u, struct flow *f);
/*
 * End u's flow: every waiter answered (err/msg, or oerr), the callback's
 * cb told, the flow freed.
 */
void flow_end(struct broker *b, struct user *u, int err, const char *msg,
    const struct oauth_error *oerr);
/*
 * The token a sign-in (poll or code redemption) obtained, taken and
 * wiped: stored as the consent by flow_accept, or the flow ends refused
 * (another account: account_mismatch).
 */
void flow_got_token(struct broker *b, struct user *u, struct flow *f,
    struct oauth_token *tok);
/* A grant's error on a flow (device poll or code redemption): end it. */
void flow_failed(struct broker *b, struct user *u, struct flow *f,
    const struct oauth_error *err);
/* A login's wait (w's timer) ended: answer it with the flow's state. */
void flow_login_deadline_cb(struct event_loop *ev, void *arg);
/*
 * Cluster mode (flow_cluster.c): claim the flow in u's sealed record (the device flow
 * shown on every node). 0 when the claim went to the store thread
 * (claim_done goes on), else -errno (go on without it).
 */
int flow_cluster_claim(struct broker *b, struct user *u, struct flow *f);
/* Show another node's pending device flow rf in f. 0 or -ENOMEM. */
int flow_cluster_adopt_fields(struct flow *f, const struct record_flow *rf);

/* A new flow for u asking for scope, not yet u's. NULL on ENOMEM. */
struct flow *flow_new(struct broker *b, struct user *u, const char *scope);
/* Free a flow that never became u's (flow_new's). */
void flow_discard(struct broker *b, struct flow *f);

/* flow_device.c */
/* Poll f's device code in delay_s seconds (or when the breaker opens). */
void flow_device_arm_poll(struct broker *b, struct flow *f, int64_t delay_s);
/* idp device_start's answer for f: begin polling, fall back, or end. */
void flow_device_started(void *arg, int r, struct oauth_device *dev,
    const struct oauth_error *got_err);

/*
 * flow_code.c's pieces for flow_code_take.c: the state and link used up
 * on this node (the flow waits for its code until it expires), the
 * redemption (or Entra's error) once the state matched, and the audit of
 * a refused state or link.
 */
void flow_code_taken(struct broker *b, struct flow *f);
void flow_code_finish(struct broker *b, struct user *u, struct flow *f,
    const struct secret *code, const char *error, const char *desc);
void flow_code_refused(const char *op, const char *reason);
/*
 * flow_code_take.c: use key (a state, or a link id with is_link) up in
 * user's record on the store thread, then redeem code (or pass Entra's
 * error, or answer the link through lcb) here. code, error and desc are
 * copied. 0 or -ENOMEM (nothing was submitted, no callback runs).
 */
int flow_code_take_submit(struct broker *b, const char *user, const char *key,
    int is_link, const struct secret *code, const char *error, const char *desc,
    uintptr_t seq, broker_redeem_cb *cb, void *arg, broker_link_cb *lcb,
    void *larg);
/* flow_code.c */
/*
 * Turn f into an authorization-code flow and begin it: PKCE, state,
 * link id, the authorize URL; note (may be NULL) is told to the user
 * (the fallback's reason). 0, or -errno (f unchanged but for the device
 * fields, which are dropped).
 */
int flow_code_begin(struct broker *b, struct user *u, struct flow *f,
    const char *note);
struct record_cflow;
/* f's code flow as the record holds it (cluster). NULL on ENOMEM. */
struct record_cflow *flow_code_to_record(struct broker *b,
    const struct flow *f);
/* f's claim stood: from now on it is redeemed through the record. */
void flow_code_claimed(struct flow *f);
/*
 * Make f the code flow rf describes (another node's, remote: shown
 * here; or taken here to be redeemed: with the verifier). 0 or -ENOMEM.
 */
int flow_code_adopt(struct flow *f, const struct record_cflow *rf, int remote);
/* Is rf (may be NULL) f's code flow? */
int flow_code_same(const struct flow *f, const struct record_cflow *rf);
/* Is f a code flow that lives in the user's record? */
int flow_code_is_shared(const struct flow *f);
/* flow_begin of a code flow: wait for the user until it expires. */
void flow_code_wait(struct broker *b, struct user *u, struct flow *f);
/* The code flow's fields for a consent answer. 0 or -ENOMEM. */
int flow_code_fields(const struct flow *f, json_t *obj);
void flow_code_free(struct flow_code *c);
/* Is err Conditional Access refusing the device code flow (53003)? */
int flow_code_is_ca_block(const struct oauth_error *err);
/*
 * The user pasted text (the paste-back address) for u's code flow: w is
 * parked until the code is redeemed (WAITER_PARKED), or *out says why
 * not (bad_request for another address or state, consent_required when
 * no code flow waits). -ENOMEM.
 */
int flow_code_paste(struct broker *b, struct user *u, struct waiter *w,
    const char *text, size_t len, struct reply *out);
/*
 * Tell a callback's cb the outcome from a timer (soon, on the loop);
 * user and reason are copied. Nothing happens when that cannot be
 * allocated but a log line (the page then times out).
 */
void flow_code_tell(struct broker *b, broker_redeem_cb *cb, void *arg, int r,
    const char *user, const char *reason);
/* broker_free: drop the outcomes not yet told. */
void flow_code_drop_tells(struct broker *b);
/* broker_signin_link and broker_signin_redeem (broker.h), done here. */
int flow_code_link(struct broker *b, const char *id, char **authorize_url,
    broker_link_cb *cb, void *arg);
int flow_code_callback(struct broker *b, const char *state,
    const struct secret *code, const char *err, const char *err_desc,
    broker_redeem_cb *cb, void *arg);

#endif
