/*
 * cache.h - in-memory access tokens keyed by (user, scope).
 *
 * A hash table (a multiply-xorshift hash of user and scope, chained,
 * grows at load 1).
 * Tokens live here only, packed by tokpack.h (a JWT in about a third of
 * its text), wiped on replace and evict; scopes and token types are
 * interned, user names borrowed, so an entry costs about 100 bytes
 * besides its token.
 * Entries also carry the refresh plan (refresh_at) and last use, which
 * the broker reads to decide proactive refreshes. Nothing is persisted.
 */
#ifndef CREDD_CACHE_H
#define CREDD_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct secret;
struct event_timer;
struct tokblob;
struct reply_line;

#define CACHE_TOKEN_TYPE_MAX 31 /* longer token types are cut */

struct cache_entry {
	struct cache_entry *next;  /* hash chain, private */
	uint64_t hash;		   /* of (user, scope), private */
	const char *user;	   /* the caller's string: outlives the entry */
	const char *scope;	   /* interned by the cache */
	const char *token_type;	   /* interned; "" if none */
	struct tokblob *token;	   /* the access token, packed (tokpack.h) */
	int64_t issued_at;	   /* unix seconds */
	int64_t expires_on;	   /* unix seconds */
	int64_t refresh_at;	   /* unix seconds: proactive refresh due */
	int64_t last_used;	   /* unix seconds */
	struct event_timer *timer; /* owned by the broker (proactive refresh) */
	void *owner; /* the broker's, for that timer (set after a put) */
	struct reply_line *line; /* this token's reply, pre-serialized, or
				  * NULL (cache_line_keep; read-only here) */
	uint32_t line_slot;	 /* private: its place in the line ring */
	char fp[9];		 /* fingerprint of the access token */
	char audited;	/* token_issued already audited for this token */
	char line_used; /* line served since the clock last passed */
};

struct cache;

struct cache *cache_new(void);
/* Frees every entry (wiping tokens). Timers must be cancelled first by the owner. */
void cache_free(struct cache *c);

/* Entry or NULL. */
struct cache_entry *cache_get(struct cache *c, const char *user,
    const char *scope);
/*
 * Insert or replace the token for (user, scope). user is not copied: it
 * must stay valid until the entry is deleted (the broker passes its
 * users' names, which live as long as the broker). tok is packed and
 * freed (wiped); the caller's pointer is set to NULL. Returns the entry
 * or NULL on ENOMEM. A replaced entry keeps its timer and last_used.
 */
struct cache_entry *cache_put(struct cache *c, const char *user,
    const char *scope, struct secret **tok, const char *token_type,
    int64_t issued_at, int64_t expires_on, int64_t refresh_at);
/* Remove one entry (its timer must already be cancelled). */
void cache_del(struct cache *c, struct cache_entry *e);

/* Call fn for each entry of user (fn may not delete). */
void cache_foreach_user(struct cache *c, const char *user,
    void (*fn)(struct cache_entry *e, void *arg), void *arg);
/* Call fn for every entry; fn may cache_del the entry it is given. */
void cache_foreach(struct cache *c,
    void (*fn)(struct cache_entry *e, void *arg), void *arg);
size_t cache_count(const struct cache *c);

/* Length of e's access token. */
size_t cache_token_len(const struct cache_entry *e);
/*
 * Write e's access token into out[0..outsz) (no NUL); the caller wipes
 * out after use. Returns its length, or -EMSGSIZE (outsz too small),
 * -EBADMSG (corrupt entry) or -EINVAL (no entry or token).
 */
ssize_t cache_token(struct cache *c, const struct cache_entry *e, char *out,
    size_t outsz);

/*
 * Pre-serialized replies (tokens.c builds them; reply.h's reply_line).
 * A line belongs to its entry's token: it is dropped (the cache's
 * reference; wiped with the last) whenever the token is replaced or the
 * entry deleted, like the token itself. Lines are kept within a byte
 * budget (sizeof(struct reply_line) + cap each): when a new one needs
 * room, lines not served since the clock hand last passed them go first
 * (CLOCK, a cheap approximation of least recently used; a line served
 * again sets e->line_used; a new line goes in behind the hand, so it is
 * judged only after a full turn).
 */
/* The budget in bytes (default CACHE_LINE_BUDGET); lines over it go now. */
void cache_line_budget(struct cache *c, size_t bytes);
/*
 * Keep l as e's line (the cache takes a new reference; e's old line is
 * dropped). Returns 1, or 0 when l alone is over the budget (not kept).
 */
int cache_line_keep(struct cache *c, struct cache_entry *e,
    struct reply_line *l);
/* Drop e's line, if any. */
void cache_line_drop(struct cache *c, struct cache_entry *e);
/* Drop the lines of entries last used before `before` (unix s); how many. */
size_t cache_line_sweep(struct cache *c, int64_t before);
/* Lines kept, and the bytes they count against the budget. */
size_t cache_line_count(const struct cache *c);
size_t cache_line_bytes(const struct cache *c);

#define CACHE_LINE_BUDGET (8u * 1024 * 1024)

/*
 * Is the entry good for a caller wanting min_valid seconds? The
 * effective min_valid is capped at half the token's lifetime
 * (expires_on - issued_at), so short test tokens are not refreshed on
 * every request: fresh iff expires_on - now >= min(min_valid, lifetime/2)
 * and expires_on > now.
 */
int cache_is_fresh(const struct cache_entry *e, int64_t now, int64_t min_valid);

#endif
