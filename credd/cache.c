/*
 * cache.c - the in-memory access-token table behind cache.h.
 *
 * A chained hash table keyed by a multiply-xorshift hash over user and
 * scope, 8 bytes at a time (FNV-1a's byte loop was a fifth of a cache
 * hit's instructions). The bucket
 * count is a power of two and doubles when the entry count would pass
 * it (load factor 1); if that allocation fails the table keeps working
 * with longer chains. Tokens are held only as tokpack blobs (one
 * tokpack context per cache), wiped whenever an entry's token is
 * replaced or the entry is removed; the struct secret a put hands in is
 * freed (wiped) at once. Scopes and token types are interned in a
 * refcounted list (a node has a handful of each); user names are the
 * caller's. This file never logs and never reads a token's claims: every
 * put leaves fp empty and audited 0 for the broker to fill in. A new
 * entry starts with last_used 0 and no timer.
 *
 * An entry may also hold its token's reply as a pre-serialized line
 * (cache.h): the same wipe discipline applies, and lines are kept within
 * a byte budget, CLOCK deciding which go when room is needed (O(1)
 * amortized per kept line; a ring of pointers to the entries that hold
 * one, each entry knowing its slot).
 *
 * Limits: cache_foreach_user walks the whole table (O(entries + buckets));
 * it serves logout and purges, which are rare. The table never shrinks.
 * Interning is a linear list: fine for configured scopes, slow if a node
 * ever held thousands of distinct ones.
 * The hash is not keyed, so a peer who picks many colliding (user, scope)
 * pairs can lengthen a chain; users are local accounts, and callers
 * should accept only configured scopes, which bounds that.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "entra/secret.h"
#include "cache.h"
#include "reply.h"
#include "tokpack.h"

#define CACHE_BUCKETS_MIN 64

/* An interned string: scopes and token types. */
struct cache_str {
	struct cache_str *next;
	size_t refs;
	char s[];
};

struct cache {
	struct cache_entry **b;
	size_t nb; /* power of two */
	size_t n;
	unsigned iterating; /* >0 inside cache_foreach: no rehash */
	struct tokpack *tp;
	struct cache_str *strs;
	/* Entries holding a line, in no order: the CLOCK ring. */
	struct cache_entry **ring;
	size_t nring, capring, hand;
	size_t line_bytes, line_budget;
};

/* A reference to the interned copy of s[0..len); NULL on ENOMEM. */
static const char *
str_get(struct cache *c, const char *s, size_t len)
{
	struct cache_str *cs;

	for (cs = c->strs; cs != NULL; cs = cs->next)
		if (strncmp(cs->s, s, len) == 0 && cs->s[len] == '\0') {
			cs->refs++;
			return cs->s;
		}
	cs = malloc(sizeof(*cs) + len + 1);
	if (cs == NULL)
		return NULL;
	memcpy(cs->s, s, len);
	cs->s[len] = '\0';
	cs->refs = 1;
	cs->next = c->strs;
	c->strs = cs;
	return cs->s;
}

static void
str_put(struct cache *c, const char *s)
{
	struct cache_str **pp, *cs;

	if (s == NULL)
		return;
	for (pp = &c->strs; (cs = *pp) != NULL; pp = &cs->next)
		if (cs->s == s) {
			if (--cs->refs == 0) {
				*pp = cs->next;
				free(cs);
			}
			return;
		}
}

/* One step: fold in 8 bytes, multiply, fold the high bits down. */
static uint64_t
hash_step(uint64_t h, uint64_t w)
{
	h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
	return h ^ (h >> 29);
}

/* s[0..len) 8 bytes at a time (a cache hit hashes twice per request). */
static uint64_t
hash_bytes(uint64_t h, const char *s, size_t len)
{
	uint64_t w;

	for (; len >= 8; s += 8, len -= 8) {
		memcpy(&w, s, 8);
		h = hash_step(h, w);
	}
	w = 0;
	memcpy(&w, s, len);
	return hash_step(h, w ^ ((uint64_t)len << 56));
}

