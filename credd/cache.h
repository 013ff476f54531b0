/*
 * cache.h - in-memory access tokens keyed by (user, scope).
 *
 * A hash table (FNV-1a over "user\0scope", chained, grows at load 1).
 * Tokens live here only, in struct secret, wiped on replace and evict.
 * Entries also carry the refresh plan (refresh_at) and last use, which
 * the broker reads to decide proactive refreshes. Nothing is persisted.
 */
#ifndef CREDD_CACHE_H
#define CREDD_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct secret;
struct event_timer;

struct cache_entry {
	char *user;
	char *scope;
	struct secret *access_token;
	char token_type[32];
	char fp[9];		  /* fingerprint of access_token */
	int64_t issued_at;	  /* unix seconds */
	int64_t expires_on;	  /* unix seconds */
	int64_t refresh_at;	  /* unix seconds: proactive refresh due */
	int64_t last_used;	  /* unix seconds */
	int audited;		  /* token_issued already audited for this token */
	struct event_timer *timer; /* owned by the broker (proactive refresh) */
	struct cache_entry *next;  /* hash chain, private */
};

struct cache;

struct cache *cache_new(void);
/* Frees every entry (wiping tokens). Timers must be cancelled first by the owner. */
void cache_free(struct cache *c);

/* Entry or NULL. */
struct cache_entry *cache_get(struct cache *c, const char *user, const char *scope);
/*
 * Insert or replace the token for (user, scope). tok is transferred
 * (caller's pointer is set to NULL). Returns the entry or NULL on ENOMEM
 * (tok is freed then). A replaced entry keeps its timer and last_used.
 */
struct cache_entry *cache_put(struct cache *c, const char *user, const char *scope,
    struct secret **tok, const char *token_type, int64_t issued_at,
    int64_t expires_on, int64_t refresh_at);
/* Remove one entry (its timer must already be cancelled). */
void cache_del(struct cache *c, struct cache_entry *e);

/* Call fn for each entry of user (fn may not delete). */
void cache_foreach_user(struct cache *c, const char *user,
    void (*fn)(struct cache_entry *e, void *arg), void *arg);
/* Call fn for every entry; fn may cache_del the entry it is given. */
void cache_foreach(struct cache *c, void (*fn)(struct cache_entry *e, void *arg), void *arg);
size_t cache_count(const struct cache *c);

/*
 * Is the entry good for a caller wanting min_valid seconds? The
 * effective min_valid is capped at half the token's lifetime
 * (expires_on - issued_at), so short test tokens are not refreshed on
 * every request: fresh iff expires_on - now >= min(min_valid, lifetime/2)
 * and expires_on > now.
 */
int cache_is_fresh(const struct cache_entry *e, int64_t now, int64_t min_valid);

#endif
