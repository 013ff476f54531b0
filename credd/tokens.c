/*
 * tokens.c - a user's access tokens in the cache (see tokens.h): a token
 * the IdP issued is put there with its fingerprint and its proactive
 * refresh planned (refresh.c); a request is answered from there.
 *
 * The answer is a line built once per token: the first time a token is
 * served it is unpacked into one buffer (wiped right after) and the
 * reply is written as bytes by proto_lite_token_line (no JSON encoder;
 * the same bytes proto_encode would write, which the unit tests and
 * fuzz_proto check), kept in the cache beside the packed token
 * (cache_line_keep: a byte budget, least recently served first out) and
 * shared by every later reply for that token, checked only for the
 * account. A reply whose strings need JSON escapes (a non-ASCII account
 * or scope) takes the JSON path every time instead. Lines of tokens not
 * served for TOKENS_LINE_IDLE go (a sweep), like lines of replaced or
 * deleted tokens (cache.c).
 *
 * Must never: log or audit a token (fingerprints only), hand a token to
 * anyone but the user it was issued to (every lookup is keyed by the
 * user's own name), or call up into flight.c: a planned refresh starts
 * through the broker's refresh hook.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "entra/proto.h"
#include "entra/secret.h"
#include "entra/util.h"

#include "audit.h"
#include "broker_int.h"
#include "cache.h"
#include "cae.h"
#include "clock.h"
#include "config.h"
#include "errmap.h"
#include "event.h"
#include "log.h"
#include "memtrim.h"
#include "oauth.h"
#include "refresh.h"
#include "reply.h"
#include "tokens.h"
#include "user.h"

/* Lines (pre-serialized replies) not served for this long are let go. */
#define TOKENS_LINE_IDLE 30 /* seconds */

static void proactive_cb(struct event_loop *ev, void *arg);

/* ---- a token the IdP issued ---- */

void
tokens_put(struct broker *b, struct user *u, const char *scope,
    struct oauth_token *tok)
{
	struct cache_entry *e;
	int64_t now = clock_now(b->clk);
	int64_t due;
	char fp[9];

	audit_fingerprint(tok->access_token, fp);
	due = refresh_due(now, tok->expires_in, tok->refresh_in,
	    randombytes_random());
	e = cache_put(b->cache, u->name, scope, &tok->access_token,
	    tok->token_type[0] ? tok->token_type : "Bearer", now,
	    now + tok->expires_in, due);
	if (e == NULL) {
		log_warnx("user \"%s\": out of memory caching a token",
		    u->name);
		return;
	}
	memcpy(e->fp, fp, sizeof(fp));
	e->audited = 0;
	e->owner = u; /* the proactive timer's way back */
	memtrim_note(b->trim, 1);
	tokens_arm(b, e);
}

/* ---- a token request answered from the cache ---- */

/*
 * A kept line carries, after its bytes, the account it was made for:
 * one byte (0: null, 1: a string follows) and the string with its NUL.
 * Everything else in the reply is fixed for the life of the token (its
 * bytes, type and expiry; the scope is the cache key), so the account is
 * the one thing that is checked on every hit.
 */
static int
line_is_for(const struct reply_line *l, const char *account)
{
	const char *p = l->bytes + l->len;

	if (account == NULL)
		return p[0] == 0;
	return p[0] == 1 && strcmp(p + 1, account) == 0;
}

/* Arm the sweep that lets idle lines go (they hold memory and a token). */
static void
line_sweep_cb(struct event_loop *ev, void *arg)
{
	struct broker *b = arg;
	size_t n;

	b->line_sweep = NULL;
	n = cache_line_sweep(b->cache, clock_now(b->clk) - TOKENS_LINE_IDLE);
	if (n > 0)
		memtrim_note(b->trim, n);
	if (cache_line_count(b->cache) > 0)
		b->line_sweep = clock_timer_in(b->clk, TOKENS_LINE_IDLE * 1000,
		    line_sweep_cb, b);
}

/*
 * e's token unpacked into b->tokbuf (the caller wipes it): its length,
 * -ENOMEM, or -EIO when it does not unpack (e is dropped, logged).
 */
static ssize_t
token_unpack(struct broker *b, struct user *u, struct cache_entry *e)
{
	size_t len = cache_token_len(e);
	ssize_t n;

	if (len > b->tokbuf_len) {
		char *nb = malloc(len);

		if (nb == NULL)
			return -ENOMEM;
		free(b->tokbuf); /* wiped after every use */
		b->tokbuf = nb;
		b->tokbuf_len = len;
	}
	n = cache_token(b->cache, e, b->tokbuf, b->tokbuf_len);
	if (n < 0) {
		log_warnx("user \"%s\": a cached token does not unpack (%s); "
			  "dropping it",
		    u->name, strerror((int)-n));
		clock_timer_cancel(b->clk, &e->timer);
		cache_del(b->cache, e);
		return -EIO;
	}
	return n;
}

