/*
 * tokens.h - a user's access tokens in the cache (cache.h; DESIGN.md §5):
 * put a token the IdP just issued, with its refresh planned, and answer
 * a token request from the cache. Shared by flight.c (refreshes),
 * flow.c (a consent's first token) and broker.c (cache hits).
 *
 * The proactive refresh (refresh.c's plan; only for tokens used since
 * they were issued and within [limits] recent_use) starts through the
 * broker's refresh hook (b->refresh, flight_join), so this file calls
 * nothing above user.c.
 */
#ifndef CREDD_TOKENS_H
#define CREDD_TOKENS_H

struct broker;
struct user;
struct waiter;
struct cache_entry;
struct oauth_token;
struct reply;

/*
 * Cache tok's access token for (u, scope) (taken from tok; the rest of
 * tok stays the caller's), fingerprint it, plan its proactive refresh.
 * Out of memory: logged, nothing cached.
 */
void tokens_put(struct broker *b, struct user *u, const char *scope,
    struct oauth_token *tok);
/*
 * The token reply for (u, scope) from the cache: access_token,
 * token_type, expires_on, scope, account; audited once per token
 * (token_issued, with the fingerprint) for w's caller (u's uid when w is
 * NULL). An error reply when the entry vanished or does not unpack (it
 * is dropped). 0 with *out filled in, or -ENOMEM.
 */
int tokens_reply(struct broker *b, struct user *u, struct waiter *w,
    const char *scope, struct reply *out);
/* The same for e, the entry of (u, scope) the caller just looked up. */
int tokens_reply_entry(struct broker *b, struct user *u, struct waiter *w,
    struct cache_entry *e, const char *scope, struct reply *out);
/* (Re)arm e's proactive refresh timer for e->refresh_at. */
void tokens_arm(struct broker *b, struct cache_entry *e);

#endif
