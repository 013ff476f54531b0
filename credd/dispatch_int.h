/*
 * dispatch_int.h - what dispatch.c shares with its parts dispatch_bind.c
 * (the admin ops bind, unbind and bindings of issue 14),
 * dispatch_offboard.c (admin_offboard, issue 17) and dispatch_session.c
 * (session_open, session_close, sdk_env). Private to credd/dispatch*.c.
 */
#ifndef CREDD_DISPATCH_INT_H
#define CREDD_DISPATCH_INT_H

#include "dispatch.h"
#include "entra/proto.h"
#include "reply.h"
#include "waiter.h"

/* The answer when the caller's uid has no name (w->caller->user NULL). */
int dispatch_no_own_user(const struct waiter *w, struct reply *out);
/*
 * A workload policy refused (issue 14): audited with the caller's kind
 * and session, the policy line as the reason; answered -EACCES with why.
 */
int dispatch_policy_refusal(struct dispatch *d, struct waiter *w, int kind,
    const char *session, const char *scope, const char *why, struct reply *out);

/* The workload kind a request names (default when none), or -1. */
int dispatch_request_kind(const struct proto_request *req);
#define DISPATCH_UNKNOWN_WORKLOAD                                              \
	"unknown workload; credd knows default, workspace, job, "              \
	"scheduled and app ([workload.NAME] in credd.conf)"
/* A name lookup for an op that failed (result < 0): the answer in *out. */
int dispatch_lookup_failed(int result, struct reply *out);

/* As every op: 0 with *out filled in, WAITER_PARKED, or -errno. */
int dispatch_bind(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_unbind(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_bindings(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_admin_offboard(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
/* dispatch_session.c */
int dispatch_session_open(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_session_close(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);
int dispatch_sdk_env(struct dispatch *d, struct waiter *w,
    const struct proto_request *req, struct reply *out);

#endif