/*
 * e's reply line from its token (b->tokbuf[0..n)), kept in the cache
 * and served through *out: 1; 0 when a string needs JSON escapes (the
 * JSON path serves it); -ENOMEM.
 */
static int
line_make(struct broker *b, struct cache_entry *e, size_t n, const char *scope,
    const char *account, struct reply *out)
{
	size_t llen, alen;
	struct reply_line *l;

	llen = proto_lite_token_line_len(b->tokbuf, n, e->token_type,
	    e->expires_on, scope, account);
	if (llen == 0)
		return 0;
	alen = account != NULL ? strlen(account) + 1 : 0;
	l = reply_line_new(llen + 1 + alen);
	if (l == NULL)
		return -ENOMEM;
	(void)proto_lite_token_line(l->bytes, llen, b->tokbuf, n, e->token_type,
	    e->expires_on, scope, account);
	l->len = llen;
	l->bytes[llen] = account != NULL;
	if (account != NULL)
		memcpy(l->bytes + llen + 1, account, alen);
	if (cache_line_keep(b->cache, e, l) && b->line_sweep == NULL)
		b->line_sweep = clock_timer_in(b->clk, TOKENS_LINE_IDLE * 1000,
		    line_sweep_cb, b);
	(void)reply_set_line(out, l);
	reply_line_unref(l); /* the cache's and the reply's remain */
	return 1;
}

int
tokens_reply(struct broker *b, struct user *u, struct waiter *w,
    const char *scope, struct reply *out)
{
	struct cache_entry *e = cache_get(b->cache, u->name, scope);

	if (e == NULL)
		return errmap_reply(out, -EIO, "token vanished from the cache");
	return tokens_reply_entry(b, u, w, e, scope, out);
}

int
tokens_reply_entry(struct broker *b, struct user *u, struct waiter *w,
    struct cache_entry *e, const char *scope, struct reply *out)
{
	const char *account = user_account(u);
	char base[PROTO_STR_MAX + 8];
	json_t *resp;
	ssize_t n;
	int r;

	/* A CAE key (cae.h) answers with its scope. */
	if (cae_key_split(scope, base, sizeof(base)) == 1)
		scope = base;

	if (e->line != NULL && line_is_for(e->line, account)) {
		/* The bytes built when this token was first served. */
		e->line_used = 1;
		(void)reply_set_line(out, e->line);
	} else {
		cache_line_drop(b->cache, e); /* made for another account */
		n = token_unpack(b, u, e);
		if (n == -EIO)
			return errmap_reply(out, -EIO,
			    "the cached token was "
			    "damaged; ask again");
		if (n < 0)
			return (int)n;
		r = line_make(b, e, (size_t)n, scope, account, out);
		if (r == 0) {
			/* Escapes needed: the object, encoded by the listener.
			 * The IdP's token was checked as UTF-8 when parsed. */
			resp = proto_token_reply(b->tokbuf, (size_t)n,
			    e->token_type, e->expires_on, scope, account);
			r = reply_set_json(out, resp);
		}
		sodium_memzero(b->tokbuf, (size_t)n);
		if (r < 0)
			return r;
	}
	e->last_used = clock_now(b->clk);
	if (!e->audited) {
		/* Audited once per token handed to this user, not per cache hit. */
		e->audited = 1;
		user_audit("token_issued", u,
		    w != NULL ? w->caller->uid : u->uid, "token", scope, "ok",
		    NULL, e->fp, NULL, NULL);
	}
	return 0;
}

/* ---- proactive refresh ---- */

/* The timer's arg is the entry itself: entries never move, and their
 * timer is cancelled before they are deleted. */
static void
proactive_cb(struct event_loop *ev, void *arg)
{
	struct cache_entry *e = arg;
	struct user *u = e->owner;
	struct broker *b = u->b;
	int64_t now = clock_now(b->clk);

	(void)ev;
	e->timer = NULL;
	/* Only tokens someone used recently are worth a call to Entra. */
	if (user_has_consent(u) && e->last_used >= e->issued_at &&
	    now - e->last_used <= b->cf->recent_use)
		(void)b->refresh(b, u, e->scope, NULL); /* flight_join */
}

void
tokens_arm(struct broker *b, struct cache_entry *e)
{
	int64_t delay = e->refresh_at - clock_now(b->clk);

	clock_timer_cancel(b->clk, &e->timer);
	e->timer = clock_timer_in(b->clk, (delay > 0 ? delay : 0) * 1000,
	    proactive_cb, e);
}
