/*
 * flight.h - refreshing access tokens with the refresh token (DESIGN.md
 * §5, single flight and rotation). Every request for (user, scope) that
 * the cache cannot answer joins one flight; a user's flights run one at
 * a time, each with the newest refresh token; the rotated refresh token
 * is stored (compare-and-swap) before the new access token is handed
 * out, and the waiters are answered from the cache (tokens.c). Callers:
 * broker.c (token requests, logout, shutdown) and, through the broker's
 * refresh hook, tokens.c's proactive refresh.
 */
#ifndef CREDD_FLIGHT_H
#define CREDD_FLIGHT_H

struct broker;
struct user;
struct waiter;

/*
 * Queue a refresh of (u, scope), or join the one queued; w (may be
 * NULL: a proactive refresh) is parked on it and answered when it ends,
 * possibly before this returns. 0 or -ENOMEM.
 */
int flight_join(struct broker *b, struct user *u, const char *scope,
    struct waiter *w);
/*
 * The same for a claims challenge (claims: compact JSON from
 * cae_claims_parse; scope: a cache key, cae.h): its own flight per
 * (user, scope, claims), the grant sent with the claims parameter,
 * and on failure never the cached token. The caller checked the rate
 * (cae_marks_check). 0 or -ENOMEM.
 */
int flight_join_claims(struct broker *b, struct user *u, const char *scope,
    const char *claims, struct waiter *w);
/* 1 when a refresh of (u, scope, claims) is queued or running. */
int flight_pending(struct user *u, const char *scope, const char *claims);
/* End u's flights that have not started; their waiters get err and msg. */
void flight_end_queued(struct broker *b, struct user *u, int err,
    const char *msg);
/* Shutdown: free all of u's flights, their waiters unparked unanswered. */
void flight_free_all(struct broker *b, struct user *u);

#endif
