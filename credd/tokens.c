/*
 * tokens.c - a user's access tokens in the cache (see tokens.h): a token
 * the IdP issued is put there with its fingerprint and its proactive
 * refresh planned (refresh.c); a request is answered from there, the
 * token unpacked into one buffer that is wiped once the reply holds it.
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
#include "entra/util.h"

#include "audit.h"
#include "broker_int.h"
#include "cache.h"
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

int
tokens_reply(struct broker *b, struct user *u, struct waiter *w,
    const char *scope, struct reply *out)
{
	struct cache_entry *e = cache_get(b->cache, u->name, scope);
	const char *account = user_account(u);
	size_t len = cache_token_len(e);
	json_t *resp;
	ssize_t n;
	int bad = 0;

	if (e == NULL)
		return errmap_reply(out, -EIO, "token vanished from the cache");
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
		return errmap_reply(out, -EIO,
		    "the cached token was damaged; "
		    "ask again");
	}
	e->last_used = clock_now(b->clk);
	resp = proto_ok();
	/* The IdP's token was checked as UTF-8 when it was parsed. */
	reply_put(resp, "access_token",
	    json_stringn_nocheck(b->tokbuf, (size_t)n), &bad);
	sodium_memzero(b->tokbuf, (size_t)n);
	reply_put(resp, "token_type", json_string(e->token_type), &bad);
	reply_put(resp, "expires_on", json_integer(e->expires_on), &bad);
	reply_put(resp, "scope", json_string(scope), &bad);
	reply_put(resp, "account", account ? json_string(account) : json_null(),
	    &bad);
	if (bad) {
		json_decref(resp);
		return -ENOMEM;
	}
	if (!e->audited) {
		/* Audited once per token handed to this user, not per cache hit. */
		e->audited = 1;
		user_audit("token_issued", u,
		    w != NULL ? w->caller->uid : u->uid, "token", scope, "ok",
		    NULL, e->fp, NULL, NULL);
	}
	return reply_set_json(out, resp);
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
