/*
 * dispatch.h - the method table: which op, which caller may call it,
 * which handler answers. Negative errno values become wire error names
 * in errmap.h.
 */
#ifndef CREDD_DISPATCH_H
#define CREDD_DISPATCH_H

#include <jansson.h>

#include "entra/proto.h"
#include "waiter.h"

struct broker;
struct sessions;
struct userdb;
struct config;
struct msi;
struct callback;
struct secmem;
struct reply;

struct dispatch {
	struct broker *broker;
	struct sessions *sessions;
	const struct config *cf;
	struct server *server;
	struct msi *msi; /* the SDK endpoint (status, stats); NULL: off */
	struct callback *callback; /* sign-in callback (status, stats); NULL */
	struct secmem *secmem;	   /* NULL when secrets are not locked */
	struct userdb *db;	   /* NSS lookups, off the loop */
	struct ident *ident; /* callers' sessions and cgroups (issue 14) */
	struct offboard *offboard; /* [offboarding]; NULL: not configured */
	uint64_t by_op[PROTO_OP_COUNT];
	uint64_t forbidden;
	uint64_t policy_refused; /* refusals of a workload policy */
};

/*
 * The server's request callback (server_request_cb); arg is a struct
 * dispatch. 0 with *out filled in, WAITER_PARKED, or -errno (waiter.h).
 */
int dispatch_request(void *arg, struct waiter *w,
    const struct proto_request *req, struct reply *out);

/*
 * admin_offboard again, once broker_load_user loaded its user's record
 * (a broker_resume_fn; main.c registers it with broker_set_offboard).
 */
int dispatch_offboard_resume(void *arg, struct waiter *w, struct reply *out);

#endif