static uint64_t
cache_hash(const char *user, const char *scope)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	h = hash_bytes(h, user, strlen(user));
	h = hash_bytes(h, scope, strlen(scope)); /* lengths keep them apart */
	return h ^ (h >> 32);
}

static size_t
line_cost(const struct reply_line *l)
{
	return sizeof(*l) + l->cap;
}

void
cache_line_drop(struct cache *c, struct cache_entry *e)
{
	size_t i;

	if (c == NULL || e == NULL || e->line == NULL)
		return;
	i = e->line_slot;
	c->line_bytes -= line_cost(e->line);
	reply_line_unref(e->line); /* the last reference wipes it */
	e->line = NULL;
	e->line_used = 0;
	/* Swap-remove from the ring (O(1); the order is CLOCK's only). */
	c->ring[i] = c->ring[--c->nring];
	c->ring[i]->line_slot = (uint32_t)i;
	if (c->hand >= c->nring)
		c->hand = 0;
}

static void
entry_free(struct cache *c, struct cache_entry *e)
{
	if (e == NULL)
		return;
	cache_line_drop(c, e);
	tokpack_blob_free(c->tp, e->token);
	str_put(c, e->scope);
	str_put(c, e->token_type);
	free(e);
}

struct cache *
cache_new(void)
{
	struct cache *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->b = calloc(CACHE_BUCKETS_MIN, sizeof(*c->b));
	c->tp = tokpack_new();
	if (c->b == NULL || c->tp == NULL) {
		tokpack_free(c->tp);
		free(c->b);
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->nb = CACHE_BUCKETS_MIN;
	c->line_budget = CACHE_LINE_BUDGET;
	return c;
}

void
cache_free(struct cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nb; i++) {
		struct cache_entry *e = c->b[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			entry_free(c, e);
		}
	}
	free(c->b);
	free(c->ring);
	tokpack_free(c->tp);
	free(c);
}

struct cache_entry *
cache_get(struct cache *c, const char *user, const char *scope)
{
	struct cache_entry *e;
	uint64_t h;

	if (c == NULL || user == NULL || scope == NULL)
		return NULL;
	h = cache_hash(user, scope);
	/* The hash first: a chain is walked without reading its strings,
	 * and the broker's own name pointer saves reading the entry's. */
	for (e = c->b[h & (c->nb - 1)]; e != NULL; e = e->next)
		if (e->hash == h &&
		    (e->user == user || strcmp(e->user, user) == 0) &&
		    (e->scope == scope || strcmp(e->scope, scope) == 0))
			return e;
	return NULL;
}

/* Double the bucket array; on ENOMEM keep the old one (longer chains). */
static void
cache_grow(struct cache *c)
{
	size_t nnb = c->nb * 2, i;
	struct cache_entry **nb;

	if (nnb < c->nb || c->iterating > 0)
		return;
	nb = calloc(nnb, sizeof(*nb));
	if (nb == NULL)
		return;
	for (i = 0; i < c->nb; i++) {
		struct cache_entry *e = c->b[i], *next;

		for (; e != NULL; e = next) {
			size_t j = (size_t)(e->hash & (nnb - 1));

			next = e->next;
			e->next = nb[j];
			nb[j] = e;
		}
	}
	free(c->b);
	c->b = nb;
	c->nb = nnb;
}

/*
 * Pack *tok for e (taking and wiping it) and fill the token fields. Timer
 * and last_used are not touched: a replaced entry keeps them. 0, or
 * -ENOMEM with e unchanged.
 */
