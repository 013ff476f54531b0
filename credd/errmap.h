/*
 * errmap.h - credd's one error space (STYLE.md "Errors"). Inside credd a
 * failure is a negative errno; this is the one place that names it for
 * a peer: the wire code of the socket protocol (docs/protocol.md §5),
 * the HTTP status the SDK endpoint answers with it (docs/sdk.md), and
 * the error reply itself. The IdP's error classes (oauth.h) map onto
 * the same errno values here too.
 *
 *   errno             wire code            HTTP
 *   -EACCES           forbidden            403
 *   -EBADMSG          bad_request          400
 *   -EMSGSIZE         too_large            500
 *   -EPROTONOSUPPORT  unsupported_version  500
 *   -EDOM             unknown_scope        400
 *   -ENOKEY           consent_required     401
 *   -EINPROGRESS      consent_pending      401
 *   -ECANCELED        consent_declined     401
 *   -EKEYREJECTED     account_mismatch     403
 *   -EKEYEXPIRED      reauth_required      401
 *   -EKEYREVOKED      reauth_required      401
 *   -EPERM            policy_blocked       403
 *   -EBUSY            rate_limited         429
 *   -EHOSTUNREACH     idp_unavailable      503
 *   -EREMOTEIO        idp_misconfigured    500
 *   -ECONNREFUSED     unavailable          503
 *   anything else     internal             500
 *
 * (too_large, unsupported_version and idp_misconfigured are 500 over
 * HTTP as they always were: the endpoint never produces the first two,
 * and the third is credd's fault, not the caller's.)
 *
 * Must never: put a token, a secret or a user-supplied string into a
 * message it composes, or abort on an allocation failure (a builder
 * returns NULL or -ENOMEM; errmap_nomem_line needs no memory at all).
 */
#ifndef CREDD_ERRMAP_H
#define CREDD_ERRMAP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct oauth_error;
struct reply;

/* Wire code for a negative errno ("internal" for any other value). */
const char *errmap_code(int err);
/* HTTP status for a wire code (500 for an unknown one). */
unsigned errmap_http_status(const char *code);
/*
 * {"ok":false,"error":{"code":errmap_code(err),"message":msg}}; for
 * "internal" the message names the cause, strerror(-err), for support.
 * msg NULL: "out of memory" for -ENOMEM, else "request failed". NULL on
 * ENOMEM.
 */
json_t *errmap_error(int err, const char *msg);
/* errmap_error as *out's answer: 0, or -ENOMEM (out left empty). */
int errmap_reply(struct reply *out, int err, const char *msg);
/*
 * The "internal: out of memory" answer as one protocol line, in static
 * memory, for a listener that could not build any reply: *len bytes,
 * the newline included.
 */
const char *errmap_nomem_line(size_t *len);

/* The errno of an IdP failure's class (REAUTH -EKEYEXPIRED, ...). */
int errmap_idp_errno(const struct oauth_error *err);
/*
 * The error reply for an IdP failure: a message by class, retry_after
 * for RETRY (the longer of Retry-After and the tenant-wide breaker
 * throttle_until, unix s, against now; at least 5), reason for POLICY, Entra's
 * trace_id and correlation_id when known. NULL on ENOMEM.
 */
json_t *errmap_idp_error(const struct oauth_error *err, int64_t throttle_until,
    int64_t now);

#endif
