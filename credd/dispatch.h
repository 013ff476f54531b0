/*
 * dispatch.h - the method table: which op, which caller may call it,
 * which handler answers. The one place that turns negative errno values
 * into wire error names (docs/protocol.md):
 *
 *   -EACCES forbidden            -EBADMSG bad_request
 *   -EMSGSIZE too_large          -EPROTONOSUPPORT unsupported_version
 *   -EDOM unknown_scope          -ENOKEY consent_required
 *   -EINPROGRESS consent_pending -ECANCELED consent_declined
 *   -EKEYREJECTED account_mismatch
 *   -EKEYEXPIRED / -EKEYREVOKED reauth_required
 *   -EPERM policy_blocked        -EBUSY rate_limited
 *   -EHOSTUNREACH idp_unavailable -EREMOTEIO idp_misconfigured
 *   -ECONNREFUSED unavailable    anything else: internal
 */
#ifndef CREDD_DISPATCH_H
#define CREDD_DISPATCH_H

#include <jansson.h>

#include "entra/proto.h"
#include "server.h"

struct broker;
struct sessions;
struct userdb;
struct config;
struct msi;
struct secmem;

struct dispatch {
	struct broker *broker;
	struct sessions *sessions;
	const struct config *cf;
	struct server *server;
	struct msi *msi;	/* the SDK endpoint (status, stats); NULL: off */
	struct secmem *secmem;	/* NULL when secrets are not locked */
	struct userdb *db;	/* NSS lookups, off the loop */
	uint64_t by_op[PROTO_OP_COUNT];
	uint64_t forbidden;
};

/* The server's request callback; arg is a struct dispatch. */
json_t *dispatch_request(void *arg, struct waiter *w, const struct proto_request *req);

/* Wire error name for a negative errno. */
const char *dispatch_error_code(int err);
/* {"ok":false,"error":{"code":dispatch_error_code(err),"message":msg}}. */
json_t *dispatch_error(int err, const char *msg);

#endif
