/*
 * dispatch_int.h - what dispatch.c shares with its parts dispatch_bind.c
 * (the admin ops bind, unbind and bindings of issue 14) and
 * dispatch_offboard.c (admin_offboard, issue 17). Private to
 * credd/dispatch*.c.
 */
#ifndef CREDD_DISPATCH_INT_H
#define CREDD_DISPATCH_INT_H

#include "dispatch.h"
#include "entra/proto.h"
#include "reply.h"
#include "waiter.h"

/* As every op: 0 with *out filled in, WAITER_PARKED, or -errno. */
int dispatch_bind(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_unbind(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_bindings(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_admin_offboard(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);

#endif
