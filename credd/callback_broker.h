/*
 * callback_broker.h - the sign-in callback listener's ops (callback.h)
 * onto the broker's sign-in entry points, broker_signin_link and
 * broker_signin_redeem (issue 13's flows).
 *
 * Must never: add behaviour of its own; it only forwards.
 */
#ifndef CREDD_CALLBACK_BROKER_H
#define CREDD_CALLBACK_BROKER_H

struct callback_ops;

/* The ops (their ctx is the struct broker *); never NULL. */
const struct callback_ops *callback_broker_ops(void);

#endif
