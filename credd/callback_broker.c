/*
 * callback_broker.c - the sign-in callback's ops onto the broker (see
 * callback_broker.h): a short link's authorize URL through
 * broker_signin_link, a callback's code or error through
 * broker_signin_redeem.
 *
 * Must never: hold state, or touch what it forwards.
 */
#include <errno.h>
#include <stddef.h>

#include "broker.h"
#include "callback.h"
#include "callback_broker.h"

static int
link_op(void *ctx, const char *id, char **url, callback_link_cb *cb, void *arg)
{
	return broker_signin_link(ctx, id, url, cb, arg);
}

static int
redeem_op(void *ctx, const char *state, const struct secret *code,
    const char *err, const char *err_desc, const char *iss,
    callback_done_cb *cb, void *arg)
{
	if (iss != NULL && !broker_signin_iss_ok(ctx, iss))
		return -EPROTO;
	return broker_signin_redeem(ctx, state, code, err, err_desc, cb, arg);
}

static const struct callback_ops broker_ops = { link_op, redeem_op };

const struct callback_ops *
callback_broker_ops(void)
{
	return &broker_ops;
}
