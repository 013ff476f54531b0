/*
 * apptoken.h - the platform's own app tokens (issue 14, identity = app):
 * one small cache per scope for the app identity, got through the IdP's
 * client credentials grant (idp.h) with the configured [entra]
 * client_auth credential. A part of the broker (broker_int.h).
 *
 * Must never: tie an app token to a user or hand it to a caller whose
 * workload policy did not ask for it (broker.c decides), write it to the
 * store, or log or audit it (fingerprints only).
 */
#ifndef CREDD_APPTOKEN_H
#define CREDD_APPTOKEN_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct waiter;
struct reply;

/*
 * The app token for scope (the full string) for w, valid for min_valid
 * s more when it can be: 0 with out filled (from the cache), or
 * WAITER_PARKED (one grant per scope in flight, shared; answered
 * through waiter_reply), or -errno. A token past its planned refresh is
 * served while one grant renews it in the background.
 */
int apptoken_get(struct broker *b, struct waiter *w, const char *scope,
    int64_t min_valid, struct reply *out);
/* App tokens cached (stats). */
size_t apptoken_count(const struct broker *b);
/* Cancel every grant, answer its waiters, wipe every token. */
void apptoken_free_all(struct broker *b);

#endif