static int
entry_set_token(struct cache *c, struct cache_entry *e, struct secret **tok,
    const char *token_type, int64_t issued_at, int64_t expires_on,
    int64_t refresh_at)
{
	struct tokblob *blob;
	const char *type;
	size_t n = 0;

	if (token_type != NULL)
		n = strnlen(token_type, CACHE_TOKEN_TYPE_MAX);
	blob = tokpack_pack(c->tp, e->scope, (*tok)->ptr, (*tok)->len);
	secret_free(*tok);
	*tok = NULL; /* taken */
	type = blob != NULL ? str_get(c, n > 0 ? token_type : "", n) : NULL;
	if (type == NULL) {
		tokpack_blob_free(c->tp, blob);
		return -ENOMEM;
	}
	cache_line_drop(c, e); /* the old token's reply */
	tokpack_blob_free(c->tp, e->token);
	str_put(c, e->token_type);
	e->token = blob;
	e->token_type = type;
	e->fp[0] = '\0'; /* new token: the broker fingerprints it */
	e->audited = 0;
	e->issued_at = issued_at;
	e->expires_on = expires_on;
	e->refresh_at = refresh_at;
	return 0;
}

struct cache_entry *
cache_put(struct cache *c, const char *user, const char *scope,
    struct secret **tok, const char *token_type, int64_t issued_at,
    int64_t expires_on, int64_t refresh_at)
{
	struct cache_entry *e;
	size_t i;

	if (c == NULL || user == NULL || scope == NULL || tok == NULL ||
	    *tok == NULL) {
		if (tok != NULL) {
			secret_free(*tok);
			*tok = NULL;
		}
		errno = EINVAL;
		return NULL;
	}
	e = cache_get(c, user, scope);
	if (e != NULL) {
		if (entry_set_token(c, e, tok, token_type, issued_at,
			expires_on, refresh_at) < 0) {
			errno = ENOMEM;
			return NULL;
		}
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		goto nomem;
	e->user = user;
	e->hash = cache_hash(user, scope);
	e->scope = str_get(c, scope, strlen(scope));
	if (e->scope == NULL)
		goto nomem;
	if (entry_set_token(c, e, tok, token_type, issued_at, expires_on,
		refresh_at) < 0) {
		entry_free(c, e);
		errno = ENOMEM;
		return NULL;
	}
	if (c->n + 1 > c->nb)
		cache_grow(c);
	i = (size_t)(e->hash & (c->nb - 1));
	e->next = c->b[i];
	c->b[i] = e;
	c->n++;
	return e;
nomem:
	entry_free(c, e);
	secret_free(*tok);
	*tok = NULL;
	errno = ENOMEM;
	return NULL;
}

void
cache_del(struct cache *c, struct cache_entry *e)
{
	struct cache_entry **pp;

	if (c == NULL || e == NULL)
		return;
	for (pp = &c->b[e->hash & (c->nb - 1)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			c->n--;
			entry_free(c, e);
			return;
		}
	}
	/* Not ours: leave it alone rather than free a stranger. */
}

void
cache_foreach_user(struct cache *c, const char *user,
    void (*fn)(struct cache_entry *e, void *arg), void *arg)
{
	size_t i;

	if (c == NULL || user == NULL)
		return;
	for (i = 0; i < c->nb; i++) {
		struct cache_entry *e;

		for (e = c->b[i]; e != NULL; e = e->next)
			if (strcmp(e->user, user) == 0)
				fn(e, arg);
	}
}

void
cache_foreach(struct cache *c, void (*fn)(struct cache_entry *e, void *arg),
    void *arg)
{
	size_t i;

	if (c == NULL)
		return;
	c->iterating++;
	for (i = 0; i < c->nb; i++) {
		struct cache_entry *e = c->b[i], *next;

		for (; e != NULL; e = next) {
			next = e->next; /* fn may delete e */
			fn(e, arg);
		}
	}
	c->iterating--;
}

size_t
cache_count(const struct cache *c)
{
	return c == NULL ? 0 : c->n;
}

/* ---- pre-serialized replies ---- */

/*
 * Drop lines, oldest unused first, until need more bytes fit. A drop
 * swap-removes: the ring's last entry, most often the newest line, moves
 * into the victim's slot, so the hand steps past it; judged at once, it
 * would be the next victim, and with the budget full every line kept
 * would go at the next keep while unused old lines stayed (issue 16: at
 * 4096 connections over 10 000 users, credd rebuilt a line per request).
 */
static void
line_make_room(struct cache *c, size_t need)
{
	struct cache_entry *e;
	bool is_moved;

	while (c->nring > 0 && c->line_bytes + need > c->line_budget) {
		e = c->ring[c->hand];
		if (e->line_used) {
			e->line_used = 0; /* a second chance */
			c->hand = (c->hand + 1) % c->nring;
			continue;
		}
		is_moved = c->hand + 1 < c->nring;
		cache_line_drop(c, e); /* the last moves to hand */
		if (is_moved)
			c->hand = (c->hand + 1) % c->nring;
	}
}

/*
 * Append e to the ring just behind the hand (CLOCK's insertion): a new
 * line is judged last, after one full turn, like a page brought in.
 */
static void
ring_insert(struct cache *c, struct cache_entry *e)
{
	struct cache_entry *o;
	size_t h = c->hand;

	e->line_slot = (uint32_t)c->nring;
	c->ring[c->nring++] = e;
	if (c->nring == 1 || h >= c->nring - 1)
		return;
	o = c->ring[h]; /* to the end: judged later, never skipped */
	c->ring[h] = e;
	e->line_slot = (uint32_t)h;
	c->ring[c->nring - 1] = o;
	o->line_slot = (uint32_t)(c->nring - 1);
	c->hand = (h + 1) % c->nring;
}

void
cache_line_budget(struct cache *c, size_t bytes)
{
	if (c == NULL)
		return;
	c->line_budget = bytes;
	line_make_room(c, 0);
}

int
cache_line_keep(struct cache *c, struct cache_entry *e, struct reply_line *l)
{
	size_t need;

	if (c == NULL || e == NULL || l == NULL)
		return 0;
	cache_line_drop(c, e);
	need = line_cost(l);
	if (need > c->line_budget || c->nring >= UINT32_MAX)
		return 0;
	line_make_room(c, need);
	if (c->nring == c->capring) {
		size_t ncap = c->capring ? c->capring * 2 : 64;
		struct cache_entry **nr =
		    reallocarray(c->ring, ncap, sizeof(*nr));

		if (nr == NULL)
			return 0;
		c->ring = nr;
		c->capring = ncap;
	}
	e->line = reply_line_ref(l);
	e->line_used = 0; /* earns its place by being served again */
	ring_insert(c, e);
	c->line_bytes += need;
	return 1;
}

size_t
cache_line_sweep(struct cache *c, int64_t before)
{
	size_t i, n = 0;

	if (c == NULL)
		return 0;
	/* Downwards: a swap-remove brings in an entry already looked at. */
	for (i = c->nring; i-- > 0;) {
		if (c->ring[i]->last_used < before) {
			cache_line_drop(c, c->ring[i]);
			n++;
		}
	}
	return n;
}

size_t
cache_line_count(const struct cache *c)
{
	return c == NULL ? 0 : c->nring;
}

size_t
cache_line_bytes(const struct cache *c)
{
	return c == NULL ? 0 : c->line_bytes;
}

int
cache_is_fresh(const struct cache_entry *e, int64_t now, int64_t min_valid)
{
	int64_t lifetime, want;

	if (e == NULL || e->token == NULL || e->expires_on <= now)
		return 0;
	lifetime = e->expires_on - e->issued_at;
	want = min_valid;
	if (lifetime / 2 < want)
		want = lifetime / 2;
	return e->expires_on - now >= want;
}

size_t
cache_token_len(const struct cache_entry *e)
{
	return e == NULL || e->token == NULL ? 0 : tokpack_len(e->token);
}

ssize_t
cache_token(struct cache *c, const struct cache_entry *e, char *out,
    size_t outsz)
{
	if (c == NULL || e == NULL || e->token == NULL)
		return -EINVAL;
	return tokpack_unpack(c->tp, e->token, out, outsz);
}
